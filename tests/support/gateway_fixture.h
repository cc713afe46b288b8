// A whole gateway in one thread: the ports a configuration names, its packet pool, and the
// data path meshgate builds (control/runtime/data_path.h: the same workers, tables and
// connection table), with the control API started on the configuration; no worker runs on an
// lcore: the caller drives them, burst by burst, as the benchmarks (perf/pipeline_bench), the
// fuzz targets (tests/fuzz/packet_fuzz) and the data path's tests do.
// EAL must be running with the configuration's devices (--vdev) already probed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include <rte_mempool.h>

#include "control/api/control_api.h"
#include "control/config/config.h"
#include "control/runtime/data_path.h"
#include "control/runtime/ports.h"
#include "dataplane/worker.h"

namespace meshgate::test_support
{

// The packet pool and the opened ports of a configuration, with a TX queue for each of WORKERS
// workers: opened once per process (a closed vdev is gone for good), then shared by every
// fixture built on them.
struct gateway_devices {
    rte_mempool *pool = nullptr;
    std::vector<opened_port> ports;
    uint16_t workers = 1;

    // Throws if a device is missing or does not start.
    static gateway_devices open(const config::gateway_config &c, uint16_t workers = 1);
};

// One gateway on DEVICES, with as many workers as DEVICES has TX queues per port, each polling
// queue 0 of every port; the connection clock at second 1.
struct gateway_fixture {
    rte_mempool *pool = nullptr;
    std::vector<opened_port> ports;
    std::unique_ptr<data_path> path;
    std::unique_ptr<control_api> api;
    dataplane::worker *w = nullptr; // the first worker
    dataplane::connection_table *connections = nullptr;
    // Run at each publish, once the new snapshot is in and before the control API goes on: what
    // a running worker may do in that moment (e.g. housekeeping()).
    std::function<void()> after_publish;

    // Throws if the control API refuses C.
    gateway_fixture(const config::gateway_config &c, const gateway_devices &devices);
    ~gateway_fixture();
    gateway_fixture(const gateway_fixture &) = delete;
    gateway_fixture &operator=(const gateway_fixture &) = delete;

    const dataplane::dataplane_tables &tables() const { return *path->shared().tables.load(); }
    dataplane::worker &worker(size_t i) const { return *path->workers()[i]; }

    // Fills PKTS[0..n) with copies of FRAMES[(first + i) % size]; false if the pool is empty.
    bool load(rte_mbuf **pkts, uint16_t n, std::span<const std::vector<uint8_t>> frames,
              size_t first);

    // Runs FRAMES through PORT, from the first on, ROUNDS bursts of burst_size (e.g. to open
    // connections), flushing and passing a quiescent point after each.
    void run(std::span<const std::vector<uint8_t>> frames, uint16_t port, size_t rounds);

    // One burst of PKTS through PORT on worker WORKER, then TX flushed and a quiescent point.
    void burst(uint16_t port, rte_mbuf **pkts, uint16_t n, size_t worker = 0);

    // WORKER's periodic work (dataplane::housekeeping()) with the connection clock at NOW
    // seconds: as a worker loop would do it at that second.
    void housekeeping(size_t worker, uint32_t now);
};

} // namespace meshgate::test_support
