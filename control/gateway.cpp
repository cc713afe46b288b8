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
#include "control/cluster/group.h"
#include "control/config/lcores.h"
#include "control/config/memory.h"
#include "control/kernel/addresses.h"
#include "control/kernel/announce.h"
#include "control/kernel/arp.h"
#include "control/kernel/interfaces.h"
#include "control/observe/metrics.h"
#include "control/observe/stats_view.h"
#include "control/observe/telemetry.h"
#include "control/runtime/data_path.h"
#include "control/runtime/eal.h"
#include "control/runtime/file_watch.h"
#include "control/runtime/ports.h"
#include "control/swarm/state.h"
#include "control/swarm/sync.h"
#include "dataplane/sync.h"
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

std::string file_content(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string rx_list(const dataplane::worker &w, const std::vector<opened_port> &ports)
{
    std::string text;
    for (uint16_t i = 0; i < w.rx_count; ++i)
        text += (text.empty() ? "" : ", ") + ports[w.rx[i].port].name + " queue " +
                std::to_string(w.rx[i].queue);
    return text.empty() ? "nothing" : text;
}

// The packet pools, freed when the gateway goes (after the ports and workers that use them).
struct owned_pools {
    packet_pools pools;
    ~owned_pools()
    {
        for (const auto &[socket, pool] : pools.by_socket)
            rte_mempool_free(pool);
    }
};

// The opened ports and their kernel interfaces, stopped and closed once: by stop() (drivers
// flush what they hold: net_pcap completes its file), else when the gateway goes.
struct owned_ports {
    std::vector<opened_port> ports;
    std::vector<kernel_interface> kernels;
    void close()
    {
        close_kernel_interfaces(kernels); // their addresses, announced or not, go with them
        kernels.clear();
        close_ports(ports);
        ports.clear();
    }
    ~owned_ports() { close(); }
};

// The workers' rings of the cluster's sync (dataplane/sync.h), one pair per worker; freed after
// the workers stopped.
struct sync_rings {
    std::vector<rte_ring *> events, installs;

    void create(std::span<dataplane::worker *const> workers)
    {
        static std::atomic<uint32_t> seq{0};
        auto make = [](const char *what, uint32_t slots, size_t element, int socket) {
            char name[RTE_RING_NAMESIZE];
            std::snprintf(name, sizeof name, "%s%u", what, seq.fetch_add(1));
            rte_ring *r = rte_ring_create_elem(name, static_cast<unsigned>(element), slots, socket,
                                               RING_F_SP_ENQ | RING_F_SC_DEQ);
            if (r == nullptr)
                throw std::runtime_error(std::string("cluster: rte_ring_create_elem: ") +
                                         rte_strerror(rte_errno));
            return r;
        };
        for (dataplane::worker *w : workers) {
            const int socket = static_cast<int>(rte_lcore_to_socket_id(w->lcore));
            events.push_back(make("sync_ev", dataplane::sync_event_slots,
                                  sizeof(dataplane::sync_event), socket));
            installs.push_back(make("sync_in", dataplane::sync_install_slots,
                                    sizeof(dataplane::synced_connection), socket));
            w->sync_events = events.back();
            w->sync_installs = installs.back();
        }
    }
    ~sync_rings()
    {
        for (rte_ring *r : events)
            rte_ring_free(r);
        for (rte_ring *r : installs)
            rte_ring_free(r);
    }
};

// Live capture (dpdk-dumpcap) while the ports run.
struct capture_server {
    bool on = false;
    void stop()
    {
        if (on) rte_pdump_uninit();
        on = false;
    }
    ~capture_server() { stop(); }
};

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
    // The file's configuration with the swarm's last state while the file has [swarm] (a changed
    // [swarm] keeps the old sync's state until the new sync has read the swarm).
    config::gateway_config with_swarm(const config::gateway_config &file);
    void apply_swarm(swarm::state s);
    void after_change();
    void update_rates();
    // Drain and announcement (control/kernel/announce.h).
    void announce();
    void take_drain_order(const drain_order &order);
    void follow_drain();
    void publish_drain();
    // SIGTERM: true once the gateway may stop (its addresses withdrawn stop_delay_ms ago).
    bool may_stop();
    // [cluster]: this gateway as a member of its group (control/cluster/group.h).
    void join_cluster();
    void follow_cluster();
    void stop();

    gateway_runtime runtime();
    std::vector<config::config_error> prepare_settings(const config::gateway_config *old,
                                                       const config::gateway_config &next);
    void commit_settings(const config::gateway_config *old, const config::gateway_config &next);
    void abort_settings();
    void watch_links();

    config::gateway_config initial_;
    // Taken before EAL pins this thread to one core: what [dpdk] lcores may name on reload.
    std::vector<unsigned> cpus_;
    control_signals &signals_;

    // What runs, in the order start() makes it. stop() stops what runs (the destructor calls it
    // first); then the members go in reverse order: nothing goes before what uses it.
    owned_pools pools_;
    owned_ports ports_;
    capture_server capture_;
    std::unique_ptr<announcer> announcer_;
    std::unique_ptr<data_path> data_path_;
    sync_rings sync_rings_;
    std::unique_ptr<control_api> api_;
    std::unique_ptr<arp_prober> prober_;
    std::unique_ptr<cluster::group> group_;
    bool group_ready_ = false;
    std::vector<std::string> service_names_; // by service id, for the cluster's records
    stats_state stats_;
    control_requests requests_;
    std::shared_ptr<gateway_collector> collector_ = std::make_shared<gateway_collector>(stats_);
    std::unique_ptr<metrics_endpoint> endpoint_;
    std::unique_ptr<metrics_endpoint> next_endpoint_;   // prepared by a reload, not yet committed
    std::vector<std::pair<size_t, uint16_t>> mtu_undo_; // (port, MTU before) of a prepared reload
    std::unique_ptr<file_watch> watch_;
    std::unique_ptr<swarm_sync> swarm_; // while [swarm] is set

    std::vector<int> links_up_;          // last link state seen per port: 1 up, 0 down, -1 not yet
    config::gateway_config file_config_; // the file's part of what runs
    std::optional<swarm::state> swarm_state_; // the swarm's part of what runs
    std::vector<std::string> swarm_refusal_;  // the last refusal's errors: logged once
    std::vector<std::string> swarm_notes_;    // logged when they change
    std::string last_attempt_;                // the file's content at the last reload, ok or not

    rate_samples rate_samples_; // what update_rates() saw last
    steady::time_point rate_at_ = steady::now();

    struct drain_run {
        bool on = false;
        steady::time_point started{};
        std::optional<steady::time_point> deadline;
        bool stop = false;
        bool ended = false;
        bool carried = false; // it ended with connections the group's peers carry
        uint64_t established = 0, left = 0;
        steady::time_point looked{}; // never
    };
    drain_run drain_;
    std::optional<steady::time_point> stop_at_; // SIGTERM: addresses withdrawn, stop then
    steady::time_point retried_at_ = steady::now();
};

