// Node -> gateway: VXLAN decapsulation, ARP and ping inside the tunnel, and the tasks' replies
// translated back to their clients; ICMP errors about connections, from either side.
#include <cstring>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip_frag.h>

#include "dataplane/ipv4.h"
#include "dataplane/local.h"
#include "dataplane/mesh.h"
#include "dataplane/nat_rewrite.h"
#include "dataplane/output.h"
#include "dataplane/proxy_protocol.h"
#include "dataplane/syn_proxy.h"
#include "dataplane/vxlan.h"

namespace meshgate::dataplane
{

namespace
{

// M (data at the inner Ethernet header) back through the tunnel it came from: a configured
// node's (classify_underlay() let in no other).
verdict reply_through_tunnel(const dataplane_tables &t, rte_mbuf *m, rte_be32_t vtep)
{
    const uint16_t node = t.node_of_vtep.find(vtep);
    if (node == no_node) return drop_as(drop_reason::unknown_vtep);
    return to_node(
        t, m, node,
        vxlan_inner_flow_hash(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m)));
}

// ARP inside the tunnel for the gateway's overlay or SNAT addresses: the nodes' kernels ask it
// when their static neighbor entry is missing or stale.
verdict tunnel_arp(worker &w, const dataplane_tables &t, rte_mbuf *m, rte_be32_t vtep)
{
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr))
        return drop_as(drop_reason::malformed);
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    auto *arp = reinterpret_cast<rte_arp_hdr *>(eth + 1);
    if (arp->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
        arp->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 ||
        arp->arp_plen != 4)
        return drop_as(drop_reason::malformed);
    if (arp->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST) ||
        !t.is_overlay_address(arp->arp_data.arp_tip))
        return drop_as(drop_reason::not_local);
    rte_be32_t asker = arp->arp_data.arp_sip;
    rte_be32_t asked = arp->arp_data.arp_tip;
    rte_ether_addr asker_mac = arp->arp_data.arp_sha;
    arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
    arp->arp_data.arp_sha = t.overlay_mac;
    arp->arp_data.arp_sip = asked;
    arp->arp_data.arp_tha = asker_mac;
    arp->arp_data.arp_tip = asker;
    eth->dst_addr = asker_mac;
    eth->src_addr = t.overlay_mac;
    w.counters.count(event::arp_replies_sent);
    return reply_through_tunnel(t, m, vtep);
}

// The connection an ICMP error quotes a packet of: the quoted packet, reversed, is a key of the
// connection in direction DIR; nullptr when there is no such connection.
const connection *quoted_connection(worker &w, const icmp_error_view &v, direction dir)
{
    rte_be16_t quoted_src_port, quoted_dst_port;
    std::memcpy(&quoted_src_port, v.inner_l4, 2);
    std::memcpy(&quoted_dst_port, v.inner_l4 + 2, 2);
    flow_key key = make_flow_key(v.inner->dst_addr, v.inner->src_addr, quoted_dst_port,
                                 quoted_src_port, v.inner_proto);
    conn_ref ref = w.shared->connections->lookup(static_cast<uint8_t>(w.id), dir, key,
                                                 connection_table::hash(key));
    if (!ref.hit() || ref.dir() != dir) return nullptr;
    return &w.shared->connections->at(ref.index());
}

// Ping of the gateway's overlay address from a task or a node, answered through the tunnel.
verdict tunnel_echo(worker &w, const dataplane_tables &t, rte_mbuf *m, rte_ipv4_hdr *ip,
                    rte_be32_t vtep)
{
    if (auto why = echo_to_reply(m, ip, t.overlay_mac)) return drop_as(*why);
    w.counters.count(event::icmp_echo_replies_sent);
    return reply_through_tunnel(t, m, vtep);
}

// An ICMP error from a task or its node about a packet the gateway sent it: to the client.
std::optional<verdict> task_icmp_error(worker &w, const dataplane_tables &t, rte_ipv4_hdr *ip)
{
    uint32_t l3_len = rte_be_to_cpu_16(ip->total_length);
    icmp_error_view v = icmp_error_parse(ip, l3_len);
    if (!v) return std::nullopt;
    // The quoted packet went snat -> task: it belongs to the connection's reverse direction.
    const connection *found = quoted_connection(w, v, direction::reverse);
    if (found == nullptr) return std::nullopt;
    const connection &c = *found;
    uint16_t out = client_port_for(t, c);
    if (out == no_port) return std::nullopt;
    // The client sees an error about the packet it sent, from the address it sent it to.
    icmp_error_nat to{
        c.forward.dst_ip, c.forward.src_ip,
        nat_endpoints{c.forward.src_ip, c.forward.dst_ip, c.forward.src_port, c.forward.dst_port}};
    icmp_error_translate(ip, v, to);
    w.counters.count(event::icmp_errors_translated);
    return route_to(out, c.forward.src_ip);
}

