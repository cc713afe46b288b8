// libFuzzer target: arbitrary frames, in bursts, through process_burst() on every port of a
// gateway loaded from a real configuration (tests/fuzz/packet_fuzz.toml: an external, an
// underlay and a "both" port on net_null devices), with a warm connection table.
//
// Input: a sequence of records, each
//   ctl      1 byte   ctl % 3 = port (0 ext: external, 1 und: underlay, 2 both: both);
//                     bit 7 = the burst ends after this frame
//   length   2 bytes  big endian; more than an mbuf holds, or than the input has left, is cut
//   frame    `length` bytes, from the Ethernet header on, one mbuf segment
// Frames go into one burst until it has burst_size frames, the port changes or bit 7 is set.
//
// Before each input the connection clock moves one second on, due connections expire, and the
// warm connections (TCP and UDP, made with valid SYNs and their tasks' replies at start) are
// made again if an earlier input ended them. After each input: TX flushed, the ARP wait queue
// dropped, and the packet pool must hold exactly as many mbufs as before (abort() otherwise).
//
// MESHGATE_FUZZ_CONFIG overrides the configuration; MESHGATE_FUZZ_STATS prints the worker's
// counters at exit; MESHGATE_FUZZ_SEED_DIR, when set, receives
// seed inputs that need the warm connections' SNAT ports: the tasks' replies, data, FIN, RST and
// ICMP errors on those connections (tests/fuzz/packet_corpus.py writes the others).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <spdlog/spdlog.h>

#include "control/config/config.h"
#include "control/runtime/eal.h"
#include "dataplane/flow_hash.h"
#include "dataplane/mesh.h"
#include "dataplane/output.h"
#include "tests/support/gateway_fixture.h"

namespace
{

using namespace meshgate;
namespace dp = meshgate::dataplane;
using frame = std::vector<uint8_t>;

// One connection kept open for the inputs to hit.
struct warm_flow {
    uint16_t port;    // where the client is
    uint8_t proto;    // IPPROTO_TCP or IPPROTO_UDP
    uint32_t client;  // host order
    uint16_t sport;   // client port
    uint32_t dst;     // published address
    uint16_t dport;   // published port
    mac_address peer; // the client's (or its router's) MAC
};

struct fuzz_state {
    config::gateway_config config;
    test_support::gateway_devices devices;
    std::unique_ptr<test_support::gateway_fixture> g;
    std::vector<warm_flow> warm;
    unsigned baseline = 0; // mbufs in use between inputs
};
fuzz_state *state = nullptr;

[[noreturn]] void fail(const std::string &why)
{
    std::fprintf(stderr, "packet_fuzz: %s\n", why.c_str());
    std::abort();
}

// An Ethernet + IPv4 frame around L4 (its checksums filled for TCP, UDP and ICMP).
frame ipv4_frame(const mac_address &src_mac, const mac_address &dst_mac, uint32_t src, uint32_t dst,
                 uint8_t proto, const frame &l4)
{
    frame f(sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + l4.size(), 0);
    auto *eth = reinterpret_cast<rte_ether_hdr *>(f.data());
    std::memcpy(eth->dst_addr.addr_bytes, dst_mac.bytes.data(), 6);
    std::memcpy(eth->src_addr.addr_bytes, src_mac.bytes.data(), 6);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + l4.size()));
    ip->time_to_live = 64;
    ip->next_proto_id = proto;
    ip->src_addr = rte_cpu_to_be_32(src);
    ip->dst_addr = rte_cpu_to_be_32(dst);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    std::memcpy(ip + 1, l4.data(), l4.size());
    void *l4h = ip + 1;
    if (proto == IPPROTO_TCP)
        static_cast<rte_tcp_hdr *>(l4h)->cksum = rte_ipv4_udptcp_cksum(ip, l4h);
    else if (proto == IPPROTO_UDP)
        static_cast<rte_udp_hdr *>(l4h)->dgram_cksum = rte_ipv4_udptcp_cksum(ip, l4h);
    else if (proto == IPPROTO_ICMP)
        static_cast<rte_icmp_hdr *>(l4h)->icmp_cksum =
            static_cast<uint16_t>(~rte_raw_cksum(l4h, l4.size()));
    return f;
}

