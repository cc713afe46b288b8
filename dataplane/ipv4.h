// IPv4 header checks every path of the gateway makes before it reads a packet's fields.
#pragma once

#include <cstring>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "dataplane/checksum.h"

namespace meshgate::dataplane
{

// The one's-complement sum of IP's header (not inverted): 0xFFFF when its checksum is right.
// A header without options, nearly every one, is five 32-bit words whose 64-bit sum cannot
// carry out: csum_raw()'s general loop spent 6-13 cycles a packet on the checks (pipeline_bench).
inline uint16_t ipv4_header_sum(const rte_ipv4_hdr *ip)
{
    const uint16_t header_len = rte_ipv4_hdr_len(ip);
    if (header_len != sizeof(rte_ipv4_hdr)) return csum_raw(ip, header_len);
    uint32_t words[5];
    std::memcpy(words, ip, sizeof words);
    return csum_fold64(uint64_t{words[0]} + words[1] + words[2] + words[3] + words[4]);
}

// M's data starts at an Ethernet header followed by IP. Validates the IPv4 header as RFC 1812
// asks of a router (version, lengths against the frame, checksum) and trims Ethernet padding.
inline bool valid_ipv4(rte_mbuf *m, const rte_ipv4_hdr *ip)
{
    uint32_t available = rte_pktmbuf_data_len(m) - sizeof(rte_ether_hdr);
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) ||
        (ip->version_ihl >> 4) != 4)
        return false;
    uint16_t header_len = rte_ipv4_hdr_len(ip);
    uint16_t total_len = rte_be_to_cpu_16(ip->total_length);
    if (header_len < sizeof(rte_ipv4_hdr) || header_len > available || total_len < header_len ||
        total_len > available)
        return false;
    if (ipv4_header_sum(ip) != 0xffff) return false;
    uint32_t frame_len = sizeof(rte_ether_hdr) + total_len;
    if (rte_pktmbuf_pkt_len(m) > frame_len)
        rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - frame_len));
    return true;
}

// IP's header checksum computed whole, its field 0: what rte_ipv4_cksum() gives.
inline rte_be16_t ipv4_header_checksum(const rte_ipv4_hdr *ip)
{
    return static_cast<rte_be16_t>(~ipv4_header_sum(ip));
}

// The TCP or UDP checksum of IP's payload, at L4 in one segment, computed whole (its field 0):
// what rte_ipv4_udptcp_cksum() gives, by csum_add()'s 64-bit words.
inline rte_be16_t ipv4_l4_checksum(const rte_ipv4_hdr *ip, const void *l4)
{
    const auto l4_len =
        static_cast<uint16_t>(rte_be_to_cpu_16(ip->total_length) - rte_ipv4_hdr_len(ip));
    const uint64_t pseudo_header = uint64_t{ip->src_addr} + ip->dst_addr +
                                   rte_cpu_to_be_16(uint16_t{ip->next_proto_id}) +
                                   rte_cpu_to_be_16(l4_len);
    const auto check = static_cast<rte_be16_t>(~csum_fold64(csum_add(pseudo_header, l4, l4_len)));
    return check == 0 ? static_cast<rte_be16_t>(0xffff) : check; // a UDP 0 says "none"
}

// Bytes of data in TCP segment TCP of packet IP, whose lengths were checked (parse_l4()).
inline uint32_t tcp_payload_length(const rte_ipv4_hdr *ip, const rte_tcp_hdr *tcp)
{
    return rte_be_to_cpu_16(ip->total_length) - rte_ipv4_hdr_len(ip) - (tcp->data_off >> 4) * 4u;
}

} // namespace meshgate::dataplane
