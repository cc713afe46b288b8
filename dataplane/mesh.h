// The routing mesh: published port -> task over VXLAN (ingress.cpp), and the task's replies
// back to the client (egress.cpp), as stages of the burst pipeline (pipeline.h). Helpers both
// directions share are here.
#pragma once

#include <optional>

#include <netinet/in.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/output.h"
#include "dataplane/pipeline.h"
#include "dataplane/sync.h"
#include "dataplane/worker.h"

namespace meshgate::dataplane
{

// Classify: M is a valid IPv4 TCP or UDP packet to a gateway address that arrived on PORT. Sets
// S for the forward stage (key and hash) or its verdict.
void classify_published(worker &w, const dataplane_tables &t, uint16_t port, rte_ipv4_hdr *ip,
                        packet_state &s);

// Classify: M is a valid IPv4 UDP packet to PORT's address and the VXLAN port. Decapsulates
// it and sets S for the reverse stage (a task's reply) or its verdict (tunnel ARP and ping,
// ICMP errors, drops).
void classify_underlay(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                       rte_ipv4_hdr *ip, packet_state &s);

// After the lookup: the client's packet to its task (S.ref the lookup's answer).
verdict forward_stage(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                      packet_state &s);

// Housekeeping: our SYN again to each task that has not answered one, within a second, for a
// connection a cookie opened (worker::cookie_waits).
void resend_cookie_syns(worker &w, const dataplane_tables &t);

// After the lookup: the task's reply to its client.
verdict reverse_stage(worker &w, const dataplane_tables &t, rte_mbuf *m, packet_state &s);

// ICMP to a gateway address on PORT: an error about a connection goes to its task, the rest
// to icmp_input() (pings).
verdict client_icmp_stage(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                          packet_state &s);

// ICMP out of the tunnel: an error about a connection goes to its client, a ping of the
// overlay address is answered through the tunnel.
verdict tunnel_icmp_stage(worker &w, const dataplane_tables &t, rte_mbuf *m, packet_state &s);

// The TCP or UDP header of a valid IPv4 packet, checked against the packet's length.
struct l4_view {
    uint8_t *header = nullptr; // nullptr: truncated or inconsistent
    rte_be16_t src_port = 0;
    rte_be16_t dst_port = 0;
    uint8_t tcp_flags = 0;
};

inline l4_view parse_l4(rte_ipv4_hdr *ip)
{
    l4_view v;
    uint32_t hlen = rte_ipv4_hdr_len(ip);
    uint32_t l4_len = rte_be_to_cpu_16(ip->total_length) - hlen;
    uint8_t *l4 = reinterpret_cast<uint8_t *>(ip) + hlen;
    if (ip->next_proto_id == IPPROTO_TCP) {
        auto *tcp = reinterpret_cast<rte_tcp_hdr *>(l4);
        if (l4_len < sizeof(rte_tcp_hdr) || (tcp->data_off >> 4) * 4u < sizeof(rte_tcp_hdr) ||
            (tcp->data_off >> 4) * 4u > l4_len)
            return v;
        v.tcp_flags = tcp->tcp_flags;
    } else {
        auto *udp = reinterpret_cast<rte_udp_hdr *>(l4);
        if (l4_len < sizeof(rte_udp_hdr) ||
            rte_be_to_cpu_16(udp->dgram_len) < sizeof(rte_udp_hdr) ||
            rte_be_to_cpu_16(udp->dgram_len) > l4_len)
            return v;
    }
    std::memcpy(&v.src_port, l4, sizeof(v.src_port));
    std::memcpy(&v.dst_port, l4 + 2, sizeof(v.dst_port));
    v.header = l4;
    return v;
}

// S goes to STAGE (forward or reverse) with IP's TCP/UDP header L4 and its 5-tuple key, hashed
// once for the lookup, the creation and the VXLAN source port.
inline void to_lookup_stage(packet_state &s, mesh_stage stage, rte_ipv4_hdr *ip, const l4_view &l4)
{
    s.stage = stage;
    s.ip = ip;
    s.l4 = l4.header;
    s.tcp_flags = l4.tcp_flags;
    s.key = make_flow_key(ip->src_addr, ip->dst_addr, l4.src_port, l4.dst_port, ip->next_proto_id);
    s.hash = hash_flow(ip->src_addr, ip->dst_addr, l4.src_port, l4.dst_port, ip->next_proto_id);
}

// A new packet holding an ICMP error about OFFENDER, from SRC_ADDR to the offender's source,
// with room for its Ethernet header in front; nullptr (counted) when no error may be sent about
// it (icmp_error_allowed()) or now ([limits] icmp_errors_per_second), or the pool is empty.
rte_mbuf *build_icmp_error(worker &w, const dataplane_tables &t, const rte_ipv4_hdr *offender,
                           rte_be32_t src_addr, uint8_t type, uint8_t code, uint16_t mtu);

// Encapsulates M (data at the inner Ethernet header, already written) toward NODE: the verdict
// that sends it there. FLOW_HASH picks the outer source port.
verdict to_node(const dataplane_tables &t, rte_mbuf *m, uint16_t node, uint32_t flow_hash);

// Fragments of an IPv4 packet one link can carry: 2 x what a reassembled datagram may hold.
inline constexpr uint16_t max_fragments = 2 * RTE_LIBRTE_IP_FRAG_MAX_FRAG;

// M (data at its Ethernet header, DF clear) as IPv4 fragments of at most MTU bytes into
// FRAGMENTS, each with its Ethernet header's room in front; returns how many, or -1 when it
// cannot be fragmented. M itself is then the caller's to free.
int32_t fragment_ipv4(worker &w, rte_mbuf *m, uint16_t mtu, rte_mbuf *fragments[max_fragments]);

// Too big for the next link, DF clear: fragment M as a router on the path would; each fragment
// goes where NEXT(fragment, its Ethernet header) says. Verdict for M: spent (the fragments hold
// what they need of it), or mtu.
template <typename Next>
verdict fragment_each(worker &w, const dataplane_tables &t, rte_mbuf *m, uint16_t mtu, Next next)
{
    rte_mbuf *fragments[max_fragments];
    const int32_t n = fragment_ipv4(w, m, mtu, fragments);
    if (n < 0) return drop_as(drop_reason::mtu);
    for (int32_t i = 0; i < n; ++i)
        deliver(w, t, fragments[i],
                next(fragments[i], rte_pktmbuf_mtod(fragments[i], rte_ether_hdr *)));
    return spent();
}

// A connection ended: lc/wlc see one less for its task. Task ids outlive their connections.
// The peers hear of it too (its slot is intact until a grace period has passed).
inline void release_task(worker &w, const removed_connection &gone)
{
    w.shared->task_active[gone.task].fetch_sub(1, std::memory_order_relaxed);
    sync_note(w, w.shared->connections->at(gone.index), true);
}

// Owner only: ends connection INDEX now (its ports are reused, or its task has ended); does
// nothing for another owner's.
inline void end_connection(worker &w, uint32_t index)
{
    removed_connection gone;
    if (w.shared->connections->remove(static_cast<uint8_t>(w.id), index, &gone))
        release_task(w, gone);
}

inline constexpr uint16_t no_port = UINT16_MAX;

// Where C's client is answered: the port it came in on, as long as that port still reaches it
// (a multi-homed gateway's upstreams drop replies sourced from another link's address); else
// an external port that does (on its subnet, else through its gateway), or no_port.
uint16_t client_port_for(const dataplane_tables &t, const connection &c);

} // namespace meshgate::dataplane
