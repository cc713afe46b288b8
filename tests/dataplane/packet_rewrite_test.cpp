// Header rewriting primitives against independent oracles: DPDK's full checksum recompute for the
// incremental updates, and scapy-made bytes for the VXLAN and ICMP headers we build.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/checksum.h"
#include "dataplane/ipv4.h"
#include "dataplane/nat_rewrite.h"
#include "dataplane/proxy_protocol.h"
#include "dataplane/syn_proxy.h"
#include "dataplane/vxlan.h"

namespace
{

using namespace meshgate::dataplane;
using bytes = std::vector<uint8_t>;

// An mbuf over its own array: prepend/adj/trim only need the buffer fields, so no EAL or pool.
// (rte_mbuf's zero-size markers keep it out of a C++ struct; it lives in raw storage instead.)
struct test_mbuf {
    alignas(RTE_CACHE_LINE_SIZE) uint8_t storage[sizeof(rte_mbuf)];
    alignas(RTE_CACHE_LINE_SIZE) uint8_t buf[RTE_PKTMBUF_HEADROOM + 2048];
    rte_mbuf *m = reinterpret_cast<rte_mbuf *>(storage);

    explicit test_mbuf(const bytes &data, uint16_t headroom = RTE_PKTMBUF_HEADROOM)
    {
        std::memset(storage, 0, sizeof(storage));
        std::memset(buf, 0, sizeof(buf));
        m->buf_addr = buf;
        m->buf_len = sizeof(buf);
        m->data_off = headroom;
        m->nb_segs = 1;
        m->next = nullptr;
        rte_mbuf_refcnt_set(m, 1);
        if (!data.empty()) std::memcpy(buf + headroom, data.data(), data.size()); // UBSan: no null
        m->data_len = static_cast<uint16_t>(data.size());
        m->pkt_len = static_cast<uint32_t>(data.size());
    }
    test_mbuf(const test_mbuf &) = delete;
    test_mbuf &operator=(const test_mbuf &) = delete;

    bytes contents() const
    {
        const auto *p = rte_pktmbuf_mtod(m, const uint8_t *);
        return bytes(p, p + m->data_len);
    }
};

rte_ipv4_hdr *ipv4(bytes &p)
{
    return reinterpret_cast<rte_ipv4_hdr *>(p.data());
}
uint8_t *l4_of(bytes &p)
{
    return p.data() + rte_ipv4_hdr_len(ipv4(p));
}

// The references: DPDK's full recomputes, with the UDP "no checksum" rule applied by hand.
void full_ipv4_checksum(rte_ipv4_hdr *ip)
{
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
}

void full_l4_checksum(bytes &p, bool udp_no_checksum)
{
    rte_ipv4_hdr *ip = ipv4(p);
    if (ip->next_proto_id == IPPROTO_TCP) {
        auto *tcp = reinterpret_cast<rte_tcp_hdr *>(l4_of(p));
        tcp->cksum = 0;
        tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
    } else {
        auto *udp = reinterpret_cast<rte_udp_hdr *>(l4_of(p));
        udp->dgram_cksum = 0;
        if (!udp_no_checksum)
            udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp); // maps a computed 0 to 0xFFFF
    }
}

uint16_t l4_checksum(bytes &p)
{
    uint8_t *l4 = l4_of(p);
    return ipv4(p)->next_proto_id == IPPROTO_TCP ? reinterpret_cast<rte_tcp_hdr *>(l4)->cksum
                                                 : reinterpret_cast<rte_udp_hdr *>(l4)->dgram_cksum;
}

// A valid IPv4 TCP/UDP packet with random addresses, ports, TTL, options and payload.
bytes random_packet(std::mt19937 &rng, uint8_t proto, bool udp_no_checksum,
                    uint32_t max_payload = 1400)
{
    uint32_t ip_hlen = 20 + (rng() % 4 == 0 ? 4 * (rng() % 11) : 0);
    uint32_t l4_hlen = proto == IPPROTO_TCP ? 20 + 4 * (rng() % 11) : 8;
    uint32_t payload = rng() % (max_payload + 1);
    bytes p(ip_hlen + l4_hlen + payload);
    std::generate(p.begin(), p.end(), [&] { return static_cast<uint8_t>(rng()); });
    rte_ipv4_hdr *ip = ipv4(p);
    ip->version_ihl = static_cast<uint8_t>(0x40 | ip_hlen / 4);
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(p.size()));
    ip->fragment_offset = rng() % 2 ? RTE_BE16(RTE_IPV4_HDR_DF_FLAG) : 0;
    ip->time_to_live = static_cast<uint8_t>(1 + rng() % 255);
    ip->next_proto_id = proto;
    if (proto == IPPROTO_TCP)
        reinterpret_cast<rte_tcp_hdr *>(l4_of(p))->data_off =
            static_cast<uint8_t>(l4_hlen / 4 << 4);
    else
        reinterpret_cast<rte_udp_hdr *>(l4_of(p))->dgram_len =
            rte_cpu_to_be_16(static_cast<uint16_t>(l4_hlen + payload));
    full_ipv4_checksum(ip);
    full_l4_checksum(p, udp_no_checksum);
    return p;
}

nat_endpoints random_endpoints(std::mt19937 &rng)
{
    return nat_endpoints{.src_addr = static_cast<rte_be32_t>(rng()),
                         .dst_addr = static_cast<rte_be32_t>(rng()),
                         .src_port = static_cast<rte_be16_t>(rng()),
                         .dst_port = static_cast<rte_be16_t>(rng())};
}

// What the NATed packet must be: fields set directly, every checksum recomputed in full.
bytes nat_reference(bytes p, const nat_endpoints &to, bool decrement_ttl)
{
    bool udp_no_checksum = ipv4(p)->next_proto_id == IPPROTO_UDP && l4_checksum(p) == 0;
    rte_ipv4_hdr *ip = ipv4(p);
    ip->src_addr = to.src_addr;
    ip->dst_addr = to.dst_addr;
    ip->time_to_live = static_cast<uint8_t>(ip->time_to_live - (decrement_ttl ? 1 : 0));
    auto *ports = reinterpret_cast<rte_be16_t *>(l4_of(p));
    ports[0] = to.src_port;
    ports[1] = to.dst_port;
    full_ipv4_checksum(ip);
    full_l4_checksum(p, udp_no_checksum);
    return p;
}

void nat_rewrite_any(bytes &p, const nat_endpoints &to)
{
    if (ipv4(p)->next_proto_id == IPPROTO_TCP)
        nat_rewrite<IPPROTO_TCP>(ipv4(p), l4_of(p), to);
    else
        nat_rewrite<IPPROTO_UDP>(ipv4(p), l4_of(p), to);
}

bool nat_forward_any(bytes &p, const nat_endpoints &to)
{
    if (ipv4(p)->next_proto_id == IPPROTO_TCP)
        return nat_forward<IPPROTO_TCP>(ipv4(p), l4_of(p), to);
    return nat_forward<IPPROTO_UDP>(ipv4(p), l4_of(p), to);
}

