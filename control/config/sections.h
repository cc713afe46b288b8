// Reading each part of a parsed config file into gateway_config. Each reader checks its own
// keys and values and reports every problem to the root reader's error list.
#pragma once

#include <optional>
#include <vector>

#include "control/config/config.h"
#include "control/config/toml.h"

namespace meshgate::config
{

// config_sections.cpp: the sections that stand alone.
dpdk_section read_dpdk(const table_reader &root, const load_options &options);
std::optional<swarm_section> read_swarm(const table_reader &root);
limits_section read_limits(const table_reader &root);
timeouts_section read_timeouts(const table_reader &root);
stats_section read_stats(const table_reader &root);
log_section read_log(const table_reader &root);

// config_network.cpp: ports, neighbors, the overlay and the nodes.
std::vector<port> read_ports(const table_reader &root);
std::vector<neighbor> read_neighbors(const table_reader &root, const std::vector<port> &ports);
// Nothing when [overlay] is missing or its address is not valid.
std::optional<overlay_section> read_overlay(const table_reader &root);
std::vector<node> read_nodes(const table_reader &root);

// config_services.cpp: services, their published ports and their tasks.
std::vector<service> read_services(const table_reader &root);

// config_sections.cpp
reload_section read_reload(const table_reader &root);
drain_section read_drain(const table_reader &root);
std::optional<cluster_section> read_cluster(const table_reader &root);

} // namespace meshgate::config
