// VXLAN (RFC 7348) toward the swarm nodes: encapsulation from a per-node prebuilt outer header,
// and validation + stripping of what the nodes send back. Addresses and ports in network order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <netinet/in.h>
#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_vxlan.h>

#include "dataplane/checksum.h"
#include "dataplane/ipv4.h"

namespace meshgate::dataplane
{

// Outer Ethernet + IPv4 + UDP + VXLAN: what encapsulation adds to every frame.
inline constexpr uint16_t vxlan_outer_len =
    sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) + sizeof(rte_vxlan_hdr);
static_assert(vxlan_outer_len == 50);

inline constexpr uint16_t vxlan_default_udp_port = 4789; // IANA; Docker's default too
inline constexpr uint32_t vxlan_flag_i = 0x08000000;     // "VNI valid", the first byte's 0x08

// Field offsets inside the outer header, for the per-packet patches.
namespace vxlan_offset
{
inline constexpr size_t ip = sizeof(rte_ether_hdr);
inline constexpr size_t udp = ip + sizeof(rte_ipv4_hdr);
inline constexpr size_t vxlan = udp + sizeof(rte_udp_hdr);
} // namespace vxlan_offset

// One node's tunnel as the control thread configures it.
struct vxlan_tunnel_config {
    rte_ether_addr port_mac{};     // the underlay port's MAC: outer source
    rte_ether_addr next_hop_mac{}; // the node's MAC, or the underlay gateway's when it is off-link
    rte_be32_t underlay_addr = 0;  // the gateway's data-path address: outer source
    rte_be32_t vtep_addr = 0;      // the node's VXLAN tunnel endpoint: outer destination
    uint32_t vni = 4096;           // host order, 24 bits; Swarm's ingress network is usually 4096
    rte_be16_t udp_port = RTE_BE16(vxlan_default_udp_port);
};

// One node's outer headers, prebuilt on the control side: a worker copies the 50 bytes and
// patches the two lengths, the IPv4 checksum and the UDP source port. One cache line.
struct alignas(RTE_CACHE_LINE_SIZE) vxlan_tunnel {
    uint8_t outer[vxlan_outer_len]{}; // IPv4 total length, UDP length and source port left 0
};

inline vxlan_tunnel vxlan_tunnel_build(const vxlan_tunnel_config &c)
{
    vxlan_tunnel t;
    auto *eth = reinterpret_cast<rte_ether_hdr *>(t.outer);
    eth->src_addr = c.port_mac;
    eth->dst_addr = c.next_hop_mac;
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);

    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(t.outer + vxlan_offset::ip);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length = 0; // patched per packet, checksum with it
    ip->packet_id = 0;    // DF set: never fragmented, so the id is not needed (RFC 6864)
    ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = c.underlay_addr;
    ip->dst_addr = c.vtep_addr;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = ipv4_header_checksum(ip);

    auto *udp = reinterpret_cast<rte_udp_hdr *>(t.outer + vxlan_offset::udp);
    udp->src_port = 0;
    udp->dst_port = c.udp_port;
    udp->dgram_len = 0;
    udp->dgram_cksum = 0; // RFC 7348 5: zero is allowed over IPv4, and the inner frame has its own

    auto *vx = reinterpret_cast<rte_vxlan_hdr *>(t.outer + vxlan_offset::vxlan);
    vx->vx_flags = rte_cpu_to_be_32(vxlan_flag_i);
    vx->vx_vni = rte_cpu_to_be_32((c.vni & 0xffffff) << 8);
    return t;
}

// Writes the inner frame's Ethernet header: from the gateway's overlay MAC to the task's, as the
// node's bridge expects after its FDB lookup.
inline void vxlan_inner_ether_write(rte_ether_hdr *eth, const rte_ether_addr &gateway_mac,
                                    const rte_ether_addr &task_mac)
{
    eth->dst_addr = task_mac;
    eth->src_addr = gateway_mac;
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
}