TEST(Checksum, Rfc1624ExampleGivesZeroNotMinusZero)
{
    // RFC 1624 section 4: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285; eqn. 3 gives 0x0000.
    EXPECT_EQ(csum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

TEST(Checksum, UpdateOfRandomBuffersEqualsFullSum)
{
    std::mt19937 rng(7);
    for (int i = 0; i < 10000; ++i) {
        std::array<uint16_t, 32> words;
        std::generate(words.begin(), words.end(), [&] { return static_cast<uint16_t>(rng()); });
        words[0] = 0;
        uint16_t check = static_cast<uint16_t>(~rte_raw_cksum(words.data(), sizeof(words)));
        words[0] = check;
        size_t at = 1 + rng() % 30;
        uint32_t old_word, new_word = static_cast<uint32_t>(rng());
        std::memcpy(&old_word, &words[at], 4);
        std::memcpy(&words[at], &new_word, 4);
        words[0] = 0;
        uint16_t expected = static_cast<uint16_t>(~rte_raw_cksum(words.data(), sizeof(words)));
        ASSERT_EQ(csum_update32(check, old_word, new_word), expected) << "i=" << i;
    }
}

TEST(Checksum, SumByWordsMatchesDpdkOnEveryLengthAndOffset)
{
    std::mt19937 rng(18);
    bytes b(300);
    for (int round = 0; round < 20'000; ++round) {
        const uint32_t len = round % 257, at = 2 * (round % 8); // even offsets, as a header's
        // Random words, and words of all ones, where the carries pile up.
        std::generate(b.begin(), b.end(),
                      [&] { return round % 3 ? static_cast<uint8_t>(rng()) : uint8_t{0xff}; });
        ASSERT_EQ(csum_raw(b.data() + at, len), rte_raw_cksum(b.data() + at, len))
            << "len=" << len << " at=" << at;
    }
}

TEST(Checksum, WholeIpv4AndL4ChecksumsMatchDpdkOn10000RandomPackets)
{
    std::mt19937 rng(1071);
    for (int i = 0; i < 10000; ++i) {
        const uint8_t proto = i % 2 ? IPPROTO_TCP : IPPROTO_UDP;
        bytes p = random_packet(rng, proto, false, i % 4 ? 64 : 1400);
        rte_ipv4_hdr *ip = ipv4(p);
        ip->hdr_checksum = 0;
        ASSERT_EQ(ipv4_header_checksum(ip), rte_ipv4_cksum(ip)) << i;
        ip->hdr_checksum = ipv4_header_checksum(ip); // what valid_ipv4() then accepts
        ASSERT_EQ(ipv4_header_sum(ip), 0xffff) << i;
        ip->hdr_checksum ^= 1;
        ASSERT_NE(ipv4_header_sum(ip), 0xffff) << i;
        uint8_t *l4 = l4_of(p);
        if (proto == IPPROTO_TCP)
            reinterpret_cast<rte_tcp_hdr *>(l4)->cksum = 0;
        else
            reinterpret_cast<rte_udp_hdr *>(l4)->dgram_cksum = 0;
        ASSERT_EQ(ipv4_l4_checksum(ip, l4), rte_ipv4_udptcp_cksum(ip, l4)) << i;
    }
}

TEST(NatRewrite, IncrementalEqualsFullRecomputeOn10000RandomPackets)
{
    std::mt19937 rng(1624);
    int udp_without_checksum = 0, expired = 0;
    for (int i = 0; i < 10000; ++i) {
        uint8_t proto = rng() % 2 ? IPPROTO_TCP : IPPROTO_UDP;
        bool no_checksum = proto == IPPROTO_UDP && rng() % 4 == 0;
        udp_without_checksum += no_checksum;
        bytes p = random_packet(rng, proto, no_checksum);
        const bytes original = p;
        nat_endpoints to = random_endpoints(rng);
        switch (i % 3) {
        case 0:
            nat_rewrite_any(p, to);
            ASSERT_EQ(p, nat_reference(original, to, false)) << "nat_rewrite, i=" << i;
            break;
        case 1:
            if (!ipv4_decrement_ttl(ipv4(p))) {
                ASSERT_LE(original[8], 1);
                ASSERT_EQ(p, original);
                ++expired;
                break;
            }
            nat_rewrite_any(p, to);
            ASSERT_EQ(p, nat_reference(original, to, true)) << "ttl + nat_rewrite, i=" << i;
            break;
        default:
            if (!nat_forward_any(p, to)) {
                ASSERT_LE(original[8], 1);
                ASSERT_EQ(p, original);
                ++expired;
                break;
            }
            ASSERT_EQ(p, nat_reference(original, to, true)) << "nat_forward, i=" << i;
        }
    }
    EXPECT_GT(udp_without_checksum, 500);
    EXPECT_GT(expired, 0);
}

// A UDP packet whose checksum after NAT computes to 0, so it must go out as 0xFFFF: the payload's
// last word is chosen to bring the rewritten packet's sum to 0xFFFF.
TEST(NatRewrite, UdpComputedZeroBecomesAllOnesAndTcpStaysZero)
{
    std::mt19937 rng(99);
    int checked = 0;
    for (uint8_t proto : {uint8_t{IPPROTO_UDP}, uint8_t{IPPROTO_TCP}}) {
        for (int i = 0; i < 50; ++i) {
            bytes p = random_packet(rng, proto, false);
            p.resize(p.size() + 2);
            ipv4(p)->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(p.size()));
            if (proto == IPPROTO_UDP)
                reinterpret_cast<rte_udp_hdr *>(l4_of(p))->dgram_len =
                    rte_cpu_to_be_16(static_cast<uint16_t>(p.size() - rte_ipv4_hdr_len(ipv4(p))));
            if (p.size() % 2) // keep the chosen word 16-bit aligned in the sum
                continue;
            ++checked;
            nat_endpoints to = random_endpoints(rng);
            p[p.size() - 2] = p[p.size() - 1] = 0;
            full_ipv4_checksum(ipv4(p));
            bytes after = nat_reference(p, to, false);
            uint16_t c = l4_checksum(after); // ~sum with the last word 0: the word that zeroes it
            std::memcpy(&p[p.size() - 2], &c, 2);
            full_l4_checksum(p, false);
            bytes expected = nat_reference(p, to, false);
            ASSERT_EQ(l4_checksum(expected), proto == IPPROTO_UDP ? 0xffff : 0x0000);
            nat_rewrite_any(p, to);
            ASSERT_EQ(p, expected) << "proto " << int{proto};
            // And back: an all-ones UDP checksum is a real one, updated, not "no checksum".
            nat_endpoints back{.src_addr = static_cast<rte_be32_t>(rng()),
                               .dst_addr = static_cast<rte_be32_t>(rng()),
                               .src_port = 1,
                               .dst_port = 2};
            bytes expected_back = nat_reference(p, back, false);
            nat_rewrite_any(p, back);
            ASSERT_EQ(p, expected_back);
        }
    }
    EXPECT_GT(checked, 20);
}

TEST(NatRewrite, UdpWithoutChecksumKeepsZero)
{
    std::mt19937 rng(5);
    bytes p = random_packet(rng, IPPROTO_UDP, true);
    nat_rewrite_udp(ipv4(p), reinterpret_cast<rte_udp_hdr *>(l4_of(p)), random_endpoints(rng));
    EXPECT_EQ(l4_checksum(p), 0);
}

TEST(NatRewrite, TtlOfOneIsRefusedAndLeftAlone)
{
    std::mt19937 rng(6);
    bytes p = random_packet(rng, IPPROTO_TCP, false);
    ipv4(p)->time_to_live = 1;
    full_ipv4_checksum(ipv4(p));
    const bytes original = p;
    EXPECT_FALSE(ipv4_decrement_ttl(ipv4(p)));
    EXPECT_FALSE(nat_forward<IPPROTO_TCP>(ipv4(p), l4_of(p), random_endpoints(rng)));
    EXPECT_EQ(p, original);
    ipv4(p)->time_to_live = 2;
    full_ipv4_checksum(ipv4(p));
    EXPECT_TRUE(ipv4_decrement_ttl(ipv4(p)));
    EXPECT_EQ(ipv4(p)->time_to_live, 1);
    EXPECT_EQ(ipv4(p)->hdr_checksum, [&] {
        rte_ipv4_hdr h = *ipv4(p);
        full_ipv4_checksum(&h);
        return h.hdr_checksum;
    }());
}

struct outer_fields {
    rte_be32_t src_addr, dst_addr;
    uint8_t tos, ttl;
    rte_be16_t id;
    uint8_t type, code;
    rte_be32_t rest;
};

// An ICMP error quoting the first QUOTE_LEN bytes of QUOTED, every checksum computed in full.
bytes icmp_error_reference(const bytes &quoted, size_t quote_len, const outer_fields &o)
{
    bytes e(20 + 8 + quote_len);
    rte_ipv4_hdr *ip = ipv4(e);
    ip->version_ihl = 0x45;
    ip->type_of_service = o.tos;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(e.size()));
    ip->packet_id = o.id;
    ip->fragment_offset = 0;
    ip->time_to_live = o.ttl;
    ip->next_proto_id = IPPROTO_ICMP;
    ip->src_addr = o.src_addr;
    ip->dst_addr = o.dst_addr;
    full_ipv4_checksum(ip);
    auto *icmp = reinterpret_cast<rte_icmp_hdr *>(e.data() + 20);
    icmp->icmp_type = o.type;
    icmp->icmp_code = o.code;
    std::memcpy(&icmp->icmp_ident, &o.rest, 4);
    std::memcpy(e.data() + 28, quoted.data(), quote_len);
    icmp->icmp_cksum = 0;
    icmp->icmp_cksum = static_cast<uint16_t>(~rte_raw_cksum(icmp, 8 + quote_len));
    return e;
}

