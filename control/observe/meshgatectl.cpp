// meshgatectl: the running gateway seen and reloaded through its DPDK telemetry socket.
//   meshgatectl [--file-prefix PREFIX] services|conns|stats|reload|swarm|cluster [--json]
//   meshgatectl [--file-prefix PREFIX] drain [--deadline S] [--stop] [--cancel]
// Tables for people by default (services like `ipvsadm -Ln --rate`, conns like `ipvsadm -Lnc`,
// cluster a line for this gateway and one per peer), one JSON document with --json. Exit status
// 0, or 1 when the gateway is not there, a reload was rejected, or `cluster` asks a gateway
// without [cluster].
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "control/observe/telemetry_client.h"
#include "dataplane/version.h"

namespace
{

using json = nlohmann::ordered_json;
using meshgate::rows_of;
using meshgate::telemetry_client;

std::string text(const json &v)
{
    return v.is_string() ? v.get<std::string>() : v.dump();
}

// expires as ipvsadm shows it: MM:SS.
std::string mm_ss(uint64_t seconds)
{
    return fmt::format("{:02}:{:02}", seconds / 60, seconds % 60);
}

// Services with their published ports and their tasks, as one document.
json services_document(telemetry_client &gw)
{
    json services = rows_of(gw.call_all("/meshgate/services"));
    const json listeners = rows_of(gw.call_all("/meshgate/listeners"));
    const json tasks = rows_of(gw.call_all("/meshgate/tasks"));
    json removed = json::array();
    for (json &s : services) {
        s["ports"] = json::array();
        s["tasks"] = json::array();
        for (const json &l : listeners)
            if (l["service"] == s["name"]) s["ports"].push_back(l["port"]);
    }
    for (const json &t : tasks) {
        bool placed = false;
        for (json &s : services)
            if (s["name"] == t["service"]) {
                s["tasks"].push_back(t);
                placed = true;
            }
        if (!placed) removed.push_back(t); // its service left the config; it ends with its grace
    }
    return json{
        {"services", services}, {"removed_tasks", removed}, {"drain", gw.call("/meshgate/drain")}};
}

// "draining, 2 addresses withdrawn" or "serving, 203.0.113.10 announced".
std::string drain_line(const json &d)
{
    std::string addresses;
    for (const json &a : d.value("addresses", json::array()))
        addresses += (addresses.empty() ? "" : ", ") + text(a);
    return fmt::format("{}{}{}", d["draining"] == 1 ? "draining" : "serving",
                       addresses.empty() ? "" : "; routed addresses: ", addresses);
}

void print_task(const json &t)
{
    std::cout << fmt::format("  -> {:<15} {:<12} {:>6} {:<9} {:>10} {:>9} {:>9} {:>6} {:>8} "
                             "{:>8} {:>10} {:>10}\n",
                             text(t["address"]), text(t["node"]), text(t["weight"]),
                             text(t["state"]), text(t["active"]), text(t["inactive"]),
                             text(t["connections"]), text(t["cps"]), text(t["pps_in"]),
                             text(t["pps_out"]), text(t["bps_in"]), text(t["bps_out"]));
}

int services(telemetry_client &gw, bool as_json)
{
    const json doc = services_document(gw);
    if (as_json) {
        std::cout << doc.dump(2) << "\n";
        return 0;
    }
    const json info = gw.call("/meshgate/info");
    std::cout << fmt::format("meshgate {}, configuration generation {} ({}), {} of {} "
                             "connections\n",
                             text(info["version"]), text(info["generation"]), text(info["config"]),
                             text(info["connections"]), text(info["capacity"]));
    std::cout << drain_line(doc["drain"]) << "\n";
    std::cout << fmt::format("{:<20} {:<9} {:>7} {:<5} {:<6}  {}\n", "Service", "Scheduler",
                             "Persist", "Proxy", "Origin", "Published -> target port");
    std::cout << fmt::format("  -> {:<15} {:<12} {:>6} {:<9} {:>10} {:>9} {:>9} {:>6} {:>8} "
                             "{:>8} {:>10} {:>10}\n",
                             "Task", "Node", "Weight", "State", "ActiveConn", "InActConn", "Conns",
                             "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS");
    for (const json &s : doc["services"]) {
        std::string ports;
        for (const json &p : s["ports"])
            ports += (ports.empty() ? "" : ", ") + text(p);
        std::cout << fmt::format("{:<20} {:<9} {:>7} {:<5} {:<6}  {}\n", text(s["name"]),
                                 text(s["scheduler"]), text(s["persistence_timeout"]),
                                 text(s["proxy_protocol"]), text(s["origin"]), ports);
        for (const json &t : s["tasks"])
            print_task(t);
    }
    if (!doc["removed_tasks"].empty()) {
        std::cout << "tasks of removed services, until removed_task_grace ends:\n";
        for (const json &t : doc["removed_tasks"]) {
            std::cout << "  " << text(t["service"]) << "\n";
            print_task(t);
        }
    }
    return 0;
}

int conns(telemetry_client &gw, const std::string &service, size_t limit, bool as_json)
{
    json all = gw.call_all("/meshgate/conns", service, limit);
    json rows = rows_of(all);
    if (rows.size() > limit) rows.erase(rows.begin() + static_cast<ptrdiff_t>(limit), rows.end());
    if (as_json) {
        std::cout << json{{"connections", rows}, {"total", all.value("connections", 0)}}.dump(2)
                  << "\n";
        return 0;
    }
    std::cout << fmt::format("{} connection entries\n", text(all.value("connections", json(0))));
    std::cout << fmt::format("{:<4} {:<6} {:<12} {:<21} {:<21} {:<21} {:<21} {:<16} {}\n", "pro",
                             "expire", "state", "source", "virtual", "destination", "snat",
                             "service", "opened");
    for (const json &c : rows)
        std::cout << fmt::format("{:<4} {:<6} {:<12} {:<21} {:<21} {:<21} {:<21} {:<16} {}\n",
                                 c["protocol"] == "tcp" ? "TCP" : "UDP",
                                 mm_ss(c["expires"].get<uint64_t>()), text(c["state"]),
                                 text(c["client"]), text(c["published"]), text(c["task"]),
                                 text(c["snat"]), text(c["service"]), text(c["opened_by"]));
    return 0;
}

int stats(telemetry_client &gw, bool as_json)
{
    const json doc{{"info", gw.call("/meshgate/info")},
                   {"ports", rows_of(gw.call_all("/meshgate/ports"))},
                   {"drops", gw.call("/meshgate/drops")},
                   {"events", gw.call("/meshgate/events")}};
    if (as_json) {
        std::cout << doc.dump(2) << "\n";
        return 0;
    }
    const json &info = doc["info"];
    std::cout << fmt::format("meshgate {} (pid {}), configuration generation {} ({})\n",
                             text(info["version"]), text(info["pid"]), text(info["generation"]),
                             text(info["config"]));
    std::cout << fmt::format("workers {}, services {}, tasks {}, connections {} of {}\n",
                             text(info["workers"]), text(info["services"]), text(info["tasks"]),
                             text(info["connections"]), text(info["capacity"]));
    std::cout << fmt::format("reloads ok {}, error {}; last: {} {}\n", text(info["reloads_ok"]),
                             text(info["reloads_error"]), text(info["last_reload"]),
                             text(info["last_reload_changes"]));
    std::cout << fmt::format("\n{:<10} {:<9} {:>14} {:>14} {:>16} {:>16}\n", "port", "role",
                             "rx packets", "tx packets", "rx bytes", "tx bytes");
    for (const json &p : doc["ports"])
        std::cout << fmt::format("{:<10} {:<9} {:>14} {:>14} {:>16} {:>16}\n", text(p["name"]),
                                 text(p["role"]), text(p["rx_packets"]), text(p["tx_packets"]),
                                 text(p["rx_bytes"]), text(p["tx_bytes"]));
    std::cout << "\ndrops\n";
    for (auto &[reason, n] : doc["drops"].items())
        std::cout << fmt::format("  {:<22} {:>14}\n", reason, text(n));
    std::cout << "\nevents\n";
    for (auto &[name, n] : doc["events"].items())
        std::cout << fmt::format("  {:<22} {:>14}\n", name, text(n));
    return 0;
}

// "12 s ago" for a time in seconds since the epoch; "never" for 0.
std::string ago(const json &at)
{
    const uint64_t t = at.is_number() ? at.get<uint64_t>() : 0;
    if (t == 0) return "never";
    const auto now = static_cast<uint64_t>(std::time(nullptr));
    return fmt::format("{} s ago", now > t ? now - t : 0);
}

int swarm(telemetry_client &gw, bool as_json)
{
    const json s = gw.call("/meshgate/swarm");
    if (as_json) {
        std::cout << s.dump(2) << "\n";
        return 0;
    }
    std::cout << fmt::format("swarm sync: {}\n", text(s["state"]));
    if (s["state"] == "off") return 0;
    std::cout << fmt::format("  events        {} ({} received, last {})\n",
                             s["following_events"] == 1 ? "followed" : "not followed",
                             text(s["events"]), ago(s["last_event_at"]));
    std::cout << fmt::format("  reads         {} ok, {} failed, last {}\n", text(s["reads"]),
                             text(s["read_errors"]), ago(s["last_read_at"]));
    std::cout << fmt::format("  full resyncs  {}, last {}\n", text(s["resyncs"]),
                             ago(s["last_resync_at"]));
    std::cout << fmt::format("  changes       {} applied, {} refused, last {}\n",
                             text(s["changes_applied"]), text(s["changes_refused"]),
                             ago(s["last_change_at"]));
    std::cout << fmt::format("  serving       {} services, {} tasks on {} nodes\n",
                             text(s["services"]), text(s["tasks"]), text(s["nodes"]));
    if (!text(s["last_error"]).empty())
        std::cout << fmt::format("  last error    {}\n", text(s["last_error"]));
    return 0;
}

// "40 ms ago" below 10 s, "12.3 s ago" above, "never" for -1.
std::string heard(const json &ms)
{
    const int64_t v = ms.is_number() ? ms.get<int64_t>() : -1;
    if (v < 0) return "never";
    return v < 10000 ? fmt::format("{} ms ago", v) : fmt::format("{:.1f} s ago", v / 1000.0);
}

// This gateway in its [cluster], then one line per peer and the refusals that happened:
//   cluster gw-a: serving, 12 connection(s) of its own, 1 takeover(s) (last 0.301 s)
//     gw-b 192.168.50.2: alive (serving), heard 40 ms ago, 3 connection(s) here, messages
//     in/out 120/118, records in/out 30/29, its addresses taken over
//   refused: bad_mac 3, replay 1
int cluster(telemetry_client &gw, bool as_json)
{
    const json c = gw.call("/meshgate/cluster");
    if (c["state"] == "off") {
        std::cerr << "meshgatectl: "
                  << text(c.value("error", json("no [cluster] in the configuration"))) << "\n";
        return 1;
    }
    // The peers' columns as rows, each named first.
    json doc = json::object();
    for (auto &[key, value] : c.items())
        if (!value.is_array()) doc[key] = value;
    doc["peers"] = json::array();
    for (const json &row : rows_of(c)) {
        json p{{"name", row.value("peer", json(""))}};
        for (auto &[key, value] : row.items())
            if (key != "peer") p[key] = value;
        doc["peers"].push_back(p);
    }
    if (as_json) {
        std::cout << doc.dump(2) << "\n";
        return 0;
    }
    const uint64_t takeovers = doc.value("takeovers", uint64_t{0});
    std::cout << fmt::format(
        "cluster {}: {}, {} connection(s) of its own, {} takeover(s){}\n", text(doc["name"]),
        text(doc["state"]), text(doc["own_connections"]), takeovers,
        takeovers == 0
            ? ""
            : fmt::format(" (last {:.3f} s)", doc.value("last_takeover_ms", uint64_t{0}) / 1000.0));
    for (const json &p : doc["peers"])
        std::cout << fmt::format("  {} {}: {} ({}), heard {}, {} connection(s) here, messages "
                                 "in/out {}/{}, records in/out {}/{}{}\n",
                                 text(p["name"]), text(p["address"]), text(p["health"]),
                                 text(p["says"]), heard(p["heard_ms_ago"]), text(p["connections"]),
                                 text(p["messages_in"]), text(p["messages_out"]),
                                 text(p["records_in"]), text(p["records_out"]),
                                 p["adopted"] == 1 ? ", its addresses taken over" : "");
    std::string refused;
    const json reasons = doc.value("refused", json::object());
    for (auto &[reason, n] : reasons.items())
        if (n.is_number() && n.get<uint64_t>() != 0)
            refused += fmt::format("{}{} {}", refused.empty() ? "" : ", ", reason, text(n));
    if (!refused.empty()) std::cout << "refused: " << refused << "\n";
    return 0;
}

int reload(telemetry_client &gw, bool as_json)
{
    const json r = gw.call("/meshgate/reload");
    const bool ok = r["result"] == "ok";
    if (as_json) {
        std::cout << r.dump(2) << "\n";
    } else if (ok) {
        std::cout << fmt::format("reloaded: generation {}: {}\n", text(r["generation"]),
                                 text(r["changes"]));
    } else {
        for (const json &e : r.value("errors", json::array()))
            std::cerr << text(e) << "\n";
        std::cerr << "reload " << text(r["result"]) << ": the running configuration stays\n";
    }
    return ok ? 0 : 1;
}

// Withdraws the addresses and follows the drain until it ends: no TCP connection established
// any more, or the deadline; prints how many were left.
int drain(telemetry_client &gw, double deadline, bool stop, bool cancel, bool as_json)
{
    std::string order = cancel ? "cancel" : fmt::format("start,{}", deadline);
    if (stop && !cancel) order += ",stop";
    json d = gw.call("/meshgate/drain," + order);
    if (cancel) {
        // The control thread takes the order within its next pass.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        d = gw.call("/meshgate/drain");
        if (as_json)
            std::cout << d.dump(2) << "\n";
        else
            std::cout << drain_line(d) << "\n";
        return d["draining"] == 0 ? 0 : 1;
    }
    uint64_t shown = UINT64_MAX;
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        try {
            d = gw.call("/meshgate/drain");
        } catch (const std::exception &) {
            if (stop) break; // it stopped as asked
            throw;
        }
        if (d["draining"] != 1) continue; // the order is not taken yet
        if (d["ended"] == 1) break;
        const auto established = d["established"].get<uint64_t>();
        if (!as_json && established != shown)
            std::cout << fmt::format(
                "draining: {} established connection(s){}\n", established,
                d["deadline_left_ms"].get<int64_t>() >= 0
                    ? fmt::format(", {:.1f} s to the deadline",
                                  d["deadline_left_ms"].get<int64_t>() / 1000.0)
                    : "");
        shown = established;
    }
    if (as_json) {
        std::cout << d.dump(2) << "\n";
    } else {
        std::cout << fmt::format(
            "drained: {} established connection(s) left{}; {}\n", text(d.value("left", json(0))),
            d.value("carried", 0) == 1 ? ", carried by the group's peers" : "", drain_line(d));
        if (stop) std::cout << "the gateway stops\n";
    }
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    CLI::App app{"meshgatectl: look at and reload a running meshgate through its DPDK "
                 "telemetry socket"};
    std::string prefix = "meshgate";
    bool as_json = false;
    app.add_option("--file-prefix", prefix, "the gateway's [dpdk] file_prefix (default meshgate)");
    app.add_flag("--json", as_json, "one JSON document instead of tables");
    app.set_version_flag("--version", std::string("meshgatectl ") + meshgate::version());
    app.require_subcommand(1);

