// Cost of the per-packet header rewrites: full NAT (+ TTL), VXLAN encap and decap, ICMP error
// translation and build. Each op walks a burst of 32 packets kept in L1, as a worker would.
// Run: build/perf/rewrite_bench [--benchmark_filter=...]; "cycles" is rte_rdtsc per op.
#include "dataplane/checksum.h"
#include "dataplane/ipv4.h"
#include "dataplane/nat_rewrite.h"
#include "dataplane/vxlan.h"

#include <benchmark/benchmark.h>
#include <rte_cycles.h>

#include <array>
#include <cstring>
#include <random>
#include <vector>

namespace
{

using namespace meshgate::dataplane;

constexpr size_t burst = 32;

// An mbuf over its own array (no EAL, no pool): prepend/adj/trim only touch these fields.
struct bench_mbuf {
    alignas(RTE_CACHE_LINE_SIZE) uint8_t storage[sizeof(rte_mbuf)];
    alignas(RTE_CACHE_LINE_SIZE) uint8_t buf[RTE_PKTMBUF_HEADROOM + 256];
    rte_mbuf *m = reinterpret_cast<rte_mbuf *>(storage);

    void init(const uint8_t *data, uint16_t len, uint16_t headroom)
    {
        std::memset(storage, 0, sizeof(storage));
        m->buf_addr = buf;
        m->buf_len = sizeof(buf);
        m->data_off = headroom;
        m->nb_segs = 1;
        rte_mbuf_refcnt_set(m, 1);
        std::memcpy(buf + headroom, data, len);
        m->data_len = len;
        m->pkt_len = len;
    }
};

// A 64-byte frame's IPv4 + TCP part (50 bytes) with valid checksums.
struct tcp_packet {
    alignas(64) uint8_t bytes[64];
    rte_ipv4_hdr *ip() { return reinterpret_cast<rte_ipv4_hdr *>(bytes); }
    uint8_t *l4() { return bytes + sizeof(rte_ipv4_hdr); }
};

std::array<tcp_packet, burst> make_tcp_packets()
{
    std::mt19937 rng(1);
    std::array<tcp_packet, burst> packets{};
    for (tcp_packet &p : packets) {
        for (uint8_t &b : p.bytes)
            b = static_cast<uint8_t>(rng());
        rte_ipv4_hdr *ip = p.ip();
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->total_length = rte_cpu_to_be_16(50);
        ip->fragment_offset = 0;
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_TCP;
        ip->hdr_checksum = 0;
        ip->hdr_checksum = static_cast<rte_be16_t>(~csum_raw(ip, sizeof(*ip)));
        auto *tcp = reinterpret_cast<rte_tcp_hdr *>(p.l4());
        tcp->data_off = 0x50;
        tcp->cksum = 0;
        tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
    }
    return packets;
}

// Client -> task and back, so a packet's checksums stay consistent across iterations.
const nat_endpoints to_task{.src_addr = RTE_BE32(0x0aff0002),
                            .dst_addr = RTE_BE32(0x0aff0005),
                            .src_port = RTE_BE16(40000),
                            .dst_port = RTE_BE16(8000)};
const nat_endpoints to_client{.src_addr = RTE_BE32(0xcb00710a),
                              .dst_addr = RTE_BE32(0xcb007132),
                              .src_port = RTE_BE16(8000),
                              .dst_port = RTE_BE16(51000)};

void report_cycles(benchmark::State &state, uint64_t cycles)
{
    state.counters["cycles"] =
        benchmark::Counter(static_cast<double>(cycles), benchmark::Counter::kAvgIterations);
}

void BM_NatRewriteTcp(benchmark::State &state)
{
    auto packets = make_tcp_packets();
    size_t i = 0;
    uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        tcp_packet &p = packets[i % burst];
        nat_rewrite<IPPROTO_TCP>(p.ip(), p.l4(), (i / burst) % 2 ? to_client : to_task);
        benchmark::DoNotOptimize(p.bytes);
        ++i;
    }
    report_cycles(state, rte_rdtsc() - start);
}
BENCHMARK(BM_NatRewriteTcp);

