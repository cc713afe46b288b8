// The PROXY protocol (HAProxy's doc/proxy-protocol.txt) in the full-NAT path: a task of a
// service with `proxy_protocol` receives, ahead of the client's bytes, one header naming the
// client and the published address it connected to.
//
// The header is inserted into the client's stream: the task's kernel sees it at sequence numbers
// [start, start + len), start = the client's ISN + 1, and the client's byte at sequence s at
// s + len. So, for the connection's whole life (the shift is the connection's, not its
// service's current setting):
//   client -> task: seq s (at or after start) becomes s + len; the SYN keeps its number;
//   task -> client: ack a and SACK edges at or after start + len become a - len, a point inside
//   the header becomes start (the client sent nothing there); SACK blocks wholly within the
//   header (a D-SACK of a header sent twice) are removed.
// When the header is sent: as soon as the client's handshake completes, in the segment at
// `start` (its third ACK, or its first data when that ACK was lost), and again in any later
// segment at `start` until the task has acknowledged it (a lost header comes back with the
// client's retransmission, or with its ACK of the task's retransmitted SYN-ACK). A segment at
// `start` that carries the client's first data carries the header in front of it; the MSS the
// task announces is told to the client LEN smaller, so that segment never exceeds the path.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "dataplane/checksum.h"
#include "dataplane/conntrack.h"
#include "dataplane/proxy_kind.h"
#include "dataplane/tcp_state.h"

namespace meshgate::dataplane
{

// "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"
inline constexpr uint32_t proxy_v1_max_len = 56;
// signature (12), version and command, family and protocol, length (2), two IPv4 addresses and
// two ports (12)
inline constexpr uint32_t proxy_v2_len = 28;
inline constexpr uint32_t proxy_header_max_len = proxy_v1_max_len;

// Sequence numbers compare modulo 2^32 (RFC 793 3.3): A is at or after B.
inline constexpr bool seq_at_or_after(uint32_t a, uint32_t b)
{
    return static_cast<int32_t>(a - b) >= 0;
}

namespace detail
{
inline uint8_t *write_decimal(uint8_t *out, uint32_t v)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *out++ = static_cast<uint8_t>(digits[--n]);
    return out;
}

inline uint8_t *write_ipv4(uint8_t *out, rte_be32_t address)
{
    const uint32_t a = rte_be_to_cpu_32(address);
    for (int shift = 24; shift >= 0; shift -= 8) {
        out = write_decimal(out, (a >> shift) & 0xff);
        if (shift != 0) *out++ = '.';
    }
    return out;
}
} // namespace detail

// Writes the header of version V for the client flow FORWARD (client -> published address, as
// received) into OUT (proxy_header_max_len bytes); returns its length, 0 for `off`.
inline uint32_t proxy_header_write(proxy_protocol v, const flow_key &forward, uint8_t *out)
{
    if (v == proxy_protocol::v1) {
        uint8_t *p = out;
        std::memcpy(p, "PROXY TCP4 ", 11);
        p = detail::write_ipv4(p + 11, forward.src_ip);
        *p++ = ' ';
        p = detail::write_ipv4(p, forward.dst_ip);
        *p++ = ' ';
        p = detail::write_decimal(p, rte_be_to_cpu_16(forward.src_port));
        *p++ = ' ';
        p = detail::write_decimal(p, rte_be_to_cpu_16(forward.dst_port));
        *p++ = '\r';
        *p++ = '\n';
        return static_cast<uint32_t>(p - out);
    }
    if (v == proxy_protocol::v2) {
        static constexpr uint8_t signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
        std::memcpy(out, signature, sizeof signature);
        out[12] = 0x21; // version 2, PROXY
        out[13] = 0x11; // AF_INET, STREAM
        out[14] = 0;
        out[15] = 12; // the address block's length
        std::memcpy(out + 16, &forward.src_ip, 4);
        std::memcpy(out + 20, &forward.dst_ip, 4);
        std::memcpy(out + 24, &forward.src_port, 2);
        std::memcpy(out + 26, &forward.dst_port, 2);
        return proxy_v2_len;
    }
    return 0;
}

// The length of that header: what a connection keeps (connection::proxy_len).
inline uint8_t proxy_header_length(proxy_protocol v, const flow_key &forward)
{
    uint8_t header[proxy_header_max_len];
    return static_cast<uint8_t>(proxy_header_write(v, forward, header));
}