// The inner frame of a tunnel packet, after decapsulation: a task's reply for the reverse
// stage, or what the gateway answers itself.
// A task's TCP or UDP packet (IP, valid, to the overlay address) for stage reverse, with its key.
void to_reverse_stage(rte_ipv4_hdr *ip, rte_be32_t vtep, packet_state &s)
{
    l4_view l4 = parse_l4(ip);
    if (l4.header == nullptr) {
        s.v = drop_as(drop_reason::malformed);
        return;
    }
    to_lookup_stage(s, mesh_stage::reverse, ip, l4);
    s.vtep = vtep;
}

// M holds a fragment of a task's datagram (IP, valid, to the overlay address): held until the
// datagram is whole, which then goes on as one packet (a chain of the fragments' mbufs), as
// Linux's conntrack reassembles before NAT. UDP only: EDNS answers are what tasks fragment;
// TCP keeps to its MSS.
void reassemble(worker &w, rte_mbuf *m, rte_ipv4_hdr *ip, rte_be32_t vtep, packet_state &s)
{
    if (ip->next_proto_id != IPPROTO_UDP || w.reassembly == nullptr) {
        s.v = drop_as(drop_reason::fragment);
        return;
    }
    m->l2_len = sizeof(rte_ether_hdr);
    m->l3_len = rte_ipv4_hdr_len(ip);
    rte_mbuf *whole = rte_ipv4_frag_reassemble_packet(w.reassembly, &w.death_row, m, w.tsc, ip);
    if (whole == nullptr) {
        s.v = taken(); // the table holds it (or dropped it into the death row)
        return;
    }
    s.reassembled = whole;
    w.counters.count(event::datagrams_reassembled);
    auto *wip = rte_pktmbuf_mtod_offset(whole, rte_ipv4_hdr *, sizeof(rte_ether_hdr));
    wip->hdr_checksum = 0; // the library leaves it to us
    wip->hdr_checksum = ipv4_header_checksum(wip);
    // The UDP header must be in the first segment, where the stages read it.
    if (rte_pktmbuf_data_len(whole) <
            sizeof(rte_ether_hdr) + rte_ipv4_hdr_len(wip) + sizeof(rte_udp_hdr) ||
        rte_pktmbuf_pkt_len(whole) != sizeof(rte_ether_hdr) + rte_be_to_cpu_16(wip->total_length)) {
        s.v = drop_as(drop_reason::malformed);
        return;
    }
    to_reverse_stage(wip, vtep, s);
}

void classify_inner(worker &w, const dataplane_tables &t, rte_mbuf *m, rte_be32_t vtep,
                    packet_state &s)
{
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr)) {
        s.v = drop_as(drop_reason::malformed);
        return;
    }
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP)) {
        s.v = tunnel_arp(w, t, m, vtep);
        return;
    }
    if (eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
        s.v = drop_as(drop_reason::ethertype);
        return;
    }
    auto *ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr *, sizeof(rte_ether_hdr));
    const bool ours = rte_is_same_ether_addr(&eth->dst_addr, &t.overlay_mac);
    if (!valid_ipv4(m, ip)) {
        s.v = drop_as(drop_reason::malformed);
    } else if (ours ? !t.is_overlay_address(ip->dst_addr)
                    : !t.is_adopted(eth->dst_addr, ip->dst_addr)) {
        s.v = drop_as(drop_reason::not_local);
    } else if (rte_ipv4_frag_pkt_is_fragmented(ip)) {
        reassemble(w, m, ip, vtep, s);
    } else if (ip->next_proto_id == IPPROTO_TCP || ip->next_proto_id == IPPROTO_UDP) {
        to_reverse_stage(ip, vtep, s);
    } else if (ip->next_proto_id == IPPROTO_ICMP) {
        s.stage = mesh_stage::tunnel_icmp;
        s.ip = ip;
        s.vtep = vtep;
    } else {
        s.v = drop_as(drop_reason::unsupported_protocol);
    }
}