// A TCP segment (ports host order) with PAYLOAD bytes, or a UDP datagram.
frame l4_header(uint8_t proto, uint16_t sport, uint16_t dport, uint8_t flags, size_t payload)
{
    frame l4((proto == IPPROTO_TCP ? sizeof(rte_tcp_hdr) : sizeof(rte_udp_hdr)) + payload, 'x');
    if (proto == IPPROTO_TCP) {
        auto *tcp = reinterpret_cast<rte_tcp_hdr *>(l4.data());
        *tcp = rte_tcp_hdr{};
        tcp->src_port = rte_cpu_to_be_16(sport);
        tcp->dst_port = rte_cpu_to_be_16(dport);
        tcp->sent_seq = rte_cpu_to_be_32(1000);
        tcp->recv_ack = rte_cpu_to_be_32(flags & RTE_TCP_ACK_FLAG ? 2000 : 0);
        tcp->data_off = 5 << 4;
        tcp->tcp_flags = flags;
        tcp->rx_win = rte_cpu_to_be_16(65535);
    } else {
        auto *udp = reinterpret_cast<rte_udp_hdr *>(l4.data());
        *udp = rte_udp_hdr{};
        udp->src_port = rte_cpu_to_be_16(sport);
        udp->dst_port = rte_cpu_to_be_16(dport);
        udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(l4.size()));
    }
    return l4;
}

const config::port &port_of(const fuzz_state &s, uint16_t port)
{
    return s.config.ports.at(port);
}

mac_address port_mac(const fuzz_state &s, uint16_t port)
{
    return mac_address{
        {s.devices.ports.at(port).mac.addr_bytes[0], s.devices.ports.at(port).mac.addr_bytes[1],
         s.devices.ports.at(port).mac.addr_bytes[2], s.devices.ports.at(port).mac.addr_bytes[3],
         s.devices.ports.at(port).mac.addr_bytes[4], s.devices.ports.at(port).mac.addr_bytes[5]}};
}

frame client_frame(const fuzz_state &s, const warm_flow &f, uint8_t flags, size_t payload)
{
    return ipv4_frame(f.peer, port_mac(s, f.port), f.client, f.dst, f.proto,
                      l4_header(f.proto, f.sport, f.dport, flags, payload));
}

// Where the task's reply comes from: its node's VTEP, and the gateway port on that subnet.
struct task_place {
    const config::node *node = nullptr;
    uint16_t port = 0;
    mac_address mac; // the task's
};

task_place place_of(const fuzz_state &s, uint32_t task_ip_host)
{
    for (const config::service &svc : s.config.services)
        for (const config::task &t : svc.tasks)
            if (t.address.value == task_ip_host)
                for (const config::node &n : s.config.nodes)
                    if (n.name == t.node)
                        for (uint16_t p = 0; p < s.config.ports.size(); ++p)
                            if (port_of(s, p).address.contains(n.address)) return {&n, p, t.mac};
    fail("no node or port for a warm connection's task");
}

// INNER (from its Ethernet header) in VXLAN from the task's node to the gateway.
frame vxlan_frame(const fuzz_state &s, const task_place &at, const frame &inner)
{
    frame l4(sizeof(rte_udp_hdr) + 8 + inner.size(), 0);
    auto *udp = reinterpret_cast<rte_udp_hdr *>(l4.data());
    udp->src_port = rte_cpu_to_be_16(49152);
    udp->dst_port = rte_cpu_to_be_16(s.config.overlay.udp_port);
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(l4.size()));
    const uint32_t vx[2] = {rte_cpu_to_be_32(0x08000000),
                            rte_cpu_to_be_32(s.config.overlay.vni << 8)};
    std::memcpy(udp + 1, vx, sizeof vx);
    std::memcpy(l4.data() + sizeof(rte_udp_hdr) + 8, inner.data(), inner.size());
    frame f = ipv4_frame(at.node->mac.value_or(mac_address{{2, 0, 0, 0, 1, 0x99}}),
                         port_mac(s, at.port), at.node->address.value,
                         port_of(s, at.port).address.address.value, IPPROTO_UDP, l4);
    // Outer UDP checksum 0, as Linux sends VXLAN.
    reinterpret_cast<rte_udp_hdr *>(f.data() + sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr))
        ->dgram_cksum = 0;
    return f;
}

