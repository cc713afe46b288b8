// DPDK ports and the packet pool: opened once at start, closed at exit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mempool.h>

#include "control/config.h"

namespace meshgate
{

struct opened_port {
    std::string name;   // [[port]].name
    std::string device; // [[port]].device
    uint16_t port_id = 0;
    rte_ether_addr mac{};
};

// The packet pool for the configured ports and workers (control/memory.h). Throws on failure.
rte_mempool *create_packet_pool(const config::gateway_config &c);

// A running port's MTU: applied, or taken without a device MTU (virtual devices: `note` says
// why), or refused by the driver (`note` says why).
struct mtu_result {
    bool ok;
    std::string note;
};
mtu_result set_port_mtu(const opened_port &p, uint16_t mtu);

// Configures and starts every [[port]] with QUEUES RX/TX queue pairs. Throws on failure; MTU or
// MAC settings the driver refuses are warnings.
std::vector<opened_port> open_ports(const config::gateway_config &c, uint16_t queues,
                                    rte_mempool *pool);

// Stops and closes the ports: drivers flush what they hold (net_pcap completes its file).
void close_ports(const std::vector<opened_port> &ports);

} // namespace meshgate