TEST(IcmpError, TranslationEqualsFullRecompute)
{
    std::mt19937 rng(792);
    const uint8_t types[] = {icmp_type_dest_unreachable, icmp_type_time_exceeded,
                             icmp_type_parameter_problem};
    for (int i = 0; i < 10000; ++i) {
        uint8_t proto = rng() % 2 ? IPPROTO_TCP : IPPROTO_UDP;
        bool no_checksum = proto == IPPROTO_UDP && rng() % 4 == 0;
        bytes quoted = random_packet(rng, proto, no_checksum, 600);
        size_t hlen = rte_ipv4_hdr_len(ipv4(quoted));
        // RFC 792 quotes 8 bytes, Linux as much as fits in 576; a TCP quote cut inside its
        // checksum field (9..17 bytes) is not produced by either, and is not tested.
        size_t quote_len = quoted.size();
        switch (rng() % 3) {
        case 0:
            quote_len = hlen + 8;
            break;
        case 1: // cut somewhere after the TCP/UDP checksum
            if (quoted.size() > hlen + 20)
                quote_len = hlen + 20 + rng() % (quoted.size() - hlen - 20);
            break;
        }
        outer_fields o{.src_addr = static_cast<rte_be32_t>(rng()),
                       .dst_addr = static_cast<rte_be32_t>(rng()),
                       .tos = static_cast<uint8_t>(rng()),
                       .ttl = static_cast<uint8_t>(rng()),
                       .id = static_cast<rte_be16_t>(rng()),
                       .type = types[rng() % 3],
                       .code = static_cast<uint8_t>(rng() % 16),
                       .rest = static_cast<rte_be32_t>(rng())};
        bytes error = icmp_error_reference(quoted, quote_len, o);

        icmp_error_nat to{.outer_src_addr = static_cast<rte_be32_t>(rng()),
                          .outer_dst_addr = static_cast<rte_be32_t>(rng()),
                          .inner = random_endpoints(rng)};
        outer_fields o2 = o;
        o2.src_addr = to.outer_src_addr;
        o2.dst_addr = to.outer_dst_addr;
        bytes expected =
            icmp_error_reference(nat_reference(quoted, to.inner, false), quote_len, o2);

        icmp_error_view v = icmp_error_parse(ipv4(error), static_cast<uint32_t>(error.size()));
        ASSERT_TRUE(v) << "i=" << i;
        ASSERT_EQ(v.inner_proto, proto);
        ASSERT_EQ(v.inner_l4_len, quote_len - hlen);
        icmp_error_translate(ipv4(error), v, to);
        ASSERT_EQ(error, expected)
            << "i=" << i << " quote " << quote_len << " of " << quoted.size();
    }
}

TEST(IcmpError, TranslationRepairsTheQuotedIpChecksum)
{
    std::mt19937 rng(12);
    bytes quoted = random_packet(rng, IPPROTO_UDP, false, 100);
    outer_fields o{.src_addr = 1,
                   .dst_addr = 2,
                   .tos = 0,
                   .ttl = 64,
                   .id = 0,
                   .type = 11,
                   .code = 0,
                   .rest = 0};
    icmp_error_nat to{.outer_src_addr = 3, .outer_dst_addr = 4, .inner = random_endpoints(rng)};
    outer_fields o2 = o;
    o2.src_addr = 3;
    o2.dst_addr = 4;
    bytes expected =
        icmp_error_reference(nat_reference(quoted, to.inner, false), quoted.size(), o2);
    ipv4(quoted)->hdr_checksum ^= 0x1234; // as a router might quote a header it already changed
    bytes error = icmp_error_reference(quoted, quoted.size(), o);
    icmp_error_view v = icmp_error_parse(ipv4(error), static_cast<uint32_t>(error.size()));
    ASSERT_TRUE(v);
    icmp_error_translate(ipv4(error), v, to);
    EXPECT_EQ(error, expected);
}

TEST(IcmpError, ParseRejectsWhatItCannotTranslate)
{
    std::mt19937 rng(13);
    bytes quoted = random_packet(rng, IPPROTO_TCP, false, 40);
    size_t hlen = rte_ipv4_hdr_len(ipv4(quoted));
    outer_fields o{.src_addr = 1,
                   .dst_addr = 2,
                   .tos = 0,
                   .ttl = 64,
                   .id = 0,
                   .type = 3,
                   .code = 3,
                   .rest = 0};
    bytes good = icmp_error_reference(quoted, hlen + 8, o);
    ASSERT_TRUE(icmp_error_parse(ipv4(good), static_cast<uint32_t>(good.size())));

    // Truncated in the buffer, or by the outer total length.
    EXPECT_FALSE(icmp_error_parse(ipv4(good), static_cast<uint32_t>(good.size() - 1)));
    bytes short_total = good;
    ipv4(short_total)->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(good.size() - 1));
    EXPECT_FALSE(icmp_error_parse(ipv4(short_total), static_cast<uint32_t>(good.size())));

    bytes echo = good;
    echo[20] = RTE_IP_ICMP_ECHO_REPLY;
    EXPECT_FALSE(icmp_error_parse(ipv4(echo), static_cast<uint32_t>(echo.size())));

    bytes about_icmp = good;
    about_icmp[28 + 9] = IPPROTO_ICMP;
    EXPECT_FALSE(icmp_error_parse(ipv4(about_icmp), static_cast<uint32_t>(about_icmp.size())));

    bytes not_icmp = good;
    not_icmp[9] = IPPROTO_UDP;
    EXPECT_FALSE(icmp_error_parse(ipv4(not_icmp), static_cast<uint32_t>(not_icmp.size())));

    bytes later_fragment = good;
    ipv4(later_fragment)->fragment_offset = rte_cpu_to_be_16(100);
    EXPECT_FALSE(
        icmp_error_parse(ipv4(later_fragment), static_cast<uint32_t>(later_fragment.size())));
}

// The offender's first 40 bytes and the frag-needed error about it, made with:
// /usr/bin/python3 -c 'from scapy.all import *;
//   off = IP(src="203.0.113.50", dst="203.0.113.10", ttl=64, id=0x1234, flags="DF")/
//         TCP(sport=51000, dport=8000, flags="PA", seq=1, ack=1, window=502)/Raw(b"x"*1420);
//   e = IP(src="203.0.113.10", dst="203.0.113.50", ttl=64, tos=0xc0, id=0, flags=0)/
//       ICMP(type=3, code=4, nexthopmtu=1450)/Raw(bytes(off)[:28]);
//   print(bytes(off)[:40].hex(), bytes(e).hex())'
const bytes frag_offender = {
    0x45, 0x00, 0x05, 0xb4, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0xaa, 0xd2, 0xcb, 0x00,
    0x71, 0x32, 0xcb, 0x00, 0x71, 0x0a, 0xc7, 0x38, 0x1f, 0x40, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x01, 0x50, 0x18, 0x01, 0xf6, 0x2b, 0x74, 0x00, 0x00,
};
const bytes frag_needed_expected = {
    0x45, 0xc0, 0x00, 0x38, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0x01, 0xc8, 0xcb, 0x00,
    0x71, 0x0a, 0xcb, 0x00, 0x71, 0x32, 0x03, 0x04, 0x10, 0xd8, 0x00, 0x00, 0x05, 0xaa,
    0x45, 0x00, 0x05, 0xb4, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0xaa, 0xd2, 0xcb, 0x00,
    0x71, 0x32, 0xcb, 0x00, 0x71, 0x0a, 0xc7, 0x38, 0x1f, 0x40, 0x00, 0x00, 0x00, 0x01,
};

