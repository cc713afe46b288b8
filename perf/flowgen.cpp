// flowgen: clients and swarm nodes in one DPDK process, on the other side of meshgate's ports.
//
//   port 0 (clients): sends UDP datagrams from FLOWS client flows (address, port) to a published
//                     address:port at RATE packets/s, COUNT of them; counts what comes back
//   port 1 (nodes):   takes the VXLAN packets meshgate sends to tasks, counts them and, with
//                     --reply, sends each back as the task's reply (inner addresses and ports
//                     swapped, outer from the node's VTEP to the gateway)
//
// With --queues N (one per gateway worker) flow F is sent on client queue F % N, as RSS would
// spread it, and a node answers on the queue its outer UDP source port picks (RSS on the outer
// header): a reply often reaches another worker than the one that made the connection.
// With --new every request is a new flow (a new client address and port), for connection rates.
// With --rate 0 it sends as fast as the ring takes (what the ring refuses is sent again, not
// counted), and --measure-after N gives rates over the window from the Nth request to the last
// (the first N set the flows up): "sent_mpps", "at_tasks_mpps", "back_mpps" (what came back to
// the clients).
//
// With --flood KIND it also sends hostile traffic between its requests, as fast as the ring takes
// (or --flood-rate PPS), from random sources (--flood-sources A/N, default 100.64.0.0/10):
//   syn    TCP SYNs to --flood-target A:P        udp   UDP datagrams to --flood-target A:P
//   arp    ARP requests for --flood-target A from random senders of --flood-sources
//   ttl1   UDP with TTL 1 to the published address, half from broadcast and multicast sources
//   vxlan  VXLAN on the nodes' port from random outer sources (no configured node), inner UDP to
//          the --flood-target overlay address
// and counts them apart: "flood_sent", and "flood_at_tasks" (what of it reached the nodes; never
// answered). With --stall AT:FOR the nodes' side reads nothing from second AT for FOR seconds.
// Prints one JSON line when done: {"sent":..,"at_tasks":..,"replies":..,"rtt_us_max":..,...},
// then keeps its ports until the gateway has gone (its links are down) or SIGTERM. With net_memif
// devices it measures a gateway over shared memory; counters of both sides must agree.
//   dpdk-flowgen EAL-ARGS -- --client-mac M --gateway-mac M --node-mac M
//                --published A:P --clients A/N --flows N --rate PPS --count N [--reply]
//                [--queues N] [--new]
#include <getopt.h>
#include <signal.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_vxlan.h>