gateway_runtime gateway::runtime()
{
    gateway_runtime r = data_path_runtime(*data_path_, ports_.ports);
    r.prepare_settings = [this](const config::gateway_config *old,
                                const config::gateway_config &next) {
        return prepare_settings(old, next);
    };
    r.commit_settings = [this, data_path_settings = r.commit_settings](
                            const config::gateway_config *old, const config::gateway_config &next) {
        data_path_settings(old, next);
        commit_settings(old, next);
    };
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
        mtu_result r = set_port_mtu(ports_.ports[i], next.ports[i].mtu);
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

void gateway::commit_settings(const config::gateway_config *old, const config::gateway_config &next)
{
    mtu_undo_.clear();
    if (old == nullptr || old->stats.listen != next.stats.listen) {
        endpoint_ = std::move(next_endpoint_); // the old one stops listening here
        if (endpoint_) spdlog::info("serving metrics on http://{}/metrics", endpoint_->listen());
    }
    if (old != nullptr && old->log.level != next.log.level)
        spdlog::set_level(spdlog::level::from_str(next.log.level));
    if (old == nullptr || old->reload.watch != next.reload.watch ||
        old->reload.debounce_ms != next.reload.debounce_ms) {
        watch_.reset();
        if (next.reload.watch)
            watch_ = std::make_unique<file_watch>(
                next.file, std::chrono::milliseconds(next.reload.debounce_ms));
    }
    if (old == nullptr || old->swarm != next.swarm) {
        // A new sync. What the old one read stays in force until the new one has read the swarm
        // (its first state replaces it): new settings are no reason to stop serving the swarm.
        swarm_.reset();
        swarm_refusal_.clear();
        if (!next.swarm) {
            swarm_state_.reset();
            stats_.set_swarm(std::nullopt);
        } else {
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
        set_port_mtu(ports_.ports[port], mtu);
    mtu_undo_.clear();
}

void gateway::start()
{
    spdlog::info("DPDK memory for this configuration: {} MiB (memory_mb {})",
                 (dpdk_memory_needed(initial_) + (1u << 20) - 1) >> 20,
                 initial_.dpdk.memory_mb ? std::to_string(*initial_.dpdk.memory_mb) : "unset");
    const std::vector<worker_place> places = worker_places(initial_);
    std::vector<int> worker_sockets;
    for (const worker_place &p : places)
        worker_sockets.push_back(p.socket);
    const std::vector<int> sockets_of_ports = port_sockets(initial_);
    const queue_plan plan = plan_queues(sockets_of_ports, worker_sockets);
    pools_.pools = create_packet_pools(initial_, plan, sockets_of_ports);
    ports_.ports = open_ports(initial_, plan, sockets_of_ports,
                              static_cast<uint16_t>(places.size()), pools_.pools);
    ports_.kernels = open_kernel_interfaces(initial_, ports_.ports,
                                            static_cast<uint16_t>(places.size()), pools_.pools);
    announcer_ = std::make_unique<announcer>(ports_.kernels);
    if (initial_.dpdk.no_huge) {
        spdlog::info("live capture (dpdk-dumpcap) needs hugepages: off with no_huge");
    } else if (rte_pdump_init() == 0) {
        capture_.on = true;
    } else {
        spdlog::warn("live capture unavailable: rte_pdump_init: {}", rte_strerror(rte_errno));
    }
    data_path_ = std::make_unique<data_path>(initial_, ports_.ports, plan, pools_.pools, places);
    for (dataplane::worker *w : data_path_->workers()) {
        if (plan.crosses_sockets[w->id])
            spdlog::warn("worker {} on socket {} polls ports of another socket: no better lcore "
                         "for them (see [dpdk] lcores)",
                         w->id, worker_sockets[w->id]);
        stats_.counters.workers.push_back(&w->counters);
    }
    stats_.counters.task_active = data_path_->task_active();
    stats_.counters.connections = &data_path_->connections();
    stats_.counters.neighbors = &data_path_->neighbors();
    for (const auto &[socket, pool] : pools_.pools.by_socket)
        stats_.counters.packet_pools.emplace_back(socket, pool);
    stats_.counters.start_tsc = data_path_->shared().start_tsc;
    stats_.counters.tsc_hz = data_path_->tsc_hz();

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

    if (initial_.cluster) join_cluster();
    data_path_->launch();
    for (const dataplane::worker *w : data_path_->workers())
        spdlog::info("worker {} polling on lcore {} (cpu {}, socket {}): {}", w->id, w->lcore,
                     initial_.dpdk.lcore_cpus[w->id + 1u], rte_lcore_to_socket_id(w->lcore),
                     rx_list(*w, ports_.ports));
}

// The readers' view and the announced addresses follow the API's state.
void gateway::after_change()
{
    service_names_.assign(dataplane::service_id_capacity, std::string());
    for (const auto &[name, record] : api_->ids().services())
        service_names_[record.id] = name;
    stats_.set_view(build_view(*api_, ports_.ports));
    announce();
}

void gateway::announce()
{
    // A gateway that joins its group announces once it has the group's connections.
    const bool joining = group_ && !group_ready_;
    announcer_->set(routed_addresses(api_->config()), drain_.on || stop_at_ || joining);
    if (group_) group_->set_draining(drain_.on);
    publish_drain();
}

void gateway::join_cluster()
{
    const config::gateway_config &c = initial_;
    const config::port *port = config::cluster_port(c);
    const size_t port_index = static_cast<size_t>(port - c.ports.data());
    auto kernel =
        std::find_if(ports_.kernels.begin(), ports_.kernels.end(),
                     [&](const kernel_interface &k) { return k.port_index == port_index; });
    if (kernel == ports_.kernels.end())
        throw std::runtime_error("cluster: port " + port->name + " has no kernel interface");
    cluster::identity self;
    self.underlay = network_order(port->address.address);
    self.overlay_mac = c.overlay.mac.bytes;
    self.snat_addresses.push_back(network_order(c.overlay.address.address));
    for (ipv4_address a : c.overlay.snat_addresses)
        self.snat_addresses.push_back(network_order(a));
    sync_rings_.create(data_path_->workers());
    std::array<uint8_t, 6> port_mac{};
    std::copy(std::begin(ports_.ports[port_index].mac.addr_bytes),
              std::end(ports_.ports[port_index].mac.addr_bytes), port_mac.begin());
    const int ifindex = kernel->ifindex;
    self.underlay_mac = port_mac;
    cluster::group_hooks hooks;
    hooks.resolve = [this](const std::string &service,
                           uint32_t task_ip) -> std::optional<std::pair<uint16_t, uint16_t>> {
        const task_record *t = api_->ids().task(task_key{service, ipv4_address{ntohl(task_ip)}});
        const service_record *s = api_->ids().service(service);
        if (t == nullptr || s == nullptr) return std::nullopt;
        return std::pair{s->id, t->id};
    };
    hooks.service_name = [this](uint16_t id) {
        return id < service_names_.size() ? service_names_[id] : std::string();
    };
    hooks.adopt = [this](std::vector<dataplane::adopted_gateway> adopted) {
        api_->adopt(std::move(adopted));
    };
    // Until it has the group's connections, only its peers learn where its address is.
    std::vector<uint32_t> peers;
    for (const config::cluster_peer &p : c.cluster->peers)
        peers.push_back(network_order(p.address));
    api_->set_joining(std::move(peers), static_cast<uint16_t>(port_index));
    hooks.joined = [this] { api_->set_joining({}, 0); };
    hooks.learn_peer = [ifindex](uint32_t address, const std::array<uint8_t, 6> &mac) {
        std::string e;
        try {
            e = kernel_addresses().set_neighbor(ifindex, address, mac);
        } catch (const std::runtime_error &x) {
            e = x.what();
        }
        if (!e.empty()) spdlog::warn("cluster: the peer's neighbor entry not set: {}", e);
    };
    hooks.announce_address = [ifindex, port_mac](uint32_t address) {
        if (!send_gratuitous_arp(ifindex, port_mac, address))
            spdlog::warn("cluster: gratuitous ARP not sent: {}", strerror(errno));
    };
    prober_ = std::make_unique<arp_prober>(ifindex, port_mac, self.underlay);
    hooks.probe = [this](uint32_t address) { prober_->ask(address); };
    hooks.probe_answers = [this] { return prober_->answers(); };
    group_ = std::make_unique<cluster::group>(
        *c.cluster, std::move(self), data_path_->connections(), sync_rings_.events,
        sync_rings_.installs, data_path_->shared().start_tsc, std::move(hooks));
    announce(); // withdrawn while joining
}

void gateway::follow_cluster()
{
    if (!group_) return;
    group_->tick();
    if (group_->ready() != group_ready_) {
        group_ready_ = group_->ready();
        announce();
    }
    stats_.set_cluster(group_->status());
}

void gateway::take_drain_order(const drain_order &order)
{
    if (order.cancel) {
        if (!drain_.on) return;
        drain_ = {};
        spdlog::info("drain cancelled: announcing again");
    } else {
        drain_ = {};
        drain_.on = true;
        drain_.started = steady::now();
        drain_.stop = order.stop;
        if (order.deadline_s > 0)
            drain_.deadline = steady::now() + std::chrono::duration_cast<steady::duration>(
                                                  std::chrono::duration<double>(order.deadline_s));
        spdlog::info("draining: addresses withdrawn, serving what still arrives{}{}",
                     order.deadline_s > 0 ? fmt::format(" for at most {} s", order.deadline_s) : "",
                     order.stop ? ", then stopping" : "");
    }
    announce();
    follow_drain();
}

// Once a second while draining: how many connections are still established; at none (once the
// routers had stop_delay_ms to move away: new connections may arrive until then), or at the
// deadline, the drain has ended (and the gateway stops if asked).
void gateway::follow_drain()
{
    const auto now = steady::now();
    if (!drain_.on || drain_.ended || now - drain_.looked < std::chrono::seconds(1)) return;
    drain_.looked = now;
    drain_.established = scan_states(data_path_->connections()).total_active();
    const bool routers_moved =
        now - drain_.started >= std::chrono::milliseconds(api_->config().drain.stop_delay_ms);
    // In a group, the peers carry what is still established once they have all of it.
    const bool carried = group_ && group_->shared_all_since(drain_.started);
    if (((drain_.established == 0 || carried) && routers_moved) ||
        (drain_.deadline && now >= *drain_.deadline)) {
        drain_.ended = true;
        drain_.left = drain_.established;
        drain_.carried = carried && drain_.left != 0;
        spdlog::info("drain ended: {} established connection(s) left{}{}", drain_.left,
                     drain_.carried ? ", carried by the group's peers" : "",
                     drain_.stop ? "; stopping" : "");
        if (drain_.stop) signals_.stop.store(true);
    }
    publish_drain();
}

void gateway::publish_drain()
{
    drain_status d;
    d.draining = drain_.on;
    d.ended = drain_.ended;
    d.stop = drain_.stop;
    d.established = drain_.established;
    d.left = drain_.left;
    d.carried = drain_.carried;
    if (drain_.deadline)
        d.deadline_left =
            std::max(0.0, std::chrono::duration<double>(*drain_.deadline - steady::now()).count());
    for (const announcement &a : announcer_->state())
        d.addresses.push_back({to_string(a.address), a.wanted, a.announced, a.error});
    stats_.set_drain(std::move(d));
}

bool gateway::may_stop()
{
    if (!stop_at_) {
        const bool withdrawn = announcer_->withdraw_all();
        publish_drain();
        const uint32_t delay = api_->config().drain.stop_delay_ms;
        if (withdrawn && delay != 0)
            spdlog::info(
                "stopping: addresses withdrawn, serving {} ms more while the routers move away",
                delay);
        stop_at_ = steady::now() + std::chrono::milliseconds(withdrawn ? delay : 0);
    }
    if (steady::now() < *stop_at_) return false;
    if (!group_ || group_->status().state == cluster::member_state::leaving) return true;
    // The peers take our addresses now, not in dead_after_ms; one more loop pass lets the
    // workers send the word out of the port (they read the kernel interface every ms).
    group_->leave();
    return false;
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
    if (!swarm_state_ || !file.swarm) return file;
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
        swarm_refusal_.clear();
        after_change();
        if (!r.changes.empty())
            spdlog::info("swarm change applied, generation {}: {}; compile {:.1f} ms, swap {:.1f} "
                         "ms",
                         r.generation, r.changes.summary(), r.compile_ms, r.swap_ms);
        swarm_->applied(true, "");
        return;
    }
    swarm_state_ = std::move(before); // the previous one runs
    // The sync offers a refused state again at every poll: say why once, until it changes.
    std::vector<std::string> refusal;
    for (const config::config_error &e : r.errors)
        refusal.push_back(e.to_string());
    const auto level = refusal == swarm_refusal_ ? spdlog::level::debug : spdlog::level::err;
    for (const std::string &e : refusal)
        spdlog::log(level, "swarm: {}", e);
    spdlog::log(level,
                "swarm change refused, the running configuration stays (generation {}); "
                "offered again at the sync's next read",
                api_->generation());
    swarm_refusal_ = std::move(refusal);
    swarm_->applied(false, r.errors.empty() ? "refused" : r.errors.front().to_string());
}

void gateway::update_rates()
{
    const auto now = steady::now();
    const double dt = std::chrono::duration<double>(now - rate_at_).count();
    if (dt < 1.0) return;
    stats_.set_rates(task_rates(api_->ids(), stats_.counters, dt, rate_samples_));
    rate_at_ = now;
}

// A link that went down or came back is logged once; the workers keep polling through it (a
// down port sends nothing, tx_full counts what its queue could not take).
void gateway::watch_links()
{
    links_up_.resize(ports_.ports.size(), -1);
    for (size_t i = 0; i < ports_.ports.size(); ++i) {
        rte_eth_link link{};
        if (rte_eth_link_get_nowait(ports_.ports[i].port_id, &link) != 0) continue;
        const int up = link.link_status == RTE_ETH_LINK_UP;
        if (up == links_up_[i]) continue;
        if (links_up_[i] != -1) {
            char text[RTE_ETH_LINK_MAX_STR_LEN];
            rte_eth_link_to_str(text, sizeof text, &link);
            if (up)
                spdlog::info("port {}: {}", ports_.ports[i].name, text);
            else
                spdlog::warn("port {}: {}", ports_.ports[i].name, text);
        }
        links_up_[i] = up;
    }
}

void gateway::control_loop()
{
    for (;;) {
        std::this_thread::sleep_for(loop_period);
        // Nothing that goes wrong in one pass may end the loop: each step logs and goes on.
        try {
            if (signals_.stop.load() && may_stop()) return;
            if (std::optional<drain_order> order = requests_.take_drain_order())
                take_drain_order(*order);
            follow_drain();
            if (steady::now() - retried_at_ > std::chrono::seconds(1)) {
                announcer_->retry();
                retried_at_ = steady::now();
            }
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
            follow_cluster();
            update_rates();
            watch_links();
        } catch (const std::exception &e) {
            spdlog::error("control loop: {}", e.what());
            if (signals_.stop.load()) return; // stopping must not hang on what failed
        }
    }
}

// Stops what runs, readers first: telemetry and waiting reload requests, the swarm sync, the
// workers (they drop what they hold), the metrics endpoint, live capture, then the ports
// (drivers flush what they hold: net_pcap completes its file). Idempotent.
void gateway::stop()
{
    requests_.close(reload_reply{false, 0, "", {"the gateway is stopping"}});
    unregister_telemetry();
    swarm_.reset();
    if (data_path_) data_path_->stop();
    group_.reset();
    endpoint_.reset();
    capture_.stop();
    ports_.close();
}

gateway::~gateway()
{
    stop();
}

int gateway::run()
{
    int status = 0;
    try {
        start();
        spdlog::info("meshgate running: {} port(s), {} worker(s)", ports_.ports.size(),
                     data_path_->workers().size());
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
