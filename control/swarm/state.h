// The routing mesh's part of a swarm, built from the Engine API's objects, and the gateway's
// configuration with it: the file's, plus the swarm's services, tasks, nodes and VNI. The
// result goes through the same control_api::apply() as a file reload.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/swarm/objects.h"

namespace meshgate::swarm
{

struct state {
    std::string network; // its name
    uint32_t vni = 0;
    ipv4_prefix subnet;
    std::optional<ipv4_prefix> ip_range;
    // Services that publish at least one port in ingress mode, by name; their running tasks
    // by address (weight 1, or 0 while the swarm stops them), origin swarm.
    std::vector<config::service> services;
    std::vector<config::node> nodes;   // those the tasks run on, by name
    std::vector<std::string> left_out; // what the mesh does not serve, and why

    bool operator==(const state &) const = default;
};

// Service labels that set what a file's [[service]] keys would (docs/swarm.md).
inline constexpr std::string_view scheduler_label = "com.meshgate.scheduler";
inline constexpr std::string_view persistence_label = "com.meshgate.persistence_timeout";
inline constexpr std::string_view proxy_protocol_label = "com.meshgate.proxy_protocol";
inline constexpr std::string_view rate_label = "com.meshgate.max_new_connections_per_second";

state assemble(const network &net, const std::vector<service> &services,
               const std::vector<task> &tasks, const std::vector<node> &nodes);

struct merged {
    config::gateway_config config;
    std::vector<std::string> notes; // what the file and the swarm disagree on, and who won
};

// FILE with the swarm's objects added. What the file names wins: a swarm service whose name or
// published port the file has is left out; a swarm node at a file node's address is that node.
// The swarm's VNI replaces [overlay] vni.
merged with_swarm(config::gateway_config file, const state &swarm);

} // namespace meshgate::swarm
