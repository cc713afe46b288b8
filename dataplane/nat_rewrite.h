// Full-NAT rewrite of IPv4 TCP/UDP packets in place, TTL decrement, and the ICMP errors that go
// with forwarding: translating an error about a NATed flow, and building one from scratch.
// Every address and port is in network byte order, as in the packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <netinet/in.h>
#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/checksum.h"
#include "dataplane/ipv4.h"

namespace meshgate::dataplane
{

// Where a NATed packet goes: client -> task becomes overlay address:snat_port -> task:target,
// and a reply task -> overlay:snat_port becomes published address:port -> client.
struct nat_endpoints {
    rte_be32_t src_addr = 0;
    rte_be32_t dst_addr = 0;
    rte_be16_t src_port = 0;
    rte_be16_t dst_port = 0;
};

namespace detail
{

// TTL and protocol share one 16-bit word of the IPv4 header: the checksum sees them together.
// Read and written whole, so a byte store is never followed by a wider load (a store-forwarding
// stall of ~12 cycles).
inline rte_be16_t ttl_proto_word(const rte_ipv4_hdr *ip)
{
    rte_be16_t word;
    std::memcpy(&word, reinterpret_cast<const uint8_t *>(ip) + offsetof(rte_ipv4_hdr, time_to_live),
                sizeof(word));
    return word;
}

inline void set_ttl_proto_word(rte_ipv4_hdr *ip, rte_be16_t word)
{
    std::memcpy(reinterpret_cast<uint8_t *>(ip) + offsetof(rte_ipv4_hdr, time_to_live), &word,
                sizeof(word));
}

// The word with the TTL (its high byte) one less; the caller has checked TTL > 1.
inline rte_be16_t ttl_decremented(rte_be16_t word)
{
    return rte_cpu_to_be_16(static_cast<uint16_t>(rte_be_to_cpu_16(word) - 0x0100));
}

// Source and destination ports are adjacent in TCP and UDP: one 32-bit word covers both.
inline rte_be32_t ports_word(const void *l4)
{
    rte_be32_t word;
    std::memcpy(&word, l4, sizeof(word));
    return word;
}

inline rte_be32_t ports_word(rte_be16_t src_port, rte_be16_t dst_port)
{
    rte_be32_t word;
    rte_be16_t ports[2] = {src_port, dst_port};
    std::memcpy(&word, ports, sizeof(word));
    return word;
}

// Rewrites addresses and ports; IP_EXTRA carries other IPv4 header changes (the TTL) so the
// header checksum is touched once.
template <uint8_t Proto>
inline void nat_apply(rte_ipv4_hdr *ip, void *l4, const nat_endpoints &to,
                      const csum_delta &ip_extra)
{
    static_assert(Proto == IPPROTO_TCP || Proto == IPPROTO_UDP);
    csum_delta addrs;
    addrs.replace32(ip->src_addr, to.src_addr);
    addrs.replace32(ip->dst_addr, to.dst_addr);
    csum_delta ip_delta = addrs;
    ip_delta.add(ip_extra);
    ip->src_addr = to.src_addr;
    ip->dst_addr = to.dst_addr;
    ip->hdr_checksum = csum_apply(ip->hdr_checksum, ip_delta);

    // The L4 checksum covers the pseudo-header (both addresses) and the ports.
    rte_be32_t new_ports = ports_word(to.src_port, to.dst_port);
    csum_delta l4_delta = addrs;
    l4_delta.replace32(ports_word(l4), new_ports);
    std::memcpy(l4, &new_ports, sizeof(new_ports));
    if constexpr (Proto == IPPROTO_TCP) {
        auto *tcp = static_cast<rte_tcp_hdr *>(l4);
        tcp->cksum = csum_apply(tcp->cksum, l4_delta);
    } else {
        auto *udp = static_cast<rte_udp_hdr *>(l4);
        udp->dgram_cksum = udp_csum_apply(udp->dgram_cksum, l4_delta);
    }
}

} // namespace detail

// Full NAT of one TCP (Proto = IPPROTO_TCP) or UDP packet; L4 points at its TCP/UDP header.
// The caller has checked that the packet is not a fragment and that the header is present.
template <uint8_t Proto>
inline void nat_rewrite(rte_ipv4_hdr *ip, void *l4, const nat_endpoints &to)
{
    detail::nat_apply<Proto>(ip, l4, to, csum_delta{});
}

inline void nat_rewrite_tcp(rte_ipv4_hdr *ip, rte_tcp_hdr *tcp, const nat_endpoints &to)
{
    nat_rewrite<IPPROTO_TCP>(ip, tcp, to);
}

inline void nat_rewrite_udp(rte_ipv4_hdr *ip, rte_udp_hdr *udp, const nat_endpoints &to)
{
    nat_rewrite<IPPROTO_UDP>(ip, udp, to);
}

// Decrements the TTL of a packet being forwarded. Returns false, leaving the packet as received,
// when the TTL would reach 0: the caller drops it (ttl_exceeded) and may send time exceeded.
inline bool ipv4_decrement_ttl(rte_ipv4_hdr *ip)
{
    if (unlikely(ip->time_to_live <= 1)) return false;
    rte_be16_t old_word = detail::ttl_proto_word(ip);
    rte_be16_t new_word = detail::ttl_decremented(old_word);
    detail::set_ttl_proto_word(ip, new_word);
    ip->hdr_checksum = csum_update16(ip->hdr_checksum, old_word, new_word);
    return true;
}

// The forwarding path in one step: TTL decrement and full NAT with a single IPv4 checksum update.
// Returns false, leaving the packet as received, when the TTL expires.
template <uint8_t Proto>
inline bool nat_forward(rte_ipv4_hdr *ip, void *l4, const nat_endpoints &to)
{
    if (unlikely(ip->time_to_live <= 1)) return false;
    rte_be16_t old_word = detail::ttl_proto_word(ip);
    rte_be16_t new_word = detail::ttl_decremented(old_word);
    detail::set_ttl_proto_word(ip, new_word);
    csum_delta ttl;
    ttl.replace16(old_word, new_word);
    detail::nat_apply<Proto>(ip, l4, to, ttl);
    return true;
}

// ICMP types and codes of the error messages the gateway translates or sends (RFC 792, 1191).
inline constexpr uint8_t icmp_type_dest_unreachable = 3;
inline constexpr uint8_t icmp_type_time_exceeded = 11;
inline constexpr uint8_t icmp_type_parameter_problem = 12;
inline constexpr uint8_t icmp_code_ttl_exceeded = 0;
inline constexpr uint8_t icmp_code_frag_needed = 4;

// Bytes of the offending datagram's payload that an ICMP error quotes (RFC 792: 64 bits).
inline constexpr uint32_t icmp_quote_payload_len = 8;
inline constexpr uint32_t icmp_header_len = sizeof(rte_icmp_hdr);

inline constexpr bool icmp_is_error(uint8_t type)
{
    return type == icmp_type_dest_unreachable || type == icmp_type_time_exceeded ||
           type == icmp_type_parameter_problem;
}

// An ICMP error about a TCP or UDP packet, located inside a received packet.
struct icmp_error_view {
    rte_icmp_hdr *icmp = nullptr;  // nullptr: not an ICMP error about TCP/UDP, or truncated
    rte_ipv4_hdr *inner = nullptr; // the quoted IPv4 header of the packet that caused it
    uint8_t *inner_l4 = nullptr;   // the quoted TCP/UDP header: at least its first 8 bytes
    uint32_t inner_l4_len = 0;     // quoted TCP/UDP bytes present in the buffer
    uint8_t inner_proto = 0;       // IPPROTO_TCP or IPPROTO_UDP

