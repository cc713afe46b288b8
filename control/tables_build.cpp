#include "control/tables_build.h"

#include <algorithm>

#include <rte_byteorder.h>
#include <spdlog/spdlog.h>

namespace meshgate {

namespace {

rte_be32_t network_order(ipv4_address a) { return rte_cpu_to_be_32(a.value); }

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
        if (((network_order(a) ^ t.ports[i].address) & t.ports[i].netmask) == 0)
            return i;
    return std::nullopt;
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
    return t;
}

void install_static_neighbors(const config::gateway_config &c,
                              const dataplane::dataplane_tables &t,
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
        if (n.mac)
            install(n.address, *n.mac, "node " + n.name);
}

} // namespace meshgate