rte_be32_t addr(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    return rte_cpu_to_be_32(uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d);
}

TEST(IcmpError, FragNeededMatchesScapy)
{
    std::array<uint8_t, 128> out{};
    bytes offender = frag_offender;
    uint16_t len =
        icmp_frag_needed_build(out.data(), out.size(), ipv4(offender),
                               static_cast<uint32_t>(offender.size()), addr(203, 0, 113, 10), 1450);
    ASSERT_EQ(len, frag_needed_expected.size());
    EXPECT_EQ(bytes(out.begin(), out.begin() + len), frag_needed_expected);
}

TEST(IcmpError, TimeExceededHasFullChecksumsAndShortQuotes)
{
    std::mt19937 rng(11);
    std::array<uint8_t, 128> out{};
    for (uint32_t payload = 0; payload <= 12; ++payload) {
        bytes offender = random_packet(rng, IPPROTO_UDP, false, 0);
        offender.resize(rte_ipv4_hdr_len(ipv4(offender)) + payload); // cut: quote what exists
        size_t hlen = rte_ipv4_hdr_len(ipv4(offender));
        uint16_t len = icmp_time_exceeded_build(out.data(), out.size(), ipv4(offender),
                                                static_cast<uint32_t>(offender.size()), 77);
        size_t quote = hlen + std::min<size_t>(payload, 8);
        ASSERT_EQ(len, 28 + quote);
        bytes got(out.begin(), out.begin() + len);
        outer_fields o{.src_addr = 77,
                       .dst_addr = ipv4(offender)->src_addr,
                       .tos = 0xc0,
                       .ttl = 64,
                       .id = 0,
                       .type = 11,
                       .code = 0,
                       .rest = 0};
        EXPECT_EQ(got, icmp_error_reference(offender, quote, o)) << "payload " << payload;
    }
    bytes offender = frag_offender;
    EXPECT_EQ(icmp_time_exceeded_build(out.data(), 55, ipv4(offender), 40, 1), 0); // too small
    EXPECT_EQ(icmp_time_exceeded_build(out.data(), out.size(), ipv4(offender), 19, 1), 0);
}

TEST(IcmpError, NotAboutErrorsOrLaterFragments)
{
    bytes offender = frag_offender;
    EXPECT_TRUE(icmp_error_allowed(ipv4(offender), 40));
    bytes later = offender;
    ipv4(later)->fragment_offset = rte_cpu_to_be_16(8);
    EXPECT_FALSE(icmp_error_allowed(ipv4(later), 40));
    bytes from_multicast = offender;
    ipv4(from_multicast)->src_addr = addr(224, 0, 0, 1);
    EXPECT_FALSE(icmp_error_allowed(ipv4(from_multicast), 40));
    bytes error = frag_needed_expected;
    EXPECT_FALSE(icmp_error_allowed(ipv4(error), static_cast<uint32_t>(error.size())));
    error[20] = RTE_IP_ICMP_ECHO_REQUEST;
    EXPECT_TRUE(icmp_error_allowed(ipv4(error), static_cast<uint32_t>(error.size())));
}

// One VXLAN frame from node-facing port 02:00:00:00:00:aa to node-1, made with:
// /usr/bin/python3 -c 'from scapy.all import *; from scapy.layers.vxlan import VXLAN;
//   inner = Ether(src="02:42:0a:ff:00:02", dst="02:42:0a:ff:00:05")/
//           IP(src="10.255.0.2", dst="10.255.0.5", ttl=63, id=1)/
//           TCP(sport=40000, dport=8000, flags="S", seq=1000, window=64240)/Raw(b"meshgate");
//   p = Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:01:11")/
//       IP(src="192.168.50.2", dst="192.168.50.11", ttl=64, flags="DF", id=0)/
//       UDP(sport=0xc48d, dport=4789, chksum=0)/VXLAN(flags=0x08, vni=4096)/inner;
//   print(bytes(p).hex())'
// Source port 0xc48d = vxlan_source_port(0x12345678).
const bytes vxlan_expected = {
    0x02, 0x00, 0x00, 0x00, 0x01, 0x11, 0x02, 0x00, 0x00, 0x00, 0x00, 0xaa, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x62, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x55, 0x2d, 0xc0, 0xa8, 0x32, 0x02, 0xc0, 0xa8,
    0x32, 0x0b, 0xc4, 0x8d, 0x12, 0xb5, 0x00, 0x4e, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x10,
    0x00, 0x00, 0x02, 0x42, 0x0a, 0xff, 0x00, 0x05, 0x02, 0x42, 0x0a, 0xff, 0x00, 0x02, 0x08, 0x00,
    0x45, 0x00, 0x00, 0x30, 0x00, 0x01, 0x00, 0x00, 0x3f, 0x06, 0x65, 0xc3, 0x0a, 0xff, 0x00, 0x02,
    0x0a, 0xff, 0x00, 0x05, 0x9c, 0x40, 0x1f, 0x40, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x02, 0xfa, 0xf0, 0x22, 0xe8, 0x00, 0x00, 0x6d, 0x65, 0x73, 0x68, 0x67, 0x61, 0x74, 0x65,
};
const bytes vxlan_inner(vxlan_expected.begin() + vxlan_outer_len, vxlan_expected.end());

const vxlan_tunnel_config node1_config{
    .port_mac = {{0x02, 0x00, 0x00, 0x00, 0x00, 0xaa}},
    .next_hop_mac = {{0x02, 0x00, 0x00, 0x00, 0x01, 0x11}},
    .underlay_addr = addr(192, 168, 50, 2),
    .vtep_addr = addr(192, 168, 50, 11),
    .vni = 4096,
    .udp_port = RTE_BE16(4789),
};

TEST(Vxlan, EncapMatchesScapyBytes)
{
    const vxlan_tunnel node1 = vxlan_tunnel_build(node1_config);
    test_mbuf m(vxlan_inner);
    ASSERT_TRUE(vxlan_encap(m.m, node1, 0x12345678));
    EXPECT_EQ(m.contents(), vxlan_expected);
    EXPECT_EQ(m.m->pkt_len, vxlan_expected.size());
    EXPECT_EQ(m.m->data_off, RTE_PKTMBUF_HEADROOM - vxlan_outer_len); // prepended, not copied
}

TEST(Vxlan, InnerEtherHelperWritesGatewayToTask)
{
    bytes frame = vxlan_inner;
    std::fill(frame.begin(), frame.begin() + 14, 0);
    vxlan_inner_ether_write(reinterpret_cast<rte_ether_hdr *>(frame.data()),
                            rte_ether_addr{{0x02, 0x42, 0x0a, 0xff, 0x00, 0x02}},
                            rte_ether_addr{{0x02, 0x42, 0x0a, 0xff, 0x00, 0x05}});
    EXPECT_EQ(frame, vxlan_inner);
}