    explicit operator bool() const { return icmp != nullptr; }
};

// Finds the quoted flow in the ICMP error at OUTER; L3_LEN is how many bytes of the packet, from
// the outer IPv4 header on, are in the buffer. The quoted ports let the caller find the connection.
inline icmp_error_view icmp_error_parse(rte_ipv4_hdr *outer, uint32_t l3_len)
{
    icmp_error_view v;
    if (unlikely(l3_len < sizeof(rte_ipv4_hdr))) return v;
    uint32_t outer_hlen = rte_ipv4_hdr_len(outer);
    uint32_t len = rte_be_to_cpu_16(outer->total_length);
    len = len < l3_len ? len : l3_len; // Ethernet padding is not part of the message
    bool first_fragment = (outer->fragment_offset & RTE_BE16(RTE_IPV4_HDR_OFFSET_MASK)) == 0;
    if (outer->next_proto_id != IPPROTO_ICMP || !first_fragment || outer_hlen < 20 ||
        len < outer_hlen + icmp_header_len + sizeof(rte_ipv4_hdr) + icmp_quote_payload_len)
        return v;
    auto *icmp = reinterpret_cast<rte_icmp_hdr *>(reinterpret_cast<uint8_t *>(outer) + outer_hlen);
    if (!icmp_is_error(icmp->icmp_type)) return v;
    auto *inner =
        reinterpret_cast<rte_ipv4_hdr *>(reinterpret_cast<uint8_t *>(icmp) + icmp_header_len);
    uint32_t inner_hlen = rte_ipv4_hdr_len(inner);
    uint32_t inner_at = outer_hlen + icmp_header_len;
    if ((inner->version_ihl >> 4) != 4 || inner_hlen < 20 ||
        len < inner_at + inner_hlen + icmp_quote_payload_len ||
        (inner->next_proto_id != IPPROTO_TCP && inner->next_proto_id != IPPROTO_UDP))
        return v;
    v.icmp = icmp;
    v.inner = inner;
    v.inner_l4 = reinterpret_cast<uint8_t *>(inner) + inner_hlen;
    v.inner_l4_len = len - inner_at - inner_hlen;
    v.inner_proto = inner->next_proto_id;
    return v;
}

// What an ICMP error about a NATed flow becomes on its way to the flow's other end.
struct icmp_error_nat {
    rte_be32_t outer_src_addr = 0; // the gateway's address on the side the error leaves by
    rte_be32_t outer_dst_addr = 0; // the other end of the flow
    nat_endpoints inner;           // the quoted packet as that end sent it
};

// Rewrites an ICMP error (found by icmp_error_parse) in place: the outer addresses, the quoted
// addresses and ports, the quoted IPv4 checksum (recomputed: it is short, and this also repairs
// it), the quoted TCP/UDP checksum when quoted, and the ICMP and outer IPv4 checksums
// incrementally.
inline void icmp_error_translate(rte_ipv4_hdr *outer, const icmp_error_view &v,
                                 const icmp_error_nat &to)
{
    csum_delta outer_delta;
    outer_delta.replace32(outer->src_addr, to.outer_src_addr);
    outer_delta.replace32(outer->dst_addr, to.outer_dst_addr);
    outer->src_addr = to.outer_src_addr;
    outer->dst_addr = to.outer_dst_addr;
    outer->hdr_checksum = csum_apply(outer->hdr_checksum, outer_delta);

    // ICMP has no pseudo-header: only the quoted bytes move its checksum.
    rte_ipv4_hdr *inner = v.inner;
    csum_delta addrs;
    addrs.replace32(inner->src_addr, to.inner.src_addr);
    addrs.replace32(inner->dst_addr, to.inner.dst_addr);
    inner->src_addr = to.inner.src_addr;
    inner->dst_addr = to.inner.dst_addr;

    rte_be32_t new_ports = detail::ports_word(to.inner.src_port, to.inner.dst_port);
    csum_delta ports;
    ports.replace32(detail::ports_word(v.inner_l4), new_ports);
    std::memcpy(v.inner_l4, &new_ports, sizeof(new_ports));

    csum_delta icmp_delta = addrs;
    icmp_delta.add(ports);

    rte_be16_t old_ip_check = inner->hdr_checksum;
    inner->hdr_checksum = 0;
    inner->hdr_checksum = ipv4_header_checksum(inner);
    icmp_delta.replace16(old_ip_check, inner->hdr_checksum);

    // The quoted L4 checksum is what the sender would have computed after NAT.
    csum_delta l4_delta = addrs;
    l4_delta.add(ports);
    if (v.inner_proto == IPPROTO_UDP) {
        auto *udp = reinterpret_cast<rte_udp_hdr *>(v.inner_l4);
        rte_be16_t old_check = udp->dgram_cksum;
        udp->dgram_cksum = udp_csum_apply(old_check, l4_delta);
        icmp_delta.replace16(old_check, udp->dgram_cksum);
    } else if (v.inner_l4_len >= offsetof(rte_tcp_hdr, cksum) + sizeof(rte_be16_t)) {
        auto *tcp = reinterpret_cast<rte_tcp_hdr *>(v.inner_l4);
        rte_be16_t old_check = tcp->cksum;
        tcp->cksum = csum_apply(old_check, l4_delta);
        icmp_delta.replace16(old_check, tcp->cksum);
    }
    v.icmp->icmp_cksum = csum_apply(v.icmp->icmp_cksum, icmp_delta);
}

// May the gateway send an ICMP error about this packet (RFC 1812 4.3.2.7)? Not about an ICMP
// error, a non-first fragment, or a packet from an address that cannot take a reply.
inline bool icmp_error_allowed(const rte_ipv4_hdr *offender, uint32_t l3_len)
{
    if (l3_len < sizeof(rte_ipv4_hdr)) return false;
    uint32_t hlen = rte_ipv4_hdr_len(offender);
    uint32_t src = rte_be_to_cpu_32(offender->src_addr);
    bool first_fragment = (offender->fragment_offset & RTE_BE16(RTE_IPV4_HDR_OFFSET_MASK)) == 0;
    // 0.0.0.0, loopback, multicast and class E (255.255.255.255 included)
    bool bad_source = src == 0 || (src >> 24) == 127 || (src >> 28) >= 0xe;
    if (!first_fragment || bad_source || hlen < 20) return false;
    if (offender->next_proto_id == IPPROTO_ICMP) {
        if (l3_len < hlen + 1) return false;
        uint8_t type = reinterpret_cast<const uint8_t *>(offender)[hlen];
        return !icmp_is_error(type);
    }
    return true;
}

// Builds an ICMP error about OFFENDER (L3_LEN bytes of it in the buffer) into OUT, starting at
// the IPv4 header: IPv4 (from SRC_ADDR to the offender's source, TTL 64) + ICMP + the offender's
// IPv4 header + the first 8 bytes of its payload. REST is the ICMP header's second word.
// Returns the IPv4 packet length, or 0 when OUT_CAP is too small or the offender is malformed.
inline uint16_t icmp_error_build(uint8_t *out, uint32_t out_cap, const rte_ipv4_hdr *offender,
                                 uint32_t l3_len, rte_be32_t src_addr, uint8_t type, uint8_t code,
                                 rte_be32_t rest)
{
    if (unlikely(l3_len < sizeof(rte_ipv4_hdr))) return 0;
    uint32_t hlen = rte_ipv4_hdr_len(offender);
    uint32_t avail = rte_be_to_cpu_16(offender->total_length);
    avail = avail < l3_len ? avail : l3_len;
    if (unlikely(hlen < 20 || avail < hlen)) return 0;
    uint32_t payload = avail - hlen;
    uint32_t quote = hlen + (payload < icmp_quote_payload_len ? payload : icmp_quote_payload_len);
    uint32_t total = sizeof(rte_ipv4_hdr) + icmp_header_len + quote;
    if (unlikely(total > out_cap)) return 0;

    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(out);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0xc0; // precedence 6, internetwork control (RFC 1812 4.3.2.5)
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(total));
    ip->packet_id = 0;
    ip->fragment_offset = 0;
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_ICMP;
    ip->hdr_checksum = 0;
    ip->src_addr = src_addr;
    ip->dst_addr = offender->src_addr;
    ip->hdr_checksum = ipv4_header_checksum(ip);

