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
                            size_t port_count, size_t service_count, size_t task_count)
{
    gateway_totals t;
    t.ports.resize(port_count);
    t.connections_created.resize(service_count);
    t.tasks.resize(task_count);
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
        for (size_t sv = 0; sv < service_count; ++sv)
            t.connections_created[sv] += w->connections_created[sv];
        for (size_t k = 0; k < task_count; ++k) {
            t.tasks[k].packets_in += w->tasks[k].packets_in;
            t.tasks[k].bytes_in += w->tasks[k].bytes_in;
            t.tasks[k].packets_out += w->tasks[k].packets_out;
            t.tasks[k].bytes_out += w->tasks[k].bytes_out;
        }
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

    // Packets and bytes share their labels: one loop writes both families.
    struct traffic_family {
        const char *name, *help;
        uint64_t dataplane::port_counters::*rx, dataplane::port_counters::*tx;
    };
    for (const traffic_family &f :
         {traffic_family{"meshgate_port_packets_total",
                         "Packets received (rx) or sent (tx) on a port by the workers.",
                         &dataplane::port_counters::rx_packets,
                         &dataplane::port_counters::tx_packets},
          traffic_family{
              "meshgate_port_bytes_total",
              "Bytes (Ethernet frames without FCS) received (rx) or sent (tx) on a port.",
              &dataplane::port_counters::rx_bytes, &dataplane::port_counters::tx_bytes}}) {
        family(out, f.name, "counter", f.help);
        for (size_t p = 0; p < ports.size(); ++p) {
            std::string port = "port=\"" + escape(ports[p].name) + "\",direction=";
            sample(out, f.name, port + "\"rx\"", totals.ports[p].*f.rx);
            sample(out, f.name, port + "\"tx\"", totals.ports[p].*f.tx);
        }
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

void render_backend_metrics(std::string &out, const gateway_totals &totals,
                            const std::vector<config::service> &services,
                            std::span<const std::atomic<uint32_t>> active)
{
    family(out, "meshgate_connections_total", "counter", "Connections opened, by service.");
    for (size_t sv = 0; sv < services.size(); ++sv)
        sample(out, "meshgate_connections_total", "service=\"" + escape(services[sv].name) + "\"",
               totals.connections_created.at(sv));

    // One label set per task: the service's name and the task's address on the ingress network.
    std::vector<std::string> task_labels;
    for (const config::service &sv : services)
        for (const config::task &tk : sv.tasks)
            task_labels.push_back("service=\"" + escape(sv.name) + "\",task=\"" +
                                  to_string(tk.address) + "\"");

    family(out, "meshgate_active_connections", "gauge", "Connections in the table, by task.");
    for (size_t k = 0; k < task_labels.size(); ++k)
        sample(out, "meshgate_active_connections", task_labels[k],
               active[k].load(std::memory_order_relaxed));
    family(out, "meshgate_backend_packets_total", "counter",
           "Packets sent to a task (in) and received from it (out).");
    for (size_t k = 0; k < task_labels.size(); ++k) {
        sample(out, "meshgate_backend_packets_total", task_labels[k] + ",direction=\"in\"",
               totals.tasks[k].packets_in);
        sample(out, "meshgate_backend_packets_total", task_labels[k] + ",direction=\"out\"",
               totals.tasks[k].packets_out);
    }
    family(out, "meshgate_backend_bytes_total", "counter",
           "IPv4 bytes sent to a task (in) and received from it (out).");
    for (size_t k = 0; k < task_labels.size(); ++k) {
        sample(out, "meshgate_backend_bytes_total", task_labels[k] + ",direction=\"in\"",
               totals.tasks[k].bytes_in);
        sample(out, "meshgate_backend_bytes_total", task_labels[k] + ",direction=\"out\"",
               totals.tasks[k].bytes_out);
    }
}

} // namespace meshgate
