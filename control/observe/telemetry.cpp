#include "control/observe/telemetry.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <rte_telemetry.h>
#include <spdlog/spdlog.h>

#include "control/base/edge.h"
#include "control/base/net_text.h"
#include "dataplane/tcp_state.h"
#include "dataplane/version.h"

namespace meshgate
{

namespace
{

// The callbacks are plain functions: what they read, set at registration; the lock keeps it
// from going while a command is answered.
const stats_state *state = nullptr;
control_requests *requests = nullptr;
std::shared_mutex registration;

// Runs FN(d) while the gateway is there, else answers an error; so does a command that throws
// (a C callback: nothing may come out of it).
template <int (*Fn)(const char *, const char *, rte_tel_data *)>
int guarded(const char *cmd, const char *params, rte_tel_data *d)
{
    return at_edge(cmd != nullptr ? cmd : "telemetry", -1, [&] {
        std::shared_lock lock(registration);
        return state == nullptr ? -1 : Fn(cmd, params, d);
    });
}

// Under telemetry's 16 KiB reply, with room for the names of the columns.
constexpr size_t page_budget = 12 * 1024;
constexpr auto reload_wait = std::chrono::seconds(30);

std::string_view tcp_state_name(uint8_t s)
{
    static constexpr std::string_view names[] = {"NONE",        "SYN_SENT",  "SYN_RECV",
                                                 "ESTABLISHED", "FIN_WAIT",  "CLOSE_WAIT",
                                                 "LAST_ACK",    "TIME_WAIT", "CLOSE"};
    return s < std::size(names) ? names[s] : "?";
}

size_t parse_offset(const char *params)
{
    size_t v = 0;
    if (params == nullptr) return 0;
    std::string_view p(params);
    std::from_chars(p.data(), p.data() + p.size(), v);
    return v;
}

// The parameter after the first comma ("OFFSET,SERVICE"), or "".
std::string second_param(const char *params)
{
    if (params == nullptr) return "";
    std::string_view p(params);
    const size_t comma = p.find(',');
    return comma == std::string_view::npos ? "" : std::string(p.substr(comma + 1));
}

// Columns of one reply: each a string, a u64 or an int array, all of one length.
class columns
{
  public:
    void text(const char *name, std::string value)
    {
        column(name, RTE_TEL_STRING_VAL).texts.push_back(value);
    }
    void number(const char *name, uint64_t value)
    {
        column(name, RTE_TEL_U64_VAL).numbers.push_back(value);
    }
    void integer(const char *name, int value)
    {
        column(name, RTE_TEL_INT_VAL).integers.push_back(value);
    }
    size_t estimate() const { return bytes_; }

    void write(rte_tel_data *d) const
    {
        for (const col &c : cols_) {
            rte_tel_data *a = rte_tel_data_alloc();
            rte_tel_data_start_array(a, c.type);
            for (const std::string &s : c.texts)
                rte_tel_data_add_array_string(a, s.c_str());
            for (uint64_t v : c.numbers)
                rte_tel_data_add_array_u64(a, v);
            for (int v : c.integers)
                rte_tel_data_add_array_int(a, v);
            rte_tel_data_add_dict_container(d, c.name, a, 0);
        }
    }

