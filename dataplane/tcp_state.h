// TCP connection states as the gateway sees them from the middle, after IPVS
// (net/netfilter/ipvs/ip_vs_proto_tcp.c): the gateway is neither end, so the states only track
// enough of the handshake and close to pick a timeout and to recognise a port being reused.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace meshgate::dataplane
{

// Which way a packet goes through a connection: forward = client -> task (IPVS "input"),
// reverse = task -> client (IPVS "output").
enum class direction : uint8_t { forward = 0, reverse = 1 };

enum class tcp_state : uint8_t {
    none,        // created, no packet classified yet
    syn_sent,    // SYN seen from the task side only
    syn_recv,    // client SYN seen (state of every new connection)
    established, // handshake completed
    fin_wait,    // task sent FIN first
    close_wait,  // client sent FIN first
    last_ack,    // kept from IPVS; reached from nowhere in the table, kept for timeouts
    time_wait,   // both FINs seen
    close,       // RST seen (or FIN with no handshake)
    count
};

inline constexpr size_t tcp_state_count = static_cast<size_t>(tcp_state::count);

inline constexpr std::array<std::string_view, tcp_state_count> tcp_state_names = {
    "NONE",       "SYN_SENT", "SYN_RECV",  "ESTABLISHED", "FIN_WAIT",
    "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE",
};

inline constexpr std::string_view to_string(tcp_state s)
{
    return static_cast<size_t>(s) < tcp_state_count ? tcp_state_names[static_cast<size_t>(s)]
                                                    : std::string_view{"?"};
}

// TCP header flag bits (byte 13 of the header), the ones the state machine reads.
namespace tcp_flag
{
inline constexpr uint8_t fin = 0x01;
inline constexpr uint8_t syn = 0x02;
inline constexpr uint8_t rst = 0x04;
inline constexpr uint8_t ack = 0x10;

// FLAGS open a connection: a SYN without ACK or RST.
inline constexpr bool opens(uint8_t flags)
{
    return (flags & (syn | ack | rst)) == syn;
}
} // namespace tcp_flag

// TCP option kinds (RFC 9293, 7323, 2018) the gateway reads or writes.
namespace tcp_option
{
inline constexpr uint8_t end = 0, nop = 1, mss = 2, wscale = 3, sack_permitted = 4, sack = 5;

// Calls visit(kind, at, len) for each option of the OPT_LEN bytes at OPT (a TCP header's
// options), AT its first byte and LEN its whole length (kind and length bytes included); stops at
// the end option or at the first malformed one (a length under 2 or past the area).
template <typename Byte, typename Visit>
inline void for_each(Byte *opt, uint32_t opt_len, Visit visit)
{
    for (uint32_t i = 0; i < opt_len;) {
        const uint8_t kind = opt[i];
        if (kind == end) return;
        if (kind == nop) {
            ++i;
            continue;
        }
        if (i + 1 >= opt_len || opt[i + 1] < 2 || i + opt[i + 1] > opt_len) return;
        const uint32_t len = opt[i + 1];
        visit(kind, opt + i, len);
        i += len;
    }
}
} // namespace tcp_option

namespace tcp_state_detail
{

// Events in IPVS priority order: RST beats SYN beats FIN beats ACK (tcp_state_idx()).
enum event : uint8_t { ev_syn, ev_fin, ev_ack, ev_rst, ev_count, ev_none = ev_count };

inline constexpr event classify(uint8_t flags)
{
    if (flags & tcp_flag::rst) return ev_rst;
    if (flags & tcp_flag::syn) return ev_syn;
    if (flags & tcp_flag::fin) return ev_fin;
    if (flags & tcp_flag::ack) return ev_ack;
    return ev_none;
}

using S = tcp_state;
inline constexpr S sNO = S::none, sSS = S::syn_sent, sSR = S::syn_recv, sES = S::established,
                   sFW = S::fin_wait, sCW = S::close_wait, sLA = S::last_ack, sTW = S::time_wait,
                   sCL = S::close;

// [direction][event][current state] -> next state. Columns in enum order; same transitions as
// IPVS's INPUT/OUTPUT tables minus LISTEN/SYNACK (we have no server-side listen state).
// Differences: forward ACK on NONE -> CLOSE (never establish without a SYN; IPVS varies by
// version).
// clang-format off
inline constexpr S table[2][ev_count][tcp_state_count] = {
    {
        // forward (client -> task)
        //      NO   SS   SR   ES   FW   CW   LA   TW   CL
        /*syn*/ {sSR, sES, sSR, sES, sSR, sSR, sSR, sSR, sSR},
        /*fin*/ {sCL, sSS, sTW, sCW, sTW, sCW, sLA, sTW, sCL},
        /*ack*/ {sCL, sSS, sES, sES, sFW, sCW, sCL, sTW, sCL},
        /*rst*/ {sCL, sCL, sSR, sCL, sCL, sCL, sLA, sCL, sCL},
    },
    {
        // reverse (task -> client); SYN+ACK counts as SYN
        //      NO   SS   SR   ES   FW   CW   LA   TW   CL
        /*syn*/ {sSS, sSS, sSR, sES, sSS, sSS, sSS, sSS, sSS},
        /*fin*/ {sTW, sSS, sTW, sFW, sFW, sTW, sLA, sTW, sCL},
        /*ack*/ {sES, sSS, sES, sES, sFW, sCW, sLA, sTW, sCL},
        /*rst*/ {sCL, sSS, sCL, sCL, sCL, sCL, sCL, sTW, sCL},
    },
};
// clang-format on

} // namespace tcp_state_detail

// The state after a packet with `flags` went through a connection in state `s` in direction
// `dir`. Pure: no side effects, usable in constant expressions. Packets without SYN/FIN/ACK/RST
// and out-of-range states leave the state unchanged.
inline constexpr tcp_state next_state(tcp_state s, direction dir, uint8_t flags)
{
    using namespace tcp_state_detail;
    const tcp_state_detail::event ev = classify(flags);
    if (ev == ev_none || static_cast<size_t>(s) >= tcp_state_count) return s;
    return table[static_cast<size_t>(dir)][ev][static_cast<size_t>(s)];
}

// A client SYN (no ACK, no RST) on a connection that is closing down means the client reuses
// its port: the caller must re-schedule instead of sending the SYN to the old task (moby#35082).
inline constexpr bool is_port_reuse(tcp_state s, direction dir, uint8_t flags)
{
    return dir == direction::forward &&
           (flags & (tcp_flag::syn | tcp_flag::ack | tcp_flag::rst)) == tcp_flag::syn &&
           (s == tcp_state::time_wait || s == tcp_state::close);
}

} // namespace meshgate::dataplane