const dp::connection *connection_of(const fuzz_state &s, const warm_flow &f)
{
    const dp::flow_key key =
        dp::make_flow_key(rte_cpu_to_be_32(f.client), rte_cpu_to_be_32(f.dst),
                          rte_cpu_to_be_16(f.sport), rte_cpu_to_be_16(f.dport), f.proto);
    const dp::conn_ref ref = s.g->connections->lookup(key);
    return ref.hit() ? &s.g->connections->at(ref.index()) : nullptr;
}

// The task's reply on connection C with FLAGS, from the task's node.
frame reply_frame(const fuzz_state &s, const dp::connection &c, uint8_t proto, uint8_t flags,
                  size_t payload)
{
    const task_place at = place_of(s, rte_be_to_cpu_32(c.task_ip()));
    const frame inner = ipv4_frame(at.mac, s.config.overlay.mac, rte_be_to_cpu_32(c.task_ip()),
                                   rte_be_to_cpu_32(c.snat_ip()), proto,
                                   l4_header(proto, rte_be_to_cpu_16(c.target_port()),
                                             rte_be_to_cpu_16(c.snat_port()), flags, payload));
    return vxlan_frame(s, at, inner);
}

// An ICMP error (TYPE, CODE) from the task about what the gateway sent it on C.
frame tunnel_icmp_frame(const fuzz_state &s, const dp::connection &c, uint8_t proto, uint8_t type,
                        uint8_t code)
{
    const task_place at = place_of(s, rte_be_to_cpu_32(c.task_ip()));
    // The offending packet as the task got it: snat -> task, its IP header and 8 bytes.
    const frame sent = ipv4_frame(s.config.overlay.mac, at.mac, rte_be_to_cpu_32(c.snat_ip()),
                                  rte_be_to_cpu_32(c.task_ip()), proto,
                                  l4_header(proto, rte_be_to_cpu_16(c.snat_port()),
                                            rte_be_to_cpu_16(c.target_port()), 0x10, 0));
    frame icmp(8 + sizeof(rte_ipv4_hdr) + 8, 0);
    icmp[0] = type;
    icmp[1] = code;
    icmp[6] = 0x05; // next-hop MTU 1400 for "fragmentation needed"
    icmp[7] = 0x78;
    std::memcpy(icmp.data() + 8, sent.data() + sizeof(rte_ether_hdr), sizeof(rte_ipv4_hdr) + 8);
    const frame inner = ipv4_frame(at.mac, s.config.overlay.mac, rte_be_to_cpu_32(c.task_ip()),
                                   rte_be_to_cpu_32(c.snat_ip()), IPPROTO_ICMP, icmp);
    return vxlan_frame(s, at, inner);
}

void run_frames(fuzz_state &s, uint16_t port, const std::vector<frame> &frames)
{
    rte_mbuf *pkts[dp::burst_size];
    const auto n = static_cast<uint16_t>(frames.size());
    if (!s.g->load(pkts, n, frames, 0)) fail("the packet pool is empty");
    s.g->burst(port, pkts, n);
}

// Opens F (again): the client's first packet, the task's answer, the client's ACK.
void warm_up(fuzz_state &s, const warm_flow &f)
{
    const bool tcp = f.proto == IPPROTO_TCP;
    run_frames(s, f.port, {client_frame(s, f, tcp ? RTE_TCP_SYN_FLAG : 0, tcp ? 0 : 16)});
    const dp::connection *c = connection_of(s, f);
    if (c == nullptr) return; // a drained task, a full table: the inputs meet that too
    const task_place at = place_of(s, rte_be_to_cpu_32(c->task_ip()));
    run_frames(
        s, at.port,
        {reply_frame(s, *c, f.proto, tcp ? RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG : 0, tcp ? 0 : 16)});
    if (tcp) run_frames(s, f.port, {client_frame(s, f, RTE_TCP_ACK_FLAG, 0)});
}

void write_record(std::ofstream &out, uint8_t ctl, const frame &f)
{
    const char head[3] = {static_cast<char>(ctl), static_cast<char>(f.size() >> 8),
                          static_cast<char>(f.size() & 0xff)};
    out.write(head, 3);
    out.write(reinterpret_cast<const char *>(f.data()), static_cast<std::streamsize>(f.size()));
}

