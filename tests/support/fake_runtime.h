// The control API's view of a gateway without DPDK (control/api/control_api.h gateway_runtime):
// the null gateway's two ports, snapshots handed to PUBLISH, no workers to wait for, settings
// always accepted, the clock at NOW. For tests and benchmarks of the control plane alone.
#pragma once

#include <functional>
#include <vector>

#include "control/api/control_api.h"

namespace meshgate::test_support
{

inline gateway_runtime
fake_runtime(std::function<void(const dataplane::dataplane_tables *)> publish, double now = 0)
{
    gateway_runtime r;
    r.ports = {opened_port{"ext", "net_null0", 0, {}}, opened_port{"und", "net_null1", 1, {}}};
    r.publish = std::move(publish);
    r.synchronize = [] {};
    r.active = [](uint16_t) { return 0u; };
    r.prepare_settings = [](const config::gateway_config *, const config::gateway_config &) {
        return std::vector<config::config_error>{};
    };
    r.commit_settings = [](const config::gateway_config *, const config::gateway_config &) {};
    r.abort_settings = [] {};
    r.clock = [now] { return now; };
    return r;
}

} // namespace meshgate::test_support
