// The [dpdk] lcores list (EAL -l syntax, or --lcores LCORE@CPU items) and the CPUs it must name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <rte_config.h>

namespace meshgate::config
{

constexpr unsigned max_cpu_id = 1023;                // CPU_SETSIZE - 1
constexpr unsigned max_lcore_id = RTE_MAX_LCORE - 1; // EAL refuses higher lcore ids

// lcore ids in the order written with the CPU each runs on, or what is wrong with the text.
struct lcore_list {
    std::vector<unsigned> ids;
    std::vector<unsigned> cpus; // cpus[i] runs ids[i]: the id itself unless written LCORE@CPU
    bool pinned = false;        // some item was LCORE@CPU: EAL needs --lcores, not -l
    std::string error;
};

// Parses "0-1", "0,2-3" (ids and inclusive ranges) and "0@0,1@1,2@1" (lcore at CPU, so that
// two lcores can share a CPU): comma-separated, each lcore id once.
lcore_list parse_lcore_list(std::string_view text);

// "0-3,6": the compact text form of sorted ids.
std::string format_lcore_list(std::vector<unsigned> ids);

// The CPUs this process may run on: sched_getaffinity, else /sys/devices/system/cpu/online.
std::vector<unsigned> available_cpus();

} // namespace meshgate::config