// Seeds that need the warm connections' SNAT addresses and ports (MESHGATE_FUZZ_SEED_DIR).
void write_seeds(const fuzz_state &s, const std::string &dir)
{
    int n = 0;
    auto seed = [&](const std::string &name,
                    const std::vector<std::pair<uint8_t, frame>> &records) {
        std::ofstream out(dir + "/warm-" + std::to_string(n++) + "-" + name,
                          std::ios::binary | std::ios::trunc);
        for (const auto &[ctl, f] : records)
            write_record(out, ctl, f);
        if (!out) fail("cannot write seeds into " + dir);
    };
    for (const warm_flow &f : s.warm) {
        const dp::connection *c = connection_of(s, f);
        if (c == nullptr) continue;
        const uint16_t node_port = place_of(s, rte_be_to_cpu_32(c->task_ip())).port;
        const auto on = [](uint16_t port, bool end = false) {
            return static_cast<uint8_t>(port | (end ? 0x80 : 0));
        };
        if (f.proto == IPPROTO_TCP) {
            seed("tcp-reply-data",
                 {{on(node_port),
                   reply_frame(s, *c, f.proto, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, 100)}});
            seed("tcp-data-both-ways",
                 {{on(f.port, true), client_frame(s, f, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, 1200)},
                  {on(node_port), reply_frame(s, *c, f.proto, RTE_TCP_ACK_FLAG, 1400)}});
            seed("tcp-fin-both-ways",
                 {{on(f.port, true), client_frame(s, f, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, 0)},
                  {on(node_port, true),
                   reply_frame(s, *c, f.proto, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, 0)},
                  {on(f.port), client_frame(s, f, RTE_TCP_ACK_FLAG, 0)}});
            seed("tcp-rst-from-task",
                 {{on(node_port), reply_frame(s, *c, f.proto, RTE_TCP_RST_FLAG, 0)}});
            seed("tcp-rst-from-client", {{on(f.port), client_frame(s, f, RTE_TCP_RST_FLAG, 0)}});
            seed("tcp-reply-big",
                 {{on(node_port), reply_frame(s, *c, f.proto, RTE_TCP_ACK_FLAG, 1800)}});
        } else {
            seed("udp-reply", {{on(node_port), reply_frame(s, *c, f.proto, 0, 64)}});
            seed("udp-both-ways", {{on(f.port, true), client_frame(s, f, 0, 1400)},
                                   {on(node_port), reply_frame(s, *c, f.proto, 0, 1450)}});
        }
        seed("tunnel-icmp-frag-needed", {{on(node_port), tunnel_icmp_frame(s, *c, f.proto, 3, 4)}});
        seed("tunnel-icmp-port-unreachable",
             {{on(node_port), tunnel_icmp_frame(s, *c, f.proto, 3, 3)}});
        seed("tunnel-icmp-time-exceeded",
             {{on(node_port), tunnel_icmp_frame(s, *c, f.proto, 11, 0)}});
    }
}

// Moves the clock one second on; ends what is due; makes the warm connections again where an
// input ended them, and keeps them from idling out.
void tick(fuzz_state &s)
{
    dp::worker &w = *s.g->w;
    ++w.now;
    uint32_t n;
    do {
        n = s.g->connections->expire(0, w.now, static_cast<uint32_t>(w.expired.size()),
                                     w.expired.data());
        for (uint32_t i = 0; i < n; ++i)
            dp::release_task(w, w.expired[i]);
    } while (n == w.expired.size());
    for (const warm_flow &f : s.warm) {
        const dp::connection *c = connection_of(s, f);
        if (c == nullptr || w.now - c->last_seen.load() > 20) warm_up(s, f);
    }
}

// Every mbuf back in the pool (TX freed what it sent, drops freed theirs), the ARP wait queue
// emptied first: packets may wait there legitimately, but not across inputs.
void settle(fuzz_state &s)
{
    dp::flush_and_service(*s.g->w, s.g->tables(), rte_rdtsc());
    dp::release_all(*s.g->w);
}

// MESHGATE_FUZZ_STATS: at exit, what the worker counted (which verdicts the inputs reached).
void print_counters()
{
    const dp::worker_counters &c = state->g->w->counters;
    for (size_t p = 0; p < state->devices.ports.size(); ++p)
        std::fprintf(stderr, "port %s: rx %lu tx %lu\n", state->devices.ports[p].name.c_str(),
                     static_cast<unsigned long>(c.ports[p].rx_packets),
                     static_cast<unsigned long>(c.ports[p].tx_packets));
    for (size_t r = 0; r < dp::drop_reason_count; ++r)
        std::fprintf(stderr, "drop %.*s: %lu\n", static_cast<int>(dp::drop_reason_names[r].size()),
                     dp::drop_reason_names[r].data(), static_cast<unsigned long>(c.drops[r]));
    for (size_t e = 0; e < dp::event_count; ++e)
        std::fprintf(stderr, "event %.*s: %lu\n", static_cast<int>(dp::event_names[e].size()),
                     dp::event_names[e].data(), static_cast<unsigned long>(c.events[e]));
}

