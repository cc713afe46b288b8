#include "control/tables_build.h"

#include <algorithm>
#include <stdexcept>

#include <rte_byteorder.h>
#include <spdlog/spdlog.h>

namespace meshgate
{

namespace
{

rte_be32_t network_order(ipv4_address a)
{
    return rte_cpu_to_be_32(a.value);
}

rte_ether_addr ether(const mac_address &m)
{
    rte_ether_addr e;
    std::copy(m.bytes.begin(), m.bytes.end(), e.addr_bytes);
    return e;
}

// The gateway port whose subnet contains A, if any.
std::optional<uint16_t> port_on_link(const dataplane::dataplane_tables &t, ipv4_address a)
{
    for (uint16_t i = 0; i < t.port_count; ++i)
        if (((network_order(a) ^ t.ports[i].address) & t.ports[i].netmask) == 0) return i;
    return std::nullopt;
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

    for (const config::node &n : c.nodes) {
        dataplane::node_entry node;
        node.vtep = network_order(n.address);
        std::optional<uint16_t> port;
        for (uint16_t i = 0; i < t.port_count && !port; ++i)
            if (t.ports[i].underlay && t.next_hop(i, node.vtep) != 0) port = i;
        if (!port)
            throw std::runtime_error("node " + n.name + ": no underlay port reaches " +
                                     to_string(n.address));
        node.port = *port;
        const dataplane::gateway_port &p = t.ports[*port];
        // The outer destination MAC is filled per packet from the neighbor table.
        node.tunnel = dataplane::vxlan_tunnel_build(dataplane::vxlan_tunnel_config{
            p.mac, rte_ether_addr{}, p.address, node.vtep, t.vni, t.vxlan_port});
        t.nodes.push_back(node);
    }
}

uint16_t node_index(const config::gateway_config &c, const std::string &name)
{
    for (size_t i = 0; i < c.nodes.size(); ++i)
        if (c.nodes[i].name == name) return static_cast<uint16_t>(i);
    throw std::runtime_error("task names unknown node " + name);
}

void compile_services(const config::gateway_config &c, dataplane::dataplane_tables &t)
{
    if (c.services.size() > dataplane::max_services)
        throw std::runtime_error("more than " + std::to_string(dataplane::max_services) +
                                 " services");
    for (auto &by_port : t.published)
        by_port.fill(dataplane::no_listener);
    for (size_t si = 0; si < c.services.size(); ++si) {
        const config::service &cs = c.services[si];
        dataplane::service_entry s;
        s.first_task = static_cast<uint32_t>(t.tasks.size());
        s.task_count = static_cast<uint32_t>(cs.tasks.size());
        s.persistence_timeout = cs.persistence_timeout;
        std::vector<dataplane::scheduler_task> sched;
        for (const config::task &ct : cs.tasks) {
            t.tasks.push_back(dataplane::task_entry{network_order(ct.address),
                                                    node_index(c, ct.node), ether(ct.mac)});
            sched.push_back({dataplane::task_identity(ct.address.value), ct.weight});
        }
        s.scheduler =
            dataplane::build_scheduler(static_cast<dataplane::scheduler_kind>(cs.scheduler), sched);
        t.services.push_back(std::move(s));

        for (const config::service_port &sp : cs.ports) {
            dataplane::listener l;
            l.service = static_cast<uint16_t>(si);
            l.target_port = rte_cpu_to_be_16(sp.target);
            l.address = cs.address ? network_order(*cs.address) : 0;
            uint16_t &head = t.published[sp.proto == config::protocol::udp][sp.published];
            // Address-bound listeners first: they are the more specific match.
            l.next = head;
            uint16_t index = static_cast<uint16_t>(t.listeners.size());
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
    if (t.tasks.size() > dataplane::max_tasks)
        throw std::runtime_error("more than " + std::to_string(dataplane::max_tasks) + " tasks");
}

} // namespace

std::unique_ptr<dataplane::dataplane_tables> build_tables(const config::gateway_config &c,
                                                          const std::vector<opened_port> &ports)
{
    auto t = std::make_unique<dataplane::dataplane_tables>();
    t->port_count = static_cast<uint16_t>(c.ports.size());
    for (size_t i = 0; i < c.ports.size(); ++i) {
        const config::port &cp = c.ports[i];
        dataplane::gateway_port &p = t->ports[i];
        p.port_id = ports.at(i).port_id;
        p.external = cp.role != config::port_role::underlay;
        p.underlay = cp.role != config::port_role::external;
        p.address = network_order(cp.address.address);
        p.netmask = rte_cpu_to_be_32(cp.address.mask());
        p.gateway = cp.gateway ? network_order(*cp.gateway) : 0;
        p.mtu = cp.mtu;
        p.mac = ports.at(i).mac;
    }
    compile_overlay(c, *t);
    compile_services(c, *t);
    return t;
}

void install_static_neighbors(const config::gateway_config &c, const dataplane::dataplane_tables &t,
                              dataplane::neighbor_table &neighbors)
{
    auto install = [&](ipv4_address a, const mac_address &m, const std::string &what) {
        auto port = port_on_link(t, a);
        if (!port) {
            spdlog::warn("{} {} is on no port's subnet: its MAC is not used", what, to_string(a));
            return;
        }
        if (!neighbors.add_static(*port, network_order(a), ether(m)))
            spdlog::warn("neighbor table full: {} {} not installed", what, to_string(a));
    };
    for (const config::neighbor &n : c.neighbors)
        install(n.address, n.mac, "neighbor");
    for (const config::node &n : c.nodes)
        if (n.mac) install(n.address, *n.mac, "node " + n.name);
}

} // namespace meshgate