  private:
    struct col {
        const char *name;
        rte_tel_value_type type;
        std::vector<std::string> texts;
        std::vector<uint64_t> numbers;
        std::vector<int> integers;
    };
    col &column(const char *name, rte_tel_value_type type)
    {
        bytes_ += type == RTE_TEL_STRING_VAL ? 40 : 21;
        for (col &c : cols_)
            if (std::string_view(c.name) == name) return c;
        return cols_.emplace_back(col{name, type, {}, {}, {}});
    }
    std::vector<col> cols_;
    size_t bytes_ = 0;
};

// Rows FROM.. of a listing while they fit a page; `next` when rows remain.
template <typename Row>
int page(rte_tel_data *d, size_t from, size_t count, Row row)
{
    rte_tel_data_start_dict(d);
    columns cols;
    size_t i = from;
    for (; i < count && cols.estimate() < page_budget && i - from < RTE_TEL_MAX_ARRAY_ENTRIES; ++i)
        row(cols, i);
    cols.write(d);
    rte_tel_data_add_dict_u64(d, "total", count);
    if (i < count) rte_tel_data_add_dict_u64(d, "next", i);
    return 0;
}

std::string endpoint(uint32_t ip_be, uint16_t port_be)
{
    return to_string(ipv4_address{__builtin_bswap32(ip_be)}) + ":" +
           std::to_string(__builtin_bswap16(port_be));
}

// A listing of many tasks asks page by page: one scan of the table serves them for a second.
task_states count_states(const dataplane::connection_table &t)
{
    static std::mutex mutex; // telemetry serves each client on a thread of its own
    static task_states cached;
    static std::chrono::steady_clock::time_point at;
    std::lock_guard lock(mutex);
    const auto now = std::chrono::steady_clock::now();
    if (cached.active.empty() || now - at > std::chrono::seconds(1)) {
        cached = scan_states(t);
        at = now;
    }
    return cached;
}

int cmd_info(const char *, const char *, rte_tel_data *d)
{
    auto v = state->view();
    const reload_status r = state->reload();
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "version", version());
    rte_tel_data_add_dict_u64(d, "pid", static_cast<uint64_t>(getpid()));
    rte_tel_data_add_dict_string(d, "config", v ? v->file.c_str() : "");
    rte_tel_data_add_dict_u64(d, "generation", v ? v->generation : 0);
    rte_tel_data_add_dict_u64(d, "workers", state->counters.workers.size());
    rte_tel_data_add_dict_u64(d, "services", v ? v->services.size() : 0);
    rte_tel_data_add_dict_u64(d, "tasks", v ? v->tasks.size() : 0);
    rte_tel_data_add_dict_u64(d, "connections", state->counters.connections->size());
    rte_tel_data_add_dict_u64(d, "capacity", state->counters.connections->capacity());
    rte_tel_data_add_dict_u64(d, "reloads_ok", r.ok);
    rte_tel_data_add_dict_u64(d, "reloads_error", r.error);
    rte_tel_data_add_dict_string(d, "last_reload", r.last_result.c_str());
    rte_tel_data_add_dict_string(d, "last_reload_changes", r.last_changes.c_str());
    rte_tel_data_add_dict_u64(d, "last_reload_at", static_cast<uint64_t>(r.last_at));
    rte_tel_data *errors = rte_tel_data_alloc();
    rte_tel_data_start_array(errors, RTE_TEL_STRING_VAL);
    for (const std::string &e : r.last_errors)
        rte_tel_data_add_array_string(errors, e.c_str());
    rte_tel_data_add_dict_container(d, "last_reload_errors", errors, 0);
    return 0;
}

int cmd_ports(const char *, const char *, rte_tel_data *d)
{
    auto v = state->view();
    if (!v) return -1;
    const gateway_totals totals = sum_totals(state->counters, v->ports.size());
    return page(d, 0, v->ports.size(), [&](columns &c, size_t i) {
        const port_view &p = v->ports[i];
        c.text("name", p.name);
        c.text("device", p.device);
        c.text("role", p.role);
        c.text("mac", p.mac);
        c.number("rx_packets", totals.ports[i].rx_packets);
        c.number("tx_packets", totals.ports[i].tx_packets);
        c.number("rx_bytes", totals.ports[i].rx_bytes);
        c.number("tx_bytes", totals.ports[i].tx_bytes);
    });
}

int cmd_drops(const char *, const char *, rte_tel_data *d)
{
    const gateway_totals totals = sum_totals(state->counters, 0);
    rte_tel_data_start_dict(d);
    for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
        rte_tel_data_add_dict_u64(d, std::string(dataplane::drop_reason_names[r]).c_str(),
                                  totals.drops[r]);
    return 0;
}

int cmd_events(const char *, const char *, rte_tel_data *d)
{
    const gateway_totals totals = sum_totals(state->counters, 0);
    rte_tel_data_start_dict(d);
    for (size_t e = 0; e < dataplane::event_count; ++e)
        rte_tel_data_add_dict_u64(d, std::string(dataplane::event_names[e]).c_str(),
                                  totals.events[e]);
    return 0;
}

int cmd_services(const char *, const char *params, rte_tel_data *d)
{
    auto v = state->view();
    if (!v) return -1;
    return page(d, parse_offset(params), v->services.size(), [&](columns &c, size_t i) {
        const service_view &s = v->services[i];
        uint64_t active = 0;
        for (size_t t : s.tasks)
            active += state->counters.task_active[v->tasks[t].id].load(std::memory_order_relaxed);
        c.text("name", s.name);
        c.number("id", s.id);
        c.text("scheduler", s.scheduler);
        c.number("persistence_timeout", s.persistence_timeout);
        c.text("proxy_protocol", s.proxy_protocol);
        c.text("origin", std::string(name_of(s.from)));
        c.number("tasks", s.tasks.size());
        c.number("connections", sum_service_connections(state->counters, s.id));
        c.number("active_connections", active);
    });
}

int cmd_listeners(const char *, const char *params, rte_tel_data *d)
{
    auto v = state->view();
    if (!v) return -1;
    std::vector<std::pair<const service_view *, const std::string *>> rows;
    for (const service_view &s : v->services)
        for (const std::string &p : s.ports)
            rows.emplace_back(&s, &p);
    return page(d, parse_offset(params), rows.size(), [&](columns &c, size_t i) {
        c.text("service", rows[i].first->name);
        c.text("port", *rows[i].second);
    });
}

int cmd_tasks(const char *, const char *params, rte_tel_data *d)
{
    auto v = state->view();
    if (!v) return -1;
    const task_states states = count_states(*state->counters.connections);
    const std::vector<task_rate> rates = state->rates();
    return page(d, parse_offset(params), v->tasks.size(), [&](columns &c, size_t i) {
        const task_view &t = v->tasks[i];
        const dataplane::task_counters now = sum_task(state->counters, t.id);
        const task_rate r = t.id < rates.size() ? rates[t.id] : task_rate{};
        c.text("service", t.service);
        c.text("address", to_string(t.address));
        c.number("id", t.id);
        c.text("node", t.node);
        c.number("weight", t.weight);
        c.text("state", t.state);
        c.text("origin", std::string(name_of(t.from)));
        c.number("active", states.active[t.id]);
        c.number("inactive", states.inactive[t.id]);
        c.number("connections", now.connections);
        c.number("packets_in", now.packets_in);
        c.number("packets_out", now.packets_out);
        c.number("bytes_in", now.bytes_in);
        c.number("bytes_out", now.bytes_out);
        c.number("cps", static_cast<uint64_t>(r.connections + 0.5));
        c.number("pps_in", static_cast<uint64_t>(r.packets_in + 0.5));
        c.number("pps_out", static_cast<uint64_t>(r.packets_out + 0.5));
        c.number("bps_in", static_cast<uint64_t>(r.bytes_in * 8 + 0.5));
        c.number("bps_out", static_cast<uint64_t>(r.bytes_out * 8 + 0.5));
    });
}

int cmd_conns(const char *, const char *params, rte_tel_data *d)
{
    auto v = state->view();
    if (!v) return -1;
    const dataplane::connection_table &table = *state->counters.connections;
    const std::string only = second_param(params);
    std::vector<const task_view *> task_by_id(dataplane::task_id_capacity, nullptr);
    for (const task_view &t : v->tasks)
        task_by_id[t.id] = &t;
    const uint32_t now = state->counters.now();

    rte_tel_data_start_dict(d);
    columns cols;
    uint32_t slot = static_cast<uint32_t>(std::min<size_t>(parse_offset(params), table.capacity()));
    size_t rows = 0;
    for (; slot < table.capacity() && cols.estimate() < page_budget &&
           rows < RTE_TEL_MAX_ARRAY_ENTRIES;
         ++slot) {
        const dataplane::connection &c = table.at(slot);
        if (c.live.load(std::memory_order_acquire) == 0) continue;
        const struct {
            dataplane::flow_key forward, reverse;
            uint16_t task;
        } copy_of_keys{c.forward, c.reverse, c.task};
        const uint8_t s = c.state.load(std::memory_order_relaxed);
        const uint8_t cookie = c.cookie.load(std::memory_order_acquire);
        const uint32_t seq_offset = c.seq_offset;
        const uint32_t seen = c.last_seen.load(std::memory_order_relaxed);
        const uint32_t timeout = table.timeout(c);
        if (c.live.load(std::memory_order_acquire) == 0) continue; // went while we read it
        const task_view *t =
            copy_of_keys.task < task_by_id.size() ? task_by_id[copy_of_keys.task] : nullptr;
        const std::string service = t ? t->service : "";
        if (!only.empty() && service != only) continue;
        const bool tcp = copy_of_keys.forward.proto == IPPROTO_TCP;
        const int64_t left = int64_t{seen} + timeout - now;
        cols.text("protocol", tcp ? "tcp" : "udp");
        cols.text("state",
                  std::string(tcp                                           ? tcp_state_name(s)
                              : s == uint8_t(dataplane::udp_state::replied) ? "UDP"
                                                                            : "UDP_UNREPLIED"));
        cols.number("expires", static_cast<uint64_t>(std::max<int64_t>(left, 0)));
        cols.text("client", endpoint(copy_of_keys.forward.src_ip, copy_of_keys.forward.src_port));
        cols.text("published",
                  endpoint(copy_of_keys.forward.dst_ip, copy_of_keys.forward.dst_port));
        cols.text("task", endpoint(copy_of_keys.reverse.src_ip, copy_of_keys.reverse.src_port));
        cols.text("snat", endpoint(copy_of_keys.reverse.dst_ip, copy_of_keys.reverse.dst_port));
        cols.text("service", service);
        // A SYN cookie's connection: whether the task answered, and by how much its sequence
        // numbers are moved for the client (the task's ISN - the cookie).
        cols.text("opened_by", cookie == uint8_t(dataplane::cookie_state::none) ? "syn"
                               : cookie == uint8_t(dataplane::cookie_state::open)
                                   ? "cookie"
                                   : "cookie_waiting");
        cols.number("task_seq_offset",
                    cookie == uint8_t(dataplane::cookie_state::open) ? seq_offset : 0);
        ++rows;
    }
    cols.write(d);
    rte_tel_data_add_dict_u64(d, "connections", table.size());
    if (slot < table.capacity()) rte_tel_data_add_dict_u64(d, "next", slot);
    return 0;
}

int cmd_swarm(const char *, const char *, rte_tel_data *d)
{
    const std::optional<swarm_status> s = state->swarm();
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "state",
                                 !s             ? "off"
                                 : s->connected ? "connected"
                                                : "disconnected");
    if (!s) return 0;
    rte_tel_data_add_dict_u64(d, "following_events", s->following_events);
    for (auto [name, value] :
         {std::pair{"reads", s->reads}, std::pair{"read_errors", s->read_errors},
          std::pair{"events", s->events}, std::pair{"resyncs", s->resyncs},
          std::pair{"changes_applied", s->applied}, std::pair{"changes_refused", s->apply_errors},
          std::pair<const char *, uint64_t>{"services", s->services},
          std::pair<const char *, uint64_t>{"tasks", s->tasks},
          std::pair<const char *, uint64_t>{"nodes", s->nodes}})
        rte_tel_data_add_dict_u64(d, name, value);
    for (auto [name, at] :
         {std::pair{"last_event_at", s->last_event_at}, std::pair{"last_read_at", s->last_read_at},
          std::pair{"last_resync_at", s->last_resync_at},
          std::pair{"last_change_at", s->last_change_at}})
        rte_tel_data_add_dict_u64(d, name, static_cast<uint64_t>(at));
    rte_tel_data_add_dict_string(d, "last_error", s->last_error.c_str());
    return 0;
}

