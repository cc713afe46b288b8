// IPv4 header checks every path of the gateway makes before it reads a packet's fields.
#pragma once

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "dataplane/checksum.h"

namespace meshgate::dataplane
{

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
    if (csum_ipv4_header(ip, header_len) != 0xffff) return false;
    uint32_t frame_len = sizeof(rte_ether_hdr) + total_len;
    if (rte_pktmbuf_pkt_len(m) > frame_len)
        rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - frame_len));
    return true;
}

// Bytes of data in TCP segment TCP of packet IP, whose lengths were checked (parse_l4()).
inline uint32_t tcp_payload_length(const rte_ipv4_hdr *ip, const rte_tcp_hdr *tcp)
{
    return rte_be_to_cpu_16(ip->total_length) - rte_ipv4_hdr_len(ip) - (tcp->data_off >> 4) * 4u;
}

} // namespace meshgate::dataplane
