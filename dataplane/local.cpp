#include "dataplane/local.h"

#include <rte_arp.h>
#include <rte_icmp.h>

#include "dataplane/ipv4.h"
#include "dataplane/kernel_path.h"

namespace meshgate::dataplane
{

namespace
{

bool is_unicast(const rte_ether_addr &a)
{
    return rte_is_unicast_ether_addr(&a) && !rte_is_zero_ether_addr(&a);
}

} // namespace

verdict arp_input(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m)
{
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr))
        return drop_as(drop_reason::malformed);
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    auto *arp = reinterpret_cast<rte_arp_hdr *>(eth + 1);
    if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
        arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
        arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != sizeof(rte_be32_t))
        return drop_as(drop_reason::malformed);
    uint16_t op = rte_be_to_cpu_16(arp->arp_opcode);
    if (op != RTE_ARP_OP_REQUEST && op != RTE_ARP_OP_REPLY) return drop_as(drop_reason::malformed);

    const gateway_port &p = t.ports[port];
    rte_be32_t sender = arp->arp_data.arp_sip;
    rte_ether_addr sender_mac = arp->arp_data.arp_sha;
    // Only a neighbor on the port's subnet is one: spoofers must at least pick on-link addresses.
    bool sender_ok = sender != 0 && is_unicast(sender_mac) &&
                     (sender & p.netmask) == (p.address & p.netmask) && sender != p.address;

    // The port's address, or a dead peer's that the cluster took over on this port.
    const rte_be32_t target = arp->arp_data.arp_tip;
    if (target != p.address && t.local_addresses.find(target) != port) {
        // Not for us; still take news of neighbors we talk to (gratuitous ARP after a move).
        if (sender_ok) w.shared->neighbors->refresh(port, sender, sender_mac, w.tsc);
        return drop_as(drop_reason::not_local);
    }

    if (target == p.address && t.withheld_arp(port, sender)) {
        w.counters.count(event::arp_withheld_joining);
        return spent();
    }
    // The host keeps its own neighbors (its BGP peer's MAC): it sees what is for our address.
    if (target == p.address && has_kernel(w, port)) copy_to_kernel(w, t, port, m);
    if (sender_ok && w.shared->neighbors->learn(port, sender, sender_mac, w.tsc))
        w.counters.count(event::arp_learned);
    // A probe (sender 0.0.0.0, RFC 5227) is answered like Linux does, but teaches nothing.
    if (op != RTE_ARP_OP_REQUEST || !is_unicast(sender_mac))
        return spent(); // a reply to us: learning it was the whole job

    // One reply per request, but not at any rate: an ARP flood must not fill the TX queue
    // that the port's real traffic needs.
    if (!rate_admit(w.arp_reply_bucket, t.arp_replies, w.tsc)) {
        w.counters.count(event::arp_replies_rate_limited);
        return spent();
    }
    // Turn the request into the reply in place.
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
    arp->arp_data.arp_tha = sender_mac;
    arp->arp_data.arp_tip = sender;
    arp->arp_data.arp_sha = p.mac;
    arp->arp_data.arp_sip = target;
    eth->dst_addr = sender_mac;
    eth->src_addr = p.mac;
    w.counters.count(event::arp_replies_sent);
    return send_frame(port);
}

std::optional<drop_reason> echo_to_reply(rte_mbuf *m, rte_ipv4_hdr *ip,
                                         const rte_ether_addr &our_mac)
{
    uint16_t header_len = rte_ipv4_hdr_len(ip);
    uint16_t icmp_len = rte_be_to_cpu_16(ip->total_length) - header_len;
    auto *icmp = reinterpret_cast<rte_icmp_hdr *>(reinterpret_cast<uint8_t *>(ip) + header_len);
    if (icmp_len < sizeof(rte_icmp_hdr) || csum_raw(icmp, icmp_len) != 0xffff)
        return drop_reason::malformed;
    if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0)
        return drop_reason::unsupported_protocol;

    rte_be32_t asker = ip->src_addr;
    ip->src_addr = ip->dst_addr;
    ip->dst_addr = asker;
    ip->time_to_live = 64;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = ipv4_header_checksum(ip);
    icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
    icmp->icmp_cksum = 0;
    icmp->icmp_cksum = static_cast<uint16_t>(~csum_raw(icmp, icmp_len));
    // Back to the MAC that asked, as DPDK's and most routers' fast paths do: a ping works even
    // before ARP has told us the asker's MAC.
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    eth->dst_addr = eth->src_addr;
    eth->src_addr = our_mac;
    return std::nullopt;
}

bool segment_to_reset(rte_mbuf *m, rte_ipv4_hdr *ip, const rte_tcp_hdr *tcp)
{
    if ((tcp->tcp_flags & RTE_TCP_RST_FLAG) || m->nb_segs != 1) return false;
    // Everything the reset needs, read before the headers are written over.
    const rte_be32_t from = ip->src_addr, to = ip->dst_addr;
    const rte_be16_t from_port = tcp->src_port, to_port = tcp->dst_port;
    const uint8_t flags = tcp->tcp_flags;
    const uint32_t seq = rte_be_to_cpu_32(tcp->sent_seq);
    const rte_be32_t ack = tcp->recv_ack;
    const uint32_t payload = tcp_payload_length(ip, tcp);
    const uint32_t seg_len =
        payload + ((flags & RTE_TCP_SYN_FLAG) ? 1 : 0) + ((flags & RTE_TCP_FIN_FLAG) ? 1 : 0);

    auto *out_ip = ip;
    auto *out_tcp = reinterpret_cast<rte_tcp_hdr *>(out_ip + 1);
    *out_tcp = rte_tcp_hdr{};
    out_tcp->src_port = to_port;
    out_tcp->dst_port = from_port;
    if (flags & RTE_TCP_ACK_FLAG) {
        out_tcp->sent_seq = ack;
        out_tcp->tcp_flags = RTE_TCP_RST_FLAG;
    } else {
        out_tcp->recv_ack = rte_cpu_to_be_32(seq + seg_len);
        out_tcp->tcp_flags = RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG;
    }
    out_tcp->data_off = 5 << 4;
    *out_ip = rte_ipv4_hdr{};
    out_ip->version_ihl = RTE_IPV4_VHL_DEF;
    out_ip->total_length = RTE_BE16(sizeof(rte_ipv4_hdr) + sizeof(rte_tcp_hdr));
    out_ip->time_to_live = 64;
    out_ip->next_proto_id = IPPROTO_TCP;
    out_ip->src_addr = to;
    out_ip->dst_addr = from;
    out_ip->hdr_checksum = ipv4_header_checksum(out_ip);
    out_tcp->cksum = ipv4_l4_checksum(out_ip, out_tcp);
    const uint32_t frame = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_tcp_hdr);
    rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - frame));
    return true;
}

verdict icmp_input(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                   rte_ipv4_hdr *ip)
{
    if (auto why = echo_to_reply(m, ip, t.ports[port].mac)) {
        // Not a ping (the answers to the host's own, errors about its traffic): the host's.
        if (*why == drop_reason::unsupported_protocol && host_takes(w, t, port, ip->dst_addr))
            return to_kernel(w, t, port, false);
        return drop_as(*why);
    }
    w.counters.count(event::icmp_echo_replies_sent);
    return send_frame(port);
}

} // namespace meshgate::dataplane