// This gateway in its [cluster] and one column each of what it knows of its peers (in 22.11 a
// container holds no container: no list of dicts): meshgatectl cluster.
int cmd_cluster(const char *, const char *, rte_tel_data *d)
{
    const std::optional<cluster::group_status> c = state->cluster();
    rte_tel_data_start_dict(d);
    if (!c) {
        rte_tel_data_add_dict_string(d, "state", "off");
        rte_tel_data_add_dict_string(d, "error", "no [cluster] in the configuration");
        return 0;
    }
    auto name = [](cluster::member_state s) {
        return std::string(cluster::member_state_names[static_cast<size_t>(s)]);
    };
    rte_tel_data_add_dict_string(d, "name", c->name.c_str());
    rte_tel_data_add_dict_string(d, "state", name(c->state).c_str());
    rte_tel_data_add_dict_u64(d, "own_connections", c->own_connections);
    rte_tel_data_add_dict_u64(d, "takeovers", c->takeovers);
    rte_tel_data_add_dict_u64(d, "last_takeover_ms",
                              static_cast<uint64_t>(std::max(c->last_takeover_ms, 0.0) + 0.5));
    // The reasons of meshgate_cluster_refused_total.
    rte_tel_data *refused = rte_tel_data_alloc();
    rte_tel_data_start_dict(refused);
    for (size_t e = 0; e < c->refused.size(); ++e)
        rte_tel_data_add_dict_u64(refused, std::string(cluster::wire_error_names[e]).c_str(),
                                  c->refused[e]);
    for (auto [reason, n] :
         {std::pair{"source", c->refused_source}, std::pair{"replay", c->refused_replay},
          std::pair{"unknown_task", c->records_unknown},
          std::pair{"install_queue_full", c->installs_lost},
          std::pair{"send_error", c->send_errors}})
        rte_tel_data_add_dict_u64(refused, reason, n);
    rte_tel_data_add_dict_container(d, "refused", refused, 0);
    columns peers;
    for (const cluster::peer_status &p : c->peers) {
        peers.text("peer", p.name);
        peers.text("address", to_string(ipv4_address{__builtin_bswap32(p.address)}));
        peers.text("health",
                   std::string(cluster::peer_health_names[static_cast<size_t>(p.health)]));
        peers.text("says", name(p.says));
        peers.number("adopted", p.adopted);
        peers.number("synced_us", p.synced_us);
        peers.integer("heard_ms_ago", p.heard_ms_ago < 0 ? -1
                                      : p.heard_ms_ago >= INT_MAX
                                          ? INT_MAX
                                          : static_cast<int>(p.heard_ms_ago + 0.5));
        peers.number("messages_in", p.messages_in);
        peers.number("messages_out", p.messages_out);
        peers.number("records_in", p.records_in);
        peers.number("records_out", p.records_out);
        peers.number("connections", p.connections);
    }
    peers.write(d);
    return 0;
}

