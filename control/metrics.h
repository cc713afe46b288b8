// Prometheus text exposition (format 0.0.4) of the gateway's counters.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/ports.h"
#include "dataplane/counters.h"

namespace meshgate
{

// The counters of all workers added up, read by the control thread.
struct gateway_totals {
    std::vector<dataplane::port_counters> ports;
    std::array<uint64_t, dataplane::drop_reason_count> drops{};
    std::array<uint64_t, dataplane::event_count> events{};
    std::vector<uint64_t> connections_created;   // per service, config order
    std::vector<dataplane::task_counters> tasks; // per task, services' tasks in config order
    uint64_t reloads_ok = 0;
    uint64_t reloads_error = 0;
};

gateway_totals sum_counters(std::span<const dataplane::worker_counters *const> workers,
                            size_t port_count, size_t service_count, size_t task_count);

std::string render_metrics(const gateway_totals &totals, const std::vector<opened_port> &ports,
                           const std::vector<std::string> &port_roles);

// meshgate_connections_total{service}, meshgate_active_connections{service,task} and
// meshgate_backend_packets_total / _bytes_total{service,task,direction}, appended to OUT.
// ACTIVE holds the live connections of each task, in the order of TOTALS.tasks.
void render_backend_metrics(std::string &out, const gateway_totals &totals,
                            const std::vector<config::service> &services,
                            std::span<const std::atomic<uint32_t>> active);

} // namespace meshgate
