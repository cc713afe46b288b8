// What differs between the running configuration and the next one: what a reload changes (for
// its log line and its reply), and what it cannot change without a restart.
#pragma once

#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/config/task_key.h"

namespace meshgate
{

struct change_set {
    std::vector<std::string> services_added, services_removed, services_changed;
    std::vector<task_key> tasks_added, tasks_removed, tasks_changed;
    std::vector<std::string> nodes_added, nodes_removed, nodes_changed;
    std::vector<std::string> settings; // "timeouts", "port ext mtu 1500 -> 9000", ...

    bool empty() const;
    // "services +1 -0 ~2, tasks +3 -1 ~0, nodes +0 -0 ~0; timeouts" or "no change".
    std::string summary() const;
};

change_set diff(const config::gateway_config &old, const config::gateway_config &next);

// Keys whose change needs a restart (every [dpdk] key, the ports' devices, names and MACs, how
// many ports, [overlay] snat_ports, [limits] connections): one error each, at the new value,
// naming the key.
std::vector<config::config_error> restart_needed(const config::gateway_config &old,
                                                 const config::gateway_config &next);

// Did any idle timeout get shorter (existing connections may now be past it)?
bool timeouts_shortened(const config::timeouts_section &old, const config::timeouts_section &next);

} // namespace meshgate