TEST(Vxlan, EncapWithoutHeadroomFailsAndLeavesTheFrame)
{
    const vxlan_tunnel node1 = vxlan_tunnel_build(node1_config);
    test_mbuf m(vxlan_inner, vxlan_outer_len - 1);
    EXPECT_FALSE(vxlan_encap(m.m, node1));
    EXPECT_EQ(m.contents(), vxlan_inner);
    EXPECT_EQ(m.m->data_off, vxlan_outer_len - 1);

    test_mbuf exact(vxlan_inner, vxlan_outer_len);
    EXPECT_TRUE(vxlan_encap(exact.m, node1));
}

TEST(Vxlan, SourcePortHashesTheInnerFlowIntoTheDynamicRange)
{
    const vxlan_tunnel node1 = vxlan_tunnel_build(node1_config);
    std::set<uint16_t> ports;
    for (uint16_t client_port = 1024; client_port < 1024 + 4096; ++client_port) {
        bytes inner = vxlan_inner;
        rte_be16_t sport = rte_cpu_to_be_16(client_port);
        std::memcpy(&inner[14 + 20], &sport, 2);
        uint16_t expected = vxlan_source_port(vxlan_inner_flow_hash(inner.data(), inner.size()));
        test_mbuf m(inner);
        ASSERT_TRUE(vxlan_encap(m.m, node1));
        bytes out = m.contents();
        uint16_t got = static_cast<uint16_t>(out[34] << 8 | out[35]);
        ASSERT_GE(got, 49152);
        ASSERT_EQ(got, expected);
        ports.insert(got);
        // Everything but the source port is the same as with an explicit hash.
        test_mbuf again(inner);
        ASSERT_TRUE(vxlan_encap(again.m, node1, 0x12345678));
        bytes fixed = again.contents();
        fixed[34] = out[34];
        fixed[35] = out[35];
        ASSERT_EQ(fixed, out);
    }
    // 4096 flows into 16384 ports: ~3630 distinct if the hash is uniform.
    EXPECT_GT(ports.size(), 3400u);
}

vxlan_decap_info parse(const bytes &frame, size_t len, uint16_t port = 4789, uint32_t vni = 4096)
{
    bytes cut(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(len));
    test_mbuf m(cut);
    return vxlan_decap_parse(m.m, sizeof(rte_ether_hdr), rte_cpu_to_be_16(port), vni);
}

vxlan_decap_info parse(const bytes &frame)
{
    return parse(frame, frame.size());
}

TEST(Vxlan, DecapAcceptsAndStripsToTheInnerFrame)
{
    vxlan_decap_info info = parse(vxlan_expected);
    ASSERT_EQ(info.status, vxlan_status::ok);
    EXPECT_EQ(info.vni, 4096u);
    EXPECT_EQ(info.inner_offset, vxlan_outer_len);
    EXPECT_EQ(info.inner_len, vxlan_inner.size());

    bytes padded = vxlan_expected;
    padded.resize(padded.size() + 6); // Ethernet padding or an FCS left in
    test_mbuf m(padded);
    info = vxlan_decap_parse(m.m, sizeof(rte_ether_hdr), RTE_BE16(4789), 4096);
    ASSERT_EQ(info.status, vxlan_status::ok);
    vxlan_decap(m.m, info);
    EXPECT_EQ(m.contents(), vxlan_inner);
    EXPECT_EQ(m.m->pkt_len, vxlan_inner.size());

    bytes reserved_bits = vxlan_expected;
    reserved_bits[42] = 0xff; // reserved flag bits are ignored on receipt
    EXPECT_EQ(parse(reserved_bits).status, vxlan_status::ok);
}

TEST(Vxlan, EncapThenDecapGivesTheInnerFrameBack)
{
    const vxlan_tunnel node1 = vxlan_tunnel_build(node1_config);
    test_mbuf m(vxlan_inner);
    ASSERT_TRUE(vxlan_encap(m.m, node1));
    vxlan_decap_info info = vxlan_decap_parse(m.m, sizeof(rte_ether_hdr), RTE_BE16(4789), 4096);
    ASSERT_EQ(info.status, vxlan_status::ok);
    vxlan_decap(m.m, info);
    EXPECT_EQ(m.contents(), vxlan_inner);
}

TEST(Vxlan, DecapRejectsTruncated)
{
    for (size_t len : {size_t{14}, size_t{33}, size_t{41}, size_t{49}, vxlan_expected.size() - 1})
        EXPECT_EQ(parse(vxlan_expected, len).status, vxlan_status::truncated) << "len " << len;

    bytes short_udp = vxlan_expected;
    short_udp[39] = 16 + 13; // UDP length leaves no room for an inner Ethernet header
    EXPECT_EQ(parse(short_udp).status, vxlan_status::truncated);
    bytes long_udp = vxlan_expected;
    long_udp[39] = 0x4f; // one past the IPv4 payload
    EXPECT_EQ(parse(long_udp).status, vxlan_status::truncated);
    bytes bad_ihl = vxlan_expected;
    bad_ihl[14] = 0x44;
    EXPECT_EQ(parse(bad_ihl).status, vxlan_status::truncated);
}

TEST(Vxlan, DecapRejectsWrongPortAndProtocolAsNotVxlan)
{
    EXPECT_EQ(parse(vxlan_expected, vxlan_expected.size(), 4790).status, vxlan_status::not_vxlan);
    bytes tcp = vxlan_expected;
    tcp[23] = IPPROTO_TCP;
    EXPECT_EQ(parse(tcp).status, vxlan_status::not_vxlan);
    // A short UDP packet to another port is not a truncated tunnel packet.
    bytes dns = vxlan_expected;
    dns[17] = 20 + 8 + 4; // IPv4 total length
    dns[36] = 0;
    dns[37] = 53;
    dns[39] = 8 + 4; // UDP length
    EXPECT_EQ(parse(dns, 14 + 20 + 8 + 4).status, vxlan_status::not_vxlan);
}

TEST(Vxlan, DecapRejectsMissingIFlagAsNotVxlan)
{
    bytes no_i = vxlan_expected;
    no_i[42] = 0x00;
    EXPECT_EQ(parse(no_i).status, vxlan_status::not_vxlan);
    no_i[42] = 0xf7; // every flag but I
    EXPECT_EQ(parse(no_i).status, vxlan_status::not_vxlan);
}

TEST(Vxlan, DecapRejectsUnknownVniAndReportsIt)
{
    bytes other = vxlan_expected;
    other[46] = 0x12;
    other[47] = 0x34;
    other[48] = 0x56;
    vxlan_decap_info info = parse(other);
    EXPECT_EQ(info.status, vxlan_status::unknown_vni);
    EXPECT_EQ(info.vni, 0x123456u);
    EXPECT_EQ(parse(vxlan_expected, vxlan_expected.size(), 4789, 4097).status,
              vxlan_status::unknown_vni);
}

TEST(Vxlan, DecapRejectsFragments)
{
    bytes more_fragments = vxlan_expected;
    more_fragments[20] = 0x20; // MF
    EXPECT_EQ(parse(more_fragments).status, vxlan_status::fragment);
    bytes later_fragment = vxlan_expected;
    later_fragment[21] = 0x10;
    EXPECT_EQ(parse(later_fragment).status, vxlan_status::fragment);
}

// --- the PROXY protocol -----------------------------------------------------------------------

flow_key client_flow(rte_be32_t client, uint16_t client_port, rte_be32_t published,
                     uint16_t published_port)
{
    return make_flow_key(client, published, rte_cpu_to_be_16(client_port),
                         rte_cpu_to_be_16(published_port), IPPROTO_TCP);
}

std::string header_text(proxy_protocol v, const flow_key &forward)
{
    uint8_t out[proxy_header_max_len];
    const uint32_t n = proxy_header_write(v, forward, out);
    return std::string(reinterpret_cast<const char *>(out), n);
}

