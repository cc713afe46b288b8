#include "control/observe/metrics.h"

#include "control/base/edge.h"
#include <algorithm>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <prometheus/exposer.h>
#include <prometheus/text_serializer.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>

namespace meshgate
{

namespace
{

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Threads serving scrapes: a few slow or stuck clients cannot take them all.
constexpr const char *exposer_threads = "8";
// A request must arrive, and its answer be taken, within this: then the thread is free again.
constexpr const char *exposer_timeout_ms = "5000";

// Appends one family to OUT and its samples to it (by index: later families move the vector).
class family_builder
{
  public:
    family_builder(std::vector<MetricFamily> &out, std::string name, std::string help,
                   MetricType type)
        : out_(out), index_(out.size())
    {
        out.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
    }
    void add(std::vector<ClientMetric::Label> labels, double value)
    {
        MetricFamily &family = out_[index_];
        ClientMetric m;
        m.label = std::move(labels);
        if (family.type == MetricType::Counter)
            m.counter.value = value;
        else
            m.gauge.value = value;
        family.metric.push_back(std::move(m));
    }

  private:
    std::vector<MetricFamily> &out_;
    size_t index_;
};

void port_families(std::vector<MetricFamily> &out, const gateway_view &v,
                   const gateway_totals &totals)
{
    family_builder info(out, "meshgate_port_info", "A gateway port: its device, MAC and role.",
                        MetricType::Gauge);
    for (const port_view &p : v.ports)
        info.add({{"port", p.name}, {"device", p.device}, {"mac", p.mac}, {"role", p.role}}, 1);
    family_builder link(out, "meshgate_port_link_up", "1 while a port's link is up.",
                        MetricType::Gauge);
    for (const port_view &p : v.ports) {
        rte_eth_link l{};
        rte_eth_link_get_nowait(p.port_id, &l);
        link.add({{"port", p.name}}, l.link_status == RTE_ETH_LINK_UP ? 1 : 0);
    }

    // Packets and bytes share their labels: one loop writes both families.
    struct traffic {
        const char *name, *help;
        uint64_t dataplane::port_counters::*rx, dataplane::port_counters::*tx;
    };
    for (const traffic &f :
         {traffic{"meshgate_port_packets_total",
                  "Packets received (rx) or sent (tx) on a port by the workers.",
                  &dataplane::port_counters::rx_packets, &dataplane::port_counters::tx_packets},
          traffic{"meshgate_port_bytes_total",
                  "Bytes (Ethernet frames without FCS) received (rx) or sent (tx) on a port.",
                  &dataplane::port_counters::rx_bytes, &dataplane::port_counters::tx_bytes}}) {
        family_builder b(out, f.name, f.help, MetricType::Counter);
        for (size_t p = 0; p < v.ports.size(); ++p) {
            b.add({{"port", v.ports[p].name}, {"direction", "rx"}},
                  static_cast<double>(totals.ports[p].*f.rx));
            b.add({{"port", v.ports[p].name}, {"direction", "tx"}},
                  static_cast<double>(totals.ports[p].*f.tx));
        }
    }
}

// The exception path of the ports that have a kernel interface.
void kernel_families(std::vector<MetricFamily> &out, const gateway_view &v,
                     const gateway_totals &totals)
{
    if (std::all_of(v.ports.begin(), v.ports.end(),
                    [](const port_view &p) { return p.kernel_interface.empty(); }))
        return;
    family_builder packets(out, "meshgate_exception_packets_total",
                           "Frames handed to a port's kernel interface (to_kernel) and sent by the "
                           "kernel out of the port (from_kernel).",
                           MetricType::Counter);
    family_builder drops(out, "meshgate_exception_drops_total",
                         "Frames for a port's kernel interface dropped: over [limits] "
                         "kernel_packets_per_second or kernel_syns_per_second (rate), or its "
                         "queue full (full).",
                         MetricType::Counter);
    for (size_t p = 0; p < v.ports.size(); ++p) {
        if (v.ports[p].kernel_interface.empty()) continue;
        const std::string &name = v.ports[p].name;
        const dataplane::port_counters &c = totals.ports[p];
        packets.add({{"port", name}, {"direction", "to_kernel"}}, static_cast<double>(c.to_kernel));
        packets.add({{"port", name}, {"direction", "from_kernel"}},
                    static_cast<double>(c.from_kernel));
        drops.add({{"port", name}, {"reason", "rate"}}, static_cast<double>(c.kernel_rate_drops));
        drops.add({{"port", name}, {"reason", "full"}}, static_cast<double>(c.kernel_full_drops));
    }
}

void drain_families(std::vector<MetricFamily> &out, const drain_status &d)
{
    family_builder(out, "meshgate_draining",
                   "1 while the gateway drains (meshgatectl drain): its addresses withdrawn.",
                   MetricType::Gauge)
        .add({}, d.draining ? 1 : 0);
    family_builder announced(out, "meshgate_address_announced",
                             "1 while a routed service address is on the external kernel "
                             "interfaces, for the host's BGP daemon to announce.",
                             MetricType::Gauge);
    for (const address_status &a : d.addresses)
        announced.add({{"address", a.address}}, a.announced ? 1 : 0);
}

void cluster_families(std::vector<MetricFamily> &out, const cluster::group_status &c)
{
    family_builder up(out, "meshgate_cluster_peer_up",
                      "1 while a peer of the [cluster] is heard within dead_after_ms.",
                      MetricType::Gauge);
    family_builder adopted(out, "meshgate_cluster_peer_adopted",
                           "1 while this gateway serves a dead peer's addresses.",
                           MetricType::Gauge);
    family_builder conns(out, "meshgate_cluster_connections",
                         "Connections here by owner (this gateway, or a peer that synced them), "
                         "as of the last walk of the table.",
                         MetricType::Gauge);
    family_builder messages(out, "meshgate_cluster_messages_total",
                            "Sync messages (heartbeats, connections) to and from each peer.",
                            MetricType::Counter);
    family_builder records(out, "meshgate_cluster_records_total",
                           "Connection records to and from each peer.", MetricType::Counter);
    conns.add({{"owner", c.name}}, c.own_connections);
    for (const cluster::peer_status &p : c.peers) {
        up.add({{"peer", p.name}}, p.health == cluster::peer_health::alive ? 1 : 0);
        adopted.add({{"peer", p.name}}, p.adopted ? 1 : 0);
        conns.add({{"owner", p.name}}, p.connections);
        messages.add({{"peer", p.name}, {"direction", "in"}}, static_cast<double>(p.messages_in));
        messages.add({{"peer", p.name}, {"direction", "out"}}, static_cast<double>(p.messages_out));
        records.add({{"peer", p.name}, {"direction", "in"}}, static_cast<double>(p.records_in));
        records.add({{"peer", p.name}, {"direction", "out"}}, static_cast<double>(p.records_out));
    }
    family_builder(out, "meshgate_cluster_takeovers_total",
                   "Dead peers whose addresses this gateway took over.", MetricType::Counter)
        .add({}, static_cast<double>(c.takeovers));
    family_builder(out, "meshgate_cluster_last_takeover_seconds",
                   "From the last message of the dead peer to this gateway's gratuitous ARP.",
                   MetricType::Gauge)
        .add({}, c.last_takeover_ms / 1000);
    family_builder refused(out, "meshgate_cluster_refused_total",
                           "Sync datagrams and records refused, by reason.", MetricType::Counter);
    for (size_t e = 0; e < c.refused.size(); ++e)
        refused.add({{"reason", std::string(cluster::wire_error_names[e])}},
                    static_cast<double>(c.refused[e]));
    refused.add({{"reason", "source"}}, static_cast<double>(c.refused_source));
    refused.add({{"reason", "replay"}}, static_cast<double>(c.refused_replay));
    refused.add({{"reason", "unknown_task"}}, static_cast<double>(c.records_unknown));
    refused.add({{"reason", "install_queue_full"}}, static_cast<double>(c.installs_lost));
    refused.add({{"reason", "send_error"}}, static_cast<double>(c.send_errors));
}

void drop_and_event_families(std::vector<MetricFamily> &out, const gateway_totals &totals)
{
    family_builder drops(out, "meshgate_drops_total", "Packets dropped, by reason.",
                         MetricType::Counter);
    for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
        drops.add({{"reason", std::string(dataplane::drop_reason_names[r])}},
                  static_cast<double>(totals.drops[r]));
    for (size_t e = 0; e < dataplane::event_count; ++e) {
        family_builder b(out, "meshgate_" + std::string(dataplane::event_names[e]) + "_total",
                         std::string(dataplane::event_help[e]), MetricType::Counter);
        b.add({}, static_cast<double>(totals.events[e]));
    }
}

void config_families(std::vector<MetricFamily> &out, const gateway_view &v,
                     const reload_status &reloads)
{
    family_builder r(out, "meshgate_config_reloads_total",
                     "Configuration reloads (SIGHUP, file change, control CLI), by result.",
                     MetricType::Counter);
    r.add({{"result", "ok"}}, static_cast<double>(reloads.ok));
    r.add({{"result", "error"}}, static_cast<double>(reloads.error));
    family_builder g(out, "meshgate_config_generation",
                     "Configurations applied since start: 1 is the one it started with.",
                     MetricType::Gauge);
    g.add({}, static_cast<double>(v.generation));
}

void service_families(std::vector<MetricFamily> &out, const gateway_view &v,
                      const counter_sources &counters)
{
    family_builder created(out, "meshgate_connections_total", "Connections opened, by service.",
                           MetricType::Counter);
    for (const service_view &s : v.services)
        created.add({{"service", s.name}},
                    static_cast<double>(sum_service_connections(counters, s.id)));

    std::vector<dataplane::task_counters> traffic;
    for (const task_view &t : v.tasks)
        traffic.push_back(sum_task(counters, t.id));
    auto labels = [](const task_view &t) {
        return std::vector<ClientMetric::Label>{{"service", t.service},
                                                {"task", to_string(t.address)}};
    };
    family_builder service_info(out, "meshgate_service_info",
                                "A service, where it came from (file, api or swarm) and the PROXY "
                                "protocol header its tasks get (off, v1, v2).",
                                MetricType::Gauge);
    for (const service_view &s : v.services)
        service_info.add({{"service", s.name},
                          {"origin", std::string(name_of(s.from))},
                          {"proxy_protocol", s.proxy_protocol}},
                         1);
    family_builder task_info(out, "meshgate_task_info",
                             "A task: its node, state and where it came from.", MetricType::Gauge);
    for (const task_view &t : v.tasks) {
        auto l = labels(t);
        l.push_back({"node", t.node});
        l.push_back({"state", t.state});
        l.push_back({"origin", std::string(name_of(t.from))});
        task_info.add(std::move(l), 1);
    }
    family_builder active(out, "meshgate_active_connections", "Connections in the table, by task.",
                          MetricType::Gauge);
    family_builder weight(out, "meshgate_task_weight",
                          "A task's weight; 0 while it drains or after it was removed.",
                          MetricType::Gauge);
    for (const task_view &t : v.tasks) {
        active.add(labels(t), counters.task_active[t.id].load(std::memory_order_relaxed));
        weight.add(labels(t), t.state == "removed" ? 0 : t.weight);
    }
    struct traffic_family {
        const char *name, *help;
        uint64_t dataplane::task_counters::*in, dataplane::task_counters::*out;
    };
    for (const traffic_family &f :
         {traffic_family{"meshgate_backend_packets_total",
                         "Packets sent to a task (in) and received from it (out).",
                         &dataplane::task_counters::packets_in,
                         &dataplane::task_counters::packets_out},
          traffic_family{"meshgate_backend_bytes_total",
                         "IPv4 bytes sent to a task (in) and received from it (out).",
                         &dataplane::task_counters::bytes_in,
                         &dataplane::task_counters::bytes_out}}) {
        family_builder b(out, f.name, f.help, MetricType::Counter);
        for (size_t i = 0; i < v.tasks.size(); ++i) {
            auto in = labels(v.tasks[i]), outl = labels(v.tasks[i]);
            in.push_back({"direction", "in"});
            outl.push_back({"direction", "out"});
            b.add(in, static_cast<double>(traffic[i].*f.in));
            b.add(outl, static_cast<double>(traffic[i].*f.out));
        }
    }
}

void swarm_families(std::vector<MetricFamily> &out, const swarm_status &s)
{
    auto gauge = [&](const char *name, const char *help, double value) {
        family_builder(out, name, help, MetricType::Gauge).add({}, value);
    };
    auto counter = [&](const char *name, const char *help, double value) {
        family_builder(out, name, help, MetricType::Counter).add({}, value);
    };
    gauge("meshgate_swarm_connected", "1 while the last read of the Engine API answered.",
          s.connected);
    gauge("meshgate_swarm_following_events", "1 while the Engine API's /events stream is open.",
          s.following_events);
    counter("meshgate_swarm_reads_total", "Reads of the swarm's tasks (and more) that answered.",
            double(s.reads));
    counter("meshgate_swarm_read_errors_total", "Reads of the Engine API that failed.",
            double(s.read_errors));
    counter("meshgate_swarm_events_total", "Events received from the Engine API.",
            double(s.events));
    counter("meshgate_swarm_resyncs_total", "Full reads of networks, services, nodes and tasks.",
            double(s.resyncs));
    family_builder applied(out, "meshgate_swarm_changes_total",
                           "Changes of the swarm applied to the gateway, by result.",
                           MetricType::Counter);
    applied.add({{"result", "ok"}}, double(s.applied));
    applied.add({{"result", "error"}}, double(s.apply_errors));
    gauge("meshgate_swarm_last_event_timestamp_seconds", "When the last event came; 0 = never.",
          s.last_event_at);
    gauge("meshgate_swarm_last_resync_timestamp_seconds", "When the last full read answered.",
          s.last_resync_at);
    gauge("meshgate_swarm_last_change_timestamp_seconds",
          "When a change of the swarm was last applied.", s.last_change_at);
}

void table_families(std::vector<MetricFamily> &out, const counter_sources &counters)
{
    family_builder live(out, "meshgate_connection_table_entries",
                        "Connections in the connection table.", MetricType::Gauge);
    live.add({}, counters.connections->size());
    family_builder capacity(out, "meshgate_connection_table_capacity",
                            "Connections the table holds ([limits] connections).",
                            MetricType::Gauge);
    capacity.add({}, counters.connections->capacity());
    const auto overflow = counters.connections->index_overflow();
    family_builder overflow_use(out, "meshgate_connection_index_overflow_buckets",
                                "The connection table's key index: overflow buckets in use "
                                "(keys that collide take them) and in all.",
                                MetricType::Gauge);
    overflow_use.add({{"state", "in_use"}}, static_cast<double>(overflow.used));
    overflow_use.add({{"state", "capacity"}}, static_cast<double>(overflow.capacity));
    family_builder pool_use(out, "meshgate_packet_pool_in_use",
                            "Packet buffers in use (queues, workers, waiting fragments and ARP), "
                            "by NUMA socket.",
                            MetricType::Gauge);
    family_builder pool_size(out, "meshgate_packet_pool_size",
                             "Packet buffers in the pool ([dpdk] mbufs), by NUMA socket.",
                             MetricType::Gauge);
    for (const auto &[socket, pool] : counters.packet_pools) {
        pool_use.add({{"socket", std::to_string(socket)}}, rte_mempool_in_use_count(pool));
        pool_size.add({{"socket", std::to_string(socket)}}, pool->size);
    }
    if (counters.neighbors != nullptr) {
        family_builder neighbors(out, "meshgate_neighbor_entries",
                                 "Slots of the neighbor table in use (of 4096): static, learned "
                                 "and unresolved next hops.",
                                 MetricType::Gauge);
        neighbors.add({}, counters.neighbors->size());
    }
}

} // namespace

// Called on civetweb's threads, from C: a scrape that fails answers nothing, it ends nothing.
std::vector<MetricFamily> gateway_collector::Collect() const
{
    return at_edge("metrics scrape", std::vector<MetricFamily>{}, [this] {
        std::vector<MetricFamily> out;
        std::shared_ptr<const gateway_view> v = state_.view();
        if (!v) return out;
        const counter_sources &counters = state_.counters;
        const gateway_totals totals = sum_totals(counters, v->ports.size());
        port_families(out, *v, totals);
        kernel_families(out, *v, totals);
        drop_and_event_families(out, totals);
        drain_families(out, state_.drain());
        if (std::optional<cluster::group_status> c = state_.cluster()) cluster_families(out, *c);
        config_families(out, *v, state_.reload());
        service_families(out, *v, counters);
        if (std::optional<swarm_status> s = state_.swarm()) swarm_families(out, *s);
        table_families(out, counters);
        return out;
    });
}

metrics_endpoint::metrics_endpoint(const std::string &listen,
                                   std::shared_ptr<prometheus::Collectable> collector)
    : listen_(listen), collector_(std::move(collector))
{
    try {
        exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
            "listening_ports", listen, "num_threads", exposer_threads, "request_timeout_ms",
            exposer_timeout_ms, "enable_keep_alive", "no"});
    } catch (const std::exception &e) {
        throw std::runtime_error("[stats] listen " + listen + ": cannot listen: " + e.what());
    }
    exposer_->RegisterCollectable(collector_);
}

metrics_endpoint::~metrics_endpoint()
{
    // civetweb's listening thread waits in 2 s polls and sees the stop only between them; a
    // connection ends the poll at once, so stopping takes milliseconds instead of seconds.
    std::atomic<bool> stopped{false};
    std::thread knock([&] {
        const size_t colon = listen_.rfind(':');
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(static_cast<uint16_t>(std::stoi(listen_.substr(colon + 1))));
        inet_pton(AF_INET, listen_.substr(0, colon).c_str(), &to.sin_addr);
        if (to.sin_addr.s_addr == INADDR_ANY) to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        while (!stopped.load()) {
            const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd >= 0) {
                connect(fd, reinterpret_cast<const sockaddr *>(&to), sizeof to);
                close(fd);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    });
    exposer_.reset();
    stopped.store(true);
    knock.join();
}

std::string render_text(const prometheus::Collectable &collector)
{
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, collector.Collect());
    return out.str();
}

} // namespace meshgate
