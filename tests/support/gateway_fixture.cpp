#include "tests/support/gateway_fixture.h"

#include <cstring>
#include <stdexcept>

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "control/runtime/queue_plan.h"
#include "dataplane/output.h"

namespace meshgate::test_support
{

namespace dp = meshgate::dataplane;

namespace
{

// Every worker polls queue 0 of every port (the caller hands it its bursts anyway).
queue_plan plan_for(const std::vector<opened_port> &ports, uint16_t workers)
{
    std::vector<int> port_sockets, worker_sockets(workers, ports.front().socket);
    for (const opened_port &p : ports)
        port_sockets.push_back(p.socket);
    return plan_queues(port_sockets, worker_sockets);
}

} // namespace

gateway_devices gateway_devices::open(const config::gateway_config &c, uint16_t workers)
{
    gateway_devices d;
    const std::vector<int> sockets = port_sockets(c);
    const queue_plan plan = plan_queues(sockets, std::vector<int>{sockets.front()});
    const packet_pools pools = create_packet_pools(c, plan, sockets);
    d.pool = pools.by_socket.front().second;
    d.ports = open_ports(c, plan, sockets, workers, pools);
    d.workers = workers;
    return d;
}

gateway_fixture::gateway_fixture(const config::gateway_config &c, const gateway_devices &devices)
    : pool(devices.pool), ports(devices.ports)
{
    const std::vector<worker_place> places(devices.workers,
                                           worker_place{0, devices.ports.front().socket});
    path =
        std::make_unique<data_path>(c, ports, plan_for(ports, devices.workers),
                                    packet_pools{{{devices.ports.front().socket, pool}}}, places);
    // The workers are this thread: online only while it runs one of them (burst()), so that a
    // publish never waits for them.
    for (dp::worker *x : path->workers()) {
        rte_rcu_qsbr_thread_register(path->shared().qsbr, x->id);
        x->rx_count = 0;
        for (uint16_t p = 0; p < x->port_count; ++p)
            x->rx[x->rx_count++] = dp::rx_queue{p, 0};
        x->now = 1;
        x->tsc = rte_rdtsc();
    }
    w = path->workers().front();
    connections = &path->connections();
    gateway_runtime r = data_path_runtime(*path, ports);
    r.publish = [this, publish = r.publish](const dp::dataplane_tables *t) {
        publish(t);
        if (after_publish) after_publish();
    };
    r.clock = [] { return 0.0; };
    api = std::make_unique<control_api>(std::move(r));
    if (!api->start(c).ok) throw std::runtime_error("the control API refused the configuration");
}

gateway_fixture::~gateway_fixture()
{
    for (dp::worker *x : path->workers())
        dp::release_all(*x);
    api.reset();
    path.reset();
}

bool gateway_fixture::load(rte_mbuf **pkts, uint16_t n,
                           std::span<const std::vector<uint8_t>> frames, size_t first)
{
    if (rte_pktmbuf_alloc_bulk(pool, pkts, n) != 0) return false;
    for (uint16_t i = 0; i < n; ++i) {
        const std::vector<uint8_t> &f = frames[(first + i) % frames.size()];
        std::memcpy(rte_pktmbuf_append(pkts[i], static_cast<uint16_t>(f.size())), f.data(),
                    f.size());
    }
    return true;
}

void gateway_fixture::burst(uint16_t port, rte_mbuf **pkts, uint16_t n, size_t worker)
{
    dp::worker &x = *path->workers()[worker];
    rte_rcu_qsbr *qsbr = path->shared().qsbr;
    rte_rcu_qsbr_thread_online(qsbr, x.id);
    x.tsc = rte_rdtsc();
    dp::process_burst(x, tables(), port, pkts, n);
    dp::flush_and_service(x, tables(), rte_rdtsc());
    rte_rcu_qsbr_quiescent(qsbr, x.id);
    rte_rcu_qsbr_thread_offline(qsbr, x.id);
}

void gateway_fixture::housekeeping(size_t worker, uint32_t now)
{
    dp::worker &x = *path->workers()[worker];
    rte_rcu_qsbr *qsbr = path->shared().qsbr;
    rte_rcu_qsbr_thread_online(qsbr, x.id);
    const uint64_t tsc = rte_rdtsc();
    path->shared().start_tsc = tsc - uint64_t{now} * x.tsc_hz;
    dp::housekeeping(x, tables(), tsc);
    rte_rcu_qsbr_quiescent(qsbr, x.id);
    rte_rcu_qsbr_thread_offline(qsbr, x.id);
}

void gateway_fixture::run(std::span<const std::vector<uint8_t>> frames, uint16_t port,
                          size_t rounds)
{
    rte_mbuf *pkts[dp::burst_size];
    for (size_t r = 0; r < rounds; ++r)
        if (load(pkts, dp::burst_size, frames, r * dp::burst_size))
            burst(port, pkts, dp::burst_size);
}

} // namespace meshgate::test_support
