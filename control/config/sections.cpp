#include "control/config/sections.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "control/config/lcores.h"

namespace meshgate::config
{

namespace
{

constexpr size_t max_extra_args = 64;

// A TCP/UDP port number 1..65535 that uses all of TEXT.
std::optional<uint16_t> parse_port_number(std::string_view text)
{
    unsigned v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v < 1 || v > 65535)
        return std::nullopt;
    return static_cast<uint16_t>(v);
}

// Expands TEXT into D's lcores and checks it names >= 2 lcores on CPUs that exist here.
void check_lcores(dpdk_section &d, source_position at, error_list &errors,
                  const load_options &options)
{
    const std::string &text = d.lcores;
    lcore_list list = parse_lcore_list(text);
    if (!list.error.empty()) {
        errors.add(at, "lcores " + in_quotes(text) + ": " + list.error +
                           ", expected a list like '0-1', '0,2-3' or '0@0,1@1,2@1'");
        return;
    }
    d.lcore_ids = list.ids;
    d.lcore_cpus = list.cpus;
    d.lcores_pinned = list.pinned;
    if (list.ids.size() < 2) {
        errors.add(at, "lcores " + in_quotes(text) +
                           " names 1 lcore, at least 2 are needed (control + worker)");
        return;
    }
    const std::vector<unsigned> cpus = options.cpus.empty() ? available_cpus() : options.cpus;
    std::vector<unsigned> missing;
    for (unsigned cpu : list.cpus)
        if (std::find(cpus.begin(), cpus.end(), cpu) == cpus.end() &&
            std::find(missing.begin(), missing.end(), cpu) == missing.end())
            missing.push_back(cpu);
    const std::string_view what = list.pinned ? "cpu" : "lcore";
    if (!missing.empty())
        errors.add(at, std::string(what) + (missing.size() == 1 ? " " : "s ") +
                           format_lcore_list(missing) + (missing.size() == 1 ? " does" : " do") +
                           " not exist on this machine (cpus: " + format_lcore_list(cpus) + ")");
}

std::vector<std::string> read_extra_args(const field &f)
{
    std::vector<std::string> args;
    auto entries = f.entries();
    if (!entries) return args;
    if (entries->size() > max_extra_args) {
        f.error("extra_args has " + std::to_string(entries->size()) + " entries, at most " +
                std::to_string(max_extra_args));
        return args;
    }
    for (const field &e : *entries)
        if (auto s = e.text()) args.push_back(*s);
    return args;
}

// unix:///PATH or tcp://HOST:PORT
bool valid_endpoint(std::string_view e)
{
    if (e.starts_with("unix://")) return e.size() > 8 && e[7] == '/';
    if (!e.starts_with("tcp://")) return false;
    e.remove_prefix(6);
    const size_t colon = e.rfind(':');
    return colon != std::string_view::npos && colon > 0 &&
           e.substr(0, colon).find('/') == std::string_view::npos &&
           parse_port_number(e.substr(colon + 1));
}

// "" or HOST:PORT with an IPv4 host.
bool valid_listen(std::string_view l)
{
    if (l.empty()) return true;
    const size_t colon = l.rfind(':');
    return colon != std::string_view::npos && parse_ipv4(l.substr(0, colon)) &&
           parse_port_number(l.substr(colon + 1));
}

void read_timeout(const table_reader &t, std::string_view key, uint32_t &seconds,
                  int64_t min_seconds = 1)
{
    constexpr int64_t max_seconds = int64_t{1} << 31;
    if (auto v = t.get(key).integer(min_seconds, max_seconds)) seconds = static_cast<uint32_t>(*v);
}

} // namespace

