// SYN cookies: the sequence number of a SYN-ACK that carries what the gateway needs to open the
// connection later, so that a client's SYN costs no state until its ACK proves the client real.
//
// The cookie (our ISN) packs, high bits first:
//   [period:3][mss index:2][sack:1][wscale:4][mac:22]
// period = the low 3 bits of now / cookie_period_seconds; the options are the client's SYN's
// (wscale 15: it offered none); mac = the low 22 bits of SipHash-2-4 under the secret over the
// client's 4-tuple, its ISN, the whole period number and the options. A cookie is valid for the
// period it was made in and the one before (64-128 s), on every worker and every gateway that
// shares the secret: the ACK may come back through another one after an ECMP move.
// A forged ACK passes with probability 2^-22 per try (and the period and options must match).
// Timestamps are not encoded: a SYN-ACK answered with a cookie offers none (the connection runs
// without them, as Linux's cookies do when the client's SYN has no timestamp).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "dataplane/flow_key.h"
#include "dataplane/syn_cookie_kind.h"

namespace meshgate::dataplane
{

// SipHash-2-4 (Aumasson and Bernstein) of WORDS under a 128-bit key: a keyed PRF cheap enough
// for every SYN of a flood (~1 cycle per byte plus ~60), unlike a CRC, whose linearity gives the
// key away.
inline uint64_t siphash24(const siphash_key &key, const uint64_t *words, uint32_t n) noexcept
{
    auto rotl = [](uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
    uint64_t v0 = 0x736f6d6570736575ULL ^ key.k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ key.k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ key.k0;
    uint64_t v3 = 0x7465646279746573ULL ^ key.k1;
    auto round = [&] {
        v0 += v1;
        v1 = rotl(v1, 13);
        v1 ^= v0;
        v0 = rotl(v0, 32);
        v2 += v3;
        v3 = rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = rotl(v1, 17);
        v1 ^= v2;
        v2 = rotl(v2, 32);
    };
    for (uint32_t i = 0; i < n; i++) {
        v3 ^= words[i];
        round();
        round();
        v0 ^= words[i];
    }
    const uint64_t last = uint64_t{n * 8} << 56; // the message's length in bytes, no tail
    v3 ^= last;
    round();
    round();
    v0 ^= last;
    v2 ^= 0xff;
    round();
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
}

// What a client's SYN asked for and its ACK cannot repeat.
struct syn_options {
    uint16_t mss = 536;  // the client's, rounded down to one of syn_cookie_mss
    uint8_t wscale = 15; // 0..14; 15: no window scaling
    bool sack = false;   // SACK permitted
    bool operator==(const syn_options &) const = default;
};

inline constexpr uint32_t cookie_period_seconds = 64;
// MSS values a cookie can say: the largest not above the client's is kept. 1410 fits a
// 1500-byte underlay under VXLAN (1450 inner MTU - 40).
inline constexpr std::array<uint16_t, 4> syn_cookie_mss = {536, 1220, 1360, 1410};
inline constexpr uint8_t no_wscale = 15;

namespace cookie_detail
{
constexpr uint32_t mac_bits = 22;
constexpr uint32_t mac_mask = (1u << mac_bits) - 1;

inline uint32_t options_bits(const syn_options &o) noexcept
{
    uint32_t mss_index = 0;
    for (uint32_t i = 0; i < syn_cookie_mss.size(); i++)
        if (syn_cookie_mss[i] <= o.mss) mss_index = i;
    const uint32_t wscale = o.wscale > 14 ? no_wscale : o.wscale;
    return mss_index << 5 | uint32_t{o.sack} << 4 | wscale;
}

inline uint32_t mac(const siphash_key &secret, const flow_key &forward, uint32_t client_isn,
                    uint32_t period, uint32_t options) noexcept
{
    const uint64_t words[3] = {
        uint64_t{forward.src_ip} << 32 | forward.dst_ip,
        uint64_t{forward.src_port} << 48 | uint64_t{forward.dst_port} << 32 | client_isn,
        uint64_t{period} << 32 | options,
    };
    return static_cast<uint32_t>(siphash24(secret, words, 3)) & mac_mask;
}
} // namespace cookie_detail

// Our ISN for the client's SYN (FORWARD as received, CLIENT_ISN host order) at NOW (seconds).
inline uint32_t syn_cookie_make(const siphash_key &secret, const flow_key &forward,
                                uint32_t client_isn, uint32_t now, const syn_options &o) noexcept
{
    const uint32_t period = now / cookie_period_seconds;
    const uint32_t options = cookie_detail::options_bits(o);
    return (period & 7) << 29 | options << cookie_detail::mac_bits |
           cookie_detail::mac(secret, forward, client_isn, period, options);
}

// The options a cookie says, unchecked: for a cookie its connection already proved.
inline syn_options syn_cookie_options(uint32_t cookie) noexcept
{
    const uint32_t options = cookie >> cookie_detail::mac_bits & 0x7f;
    return syn_options{.mss = syn_cookie_mss[options >> 5],
                       .wscale = static_cast<uint8_t>(options & 0xf),
                       .sack = (options >> 4 & 1) != 0};
}

// The options a cookie (the client's ACK's ack - 1) was made with, when it was made for this
// flow and client ISN (the ACK's seq - 1) by a holder of SECRET in this period or the one before.
inline std::optional<syn_options> syn_cookie_check(const siphash_key &secret,
                                                   const flow_key &forward, uint32_t client_isn,
                                                   uint32_t cookie, uint32_t now) noexcept
{
    const uint32_t options = cookie >> cookie_detail::mac_bits & 0x7f;
    const uint32_t current = now / cookie_period_seconds;
    for (uint32_t age = 0; age < 2; age++) {
        const uint32_t period = current - age;
        if ((period & 7) != cookie >> 29) continue;
        if (cookie_detail::mac(secret, forward, client_isn, period, options) !=
            (cookie & cookie_detail::mac_mask))
            return std::nullopt;
        return syn_cookie_options(cookie);
    }
    return std::nullopt;
}

} // namespace meshgate::dataplane
