#include "control/api/tables_build.h"

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <spdlog/spdlog.h>
#include <tbb/parallel_for.h>

#include "control/config/memory.h"

namespace meshgate
{

namespace
{

rte_ether_addr ether(const mac_address &m)
{
    rte_ether_addr e;
    std::copy(m.bytes.begin(), m.bytes.end(), e.addr_bytes);
    return e;
}

// The port of C whose subnet contains A, if any: its index is the gateway port's.
std::optional<uint16_t> port_on_link(const config::gateway_config &c, ipv4_address a)
{
    for (uint16_t i = 0; i < c.ports.size(); ++i)
        if (c.ports[i].address.contains(a)) return i;
    return std::nullopt;
}

void compile_ports(const config::gateway_config &c, const std::vector<opened_port> &ports,
                   dataplane::dataplane_tables &t)
{
    t.port_count = static_cast<uint16_t>(c.ports.size());
    for (size_t i = 0; i < c.ports.size(); ++i) {
        const config::port &cp = c.ports[i];
        dataplane::gateway_port &p = t.ports[i];
        p.port_id = ports.at(i).port_id;
        p.external = cp.role != config::port_role::underlay;
        p.underlay = cp.role != config::port_role::external;
        p.address = network_order(cp.address.address);
        p.netmask = rte_cpu_to_be_32(cp.address.mask());
        p.gateway = cp.gateway ? network_order(*cp.gateway) : 0;
        p.mtu = cp.mtu;
        p.mac = ports.at(i).mac;
    }
}

void compile_overlay(const config::gateway_config &c, dataplane::dataplane_tables &t)
{
    t.vni = c.overlay.vni;
    t.vxlan_port = rte_cpu_to_be_16(c.overlay.udp_port);
    t.overlay_address = network_order(c.overlay.address.address);
    t.overlay_mac = ether(c.overlay.mac);
    t.snat_addresses = {t.overlay_address};
    for (ipv4_address a : c.overlay.snat_addresses)
        t.snat_addresses.push_back(network_order(a));
}

// A node's tunnel, from the underlay port that reaches it; nothing when none does.
std::optional<dataplane::node_entry> compile_node(const config::node &n,
                                                  const dataplane::dataplane_tables &t)
{
    dataplane::node_entry node;
    node.vtep = network_order(n.address);
    std::optional<uint16_t> port;
    for (uint16_t i = 0; i < t.port_count && !port; ++i)
        if (t.ports[i].underlay && t.next_hop(i, node.vtep) != 0) port = i;
    if (!port) return std::nullopt;
    node.port = *port;
    const dataplane::gateway_port &p = t.ports[*port];
    // The outer destination MAC is filled per packet from the neighbor table.
    node.tunnel = dataplane::vxlan_tunnel_build(dataplane::vxlan_tunnel_config{
        p.mac, rte_ether_addr{}, p.address, node.vtep, t.vni, t.vxlan_port});
    return node;
}

// The configured nodes, then those only removed tasks still run on. Name -> index in t.nodes.
std::map<std::string, uint16_t> compile_nodes(const config::gateway_config &c,
                                              const identities &ids, dataplane::dataplane_tables &t)
{
    std::map<std::string, uint16_t> index;
    auto add = [&](const config::node &n, bool configured) {
        if (index.count(n.name)) return;
        std::optional<dataplane::node_entry> node = compile_node(n, t);
        if (!node) {
            if (configured) // validation rules it out
                throw std::runtime_error("node " + n.name + ": no underlay port reaches " +
                                         to_string(n.address));
            return; // a node only removed tasks ran on, out of reach now: they end with it
        }
        index.emplace(n.name, static_cast<uint16_t>(t.nodes.size()));
        t.nodes.push_back(*node);
    };
    for (const config::node &n : c.nodes)
        add(n, true);
    for (const auto &[key, rec] : ids.tasks())
        if (rec.phase == task_phase::removed) add(rec.node, false);
    std::vector<std::pair<rte_be32_t, uint16_t>> vteps;
    for (size_t i = 0; i < t.nodes.size(); ++i)
        vteps.emplace_back(t.nodes[i].vtep, static_cast<uint16_t>(i));
    t.node_of_vtep.build(vteps);
    return index;
}

void compile_tasks(const identities &ids, const std::map<std::string, uint16_t> &nodes,
                   dataplane::dataplane_tables &t)
{
    t.tasks.assign(dataplane::task_id_capacity, dataplane::task_entry{});
    for (const auto &[key, rec] : ids.tasks()) {
        auto node = nodes.find(rec.node.name);
        const service_record *service = ids.service(key.service);
        if (node == nodes.end() || service == nullptr) continue; // absent: its connections end
        t.tasks[rec.id] = dataplane::task_entry{
            network_order(rec.spec.address), node->second, service->id, ether(rec.spec.mac),
            rec.phase == task_phase::serving ? dataplane::task_state::serving
                                             : dataplane::task_state::removed};
    }
}

// The scheduler's input for one service, in config order: what decides its tables.
std::vector<dataplane::scheduler_task> scheduler_input(const config::service &s,
                                                       const identities &ids)
{
    std::vector<dataplane::scheduler_task> tasks;
    for (const config::task &k : s.tasks)
        tasks.push_back({dataplane::task_identity(k.address.value), k.weight,
                         ids.task(task_key{s.name, k.address})->id});
    return tasks;
}

bool same_input(const dataplane::service_scheduler &s, config::scheduler_kind kind,
                const std::vector<dataplane::scheduler_task> &tasks)
{
    if (s.kind != kind || s.task_count != tasks.size()) return false;
    for (size_t i = 0; i < tasks.size(); ++i)
        if (s.keys[i] != tasks[i].key || s.weights[i] != tasks[i].weight) return false;
    return true; // a key names one (service, address), so one Maglev identity
}

constexpr uint64_t icmp_error_burst = 50; // as Linux's net.ipv4.icmp_msgs_burst; RSTs too
constexpr uint64_t arp_reply_burst = 500; // a segment's hosts ARPing at once after a failover

// Each worker's share of a gateway-wide rate of new connections, allowed a second's worth at
// once.
dataplane::rate_limit connection_rate(uint32_t per_second, const config::gateway_config &c)
{
    const uint64_t workers = std::max<uint16_t>(worker_count(c), 1);
    const uint64_t share = (per_second + workers - 1) / workers;
    return dataplane::rate_limit::per_second(share, share, rte_get_tsc_hz());
}

// Each worker's share of a gateway-wide RATE a second, up to BURST events at once.
dataplane::rate_limit worker_share(uint64_t rate, uint64_t burst, const config::gateway_config &c)
{
    const uint64_t workers = std::max<uint16_t>(worker_count(c), 1);
    return dataplane::rate_limit::per_second((rate + workers - 1) / workers, burst,
                                             rte_get_tsc_hz());
}

// Without a configured secret, one drawn at the process's first compile and kept through
// reloads: cookies stay valid on every worker, and across reloads, of this gateway.
dataplane::siphash_key process_cookie_secret()
{
    static const dataplane::siphash_key secret = [] {
        std::random_device rd;
        auto word = [&] { return uint64_t{rd()} << 32 | rd(); };
        return dataplane::siphash_key{word(), word()};
    }();
    return secret;
}

void compile_limits(const config::gateway_config &c, dataplane::dataplane_tables &t)
{
    t.icmp_errors = worker_share(c.limits.icmp_errors_per_second, icmp_error_burst, c);
    t.new_connections_per_source = connection_rate(c.limits.new_connections_per_source, c);
    t.tcp_resets = worker_share(c.limits.tcp_resets_per_second, icmp_error_burst, c);
    t.reset_unpublished = c.limits.reset_unpublished;
    t.syn_cookies = c.limits.syn_cookies;
    // Its own, else the cluster's (derived from its key file), else this process's.
    t.syn_cookie_secret = c.limits.syn_cookie_secret.value_or(
        c.cluster && c.cluster->syn_cookie_secret ? *c.cluster->syn_cookie_secret
                                                  : process_cookie_secret());
    t.arp_replies = worker_share(c.limits.arp_replies_per_second, arp_reply_burst, c);
    // A tenth of a second's worth at once: a BGP update or a TCP window, not a flood.
    t.kernel_packets =
        worker_share(c.limits.kernel_packets_per_second,
                     std::max<uint64_t>(c.limits.kernel_packets_per_second / 10, 32), c);
    t.kernel_syns = worker_share(c.limits.kernel_syns_per_second,
                                 std::max<uint64_t>(c.limits.kernel_syns_per_second / 10, 8), c);
}

// The port addresses, then the routed service addresses (those no port holds), then the
// underlay addresses of dead peers taken over, on the cluster port.
void compile_local_addresses(const config::gateway_config &c, dataplane::dataplane_tables &t)
{
    std::vector<std::pair<rte_be32_t, uint16_t>> local;
    for (uint16_t i = 0; i < t.port_count; ++i)
        local.emplace_back(t.ports[i].address, i);
    for (const config::service &s : c.services)
        if (s.address) local.emplace_back(network_order(*s.address), dataplane::routed_address);
    if (const config::port *p = config::cluster_port(c))
        for (const dataplane::adopted_gateway &g : t.adopted)
            local.emplace_back(g.underlay, static_cast<uint16_t>(p - c.ports.data()));
    t.local_addresses.build(local);
}

void compile_services(const config::gateway_config &c, const identities &ids,
                      const dataplane::dataplane_tables *previous, const compile_options &options,
                      dataplane::dataplane_tables &t)
{
    t.services.assign(dataplane::service_id_capacity, dataplane::service_entry{});
    struct pending {
        uint16_t id;
        const config::service *service;
        std::vector<dataplane::scheduler_task> tasks;
    };
    std::vector<pending> to_build;
    for (const config::service &cs : c.services) {
        const uint16_t id = ids.service(cs.name)->id;
        dataplane::service_entry &s = t.services[id];
        s.persistence_timeout = cs.persistence_timeout;
        s.proxy = cs.proxy;
        s.new_connections = connection_rate(cs.max_new_connections_per_second, c);
        std::vector<dataplane::scheduler_task> tasks = scheduler_input(cs, ids);
        if (previous != nullptr && previous->services[id].scheduler &&
            same_input(*previous->services[id].scheduler, cs.scheduler, tasks))
            s.scheduler = previous->services[id].scheduler;
        else
            to_build.push_back({id, &cs, std::move(tasks)});
    }
    auto build = [&](size_t i) {
        const pending &p = to_build[i];
        t.services[p.id].scheduler = std::make_shared<const dataplane::service_scheduler>(
            dataplane::build_scheduler(p.service->scheduler, p.tasks));
    };
    if (options.parallel)
        tbb::parallel_for(size_t{0}, to_build.size(), build);
    else
        for (size_t i = 0; i < to_build.size(); ++i)
            build(i);
}

void compile_listeners(const config::gateway_config &c, const identities &ids,
                       dataplane::dataplane_tables &t)
{
    for (auto &by_port : t.published)
        by_port.fill(dataplane::no_listener);
    for (const config::service &cs : c.services) {
        const uint16_t id = ids.service(cs.name)->id;
        for (const config::service_port &sp : cs.ports) {
            if (t.listeners.size() >= dataplane::max_listeners)
                throw std::runtime_error("too many published ports"); // validation rules it out
            dataplane::listener l;
            l.service = id;
            l.target_port = rte_cpu_to_be_16(sp.target);
            l.address = cs.address ? network_order(*cs.address) : 0;
            uint16_t &head = t.published[sp.proto == config::protocol::udp][sp.published];
            // Address-bound listeners first: they are the more specific match.
            l.next = head;
            const auto index = static_cast<uint16_t>(t.listeners.size());
            t.listeners.push_back(l);
            if (l.address == 0 && head != dataplane::no_listener) {
                uint16_t last = head;
                while (t.listeners[last].next != dataplane::no_listener)
                    last = t.listeners[last].next;
                t.listeners[index].next = dataplane::no_listener;
                t.listeners[last].next = index;
            } else {
                head = index;
            }
        }
    }
}

} // namespace

std::unique_ptr<dataplane::dataplane_tables>
build_tables(const config::gateway_config &c, const identities &ids,
             const std::vector<opened_port> &ports, const dataplane::dataplane_tables *previous,
             uint64_t sweep_epoch, const compile_options &options)
{
    auto t = std::make_unique<dataplane::dataplane_tables>();
    compile_ports(c, ports, *t);
    compile_overlay(c, *t);
    const std::map<std::string, uint16_t> nodes = compile_nodes(c, ids, *t);
    compile_tasks(ids, nodes, *t);
    compile_services(c, ids, previous, options, *t);
    compile_listeners(c, ids, *t);
    compile_limits(c, *t);
    if (previous != nullptr) { // a reload keeps a takeover, and a join going on
        t->adopted = previous->adopted;
        t->joining_peers = previous->joining_peers;
        t->joining_port = previous->joining_port;
    }
    compile_local_addresses(c, *t);
    t->sweep_epoch = sweep_epoch;
    t->timeouts = c.timeouts;
    return t;
}

void set_adopted(const config::gateway_config &c, std::vector<dataplane::adopted_gateway> adopted,
                 dataplane::dataplane_tables &t)
{
    t.adopted = std::move(adopted);
    compile_local_addresses(c, t);
}

void install_static_neighbors(const config::gateway_config &c,
                              const config::gateway_config *previous,
                              dataplane::neighbor_table &neighbors)
{
    struct entry {
        uint16_t port;
        ipv4_address address;
        mac_address mac;
    };
    // The entries G asks for, each on the port whose subnet holds it (in G's ports).
    auto entries_of = [](const config::gateway_config &g, bool warn) {
        std::vector<std::pair<ipv4_address, mac_address>> wanted;
        std::vector<std::string> what;
        for (const config::neighbor &n : g.neighbors) {
            wanted.emplace_back(n.address, n.mac);
            what.push_back("neighbor");
        }
        for (const config::node &n : g.nodes)
            if (n.mac) {
                wanted.emplace_back(n.address, *n.mac);
                what.push_back("node " + n.name);
            }
        std::vector<entry> out;
        for (size_t i = 0; i < wanted.size(); ++i) {
            if (auto port = port_on_link(g, wanted[i].first))
                out.push_back({*port, wanted[i].first, wanted[i].second});
            else if (warn)
                spdlog::warn("{} {} is on no port's subnet: its MAC is not used", what[i],
                             to_string(wanted[i].first));
        }
        return out;
    };
    const std::vector<entry> now = entries_of(c, true);
    // What PREVIOUS installed and C does not keep on the same port: ARP's from now on.
    if (previous != nullptr)
        for (const entry &old : entries_of(*previous, false))
            if (std::none_of(now.begin(), now.end(), [&](const entry &e) {
                    return e.port == old.port && e.address == old.address;
                }))
                neighbors.remove_static(old.port, network_order(old.address), rte_rdtsc());
    for (const entry &e : now)
        if (!neighbors.add_static(e.port, network_order(e.address), ether(e.mac)))
            spdlog::warn("neighbor table full: {} not installed", to_string(e.address));
}

} // namespace meshgate
