#include "tests/support/frames.h"

#include <algorithm>
#include <cstring>

#include <netinet/in.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_vxlan.h>

namespace meshgate::test_support
{

namespace
{

void write_mac(rte_ether_addr &to, const mac_address &m)
{
    std::copy(m.bytes.begin(), m.bytes.end(), to.addr_bytes);
}

} // namespace

std::vector<uint8_t> tcp_frame(const client_segment &s)
{
    std::vector<uint8_t> f(60, 0);
    auto *eth = reinterpret_cast<rte_ether_hdr *>(f.data());
    write_mac(eth->dst_addr, s.to);
    write_mac(eth->src_addr, s.from);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(40);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_TCP;
    ip->src_addr = rte_cpu_to_be_32(s.client.value);
    ip->dst_addr = rte_cpu_to_be_32(s.published.value);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto *tcp = reinterpret_cast<rte_tcp_hdr *>(ip + 1);
    tcp->src_port = rte_cpu_to_be_16(s.client_port);
    tcp->dst_port = rte_cpu_to_be_16(s.published_port);
    tcp->sent_seq = rte_cpu_to_be_32(s.seq);
    tcp->recv_ack = rte_cpu_to_be_32(s.ack);
    tcp->data_off = 5 << 4;
    tcp->tcp_flags = s.flags;
    tcp->rx_win = rte_cpu_to_be_16(65535);
    tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
    return f;
}

std::vector<uint8_t> reply_frame(const task_reply &r, const dataplane::connection &c)
{
    constexpr size_t inner_len = 54, outer_len = 50;
    std::vector<uint8_t> f(outer_len + inner_len, 0);
    auto *eth = reinterpret_cast<rte_ether_hdr *>(f.data());
    write_mac(eth->dst_addr, r.port_mac);
    write_mac(eth->src_addr, r.node_mac);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(f.size() - sizeof(rte_ether_hdr)));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = rte_cpu_to_be_32(r.node_address.value);
    ip->dst_addr = rte_cpu_to_be_32(r.port_address.value);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto *udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    udp->src_port = rte_cpu_to_be_16(r.outer_sport);
    udp->dst_port = rte_cpu_to_be_16(4789);
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(f.size() - 34));
    auto *vx = reinterpret_cast<rte_vxlan_hdr *>(udp + 1);
    vx->vx_flags = rte_cpu_to_be_32(0x08000000);
    vx->vx_vni = rte_cpu_to_be_32(r.vni << 8);

    auto *ieth = reinterpret_cast<rte_ether_hdr *>(vx + 1);
    write_mac(ieth->dst_addr, r.overlay_mac);
    write_mac(ieth->src_addr, docker_mac_for(ipv4_address{rte_be_to_cpu_32(c.task_ip())}));
    ieth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto *iip = reinterpret_cast<rte_ipv4_hdr *>(ieth + 1);
    iip->version_ihl = RTE_IPV4_VHL_DEF;
    iip->total_length = rte_cpu_to_be_16(40);
    iip->time_to_live = 64;
    iip->next_proto_id = IPPROTO_TCP;
    iip->src_addr = c.task_ip();
    iip->dst_addr = c.snat_ip();
    iip->hdr_checksum = rte_ipv4_cksum(iip);
    auto *tcp = reinterpret_cast<rte_tcp_hdr *>(iip + 1);
    tcp->src_port = c.target_port();
    tcp->dst_port = c.snat_port();
    tcp->data_off = 5 << 4;
    tcp->tcp_flags = r.flags;
    tcp->rx_win = rte_cpu_to_be_16(65535);
    tcp->cksum = rte_ipv4_udptcp_cksum(iip, tcp);
    return f;
}

} // namespace meshgate::test_support