int cmd_reload(const char *, const char *, rte_tel_data *d)
{
    rte_tel_data_start_dict(d);
    std::optional<reload_reply> r = requests->reload(reload_wait);
    if (!r) {
        rte_tel_data_add_dict_string(d, "result", "timeout");
        return 0;
    }
    rte_tel_data_add_dict_string(d, "result", r->ok ? "ok" : "error");
    rte_tel_data_add_dict_u64(d, "generation", r->generation);
    rte_tel_data_add_dict_string(d, "changes", r->changes.c_str());
    rte_tel_data *errors = rte_tel_data_alloc();
    rte_tel_data_start_array(errors, RTE_TEL_STRING_VAL);
    for (const std::string &e : r->errors)
        rte_tel_data_add_array_string(errors, e.c_str());
    rte_tel_data_add_dict_container(d, "errors", errors, 0);
    return 0;
}

// Parameters: none (the status), "start[,DEADLINE_S][,stop]" or "cancel". A start or a cancel
// is carried out by the control thread within its next pass; the status then shows it.
int cmd_drain(const char *, const char *params, rte_tel_data *d)
{
    const std::string p = params != nullptr ? params : "";
    std::vector<std::string> words;
    for (size_t at = 0; at <= p.size() && !p.empty();) {
        const size_t comma = std::min(p.find(',', at), p.size());
        words.push_back(p.substr(at, comma - at));
        at = comma + 1;
    }
    rte_tel_data_start_dict(d);
    if (!words.empty()) {
        drain_order order;
        if (words[0] == "cancel") {
            order.cancel = true;
        } else if (words[0] == "start") {
            for (size_t i = 1; i < words.size(); ++i) {
                double seconds = 0;
                if (words[i] == "stop")
                    order.stop = true;
                else if (auto [end, ec] = std::from_chars(
                             words[i].data(), words[i].data() + words[i].size(), seconds);
                         ec == std::errc{} && end == words[i].data() + words[i].size() &&
                         seconds >= 0)
                    order.deadline_s = seconds;
                else
                    return -EINVAL;
            }
        } else {
            return -EINVAL;
        }
        requests->order_drain(order);
        rte_tel_data_add_dict_string(d, "order", "accepted");
    }
    const drain_status s = state->drain();
    rte_tel_data_add_dict_u64(d, "draining", s.draining);
    rte_tel_data_add_dict_u64(d, "ended", s.ended);
    rte_tel_data_add_dict_u64(d, "stop", s.stop);
    rte_tel_data_add_dict_int(d, "deadline_left_ms",
                              s.deadline_left < 0 ? -1 : static_cast<int>(s.deadline_left * 1000));
    rte_tel_data_add_dict_u64(d, "established", s.established);
    rte_tel_data_add_dict_u64(d, "left", s.left);
    rte_tel_data_add_dict_u64(d, "carried", s.carried);
    rte_tel_data *addresses = rte_tel_data_alloc();
    rte_tel_data_start_array(addresses, RTE_TEL_STRING_VAL);
    for (const address_status &a : s.addresses)
        rte_tel_data_add_array_string(addresses,
                                      (a.address + (a.announced ? " announced" : " withdrawn") +
                                       (a.error.empty() ? "" : " (" + a.error + ")"))
                                          .c_str());
    rte_tel_data_add_dict_container(d, "addresses", addresses, 0);
    return 0;
}

} // namespace

