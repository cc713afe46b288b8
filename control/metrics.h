// Prometheus text exposition (format 0.0.4) of the gateway's counters.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "control/ports.h"
#include "dataplane/counters.h"

namespace meshgate
{

// The counters of all workers added up, read by the control thread.
struct gateway_totals {
    std::vector<dataplane::port_counters> ports;
    std::array<uint64_t, dataplane::drop_reason_count> drops{};
    std::array<uint64_t, dataplane::event_count> events{};
    uint64_t reloads_ok = 0;
    uint64_t reloads_error = 0;
};

gateway_totals sum_counters(std::span<const dataplane::worker_counters *const> workers,
                            size_t port_count);

std::string render_metrics(const gateway_totals &totals, const std::vector<opened_port> &ports,
                           const std::vector<std::string> &port_roles);

} // namespace meshgate