TEST(ProxyHeader, V1IsTheSpecsLine)
{
    EXPECT_EQ(header_text(proxy_protocol::v1,
                          client_flow(addr(192, 0, 2, 10), 51234, addr(10, 99, 0, 5), 8000)),
              "PROXY TCP4 192.0.2.10 10.99.0.5 51234 8000\r\n");
    EXPECT_EQ(
        header_text(proxy_protocol::v1, client_flow(addr(0, 0, 0, 0), 0, addr(1, 2, 3, 4), 1)),
        "PROXY TCP4 0.0.0.0 1.2.3.4 0 1\r\n");
    const std::string longest =
        header_text(proxy_protocol::v1,
                    client_flow(addr(255, 255, 255, 255), 65535, addr(255, 255, 255, 255), 65535));
    EXPECT_EQ(longest, "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
    EXPECT_EQ(longest.size(), proxy_v1_max_len);
    EXPECT_EQ(header_text(proxy_protocol::off, client_flow(1, 2, 3, 4)), "");
}

TEST(ProxyHeader, V2IsTheSpecsBinaryBlock)
{
    const std::string h = header_text(
        proxy_protocol::v2, client_flow(addr(192, 0, 2, 10), 51234, addr(10, 99, 0, 5), 8000));
    const bytes expected = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
                            0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C, 192,  0,    2,    10,
                            10,   99,   0,    5,    0xC8, 0x22, 0x1F, 0x40};
    EXPECT_EQ(bytes(h.begin(), h.end()), expected);
    EXPECT_EQ(h.size(), proxy_v2_len);
}

TEST(ProxySpan, MapsBothWaysAcrossTheWrap)
{
    const proxy_span span{0xFFFFFFF0u, 28};
    EXPECT_EQ(span.end(), 0x0000000Cu);
    EXPECT_EQ(span.to_task(0xFFFFFFF0u), 0x0000000Cu);
    EXPECT_EQ(span.to_task(0xFFFFFFFFu), 0x0000001Bu);
    for (uint32_t s : {0xFFFFFFF0u, 0xFFFFFFFFu, 0u, 5u, 0x10000000u})
        EXPECT_EQ(span.to_client(span.to_task(s)), s) << s;
    // inside the header: the client sent nothing there
    EXPECT_EQ(span.to_client(0xFFFFFFF0u), 0xFFFFFFF0u);
    EXPECT_EQ(span.to_client(0xFFFFFFF5u), 0xFFFFFFF0u);
    EXPECT_EQ(span.to_client(0x0000000Bu), 0xFFFFFFF0u);
    EXPECT_EQ(span.to_client(0x0000000Cu), 0xFFFFFFF0u);
    EXPECT_EQ(span.to_client(0x0000000Du), 0xFFFFFFF1u);
    // before it (the SYN-ACK's ack of the SYN is start itself): unchanged
    EXPECT_EQ(span.to_client(0xFFFFFFEFu), 0xFFFFFFEFu);
    EXPECT_TRUE(seq_at_or_after(0x00000001u, 0xFFFFFFFFu));
    EXPECT_FALSE(seq_at_or_after(0xFFFFFFFFu, 0x00000001u));
}

// An Ethernet + IPv4 + TCP frame with valid checksums: client -> published address.
bytes tcp_frame(const flow_key &f, uint32_t seq, uint32_t ack, uint8_t flags, const bytes &options,
                const bytes &payload)
{
    const uint32_t tcp_len = 20 + static_cast<uint32_t>(options.size());
    bytes frame(14 + 20 + tcp_len + payload.size(), 0);
    frame[12] = 0x08;
    bytes p(frame.begin() + 14, frame.end());
    rte_ipv4_hdr *ip = ipv4(p);
    ip->version_ihl = 0x45;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(p.size()));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_TCP;
    ip->src_addr = f.src_ip;
    ip->dst_addr = f.dst_ip;
    auto *tcp = reinterpret_cast<rte_tcp_hdr *>(l4_of(p));
    tcp->src_port = f.src_port;
    tcp->dst_port = f.dst_port;
    tcp->sent_seq = rte_cpu_to_be_32(seq);
    tcp->recv_ack = rte_cpu_to_be_32(ack);
    tcp->data_off = static_cast<uint8_t>(tcp_len / 4 << 4);
    tcp->tcp_flags = flags;
    tcp->rx_win = RTE_BE16(64240);
    std::copy(options.begin(), options.end(), l4_of(p) + 20);
    std::copy(payload.begin(), payload.end(), l4_of(p) + tcp_len);
    full_ipv4_checksum(ip);
    full_l4_checksum(p, false);
    std::copy(p.begin(), p.end(), frame.begin() + 14);
    return frame;
}

struct frame_view {
    rte_ipv4_hdr *ip;
    rte_tcp_hdr *tcp;
};

frame_view view_of(test_mbuf &m)
{
    auto *ip = rte_pktmbuf_mtod_offset(m.m, rte_ipv4_hdr *, 14);
    return {ip, reinterpret_cast<rte_tcp_hdr *>(reinterpret_cast<uint8_t *>(ip) + 20)};
}

bool checksums_hold(const frame_view &v)
{
    return rte_ipv4_cksum(v.ip) == 0 && rte_ipv4_udptcp_cksum_verify(v.ip, v.tcp) == 0;
}

struct proxied_connection {
    connection c{};
    explicit proxied_connection(proxy_protocol v, const flow_key &forward, uint32_t isn)
    {
        c.forward = forward;
        c.proxy_version = uint8_t(v);
        c.proxy_start = isn + 1;
        c.proxy_len = proxy_header_length(v, forward);
    }
};

const flow_key proxied_flow = client_flow(addr(192, 0, 2, 10), 51235, addr(10, 99, 0, 5), 8000);

TEST(ProxyToTask, TheFirstSegmentCarriesTheHeaderInFrontOfItsData)
{
    // v1 is 45 bytes here and the payload odd: every word of the payload moves by one byte
    for (uint32_t isn : {1000u, 0xFFFFFFFFu, 0xFFFFFFE0u}) {
        proxied_connection pc(proxy_protocol::v1, proxied_flow, isn);
        const bytes payload = {'G', 'E', 'T', ' ', '/', '\r', '\n'};
        test_mbuf m(tcp_frame(proxied_flow, isn + 1, 7777, tcp_flag::ack | 0x08, {}, payload));
        frame_view v = view_of(m);
        const uint16_t room_before = rte_pktmbuf_headroom(m.m);
        EXPECT_EQ(proxy_to_task(m.m, v.ip, v.tcp, pc.c, vxlan_outer_len), proxy_step::inserted);
        EXPECT_EQ(rte_pktmbuf_headroom(m.m), room_before - pc.c.proxy_len);
        EXPECT_EQ(reinterpret_cast<uint8_t *>(v.ip), rte_pktmbuf_mtod(m.m, uint8_t *) + 14);
        EXPECT_TRUE(checksums_hold(v));
        EXPECT_EQ(rte_be_to_cpu_32(v.tcp->sent_seq), isn + 1); // the header takes the start
        const std::string carried(reinterpret_cast<const char *>(v.tcp + 1),
                                  rte_be_to_cpu_16(v.ip->total_length) - 40);
        EXPECT_EQ(carried, "PROXY TCP4 192.0.2.10 10.99.0.5 51235 8000\r\nGET /\r\n");
    }
}

TEST(ProxyToTask, APureAckCarriesTheHeaderAloneAndABadChecksumStaysBad)
{
    proxied_connection pc(proxy_protocol::v2, proxied_flow, 5000);
    test_mbuf m(tcp_frame(proxied_flow, 5001, 9, tcp_flag::ack, {}, {}));
    frame_view v = view_of(m);
    ASSERT_EQ(proxy_to_task(m.m, v.ip, v.tcp, pc.c, vxlan_outer_len), proxy_step::inserted);
    EXPECT_TRUE(checksums_hold(v));
    EXPECT_EQ(rte_be_to_cpu_16(v.ip->total_length), 40 + proxy_v2_len);

    test_mbuf bad(tcp_frame(proxied_flow, 5001, 9, tcp_flag::ack, {}, {'x'}));
    frame_view b = view_of(bad);
    b.tcp->cksum ^= 0x0101;
    ASSERT_EQ(proxy_to_task(bad.m, b.ip, b.tcp, pc.c, vxlan_outer_len), proxy_step::inserted);
    EXPECT_NE(rte_ipv4_udptcp_cksum_verify(b.ip, b.tcp), 0);
}