    auto *services_cmd = app.add_subcommand("services", "services and their tasks (ipvsadm -Ln)");
    auto *conns_cmd = app.add_subcommand("conns", "connections (ipvsadm -Lnc)");
    std::string only;
    size_t limit = 1000;
    conns_cmd->add_option("--service", only, "only this service's connections");
    conns_cmd->add_option("--limit", limit, "at most this many (default 1000)");
    auto *stats_cmd = app.add_subcommand("stats", "counters of ports, drops and events");
    auto *reload_cmd = app.add_subcommand("reload", "reload the configuration file");
    auto *swarm_cmd = app.add_subcommand("swarm", "the swarm sync: connected, events, errors");
    auto *cluster_cmd = app.add_subcommand(
        "cluster", "this gateway in its [cluster]: the peers, their health, sync and takeovers");
    auto *drain_cmd = app.add_subcommand(
        "drain", "withdraw the published addresses from the routers, serve what still arrives "
                 "until no connection is established or the deadline, say how many were left");
    double deadline = 60;
    bool stop = false, cancel = false;
    drain_cmd->add_option("--deadline", deadline, "seconds at most (default 60; 0 = none)")
        ->check(CLI::NonNegativeNumber);
    drain_cmd->add_flag("--stop", stop, "stop the gateway when the drain ends");
    drain_cmd->add_flag("--cancel", cancel, "announce the addresses again");
    for (CLI::App *c :
         {services_cmd, conns_cmd, stats_cmd, reload_cmd, swarm_cmd, cluster_cmd, drain_cmd})
        c->add_flag("--json", as_json, "one JSON document instead of tables");
    CLI11_PARSE(app, argc, argv);

    try {
        telemetry_client gw(prefix);
        if (*services_cmd) return services(gw, as_json);
        if (*conns_cmd) return conns(gw, only, limit, as_json);
        if (*stats_cmd) return stats(gw, as_json);
        if (*swarm_cmd) return swarm(gw, as_json);
        if (*cluster_cmd) return cluster(gw, as_json);
        if (*drain_cmd) return drain(gw, deadline, stop, cancel, as_json);
        return reload(gw, as_json);
    } catch (const std::exception &e) {
        std::cerr << "meshgatectl: " << e.what() << "\n";
        return 1;
    }
}
