// A task is known by what it is: its service's name and its address on the ingress network.
#pragma once

#include <compare>
#include <string>

#include "control/base/net_text.h"

namespace meshgate
{

struct task_key {
    std::string service;
    ipv4_address address;
    friend auto operator<=>(const task_key &, const task_key &) = default;
};

inline std::string to_string(const task_key &k) // "web/10.255.0.5"
{
    return k.service + "/" + to_string(k.address);
}

} // namespace meshgate
