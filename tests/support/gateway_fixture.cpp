#include "tests/support/gateway_fixture.h"

#include <cstring>
#include <stdexcept>

#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "control/api/tables_build.h"
#include "control/runtime/queue_plan.h"
#include "dataplane/output.h"

namespace meshgate::test_support
{

namespace dp = meshgate::dataplane;

gateway_devices gateway_devices::open(const config::gateway_config &c)
{
    gateway_devices d;
    const std::vector<int> sockets = port_sockets(c);
    const std::vector<int> worker_socket = {sockets.front()};
    const queue_plan plan = plan_queues(sockets, worker_socket);
    const packet_pools pools = create_packet_pools(c, plan, sockets);
    d.pool = pools.by_socket.front().second;
    d.ports = open_ports(c, plan, sockets, 1, pools);
    return d;
}

gateway_fixture::gateway_fixture(const config::gateway_config &c, const gateway_devices &devices)
    : pool(devices.pool), ports(devices.ports),
      task_active(new std::atomic<uint32_t>[dp::task_id_capacity] {}),
      cursors(new dp::scheduler_cursor[dp::service_id_capacity]{}),
      w(std::make_unique<dp::worker>())
{
    qsbr = static_cast<rte_rcu_qsbr *>(
        rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(1), RTE_CACHE_LINE_SIZE));
    if (qsbr == nullptr) throw std::runtime_error("no memory for the RCU state");
    rte_rcu_qsbr_init(qsbr, 1);
    rte_rcu_qsbr_thread_register(qsbr, 0);
    rte_rcu_qsbr_thread_online(qsbr, 0);
    connections = dp::connection_table::create(
        {.capacity = c.limits.connections, .n_workers = 1, .qsbr = qsbr});
    shared.qsbr = qsbr;
    shared.neighbors = &neighbors;
    shared.indirect_pool = pool;
    shared.connections = connections.get();
    shared.affinity = &affinity;
    shared.task_active = task_active.get();
    shared.cursors = cursors.get();
    gateway_runtime r;
    r.ports = ports;
    r.publish = [this](const dp::dataplane_tables *t) { shared.tables.store(t); };
    r.synchronize = [] {};
    r.active = [this](uint16_t id) { return task_active[id].load(); };
    r.prepare_settings = [](const config::gateway_config *, const config::gateway_config &) {
        return std::vector<config::config_error>{};
    };
    r.commit_settings = [this](const config::gateway_config *old,
                               const config::gateway_config &next, const dp::dataplane_tables &t) {
        install_static_neighbors(next, old, t, neighbors);
    };
    r.abort_settings = [] {};
    r.clock = [] { return 0.0; };
    api = std::make_unique<control_api>(std::move(r));
    if (!api->start(c).ok) throw std::runtime_error("the control API refused the configuration");
    w->shared = &shared;
    w->pool = pool;
    w->tsc_hz = rte_get_tsc_hz();
    w->arp_interval = w->tsc_hz;
    w->arp_wait = 3 * w->tsc_hz;
    w->port_count = static_cast<uint16_t>(ports.size());
    w->rx_count = w->port_count;
    for (uint16_t i = 0; i < w->port_count; ++i) {
        w->port_ids[i] = ports[i].port_id;
        w->rx[i] = dp::rx_queue{i, 0};
        if (!ports[i].multi_segs) w->single_segment_ports |= 1u << i;
    }
    w->now = 1;
    w->tsc = rte_rdtsc();
    constexpr uint32_t bucket_entries = 16;
    w->reassembly =
        rte_ip_frag_table_create(dp::reassembly_datagrams, bucket_entries, dp::reassembly_datagrams,
                                 w->tsc_hz * dp::reassembly_timeout_ms / 1000, SOCKET_ID_ANY);
    if (w->reassembly == nullptr) throw std::runtime_error("no memory for the reassembly table");
}

gateway_fixture::~gateway_fixture()
{
    dp::release_all(*w);
    rte_ip_frag_table_destroy(w->reassembly); // frees what it holds
    api.reset();
    connections.reset();
    rte_rcu_qsbr_thread_offline(qsbr, 0);
    rte_free(qsbr);
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

void gateway_fixture::burst(uint16_t port, rte_mbuf **pkts, uint16_t n)
{
    w->tsc = rte_rdtsc();
    dp::process_burst(*w, tables(), port, pkts, n);
    dp::flush_and_service(*w, tables(), rte_rdtsc());
    rte_rcu_qsbr_quiescent(qsbr, 0);
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
