// The DPDK memory the gateway takes, from its configuration: the sizes ports.cpp and gateway.cpp
// create, and their sum that validation checks against [dpdk] memory_mb.
#pragma once

#include <cstdint>

#include "control/config/config.h"

namespace meshgate
{

// The fewest mbufs the packet pool may have: every RX and TX descriptor of every queue, plus
// what the workers hold (bursts, TX buffers, ARP waits, segments held for a cookie's
// connection) and the per-lcore caches.
uint32_t packet_pool_minimum(const config::gateway_config &c);
// Mbufs of the packet pool: [dpdk] mbufs, else the minimum.
uint32_t packet_pool_size(const config::gateway_config &c);
inline constexpr uint32_t packet_pool_cache = 256;
// RX and TX descriptors of each queue of a kernel interface (a TAP: an RX queue holds that many
// mbufs).
inline constexpr uint16_t kernel_interface_descriptors = 512;

// Data room of each mbuf: a frame of the largest MTU plus the VXLAN encapsulation in one segment.
uint16_t packet_data_room(const config::gateway_config &c);

// Fragments' payload references (indirect mbufs, no data room).
inline constexpr uint32_t indirect_pool_size = 8191;

// Worker lcores: every [dpdk] lcore but the first.
uint16_t worker_count(const config::gateway_config &c);

// What EAL, the drivers' rings and queues and our small objects take besides the pools and the
// connection table (measured: under 20 MiB with two ports and one worker).
inline constexpr uint64_t dpdk_base_bytes = 48ull << 20;

// Everything above, in bytes: what [dpdk] memory_mb must hold.
uint64_t dpdk_memory_needed(const config::gateway_config &c);

} // namespace meshgate
