// A flow as received, and its hash: what the connection table is keyed by.
#pragma once

#include <cstdint>

#include <rte_hash_crc.h>

namespace meshgate::dataplane
{

// IPv4 5-tuple as received; every field in network byte order; pad must be zero (it is hashed).
struct flow_key {
    uint32_t src_ip;
    uint32_t dst_ip;
    uint16_t src_port;
    uint16_t dst_port;
    uint8_t proto; // IPPROTO_TCP or IPPROTO_UDP
    uint8_t pad[3];
};
static_assert(sizeof(flow_key) == 16);

inline constexpr flow_key make_flow_key(uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                                        uint16_t dst_port, uint8_t proto)
{
    return flow_key{src_ip, dst_ip, src_port, dst_port, proto, {0, 0, 0}};
}

inline constexpr bool operator==(const flow_key &a, const flow_key &b)
{
    return a.src_ip == b.src_ip && a.dst_ip == b.dst_ip && a.src_port == b.src_port &&
           a.dst_port == b.dst_port && a.proto == b.proto;
}

// CRC32-C of the key (SSE4.2): computed once per packet, it serves the lookup, the creation and
// the VXLAN source port.
using flow_key_hash = uint32_t;

inline flow_key_hash hash_flow(const flow_key &key) noexcept
{
    return rte_hash_crc(&key, sizeof key, 0);
}

} // namespace meshgate::dataplane