// Where the header sits in the task's view of the client's stream.
struct proxy_span {
    uint32_t start; // the client's ISN + 1
    uint32_t len;   // header bytes

    uint32_t end() const { return start + len; }
    // The client's sequence number S (at or after start) as the task sees it.
    uint32_t to_task(uint32_t s) const { return s + len; }
    // A point A of the task's view (an ack, a SACK edge) as the client knows it.
    uint32_t to_client(uint32_t a) const
    {
        if (seq_at_or_after(a, end())) return a - len;
        return seq_at_or_after(a, start) ? start : a;
    }
};

inline proxy_span span_of(const connection &c)
{
    return {c.proxy_start, c.proxy_len};
}

// What the client -> task rewrite did.
enum class proxy_step : uint8_t {
    none,     // the SYN, or a segment before the stream
    shifted,  // its sequence number moved by the header's length
    inserted, // it carries the header (in front of its data, if any)
    no_room,  // it should carry the header and the buffer has no room: drop it
};

// A client's TCP segment of connection C (which has a header), before NAT: IP and TCP point into
// M at its Ethernet header + 14; both move when the header is inserted (the headers in front of
// it move toward the headroom, keeping ROOM_AFTER bytes of headroom for the encapsulation).
inline proxy_step proxy_to_task(rte_mbuf *m, rte_ipv4_hdr *&ip, rte_tcp_hdr *&tcp, connection &c,
                                uint32_t room_after)
{
    const uint8_t flags = tcp->tcp_flags;
    if (flags & tcp_flag::syn) return proxy_step::none;
    const proxy_span span = span_of(c);
    const uint32_t seq = rte_be_to_cpu_32(tcp->sent_seq);
    const bool at_start = seq == span.start;
    const bool acked = c.proxy_acked.load(std::memory_order_relaxed) != 0;
    if (at_start && !acked) {
        // A RST before the task has the header keeps its number: the task expects `start`.
        if (flags & tcp_flag::rst) return proxy_step::none;
        if (!(flags & tcp_flag::ack)) return proxy_step::none;
        uint8_t header[proxy_header_max_len];
        const uint32_t len = proxy_header_write(proxy_protocol(c.proxy_version), c.forward, header);
        const uint32_t ip_len = rte_ipv4_hdr_len(ip);
        const uint32_t tcp_len = (tcp->data_off >> 4) * 4u;
        const uint32_t l3_len = rte_be_to_cpu_16(ip->total_length);
        const uint32_t front = sizeof(rte_ether_hdr) + ip_len + tcp_len;
        const uint32_t payload_len = l3_len - ip_len - tcp_len;
        if (len != span.len || m->nb_segs != 1 || rte_pktmbuf_headroom(m) < len + room_after ||
            rte_pktmbuf_data_len(m) < front + payload_len)
            return proxy_step::no_room;
        uint8_t *old_front = rte_pktmbuf_mtod(m, uint8_t *);
        // The payload's words shift by LEN bytes: its share of the checksum is taken out here and
        // the header's and payload's put back below, so a segment that arrived with a bad
        // checksum still has one.
        const uint16_t old_payload = csum_raw(old_front + front, payload_len);
        auto *new_front = reinterpret_cast<uint8_t *>(rte_pktmbuf_prepend(m, uint16_t(len)));
        std::memmove(new_front, old_front, front);
        std::memcpy(new_front + front, header, len);
        ip = reinterpret_cast<rte_ipv4_hdr *>(new_front + sizeof(rte_ether_hdr));
        tcp = reinterpret_cast<rte_tcp_hdr *>(new_front + sizeof(rte_ether_hdr) + ip_len);
        const uint16_t new_payload = csum_raw(new_front + front, len + payload_len);
        const rte_be16_t old_total = ip->total_length;
        const rte_be16_t new_total = rte_cpu_to_be_16(uint16_t(l3_len + len));
        ip->total_length = new_total;
        ip->hdr_checksum = csum_update16(ip->hdr_checksum, old_total, new_total);
        csum_delta d;
        d.replace16(rte_cpu_to_be_16(uint16_t(l3_len - ip_len)),
                    rte_cpu_to_be_16(uint16_t(l3_len - ip_len + len))); // pseudo-header length
        d.sum += static_cast<uint16_t>(~old_payload) + uint32_t{new_payload};
        tcp->cksum = csum_apply(tcp->cksum, d);
        return proxy_step::inserted;
    }
    if (!seq_at_or_after(seq, span.start)) return proxy_step::none;
    const rte_be32_t shifted = rte_cpu_to_be_32(span.to_task(seq));
    tcp->cksum = csum_update32(tcp->cksum, tcp->sent_seq, shifted);
    tcp->sent_seq = shifted;
    return proxy_step::shifted;
}