namespace
{

volatile bool stopping = false;

struct options {
    rte_ether_addr client_mac{}, gateway_mac{}, node_mac{};
    rte_ether_addr underlay_mac{{0x02, 0, 0, 0, 0, 0x20}}; // --flood vxlan's destination
    uint32_t published_ip = 0;                             // host order
    uint16_t published_port = 9000;
    uint32_t client_base = 0; // first client address, host order
    uint32_t client_count = 1;
    uint32_t flows = 256;
    uint64_t rate = 10000;
    uint64_t count = 100000;
    uint16_t size = 64; // Ethernet frame without FCS
    bool reply = false;
    bool fresh = false;  // --new: every request opens a new flow
    uint16_t queues = 1; // per port
    double linger = 2.0; // seconds to wait for the last answers
    uint64_t measure_after = 0;
    std::string flood;                   // "" = none, syn, udp, arp, ttl1, vxlan
    uint64_t flood_rate = 0;             // 0 = as fast as the ring takes
    uint32_t flood_ip = 0;               // --flood-target, host order
    uint16_t flood_port = 8000;          //
    uint32_t flood_base = 0x64400000;    // 100.64.0.0
    uint32_t flood_count = 1u << 22;     // /10
    double stall_at = -1, stall_for = 0; // --stall AT:FOR: the nodes' side stops reading
};

constexpr uint32_t first_client_port = 1024;
constexpr uint32_t ports_per_client = 65536 - first_client_port;

bool parse_mac(const char *s, rte_ether_addr &m)
{
    return rte_ether_unformat_addr(s, &m) == 0;
}

bool parse_ip(const char *s, uint32_t &ip)
{
    unsigned a, b, c, d;
    if (std::sscanf(s, "%u.%u.%u.%u", &a, &b, &c, &d) != 4 || a > 255 || b > 255 || c > 255 ||
        d > 255)
        return false;
    ip = a << 24 | b << 16 | c << 8 | d;
    return true;
}

[[noreturn]] void usage(const char *why)
{
    std::fprintf(
        stderr,
        "flowgen: %s\nusage: dpdk-flowgen EAL-ARGS -- --client-mac M --gateway-mac M "
        "--node-mac M --published A:P --clients A/N [--flows N] [--rate PPS] "
        "[--count N] [--size BYTES] [--reply] [--linger S] [--queues N] [--new] "
        "[--measure-after N] [--flood syn|udp|arp|ttl1|vxlan] [--flood-rate PPS] "
        "[--flood-target A[:P]] [--flood-sources A/N] [--underlay-mac M] [--stall AT:FOR]\n",
        why);
    std::exit(2);
}

options parse(int argc, char **argv)
{
    options o;
    static const option long_options[] = {{"client-mac", required_argument, nullptr, 'c'},
                                          {"gateway-mac", required_argument, nullptr, 'g'},
                                          {"node-mac", required_argument, nullptr, 'n'},
                                          {"published", required_argument, nullptr, 'p'},
                                          {"clients", required_argument, nullptr, 'a'},
                                          {"flows", required_argument, nullptr, 'f'},
                                          {"rate", required_argument, nullptr, 'r'},
                                          {"count", required_argument, nullptr, 'k'},
                                          {"size", required_argument, nullptr, 's'},
                                          {"reply", no_argument, nullptr, 'R'},
                                          {"linger", required_argument, nullptr, 'l'},
                                          {"queues", required_argument, nullptr, 'q'},
                                          {"new", no_argument, nullptr, 'N'},
                                          {"measure-after", required_argument, nullptr, 'M'},
                                          {"flood", required_argument, nullptr, 'F'},
                                          {"underlay-mac", required_argument, nullptr, 'U'},
                                          {"stall", required_argument, nullptr, 'W'},
                                          {"flood-rate", required_argument, nullptr, 'G'},
                                          {"flood-target", required_argument, nullptr, 'T'},
                                          {"flood-sources", required_argument, nullptr, 'S'},
                                          {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", long_options, nullptr)) != -1) {
        switch (c) {
        case 'c':
            if (!parse_mac(optarg, o.client_mac)) usage("bad --client-mac");
            break;
        case 'g':
            if (!parse_mac(optarg, o.gateway_mac)) usage("bad --gateway-mac");
            break;
        case 'n':
            if (!parse_mac(optarg, o.node_mac)) usage("bad --node-mac");
            break;
        case 'p': {
            std::string s(optarg);
            const size_t colon = s.find(':');
            if (colon == std::string::npos || !parse_ip(s.substr(0, colon).c_str(), o.published_ip))
                usage("bad --published");
            o.published_port = static_cast<uint16_t>(std::atoi(s.c_str() + colon + 1));
            break;
        }
        case 'a': {
            std::string s(optarg);
            const size_t slash = s.find('/');
            if (slash == std::string::npos || !parse_ip(s.substr(0, slash).c_str(), o.client_base))
                usage("bad --clients");
            o.client_count = static_cast<uint32_t>(std::atoi(s.c_str() + slash + 1));
            break;
        }
        case 'f':
            o.flows = static_cast<uint32_t>(std::strtoul(optarg, nullptr, 10));
            break;
        case 'r':
            o.rate = std::strtoull(optarg, nullptr, 10);
            break;
        case 'k':
            o.count = std::strtoull(optarg, nullptr, 10);
            break;
        case 's':
            o.size = static_cast<uint16_t>(std::atoi(optarg));
            break;
        case 'R':
            o.reply = true;
            break;
        case 'l':
            o.linger = std::atof(optarg);
            break;
        case 'q':
            o.queues = static_cast<uint16_t>(std::atoi(optarg));
            break;
        case 'N':
            o.fresh = true;
            break;
        case 'M':
            o.measure_after = std::strtoull(optarg, nullptr, 10);
            break;
        case 'F':
            o.flood = optarg;
            if (o.flood != "syn" && o.flood != "udp" && o.flood != "arp" && o.flood != "ttl1" &&
                o.flood != "vxlan")
                usage("--flood is one of syn, udp, arp, ttl1, vxlan");
            break;
        case 'W':
            if (std::sscanf(optarg, "%lf:%lf", &o.stall_at, &o.stall_for) != 2 || o.stall_at < 0 ||
                o.stall_for <= 0)
                usage("bad --stall AT:FOR (seconds)");
            break;
        case 'U':
            if (!parse_mac(optarg, o.underlay_mac)) usage("bad --underlay-mac");
            break;
        case 'G':
            o.flood_rate = std::strtoull(optarg, nullptr, 10);
            break;
        case 'T': {
            std::string s(optarg);
            const size_t colon = s.find(':');
            if (!parse_ip(s.substr(0, colon).c_str(), o.flood_ip)) usage("bad --flood-target");
            if (colon != std::string::npos)
                o.flood_port = static_cast<uint16_t>(std::atoi(s.c_str() + colon + 1));
            break;
        }
        case 'S': {
            std::string s(optarg);
            const size_t slash = s.find('/');
            if (slash == std::string::npos || !parse_ip(s.substr(0, slash).c_str(), o.flood_base))
                usage("bad --flood-sources");
            o.flood_count = static_cast<uint32_t>(std::strtoul(s.c_str() + slash + 1, nullptr, 10));
            if (o.flood_count == 0) usage("bad --flood-sources");
            break;
        }
        default:
            usage("unknown option");
        }
    }
    if (o.flows == 0 || o.client_count == 0 || o.queues == 0 || o.queues > 16)
        usage("flows, clients > 0, queues 1..16");
    if (o.flows < o.queues) usage("at least one flow per queue");
    if (o.fresh) o.flows = o.client_count * ports_per_client;
    if (o.flows > uint64_t{o.client_count} * ports_per_client)
        usage("more flows than client addresses x 64512 ports");
    if (o.size < 60) o.size = 60;
    return o;
}

// Flow I: client address base + I % clients, source port 1024 + I / clients.
// The payload of a request: its number and when it left, which its reply carries back.
struct stamp {
    uint64_t seq;
    uint64_t tsc;
};

// The request every flow sends, but for its source address and port.
struct request_template {
    uint8_t bytes[RTE_MBUF_DEFAULT_DATAROOM];
    uint16_t frame = 0;
    uint32_t checksum_base = 0; // the IPv4 header's sum without its source address
};

request_template make_template(const options &o)
{
    request_template t{};
    t.frame = o.size;
    auto *eth = reinterpret_cast<rte_ether_hdr *>(t.bytes);
    eth->dst_addr = o.gateway_mac;
    eth->src_addr = o.client_mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
    const uint16_t l3 = static_cast<uint16_t>(t.frame - sizeof(rte_ether_hdr));
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(l3);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->dst_addr = rte_cpu_to_be_32(o.published_ip);
    t.checksum_base = rte_raw_cksum(ip, sizeof(*ip));
    auto *udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    udp->dst_port = rte_cpu_to_be_16(o.published_port);
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(l3 - sizeof(rte_ipv4_hdr)));
    udp->dgram_cksum = 0; // optional in IPv4
    return t;
}

void build_request(rte_mbuf *m, const request_template &t, const options &o, uint32_t flow,
                   uint64_t seq)
{
    auto *frame = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, t.frame));
    std::memcpy(frame, t.bytes, t.frame);
    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(frame + sizeof(rte_ether_hdr));
    ip->src_addr = rte_cpu_to_be_32(o.client_base + flow % o.client_count);
    // The template's sum plus the source address, folded: rte_ipv4_cksum without the walk
    // (both sum the header's 16-bit words as they lie in memory).
    const uint32_t src = ip->src_addr;
    uint32_t sum = t.checksum_base + (src & 0xffff) + (src >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    ip->hdr_checksum = static_cast<uint16_t>(~sum & 0xffff);
    auto *udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    udp->src_port =
        rte_cpu_to_be_16(static_cast<uint16_t>(first_client_port + flow / o.client_count));
    const stamp st{seq, rte_rdtsc()};
    if (t.frame >= sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) + sizeof(st))
        std::memcpy(udp + 1, &st, sizeof(st));
}