// The inner flow's hash for the outer UDP source port, so that node NICs (RSS) and ECMP spread
// tunnelled flows: addresses, protocol, and ports unless a fragment. FRAME starts at the inner
// Ethernet header; LEN bytes of it are contiguous.
inline uint32_t vxlan_inner_flow_hash(const uint8_t *frame, uint32_t len)
{
    uint64_t key = 0;
    if (likely(len >= sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr))) {
        const auto *ip = reinterpret_cast<const rte_ipv4_hdr *>(frame + sizeof(rte_ether_hdr));
        uint32_t hlen = rte_ipv4_hdr_len(ip);
        key = (uint64_t{ip->src_addr} << 32 | ip->dst_addr) ^ ip->next_proto_id;
        bool has_ports = (ip->next_proto_id == IPPROTO_TCP || ip->next_proto_id == IPPROTO_UDP) &&
                         (ip->fragment_offset &
                          RTE_BE16(RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG)) == 0 &&
                         len >= sizeof(rte_ether_hdr) + hlen + 4;
        if (has_ports) {
            uint32_t ports;
            std::memcpy(&ports, frame + sizeof(rte_ether_hdr) + hlen, sizeof(ports));
            key ^= uint64_t{ports} << 16;
        }
    }
    // Murmur3's 64-bit finalizer: every input bit reaches the top 14 bits the port is made of.
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    key *= 0xc4ceb9fe1a85ec53ULL;
    key ^= key >> 33;
    return static_cast<uint32_t>(key);
}

// The outer UDP source port for a flow hash: the top bits mapped into 49152..65535 (RFC 7348 5).
inline constexpr uint16_t vxlan_source_port(uint32_t flow_hash)
{
    return static_cast<uint16_t>(0xc000 | flow_hash >> 18);
}

// Prepends T's outer headers to M, whose data starts at the inner Ethernet header (already
// written); FLOW_HASH picks the outer source port. Returns false, M untouched, when M lacks
// headroom or the result would exceed an IPv4 packet.
inline bool vxlan_encap(rte_mbuf *m, const vxlan_tunnel &t, uint32_t flow_hash)
{
    uint32_t inner_len = rte_pktmbuf_pkt_len(m);
    if (unlikely(inner_len > UINT16_MAX - (vxlan_outer_len - sizeof(rte_ether_hdr)))) return false;
    auto *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_prepend(m, vxlan_outer_len));
    if (unlikely(p == nullptr)) return false;
    std::memcpy(p, t.outer, vxlan_outer_len);

    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(p + vxlan_offset::ip);
    rte_be16_t total_length = rte_cpu_to_be_16(
        static_cast<uint16_t>(inner_len + vxlan_outer_len - sizeof(rte_ether_hdr)));
    ip->total_length = total_length;
    ip->hdr_checksum = csum_update16(ip->hdr_checksum, 0, total_length);

    auto *udp = reinterpret_cast<rte_udp_hdr *>(p + vxlan_offset::udp);
    udp->src_port = rte_cpu_to_be_16(vxlan_source_port(flow_hash));
    udp->dgram_len = rte_cpu_to_be_16(
        static_cast<uint16_t>(inner_len + sizeof(rte_udp_hdr) + sizeof(rte_vxlan_hdr)));
    return true;
}

// As above, hashing the inner frame itself; callers that already hold the flow's hash (the
// connection lookup's) should pass it instead.
inline bool vxlan_encap(rte_mbuf *m, const vxlan_tunnel &t)
{
    uint32_t hash =
        vxlan_inner_flow_hash(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m));
    return vxlan_encap(m, t, hash);
}

enum class vxlan_status : uint8_t {
    ok,
    truncated,   // headers cut short or lengths that do not add up: drop as malformed
    fragment,    // an outer IPv4 fragment: VXLAN endpoints never fragment (DF), drop
    not_vxlan,   // not UDP to the VXLAN port, or the I flag is clear: not a tunnel packet for us
    unknown_vni, // a VXLAN packet for another network: drop as unknown_vni
};