    auto *icmp = reinterpret_cast<rte_icmp_hdr *>(out + sizeof(rte_ipv4_hdr));
    icmp->icmp_type = type;
    icmp->icmp_code = code;
    icmp->icmp_cksum = 0;
    std::memcpy(&icmp->icmp_ident, &rest, sizeof(rest));
    std::memcpy(out + sizeof(rte_ipv4_hdr) + icmp_header_len, offender, quote);
    icmp->icmp_cksum = static_cast<rte_be16_t>(~csum_raw(icmp, icmp_header_len + quote));
    return static_cast<uint16_t>(total);
}

// Time exceeded in transit (type 11 code 0), sent when ipv4_decrement_ttl refuses.
inline uint16_t icmp_time_exceeded_build(uint8_t *out, uint32_t out_cap,
                                         const rte_ipv4_hdr *offender, uint32_t l3_len,
                                         rte_be32_t src_addr)
{
    return icmp_error_build(out, out_cap, offender, l3_len, src_addr, icmp_type_time_exceeded,
                            icmp_code_ttl_exceeded, 0);
}

// Fragmentation needed and DF set (type 3 code 4) with the next-hop MTU in the low 16 bits of
// the second word (RFC 1191): path MTU discovery needs it when VXLAN's 50 bytes do not fit.
inline uint16_t icmp_frag_needed_build(uint8_t *out, uint32_t out_cap, const rte_ipv4_hdr *offender,
                                       uint32_t l3_len, rte_be32_t src_addr, uint16_t next_hop_mtu)
{
    return icmp_error_build(out, out_cap, offender, l3_len, src_addr, icmp_type_dest_unreachable,
                            icmp_code_frag_needed, rte_cpu_to_be_32(next_hop_mtu));
}

} // namespace meshgate::dataplane