constexpr uint16_t outer_len =
    sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) + sizeof(rte_vxlan_hdr);

uint32_t xorshift(uint64_t &state)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<uint32_t>(state >> 16);
}

void ipv4_header(rte_ipv4_hdr *ip, uint32_t src, uint32_t dst, uint8_t proto, uint16_t l3_len,
                 uint8_t ttl)
{
    *ip = rte_ipv4_hdr{};
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(l3_len);
    ip->time_to_live = ttl;
    ip->next_proto_id = proto;
    ip->src_addr = rte_cpu_to_be_32(src);
    ip->dst_addr = rte_cpu_to_be_32(dst);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
}

// One hostile frame of O's --flood kind into M; returns the port it goes out of.
uint16_t build_flood(rte_mbuf *m, const options &o, uint64_t &rng)
{
    const uint32_t r = xorshift(rng);
    const uint32_t src = o.flood_base + r % o.flood_count;
    const auto sport = static_cast<uint16_t>(1024 + xorshift(rng) % 64512);
    auto *eth = reinterpret_cast<rte_ether_hdr *>(rte_pktmbuf_append(m, 60));
    std::memset(eth, 0, 60);
    eth->dst_addr = o.gateway_mac;
    eth->src_addr = o.client_mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
    if (o.flood == "syn") {
        auto *tcp = reinterpret_cast<rte_tcp_hdr *>(ip + 1);
        tcp->src_port = rte_cpu_to_be_16(sport);
        tcp->dst_port = rte_cpu_to_be_16(o.flood_port);
        tcp->sent_seq = rte_cpu_to_be_32(r);
        tcp->data_off = 5 << 4;
        tcp->tcp_flags = RTE_TCP_SYN_FLAG;
        tcp->rx_win = RTE_BE16(64240);
        ipv4_header(ip, src, o.flood_ip, IPPROTO_TCP, sizeof(*ip) + sizeof(*tcp), 64);
        tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
        return 0;
    }
    if (o.flood == "arp") {
        eth->dst_addr = rte_ether_addr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
        eth->src_addr = rte_ether_addr{{0x02, 0xf1, static_cast<uint8_t>(r >> 24),
                                        static_cast<uint8_t>(r >> 16), static_cast<uint8_t>(r >> 8),
                                        static_cast<uint8_t>(r)}};
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
        auto *arp = reinterpret_cast<rte_arp_hdr *>(eth + 1);
        arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
        arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        arp->arp_hlen = RTE_ETHER_ADDR_LEN;
        arp->arp_plen = 4;
        arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
        arp->arp_data.arp_sha = eth->src_addr;
        arp->arp_data.arp_sip = rte_cpu_to_be_32(src);
        arp->arp_data.arp_tip = rte_cpu_to_be_32(o.flood_ip);
        return 0;
    }
    auto *udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    udp->src_port = rte_cpu_to_be_16(sport);
    udp->dgram_len = rte_cpu_to_be_16(sizeof(*udp) + 18);
    const auto l3 = static_cast<uint16_t>(sizeof(*ip) + sizeof(*udp) + 18);
    if (o.flood == "udp") {
        udp->dst_port = rte_cpu_to_be_16(o.flood_port);
        ipv4_header(ip, src, o.flood_ip, IPPROTO_UDP, l3, 64);
        return 0;
    }
    if (o.flood == "ttl1") {
        // Broadcast and multicast sources must get no ICMP error; the unicast ones one as long
        // as the gateway's rate allows.
        const uint32_t from = (r & 3) == 0   ? 0xffffffff
                              : (r & 3) == 1 ? 0xe0000000 | (r >> 8)
                                             : src;
        udp->dst_port = rte_cpu_to_be_16(o.published_port);
        ipv4_header(ip, from, o.published_ip, IPPROTO_UDP, l3, 1);
        return 0;
    }
    // vxlan: from a VTEP that is no node to the gateway's underlay address (--flood-target,
    // MAC --underlay-mac), a task's answer inside.
    rte_pktmbuf_reset(m);
    auto *outer = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, outer_len + 60));
    std::memset(outer, 0, outer_len + 60);
    auto *oeth = reinterpret_cast<rte_ether_hdr *>(outer);
    oeth->dst_addr = o.underlay_mac;
    oeth->src_addr = o.node_mac;
    oeth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto *oip = reinterpret_cast<rte_ipv4_hdr *>(oeth + 1);
    auto *oudp = reinterpret_cast<rte_udp_hdr *>(oip + 1);
    oudp->src_port = rte_cpu_to_be_16(sport);
    oudp->dst_port = RTE_BE16(4789);
    oudp->dgram_len = rte_cpu_to_be_16(sizeof(*oudp) + sizeof(rte_vxlan_hdr) + 60);
    auto *vx = reinterpret_cast<rte_vxlan_hdr *>(oudp + 1);
    vx->vx_flags = RTE_BE32(0x08000000);
    vx->vx_vni = rte_cpu_to_be_32(4096 << 8);
    auto *ieth = reinterpret_cast<rte_ether_hdr *>(vx + 1);
    ieth->dst_addr = rte_ether_addr{{0x02, 0x42, 0x0a, 0xff, 0x00, 0x02}};
    ieth->src_addr = rte_ether_addr{{0x02, 0x42, 0x0a, 0xff, 0x00, 0x05}};
    ieth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto *iip = reinterpret_cast<rte_ipv4_hdr *>(ieth + 1);
    auto *iudp = reinterpret_cast<rte_udp_hdr *>(iip + 1);
    iudp->src_port = rte_cpu_to_be_16(o.published_port);
    iudp->dst_port = rte_cpu_to_be_16(sport);
    iudp->dgram_len = rte_cpu_to_be_16(sizeof(*iudp) + 18);
    ipv4_header(iip, 0x0aff0005, 0x0aff0002, IPPROTO_UDP, l3, 64); // a task to the overlay address
    ipv4_header(oip, src, o.flood_ip, IPPROTO_UDP,
                static_cast<uint16_t>(outer_len - sizeof(rte_ether_hdr) + 60), 64);
    return 1;
}