namespace detail
{

inline uint32_t load_be32(const uint8_t *p)
{
    uint32_t v;
    std::memcpy(&v, p, 4);
    return rte_be_to_cpu_32(v);
}

inline void store_be32(uint8_t *p, uint32_t v)
{
    const uint32_t be = rte_cpu_to_be_32(v);
    std::memcpy(p, &be, 4);
}

// The task's options as the client must see them: the SYN-ACK's MSS LEN smaller, SACK edges
// mapped back, blocks within the header gone (NOPs keep the option area's length).
inline void proxy_options_to_client(uint8_t *opt, uint32_t opt_len, const proxy_span &span,
                                    bool syn)
{
    tcp_option::for_each(opt, opt_len, [&](uint8_t kind, uint8_t *at, uint32_t len) {
        if (kind == tcp_option::mss && len == 4 && syn) {
            uint16_t mss;
            std::memcpy(&mss, at + 2, 2);
            const uint32_t host = rte_be_to_cpu_16(mss);
            mss = rte_cpu_to_be_16(uint16_t(host > span.len + 64 ? host - span.len : 64));
            std::memcpy(at + 2, &mss, 2);
        } else if (kind == tcp_option::sack && len >= 10 && (len - 2) % 8 == 0) {
            uint32_t kept = 0;
            for (uint32_t b = 0; b < (len - 2) / 8; ++b) {
                const uint8_t *block = at + 2 + b * 8;
                const uint32_t left = load_be32(block), right = load_be32(block + 4);
                if (!seq_at_or_after(right, span.end() + 1) && seq_at_or_after(right, span.start))
                    continue; // wholly within the header: nothing of the client's
                uint8_t *to = at + 2 + kept * 8;
                store_be32(to, span.to_client(left));
                store_be32(to + 4, span.to_client(right));
                ++kept;
            }
            if (kept == 0) {
                std::memset(at, tcp_option::nop, len);
            } else {
                at[1] = uint8_t(2 + kept * 8);
                std::memset(at + 2 + kept * 8, tcp_option::nop, len - 2 - kept * 8);
            }
        }
    });
}
} // namespace detail

// A task's TCP segment of connection C (which has a header), before NAT: its ack and SACK edges
// mapped back into the client's numbers, the SYN-ACK's MSS made room for the header; notes when
// the task has the whole header.
inline void proxy_to_client(rte_tcp_hdr *tcp, connection &c)
{
    const uint8_t flags = tcp->tcp_flags;
    if (!(flags & tcp_flag::ack)) return;
    const proxy_span span = span_of(c);
    const uint32_t ack = rte_be_to_cpu_32(tcp->recv_ack);
    if (seq_at_or_after(ack, span.end()) && c.proxy_acked.load(std::memory_order_relaxed) == 0)
        c.proxy_acked.store(1, std::memory_order_relaxed);
    const rte_be32_t mapped = rte_cpu_to_be_32(span.to_client(ack));
    tcp->cksum = csum_update32(tcp->cksum, tcp->recv_ack, mapped);
    tcp->recv_ack = mapped;
    const uint32_t opt_len = (tcp->data_off >> 4) * 4u - sizeof(rte_tcp_hdr);
    if (opt_len == 0) return;
    // Options start at an even offset of the header: their sum before and after is the delta.
    auto *opt = reinterpret_cast<uint8_t *>(tcp + 1);
    const uint16_t before = csum_raw(opt, opt_len);
    detail::proxy_options_to_client(opt, opt_len, span, (flags & tcp_flag::syn) != 0);
    tcp->cksum = csum_after_edit(tcp->cksum, before, opt, opt_len);
}

} // namespace meshgate::dataplane
