#include "control/swarm/state.h"

#include <algorithm>
#include <climits>
#include <map>
#include <optional>

#include "control/config/errors.h"

namespace meshgate::swarm
{

namespace
{

bool publishes_in_ingress(const service &s)
{
    return std::any_of(s.ports.begin(), s.ports.end(),
                       [](const published_port &p) { return p.mode == publish_mode::ingress; });
}

// Node names are hostnames, unless two nodes share one: then hostname-ID.
std::map<std::string, std::string> node_names(const std::vector<node> &nodes)
{
    std::map<std::string, int> uses;
    for (const node &n : nodes)
        ++uses[n.hostname];
    std::map<std::string, std::string> names;
    for (const node &n : nodes)
        names[n.id] = uses[n.hostname] == 1 ? n.hostname : n.hostname + "-" + n.id.substr(0, 12);
    return names;
}

// The service's labels into C; what is not understood is said in LEFT_OUT and has its default.
void apply_labels(const service &sv, config::service &c, std::vector<std::string> &left_out)
{
    auto label = [&](std::string_view key) -> const std::string * {
        auto it = sv.labels.find(std::string(key));
        return it == sv.labels.end() ? nullptr : &it->second;
    };
    auto ignored = [&](std::string_view key, const std::string &value, const std::string &why) {
        left_out.push_back("service '" + sv.name + "': label " + std::string(key) + "=" +
                           config::printable(value) + " ignored: " + why);
    };
    // The index of label KEY's value among NAMES; none (said) when it is not one of them.
    auto choice = [&](std::string_view key, const auto &names) -> std::optional<size_t> {
        const std::string *v = label(key);
        if (v == nullptr) return std::nullopt;
        auto it = std::find(names.begin(), names.end(), *v);
        if (it != names.end()) return static_cast<size_t>(it - names.begin());
        ignored(key, *v, "not one of: " + config::join(names));
        return std::nullopt;
    };
    if (auto k = choice(scheduler_label, dataplane::scheduler_kind_names))
        c.scheduler = static_cast<config::scheduler_kind>(*k);
    if (auto k = choice(proxy_protocol_label, dataplane::proxy_protocol_names)) {
        if (std::any_of(sv.ports.begin(), sv.ports.end(), [](const published_port &p) {
                return p.mode == publish_mode::ingress && p.proto != config::protocol::tcp;
            }))
            ignored(proxy_protocol_label, *label(proxy_protocol_label),
                    "the service publishes UDP ports (TCP only)");
        else
            c.proxy = static_cast<config::proxy_protocol>(*k);
    }
    for (auto [key, field] : {std::pair{persistence_label, &c.persistence_timeout},
                              std::pair{rate_label, &c.max_new_connections_per_second}}) {
        const std::string *v = label(key);
        if (v == nullptr) continue;
        if (std::optional<uint32_t> n = parse_decimal(*v, INT32_MAX))
            *field = *n;
        else
            ignored(key, *v, "not a number from 0 to 2147483647");
    }
}

} // namespace

state assemble(const network &net, const std::vector<service> &services,
               const std::vector<task> &tasks, const std::vector<node> &nodes)
{
    state s;
    s.network = net.name;
    s.vni = net.vni;
    s.subnet = net.subnet;
    s.ip_range = net.ip_range;

    const std::map<std::string, std::string> names = node_names(nodes);
    std::map<std::string, const node *> node_by_id;
    for (const node &n : nodes)
        node_by_id[n.id] = &n;
    std::map<std::string, config::node> used_nodes; // by name

    std::map<std::string, size_t> service_by_id; // into s.services
    for (const service &sv : services) {
        for (const std::string &p : sv.unsupported_ports)
            s.left_out.push_back("service '" + sv.name + "' port " + p + ": not carried");
        if (!publishes_in_ingress(sv)) {
            if (!sv.ports.empty())
                s.left_out.push_back("service '" + sv.name +
                                     "': published in host mode only, not through the mesh");
            continue;
        }
        config::service c;
        c.name = sv.name;
        c.from = config::origin::swarm;
        apply_labels(sv, c, s.left_out);
        for (const published_port &p : sv.ports)
            if (p.mode == publish_mode::ingress)
                c.ports.push_back(config::service_port{p.proto, p.published, p.target, {}, {}});
        service_by_id[sv.id] = s.services.size();
        s.services.push_back(std::move(c));
    }

    for (const task &t : tasks) {
        auto sv = service_by_id.find(t.service_id);
        if (sv == service_by_id.end() || t.state != "running") continue;
        config::service &c = s.services[sv->second];
        if (!t.address) {
            s.left_out.push_back("task " + t.id + " of '" + c.name + "': no address on " +
                                 net.name);
            continue;
        }
        auto n = node_by_id.find(t.node_id);
        // The data path: the node's address as its overlay peers know it, else its own.
        auto host = net.endpoint_hosts.find(*t.address);
        std::optional<ipv4_address> vtep = host != net.endpoint_hosts.end()
                                               ? std::optional(host->second)
                                           : n != node_by_id.end() ? n->second->address
                                                                   : std::nullopt;
        if (n == node_by_id.end() || !vtep) {
            s.left_out.push_back("task " + t.id + " of '" + c.name + "': node " + t.node_id +
                                 " has no known address");
            continue;
        }
        // Two node entries with one data-path address (a node that left and joined again) are
        // one tunnel: the first name stands for both.
        auto same = std::find_if(used_nodes.begin(), used_nodes.end(),
                                 [&](const auto &u) { return u.second.address == *vtep; });
        const std::string &name = same != used_nodes.end() ? same->first : names.at(t.node_id);
        config::node &used = used_nodes[name];
        used.name = name;
        used.address = *vtep;
        used.from = config::origin::swarm;
        config::task k;
        k.address = *t.address;
        k.node = name;
        k.mac = docker_mac_for(*t.address);              // the tasks API has no MAC: Docker's rule
        k.weight = t.desired_state == "running" ? 1 : 0; // being stopped: drains
        c.tasks.push_back(k);
    }

    for (config::service &c : s.services)
        std::sort(c.tasks.begin(), c.tasks.end(), [](const config::task &a, const config::task &b) {
            return a.address < b.address;
        });
    std::sort(s.services.begin(), s.services.end(),
              [](const config::service &a, const config::service &b) { return a.name < b.name; });
    for (auto &[name, n] : used_nodes)
        s.nodes.push_back(std::move(n));
    return s;
}

merged with_swarm(config::gateway_config file, const state &swarm)
{
    merged m{std::move(file), {}};
    config::gateway_config &c = m.config;

    if (c.overlay.vni_at.known() && c.overlay.vni != swarm.vni)
        m.notes.push_back("the swarm network '" + swarm.network + "' has VNI " +
                          std::to_string(swarm.vni) + ": used instead of [overlay] vni " +
                          std::to_string(c.overlay.vni));
    c.overlay.vni = swarm.vni;
    const ipv4_address own = c.overlay.address.address;
    if (!swarm.subnet.contains(own))
        m.notes.push_back("[overlay] address " + to_string(own) + " is not on the swarm network " +
                          to_string(swarm.subnet) + ": tasks cannot answer it");
    else if (swarm.ip_range.value_or(swarm.subnet).contains(own))
        m.notes.push_back("[overlay] address " + to_string(own) +
                          " is in the range Docker gives tasks addresses from: create '" +
                          swarm.network + "' with an --ip-range that leaves it out");

    // A swarm node at the address of a file node is that node; a name the file uses is
    // taken by the file's node. One the underlay cannot reach is left out with its tasks.
    std::map<std::string, std::string> renamed; // swarm node name -> the name it goes by
    for (const config::node &n : swarm.nodes) {
        const bool own = std::any_of(c.ports.begin(), c.ports.end(), [&](const config::port &p) {
            return p.address.address == n.address;
        });
        if (own || !config::underlay_reaches(c, n.address)) {
            m.notes.push_back("swarm node '" + n.name + "' at " + to_string(n.address) +
                              " left out with its tasks: " +
                              (own ? "it is a gateway port's address"
                                   : "no underlay port reaches it (its subnet or a gateway)"));
            continue;
        }
        auto same_address =
            std::find_if(c.nodes.begin(), c.nodes.end(),
                         [&](const config::node &f) { return f.address == n.address; });
        if (same_address != c.nodes.end()) {
            renamed[n.name] = same_address->name;
            continue;
        }
        config::node added = n;
        if (std::any_of(c.nodes.begin(), c.nodes.end(),
                        [&](const config::node &f) { return f.name == n.name; }))
            added.name = "swarm-" + n.name;
        renamed[n.name] = added.name;
        c.nodes.push_back(std::move(added));
    }

    for (const config::service &s : swarm.services) {
        auto conflict = [&]() -> std::string {
            for (const config::service &f : c.services) {
                if (f.name == s.name) return "the file has a service of that name";
                for (const config::service_port &p : s.ports)
                    for (const config::service_port &q : f.ports)
                        if (!f.address && p.proto == q.proto && p.published == q.published)
                            return "port " + std::to_string(p.published) +
                                   " is published by the file's service '" + f.name + "'";
            }
            return {};
        }();
        if (!conflict.empty()) {
            m.notes.push_back("swarm service '" + s.name + "' left out: " + conflict);
            continue;
        }
        config::service added = s;
        added.tasks.clear();
        for (config::task t : s.tasks) {
            auto node = renamed.find(t.node);
            if (node == renamed.end()) continue; // its node was left out, and said so
            if (std::string problem = config::task_address_problem(t.address, c.overlay);
                !problem.empty()) {
                m.notes.push_back("swarm task " + to_string(t.address) + " of '" + s.name +
                                  "' left out: it " + problem);
                continue;
            }
            t.node = node->second;
            added.tasks.push_back(std::move(t));
        }
        c.services.push_back(std::move(added));
    }
    return m;
}

} // namespace meshgate::swarm
