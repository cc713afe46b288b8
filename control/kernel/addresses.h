// IPv4 addresses on kernel interfaces, through rtnetlink (libnl-route): what announces a
// published address to the host's BGP daemon.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "control/base/net_text.h"

struct nl_sock;

namespace meshgate
{

class kernel_addresses
{
  public:
    kernel_addresses(); // throws std::runtime_error when rtnetlink cannot be opened
    ~kernel_addresses();
    kernel_addresses(const kernel_addresses &) = delete;
    kernel_addresses &operator=(const kernel_addresses &) = delete;

    // Puts PREFIX (the address with its prefix length) on interface IFINDEX; already there is
    // success. Returns "" or what the kernel said.
    std::string add(int ifindex, ipv4_prefix prefix);
    // Takes it off; not there is success.
    std::string remove(int ifindex, ipv4_prefix prefix);
    // A permanent neighbor entry on IFINDEX: ADDRESS (network order) is at MAC.
    std::string set_neighbor(int ifindex, uint32_t address, const std::array<uint8_t, 6> &mac);

  private:
    nl_sock *socket_;
};

} // namespace meshgate
