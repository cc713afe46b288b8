// Incremental Internet checksum updates (RFC 1624): a rewrite touches a few header words, so the
// checksum is adjusted by their difference instead of being summed again over the whole packet.
//
// Every value here is a 16- or 32-bit word exactly as it sits in the packet (network byte order,
// rte_be16_t / rte_be32_t): the one's-complement sum does not depend on byte order (RFC 1071
// 2.(B)), so no byte swaps are needed as long as old and new words are taken the same way.
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_byteorder.h>

namespace meshgate::dataplane
{

// Folds a 32-bit accumulator into a 16-bit one's-complement sum (end-around carry).
inline uint16_t csum_fold(uint32_t sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16); // the first fold can carry once more
    return static_cast<uint16_t>(sum);
}

// The difference between the old and the new content of a packet, as a one's-complement sum of
// ~m + m' terms; one delta can be applied to several checksums (an address change moves both the
// IPv4 header checksum and the TCP/UDP pseudo-header).
struct csum_delta {
    uint32_t sum = 0; // unfolded: up to 2^16 terms of 16 bits fit before it could overflow

    void replace16(rte_be16_t old_word, rte_be16_t new_word)
    {
        sum += static_cast<uint16_t>(~old_word) + uint32_t{new_word};
    }
    void replace32(rte_be32_t old_word, rte_be32_t new_word)
    {
        sum += static_cast<uint16_t>(~old_word) + static_cast<uint16_t>(~old_word >> 16);
        sum += (new_word & 0xffff) + (new_word >> 16);
    }
    void add(const csum_delta &other) { sum += csum_fold(other.sum); }
};

// RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'): unlike eqn. 2 it never yields 0xFFFF where a full
// recompute would give 0x0000.
inline rte_be16_t csum_apply(rte_be16_t check, const csum_delta &delta)
{
    uint32_t sum = static_cast<uint16_t>(~check) + uint32_t{csum_fold(delta.sum)};
    return static_cast<rte_be16_t>(~csum_fold(sum));
}

inline rte_be16_t csum_update16(rte_be16_t check, rte_be16_t old_word, rte_be16_t new_word)
{
    csum_delta d;
    d.replace16(old_word, new_word);
    return csum_apply(check, d);
}

inline rte_be16_t csum_update32(rte_be16_t check, rte_be32_t old_word, rte_be32_t new_word)
{
    csum_delta d;
    d.replace32(old_word, new_word);
    return csum_apply(check, d);
}

// UDP over IPv4: a checksum of 0 means the sender computed none, so it stays 0 (RFC 768); a
// computed 0 is sent as 0xFFFF, its other one's-complement form. Both are selects, not branches.
inline rte_be16_t udp_csum_apply(rte_be16_t check, const csum_delta &delta)
{
    rte_be16_t updated = csum_apply(check, delta);
    updated = updated == 0 ? static_cast<rte_be16_t>(0xffff) : updated;
    return check == 0 ? check : updated;
}

inline rte_be16_t udp_csum_update16(rte_be16_t check, rte_be16_t old_word, rte_be16_t new_word)
{
    csum_delta d;
    d.replace16(old_word, new_word);
    return udp_csum_apply(check, d);
}

inline rte_be16_t udp_csum_update32(rte_be16_t check, rte_be32_t old_word, rte_be32_t new_word)
{
    csum_delta d;
    d.replace32(old_word, new_word);
    return udp_csum_apply(check, d);
}

// SUM plus the one's-complement sum of LEN bytes at DATA, unfolded: 64-bit words as they lie in
// memory (the sum is byte-order neutral) with their carries added back, then a 32- and a 16-bit
// word and an odd byte padded with zero (RFC 1071). A 16-bit loop (rte_raw_cksum()) was 3% of
// the forward path's cycles and a third of a cookie's SYN-ACK (perf record); this one takes 18
// cycles for a 32-byte TCP header where that took 25.
inline uint64_t csum_add(uint64_t sum, const void *data, uint32_t len)
{
    const auto *p = static_cast<const uint8_t *>(data);
    uint64_t carries = 0;
    auto add = [&](uint64_t word) {
        sum += word;
        carries += sum < word;
    };
    // The next word of WORD's width, as it lies in memory.
    auto take = [&](auto word) {
        std::memcpy(&word, p, sizeof word);
        add(word);
        p += sizeof word;
        len -= sizeof word;
    };
    while (len >= 8)
        take(uint64_t{});
    if (len >= 4) take(uint32_t{});
    if (len >= 2) take(uint16_t{});
    if (len != 0) { // an odd byte, padded with zero in memory: byte-order neutral too
        const uint8_t last[2] = {p[0], 0};
        uint16_t word;
        std::memcpy(&word, last, 2);
        add(word);
    }
    sum += carries;               // each 2^64 carried out is 1 in one's complement
    return sum + (sum < carries); // and so is this addition's own carry, if any
}

// A 64-bit accumulator (csum_add()) folded to 16 bits.
inline uint16_t csum_fold64(uint64_t sum)
{
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffffffff) + (sum >> 32);
    return csum_fold(static_cast<uint32_t>(sum));
}

// Full one's-complement sum of LEN bytes at DATA (not inverted), for headers built from scratch
// and for checks (0xFFFF over a header with a right checksum).
inline uint16_t csum_raw(const void *data, uint32_t len)
{
    return csum_fold64(csum_add(0, data, len));
}

// CHECK after the LEN bytes at DATA were edited in place, their sum before the edit BEFORE
// (csum_raw()); DATA starts at an even offset of what CHECK covers (a TCP header's options do).
inline rte_be16_t csum_after_edit(rte_be16_t check, uint16_t before, const void *data, uint32_t len)
{
    const uint16_t after = csum_raw(data, len);
    if (before == after) return check;
    csum_delta d;
    d.sum += static_cast<uint16_t>(~before) + uint32_t{after};
    return csum_apply(check, d);
}

} // namespace meshgate::dataplane