// Round trips in µs, by powers of two: enough for p50, p99 and the worst.
struct latency {
    uint64_t buckets[40] = {};
    uint64_t count = 0;
    double worst_us = 0;

    void add(double us)
    {
        int b = 0;
        while (b < 39 && (1ull << b) < us)
            ++b;
        ++buckets[b];
        ++count;
        worst_us = std::max(worst_us, us);
    }
    // The bucket bound at or below which FRACTION of the round trips fall.
    double quantile(double fraction) const
    {
        uint64_t seen = 0;
        for (int b = 0; b < 40; ++b) {
            seen += buckets[b];
            if (count != 0 && double(seen) >= fraction * double(count)) return double(1ull << b);
        }
        return 0;
    }
};

// A VXLAN packet to a task, turned into the task's answer in place. False if it is not one.
bool turn_into_reply(rte_mbuf *m, const options &o)
{
    if (rte_pktmbuf_data_len(m) <
        outer_len + sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr))
        return false;
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
    auto *udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
        ip->next_proto_id != IPPROTO_UDP)
        return false;
    auto *inner_eth =
        reinterpret_cast<rte_ether_hdr *>(rte_pktmbuf_mtod_offset(m, uint8_t *, outer_len));
    auto *inner_ip = reinterpret_cast<rte_ipv4_hdr *>(inner_eth + 1);
    if (inner_eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) return false;
    auto *inner_l4 = reinterpret_cast<rte_udp_hdr *>(reinterpret_cast<uint8_t *>(inner_ip) +
                                                     rte_ipv4_hdr_len(inner_ip));
    std::swap(inner_eth->src_addr, inner_eth->dst_addr);
    {
        const rte_be32_t a = inner_ip->src_addr;
        inner_ip->src_addr = inner_ip->dst_addr;
        inner_ip->dst_addr = a;
    }
    inner_ip->time_to_live = 64;
    inner_ip->hdr_checksum = 0;
    inner_ip->hdr_checksum = rte_ipv4_cksum(inner_ip);
    {
        const rte_be16_t p = inner_l4->src_port;
        inner_l4->src_port = inner_l4->dst_port;
        inner_l4->dst_port = p;
    }
    if (inner_ip->next_proto_id == IPPROTO_UDP) inner_l4->dgram_cksum = 0;
    std::swap(eth->src_addr, eth->dst_addr);
    eth->src_addr = o.node_mac;
    {
        const rte_be32_t a = ip->src_addr;
        ip->src_addr = ip->dst_addr;
        ip->dst_addr = a;
    }
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    udp->dgram_cksum = 0;
    return true;
}

