#include "control/config/sections.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "dataplane/capacity.h"

namespace meshgate::config
{

namespace
{

constexpr size_t max_snat_addresses = 256;

std::string subnet_text(const ipv4_prefix &p)
{
    return to_string(ipv4_prefix{ipv4_address{p.address.value & p.mask()}, p.length});
}

bool has_address(const port &p)
{
    return p.address.length != 0;
}

bool faces_external(port_role r)
{
    return r != port_role::underlay;
}
bool faces_underlay(port_role r)
{
    return r != port_role::external;
}

bool overlaps(const ipv4_prefix &a, const ipv4_prefix &b)
{
    const ipv4_prefix wider = a.length < b.length ? a : b;
    return wider.contains(a.address) && wider.contains(b.address);
}

// What is wrong with ADDRESS as a host inside SUBNET ("" if nothing).
std::string host_problem(ipv4_address address, const ipv4_prefix &subnet)
{
    if (!subnet.contains(address)) return "is not inside the subnet " + subnet_text(subnet);
    if (subnet.length >= 31) return "";
    const uint32_t host = address.value & ~subnet.mask();
    if (host == 0) return "is the network address of " + subnet_text(subnet);
    if (host == ~subnet.mask()) return "is the broadcast address of " + subnet_text(subnet);
    return "";
}

// A prefix with length 1..32 whose address is a usable host of its subnet.
std::optional<ipv4_prefix> host_prefix(const field &f)
{
    auto p = f.prefix();
    if (!p) return std::nullopt;
    if (p->length < 1) {
        f.error(f.name() + " " + to_string(*p) + ": prefix length 0 out of range 1..32");
        return std::nullopt;
    }
    if (std::string problem = host_problem(p->address, *p); !problem.empty()) {
        f.error(f.name() + " " + to_string(p->address) + " " + problem);
        return std::nullopt;
    }
    return p;
}

// Reports VALUE if an earlier entry used it; remembers it otherwise.
void check_unique(const field &f, const std::string &value, std::string_view what,
                  std::map<std::string, source_position> &seen, bool quote = true)
{
    config::check_unique(f.errors(), origin::file, f.at(), value,
                         std::string(what) + " " + (quote ? in_quotes(value) : value), seen);
}

std::optional<ipv4_address> read_gateway(const field &f, const port &p)
{
    auto gw = f.ipv4();
    if (!gw || !has_address(p)) return gw;
    if (*gw == p.address.address) {
        f.error("gateway " + to_string(*gw) + " is the port's own address");
        return std::nullopt;
    }
    if (std::string problem = host_problem(*gw, p.address); !problem.empty()) {
        f.error("gateway " + to_string(*gw) + " " + problem);
        return std::nullopt;
    }
    return gw;
}

void check_overlap(const field &f, const port &p, const std::vector<port> &earlier)
{
    for (const port &other : earlier)
        if (has_address(other) && overlaps(p.address, other.address))
            f.error("address " + to_string(p.address) + " overlaps port " + in_quotes(other.name) +
                    " (" + to_string(other.address) + ")");
}

struct port_names {
    std::map<std::string, source_position> names, devices, kernel_interfaces;
};

port read_port(const toml::value &table, error_list &errors, const std::vector<port> &earlier,
               port_names &seen)
{
    table_reader t(
        table, "port", true,
        {"name", "device", "role", "address", "gateway", "mtu", "mac", "kernel_interface"}, errors);
    port p;
    p.at = t.at();
    p.address.length = 0; // unknown until it parses
    field name = t.required("name");
    if (auto n = name.name_text(15)) {
        p.name = *n;
        check_unique(name, p.name, "port name", seen.names);
    }
    field device = t.required("device");
    if (auto d = device.text()) {
        p.device = *d;
        if (d->empty())
            device.error("device must not be empty");
        else
            check_unique(device, p.device, "device", seen.devices);
    }
    if (auto r = t.get("role").choice(port_role_names)) p.role = static_cast<port_role>(*r);
    field address = t.required("address");
    if (auto a = host_prefix(address)) {
        p.address = *a;
        check_overlap(address, p, earlier);
    }
    p.gateway = read_gateway(t.get("gateway"), p);
    if (auto m = t.get("mtu").integer(68, 9000)) p.mtu = static_cast<uint16_t>(*m);
    p.mac = t.get("mac").unicast_mac();
    field kernel = t.get("kernel_interface");
    if (auto k = kernel.name_text(15)) { // IFNAMSIZ - 1
        p.kernel_interface = *k;
        check_unique(kernel, p.kernel_interface, "kernel_interface", seen.kernel_interfaces);
    }
    return p;
}

void check_roles(const table_reader &root, const std::vector<const toml::value *> &tables,
                 const std::vector<port> &ports)
{
    const source_position at = tables.empty() ? root.at() : position_of(*tables.front());
    auto any = [&](bool (*faces)(port_role)) {
        return std::any_of(ports.begin(), ports.end(),
                           [&](const port &p) { return faces(p.role); });
    };
    if (!any(faces_external))
        root.errors().add(at, "no [[port]] with role external or both: clients need one");
    if (!any(faces_underlay))
        root.errors().add(at, "no [[port]] with role underlay or both: nodes need one");
}

} // namespace

std::vector<port> read_ports(const table_reader &root)
{
    const std::vector<const toml::value *> tables = root.tables("port");
    std::vector<port> ports;
    port_names seen;
    for (const toml::value *table : tables) {
        if (ports.size() == dataplane::max_ports) {
            root.errors().add(position_of(*table), "too many [[port]] tables: at most " +
                                                       std::to_string(dataplane::max_ports));
            break;
        }
        ports.push_back(read_port(*table, root.errors(), ports, seen));
    }
    const field key = root.get("port");
    const bool reported =
        key && tables.empty() && !(key.value().is_array() && key.value().as_array().empty());
    if (!reported) // 'port' written as something else than [[port]]
        check_roles(root, tables, ports);
    return ports;
}

std::vector<neighbor> read_neighbors(const table_reader &root, const std::vector<port> &ports)
{
    std::vector<neighbor> neighbors;
    std::map<std::string, source_position> seen;
    const bool ports_known = std::all_of(ports.begin(), ports.end(), has_address);
    for (const toml::value *table : root.tables("neighbor")) {
        table_reader t(*table, "neighbor", true, {"address", "mac"}, root.errors());
        field address = t.required("address");
        auto a = address.ipv4();
        auto m = t.required("mac").unicast_mac();
        if (a) {
            check_unique(address, to_string(*a), "neighbor", seen, false);
            const bool on_link = std::any_of(ports.begin(), ports.end(),
                                             [&](const port &p) { return p.address.contains(*a); });
            if (ports_known && !on_link)
                address.error("neighbor " + to_string(*a) +
                              " is not on the subnet of any [[port]]");
        }
        if (a && m) neighbors.push_back(neighbor{*a, *m});
    }
    return neighbors;
}

std::optional<overlay_section> read_overlay(const table_reader &root)
{
    const toml::value *table = root.table("overlay");
    if (!table) {
        if (!root.get("overlay")) root.errors().add(root.at(), "missing required table [overlay]");
        return std::nullopt;
    }
    table_reader t(*table, "overlay", false,
                   {"vni", "udp_port", "address", "mac", "snat_addresses", "snat_ports"},
                   root.errors());
    overlay_section o;
    field vni = t.get("vni");
    if (auto v = vni.integer(1, 16777215)) {
        o.vni = static_cast<uint32_t>(*v);
        o.vni_at = vni.at();
    }
    if (auto v = t.get("udp_port").integer(1, 65535)) o.udp_port = static_cast<uint16_t>(*v);
    auto address = host_prefix(t.required("address"));
    auto mac = t.get("mac").unicast_mac();
    field snat = t.get("snat_addresses");
    auto entries = snat.entries();
    field ports = t.get("snat_ports");
    if (auto text = ports.text()) {
        unsigned lo = 0, hi = 0;
        char end = 0;
        if (std::sscanf(text->c_str(), "%u-%u%c", &lo, &hi, &end) != 2 || lo == 0 || lo > hi ||
            hi > 65535)
            ports.error("snat_ports " + in_quotes(*text) +
                        " is not a range MIN-MAX of ports in 1..65535, like \"1024-65535\"");
        else {
            o.snat_port_min = static_cast<uint16_t>(lo);
            o.snat_port_max = static_cast<uint16_t>(hi);
            o.snat_ports_at = ports.at();
        }
    }
    if (!address) return std::nullopt;
    o.at = t.at();
    o.address = *address;
    o.mac = mac.value_or(docker_mac_for(address->address));
    if (entries && entries->size() > max_snat_addresses) {
        snat.error("snat_addresses has " + std::to_string(entries->size()) + " entries, at most " +
                   std::to_string(max_snat_addresses));
        return o;
    }
    std::map<std::string, source_position> seen;
    for (const field &e : entries.value_or(std::vector<field>{})) {
        auto a = e.ipv4();
        if (!a) continue;
        std::string problem =
            *a == o.address.address ? "is the overlay address itself" : host_problem(*a, o.address);
        if (!problem.empty())
            e.error("snat address " + to_string(*a) + " " + problem);
        else
            check_unique(e, to_string(*a), "snat address", seen, false);
        o.snat_addresses.push_back(*a);
    }
    return o;
}

std::vector<node> read_nodes(const table_reader &root)
{
    std::vector<node> nodes;
    for (const toml::value *table : root.tables("node")) {
        table_reader t(*table, "node", true, {"name", "address", "mac"}, root.errors());
        node n;
        n.at = t.at();
        field name = t.required("name");
        if (auto s = name.name_text(64, true)) {
            n.name = *s;
            n.name_at = name.at();
        }
        field address = t.required("address");
        if (auto a = address.ipv4()) {
            n.address = *a;
            n.address_at = address.at();
        } else {
            n.address_unread = true;
        }
        n.mac = t.get("mac").unicast_mac();
        // Kept when the name is known, so that its tasks find it; checked in validate().
        if (n.name_at.known()) nodes.push_back(std::move(n));
    }
    return nodes;
}

} // namespace meshgate::config
