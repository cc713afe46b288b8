// Hashes that pick a task for a new connection. Fixed seeds: every gateway and every run computes
// the same value for the same client, so a flow lands on the same task behind any gateway.
#pragma once

#include <cstdint>

namespace meshgate::dataplane
{

// Murmur3's 64-bit finalizer: a bijection with full avalanche, ~10 cycles, no table.
inline constexpr uint64_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

// Seeds are part of the wire contract between gateways: changing one moves every flow.
inline constexpr uint64_t flow_hash_seed = 0x6d657368676174e1ULL;    // "meshgat" + 0xe1
inline constexpr uint64_t address_hash_seed = 0x9e3779b97f4a7c15ULL; // golden ratio
inline constexpr uint64_t maglev_offset_seed = 0x2545f4914f6cdd1dULL;
inline constexpr uint64_t maglev_skip_seed = 0x8cb92ba72f3d8dd7ULL;

// Client address and port, both in host byte order: the key of Maglev and the other
// per-connection schedulers.
inline constexpr uint32_t flow_hash(uint32_t client_ip, uint16_t client_port)
{
    uint64_t key = (uint64_t{client_ip} << 16) | client_port;
    return static_cast<uint32_t>(mix64(key ^ flow_hash_seed) >> 32);
}

// Client address alone (host byte order): source hashing keeps a client on one task across
// its connections.
inline constexpr uint32_t address_hash(uint32_t client_ip)
{
    return static_cast<uint32_t>(mix64(uint64_t{client_ip} ^ address_hash_seed) >> 32);
}

// A task's stable 64-bit identity from its address on the ingress network (host byte order)
// and target port: the same task gets the same Maglev permutation on every gateway.
inline constexpr uint64_t task_identity(uint32_t task_ip, uint16_t target_port = 0)
{
    return mix64((uint64_t{task_ip} << 16 | target_port) ^ address_hash_seed);
}

} // namespace meshgate::dataplane
