// The configuration as the workers see it: one immutable, flat snapshot compiled by the control
// thread (control/tables_build.cpp) and swapped with RCU on reload. Addresses in network order.
#pragma once

#include <array>
#include <cstdint>

#include <rte_byteorder.h>
#include <rte_ether.h>

#include "dataplane/counters.h"

namespace meshgate::dataplane {

struct gateway_port {
    uint16_t port_id = 0;        // DPDK port id
    bool external = false;       // clients reach published ports here
    bool underlay = false;       // VXLAN to the swarm nodes leaves here
    rte_be32_t address = 0;      // the gateway's address on this link
    rte_be32_t netmask = 0;
    rte_be32_t gateway = 0;      // next hop off the subnet; 0 = none
    uint16_t mtu = 1500;
    rte_ether_addr mac{};
};

struct dataplane_tables {
    uint16_t port_count = 0;
    std::array<gateway_port, max_ports> ports{};   // indexed by gateway port index (config order)

    // Next hop toward DST out of PORT, or 0 when that port cannot reach it.
    rte_be32_t next_hop(uint16_t port, rte_be32_t dst) const
    {
        const gateway_port &p = ports[port];
        return ((dst ^ p.address) & p.netmask) == 0 ? dst : p.gateway;
    }

    // Is DST one of the gateway's own port addresses?
    bool is_port_address(rte_be32_t dst) const
    {
        for (uint16_t i = 0; i < port_count; ++i)
            if (ports[i].address == dst)
                return true;
        return false;
    }
};

} // namespace meshgate::dataplane