// ICMP errors about a connection, arriving from the client side at a gateway address: to its
// task; nothing when it is not about a known connection.
std::optional<verdict> client_icmp_error(worker &w, const dataplane_tables &t, rte_mbuf *m,
                                         rte_ipv4_hdr *ip)
{
    uint32_t l3_len = rte_be_to_cpu_16(ip->total_length);
    icmp_error_view v = icmp_error_parse(ip, l3_len);
    if (!v) return std::nullopt;
    // The quoted packet went published -> client: it answers the connection's forward direction.
    const connection *found = quoted_connection(w, v, direction::forward);
    if (found == nullptr) return std::nullopt;
    const connection &c = *found;
    const task_entry &task = t.tasks[c.task];
    if (task.state == task_state::absent) return std::nullopt;
    // The task sees an error about the packet it sent, from the address it sent it to.
    icmp_error_nat to{c.snat_ip(), c.task_ip(),
                      nat_endpoints{c.task_ip(), c.snat_ip(), c.target_port(), c.snat_port()}};
    icmp_error_translate(ip, v, to);
    w.counters.count(event::icmp_errors_translated);
    vxlan_inner_ether_write(rte_pktmbuf_mtod(m, rte_ether_hdr *), t.overlay_mac, task.mac);
    return to_node(t, m, task.node, connection_table::hash(c.forward));
}

// The task's SYN-ACK of connection INDEX, opened by a cookie: the sequence offset fixed (once),
// the task's handshake completed by our ACK back to it (with the PROXY header, if any); the
// client never sees it.
verdict complete_cookie_handshake(worker &w, const dataplane_tables &t, rte_mbuf *m,
                                  packet_state &s, uint32_t index)
{
    connection_table &connections = *w.shared->connections;
    connection &c = connections.at(index);
    rte_ipv4_hdr *ip = s.ip;
    auto *tcp = reinterpret_cast<rte_tcp_hdr *>(s.l4);
    uint8_t state = uint8_t(cookie_state::waiting);
    if (c.cookie.compare_exchange_strong(state, uint8_t(cookie_state::opening),
                                         std::memory_order_acq_rel)) {
        const uint32_t cookie = c.seq_offset;
        c.seq_offset = rte_be_to_cpu_32(tcp->sent_seq) - cookie;
        c.wscales = static_cast<uint8_t>((c.wscales & 0xf0) | syn_options_of(tcp).wscale);
        c.cookie.store(uint8_t(cookie_state::open), std::memory_order_release);
    } else if (state != uint8_t(cookie_state::open)) {
        return drop_as(drop_reason::cookie_pending); // another worker is at it: the task repeats
    }
    task_syn_ack_to_ack(m, ip, tcp, client_wscale_of(c));
    // Established now, its translation fixed: the peers hear of it now, as of any other.
    if (connections.update(index, direction::forward, tcp_flag::ack, w.now).changed)
        sync_note(w, c, false);
    if (c.proxy_len != 0) {
        switch (proxy_to_task(m, ip, tcp, c, vxlan_outer_len)) {
        case proxy_step::no_room:
            return drop_as(drop_reason::proxy_header);
        case proxy_step::inserted:
            w.counters.count(event::proxy_headers_sent);
            break;
        case proxy_step::none:
        case proxy_step::shifted:
            break;
        }
    }
    return reply_through_tunnel(t, m, s.vtep);
}

} // namespace

void classify_underlay(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                       rte_ipv4_hdr *ip, packet_state &s)
{
    if (!t.ports[port].underlay) {
        s.v = drop_as(drop_reason::no_service);
        return;
    }
    vxlan_decap_info info = vxlan_decap_parse(m, sizeof(rte_ether_hdr), t.vxlan_port, t.vni);
    switch (info.status) {
    case vxlan_status::ok:
        break;
    case vxlan_status::truncated:
        s.v = drop_as(drop_reason::malformed);
        return;
    case vxlan_status::fragment:
        s.v = drop_as(drop_reason::fragment);
        return;
    case vxlan_status::not_vxlan:
        s.v = drop_as(drop_reason::no_service);
        return;
    case vxlan_status::unknown_vni:
        s.v = drop_as(drop_reason::unknown_vni);
        return;
    }
    // Only the swarm's nodes may speak through the tunnel: a port that faces the internet too
    // (role "both") must not let anyone inject replies toward clients.
    const rte_be32_t vtep = ip->src_addr;
    if (t.node_of_vtep.find(vtep) == no_node) {
        s.v = drop_as(drop_reason::unknown_vtep);
        return;
    }
    vxlan_decap(m, info);
    classify_inner(w, t, m, vtep, s);
}