void register_telemetry(const stats_state &s, control_requests &r)
{
    {
        std::unique_lock lock(registration);
        state = &s;
        requests = &r;
    }
    struct command {
        const char *name;
        telemetry_cb fn;
        const char *help;
    };
    for (const command &c : {
             command{"/meshgate/info", guarded<cmd_info>,
                     "Version, configuration generation, sizes, last reload. No parameters"},
             command{"/meshgate/ports", guarded<cmd_ports>,
                     "Ports with their counters. No parameters"},
             command{"/meshgate/drops", guarded<cmd_drops>,
                     "Dropped packets by reason. No parameters"},
             command{"/meshgate/events", guarded<cmd_events>,
                     "ARP and ICMP the gateway answered or sent. No parameters"},
             command{"/meshgate/services", guarded<cmd_services>,
                     "Services, a page at a time. Parameter: offset"},
             command{"/meshgate/listeners", guarded<cmd_listeners>,
                     "Published ports of each service. Parameter: offset"},
             command{"/meshgate/tasks", guarded<cmd_tasks>,
                     "Tasks with weights, connections and rates. Parameter: offset"},
             command{"/meshgate/conns", guarded<cmd_conns>,
                     "Connections, a page at a time. Parameters: slot offset[,service]"},
             command{"/meshgate/swarm", guarded<cmd_swarm>,
                     "The swarm sync: connected, last event, last full read, errors. No "
                     "parameters"},
             command{"/meshgate/cluster", guarded<cmd_cluster>,
                     "This gateway in its [cluster] and its peers: health, state, sync "
                     "counters, takeovers. No parameters"},
             command{"/meshgate/drain", guarded<cmd_drain>,
                     "Withdraw the routed addresses. Parameters: none (status), "
                     "start[,DEADLINE_S][,stop], cancel"},
             command{"/meshgate/reload", guarded<cmd_reload>,
                     "Reloads the configuration file; answers what changed or the errors"},
         })
        if (rte_telemetry_register_cmd(c.name, c.fn, c.help) != 0) // a help text too long
            spdlog::error("telemetry command {} not registered", c.name);
}

void unregister_telemetry()
{
    std::unique_lock lock(registration);
    state = nullptr;
    requests = nullptr;
}

} // namespace meshgate
