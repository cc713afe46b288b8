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

// An IPv4 header and a TCP header without options at IP, then PAYLOAD bytes ('a', 'b', ...):
// addresses and ports in network order, sequence numbers in host order; both checksums.
void write_ipv4_tcp(rte_ipv4_hdr *ip, rte_be32_t src, rte_be32_t dst, rte_be16_t sport,
                    rte_be16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
                    uint16_t payload = 0)
{
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(
        static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + sizeof(rte_tcp_hdr) + payload));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_TCP;
    ip->src_addr = src;
    ip->dst_addr = dst;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto *tcp = reinterpret_cast<rte_tcp_hdr *>(ip + 1);
    tcp->src_port = sport;
    tcp->dst_port = dport;
    tcp->sent_seq = rte_cpu_to_be_32(seq);
    tcp->recv_ack = rte_cpu_to_be_32(ack);
    tcp->data_off = 5 << 4;
    tcp->tcp_flags = flags;
    tcp->rx_win = rte_cpu_to_be_16(65535);
    auto *data = reinterpret_cast<uint8_t *>(tcp + 1);
    for (uint16_t i = 0; i < payload; i++)
        data[i] = static_cast<uint8_t>('a' + i % 26);
    tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
}

} // namespace

config::gateway_config null_ports_gateway(std::string name, uint32_t connections)
{
    config::gateway_config c;
    c.file = std::move(name);
    c.dpdk.lcore_ids = {0, 0};
    config::port ext, und;
    ext.name = "ext";
    ext.device = "net_null0";
    ext.address = *parse_ipv4_prefix("203.0.113.10/24");
    ext.mac = ext_mac;
    und.name = "und";
    und.device = "net_null1";
    und.role = config::port_role::underlay;
    und.address = *parse_ipv4_prefix("192.168.50.1/24");
    und.mac = und_mac;
    c.ports = {ext, und};
    c.overlay.at = {1, 1};
    c.overlay.address = *parse_ipv4_prefix("10.255.0.2/16");
    c.overlay.mac = docker_mac_for(c.overlay.address.address);
    c.nodes.push_back(
        config::node{.name = "n1", .address = *parse_ipv4("192.168.50.11"), .mac = node_mac});
    c.limits.connections = connections;
    return c;
}

config::task task_on_n1(const char *address)
{
    return config::task{
        .address = *parse_ipv4(address), .node = "n1", .mac = docker_mac_for(*parse_ipv4(address))};
}

std::vector<uint8_t> tcp_frame(const client_segment &s)
{
    std::vector<uint8_t> f(std::max<size_t>(60, 54 + s.payload), 0);
    auto *eth = reinterpret_cast<rte_ether_hdr *>(f.data());
    write_mac(eth->dst_addr, s.to);
    write_mac(eth->src_addr, s.from);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    write_ipv4_tcp(reinterpret_cast<rte_ipv4_hdr *>(eth + 1), rte_cpu_to_be_32(s.client.value),
                   rte_cpu_to_be_32(s.published.value), rte_cpu_to_be_16(s.client_port),
                   rte_cpu_to_be_16(s.published_port), s.flags, s.seq, s.ack, s.payload);
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
    write_ipv4_tcp(reinterpret_cast<rte_ipv4_hdr *>(ieth + 1), c.task_ip(), c.snat_ip(),
                   c.target_port(), c.snat_port(), r.flags, 0, r.ack);
    return f;
}

} // namespace meshgate::test_support
