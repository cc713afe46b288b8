// The handshakes of a connection opened by a SYN cookie (dataplane/syn_cookie.h), written over
// the packets that cause them, and the sequence translation such a connection keeps:
//
//   client                 gateway                        task
//   SYN (isn)      ->      SYN-ACK (cookie), no state
//   ACK (cookie+1) ->      the connection; SYN (isn)  ->
//                          ACK (task isn+1)           <-  SYN-ACK (task isn)
//   data           ->                                 ->  (ack + offset)
//                  <-      (seq - offset)             <-  data
//
// offset = task ISN - cookie, fixed by the task's SYN-ACK. The client's first data segment after
// its ACK, while the task has not answered, is held and sent once it has; other data meanwhile
// (and any in the ACK) is dropped: the client sends it again (its retransmission, 200 ms later
// at least), and nothing of it reached the task. A lost SYN to the task goes again
// with the client's retransmission from its first byte, or from the gateway's housekeeping a
// second later (a server that speaks first gets nothing from its client). The window the client
// sees is the task's, rescaled when the task's window scale is not the one the cookie's SYN-ACK
// announced.
#pragma once

#include <cstdint>
#include <cstring>

#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "dataplane/checksum.h"
#include "dataplane/conntrack.h"
#include "dataplane/ipv4.h"
#include "dataplane/syn_cookie.h"
#include "dataplane/tcp_state.h"

namespace meshgate::dataplane
{

// The window scale a cookie's SYN-ACK announces to a client that offered scaling: Linux's with
// its default buffers.
inline constexpr uint8_t cookie_announced_wscale = 7;

namespace syn_proxy_detail
{

// MSS, window scale and SACK-permitted of OPT_LEN option bytes at OPT (a SYN's).
inline syn_options read_options(const uint8_t *opt, uint32_t opt_len)
{
    syn_options o{.mss = 536, .wscale = no_wscale, .sack = false};
    tcp_option::for_each(opt, opt_len, [&](uint8_t kind, const uint8_t *at, uint32_t len) {
        if (kind == tcp_option::mss && len == 4)
            o.mss = static_cast<uint16_t>(at[2] << 8 | at[3]);
        else if (kind == tcp_option::wscale && len == 3)
            o.wscale = at[2] > 14 ? 14 : at[2];
        else if (kind == tcp_option::sack_permitted && len == 2)
            o.sack = true;
    });
    return o;
}

// The options of a SYN or SYN-ACK: MSS, then SACK-permitted and window scale when WITH_SACK
// and WSCALE say so, NOP-padded to 4-byte words. Returns their length (4, 8 or 12).
inline uint32_t write_options(uint8_t *opt, uint16_t mss, bool with_sack, uint8_t wscale)
{
    uint32_t n = 0;
    opt[n++] = tcp_option::mss;
    opt[n++] = 4;
    opt[n++] = static_cast<uint8_t>(mss >> 8);
    opt[n++] = static_cast<uint8_t>(mss);
    if (with_sack) {
        opt[n++] = tcp_option::nop;
        opt[n++] = tcp_option::nop;
        opt[n++] = tcp_option::sack_permitted;
        opt[n++] = 2;
    }
    if (wscale != no_wscale) {
        opt[n++] = tcp_option::nop;
        opt[n++] = tcp_option::wscale;
        opt[n++] = 3;
        opt[n++] = wscale;
    }
    return n;
}

// Source and destination addresses and ports exchanged (the headers are packed structs).
inline void swap_ends(rte_ipv4_hdr *ip, rte_tcp_hdr *tcp)
{
    const rte_be32_t src = ip->src_addr;
    ip->src_addr = ip->dst_addr;
    ip->dst_addr = src;
    const rte_be16_t src_port = tcp->src_port;
    tcp->src_port = tcp->dst_port;
    tcp->dst_port = src_port;
}

// Room in M for 12 bytes of options after the TCP header at TCP (a bare header may end the frame).
inline bool room_for_options(rte_mbuf *m, const rte_tcp_hdr *tcp)
{
    const uint32_t needed = static_cast<uint32_t>(reinterpret_cast<const uint8_t *>(tcp + 1) -
                                                  rte_pktmbuf_mtod(m, const uint8_t *)) +
                            12;
    return rte_pktmbuf_data_len(m) >= needed ||
           rte_pktmbuf_append(m, static_cast<uint16_t>(needed - rte_pktmbuf_data_len(m))) !=
               nullptr;
}

// IP and TCP headers of M rewritten as a segment without payload: the given numbers, flags and
// options (OPT_LEN bytes already written after the TCP header), both checksums computed whole.
inline void finish_segment(rte_mbuf *m, rte_ipv4_hdr *ip, rte_tcp_hdr *tcp, uint32_t opt_len)
{
    const uint32_t tcp_len = sizeof(rte_tcp_hdr) + opt_len;
    tcp->data_off = static_cast<uint8_t>((tcp_len / 4) << 4);
    tcp->tcp_urp = 0;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(rte_ipv4_hdr_len(ip) + tcp_len));
    ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
    ip->hdr_checksum = 0;
    ip->hdr_checksum = ipv4_header_checksum(ip);
    tcp->cksum = 0;
    tcp->cksum = ipv4_l4_checksum(ip, tcp);
    const uint32_t frame =
        static_cast<uint32_t>(reinterpret_cast<uint8_t *>(tcp) - rte_pktmbuf_mtod(m, uint8_t *)) +
        tcp_len;
    rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - frame));
}
// TCP (in M, IP at IP) made our SYN to the task: ISN (host order), the options CLIENT, the
// whole of both checksums.
inline void finish_task_syn(rte_mbuf *m, rte_ipv4_hdr *ip, rte_tcp_hdr *tcp, uint32_t isn,
                            const syn_options &client)
{
    tcp->sent_seq = rte_cpu_to_be_32(isn);
    tcp->recv_ack = 0;
    tcp->tcp_flags = RTE_TCP_SYN_FLAG;
    tcp->rx_win = RTE_BE16(65535);
    const uint32_t opt_len =
        write_options(reinterpret_cast<uint8_t *>(tcp + 1), client.mss, client.sack, client.wscale);
    finish_segment(m, ip, tcp, opt_len);
}
} // namespace syn_proxy_detail

