// DPDK ports and the packet pool: opened once at start, closed at exit.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mempool.h>

#include "control/config/config.h"
#include "control/runtime/queue_plan.h"
#include "dataplane/worker.h"

namespace meshgate
{

struct opened_port {
    std::string name;   // [[port]].name
    std::string device; // [[port]].device
    uint16_t port_id = 0;
    rte_ether_addr mac{};
    int socket = 0;         // NUMA socket of the device
    bool multi_segs = true; // TX takes chained mbufs (RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
    // Its kernel interface ([[port]] kernel_interface, control/kernel/), once opened.
    uint16_t kernel_port_id = dataplane::no_kernel_interface;
};

// One packet pool per NUMA socket that has ports, RX queues filled from their socket's pool.
struct packet_pools {
    std::vector<std::pair<int, rte_mempool *>> by_socket;
    // The pool of SOCKET, else the first: what a worker of a socket without ports allocates from.
    rte_mempool *on(int socket) const;
};

// The NUMA socket of every [[port]]'s device, known once EAL has probed it; a device that does
// not say (most vdevs) counts as the control lcore's. Throws if a device is missing.
std::vector<int> port_sockets(const config::gateway_config &c);

// The packet pools of PLAN. control/config/memory.h gives their total size; on a multi-socket host
// each socket gets the share of its ports. Throws on failure.
packet_pools create_packet_pools(const config::gateway_config &c, const queue_plan &plan,
                                 std::span<const int> sockets_of_ports);

// A running port's MTU: applied, or taken without a device MTU (virtual devices: `note` says
// why), or refused by the driver (`note` says why).
struct mtu_result {
    bool ok;
    std::string note;
};
mtu_result set_port_mtu(const opened_port &p, uint16_t mtu);

// Configures and starts every [[port]]: the RX queues PLAN gives it and one TX queue per worker.
// Throws on failure; MTU or MAC settings the driver refuses are warnings.
std::vector<opened_port> open_ports(const config::gateway_config &c, const queue_plan &plan,
                                    std::span<const int> sockets_of_ports, uint16_t workers,
                                    const packet_pools &pools);

// Stops and closes the ports: drivers flush what they hold (net_pcap completes its file).
void close_ports(const std::vector<opened_port> &ports);

} // namespace meshgate
