// The [dpdk] lcores list (EAL -l syntax) and the CPUs of this machine it must name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace meshgate::config
{

constexpr unsigned max_lcore_id = 1023; // CPU_SETSIZE - 1

// lcore ids in the order written, or what is wrong with the text.
struct lcore_list {
    std::vector<unsigned> ids;
    std::string error;
};

// Parses "0-1", "0,2-3": comma-separated ids and inclusive ranges, each id once.
lcore_list parse_lcore_list(std::string_view text);

// "0-3,6": the compact text form of sorted ids.
std::string format_lcore_list(std::vector<unsigned> ids);

// The CPUs this process may run on: sched_getaffinity, else /sys/devices/system/cpu/online.
std::vector<unsigned> available_cpus();

} // namespace meshgate::config
