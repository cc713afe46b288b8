#include "control/observe/stats_view.h"

#include <algorithm>
#include <map>

#include <rte_cycles.h>

#include "control/base/net_text.h"

namespace meshgate
{

namespace
{

std::string port_text(const config::service &s, const config::service_port &p)
{
    return std::string(p.proto == config::protocol::tcp ? "tcp " : "udp ") +
           std::to_string(p.published) + " -> " + std::to_string(p.target) +
           (s.address ? " on " + to_string(*s.address) : "");
}

} // namespace

gateway_totals sum_totals(const counter_sources &c, size_t port_count)
{
    gateway_totals t;
    t.ports.resize(port_count);
    for (const dataplane::worker_counters *w : c.workers) {
        for (size_t p = 0; p < port_count; ++p) {
            t.ports[p].rx_packets += w->ports[p].rx_packets;
            t.ports[p].rx_bytes += w->ports[p].rx_bytes;
            t.ports[p].tx_packets += w->ports[p].tx_packets;
            t.ports[p].tx_bytes += w->ports[p].tx_bytes;
            t.ports[p].to_kernel += w->ports[p].to_kernel;
            t.ports[p].from_kernel += w->ports[p].from_kernel;
            t.ports[p].kernel_rate_drops += w->ports[p].kernel_rate_drops;
            t.ports[p].kernel_full_drops += w->ports[p].kernel_full_drops;
        }
        for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
            t.drops[r] += w->drops[r];
        for (size_t e = 0; e < dataplane::event_count; ++e)
            t.events[e] += w->events[e];
    }
    return t;
}

dataplane::task_counters sum_task(const counter_sources &c, uint16_t id)
{
    dataplane::task_counters t;
    for (const dataplane::worker_counters *w : c.workers) {
        const dataplane::task_counters &k = w->tasks[id];
        t.connections += k.connections;
        t.packets_in += k.packets_in;
        t.bytes_in += k.bytes_in;
        t.packets_out += k.packets_out;
        t.bytes_out += k.bytes_out;
    }
    return t;
}

uint64_t sum_service_connections(const counter_sources &c, uint16_t id)
{
    uint64_t n = 0;
    for (const dataplane::worker_counters *w : c.workers)
        n += w->connections_created[id];
    return n;
}

std::shared_ptr<const gateway_view> build_view(const control_api &api,
                                               const std::vector<opened_port> &ports)
{
    auto v = std::make_shared<gateway_view>();
    const config::gateway_config &c = api.config();
    const identities &ids = api.ids();
    v->generation = api.generation();
    v->file = c.file;
    for (size_t i = 0; i < ports.size(); ++i) {
        mac_address m;
        std::copy(std::begin(ports[i].mac.addr_bytes), std::end(ports[i].mac.addr_bytes),
                  m.bytes.begin());
        v->ports.push_back({ports[i].name, ports[i].device,
                            std::string(name_of(c.ports.at(i).role)), to_string(m),
                            c.ports.at(i).kernel_interface, ports[i].port_id});
    }

    std::map<std::string, size_t> service_index;
    for (const config::service &s : c.services) {
        service_view sv;
        sv.id = ids.service(s.name)->id;
        sv.name = s.name;
        sv.scheduler = dataplane::scheduler_kind_names[static_cast<size_t>(s.scheduler)];
        sv.persistence_timeout = s.persistence_timeout;
        sv.proxy_protocol = dataplane::proxy_protocol_names[static_cast<size_t>(s.proxy)];
        for (const config::service_port &p : s.ports)
            sv.ports.push_back(port_text(s, p));
        sv.from = s.from;
        service_index[s.name] = v->services.size();
        v->services.push_back(std::move(sv));
    }

    auto add_task = [&](const task_key &key, const task_record &r) {
        task_view t;
        t.id = r.id;
        t.service = key.service;
        t.address = key.address;
        t.node = r.spec.node;
        t.weight = r.spec.weight;
        t.state = r.phase == task_phase::removed ? "removed"
                  : r.spec.weight == 0           ? "draining"
                                                 : "serving";
        auto s = service_index.find(key.service);
        t.from = s != service_index.end() ? v->services[s->second].from : config::origin::file;
        if (s != service_index.end()) v->services[s->second].tasks.push_back(v->tasks.size());
        v->tasks.push_back(std::move(t));
    };
    // Serving tasks in config order, then the removed ones.
    for (const config::service &s : c.services)
        for (const config::task &k : s.tasks)
            if (const task_record *r = ids.task({s.name, k.address}))
                add_task({s.name, k.address}, *r);
    for (const auto &[key, r] : ids.tasks())
        if (r.phase == task_phase::removed) add_task(key, r);
    return v;
}

std::vector<task_rate> task_rates(const identities &ids, const counter_sources &counters, double dt,
                                  rate_samples &samples)
{
    std::vector<task_rate> rates(dataplane::task_id_capacity);
    rate_samples next;
    for (const auto &[key, rec] : ids.tasks()) {
        const dataplane::task_counters c = sum_task(counters, rec.id);
        auto last = samples.find(key);
        const dataplane::task_counters p = last != samples.end() && last->second.taken == rec.taken
                                               ? last->second.counters
                                               : dataplane::task_counters{};
        rates[rec.id] = task_rate{
            double(c.connections - p.connections) / dt, double(c.packets_in - p.packets_in) / dt,
            double(c.packets_out - p.packets_out) / dt, double(c.bytes_in - p.bytes_in) / dt,
            double(c.bytes_out - p.bytes_out) / dt};
        next.emplace(key, rate_sample{rec.taken, c});
    }
    samples = std::move(next);
    return rates;
}

void stats_state::set_view(std::shared_ptr<const gateway_view> v)
{
    std::lock_guard lock(mutex_);
    view_ = std::move(v);
}

std::shared_ptr<const gateway_view> stats_state::view() const
{
    std::lock_guard lock(mutex_);
    return view_;
}

void stats_state::set_reload(reload_status r)
{
    std::lock_guard lock(mutex_);
    reload_ = std::move(r);
}

reload_status stats_state::reload() const
{
    std::lock_guard lock(mutex_);
    return reload_;
}

void stats_state::set_rates(std::vector<task_rate> r)
{
    std::lock_guard lock(mutex_);
    rates_ = std::move(r);
}

std::vector<task_rate> stats_state::rates() const
{
    std::lock_guard lock(mutex_);
    return rates_;
}

uint32_t counter_sources::now() const
{
    return static_cast<uint32_t>((rte_rdtsc() - start_tsc) / tsc_hz);
}

void stats_state::set_swarm(std::optional<swarm_status> s)
{
    std::lock_guard lock(mutex_);
    swarm_ = std::move(s);
}

std::optional<swarm_status> stats_state::swarm() const
{
    std::lock_guard lock(mutex_);
    return swarm_;
}

void stats_state::set_drain(drain_status d)
{
    std::lock_guard lock(mutex_);
    drain_ = std::move(d);
}

void stats_state::set_cluster(cluster::group_status c)
{
    std::lock_guard lock(mutex_);
    cluster_ = std::move(c);
}

std::optional<cluster::group_status> stats_state::cluster() const
{
    std::lock_guard lock(mutex_);
    return cluster_;
}

drain_status stats_state::drain() const
{
    std::lock_guard lock(mutex_);
    return drain_;
}

task_states scan_states(const dataplane::connection_table &t)
{
    task_states s{std::vector<uint32_t>(dataplane::task_id_capacity),
                  std::vector<uint32_t>(dataplane::task_id_capacity)};
    for (uint32_t i = 0; i < t.capacity(); ++i) {
        const dataplane::connection &c = t.at(i);
        if (c.live.load(std::memory_order_relaxed) == 0 || c.task >= dataplane::task_id_capacity)
            continue;
        const bool established = c.tclass == dataplane::timeout_class::tcp &&
                                 c.tcp() == dataplane::tcp_state::established;
        ++(established ? s.active : s.inactive)[c.task];
    }
    return s;
}

uint64_t task_states::total_active() const
{
    uint64_t n = 0;
    for (uint32_t a : active)
        n += a;
    return n;
}

} // namespace meshgate
