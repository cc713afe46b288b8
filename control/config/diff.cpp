#include "control/config/diff.h"

#include <map>
#include <set>
#include <tuple>

#include "control/config/errors.h"

namespace meshgate
{

namespace
{

template <typename T, typename Key>
void diff_by(const std::vector<T> &old, const std::vector<T> &next, Key key_of,
             std::vector<decltype(key_of(old[0]))> &added,
             std::vector<decltype(key_of(old[0]))> &removed,
             std::vector<decltype(key_of(old[0]))> &changed)
{
    std::map<decltype(key_of(old[0])), const T *> before;
    for (const T &o : old)
        before.emplace(key_of(o), &o);
    std::set<decltype(key_of(old[0]))> seen;
    for (const T &n : next) {
        auto key = key_of(n);
        seen.insert(key);
        auto it = before.find(key);
        if (it == before.end())
            added.push_back(key);
        else if (!(*it->second == n))
            changed.push_back(key);
    }
    for (const auto &[key, o] : before)
        if (!seen.count(key)) removed.push_back(key);
}

struct keyed_task {
    task_key key;
    config::task task;
    bool operator==(const keyed_task &o) const { return task == o.task; }
};

std::vector<keyed_task> all_tasks(const config::gateway_config &c)
{
    std::vector<keyed_task> out;
    for (const config::service &s : c.services)
        for (const config::task &t : s.tasks)
            out.push_back({task_key{s.name, t.address}, t});
    return out;
}

// A service without its tasks: what "changed" means for a service.
config::service shape(const config::service &s)
{
    config::service out = s;
    out.tasks.clear();
    return out;
}

void port_settings(const config::gateway_config &old, const config::gateway_config &next,
                   std::vector<std::string> &out)
{
    for (size_t i = 0; i < std::min(old.ports.size(), next.ports.size()); ++i) {
        const config::port &a = old.ports[i], &b = next.ports[i];
        const std::string p = "port " + b.name + " ";
        if (a.mtu != b.mtu)
            out.push_back(p + "mtu " + std::to_string(a.mtu) + " -> " + std::to_string(b.mtu));
        if (!(a.address == b.address))
            out.push_back(p + "address " + to_string(a.address) + " -> " + to_string(b.address));
        if (a.gateway != b.gateway) out.push_back(p + "gateway");
        if (a.role != b.role)
            out.push_back(p + "role " + std::string(name_of(a.role)) + " -> " +
                          std::string(name_of(b.role)));
    }
}

bool same_overlay(const config::overlay_section &a, const config::overlay_section &b)
{
    return a.vni == b.vni && a.udp_port == b.udp_port && a.address == b.address && a.mac == b.mac &&
           a.snat_addresses == b.snat_addresses;
}

bool same_neighbors(const std::vector<config::neighbor> &a, const std::vector<config::neighbor> &b)
{
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (!(a[i].address == b[i].address) || !(a[i].mac == b[i].mac)) return false;
    return true;
}

} // namespace

bool change_set::empty() const
{
    return services_added.empty() && services_removed.empty() && services_changed.empty() &&
           tasks_added.empty() && tasks_removed.empty() && tasks_changed.empty() &&
           nodes_added.empty() && nodes_removed.empty() && nodes_changed.empty() &&
           settings.empty();
}

std::string change_set::summary() const
{
    if (empty()) return "no change";
    auto counts = [](const auto &a, const auto &r, const auto &c) {
        return "+" + std::to_string(a.size()) + " -" + std::to_string(r.size()) + " ~" +
               std::to_string(c.size());
    };
    std::string out = "services " + counts(services_added, services_removed, services_changed) +
                      ", tasks " + counts(tasks_added, tasks_removed, tasks_changed) + ", nodes " +
                      counts(nodes_added, nodes_removed, nodes_changed);
    for (size_t i = 0; i < settings.size(); ++i)
        out += (i == 0 ? "; " : ", ") + settings[i];
    return out;
}

change_set diff(const config::gateway_config &old, const config::gateway_config &next)
{
    change_set c;
    std::vector<config::service> old_shapes, next_shapes;
    for (const config::service &s : old.services)
        old_shapes.push_back(shape(s));
    for (const config::service &s : next.services)
        next_shapes.push_back(shape(s));
    diff_by(
        old_shapes, next_shapes, [](const config::service &s) { return s.name; }, c.services_added,
        c.services_removed, c.services_changed);
    diff_by(
        all_tasks(old), all_tasks(next), [](const keyed_task &t) { return t.key; }, c.tasks_added,
        c.tasks_removed, c.tasks_changed);
    diff_by(
        old.nodes, next.nodes, [](const config::node &n) { return n.name; }, c.nodes_added,
        c.nodes_removed, c.nodes_changed);

    if (!(old.timeouts == next.timeouts)) c.settings.push_back("timeouts");
    port_settings(old, next, c.settings);
    if (!same_overlay(old.overlay, next.overlay)) c.settings.push_back("overlay");
    if (!same_neighbors(old.neighbors, next.neighbors)) c.settings.push_back("neighbors");
    if (old.stats.listen != next.stats.listen)
        c.settings.push_back("stats listen '" + old.stats.listen + "' -> '" + next.stats.listen +
                             "'");
    if (old.log.level != next.log.level)
        c.settings.push_back("log level " + old.log.level + " -> " + next.log.level);
    if (old.reload.watch != next.reload.watch || old.reload.debounce_ms != next.reload.debounce_ms)
        c.settings.push_back("reload");
    if (old.drain.stop_delay_ms != next.drain.stop_delay_ms) c.settings.push_back("drain");
    return c;
}

std::vector<config::config_error> restart_needed(const config::gateway_config &old,
                                                 const config::gateway_config &next)
{
    config::error_list errors(next.file);
    auto needs = [&](config::source_position at, const std::string &what) {
        errors.add(at, what + ": a restart is needed to change it");
    };
    const config::dpdk_section &a = old.dpdk, &b = next.dpdk;
    if (a.lcores != b.lcores) needs(b.at, "[dpdk] lcores '" + a.lcores + "' -> '" + b.lcores + "'");
    if (a.memory_mb != b.memory_mb)
        needs(b.memory_at.known() ? b.memory_at : b.at, "[dpdk] memory_mb");
    if (a.no_huge != b.no_huge) needs(b.at, "[dpdk] no_huge");
    if (a.file_prefix != b.file_prefix) needs(b.at, "[dpdk] file_prefix");
    if (a.extra_args != b.extra_args) needs(b.at, "[dpdk] extra_args");
    if (a.mbufs != b.mbufs) needs(b.mbufs_at.known() ? b.mbufs_at : b.at, "[dpdk] mbufs");
    for (const auto &[key, was, is] :
         {std::tuple{"rx_descriptors", a.rx_descriptors, b.rx_descriptors},
          std::tuple{"tx_descriptors", a.tx_descriptors, b.tx_descriptors}})
        if (was != is)
            needs(b.at, std::string("[dpdk] ") + key + " " + std::to_string(was) + " -> " +
                            std::to_string(is));
    if (old.ports.size() != next.ports.size())
        needs(next.ports.empty() ? b.at : next.ports.back().at,
              "[[port]] tables " + std::to_string(old.ports.size()) + " -> " +
                  std::to_string(next.ports.size()));
    for (size_t i = 0; i < std::min(old.ports.size(), next.ports.size()); ++i) {
        const config::port &p = old.ports[i], &q = next.ports[i];
        const std::string which = "[[port]] " + config::in_quotes(q.name);
        if (p.name != q.name) needs(q.at, which + " name (was " + config::in_quotes(p.name) + ")");
        if (p.device != q.device) needs(q.at, which + " device");
        if (p.mac != q.mac) needs(q.at, which + " mac");
        if (p.kernel_interface != q.kernel_interface) needs(q.at, which + " kernel_interface");
        // The kernel interface got the address at start.
        if (!q.kernel_interface.empty() && p.address != q.address)
            needs(q.at, which + " address (it has a kernel interface)");
    }
    if (old.overlay.snat_port_min != next.overlay.snat_port_min ||
        old.overlay.snat_port_max != next.overlay.snat_port_max)
        needs(next.overlay.snat_ports_at.known() ? next.overlay.snat_ports_at : next.overlay.at,
              "[overlay] snat_ports");
    // The group knows this gateway by what it said at start.
    if (old.cluster != next.cluster) needs(next.cluster ? next.cluster->at : b.at, "[cluster]");
    if (old.limits.connections != next.limits.connections)
        needs(next.limits.connections_at.known() ? next.limits.connections_at : b.at,
              "[limits] connections " + std::to_string(old.limits.connections) + " -> " +
                  std::to_string(next.limits.connections));
    return errors.take_sorted(100);
}

bool timeouts_shortened(const config::timeouts_section &a, const config::timeouts_section &b)
{
    return b.tcp_established < a.tcp_established || b.tcp_fin < a.tcp_fin ||
           b.tcp_close < a.tcp_close || b.tcp_syn < a.tcp_syn || b.udp < a.udp ||
           b.udp_unreplied < a.udp_unreplied ||
           b.half_open_under_pressure < a.half_open_under_pressure;
}

} // namespace meshgate
