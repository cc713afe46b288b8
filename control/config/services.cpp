#include "control/config/sections.h"

namespace meshgate::config
{

namespace
{

std::optional<service_port> read_service_port(const toml::value &table, error_list &errors)
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
    sp.published_at = published.at();
    sp.target = static_cast<uint16_t>(target.value_or(*number));
    return sp;
}

std::optional<task> read_task(const toml::value &table, error_list &errors)
{
    table_reader t(table, "service.task", true, {"address", "node", "weight", "mac"}, errors);
    task k;
    k.at = t.at();
    field address = t.required("address");
    auto a = address.ipv4();
    field node_name = t.required("node");
    if (auto n = node_name.text()) {
        k.node = *n;
        k.node_at = node_name.at();
    } else {
        k.node_unread = true;
    }
    if (auto w = t.get("weight").integer(0, 65535)) k.weight = static_cast<uint32_t>(*w);
    auto mac = t.get("mac").unicast_mac();
    if (!a) return std::nullopt; // a task is known by its address
    k.address = *a;
    k.address_at = address.at();
    k.mac = mac.value_or(docker_mac_for(*a));
    return k;
}

service read_service(const toml::value &table, error_list &errors)
{
    table_reader t(table, "service", true,
                   {"name", "scheduler", "persistence_timeout", "max_new_connections_per_second",
                    "address", "proxy_protocol", "port", "task"},
                   errors);
    service s;
    s.at = t.at();
    field name = t.required("name");
    if (auto n = name.name_text(63, true)) {
        s.name = *n;
        s.name_at = name.at();
    } else {
        s.name_unread = true;
    }
    if (auto k = t.get("scheduler").choice(dataplane::scheduler_kind_names))
        s.scheduler = static_cast<scheduler_kind>(*k);
    if (auto p = t.get("persistence_timeout").integer(0, INT32_MAX))
        s.persistence_timeout = static_cast<uint32_t>(*p);
    if (auto r = t.get("max_new_connections_per_second").integer(0, INT32_MAX))
        s.max_new_connections_per_second = static_cast<uint32_t>(*r);
    s.address = t.get("address").ipv4();
    const field proxy = t.get("proxy_protocol");
    if (auto v = proxy.choice(dataplane::proxy_protocol_names)) {
        s.proxy = static_cast<proxy_protocol>(*v);
        s.proxy_at = proxy.at();
    }
    const auto port_tables = t.tables("port");
    const field ports = t.get("port");
    if (port_tables.empty() && (!ports || ports.value().is_array()))
        errors.add(s.at, "service " + in_quotes(s.name) + " has no [[service.port]]");
    for (const toml::value *p : port_tables)
        if (auto sp = read_service_port(*p, errors)) s.ports.push_back(*sp);
    for (const toml::value *k : t.tables("task"))
        if (auto tk = read_task(*k, errors)) s.tasks.push_back(*tk);
    return s;
}

} // namespace

std::vector<service> read_services(const table_reader &root)
{
    std::vector<service> services;
    for (const toml::value *table : root.tables("service"))
        services.push_back(read_service(*table, root.errors()));
    return services;
}

} // namespace meshgate::config