std::string config_path()
{
    const char *env = std::getenv("MESHGATE_FUZZ_CONFIG");
    return env != nullptr ? env : MESHGATE_FUZZ_CONFIG;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    auto *s = new fuzz_state;
    // Fixed CPUs: under -jobs the parent has run EAL, which pinned it (and its children) to one.
    config::load_result loaded = config::load(config_path(), config::load_options{.cpus = {0, 1}});
    for (const config::config_error &e : loaded.errors)
        std::fprintf(stderr, "%s\n", e.to_string().c_str());
    if (!loaded.config) fail("the configuration does not load");
    s->config = std::move(*loaded.config);

    std::vector<std::string> args = eal_arguments(s->config);
    std::vector<char *> argv;
    for (std::string &a : args)
        argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) fail("EAL init failed");
    spdlog::set_level(spdlog::level::warn);
    s->devices = test_support::gateway_devices::open(s->config);
    s->g = std::make_unique<test_support::gateway_fixture>(s->config, s->devices);

    const mac_address router = *parse_mac("02:00:00:00:00:01"); // ext's gateway
    const mac_address neighbor = *parse_mac("02:00:00:00:00:55");
    const uint32_t ext = s->config.ports[0].address.address.value;
    const uint32_t both = s->config.ports[2].address.address.value;
    s->warm = {
        {0, IPPROTO_TCP, 0xc6120001, 40000, ext, 8000, router}, // 198.18.0.1, via the router
        {0, IPPROTO_TCP, 0xc6120002, 40001, ext, 8000, router},
        {0, IPPROTO_TCP, 0xcb007132, 40002, ext, 8000, router}, // 203.0.113.50, on the link
        {0, IPPROTO_UDP, 0xc6120003, 5000, ext, 53, router},
        {2, IPPROTO_TCP, 0xc6336432, 41000, both, 443, neighbor}, // 198.51.100.50
        {2, IPPROTO_UDP, 0xc6336433, 41001, both, 443, neighbor},
    };
    for (const warm_flow &f : s->warm)
        warm_up(*s, f);
    if (const char *dir = std::getenv("MESHGATE_FUZZ_SEED_DIR")) write_seeds(*s, dir);
    settle(*s);
    s->baseline = rte_mempool_in_use_count(s->g->pool);
    state = s;
    if (std::getenv("MESHGATE_FUZZ_STATS") != nullptr) std::atexit(print_counters);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_state &s = *state;
    tick(s);
    settle(s);
    const unsigned before = rte_mempool_in_use_count(s.g->pool);
    if (before != s.baseline)
        fail("the warm-up holds " + std::to_string(before) + " mbufs, not " +
             std::to_string(s.baseline));

    rte_mbuf *burst[dp::burst_size];
    uint16_t count = 0, burst_port = 0;
    const auto ports = static_cast<uint16_t>(s.devices.ports.size());
    auto send = [&] {
        if (count != 0) s.g->burst(burst_port, burst, count);
        count = 0;
    };
    size_t at = 0;
    while (at + 3 <= size) {
        const uint8_t ctl = data[at];
        size_t length = static_cast<size_t>(data[at + 1]) << 8 | data[at + 2];
        at += 3;
        length = std::min(length, size - at);
        const auto port = static_cast<uint16_t>((ctl & 0x7f) % ports);
        if (count != 0 && port != burst_port) send();
        rte_mbuf *m = rte_pktmbuf_alloc(s.g->pool);
        if (m == nullptr) fail("the packet pool is empty");
        length = std::min<size_t>(length, rte_pktmbuf_tailroom(m));
        std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(length)), data + at, length);
        at += length;
        burst_port = port;
        burst[count++] = m;
        if (count == dp::burst_size || (ctl & 0x80) != 0) send();
    }
    send();
    settle(s);
    const unsigned after = rte_mempool_in_use_count(s.g->pool);
    if (after != s.baseline)
        fail("mbuf leak: " + std::to_string(after) + " in use after the input, " +
             std::to_string(s.baseline) + " before");
    return 0;
}