// The options of a SYN (TCP header with its options in the first segment).
inline syn_options syn_options_of(const rte_tcp_hdr *tcp)
{
    const uint32_t opt_len = (tcp->data_off >> 4) * 4u - sizeof(rte_tcp_hdr);
    return syn_proxy_detail::read_options(reinterpret_cast<const uint8_t *>(tcp + 1), opt_len);
}

// A client's SYN (in M, single segment, IP without options) becomes the gateway's SYN-ACK with
// COOKIE as its ISN: addresses and ports swapped, MSS (at most OUR_MSS), SACK-permitted and our
// window scale as the client offered them, no timestamps. The caller routes it to the client.
inline bool syn_to_cookie_syn_ack(rte_mbuf *m, rte_ipv4_hdr *ip, rte_tcp_hdr *tcp, uint32_t cookie,
                                  const syn_options &client, uint16_t our_mss)
{
    if (m->nb_segs != 1 || rte_ipv4_hdr_len(ip) != sizeof(rte_ipv4_hdr) ||
        !syn_proxy_detail::room_for_options(m, tcp))
        return false;
    const uint32_t client_isn = rte_be_to_cpu_32(tcp->sent_seq);
    syn_proxy_detail::swap_ends(ip, tcp);
    ip->time_to_live = 64;
    ip->packet_id = 0;
    ip->type_of_service = 0;
    tcp->sent_seq = rte_cpu_to_be_32(cookie);
    tcp->recv_ack = rte_cpu_to_be_32(client_isn + 1);
    tcp->tcp_flags = RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG;
    tcp->rx_win = RTE_BE16(65535);
    const uint16_t mss = client.mss < our_mss ? client.mss : our_mss;
    const uint32_t opt_len = syn_proxy_detail::write_options(
        reinterpret_cast<uint8_t *>(tcp + 1), mss, client.sack,
        client.wscale == no_wscale ? no_wscale : cookie_announced_wscale);
    syn_proxy_detail::finish_segment(m, ip, tcp, opt_len);
    return true;
}

// A client's ACK that proved its cookie (in M) becomes the SYN the task gets: the client's ISN
// and the options its cookie kept, without its payload (open_by_cookie() holds a copy of it).
// Addresses stay the client's: NAT follows as for any client segment.
inline bool cookie_ack_to_syn(rte_mbuf *m, rte_ipv4_hdr *ip, rte_tcp_hdr *tcp,
                              const syn_options &client)
{
    if (m->nb_segs != 1 || rte_ipv4_hdr_len(ip) != sizeof(rte_ipv4_hdr) ||
        !syn_proxy_detail::room_for_options(m, tcp))
        return false;
    syn_proxy_detail::finish_task_syn(m, ip, tcp, rte_be_to_cpu_32(tcp->sent_seq) - 1, client);
    return true;
}

// Our SYN to the task of connection C, written from nothing into M (empty): what
// cookie_ack_to_syn() made of the client's ACK (CLIENT_ISN, the options CLIENT), after NAT. The
// inner Ethernet addresses are the caller's. False when M has no room.
inline bool write_task_syn(rte_mbuf *m, const connection &c, uint32_t client_isn,
                           const syn_options &client)
{
    constexpr uint16_t longest =
        sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_tcp_hdr) + 12;
    auto *eth = reinterpret_cast<rte_ether_hdr *>(rte_pktmbuf_append(m, longest));
    if (eth == nullptr) return false;
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
    *ip = rte_ipv4_hdr{};
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_TCP;
    ip->src_addr = c.snat_ip();
    ip->dst_addr = c.task_ip();
    auto *tcp = reinterpret_cast<rte_tcp_hdr *>(ip + 1);
    *tcp = rte_tcp_hdr{};
    tcp->src_port = c.snat_port();
    tcp->dst_port = c.target_port();
    syn_proxy_detail::finish_task_syn(m, ip, tcp, client_isn, client);
    return true;
}