struct vxlan_decap_info {
    vxlan_status status = vxlan_status::truncated;
    uint32_t vni = 0;          // host order, valid from unknown_vni on
    uint16_t inner_offset = 0; // the inner Ethernet header, from the start of the mbuf data
    uint16_t inner_len = 0;    // the inner frame's length, from the UDP length
};

// Validates a received VXLAN packet whose outer IPv4 header starts L3_OFFSET bytes into M's data
// (outer headers in the first segment). UDP_PORT and VNI are the overlay's. The outer UDP
// checksum is not verified (RFC 7348 5: MAY; the inner frame carries its own).
inline vxlan_decap_info vxlan_decap_parse(const rte_mbuf *m, uint16_t l3_offset,
                                          rte_be16_t udp_port, uint32_t vni)
{
    vxlan_decap_info r;
    const uint32_t seg_len = rte_pktmbuf_data_len(m);
    const uint32_t pkt_len = rte_pktmbuf_pkt_len(m);
    if (unlikely(seg_len < uint32_t{l3_offset} + sizeof(rte_ipv4_hdr))) return r;
    const auto *ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr *, l3_offset);
    const uint32_t ip_hlen = rte_ipv4_hdr_len(ip);
    const uint32_t ip_len = rte_be_to_cpu_16(ip->total_length);
    if (unlikely((ip->version_ihl >> 4) != 4 || ip_hlen < sizeof(rte_ipv4_hdr) ||
                 ip_len < ip_hlen || l3_offset + ip_len > pkt_len))
        return r;
    if (ip->next_proto_id != IPPROTO_UDP) {
        r.status = vxlan_status::not_vxlan;
        return r;
    }
    if (unlikely((ip->fragment_offset &
                  RTE_BE16(RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG)) != 0)) {
        r.status = vxlan_status::fragment;
        return r;
    }
    const uint32_t udp_at = l3_offset + ip_hlen;
    if (unlikely(seg_len < udp_at + sizeof(rte_udp_hdr) || ip_len < ip_hlen + sizeof(rte_udp_hdr)))
        return r;
    const auto *udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr *, udp_at);
    if (udp->dst_port != udp_port) {
        r.status = vxlan_status::not_vxlan;
        return r;
    }
    const uint32_t udp_len = rte_be_to_cpu_16(udp->dgram_len);
    const uint32_t inner_at = udp_at + sizeof(rte_udp_hdr) + sizeof(rte_vxlan_hdr);
    if (unlikely(udp_len < sizeof(rte_udp_hdr) + sizeof(rte_vxlan_hdr) + sizeof(rte_ether_hdr) ||
                 udp_len > ip_len - ip_hlen || seg_len < inner_at))
        return r;
    const auto *vx =
        rte_pktmbuf_mtod_offset(m, const rte_vxlan_hdr *, udp_at + sizeof(rte_udp_hdr));
    r.vni = rte_be_to_cpu_32(vx->vx_vni) >> 8;
    r.inner_offset = static_cast<uint16_t>(inner_at);
    r.inner_len = static_cast<uint16_t>(udp_len - sizeof(rte_udp_hdr) - sizeof(rte_vxlan_hdr));
    // Reserved bits are ignored on receipt (RFC 7348 5); only I must be set.
    if (unlikely((vx->vx_flags & RTE_BE32(vxlan_flag_i)) == 0))
        r.status = vxlan_status::not_vxlan;
    else if (unlikely(r.vni != vni))
        r.status = vxlan_status::unknown_vni;
    else
        r.status = vxlan_status::ok;
    return r;
}

// Strips what vxlan_decap_parse accepted: outer headers in front, Ethernet padding behind.
// M's data then starts at the inner Ethernet header.
inline void vxlan_decap(rte_mbuf *m, const vxlan_decap_info &info)
{
    rte_pktmbuf_adj(m, info.inner_offset);
    uint32_t excess = rte_pktmbuf_pkt_len(m) - info.inner_len;
    if (unlikely(excess != 0)) rte_pktmbuf_trim(m, static_cast<uint16_t>(excess));
}

} // namespace meshgate::dataplane
