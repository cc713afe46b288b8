#include "control/config_sections.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace meshgate::config
{

namespace
{

// (protocol, published port, destination address or none): a published-port match.
using match_key = std::tuple<protocol, uint16_t, std::optional<ipv4_address>>;

// What the services read so far have claimed, for checks across services.
struct service_registry {
    std::map<std::string, source_position> names;
    std::map<match_key, std::string> published; // -> the service that published it first
};

std::string protocol_name(protocol p)
{
    return p == protocol::tcp ? "tcp" : "udp";
}

std::string line_of(source_position at)
{
    return "line " + std::to_string(at.line);
}

std::string match_text(const match_key &k)
{
    const auto &[proto, port, address] = k;
    return protocol_name(proto) + "/" + std::to_string(port) +
           (address ? " on " + to_string(*address) : "");
}

std::optional<service_port> read_service_port(const toml::value &table, error_list &errors,
                                              const service &s, service_registry &registry)
{
    table_reader t(table, "service.port", true, {"protocol", "published", "target"}, errors);
    service_port sp;
    sp.at = t.at();
    if (auto p = t.get("protocol").choice({"tcp", "udp"}))
        sp.proto = *p == 0 ? protocol::tcp : protocol::udp;
    field published = t.required("published");
    auto number = published.integer(1, 65535);
    auto target = t.get("target").integer(1, 65535);
    if (!number) return std::nullopt;
    sp.published = static_cast<uint16_t>(*number);
    sp.target = static_cast<uint16_t>(target.value_or(*number));
    const match_key key{sp.proto, sp.published, s.address};
    auto [it, fresh] = registry.published.emplace(key, s.name);
    if (!fresh)
        published.error("published port " + match_text(key) + " is already used by service " +
                        in_quotes(it->second));
    return sp;
}

// What keeps ADDRESS from being a task on the overlay ("" if nothing).
std::string task_address_problem(ipv4_address a, const overlay_section &o)
{
    if (a == o.address.address) return "is the gateway's overlay address";
    if (std::find(o.snat_addresses.begin(), o.snat_addresses.end(), a) != o.snat_addresses.end())
        return "is one of the gateway's snat_addresses";
    const ipv4_prefix &subnet = o.address;
    const ipv4_prefix net{ipv4_address{subnet.address.value & subnet.mask()}, subnet.length};
    if (!subnet.contains(a)) return "is not inside the overlay subnet " + to_string(net);
    const uint32_t host = a.value & ~subnet.mask();
    if (subnet.length < 31 && (host == 0 || host == ~subnet.mask()))
        return std::string("is the ") + (host == 0 ? "network" : "broadcast") +
               " address of the overlay subnet " + to_string(net);
    return "";
}

bool names_a_node(const std::string &name, const std::vector<node> &nodes)
{
    return std::any_of(nodes.begin(), nodes.end(), [&](const node &n) { return n.name == name; });
}

std::optional<task> read_task(const toml::value &table, error_list &errors,
                              const std::optional<overlay_section> &overlay,
                              const std::vector<node> &nodes,
                              std::map<std::string, source_position> &addresses)
{
    table_reader t(table, "service.task", true, {"address", "node", "weight", "mac"}, errors);
    task k;
    k.at = t.at();
    field address = t.required("address");
    auto a = address.ipv4();
    field node_name = t.required("node");
    if (auto n = node_name.text()) {
        k.node = *n;
        if (!names_a_node(*n, nodes))
            node_name.error("task node " + in_quotes(*n) + " is not a [[node]]");
    }
    if (auto w = t.get("weight").integer(0, 65535)) k.weight = static_cast<uint32_t>(*w);
    auto mac = t.get("mac").unicast_mac();
    if (!a) return std::nullopt;
    k.address = *a;
    k.mac = mac.value_or(docker_mac_for(*a));
    std::string problem = overlay ? task_address_problem(*a, *overlay) : "";
    if (!problem.empty()) address.error("task address " + to_string(*a) + " " + problem);
    auto [it, fresh] = addresses.emplace(to_string(*a), address.at());
    if (!fresh)
        address.error("task address " + to_string(*a) + " is already used on " +
                      line_of(it->second));
    return k;
}

service read_service(const toml::value &table, error_list &errors,
                     const std::optional<overlay_section> &overlay, const std::vector<node> &nodes,
                     service_registry &registry)
{
    table_reader t(table, "service", true,
                   {"name", "scheduler", "persistence_timeout", "address", "port", "task"}, errors);
    service s;
    s.at = t.at();
    field name = t.required("name");
    if (auto n = name.name_text(63, true)) {
        s.name = *n;
        auto [it, fresh] = registry.names.emplace(s.name, name.at());
        if (!fresh)
            name.error("service name " + in_quotes(s.name) + " is already used on " +
                       line_of(it->second));
    }
    if (auto k = t.get("scheduler").choice({"maglev", "rr", "wrr", "lc", "wlc", "sh"}))
        s.scheduler = static_cast<scheduler_kind>(*k);
    if (auto p = t.get("persistence_timeout").integer(0, INT32_MAX))
        s.persistence_timeout = static_cast<uint32_t>(*p);
    s.address = t.get("address").ipv4();
    const auto port_tables = t.tables("port");
    const field ports = t.get("port");
    if (port_tables.empty() && (!ports || ports.value().is_array()))
        errors.add(s.at, "service " + in_quotes(s.name) + " has no [[service.port]]");
    for (const toml::value *p : port_tables)
        if (auto sp = read_service_port(*p, errors, s, registry)) s.ports.push_back(*sp);
    std::map<std::string, source_position> addresses;
    for (const toml::value *k : t.tables("task"))
        if (auto tk = read_task(*k, errors, overlay, nodes, addresses)) s.tasks.push_back(*tk);
    return s;
}

} // namespace

std::vector<service> read_services(const table_reader &root,
                                   const std::optional<overlay_section> &overlay,
                                   const std::vector<node> &nodes)
{
    std::vector<service> services;
    service_registry registry;
    for (const toml::value *table : root.tables("service"))
        services.push_back(read_service(*table, root.errors(), overlay, nodes, registry));
    return services;
}

} // namespace meshgate::config