// TTL decrement and NAT with one IPv4 checksum update: the forwarding path's rewrite.
void BM_NatForwardTcp(benchmark::State &state)
{
    auto packets = make_tcp_packets();
    size_t i = 0;
    uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        tcp_packet &p = packets[i % burst];
        // Keep it forwarding (the checksum drift does not matter here); a whole-word store, as
        // nat_forward reads the TTL with the protocol.
        uint8_t ttl_proto[2] = {64, IPPROTO_TCP};
        std::memcpy(&p.bytes[8], ttl_proto, 2);
        benchmark::DoNotOptimize(
            nat_forward<IPPROTO_TCP>(p.ip(), p.l4(), (i / burst) % 2 ? to_client : to_task));
        benchmark::DoNotOptimize(p.bytes);
        ++i;
    }
    report_cycles(state, rte_rdtsc() - start);
}
BENCHMARK(BM_NatForwardTcp);

// Reference point: what a full recompute of both checksums costs on the same packets, by DPDK's
// rte_ipv4_cksum() and rte_ipv4_udptcp_cksum() (ours:0), or by ours (ours:1: ipv4.h's
// ipv4_header_checksum() and ipv4_l4_checksum(), what a cookie's SYN-ACK and an RST use).
void BM_NatFullRecomputeTcp(benchmark::State &state)
{
    const bool ours = state.range(0) != 0;
    auto packets = make_tcp_packets();
    size_t i = 0;
    uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        tcp_packet &p = packets[i % burst];
        const nat_endpoints &to = (i / burst) % 2 ? to_client : to_task;
        rte_ipv4_hdr *ip = p.ip();
        auto *tcp = reinterpret_cast<rte_tcp_hdr *>(p.l4());
        ip->src_addr = to.src_addr;
        ip->dst_addr = to.dst_addr;
        tcp->src_port = to.src_port;
        tcp->dst_port = to.dst_port;
        ip->hdr_checksum = 0;
        ip->hdr_checksum = ours ? ipv4_header_checksum(ip) : rte_ipv4_cksum(ip);
        tcp->cksum = 0;
        tcp->cksum = ours ? ipv4_l4_checksum(ip, tcp) : rte_ipv4_udptcp_cksum(ip, tcp);
        benchmark::DoNotOptimize(p.bytes);
        ++i;
    }
    report_cycles(state, rte_rdtsc() - start);
}
BENCHMARK(BM_NatFullRecomputeTcp)->ArgName("ours")->Arg(0)->Arg(1);

// Inner frames: 14-byte Ethernet + the TCP packets above.
std::array<bench_mbuf, burst> *make_inner_mbufs(uint16_t headroom)
{
    auto *mbufs = new std::array<bench_mbuf, burst>;
    auto packets = make_tcp_packets();
    for (size_t k = 0; k < burst; ++k) {
        uint8_t frame[64] = {};
        vxlan_inner_ether_write(reinterpret_cast<rte_ether_hdr *>(frame),
                                rte_ether_addr{{0x02, 0x42, 0x0a, 0xff, 0x00, 0x02}},
                                rte_ether_addr{{0x02, 0x42, 0x0a, 0xff, 0x00, 0x05}});
        std::memcpy(frame + sizeof(rte_ether_hdr), packets[k].bytes, 50);
        (*mbufs)[k].init(frame, 64, headroom);
    }
    return mbufs;
}

const vxlan_tunnel node1 = vxlan_tunnel_build({
    .port_mac = {{0x02, 0x00, 0x00, 0x00, 0x00, 0xaa}},
    .next_hop_mac = {{0x02, 0x00, 0x00, 0x00, 0x01, 0x11}},
    .underlay_addr = RTE_BE32(0xc0a83202),
    .vtep_addr = RTE_BE32(0xc0a8320b),
    .vni = 4096,
    .udp_port = RTE_BE16(4789),
});

// Encap with the caller's flow hash, then rte_pktmbuf_adj back (included: ~2 cycles).
void BM_VxlanEncap(benchmark::State &state)
{
    auto *mbufs = make_inner_mbufs(RTE_PKTMBUF_HEADROOM);
    size_t i = 0;
    uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        rte_mbuf *m = (*mbufs)[i % burst].m;
        benchmark::DoNotOptimize(vxlan_encap(m, node1, static_cast<uint32_t>(i * 0x9e3779b9u)));
        rte_pktmbuf_adj(m, vxlan_outer_len);
        ++i;
    }
    report_cycles(state, rte_rdtsc() - start);
    delete mbufs;
}
BENCHMARK(BM_VxlanEncap);

