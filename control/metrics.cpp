#include "control/metrics.h"

#include <algorithm>
#include <iterator>

#include <rte_ether.h>

#include "control/net_text.h"

namespace meshgate
{

namespace
{

// Label values may hold device strings with quotes or backslashes.
std::string escape(std::string_view v)
{
    std::string out;
    for (char ch : v) {
        if (ch == '\\' || ch == '"') out += '\\';
        if (ch == '\n') {
            out += "\\n";
            continue;
        }
        out += ch;
    }
    return out;
}

void family(std::string &out, std::string_view name, std::string_view type, std::string_view help)
{
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void sample(std::string &out, std::string_view name, std::string_view labels, uint64_t value)
{
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.append(" ").append(std::to_string(value)).append("\n");
}

} // namespace

gateway_totals sum_counters(std::span<const dataplane::worker_counters *const> workers,
                            size_t port_count)
{
    gateway_totals t;
    t.ports.resize(port_count);
    for (const dataplane::worker_counters *w : workers) {
        for (size_t p = 0; p < port_count; ++p) {
            t.ports[p].rx_packets += w->ports[p].rx_packets;
            t.ports[p].rx_bytes += w->ports[p].rx_bytes;
            t.ports[p].tx_packets += w->ports[p].tx_packets;
            t.ports[p].tx_bytes += w->ports[p].tx_bytes;
        }
        for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
            t.drops[r] += w->drops[r];
        for (size_t e = 0; e < dataplane::event_count; ++e)
            t.events[e] += w->events[e];
    }
    return t;
}

std::string render_metrics(const gateway_totals &totals, const std::vector<opened_port> &ports,
                           const std::vector<std::string> &port_roles)
{
    std::string out;
    family(out, "meshgate_port_info", "gauge", "A gateway port: its device, MAC and role.");
    for (size_t p = 0; p < ports.size(); ++p) {
        mac_address m;
        std::copy(std::begin(ports[p].mac.addr_bytes), std::end(ports[p].mac.addr_bytes),
                  m.bytes.begin());
        std::string mac = to_string(m);
        sample(out, "meshgate_port_info",
               "port=\"" + escape(ports[p].name) + "\",device=\"" + escape(ports[p].device) +
                   "\",mac=\"" + mac + "\",role=\"" + port_roles.at(p) + "\"",
               1);
    }

    family(out, "meshgate_port_packets_total", "counter",
           "Packets received (rx) or sent (tx) on a port by the workers.");
    for (size_t p = 0; p < ports.size(); ++p) {
        std::string port = "port=\"" + escape(ports[p].name) + "\",direction=";
        sample(out, "meshgate_port_packets_total", port + "\"rx\"", totals.ports[p].rx_packets);
        sample(out, "meshgate_port_packets_total", port + "\"tx\"", totals.ports[p].tx_packets);
    }
    family(out, "meshgate_port_bytes_total", "counter",
           "Bytes (Ethernet frames without FCS) received (rx) or sent (tx) on a port.");
    for (size_t p = 0; p < ports.size(); ++p) {
        std::string port = "port=\"" + escape(ports[p].name) + "\",direction=";
        sample(out, "meshgate_port_bytes_total", port + "\"rx\"", totals.ports[p].rx_bytes);
        sample(out, "meshgate_port_bytes_total", port + "\"tx\"", totals.ports[p].tx_bytes);
    }

    family(out, "meshgate_drops_total", "counter", "Packets dropped, by reason.");
    for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
        sample(out, "meshgate_drops_total",
               "reason=\"" + std::string(dataplane::drop_reason_names[r]) + "\"", totals.drops[r]);

    for (size_t e = 0; e < dataplane::event_count; ++e) {
        std::string name = "meshgate_" + std::string(dataplane::event_names[e]) + "_total";
        family(out, name, "counter", dataplane::event_help[e]);
        sample(out, name, "", totals.events[e]);
    }

    family(out, "meshgate_config_reloads_total", "counter",
           "Configuration reloads (SIGHUP), by result.");
    sample(out, "meshgate_config_reloads_total", "result=\"ok\"", totals.reloads_ok);
    sample(out, "meshgate_config_reloads_total", "result=\"error\"", totals.reloads_error);
    return out;
}

} // namespace meshgate