dpdk_section read_dpdk(const table_reader &root, const load_options &options)
{
    dpdk_section d;
    d.at = root.at();
    const toml::value *table = root.table("dpdk");
    if (!table) {
        check_lcores(d, root.at(), root.errors(), options);
        return d;
    }
    table_reader t(*table, "dpdk", false,
                   {"lcores", "memory_mb", "no_huge", "file_prefix", "extra_args", "mbufs",
                    "rx_descriptors", "tx_descriptors"},
                   root.errors());
    d.at = t.at();
    field lcores = t.get("lcores");
    if (auto s = lcores.text()) d.lcores = *s;
    if (!lcores || lcores.value().is_string())
        check_lcores(d, lcores ? lcores.at() : t.at(), t.errors(), options);
    field memory = t.get("memory_mb");
    if (auto v = memory.integer(1, 1 << 20)) {
        d.memory_mb = static_cast<uint32_t>(*v);
        d.memory_at = memory.at();
    }
    if (auto v = t.get("no_huge").boolean()) d.no_huge = *v;
    if (auto v = t.get("file_prefix").name_text(64)) d.file_prefix = *v;
    d.extra_args = read_extra_args(t.get("extra_args"));
    field mbufs = t.get("mbufs");
    if (auto v = mbufs.integer(1023, 1 << 27)) {
        d.mbufs = static_cast<uint32_t>(*v);
        d.mbufs_at = mbufs.at();
    }
    if (auto v = t.get("rx_descriptors").integer(64, 16384))
        d.rx_descriptors = static_cast<uint16_t>(*v);
    if (auto v = t.get("tx_descriptors").integer(64, 16384))
        d.tx_descriptors = static_cast<uint16_t>(*v);
    return d;
}

std::optional<swarm_section> read_swarm(const table_reader &root)
{
    const toml::value *table = root.table("swarm");
    if (!table) return std::nullopt;
    table_reader t(*table, "swarm", false,
                   {"endpoint", "network", "tls_cert", "tls_key", "tls_ca", "poll_interval_ms",
                    "resync_interval_ms"},
                   root.errors());
    swarm_section s;
    field endpoint = t.required("endpoint");
    if (auto e = endpoint.text()) {
        s.endpoint = *e;
        if (!valid_endpoint(*e))
            endpoint.error("endpoint " + in_quotes(*e) + " is not unix:///PATH or tcp://HOST:PORT");
    }
    if (auto n = t.get("network").name_text(64, true)) s.network = *n;
    for (auto [key, value] : {std::pair{"tls_cert", &s.tls_cert}, std::pair{"tls_key", &s.tls_key},
                              std::pair{"tls_ca", &s.tls_ca}}) {
        field f = t.get(key);
        if (auto v = f.text()) {
            *value = *v;
            if (v->empty())
                f.error(std::string(key) + " must not be empty");
            else if (!s.endpoint.starts_with("tcp://"))
                f.error(std::string(key) + " is only used with a tcp:// endpoint");
        }
    }
    if (auto v = t.get("poll_interval_ms").integer(100, 60000))
        s.poll_interval_ms = static_cast<uint32_t>(*v);
    if (auto v = t.get("resync_interval_ms").integer(1000, 3600000))
        s.resync_interval_ms = static_cast<uint32_t>(*v);
    if (s.tls_cert.empty() != s.tls_key.empty())
        t.errors().add(t.at(), "tls_cert and tls_key must be given together in [swarm]");
    return s;
}

