// A whole gateway in one thread, without workers' lcores: the ports a configuration names,
// its packet pool, the connection table, the control API's tables and one worker, for code that
// drives process_burst() itself (perf/pipeline_bench, tests/fuzz/packet_fuzz).
// EAL must be running with the configuration's devices (--vdev) already probed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include "control/api/control_api.h"
#include "control/config/config.h"
#include "control/runtime/ports.h"
#include "dataplane/affinity.h"
#include "dataplane/conntrack.h"
#include "dataplane/neighbor.h"
#include "dataplane/scheduler.h"
#include "dataplane/worker.h"

namespace meshgate::test_support
{

// The packet pool and the opened ports of a configuration: opened once per process (a closed
// vdev is gone for good), then shared by every fixture built on them.
struct gateway_devices {
    rte_mempool *pool = nullptr;
    std::vector<opened_port> ports;

    // Throws if a device is missing or does not start.
    static gateway_devices open(const config::gateway_config &c);
};

// One gateway on DEVICES: the control API started with the configuration, a worker polling
// queue 0 of every port, its connection clock at second 1.
struct gateway_fixture {
    rte_mempool *pool = nullptr;
    std::vector<opened_port> ports;
    rte_rcu_qsbr *qsbr = nullptr;
    dataplane::gateway_shared shared;
    dataplane::neighbor_table neighbors{rte_get_tsc_hz()};
    dataplane::affinity_table affinity;
    std::unique_ptr<std::atomic<uint32_t>[]> task_active;
    std::unique_ptr<dataplane::scheduler_cursor[]> cursors;
    std::unique_ptr<dataplane::connection_table> connections;
    std::unique_ptr<control_api> api;
    std::unique_ptr<dataplane::worker> w;

    // Throws if the control API refuses C.
    gateway_fixture(const config::gateway_config &c, const gateway_devices &devices);
    ~gateway_fixture();
    gateway_fixture(const gateway_fixture &) = delete;
    gateway_fixture &operator=(const gateway_fixture &) = delete;

    const dataplane::dataplane_tables &tables() const { return *shared.tables.load(); }

    // Fills PKTS[0..n) with copies of FRAMES[(first + i) % size]; false if the pool is empty.
    bool load(rte_mbuf **pkts, uint16_t n, std::span<const std::vector<uint8_t>> frames,
              size_t first);

    // Runs FRAMES through PORT, from the first on, ROUNDS bursts of burst_size (e.g. to open
    // connections), flushing and passing a quiescent point after each.
    void run(std::span<const std::vector<uint8_t>> frames, uint16_t port, size_t rounds);

    // One burst of PKTS through PORT, then TX flushed and a quiescent point.
    void burst(uint16_t port, rte_mbuf **pkts, uint16_t n);
};

} // namespace meshgate::test_support