TEST(ProxyToTask, LaterSegmentsShiftAndTheHeaderGoesAgainUntilAcknowledged)
{
    proxied_connection pc(proxy_protocol::v2, proxied_flow, 0xFFFFFFF0u);
    const uint32_t start = 0xFFFFFFF1u;
    auto step = [&](uint32_t seq, uint8_t flags, uint32_t *seq_out) {
        test_mbuf m(tcp_frame(proxied_flow, seq, 1, flags, {}, {'a', 'b'}));
        frame_view v = view_of(m);
        const proxy_step s = proxy_to_task(m.m, v.ip, v.tcp, pc.c, vxlan_outer_len);
        EXPECT_TRUE(checksums_hold(v));
        *seq_out = rte_be_to_cpu_32(v.tcp->sent_seq);
        return s;
    };
    uint32_t out = 0;
    EXPECT_EQ(step(0xFFFFFFF0u, tcp_flag::syn, &out), proxy_step::none);
    EXPECT_EQ(out, 0xFFFFFFF0u);
    EXPECT_EQ(step(start + 100, tcp_flag::ack, &out), proxy_step::shifted);
    EXPECT_EQ(out, start + 100 + proxy_v2_len);                        // across the wrap
    EXPECT_EQ(step(start, tcp_flag::ack, &out), proxy_step::inserted); // a retransmission
    EXPECT_EQ(out, start);
    EXPECT_EQ(step(start, tcp_flag::rst, &out), proxy_step::none); // the task expects start
    EXPECT_EQ(out, start);
    pc.c.proxy_acked.store(1);
    EXPECT_EQ(step(start, tcp_flag::ack, &out), proxy_step::shifted);
    EXPECT_EQ(out, start + proxy_v2_len);
    EXPECT_EQ(step(start, tcp_flag::rst | tcp_flag::ack, &out), proxy_step::shifted);
    EXPECT_EQ(out, start + proxy_v2_len);
}

TEST(ProxyToTask, NoHeadroomForTheHeaderAndTheEncapsulationIsNoRoom)
{
    proxied_connection pc(proxy_protocol::v1, proxied_flow, 1);
    test_mbuf m(tcp_frame(proxied_flow, 2, 1, tcp_flag::ack, {}, {}),
                uint16_t(vxlan_outer_len + pc.c.proxy_len - 1));
    frame_view v = view_of(m);
    const bytes before = m.contents();
    EXPECT_EQ(proxy_to_task(m.m, v.ip, v.tcp, pc.c, vxlan_outer_len), proxy_step::no_room);
    EXPECT_EQ(m.contents(), before);
}

