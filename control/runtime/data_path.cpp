#include "control/runtime/data_path.h"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>

#include <rte_cycles.h>
#include <rte_ip_frag.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "control/config/memory.h"

namespace meshgate
{

namespace
{

// DPDK names pools process-wide: a test process builds one data path after another.
std::atomic<uint32_t> path_seq{0};

} // namespace

std::vector<worker_place> worker_places(const config::gateway_config &c)
{
    std::vector<worker_place> places;
    for (uint16_t i = 0; i < worker_count(c); ++i) {
        const unsigned lcore = c.dpdk.lcore_ids[i + 1];
        places.push_back({lcore, static_cast<int>(rte_lcore_to_socket_id(lcore))});
    }
    return places;
}

dataplane::conntrack_params connection_params(const config::gateway_config &c, uint16_t workers,
                                              rte_rcu_qsbr *qsbr)
{
    dataplane::conntrack_params p;
    p.capacity = c.limits.connections;
    p.n_workers = workers;
    p.qsbr = qsbr;
    p.socket_id = static_cast<int>(rte_socket_id());
    p.timeouts = c.timeouts;
    p.snat_port_min = c.overlay.snat_port_min;
    p.snat_port_max = c.overlay.snat_port_max;
    return p;
}

void data_path::worker_free::operator()(dataplane::worker *w) const
{
    if (w->reassembly != nullptr) rte_ip_frag_table_destroy(w->reassembly); // frees its mbufs
    w->~worker();
    rte_free(w);
}

void data_path::qsbr_free::operator()(rte_rcu_qsbr *q) const
{
    rte_free(q);
}

void data_path::pool_free::operator()(rte_mempool *p) const
{
    rte_mempool_free(p);
}

data_path::data_path(const config::gateway_config &c, std::span<const opened_port> ports,
                     const queue_plan &plan, const packet_pools &pools,
                     std::span<const worker_place> places)
    : tsc_hz_(rte_get_tsc_hz()),
      task_active_(new std::atomic<uint32_t>[dataplane::task_id_capacity] {}),
      cursors_(new dataplane::scheduler_cursor[dataplane::service_id_capacity]{})
{
    const auto count = static_cast<uint16_t>(places.size());
    const size_t qsbr_size = rte_rcu_qsbr_get_memsize(count);
    qsbr_.reset(
        static_cast<rte_rcu_qsbr *>(rte_zmalloc("meshgate_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE)));
    if (!qsbr_ || rte_rcu_qsbr_init(qsbr_.get(), count) != 0)
        throw std::runtime_error("RCU state for " + std::to_string(count) + " workers");
    neighbors_ = std::make_unique<dataplane::neighbor_table>(tsc_hz_);
    const std::string pool_name = "meshgate_indirect_" + std::to_string(path_seq.fetch_add(1));
    indirect_pool_.reset(rte_pktmbuf_pool_create(pool_name.c_str(), indirect_pool_size, 256, 0, 0,
                                                 static_cast<int>(rte_socket_id())));
    if (!indirect_pool_) throw std::runtime_error("indirect packet pool");
    connections_ = dataplane::connection_table::create(connection_params(c, count, qsbr_.get()));

    shared_.qsbr = qsbr_.get();
    shared_.neighbors = neighbors_.get();
    shared_.indirect_pool = indirect_pool_.get();
    shared_.connections = connections_.get();
    shared_.affinity = &affinity_;
    shared_.task_active = task_active_.get();
    shared_.cursors = cursors_.get();
    shared_.start_tsc = rte_rdtsc();

    for (uint16_t i = 0; i < count; ++i) {
        void *memory = rte_zmalloc_socket("meshgate_worker", sizeof(dataplane::worker),
                                          alignof(dataplane::worker), places[i].socket);
        if (memory == nullptr)
            throw std::runtime_error("worker state on socket " + std::to_string(places[i].socket));
        worker_ptr w(new (memory) dataplane::worker());
        w->id = i;
        w->lcore = places[i].lcore;
        w->shared = &shared_;
        w->pool = pools.on(places[i].socket);
        w->tsc_hz = tsc_hz_;
        w->arp_interval = tsc_hz_;              // one request per second per next hop, as Linux
        w->arp_wait = 3 * tsc_hz_;              // Linux gives up after 3 unanswered probes
        constexpr uint32_t bucket_entries = 16; // as DPDK's ip_reassembly example
        w->reassembly = rte_ip_frag_table_create(
            dataplane::reassembly_datagrams, bucket_entries, dataplane::reassembly_datagrams,
            tsc_hz_ * dataplane::reassembly_timeout_ms / 1000, places[i].socket);
        if (w->reassembly == nullptr)
            throw std::runtime_error("reassembly table for worker " + std::to_string(i));
        w->port_count = static_cast<uint16_t>(ports.size());
        for (uint16_t p = 0; p < ports.size(); ++p) {
            w->port_ids[p] = ports[p].port_id;
            if (!ports[p].multi_segs) w->single_segment_ports |= 1u << p;
            const std::vector<uint16_t> &rx = plan.rx_workers[p];
            if (auto q = std::find(rx.begin(), rx.end(), i); q != rx.end())
                w->rx[w->rx_count++] = {p, static_cast<uint16_t>(q - rx.begin())};
            // Each worker sends to and reads its own queue of the port's kernel interface.
            w->kernel_port_ids[p] = ports[p].kernel_port_id;
        }
        worker_view_.push_back(w.get());
        workers_.push_back(std::move(w));
    }
}

data_path::~data_path()
{
    stop();
}

void data_path::launch()
{
    for (; launched_ < workers_.size(); ++launched_) {
        dataplane::worker &w = *workers_[launched_];
        if (rte_eal_remote_launch(dataplane::worker_main, &w, w.lcore) != 0)
            throw std::runtime_error("cannot launch worker on lcore " + std::to_string(w.lcore));
    }
}

void data_path::stop()
{
    shared_.stop.store(true);
    for (; launched_ > 0; --launched_)
        rte_eal_wait_lcore(workers_[launched_ - 1]->lcore);
}

void data_path::publish(const dataplane::dataplane_tables *tables)
{
    connections_->set_timeouts(tables->timeouts);
    shared_.tables.store(tables, std::memory_order_release);
    synchronize(); // every worker passes a quiescent point before the caller frees the old one
}

void data_path::synchronize()
{
    rte_rcu_qsbr_synchronize(qsbr_.get(), RTE_QSBR_THRID_INVALID);
}

uint32_t data_path::active(uint16_t task) const
{
    return task_active_[task].load(std::memory_order_relaxed);
}

void data_path::reset_counters(std::span<const uint16_t> tasks, std::span<const uint16_t> services)
{
    for (dataplane::worker *w : worker_view_) {
        for (uint16_t id : tasks)
            w->counters.tasks[id] = {};
        for (uint16_t id : services)
            w->counters.connections_created[id] = 0;
    }
}

} // namespace meshgate