// Encap that hashes the inner 5-tuple itself for the source port.
void BM_VxlanEncapInnerHash(benchmark::State &state)
{
    auto *mbufs = make_inner_mbufs(RTE_PKTMBUF_HEADROOM);
    size_t i = 0;
    uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        rte_mbuf *m = (*mbufs)[i % burst].m;
        benchmark::DoNotOptimize(vxlan_encap(m, node1));
        rte_pktmbuf_adj(m, vxlan_outer_len);
        ++i;
    }
    report_cycles(state, rte_rdtsc() - start);
    delete mbufs;
}
BENCHMARK(BM_VxlanEncapInnerHash);

// Encapsulated frames to take apart.
std::array<bench_mbuf, burst> *make_outer_mbufs()
{
    auto *mbufs = make_inner_mbufs(RTE_PKTMBUF_HEADROOM);
    for (bench_mbuf &b : *mbufs)
        vxlan_encap(b.m, node1);
    return mbufs;
}

void BM_VxlanDecapParse(benchmark::State &state)
{
    auto *mbufs = make_outer_mbufs();
    size_t i = 0;
    uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        rte_mbuf *m = (*mbufs)[i % burst].m;
        vxlan_decap_info info = vxlan_decap_parse(m, sizeof(rte_ether_hdr), RTE_BE16(4789), 4096);
        benchmark::DoNotOptimize(info);
        ++i;
    }
    report_cycles(state, rte_rdtsc() - start);
    delete mbufs;
}
BENCHMARK(BM_VxlanDecapParse);

// Parse + strip, then rte_pktmbuf_prepend to restore the frame for the next round (included).
void BM_VxlanDecap(benchmark::State &state)
{
    auto *mbufs = make_outer_mbufs();
    size_t i = 0;
    uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        rte_mbuf *m = (*mbufs)[i % burst].m;
        vxlan_decap_info info = vxlan_decap_parse(m, sizeof(rte_ether_hdr), RTE_BE16(4789), 4096);
        if (info.status == vxlan_status::ok) vxlan_decap(m, info);
        benchmark::DoNotOptimize(rte_pktmbuf_prepend(m, vxlan_outer_len));
        ++i;
    }
    report_cycles(state, rte_rdtsc() - start);
    delete mbufs;
}
BENCHMARK(BM_VxlanDecap);

// An ICMP port unreachable quoting a TCP packet: parse + translate, back and forth.
void BM_IcmpErrorTranslate(benchmark::State &state)
{
    auto packets = make_tcp_packets();
    std::array<std::array<uint8_t, 128>, burst> errors{};
    std::array<uint16_t, burst> lens{};
    for (size_t k = 0; k < burst; ++k)
        lens[k] = icmp_error_build(errors[k].data(), 128, packets[k].ip(), 50, RTE_BE32(0x0aff0005),
                                   icmp_type_dest_unreachable, 3, 0);
    const icmp_error_nat fwd{.outer_src_addr = RTE_BE32(0xcb00710a),
                             .outer_dst_addr = RTE_BE32(0xcb007132),
                             .inner = to_client};
    const icmp_error_nat back{.outer_src_addr = RTE_BE32(0x0aff0005),
                              .outer_dst_addr = RTE_BE32(0x0aff0002),
                              .inner = to_task};
    size_t i = 0;
    uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        size_t k = i % burst;
        auto *outer = reinterpret_cast<rte_ipv4_hdr *>(errors[k].data());
        icmp_error_view v = icmp_error_parse(outer, lens[k]);
        if (v) icmp_error_translate(outer, v, (i / burst) % 2 ? back : fwd);
        benchmark::DoNotOptimize(errors[k]);
        ++i;
    }
    report_cycles(state, rte_rdtsc() - start);
}
BENCHMARK(BM_IcmpErrorTranslate);

void BM_IcmpTimeExceededBuild(benchmark::State &state)
{
    auto packets = make_tcp_packets();
    alignas(64) std::array<uint8_t, 128> out{};
    size_t i = 0;
    uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        benchmark::DoNotOptimize(icmp_time_exceeded_build(
            out.data(), out.size(), packets[i % burst].ip(), 50, RTE_BE32(0xcb00710a)));
        benchmark::DoNotOptimize(out);
        ++i;
    }
    report_cycles(state, rte_rdtsc() - start);
}
BENCHMARK(BM_IcmpTimeExceededBuild);

} // namespace

BENCHMARK_MAIN();
