#include "control/gateway.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip_frag.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pdump.h>
#include <spdlog/spdlog.h>

#include "control/api/control_api.h"
#include "control/api/control_requests.h"
#include "control/config/lcores.h"
#include "control/config/memory.h"
#include "control/observe/metrics.h"
#include "control/observe/stats_view.h"
#include "control/observe/telemetry.h"
#include "control/runtime/eal.h"
#include "control/runtime/file_watch.h"
#include "control/runtime/ports.h"
#include "control/swarm/state.h"
#include "control/swarm/sync.h"
#include "dataplane/worker.h"

namespace meshgate
{

namespace
{

using steady = std::chrono::steady_clock;

// How often the control loop looks at signals, requests, the file and removed tasks.
constexpr auto loop_period = std::chrono::milliseconds(20);

double seconds_now()
{
    return std::chrono::duration<double>(steady::now().time_since_epoch()).count();
}

double ms_since(steady::time_point t)
{
    return std::chrono::duration<double, std::milli>(steady::now() - t).count();
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
    p.timeouts = c.timeouts;
    p.snat_port_min = c.overlay.snat_port_min;
    p.snat_port_max = c.overlay.snat_port_max;
    return p;
}

std::string file_content(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A worker lives in hugepage memory of its lcore's NUMA socket.
struct worker_free {
    void operator()(dataplane::worker *w) const
    {
        if (w->reassembly != nullptr) rte_ip_frag_table_destroy(w->reassembly); // frees its mbufs
        w->~worker();
        rte_free(w);
    }
};
using worker_ptr = std::unique_ptr<dataplane::worker, worker_free>;

worker_ptr new_worker(int socket)
{
    void *memory = rte_zmalloc_socket("meshgate_worker", sizeof(dataplane::worker),
                                      alignof(dataplane::worker), socket);
    if (memory == nullptr)
        throw std::runtime_error("worker state on socket " + std::to_string(socket));
    return worker_ptr(new (memory) dataplane::worker());
}

std::string rx_list(const dataplane::worker &w, const std::vector<opened_port> &ports)
{
    std::string text;
    for (uint16_t i = 0; i < w.rx_count; ++i)
        text += (text.empty() ? "" : ", ") + ports[w.rx[i].port].name + " queue " +
                std::to_string(w.rx[i].queue);
    return text.empty() ? "nothing" : text;
}

// Everything the control thread owns while the gateway runs.
class gateway
{
  public:
    gateway(config::gateway_config c, std::vector<unsigned> cpus, control_signals &signals)
        : initial_(std::move(c)), cpus_(std::move(cpus)), signals_(signals)
    {
    }
    ~gateway();

    int run();

  private:
    void start();
    void control_loop();
    reload_reply reload(const char *trigger);
    // The file's configuration with the swarm's part when it is of the same [swarm].
    config::gateway_config with_swarm(const config::gateway_config &file);
    void apply_swarm(swarm::state s);
    void after_change();
    void update_rates();
    void stop();

    gateway_runtime runtime();
    std::vector<config::config_error> prepare_settings(const config::gateway_config *old,
                                                       const config::gateway_config &next);
    void commit_settings(const config::gateway_config *old, const config::gateway_config &next,
                         const dataplane::dataplane_tables &tables);
    void abort_settings();
    void watch_links();

    config::gateway_config initial_;
    // Taken before EAL pins this thread to one core: what [dpdk] lcores may name on reload.
    std::vector<unsigned> cpus_;
    control_signals &signals_;
    packet_pools pools_;
    std::vector<opened_port> ports_;
    std::vector<int> links_up_; // last link state seen per port: 1 up, 0 down, -1 not yet
    dataplane::gateway_shared shared_;
    std::unique_ptr<dataplane::neighbor_table> neighbors_; // ages in TSC ticks: after EAL init
    std::vector<worker_ptr> workers_;
    std::unique_ptr<dataplane::connection_table> connections_;
    dataplane::affinity_table affinity_;
    std::unique_ptr<std::atomic<uint32_t>[]> task_active_ {
        new std::atomic<uint32_t>[dataplane::task_id_capacity] {}
    };
    std::unique_ptr<dataplane::scheduler_cursor[]> cursors_{
        new dataplane::scheduler_cursor[dataplane::service_id_capacity]{}};
    std::unique_ptr<control_api> api_;

    stats_state stats_;
    control_requests requests_;
    std::shared_ptr<gateway_collector> collector_ = std::make_shared<gateway_collector>(stats_);
    std::unique_ptr<metrics_endpoint> endpoint_;
    std::unique_ptr<metrics_endpoint> next_endpoint_;   // prepared by a reload, not yet committed
    std::vector<std::pair<size_t, uint16_t>> mtu_undo_; // (port, MTU before) of a prepared reload
    std::unique_ptr<file_watch> watch_;
    config::gateway_config file_config_;        // the file's part of what runs
    std::unique_ptr<swarm_sync> swarm_;         // while [swarm] is set
    std::optional<swarm::state> swarm_state_;   // the swarm's part of what runs
    std::optional<swarm::state> refused_swarm_; // tried again after the next good reload
    std::vector<std::string> swarm_notes_;      // logged when they change
    std::string last_attempt_;                  // the file's content at the last reload, ok or not
    bool pdump_ = false;

    std::vector<dataplane::task_counters> rate_last_;
    steady::time_point rate_at_ = steady::now();
};

gateway_runtime gateway::runtime()
{
    gateway_runtime r;
    r.ports = ports_;
    r.publish = [this](const dataplane::dataplane_tables *t) {
        shared_.tables.store(t, std::memory_order_release);
        // Every worker passes a quiescent point before the caller frees the old tables.
        rte_rcu_qsbr_synchronize(shared_.qsbr, RTE_QSBR_THRID_INVALID);
    };
    r.synchronize = [this] { rte_rcu_qsbr_synchronize(shared_.qsbr, RTE_QSBR_THRID_INVALID); };
    r.active = [this](uint16_t id) { return task_active_[id].load(std::memory_order_relaxed); };
    r.prepare_settings = [this](const config::gateway_config *old,
                                const config::gateway_config &next) {
        return prepare_settings(old, next);
    };
    r.commit_settings =
        [this](const config::gateway_config *old, const config::gateway_config &next,
               const dataplane::dataplane_tables &tables) { commit_settings(old, next, tables); };
    r.abort_settings = [this] { abort_settings(); };
    r.clock = seconds_now;
    return r;
}

std::vector<config::config_error> gateway::prepare_settings(const config::gateway_config *old,
                                                            const config::gateway_config &next)
{
    std::vector<config::config_error> errors;
    if ((old == nullptr || old->stats.listen != next.stats.listen) && !next.stats.listen.empty()) {
        try {
            next_endpoint_ = std::make_unique<metrics_endpoint>(next.stats.listen, collector_);
        } catch (const std::exception &e) {
            errors.push_back(config::config_error{next.file, next.stats.listen_at.line,
                                                  next.stats.listen_at.column, e.what()});
            return errors;
        }
    }
    if (old == nullptr) return errors; // open_ports() set the MTUs
    for (size_t i = 0; i < next.ports.size(); ++i) {
        if (old->ports[i].mtu == next.ports[i].mtu) continue;
        mtu_result r = set_port_mtu(ports_[i], next.ports[i].mtu);
        if (!r.ok) {
            errors.push_back(
                config::config_error{next.file, next.ports[i].at.line, next.ports[i].at.column,
                                     "port " + next.ports[i].name + ": the driver refuses MTU " +
                                         std::to_string(next.ports[i].mtu) + " while running (" +
                                         r.note + "): a restart is needed to change it"});
            abort_settings();
            return errors;
        }
        if (!r.note.empty())
            spdlog::warn("port {}: MTU {} is used by the data path, the device keeps its own ({})",
                         next.ports[i].name, next.ports[i].mtu, r.note);
        mtu_undo_.emplace_back(i, old->ports[i].mtu);
    }
    return errors;
}

void gateway::commit_settings(const config::gateway_config *old, const config::gateway_config &next,
                              const dataplane::dataplane_tables &tables)
{
    mtu_undo_.clear();
    if (old == nullptr || old->stats.listen != next.stats.listen) {
        endpoint_ = std::move(next_endpoint_); // the old one stops listening here
        if (endpoint_) spdlog::info("serving metrics on http://{}/metrics", endpoint_->listen());
    }
    connections_->set_timeouts(next.timeouts);
    if (old != nullptr && old->log.level != next.log.level)
        spdlog::set_level(spdlog::level::from_str(next.log.level));
    install_static_neighbors(next, old, tables, *neighbors_);
    if (old == nullptr || old->reload.watch != next.reload.watch ||
        old->reload.debounce_ms != next.reload.debounce_ms) {
        watch_.reset();
        if (next.reload.watch)
            watch_ = std::make_unique<file_watch>(
                next.file, std::chrono::milliseconds(next.reload.debounce_ms));
    }
    if (old == nullptr || old->swarm != next.swarm) {
        swarm_.reset(); // a new endpoint or network: what the old one said goes with it
        swarm_state_.reset();
        refused_swarm_.reset();
        stats_.set_swarm(std::nullopt);
        if (next.swarm) {
            spdlog::info("following the swarm at {}, network '{}'", next.swarm->endpoint,
                         next.swarm->network);
            swarm_ = std::make_unique<swarm_sync>(*next.swarm);
        }
    }
}

void gateway::abort_settings()
{
    next_endpoint_.reset();
    for (auto [port, mtu] : mtu_undo_)
        set_port_mtu(ports_[port], mtu);
    mtu_undo_.clear();
}

void gateway::start()
{
    const uint16_t worker_count = meshgate::worker_count(initial_);
    spdlog::info("DPDK memory for this configuration: {} MiB (memory_mb {})",
                 (dpdk_memory_needed(initial_) + (1u << 20) - 1) >> 20,
                 initial_.dpdk.memory_mb ? std::to_string(*initial_.dpdk.memory_mb) : "unset");
    std::vector<int> worker_sockets;
    for (uint16_t i = 0; i < worker_count; ++i)
        worker_sockets.push_back(
            static_cast<int>(rte_lcore_to_socket_id(initial_.dpdk.lcore_ids[i + 1])));
    const std::vector<int> sockets_of_ports = port_sockets(initial_);
    const queue_plan plan = plan_queues(sockets_of_ports, worker_sockets);
    pools_ = create_packet_pools(initial_, plan, sockets_of_ports);
    ports_ = open_ports(initial_, plan, sockets_of_ports, worker_count, pools_);
    if (initial_.dpdk.no_huge) {
        spdlog::info("live capture (dpdk-dumpcap) needs hugepages: off with no_huge");
    } else if (rte_pdump_init() == 0) {
        pdump_ = true;
    } else {
        spdlog::warn("live capture unavailable: rte_pdump_init: {}", rte_strerror(rte_errno));
    }

    size_t qsbr_size = rte_rcu_qsbr_get_memsize(worker_count);
    shared_.qsbr =
        static_cast<rte_rcu_qsbr *>(rte_zmalloc("meshgate_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE));
    if (shared_.qsbr == nullptr || rte_rcu_qsbr_init(shared_.qsbr, worker_count) != 0)
        throw std::runtime_error("RCU state for " + std::to_string(worker_count) + " workers");
    neighbors_ = std::make_unique<dataplane::neighbor_table>(rte_get_tsc_hz());
    shared_.neighbors = neighbors_.get();
    shared_.indirect_pool = rte_pktmbuf_pool_create("meshgate_indirect", indirect_pool_size, 256, 0,
                                                    0, static_cast<int>(rte_socket_id()));
    if (shared_.indirect_pool == nullptr) throw std::runtime_error("indirect packet pool");
    connections_ = dataplane::connection_table::create(
        connection_params(initial_, worker_count, shared_.qsbr));
    shared_.connections = connections_.get();
    shared_.affinity = &affinity_;
    shared_.task_active = task_active_.get();
    shared_.cursors = cursors_.get();
    shared_.start_tsc = rte_rdtsc();

    const uint64_t hz = rte_get_tsc_hz();
    for (uint16_t i = 0; i < worker_count; ++i) {
        worker_ptr w = new_worker(worker_sockets[i]);
        w->id = i;
        w->lcore = initial_.dpdk.lcore_ids[i + 1];
        w->shared = &shared_;
        w->pool = pools_.on(worker_sockets[i]);
        w->tsc_hz = hz;
        w->arp_interval = hz;                   // one request per second per next hop, as Linux
        w->arp_wait = 3 * hz;                   // Linux gives up after 3 unanswered probes
        constexpr uint32_t bucket_entries = 16; // as DPDK's ip_reassembly example
        w->reassembly = rte_ip_frag_table_create(
            dataplane::reassembly_datagrams, bucket_entries, dataplane::reassembly_datagrams,
            hz * dataplane::reassembly_timeout_ms / 1000, worker_sockets[i]);
        if (w->reassembly == nullptr)
            throw std::runtime_error("reassembly table for worker " + std::to_string(i));
        w->port_count = static_cast<uint16_t>(ports_.size());
        for (uint16_t p = 0; p < ports_.size(); ++p) {
            w->port_ids[p] = ports_[p].port_id;
            if (!ports_[p].multi_segs) w->single_segment_ports |= 1u << p;
            const std::vector<uint16_t> &rx = plan.rx_workers[p];
            if (auto q = std::find(rx.begin(), rx.end(), i); q != rx.end())
                w->rx[w->rx_count++] = {p, static_cast<uint16_t>(q - rx.begin())};
        }
        if (plan.crosses_sockets[i])
            spdlog::warn("worker {} on socket {} polls ports of another socket: no better lcore "
                         "for them (see [dpdk] lcores)",
                         i, worker_sockets[i]);
        stats_.counters.workers.push_back(&w->counters);
        workers_.push_back(std::move(w));
    }
    stats_.counters.task_active = task_active_.get();
    stats_.counters.connections = connections_.get();
    stats_.counters.neighbors = neighbors_.get();
    for (const auto &[socket, pool] : pools_.by_socket)
        stats_.counters.packet_pools.emplace_back(socket, pool);
    stats_.counters.start_tsc = shared_.start_tsc;
    stats_.counters.tsc_hz = hz;

    // The first tables go in before any worker runs.
    api_ = std::make_unique<control_api>(runtime());
    last_attempt_ = file_content(initial_.file);
    file_config_ = initial_;
    apply_result r = api_->start(initial_);
    if (!r.ok) {
        for (const config::config_error &e : r.errors)
            spdlog::error("{}", e.to_string());
        throw std::runtime_error("the configuration cannot run");
    }
    after_change();
    register_telemetry(stats_, requests_);

    for (auto &w : workers_) {
        if (int rc = rte_eal_remote_launch(dataplane::worker_main, w.get(), w->lcore); rc != 0)
            throw std::runtime_error("cannot launch worker on lcore " + std::to_string(w->lcore));
        spdlog::info("worker {} polling on lcore {} (cpu {}, socket {}): {}", w->id, w->lcore,
                     initial_.dpdk.lcore_cpus[w->id + 1u], rte_lcore_to_socket_id(w->lcore),
                     rx_list(*w, ports_));
    }
}

// The readers' view follows the API's state.
void gateway::after_change()
{
    std::shared_ptr<const gateway_view> before = stats_.view();
    stats_.set_view(build_view(*api_, ports_, before.get(), stats_.counters));
}

reload_reply gateway::reload(const char *trigger)
{
    const std::string &file = api_->config().file;
    spdlog::info("reloading {} ({})", file, trigger);
    const auto t0 = steady::now();
    last_attempt_ = file_content(file);
    config::load_result loaded = config::load(file, config::load_options{cpus_});
    const double parse_ms = ms_since(t0);
    apply_result r;
    if (loaded.config) {
        r = api_->apply(with_swarm(*loaded.config));
        if (r.ok) file_config_ = std::move(*loaded.config);
    } else {
        r.errors = std::move(loaded.errors);
    }

    reload_status status = stats_.reload();
    status.last_at =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    status.last_errors.clear();
    reload_reply reply{r.ok, api_->generation(), r.changes.summary(), {}};
    if (r.ok) {
        ++status.ok;
        status.last_result = "ok";
        status.last_changes = reply.changes;
        after_change();
        spdlog::info("configuration reloaded, generation {}: {}; parse {:.1f} ms, compile {:.1f} "
                     "ms, swap {:.1f} ms",
                     r.generation, reply.changes, parse_ms, r.compile_ms, r.swap_ms);
        // The file may have made room for what the swarm asked last.
        if (refused_swarm_ && swarm_) apply_swarm(*std::exchange(refused_swarm_, std::nullopt));
    } else {
        ++status.error;
        status.last_result = "error";
        for (const config::config_error &e : r.errors) {
            spdlog::error("{}", e.to_string());
            status.last_errors.push_back(e.to_string());
        }
        reply.errors = status.last_errors;
        spdlog::error("reload rejected, the running configuration stays (generation {})",
                      api_->generation());
    }
    stats_.set_reload(std::move(status));
    return reply;
}

config::gateway_config gateway::with_swarm(const config::gateway_config &file)
{
    if (!swarm_state_ || !swarm_ || !file.swarm || swarm_->settings() != *file.swarm) return file;
    swarm::merged m = swarm::with_swarm(file, *swarm_state_);
    if (m.notes != swarm_notes_)
        for (const std::string &note : m.notes)
            spdlog::warn("swarm: {}", note);
    swarm_notes_ = m.notes;
    return std::move(m.config);
}

void gateway::apply_swarm(swarm::state s)
{
    for (const std::string &left : s.left_out)
        if (!swarm_state_ || std::find(swarm_state_->left_out.begin(), swarm_state_->left_out.end(),
                                       left) == swarm_state_->left_out.end())
            spdlog::info("swarm: {}", left);
    std::optional<swarm::state> before = std::exchange(swarm_state_, std::move(s));
    apply_result r = api_->apply(with_swarm(file_config_));
    if (r.ok) {
        refused_swarm_.reset();
        after_change();
        if (!r.changes.empty())
            spdlog::info("swarm change applied, generation {}: {}; compile {:.1f} ms, swap {:.1f} "
                         "ms",
                         r.generation, r.changes.summary(), r.compile_ms, r.swap_ms);
        swarm_->applied(true, "");
        return;
    }
    refused_swarm_ = std::exchange(swarm_state_, std::move(before)); // the previous one runs
    for (const config::config_error &e : r.errors)
        spdlog::error("swarm: {}", e.to_string());
    spdlog::error("swarm change refused, the running configuration stays (generation {})",
                  api_->generation());
    swarm_->applied(false, r.errors.empty() ? "refused" : r.errors.front().to_string());
}

void gateway::update_rates()
{
    const auto now = steady::now();
    const double dt = std::chrono::duration<double>(now - rate_at_).count();
    if (dt < 1.0) return;
    std::vector<task_rate> rates(dataplane::task_id_capacity);
    rate_last_.resize(dataplane::task_id_capacity);
    for (const auto &[key, rec] : api_->ids().tasks()) {
        const dataplane::task_counters c = sum_task(stats_.counters, rec.id);
        const dataplane::task_counters &p = rate_last_[rec.id];
        rates[rec.id] = task_rate{
            double(c.connections - p.connections) / dt, double(c.packets_in - p.packets_in) / dt,
            double(c.packets_out - p.packets_out) / dt, double(c.bytes_in - p.bytes_in) / dt,
            double(c.bytes_out - p.bytes_out) / dt};
        rate_last_[rec.id] = c;
    }
    stats_.set_rates(std::move(rates));
    rate_at_ = now;
}

// A link that went down or came back is logged once; the workers keep polling through it (a
// down port sends nothing, tx_full counts what its queue could not take).
void gateway::watch_links()
{
    links_up_.resize(ports_.size(), -1);
    for (size_t i = 0; i < ports_.size(); ++i) {
        rte_eth_link link{};
        if (rte_eth_link_get_nowait(ports_[i].port_id, &link) != 0) continue;
        const int up = link.link_status == RTE_ETH_LINK_UP;
        if (up == links_up_[i]) continue;
        if (links_up_[i] != -1) {
            char text[RTE_ETH_LINK_MAX_STR_LEN];
            rte_eth_link_to_str(text, sizeof text, &link);
            if (up)
                spdlog::info("port {}: {}", ports_[i].name, text);
            else
                spdlog::warn("port {}: {}", ports_[i].name, text);
        }
        links_up_[i] = up;
    }
}

void gateway::control_loop()
{
    while (!signals_.stop.load()) {
        std::this_thread::sleep_for(loop_period);
        // Nothing that goes wrong in one pass may end the loop: each step logs and goes on.
        try {
            if (signals_.reload.exchange(false)) reload("SIGHUP");
            requests_.serve([this] { return reload("control request"); });
            if (watch_ && watch_->poll(steady::now())) {
                if (file_content(api_->config().file) != last_attempt_) reload("file changed");
            }
            if (swarm_) {
                if (std::optional<swarm::state> s = swarm_->take()) apply_swarm(std::move(*s));
                if (swarm_) stats_.set_swarm(swarm_->status());
            }
            if (api_->tick()) after_change();
            update_rates();
            watch_links();
        } catch (const std::exception &e) {
            spdlog::error("control loop: {}", e.what());
        }
    }
}

void gateway::stop()
{
    requests_.close(reload_reply{false, 0, "", {"the gateway is stopping"}});
    unregister_telemetry();
    swarm_.reset();
    shared_.stop.store(true);
    rte_eal_mp_wait_lcore();
    endpoint_.reset();
    if (pdump_) rte_pdump_uninit();
    close_ports(ports_);
}

gateway::~gateway()
{
    api_.reset(); // the tables
    connections_.reset();
    rte_free(shared_.qsbr);
    workers_.clear();
    for (const auto &[socket, pool] : pools_.by_socket)
        rte_mempool_free(pool);
    if (shared_.indirect_pool != nullptr) rte_mempool_free(shared_.indirect_pool);
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
    if (stats_.view()) spdlog::info("final counters:\n{}", render_text(*collector_));
    return status;
}

// EAL pins the control thread to the first lcore's CPU, and the threads it starts (TBB's,
// which build the schedulers on reload) would inherit that one CPU: give it back every CPU
// that no worker polls on.
void widen_control_thread(const std::vector<unsigned> &cpus,
                          const std::vector<unsigned> &lcore_cpus)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    std::string list;
    for (unsigned cpu : cpus)
        if (std::find(lcore_cpus.begin() + 1, lcore_cpus.end(), cpu) == lcore_cpus.end()) {
            CPU_SET(cpu, &set);
            list += (list.empty() ? "" : ",") + std::to_string(cpu);
        }
    if (list.empty() || pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) return;
    spdlog::info("control thread and its helpers on CPU(s) {}", list);
}

} // namespace

int run_gateway(config::gateway_config initial, control_signals &signals)
{
    std::vector<unsigned> cpus = config::available_cpus(); // before EAL pins this thread
    if (!eal_init(initial)) return 1;
    widen_control_thread(cpus, initial.dpdk.lcore_cpus);
    int status = 0;
    {
        gateway g(std::move(initial), std::move(cpus), signals);
        status = g.run();
    }
    rte_eal_cleanup();
    return status;
}

} // namespace meshgate
