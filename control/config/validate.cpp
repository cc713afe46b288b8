// validate(): the checks that tie a whole configuration together, for every input (the file,
// the control API, the swarm). Each error is placed at the value it is about.
#include <algorithm>
#include <map>
#include <tuple>

#include "control/config/errors.h"
#include "control/config/memory.h"
#include "dataplane/capacity.h"

namespace meshgate::config
{

namespace
{

std::string subnet_text(const ipv4_prefix &p)
{
    return to_string(ipv4_prefix{ipv4_address{p.address.value & p.mask()}, p.length});
}

bool ports_known(const gateway_config &c)
{
    return std::all_of(c.ports.begin(), c.ports.end(),
                       [](const port &p) { return p.address.length != 0; });
}

} // namespace

bool underlay_reaches(const gateway_config &c, ipv4_address vtep)
{
    return std::any_of(c.ports.begin(), c.ports.end(), [&](const port &p) {
        return p.role != port_role::external && (p.address.contains(vtep) || p.gateway);
    });
}

std::string task_address_problem(ipv4_address a, const overlay_section &o)
{
    if (a == o.address.address) return "is the gateway's overlay address";
    if (std::find(o.snat_addresses.begin(), o.snat_addresses.end(), a) != o.snat_addresses.end())
        return "is one of the gateway's snat_addresses";
    const ipv4_prefix &subnet = o.address;
    if (!subnet.contains(a)) return "is not inside the overlay subnet " + subnet_text(subnet);
    const uint32_t host = a.value & ~subnet.mask();
    if (subnet.length < 31 && (host == 0 || host == ~subnet.mask()))
        return std::string("is the ") + (host == 0 ? "network" : "broadcast") +
               " address of the overlay subnet " + subnet_text(subnet);
    return "";
}

namespace
{

void check_nodes(const gateway_config &c, error_list &errors)
{
    std::map<std::string, source_position> names, addresses;
    // Without an underlay port at all, the port check has said it once.
    const bool reach_known =
        ports_known(c) && std::any_of(c.ports.begin(), c.ports.end(),
                                      [](const port &p) { return p.role != port_role::external; });
    for (size_t i = 0; i < c.nodes.size(); ++i) {
        const node &n = c.nodes[i];
        if (i == dataplane::max_nodes)
            errors.add(n.from, n.at,
                       "too many nodes: at most " + std::to_string(dataplane::max_nodes));
        check_unique(errors, n.from, n.name_at, n.name, "node name " + in_quotes(n.name), names);
        if (n.address_unread) continue;
        const std::string address = to_string(n.address);
        check_unique(errors, n.from, n.address_at, address, "node address " + address, addresses);
        for (const port &p : c.ports)
            if (p.address.length != 0 && p.address.address == n.address)
                errors.add(n.from, n.address_at,
                           "node address " + address + " is the address of port " +
                               in_quotes(p.name));
        if (reach_known && !underlay_reaches(c, n.address))
            errors.add(n.from, n.address_at,
                       "node address " + address +
                           " is reached by no underlay port: it is on no underlay port's "
                           "subnet and no underlay port has a gateway");
    }
}

std::string protocol_name(protocol p)
{
    return p == protocol::tcp ? "tcp" : "udp";
}

// (protocol, published port, destination address or none): a published-port match.
using match_key = std::tuple<protocol, uint16_t, std::optional<ipv4_address>>;

std::string match_text(const match_key &k)
{
    const auto &[proto, port, address] = k;
    return protocol_name(proto) + "/" + std::to_string(port) +
           (address ? " on " + to_string(*address) : "");
}

void check_services(const gateway_config &c, error_list &errors)
{
    std::map<std::string, source_position> names;
    std::map<match_key, std::string> published; // -> the service that published it first
    size_t listeners = 0, tasks = 0;
    const bool overlay_known = c.overlay.at.known();
    for (size_t i = 0; i < c.services.size(); ++i) {
        const service &s = c.services[i];
        if (i == dataplane::max_services)
            errors.add(s.from, s.at,
                       "too many services: at most " + std::to_string(dataplane::max_services));
        if (!s.name_unread)
            check_unique(errors, s.from, s.name_at, s.name, "service name " + in_quotes(s.name),
                         names);
        if (s.address) {
            const uint32_t a = s.address->value;
            // A destination clients can route to: not 0/8, loopback, multicast, class E.
            if ((a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 14)
                errors.add(s.from, s.at,
                           "service " + in_quotes(s.name) + " address " + to_string(*s.address) +
                               " is not a unicast address clients can reach");
        }
        if (s.from != origin::file && s.ports.empty()) // the file reader says it of its own
            errors.add(s.from, s.at, "service " + in_quotes(s.name) + " has no published port");
        for (const service_port &sp : s.ports) {
            if (s.proxy != proxy_protocol::off && sp.proto != protocol::tcp)
                errors.add(s.from, s.proxy_at.known() ? s.proxy_at : sp.at,
                           "service " + in_quotes(s.name) + " has proxy_protocol = \"" +
                               std::string(dataplane::proxy_protocol_names[size_t(s.proxy)]) +
                               "\": a PROXY header goes ahead of a TCP stream; its port " +
                               std::to_string(sp.published) + " is udp");
            if (++listeners == dataplane::max_listeners + 1)
                errors.add(s.from, sp.at,
                           "too many published ports: at most " +
                               std::to_string(dataplane::max_listeners) + " in all services");
            const match_key key{sp.proto, sp.published, s.address};
            auto [it, fresh] = published.emplace(key, s.name);
            if (!fresh)
                errors.add(s.from, sp.published_at,
                           "published port " + match_text(key) + " is already used by service " +
                               in_quotes(it->second));
        }
        std::map<std::string, source_position> addresses;
        for (const task &k : s.tasks) {
            if (++tasks == dataplane::max_tasks + 1)
                errors.add(s.from, k.at,
                           "too many tasks: at most " + std::to_string(dataplane::max_tasks) +
                               " in all services");
            if (!k.node_unread && std::none_of(c.nodes.begin(), c.nodes.end(),
                                               [&](const node &n) { return n.name == k.node; }))
                errors.add(s.from, k.node_at,
                           "task node " + in_quotes(k.node) + " is not a [[node]]");
            const std::string address = to_string(k.address);
            if (overlay_known) // else its own error was reported
                if (std::string problem = task_address_problem(k.address, c.overlay);
                    !problem.empty())
                    errors.add(s.from, k.address_at, "task address " + address + " " + problem);
            check_unique(errors, s.from, k.address_at, address, "task address " + address,
                         addresses);
        }
    }
}

void check_memory(const gateway_config &c, error_list &errors)
{
    if (c.dpdk.mbufs && ports_known(c) && *c.dpdk.mbufs < packet_pool_minimum(c))
        errors.add(c.dpdk.mbufs_at, "mbufs " + std::to_string(*c.dpdk.mbufs) +
                                        " is less than the " +
                                        std::to_string(packet_pool_minimum(c)) +
                                        " that the queues' descriptors and the workers hold");
    const uint32_t snat_ports = c.overlay.snat_port_max - c.overlay.snat_port_min + 1u;
    if (c.overlay.snat_ports_at.known() && snat_ports < worker_count(c))
        errors.add(c.overlay.snat_ports_at,
                   "snat_ports holds " + std::to_string(snat_ports) + " port(s), fewer than the " +
                       std::to_string(worker_count(c)) + " workers that share them");
    if (!c.dpdk.memory_mb || c.dpdk.lcore_ids.size() < 2 || !ports_known(c)) return;
    const uint64_t needed = dpdk_memory_needed(c);
    const uint64_t have = uint64_t{*c.dpdk.memory_mb} << 20;
    if (needed <= have) return;
    const uint64_t mib = (needed + (1u << 20) - 1) >> 20;
    const std::string what = std::to_string(c.limits.connections) + " connections with " +
                             std::to_string(c.ports.size()) + " port(s) and " +
                             std::to_string(worker_count(c)) + " worker(s) need " +
                             std::to_string(mib) + " MiB of DPDK memory";
    if (c.limits.connections_at.known())
        errors.add(c.limits.connections_at, what + ", more than memory_mb " +
                                                std::to_string(*c.dpdk.memory_mb) + " (line " +
                                                std::to_string(c.dpdk.memory_at.line) + ")");
    else
        errors.add(c.dpdk.memory_at, "memory_mb " + std::to_string(*c.dpdk.memory_mb) +
                                         " is too small: " + what +
                                         " (lower [limits] connections or raise memory_mb)");
}

// Peers are on the cluster port's link: a survivor takes a dead peer's address by ARP there,
// and the messages go through that port's kernel interface.
void check_cluster(const gateway_config &c, error_list &errors)
{
    if (!c.cluster || !ports_known(c)) return;
    const cluster_section &cl = *c.cluster;
    const port *p = cluster_port(c);
    if (p == nullptr) return; // the port check has said it
    if (p->kernel_interface.empty())
        errors.add(cl.at, "[cluster] speaks through the kernel: port " + in_quotes(p->name) +
                              " (the first facing the underlay) needs a kernel_interface");
    for (const cluster_peer &peer : cl.peers) {
        if (peer.address == p->address.address)
            errors.add(peer.at, "peer " + in_quotes(peer.name) + " has port " + in_quotes(p->name) +
                                    "'s own address " + to_string(peer.address));
        else if (!p->address.contains(peer.address))
            errors.add(peer.at, "peer " + in_quotes(peer.name) + " at " + to_string(peer.address) +
                                    " is not on the subnet " + subnet_text(p->address) +
                                    " of port " + in_quotes(p->name) +
                                    ": a survivor takes a dead peer's address by ARP");
    }
}

} // namespace

const port *cluster_port(const gateway_config &c)
{
    for (const port &p : c.ports)
        if (p.role != port_role::external) return &p;
    return nullptr;
}

void validate(const gateway_config &c, error_list &errors)
{
    check_cluster(c, errors);
    check_nodes(c, errors);
    check_services(c, errors);
    check_memory(c, errors);
}

} // namespace meshgate::config