TEST(ProxyToClient, AcksSackEdgesAndTheSynAcksMssAreTheClients)
{
    proxied_connection pc(proxy_protocol::v2, proxied_flow, 0xFFFFFFF0u);
    const uint32_t start = 0xFFFFFFF1u, end = start + proxy_v2_len, len = proxy_v2_len;
    const flow_key reply = client_flow(addr(10, 255, 0, 5), 8000, addr(10, 255, 0, 2), 40000);
    // SYN-ACK: MSS 1460, then SACK-permitted and padding
    {
        test_mbuf m(tcp_frame(reply, 77, start, tcp_flag::syn | tcp_flag::ack,
                              {2, 4, 0x05, 0xB4, 4, 2, 1, 1}, {}));
        frame_view v = view_of(m);
        proxy_to_client(v.tcp, pc.c);
        EXPECT_TRUE(checksums_hold(v));
        EXPECT_EQ(rte_be_to_cpu_32(v.tcp->recv_ack), start);
        const uint8_t *opt = reinterpret_cast<const uint8_t *>(v.tcp + 1);
        EXPECT_EQ(opt[2] << 8 | opt[3], 1460 - int(len));
        EXPECT_EQ(pc.c.proxy_acked.load(), 0);
    }
    // an ACK inside the header, with a D-SACK of the header and a SACK of the client's data
    auto be = [](uint32_t v) {
        return bytes{uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
    };
    bytes sack = {1, 1, 5, 18};
    for (uint32_t edge : {start, end, end + 100, end + 200})
        for (uint8_t b : be(edge))
            sack.push_back(b);
    {
        test_mbuf m(tcp_frame(reply, 78, start + 3, tcp_flag::ack, sack, {}));
        frame_view v = view_of(m);
        proxy_to_client(v.tcp, pc.c);
        EXPECT_TRUE(checksums_hold(v));
        EXPECT_EQ(rte_be_to_cpu_32(v.tcp->recv_ack), start);
        const uint8_t *opt = reinterpret_cast<const uint8_t *>(v.tcp + 1);
        EXPECT_EQ(opt[2], 5);
        EXPECT_EQ(opt[3], 10); // one block left
        EXPECT_EQ(detail::load_be32(opt + 4), start + 100);
        EXPECT_EQ(detail::load_be32(opt + 8), start + 200);
        EXPECT_EQ(opt[12], 1); // NOPs where the other block was
        EXPECT_EQ(pc.c.proxy_acked.load(), 0);
    }
    // the whole header acknowledged, and data after it
    {
        test_mbuf m(tcp_frame(reply, 79, end + 50, tcp_flag::ack, {}, {}));
        frame_view v = view_of(m);
        proxy_to_client(v.tcp, pc.c);
        EXPECT_TRUE(checksums_hold(v));
        EXPECT_EQ(rte_be_to_cpu_32(v.tcp->recv_ack), start + 50);
        EXPECT_EQ(pc.c.proxy_acked.load(), 1);
    }
}

// --- SYN cookies (dataplane/syn_proxy.h) ----------------------------------------------------

const flow_key cookie_flow = client_flow(addr(192, 0, 2, 10), 40000, addr(203, 0, 113, 10), 8000);

TEST(SynProxy, ReadsTheSynsOptions)
{
    test_mbuf m(tcp_frame(cookie_flow, 100, 0, tcp_flag::syn,
                          {2, 4, 0x05, 0xB4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 9}, {}));
    const syn_options o = syn_options_of(view_of(m).tcp);
    EXPECT_EQ(o.mss, 1460);
    EXPECT_TRUE(o.sack);
    EXPECT_EQ(o.wscale, 9);
    test_mbuf bare(tcp_frame(cookie_flow, 100, 0, tcp_flag::syn, {}, {}));
    EXPECT_EQ(syn_options_of(view_of(bare).tcp), (syn_options{.mss = 536, .wscale = no_wscale}));
}

TEST(SynProxy, TheSynBecomesTheCookiesSynAck)
{
    test_mbuf m(tcp_frame(cookie_flow, 0xFFFFFFFFu, 0, tcp_flag::syn,
                          {2, 4, 0x05, 0xB4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 9}, {}));
    frame_view v = view_of(m);
    const syn_options client = syn_options_of(v.tcp);
    ASSERT_TRUE(syn_to_cookie_syn_ack(m.m, v.ip, v.tcp, 0x12345678, client, 1410));
    EXPECT_TRUE(checksums_hold(v));
    EXPECT_EQ(uint32_t{v.ip->src_addr}, cookie_flow.dst_ip); // copies: packed fields
    EXPECT_EQ(uint32_t{v.ip->dst_addr}, cookie_flow.src_ip);
    EXPECT_EQ(uint16_t{v.tcp->src_port}, cookie_flow.dst_port);
    EXPECT_EQ(uint16_t{v.tcp->dst_port}, cookie_flow.src_port);
    EXPECT_EQ(rte_be_to_cpu_32(v.tcp->sent_seq), 0x12345678u);
    EXPECT_EQ(rte_be_to_cpu_32(v.tcp->recv_ack), 0u); // the client's ISN + 1, wrapped
    EXPECT_EQ(v.tcp->tcp_flags, tcp_flag::syn | tcp_flag::ack);
    // MSS 1410 (ours is smaller), SACK-permitted, window scale 7; no timestamps.
    const uint8_t *opt = reinterpret_cast<const uint8_t *>(v.tcp + 1);
    EXPECT_EQ(bytes(opt, opt + 12), (bytes{2, 4, 0x05, 0x82, 1, 1, 4, 2, 1, 3, 3, 7}));
    EXPECT_EQ(rte_be_to_cpu_16(v.ip->total_length), 20 + 32);
    EXPECT_EQ(m.m->data_len, 14 + 20 + 32);
}

TEST(SynProxy, TheCookieAckBecomesTheTasksSynWithoutItsData)
{
    test_mbuf m(tcp_frame(cookie_flow, 1001, 0x12345679, tcp_flag::ack | 0x08, {}, {'h', 'i'}));
    frame_view v = view_of(m);
    ASSERT_TRUE(cookie_ack_to_syn(m.m, v.ip, v.tcp, {.mss = 1360, .wscale = 7, .sack = true}));
    EXPECT_TRUE(checksums_hold(v));
    EXPECT_EQ(rte_be_to_cpu_32(v.tcp->sent_seq), 1000u);
    EXPECT_EQ(uint32_t{v.tcp->recv_ack}, 0u);
    EXPECT_EQ(v.tcp->tcp_flags, tcp_flag::syn);
    const uint8_t *opt = reinterpret_cast<const uint8_t *>(v.tcp + 1);
    EXPECT_EQ(bytes(opt, opt + 12), (bytes{2, 4, 0x05, 0x50, 1, 1, 4, 2, 1, 3, 3, 7}));
    EXPECT_EQ(rte_be_to_cpu_16(v.ip->total_length), 20 + 32); // the data is gone
}

TEST(SynProxy, TheSynSentAgainIsTheOneTheAckBecameAfterNat)
{
    connection c{};
    c.forward = cookie_flow;
    c.reverse = client_flow(addr(10, 255, 0, 5), 80, addr(10, 255, 0, 2), 40001);
    const syn_options client{.mss = 1220, .wscale = no_wscale, .sack = true};
    test_mbuf ack(tcp_frame(cookie_flow, 1001, 0x12345679, tcp_flag::ack, {}, {'h', 'i'}));
    frame_view made = view_of(ack);
    ASSERT_TRUE(cookie_ack_to_syn(ack.m, made.ip, made.tcp, client));
    nat_forward<IPPROTO_TCP>(
        made.ip, made.tcp, nat_endpoints{c.snat_ip(), c.task_ip(), c.snat_port(), c.target_port()});
    test_mbuf again(bytes{});
    ASSERT_TRUE(write_task_syn(again.m, c, 1000, client));
    frame_view v = view_of(again);
    EXPECT_TRUE(checksums_hold(v));
    EXPECT_EQ(again.m->data_len, ack.m->data_len);
    EXPECT_EQ(uint32_t{v.ip->src_addr}, uint32_t{made.ip->src_addr});
    EXPECT_EQ(uint32_t{v.ip->dst_addr}, uint32_t{made.ip->dst_addr});
    EXPECT_EQ(v.ip->fragment_offset, made.ip->fragment_offset);
    // The TCP header and its options, byte for byte.
    const auto *ours = reinterpret_cast<const uint8_t *>(v.tcp);
    const auto *theirs = reinterpret_cast<const uint8_t *>(made.tcp);
    EXPECT_EQ(bytes(ours, ours + 28), bytes(theirs, theirs + 28));
}

TEST(SynProxy, TheTasksSynAckBecomesTheAckBackToIt)
{
    const flow_key reply = client_flow(addr(10, 255, 0, 5), 80, addr(10, 255, 0, 2), 40000);
    bytes frame = tcp_frame(reply, 5000, 1001, tcp_flag::syn | tcp_flag::ack,
                            {2, 4, 0x05, 0xB4, 1, 3, 3, 7}, {});
    for (int i = 0; i < 6; i++) { // inner Ethernet: to the overlay MAC from the task's
        frame[i] = 0xaa;
        frame[6 + i] = 0xbb;
    }
    test_mbuf m(frame);
    frame_view v = view_of(m);
    task_syn_ack_to_ack(m.m, v.ip, v.tcp, 9);
    EXPECT_TRUE(checksums_hold(v));
    const uint8_t *eth = rte_pktmbuf_mtod(m.m, const uint8_t *);
    EXPECT_EQ(eth[0], 0xbb);
    EXPECT_EQ(eth[6], 0xaa);
    EXPECT_EQ(uint32_t{v.ip->src_addr}, reply.dst_ip);
    EXPECT_EQ(uint32_t{v.ip->dst_addr}, reply.src_ip);
    EXPECT_EQ(rte_be_to_cpu_32(v.tcp->sent_seq), 1001u);
    EXPECT_EQ(rte_be_to_cpu_32(v.tcp->recv_ack), 5001u);
    EXPECT_EQ(v.tcp->tcp_flags, tcp_flag::ack);
    EXPECT_EQ(rte_be_to_cpu_16(v.tcp->rx_win), 65535u >> 9);
    EXPECT_EQ(rte_be_to_cpu_16(v.ip->total_length), 40);
}

TEST(SynProxy, SegmentsMoveByTheOffsetBothWaysWithTheirChecksums)
{
    connection c{};
    c.seq_offset = 0x80000010u; // task ISN - cookie
    c.wscales = 7 << 4 | 9;     // the client was told 7, the task scales by 9
    // client -> task: ack and both SACK edges (the block at an odd offset: after one NOP)
    auto be = [](uint32_t v) {
        return bytes{uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
    };
    bytes sack = {1, 5, 10};
    for (uint32_t edge : {0xFFFFFFF0u, 0x20u})
        for (uint8_t b : be(edge))
            sack.push_back(b);
    sack.push_back(0);
    {
        test_mbuf m(tcp_frame(cookie_flow, 1, 0xFFFFFFF0u, tcp_flag::ack, sack, {'x'}));
        frame_view v = view_of(m);
        cookie_to_task(v.tcp, c);
        EXPECT_TRUE(checksums_hold(v));
        EXPECT_EQ(rte_be_to_cpu_32(v.tcp->recv_ack), 0xFFFFFFF0u + 0x80000010u);
        const uint8_t *opt = reinterpret_cast<const uint8_t *>(v.tcp + 1);
        EXPECT_EQ(detail::load_be32(opt + 3), 0xFFFFFFF0u + 0x80000010u);
        EXPECT_EQ(detail::load_be32(opt + 7), 0x20u + 0x80000010u);
    }
    // task -> client: seq back, the window rescaled from 2^9 to 2^7 (and capped)
    const flow_key reply = client_flow(addr(10, 255, 0, 5), 80, addr(10, 255, 0, 2), 40000);
    for (auto [window, expect] : {std::pair{100u, 400u}, std::pair{20000u, 65535u}}) {
        test_mbuf m(tcp_frame(reply, 0x80000011u, 2, tcp_flag::ack, {}, {'y'}));
        frame_view v = view_of(m);
        v.tcp->rx_win = rte_cpu_to_be_16(static_cast<uint16_t>(window));
        v.tcp->cksum = 0;
        v.tcp->cksum = rte_ipv4_udptcp_cksum(v.ip, v.tcp);
        cookie_to_client(v.tcp, c);
        EXPECT_TRUE(checksums_hold(v));
        EXPECT_EQ(rte_be_to_cpu_32(v.tcp->sent_seq), 1u);
        EXPECT_EQ(rte_be_to_cpu_16(v.tcp->rx_win), expect);
    }
}

} // namespace
