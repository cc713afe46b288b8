#include "control/gateway.h"

#include <chrono>
#include <memory>
#include <thread>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <spdlog/spdlog.h>

#include "control/config_lcores.h"
#include "control/eal.h"
#include "control/metrics.h"
#include "control/ports.h"
#include "control/stats_server.h"
#include "control/tables_build.h"
#include "dataplane/worker.h"

namespace meshgate
{

namespace
{

std::string role_name(config::port_role r)
{
    switch (r) {
    case config::port_role::external:
        return "external";
    case config::port_role::underlay:
        return "underlay";
    case config::port_role::both:
        return "both";
    }
    return "?";
}

bool eal_init(const config::gateway_config &c)
{
    std::vector<std::string> args = eal_arguments(c);
    std::string joined;
    for (const std::string &a : args)
        joined += " " + a;
    spdlog::info("EAL arguments:{}", joined);
    std::vector<char *> argv;
    for (std::string &a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
        spdlog::error("EAL initialisation failed: {}", rte_strerror(rte_errno));
        return false;
    }
    return true;
}

dataplane::conntrack_params connection_params(const config::gateway_config &c, uint16_t workers,
                                              rte_rcu_qsbr *qsbr)
{
    dataplane::conntrack_params p;
    p.capacity = c.limits.connections;
    p.n_workers = workers;
    p.qsbr = qsbr;
    p.socket_id = static_cast<int>(rte_socket_id());
    p.timeouts =
        dataplane::conntrack_timeouts{c.timeouts.tcp_established, c.timeouts.tcp_fin,
                                      c.timeouts.tcp_close, c.timeouts.tcp_syn, c.timeouts.udp};
    return p;
}

// Everything the control thread owns while the gateway runs.
class gateway
{
  public:
    gateway(config::gateway_config c, std::vector<unsigned> cpus, control_signals &signals)
        : config_(std::move(c)), cpus_(std::move(cpus)), signals_(signals)
    {
    }

    int run();

  private:
    void start();
    void control_loop();
    void reload();
    void publish(std::unique_ptr<dataplane::dataplane_tables> next);
    void stop();
    std::string metrics() const;