// Is M (from the gateway's underlay side) one of our requests: UDP to the published port inside?
bool is_request(const rte_mbuf *m, const options &o)
{
    if (rte_pktmbuf_data_len(m) <
        outer_len + sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr))
        return true; // not a tunnel packet: a plain forwarder's (testpmd io)
    const auto *ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr *, sizeof(rte_ether_hdr));
    if (ip->next_proto_id != IPPROTO_UDP) return true;
    const auto *inner =
        rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr *, outer_len + sizeof(rte_ether_hdr));
    if (inner->next_proto_id != IPPROTO_UDP) return false;
    const auto *udp = reinterpret_cast<const rte_udp_hdr *>(
        reinterpret_cast<const uint8_t *>(inner) + rte_ipv4_hdr_len(inner));
    return udp->dst_port == rte_cpu_to_be_16(o.published_port);
}

void on_signal(int)
{
    stopping = true;
}

} // namespace

int main(int argc, char **argv)
{
    const int eal = rte_eal_init(argc, argv);
    if (eal < 0) {
        std::fprintf(stderr, "flowgen: EAL: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    optind = 1;
    const options o = parse(argc - eal, argv + eal);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (rte_eth_dev_count_avail() < 2) {
        std::fprintf(stderr, "flowgen: needs two ports (clients, nodes)\n");
        return 1;
    }
    rte_mempool *pool = rte_pktmbuf_pool_create("flowgen", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                                rte_socket_id());
    if (pool == nullptr) return 1;
    for (uint16_t port = 0; port < 2; ++port) {
        rte_eth_conf conf{};
        bool ok = rte_eth_dev_configure(port, o.queues, o.queues, &conf) == 0;
        for (uint16_t q = 0; ok && q < o.queues; ++q)
            ok = rte_eth_rx_queue_setup(port, q, 1024, rte_eth_dev_socket_id(port), nullptr,
                                        pool) == 0 &&
                 rte_eth_tx_queue_setup(port, q, 1024, rte_eth_dev_socket_id(port), nullptr) == 0;
        if (!ok || rte_eth_dev_start(port) != 0) {
            std::fprintf(stderr, "flowgen: port %u setup failed\n", port);
            return 1;
        }
    }

    std::fprintf(stderr, "flowgen: ports started, waiting for their links\n");
    // Traffic starts once the gateway is there: both links up (memif: its peer connected).
    const uint64_t hz = rte_get_tsc_hz();
    for (uint64_t until = rte_rdtsc() + 60 * hz; !stopping;) {
        rte_eth_link l0{}, l1{};
        rte_eth_link_get_nowait(0, &l0);
        rte_eth_link_get_nowait(1, &l1);
        if (l0.link_status == RTE_ETH_LINK_UP && l1.link_status == RTE_ETH_LINK_UP) break;
        if (rte_rdtsc() > until) {
            std::fprintf(stderr, "flowgen: links not up after 60 s\n");
            return 1;
        }
        rte_delay_ms(10);
    }
    static const request_template request = make_template(o);
    const uint64_t start = rte_rdtsc();
    // The measured window: counters when request `measure_after` left, and when the last did.
    struct mark {
        uint64_t tsc = 0, sent = 0, at_tasks = 0, back = 0; // back: replies and others
    } from, to;
    uint64_t sent = 0, refused = 0, at_tasks = 0, replies = 0, reply_refused = 0, other = 0;
    uint64_t flood_sent = 0, flood_at_tasks = 0, flood_rng = 0x9e3779b97f4a7c15ull;
    uint64_t last_rx = start, done_at = 0;
    latency rtt;
    uint64_t turn = 0, polls = 0, next_of_queue[16] = {};
    constexpr uint16_t burst = 32;
    rte_mbuf *rx[burst];
    rte_mbuf *by_queue[16][burst];
    while (!stopping) {
        const uint64_t now = rte_rdtsc();
        // Requests due by now at RATE, a burst at a time.
        const uint64_t due =
            o.rate == 0 ? o.count : std::min<uint64_t>(o.count, (now - start) * o.rate / hz + 1);
        if (sent + refused < due) {
            // A burst from each queue in turn; queue Q sends flows Q, Q + queues, ... so that
            // each flow always reaches the same gateway worker, as RSS would do.
            rte_mbuf *tx[burst];
            const uint16_t q = static_cast<uint16_t>(turn++ % o.queues);
            const uint16_t n =
                static_cast<uint16_t>(std::min<uint64_t>(burst, due - sent - refused));
            if (rte_pktmbuf_alloc_bulk(pool, tx, n) == 0) {
                const uint64_t flows_of_q = (o.flows - q + o.queues - 1) / o.queues;
                for (uint16_t i = 0; i < n; ++i, ++next_of_queue[q])
                    build_request(
                        tx[i], request, o,
                        static_cast<uint32_t>(q + o.queues * (next_of_queue[q] % flows_of_q)),
                        sent + refused + i);
                const uint16_t ok = rte_eth_tx_burst(0, q, tx, n);
                sent += ok;
                if (o.rate != 0)
                    refused += n - ok; // a full ring: counted, not sent, and not retried
                else
                    next_of_queue[q] -= n - ok; // as fast as the ring takes: those go again
                rte_pktmbuf_free_bulk(tx + ok, n - ok);
                if (from.tsc == 0 && sent + refused >= o.measure_after)
                    from = {now, sent, at_tasks, replies + other};
            }
        }
        // Hostile traffic in the gaps, while the requests last.
        const uint64_t flood_due =
            o.flood_rate == 0 ? UINT64_MAX : (now - start) * o.flood_rate / hz + 1;
        if (!o.flood.empty() && done_at == 0 && flood_sent < flood_due) {
            rte_mbuf *tx[burst];
            const uint16_t n =
                static_cast<uint16_t>(std::min<uint64_t>(burst, flood_due - flood_sent));
            if (rte_pktmbuf_alloc_bulk(pool, tx, n) == 0) {
                uint16_t port = 0;
                for (uint16_t i = 0; i < n; ++i)
                    port = build_flood(tx[i], o, flood_rng);
                const uint16_t q = static_cast<uint16_t>(turn % o.queues);
                const uint16_t ok = rte_eth_tx_burst(port, q, tx, n);
                flood_sent += ok;
                rte_pktmbuf_free_bulk(tx + ok, n - ok);
            }
        }
        // The nodes' side: packets to tasks, and their replies on the queue of their outer
        // UDP source port. While it stalls, the gateway's TX ring toward it fills up.
        const uint16_t rq = static_cast<uint16_t>(polls++ % o.queues);
        const double at = double(now - start) / double(hz);
        const bool stalled = o.stall_at >= 0 && at >= o.stall_at && at < o.stall_at + o.stall_for;
        uint16_t n = stalled ? 0 : rte_eth_rx_burst(1, rq, rx, burst);
        if (n != 0) last_rx = now;
        uint16_t answers[16] = {};
        for (uint16_t i = 0; i < n; ++i) {
            if (!o.flood.empty() && !is_request(rx[i], o)) {
                ++flood_at_tasks; // never answered
                rte_pktmbuf_free(rx[i]);
                continue;
            }
            ++at_tasks;
            if (!o.reply) {
                rte_pktmbuf_free(rx[i]);
                continue;
            }
            // Not a tunnel packet (a plain forwarder in between, testpmd io): sent back as it
            // is, so that the ceiling run does the same work both ways.
            if (!turn_into_reply(rx[i], o)) {
                auto *eth = rte_pktmbuf_mtod(rx[i], rte_ether_hdr *);
                std::swap(eth->src_addr, eth->dst_addr);
            }
            const auto *udp = rte_pktmbuf_mtod_offset(rx[i], const rte_udp_hdr *,
                                                      sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr));
            const auto aq = static_cast<uint16_t>(rte_be_to_cpu_16(udp->src_port) % o.queues);
            by_queue[aq][answers[aq]++] = rx[i];
        }
        for (uint16_t aq = 0; aq < o.queues; ++aq) {
            const uint16_t ok = rte_eth_tx_burst(1, aq, by_queue[aq], answers[aq]);
            reply_refused += answers[aq] - ok;
            rte_pktmbuf_free_bulk(by_queue[aq] + ok, answers[aq] - ok);
        }
        // The clients' side: the replies meshgate translated back.
        n = rte_eth_rx_burst(0, rq, rx, burst);
        if (n != 0) last_rx = now;
        for (uint16_t i = 0; i < n; ++i) {
            auto *eth = rte_pktmbuf_mtod(rx[i], rte_ether_hdr *);
            auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
            if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
                ip->next_proto_id == IPPROTO_UDP &&
                ip->src_addr == rte_cpu_to_be_32(o.published_ip)) {
                ++replies;
                stamp st;
                if (rte_pktmbuf_data_len(rx[i]) >= sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) +
                                                       sizeof(rte_udp_hdr) + sizeof(st)) {
                    std::memcpy(&st, reinterpret_cast<uint8_t *>(ip + 1) + sizeof(rte_udp_hdr),
                                sizeof(st));
                    rtt.add(double(now - st.tsc) * 1e6 / double(hz));
                }
            } else {
                ++other;
            }
        }
        rte_pktmbuf_free_bulk(rx, n);
        if (sent + refused == o.count && done_at == 0) {
            done_at = now;
            to = {now, sent, at_tasks, replies + other};
        }
        if (done_at != 0 && now - last_rx > static_cast<uint64_t>(o.linger * double(hz)) &&
            now - done_at > static_cast<uint64_t>(o.linger * double(hz)))
            break;
    }
    const double seconds = double(rte_rdtsc() - start) / double(hz);
    const double window = double(to.tsc - from.tsc) / double(hz);
    auto mpps = [&](uint64_t n) { return window > 0 ? double(n) / window / 1e6 : 0.0; };
    std::printf("{\"sent\": %" PRIu64 ", \"refused\": %" PRIu64 ", \"at_tasks\": %" PRIu64
                ", \"replies\": %" PRIu64 ", \"reply_refused\": %" PRIu64 ", \"other\": %" PRIu64
                ", \"seconds\": %.3f, \"rtt_us_p50\": %.0f, \"rtt_us_p99\": %.0f, "
                "\"rtt_us_max\": %.1f, \"window_s\": %.3f, \"sent_mpps\": %.3f, "
                "\"at_tasks_mpps\": %.3f, \"back_mpps\": %.3f, \"flood_sent\": %" PRIu64
                ", \"flood_at_tasks\": %" PRIu64 "}\n",
                sent, refused, at_tasks, replies, reply_refused, other, seconds, rtt.quantile(0.5),
                rtt.quantile(0.99), rtt.worst_us, window, mpps(to.sent - from.sent),
                mpps(to.at_tasks - from.at_tasks), mpps(to.back - from.back), flood_sent,
                flood_at_tasks);
    std::fflush(stdout);
    // The gateway's memif PMD crashes if its peer unmaps the shared memory while its worker
    // polls: keep the ports until it has gone (both links down) or we are told to stop.
    while (!stopping) {
        rte_eth_link l0{}, l1{};
        rte_eth_link_get_nowait(0, &l0);
        rte_eth_link_get_nowait(1, &l1);
        if (l0.link_status == RTE_ETH_LINK_DOWN && l1.link_status == RTE_ETH_LINK_DOWN) break;
        for (uint16_t port = 0; port < 2; ++port)
            for (uint16_t q = 0; q < o.queues; ++q) {
                const uint16_t n = rte_eth_rx_burst(port, q, rx, burst);
                rte_pktmbuf_free_bulk(rx, n);
            }
        rte_delay_ms(1);
    }
    for (uint16_t port = 0; port < 2; ++port) {
        rte_eth_dev_stop(port);
        rte_eth_dev_close(port);
    }
    rte_eal_cleanup();
    return 0;
}
