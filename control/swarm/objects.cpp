#include "control/swarm/objects.h"

#include <nlohmann/json.hpp>

namespace meshgate::swarm
{

namespace
{

using json = nlohmann::json;

// nlohmann's accessors throw on a missing key or a wrong type: every reader below runs inside
// one try, and the exception's text, with the object it was in, becomes the error value.
struct bad_document {
    std::string message;
};

const json &member(const json &object, const char *key)
{
    if (!object.is_object())
        throw bad_document{std::string("not an object where '") + key + "' is"};
    auto it = object.find(key);
    if (it == object.end()) throw bad_document{std::string("no '") + key + "'"};
    return *it;
}

// KEY's value if it is there and not null.
const json *optional_member(const json &object, const char *key)
{
    if (!object.is_object()) return nullptr;
    auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string text(const json &object, const char *key)
{
    const json &v = member(object, key);
    if (!v.is_string()) throw bad_document{std::string("'") + key + "' is not a string"};
    return v.get<std::string>();
}

std::string text_or(const json &object, const char *key, std::string fallback)
{
    const json *v = optional_member(object, key);
    return v != nullptr && v->is_string() ? v->get<std::string>() : fallback;
}

const json &array(const json &v, const char *what)
{
    if (!v.is_array()) throw bad_document{std::string(what) + " is not an array"};
    return v;
}

// "10.0.0.3/24" or "10.0.0.3"
std::optional<ipv4_address> address_of(std::string_view text)
{
    return parse_ipv4(text.substr(0, text.find('/')));
}

uint16_t port_number(const json &object, const char *key)
{
    const json &v = member(object, key);
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 65535)
        throw bad_document{std::string("'") + key + "' is not a port number"};
    return static_cast<uint16_t>(v.get<uint64_t>());
}

template <typename T, typename Read>
read<T> reading(std::string_view body, Read do_read)
{
    const json document = json::parse(body, nullptr, false);
    if (document.is_discarded()) return {std::nullopt, "not JSON"};
    try {
        return {do_read(document), {}};
    } catch (const bad_document &e) {
        return {std::nullopt, e.message};
    } catch (const json::exception &e) {
        return {std::nullopt, e.what()};
    }
}

// Each element of a list through READ_ONE, an error naming the element's place and ID.
template <typename T, typename ReadOne>
std::vector<T> each(const json &list, const char *what, ReadOne read_one)
{
    std::vector<T> out;
    size_t index = 0;
    for (const json &element : array(list, what)) {
        try {
            out.push_back(read_one(element));
        } catch (const bad_document &e) {
            throw bad_document{std::string(what) + "[" + std::to_string(index) + "] " +
                               text_or(element, "ID", "") + ": " + e.message};
        }
        ++index;
    }
    return out;
}

} // namespace

read<network> read_network(std::string_view body)
{
    return reading<network>(body, [](const json &d) {
        network n;
        n.id = text(d, "Id");
        n.name = text(d, "Name");
        const json &options = member(d, "Options");
        const std::string vnis = text(options, "com.docker.network.driver.overlay.vxlanid_list");
        const std::string first = vnis.substr(0, vnis.find(','));
        const std::optional<uint32_t> vni = parse_decimal(first, 0xffffff);
        if (!vni || *vni == 0)
            throw bad_document{"VNI '" + vnis + "' is not a number from 1 to 16777215"};
        n.vni = *vni;
        const json &configs = array(member(member(d, "IPAM"), "Config"), "IPAM.Config");
        if (configs.empty()) throw bad_document{"no IPAM config"};
        auto subnet = parse_ipv4_prefix(text(configs[0], "Subnet"));
        if (!subnet) throw bad_document{"subnet '" + text(configs[0], "Subnet") + "' is not IPv4"};
        n.subnet = *subnet;
        if (std::string range = text_or(configs[0], "IPRange", ""); !range.empty())
            n.ip_range = parse_ipv4_prefix(range);
        if (const json *peers = optional_member(d, "Peers"))
            for (const json &p : array(*peers, "Peers"))
                if (auto a = address_of(text(p, "IP"))) n.peers.push_back(*a);
        if (const json *services = optional_member(d, "Services"))
            for (const auto &[name, s] : services->items())
                if (const json *tasks = optional_member(s, "Tasks"))
                    for (const json &t : array(*tasks, "Tasks")) {
                        auto endpoint = address_of(text_or(t, "EndpointIP", ""));
                        const json *info = optional_member(t, "Info");
                        auto host = info ? address_of(text_or(*info, "Host IP", "")) : std::nullopt;
                        if (endpoint && host) n.endpoint_hosts[*endpoint] = *host;
                    }
        return n;
    });
}

read<std::vector<service>> read_services(std::string_view body)
{
    return reading<std::vector<service>>(body, [](const json &d) {
        return each<service>(d, "services", [](const json &s) {
            service out;
            out.id = text(s, "ID");
            const json &spec = member(s, "Spec");
            out.name = text(spec, "Name");
            if (const json *labels = optional_member(spec, "Labels"))
                for (const auto &[key, value] : labels->items())
                    if (value.is_string()) out.labels[key] = value.get<std::string>();
            const json *endpoint = optional_member(s, "Endpoint");
            const json *ports = endpoint ? optional_member(*endpoint, "Ports") : nullptr;
            if (ports == nullptr) return out; // publishes nothing
            for (const json &p : array(*ports, "Endpoint.Ports")) {
                published_port port;
                const std::string proto = text_or(p, "Protocol", "tcp");
                if (proto == "udp")
                    port.proto = config::protocol::udp;
                else if (proto != "tcp") {
                    out.unsupported_ports.push_back(
                        proto + " " + std::to_string(port_number(p, "PublishedPort")));
                    continue;
                }
                port.published = port_number(p, "PublishedPort");
                port.target = port_number(p, "TargetPort");
                port.mode = text_or(p, "PublishMode", "ingress") == "host" ? publish_mode::host
                                                                           : publish_mode::ingress;
                out.ports.push_back(port);
            }
            return out;
        });
    });
}

read<std::vector<task>> read_tasks(std::string_view body, const std::string &network_id)
{
    return reading<std::vector<task>>(body, [&](const json &d) {
        return each<task>(d, "tasks", [&](const json &t) {
            task out;
            out.id = text(t, "ID");
            out.service_id = text(t, "ServiceID");
            out.node_id = text_or(t, "NodeID", ""); // none until the task is assigned
            out.state = text(member(t, "Status"), "State");
            out.desired_state = text(t, "DesiredState");
            if (const json *attachments = optional_member(t, "NetworksAttachments"))
                for (const json &a : array(*attachments, "NetworksAttachments")) {
                    if (text(member(a, "Network"), "ID") != network_id) continue;
                    const json *addresses = optional_member(a, "Addresses");
                    if (addresses && !array(*addresses, "Addresses").empty() &&
                        (*addresses)[0].is_string())
                        out.address = address_of((*addresses)[0].get<std::string>());
                }
            return out;
        });
    });
}

read<std::vector<node>> read_nodes(std::string_view body)
{
    return reading<std::vector<node>>(body, [](const json &d) {
        return each<node>(d, "nodes", [](const json &n) {
            node out;
            out.id = text(n, "ID");
            out.hostname = text_or(member(n, "Description"), "Hostname", out.id);
            const json &status = member(n, "Status");
            out.state = text_or(status, "State", "unknown");
            out.address = address_of(text_or(status, "Addr", ""));
            return out;
        });
    });
}

std::string event_type(std::string_view line)
{
    const json event = json::parse(line, nullptr, false);
    return event.is_object() ? text_or(event, "Type", "") : "";
}

} // namespace meshgate::swarm