// The task's SYN-ACK (inner frame at M's data, IP and TCP headers at IP and TCP) becomes the ACK
// that completes its handshake, back to the task: inner Ethernet, addresses and ports swapped,
// seq = what it acknowledged, ack = its ISN + 1, a window of 64 KiB in the client's scale.
inline void task_syn_ack_to_ack(rte_mbuf *m, rte_ipv4_hdr *ip, rte_tcp_hdr *tcp,
                                uint8_t client_wscale)
{
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    const rte_ether_addr from = eth->src_addr;
    eth->src_addr = eth->dst_addr;
    eth->dst_addr = from;
    syn_proxy_detail::swap_ends(ip, tcp);
    ip->time_to_live = 64;
    const rte_be32_t task_isn = tcp->sent_seq;
    tcp->sent_seq = tcp->recv_ack;
    tcp->recv_ack = rte_cpu_to_be_32(rte_be_to_cpu_32(task_isn) + 1);
    tcp->tcp_flags = RTE_TCP_ACK_FLAG;
    const uint8_t shift = client_wscale == no_wscale ? 0 : client_wscale;
    tcp->rx_win = rte_cpu_to_be_16(static_cast<uint16_t>(65535u >> shift));
    syn_proxy_detail::finish_segment(m, ip, tcp, 0);
}

// The window a task's segment announces, as the client must read it: the task scales by
// TASK_WSCALE, the client believes the gateway's cookie_announced_wscale (or none).
inline uint16_t window_for_client(uint16_t window, uint8_t task_wscale, bool client_scales)
{
    const uint32_t bytes = uint32_t{window} << (task_wscale == no_wscale ? 0 : task_wscale);
    const uint32_t scaled = bytes >> (client_scales ? cookie_announced_wscale : 0);
    return static_cast<uint16_t>(scaled > 65535 ? 65535 : scaled);
}

// The window scales a cookie connection keeps (connection::wscales).
inline uint8_t client_wscale_of(const connection &c)
{
    return c.wscales >> 4;
}
inline uint8_t task_wscale_of(const connection &c)
{
    return c.wscales & 0xf;
}

// A client's segment of an open cookie connection, before NAT: its ack and SACK edges (about
// the task's data) moved into the task's numbers.
inline void cookie_to_task(rte_tcp_hdr *tcp, const connection &c)
{
    if (!(tcp->tcp_flags & tcp_flag::ack)) return;
    const uint32_t offset = c.seq_offset;
    const rte_be32_t ack = rte_cpu_to_be_32(rte_be_to_cpu_32(tcp->recv_ack) + offset);
    tcp->cksum = csum_update32(tcp->cksum, tcp->recv_ack, ack);
    tcp->recv_ack = ack;
    const uint32_t opt_len = (tcp->data_off >> 4) * 4u - sizeof(rte_tcp_hdr);
    if (opt_len == 0) return;
    // Options start at an even offset of the header: their sum before and after is the delta
    // (a SACK edge may sit at an odd offset).
    auto *opt = reinterpret_cast<uint8_t *>(tcp + 1);
    const uint16_t before = csum_raw(opt, opt_len);
    bool moved_any = false;
    tcp_option::for_each(opt, opt_len, [&](uint8_t kind, uint8_t *at, uint32_t len) {
        if (kind != tcp_option::sack || len < 10 || (len - 2) % 8 != 0) return;
        for (uint32_t e = 2; e + 4 <= len; e += 4) { // left and right edges
            uint32_t edge;
            std::memcpy(&edge, at + e, 4);
            edge = rte_cpu_to_be_32(rte_be_to_cpu_32(edge) + offset);
            std::memcpy(at + e, &edge, 4);
        }
        moved_any = true;
    });
    if (moved_any) tcp->cksum = csum_after_edit(tcp->cksum, before, opt, opt_len);
}

// A task's segment of an open cookie connection, before NAT: its sequence number moved into
// the cookie's numbers, its window into the scale the client was told.
inline void cookie_to_client(rte_tcp_hdr *tcp, const connection &c)
{
    const rte_be32_t seq = rte_cpu_to_be_32(rte_be_to_cpu_32(tcp->sent_seq) - c.seq_offset);
    tcp->cksum = csum_update32(tcp->cksum, tcp->sent_seq, seq);
    tcp->sent_seq = seq;
    const rte_be16_t window = rte_cpu_to_be_16(window_for_client(
        rte_be_to_cpu_16(tcp->rx_win), task_wscale_of(c), client_wscale_of(c) != no_wscale));
    tcp->cksum = csum_update16(tcp->cksum, tcp->rx_win, window);
    tcp->rx_win = window;
}

} // namespace meshgate::dataplane