limits_section read_limits(const table_reader &root)
{
    limits_section l;
    const toml::value *table = root.table("limits");
    if (!table) return l;
    table_reader t(*table, "limits", false,
                   {"connections", "icmp_errors_per_second", "new_connections_per_source",
                    "reset_unpublished", "tcp_resets_per_second", "arp_replies_per_second",
                    "kernel_packets_per_second", "kernel_syns_per_second", "syn_cookies",
                    "syn_cookie_secret"},
                   root.errors());
    field connections = t.get("connections");
    if (auto v = connections.integer(1, 134217728)) {
        l.connections = static_cast<uint32_t>(*v);
        l.connections_at = connections.at();
    }
    if (auto v = t.get("icmp_errors_per_second").integer(0, INT32_MAX))
        l.icmp_errors_per_second = static_cast<uint32_t>(*v);
    if (auto v = t.get("new_connections_per_source").integer(0, INT32_MAX))
        l.new_connections_per_source = static_cast<uint32_t>(*v);
    if (auto v = t.get("reset_unpublished").boolean()) l.reset_unpublished = *v;
    if (auto v = t.get("tcp_resets_per_second").integer(0, INT32_MAX))
        l.tcp_resets_per_second = static_cast<uint32_t>(*v);
    if (auto v = t.get("arp_replies_per_second").integer(0, INT32_MAX))
        l.arp_replies_per_second = static_cast<uint32_t>(*v);
    if (auto v = t.get("kernel_packets_per_second").integer(0, INT32_MAX))
        l.kernel_packets_per_second = static_cast<uint32_t>(*v);
    if (auto v = t.get("kernel_syns_per_second").integer(0, INT32_MAX))
        l.kernel_syns_per_second = static_cast<uint32_t>(*v);
    if (auto v = t.get("syn_cookies").choice(dataplane::syn_cookie_mode_names))
        l.syn_cookies = static_cast<dataplane::syn_cookie_mode>(*v);
    field secret = t.get("syn_cookie_secret");
    if (auto v = secret.text()) {
        // 32 hex digits: the 128-bit SipHash key, shared by the gateways of a group.
        const std::string &hex = *v;
        const bool hex_ok = hex.size() == 32 && std::all_of(hex.begin(), hex.end(), [](char ch) {
                                return std::isxdigit(static_cast<unsigned char>(ch)) != 0;
                            });
        if (!hex_ok)
            secret.error("syn_cookie_secret must be 32 hex digits (a 128-bit key), not \"" + hex +
                         "\"");
        else
            l.syn_cookie_secret =
                dataplane::siphash_key{std::stoull(hex.substr(0, 16), nullptr, 16),
                                       std::stoull(hex.substr(16), nullptr, 16)};
    }
    return l;
}

timeouts_section read_timeouts(const table_reader &root)
{
    timeouts_section s;
    const toml::value *table = root.table("timeouts");
    if (!table) return s;
    table_reader t(*table, "timeouts", false,
                   {"tcp_established", "tcp_fin", "tcp_close", "tcp_syn", "udp", "udp_unreplied",
                    "half_open_under_pressure", "removed_task_grace"},
                   root.errors());
    read_timeout(t, "tcp_established", s.tcp_established);
    read_timeout(t, "tcp_fin", s.tcp_fin);
    read_timeout(t, "tcp_close", s.tcp_close);
    read_timeout(t, "tcp_syn", s.tcp_syn);
    read_timeout(t, "udp", s.udp);
    read_timeout(t, "udp_unreplied", s.udp_unreplied);
    read_timeout(t, "half_open_under_pressure", s.half_open_under_pressure);
    read_timeout(t, "removed_task_grace", s.removed_task_grace, 0);
    return s;
}

stats_section read_stats(const table_reader &root)
{
    stats_section s;
    const toml::value *table = root.table("stats");
    if (!table) return s;
    table_reader t(*table, "stats", false, {"listen"}, root.errors());
    field listen = t.get("listen");
    if (auto l = listen.text()) {
        s.listen = *l;
        s.listen_at = listen.at();
        if (!valid_listen(*l))
            listen.error("listen " + in_quotes(*l) +
                         " is not HOST:PORT like 127.0.0.1:9091, or \"\" for off");
    }
    return s;
}

reload_section read_reload(const table_reader &root)
{
    reload_section r;
    const toml::value *table = root.table("reload");
    if (!table) return r;
    table_reader t(*table, "reload", false, {"watch", "debounce_ms"}, root.errors());
    if (auto v = t.get("watch").boolean()) r.watch = *v;
    if (auto v = t.get("debounce_ms").integer(0, 60000)) r.debounce_ms = static_cast<uint32_t>(*v);
    return r;
}

drain_section read_drain(const table_reader &root)
{
    drain_section d;
    const toml::value *table = root.table("drain");
    if (!table) return d;
    table_reader t(*table, "drain", false, {"stop_delay_ms"}, root.errors());
    if (auto v = t.get("stop_delay_ms").integer(0, 600000))
        d.stop_delay_ms = static_cast<uint32_t>(*v);
    return d;
}

log_section read_log(const table_reader &root)
{
    log_section s;
    const toml::value *table = root.table("log");
    if (!table) return s;
    table_reader t(*table, "log", false, {"level"}, root.errors());
    field level = t.get("level");
    if (level.choice({"trace", "debug", "info", "warn", "error", "critical", "off"}))
        s.level = *level.text();
    return s;
}

} // namespace meshgate::config