    config::gateway_config config_;
    // Taken before EAL pins this thread to one core: what [dpdk] lcores may name on reload.
    std::vector<unsigned> cpus_;
    control_signals &signals_;
    rte_mempool *pool_ = nullptr;
    std::vector<opened_port> ports_;
    dataplane::gateway_shared shared_;
    dataplane::neighbor_table neighbors_;
    std::unique_ptr<dataplane::dataplane_tables> tables_;
    std::vector<std::unique_ptr<dataplane::worker>> workers_;
    std::unique_ptr<dataplane::connection_table> connections_;
    dataplane::affinity_table affinity_;
    std::unique_ptr<std::atomic<uint32_t>[]> task_active_ {
        new std::atomic<uint32_t>[dataplane::max_tasks] {}
    };
    uint64_t reloads_ok_ = 0;
    uint64_t reloads_error_ = 0;
};

void gateway::start()
{
    uint16_t worker_count = static_cast<uint16_t>(config_.dpdk.lcore_ids.size() - 1);
    pool_ = create_packet_pool(config_, worker_count);
    ports_ = open_ports(config_, worker_count, pool_);

    size_t qsbr_size = rte_rcu_qsbr_get_memsize(worker_count);
    shared_.qsbr =
        static_cast<rte_rcu_qsbr *>(rte_zmalloc("meshgate_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE));
    if (shared_.qsbr == nullptr || rte_rcu_qsbr_init(shared_.qsbr, worker_count) != 0)
        throw std::runtime_error("RCU state for " + std::to_string(worker_count) + " workers");
    shared_.neighbors = &neighbors_;
    shared_.pool = pool_;
    shared_.indirect_pool = rte_pktmbuf_pool_create("meshgate_indirect", 8191, 256, 0, 0,
                                                    static_cast<int>(rte_socket_id()));
    if (shared_.indirect_pool == nullptr) throw std::runtime_error("indirect packet pool");
    connections_ =
        dataplane::connection_table::create(connection_params(config_, worker_count, shared_.qsbr));
    shared_.connections = connections_.get();
    shared_.affinity = &affinity_;
    shared_.task_active = task_active_.get();
    shared_.start_tsc = rte_rdtsc();

    tables_ = build_tables(config_, ports_);
    install_static_neighbors(config_, *tables_, neighbors_);
    shared_.tables.store(tables_.get(), std::memory_order_release);

    uint64_t hz = rte_get_tsc_hz();
    for (uint16_t i = 0; i < worker_count; ++i) {
        auto w = std::make_unique<dataplane::worker>();
        w->id = i;
        w->lcore = config_.dpdk.lcore_ids[i + 1];
        w->shared = &shared_;
        w->tsc_hz = hz;
        w->arp_interval = hz; // one request per second per next hop, as Linux
        w->arp_wait = 3 * hz; // Linux gives up after 3 unanswered probes
        w->port_count = static_cast<uint16_t>(ports_.size());
        for (size_t p = 0; p < ports_.size(); ++p)
            w->port_ids[p] = ports_[p].port_id;
        workers_.push_back(std::move(w));
    }
    for (auto &w : workers_) {
        if (int rc = rte_eal_remote_launch(dataplane::worker_main, w.get(), w->lcore); rc != 0)
            throw std::runtime_error("cannot launch worker on lcore " + std::to_string(w->lcore));
        spdlog::info("worker {} polling on lcore {}", w->id, w->lcore);
    }
}

std::string gateway::metrics() const
{
    std::vector<const dataplane::worker_counters *> counters;
    for (const auto &w : workers_)
        counters.push_back(&w->counters);
    size_t task_count = 0;
    for (const config::service &sv : config_.services)
        task_count += sv.tasks.size();
    gateway_totals totals =
        sum_counters(counters, ports_.size(), config_.services.size(), task_count);
    totals.reloads_ok = reloads_ok_;
    totals.reloads_error = reloads_error_;
    std::vector<std::string> roles;
    for (const config::port &p : config_.ports)
        roles.push_back(role_name(p.role));
    std::string out = render_metrics(totals, ports_, roles);
    render_backend_metrics(out, totals, config_.services,
                           std::span<const std::atomic<uint32_t>>(task_active_.get(), task_count));
    return out;
}

void gateway::publish(std::unique_ptr<dataplane::dataplane_tables> next)
{
    shared_.tables.store(next.get(), std::memory_order_release);
    // Every worker passes a quiescent point before the old tables go.
    rte_rcu_qsbr_synchronize(shared_.qsbr, RTE_QSBR_THRID_INVALID);
    tables_ = std::move(next);
}

// Ports and EAL settings are fixed for the life of the process; the rest is swapped in.
bool restart_needed(const config::gateway_config &old, const config::gateway_config &next)
{
    if (old.dpdk.lcore_ids != next.dpdk.lcore_ids || old.ports.size() != next.ports.size())
        return true;
    for (size_t i = 0; i < old.ports.size(); ++i)
        if (old.ports[i].device != next.ports[i].device || old.ports[i].name != next.ports[i].name)
            return true;
    return false;
}

void gateway::reload()
{
    spdlog::info("reloading {}", config_.file);
    config::load_result r = config::load(config_.file, config::load_options{cpus_});
    if (!r.config || restart_needed(config_, *r.config)) {
        for (const config::config_error &e : r.errors)
            spdlog::error("{}", e.to_string());
        if (r.config)
            spdlog::error("reload rejected: [dpdk] lcores and [[port]] name/device need a restart");
        spdlog::error("reload rejected, the running configuration stays");
        ++reloads_error_;
        return;
    }
    auto next = build_tables(*r.config, ports_);
    install_static_neighbors(*r.config, *next, neighbors_);
    publish(std::move(next));
    config_ = std::move(*r.config);
    ++reloads_ok_;
    spdlog::info("configuration reloaded");
}

void gateway::control_loop()
{
    std::unique_ptr<stats_server> stats;
    if (!config_.stats.listen.empty())
        stats = std::make_unique<stats_server>(config_.stats.listen, [this] { return metrics(); });
    while (!signals_.stop.load()) {
        if (stats)
            stats->poll(100);
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (signals_.reload.exchange(false)) reload();
    }
}

void gateway::stop()
{
    shared_.stop.store(true);
    rte_eal_mp_wait_lcore();
    close_ports(ports_);
    connections_.reset();
    rte_free(shared_.qsbr);
    shared_.qsbr = nullptr;
    if (pool_ != nullptr) rte_mempool_free(pool_);
    if (shared_.indirect_pool != nullptr) rte_mempool_free(shared_.indirect_pool);
    pool_ = nullptr;
}

int gateway::run()
{
    int status = 0;
    try {
        start();
        spdlog::info("meshgate running: {} port(s), {} worker(s)", ports_.size(), workers_.size());
        control_loop();
        spdlog::info("stopping");
    } catch (const std::exception &e) {
        spdlog::error("{}", e.what());
        status = 1;
    }
    stop();
    spdlog::info("final counters:\n{}", metrics());
    return status;
}

} // namespace

int run_gateway(config::gateway_config initial, control_signals &signals)
{
    std::vector<unsigned> cpus = config::available_cpus(); // before EAL pins this thread
    if (!eal_init(initial)) return 1;
    int status = gateway(std::move(initial), std::move(cpus), signals).run();
    rte_eal_cleanup();
    return status;
}

} // namespace meshgate