verdict reverse_stage(worker &w, const dataplane_tables &t, rte_mbuf *m, packet_state &s)
{
    if (!s.ref.hit() || s.ref.dir() != direction::reverse)
        return drop_as(drop_reason::no_connection);
    connection_table &connections = *w.shared->connections;
    const update_result u =
        connections.update(s.ref.index(), direction::reverse, s.tcp_flags, w.now);
    const connection &c = connections.at(s.ref.index());
    if (u.changed) sync_note(w, c, false);
    // Its owner ends it (a forward packet or its sweep); replies stop here meanwhile.
    if (t.tasks[c.task].state == task_state::absent) return drop_as(drop_reason::task_gone);

    rte_ipv4_hdr *ip = s.ip;
    if (ip->time_to_live <= 1) {
        if (rte_mbuf *e = build_icmp_error(w, t, ip, ip->dst_addr, icmp_type_time_exceeded,
                                           icmp_code_ttl_exceeded, 0)) {
            vxlan_inner_ether_write(rte_pktmbuf_mtod(e, rte_ether_hdr *), t.overlay_mac,
                                    rte_pktmbuf_mtod(m, rte_ether_hdr *)->src_addr);
            deliver(w, t, e, reply_through_tunnel(t, e, s.vtep));
        }
        return drop_as(drop_reason::ttl_exceeded);
    }
    if (ip->next_proto_id == IPPROTO_TCP) {
        const uint8_t cookie = c.cookie.load(std::memory_order_acquire);
        auto *tcp = reinterpret_cast<rte_tcp_hdr *>(s.l4);
        if (cookie != uint8_t(cookie_state::none)) {
            // Our SYN's answer acks the client's ISN + 1, as our SYN was numbered; another SYN-ACK
            // answers a SYN that was not ours to complete.
            if ((tcp->tcp_flags & (tcp_flag::syn | tcp_flag::ack)) ==
                (tcp_flag::syn | tcp_flag::ack))
                return rte_be_to_cpu_32(tcp->recv_ack) == c.proxy_start
                           ? complete_cookie_handshake(w, t, m, s, s.ref.index())
                           : drop_as(drop_reason::no_connection);
            if (cookie != uint8_t(cookie_state::open)) {
                // Before its SYN-ACK only a RST (our SYN refused) has meaning for the client: at
                // the number after the cookie, where the client expects it.
                if (!(tcp->tcp_flags & tcp_flag::rst)) return drop_as(drop_reason::no_connection);
                const rte_be32_t seq = rte_cpu_to_be_32(c.seq_offset + 1);
                tcp->cksum = csum_update32(tcp->cksum, tcp->sent_seq, seq);
                tcp->sent_seq = seq;
            } else {
                cookie_to_client(tcp, c);
            }
        }
    }
    uint16_t out = client_port_for(t, c);
    if (out == no_port) return drop_as(drop_reason::no_route);
    uint16_t l3_len = rte_be_to_cpu_16(ip->total_length);
    // Only a reassembled datagram can be bigger than the client's link (a task's MTU is the
    // overlay's); its fragments had DF clear, so the whole one has it clear too.
    const bool too_big = l3_len > t.ports[out].mtu;
    if (too_big && (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG)))
        return drop_as(drop_reason::mtu);
    if (c.proxy_len != 0 && ip->next_proto_id == IPPROTO_TCP)
        proxy_to_client(reinterpret_cast<rte_tcp_hdr *>(s.l4), connections.at(s.ref.index()));
    nat_endpoints to{c.forward.dst_ip, c.forward.src_ip, c.forward.dst_port, c.forward.src_port};
    if (ip->next_proto_id == IPPROTO_TCP)
        nat_forward<IPPROTO_TCP>(ip, s.l4, to);
    else
        nat_forward<IPPROTO_UDP>(ip, s.l4, to);
    ++w.counters.tasks[c.task].packets_out;
    w.counters.tasks[c.task].bytes_out += l3_len;
    if (too_big)
        return fragment_each(w, t, m, t.ports[out].mtu, [&](rte_mbuf *, rte_ether_hdr *) {
            return route_to(out, to.dst_addr);
        });
    return route_to(out, to.dst_addr);
}

verdict tunnel_icmp_stage(worker &w, const dataplane_tables &t, rte_mbuf *m, packet_state &s)
{
    rte_ipv4_hdr *ip = s.ip;
    if (std::optional<verdict> translated = task_icmp_error(w, t, ip)) return *translated;
    auto *icmp =
        reinterpret_cast<rte_icmp_hdr *>(reinterpret_cast<uint8_t *>(ip) + rte_ipv4_hdr_len(ip));
    if (rte_be_to_cpu_16(ip->total_length) >= rte_ipv4_hdr_len(ip) + sizeof(rte_icmp_hdr) &&
        icmp->icmp_type == RTE_IP_ICMP_ECHO_REQUEST)
        return tunnel_echo(w, t, m, ip, s.vtep);
    return drop_as(drop_reason::no_connection);
}

verdict client_icmp_stage(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                          packet_state &s)
{
    if (std::optional<verdict> translated = client_icmp_error(w, t, m, s.ip)) return *translated;
    return icmp_input(w, t, port, m, s.ip);
}

} // namespace meshgate::dataplane
