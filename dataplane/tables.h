// The configuration as the workers see it: one immutable, flat snapshot compiled by the control
// thread (control/api/tables_build.cpp) and swapped with RCU on reload. Addresses in network order.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_ether.h>

#include "dataplane/counters.h"
#include "dataplane/proxy_protocol.h"
#include "dataplane/rate_limit.h"
#include "dataplane/scheduler.h"
#include "dataplane/syn_cookie_kind.h"
#include "dataplane/timeouts.h"
#include "dataplane/vxlan.h"

namespace meshgate::dataplane
{

struct gateway_port {
    uint16_t port_id = 0;   // DPDK port id
    bool external = false;  // clients reach published ports here
    bool underlay = false;  // VXLAN to the swarm nodes leaves here
    rte_be32_t address = 0; // the gateway's address on this link
    rte_be32_t netmask = 0;
    rte_be32_t gateway = 0; // next hop off the subnet; 0 = none
    uint16_t mtu = 1500;
    rte_ether_addr mac{};
};

inline constexpr uint16_t no_listener = UINT16_MAX;

// One [[service.port]]: where a published port leads.
struct listener {
    uint16_t service = 0;        // service id: index into dataplane_tables::services
    rte_be16_t target_port = 0;  // the port the tasks listen on
    rte_be32_t address = 0;      // the service's own address; 0 = any external address
    uint16_t next = no_listener; // next listener on the same protocol and published port
};

struct node_entry {
    rte_be32_t vtep = 0; // the node's VXLAN tunnel endpoint
    uint16_t port = 0;   // underlay gateway port that reaches it
    vxlan_tunnel tunnel; // outer headers, prebuilt
};

// IPv4 address -> a 16-bit index, open addressing at most half full: what an address is to
// the gateway in a load or two (a VTEP's node, for every packet from the underlay; a
// destination's port or routed service address, for every packet).
class address_map
{
  public:
    static constexpr uint16_t none = UINT16_MAX;

    // Control thread: the first index given for an address wins.
    void build(const std::vector<std::pair<rte_be32_t, uint16_t>> &entries)
    {
        size_t n = 16;
        while (n < 2 * entries.size())
            n <<= 1;
        slots_.assign(n, slot{});
        mask_ = static_cast<uint32_t>(n - 1);
        for (const auto &[address, index] : entries) {
            uint32_t at = home(address);
            while (slots_[at].index != none && slots_[at].address != address)
                at = (at + 1) & mask_;
            if (slots_[at].index == none) slots_[at] = {address, index};
        }
    }
    uint16_t find(rte_be32_t address) const
    {
        for (uint32_t at = home(address);; at = (at + 1) & mask_) {
            const slot &s = slots_[at];
            if (s.index == none || s.address == address) return s.index;
        }
    }

  private:
    struct slot {
        rte_be32_t address = 0;
        uint16_t index = none;
    };
    uint32_t home(rte_be32_t address) const { return (address * 0x9e3779b1u) >> 16 & mask_; }
    std::vector<slot> slots_ = std::vector<slot>(16);
    uint32_t mask_ = 15;
};

inline constexpr uint16_t no_node = address_map::none;
// local_addresses: a [[service]] address that no port holds, routed to the gateway.
inline constexpr uint16_t routed_address = address_map::none - 1;

// What a task id names in one snapshot.
enum class task_state : uint8_t {
    absent,  // nothing, or a task that has ended: packets of its connections are task_gone
    serving, // in its service's scheduler (weight 0 = drain: no new connections)
    removed, // left the config less than removed_task_grace ago: its connections go on
};

struct task_entry {
    rte_be32_t address = 0; // on the ingress network
    uint16_t node = 0;      // index into dataplane_tables::nodes
    uint16_t service = 0;   // its service's id
    rte_ether_addr mac{};   // inner destination MAC
    task_state state = task_state::absent;
};

// A service that listeners lead to; picks return task ids.
struct service_entry {
    uint32_t persistence_timeout = 0; // seconds of client-address affinity; 0 = off
    rate_limit new_connections;       // max_new_connections_per_second, this worker's share
    std::shared_ptr<const service_scheduler>
        scheduler;                              // shared with snapshots it did not change in
    proxy_protocol proxy = proxy_protocol::off; // the header its new TCP connections' tasks get
};

// A gateway of the cluster whose addresses this one took over when it died: its underlay
// address is the cluster port's in local_addresses (ARP answered, its tunnel traffic taken),
// and the replies its tasks send to its overlay MAC and SNAT addresses are taken like ours.
struct adopted_gateway {
    rte_be32_t underlay = 0;
    rte_ether_addr overlay_mac{};
    std::vector<rte_be32_t> snat_addresses;
};

struct dataplane_tables {
    uint16_t port_count = 0;
    std::array<gateway_port, max_ports> ports{}; // indexed by gateway port index (config order)

    // The ingress overlay network.
    uint32_t vni = 4096;
    rte_be16_t vxlan_port = RTE_BE16(4789);
    rte_be32_t overlay_address = 0;
    rte_ether_addr overlay_mac{};
    std::vector<rte_be32_t> snat_addresses; // overlay_address first, then [overlay] snat_addresses

    // Published-port match in one load: [tcp, udp][published port] -> first listener.
    std::array<std::array<uint16_t, 65536>, 2> published;
    std::vector<listener> listeners;
    std::vector<service_entry> services; // by service id, service_id_capacity of them
    std::vector<task_entry> tasks;       // by task id, task_id_capacity of them
    std::vector<node_entry> nodes;
    address_map node_of_vtep; // VTEP -> node index, built from nodes
    // Destinations that are the gateway's: port address -> port index, routed service address
    // (a VIP the routers send here) -> routed_address.
    address_map local_addresses;

    // [limits], each worker's share of the gateway-wide rate.
    rate_limit icmp_errors;        // errors the gateway originates
    rate_limit tcp_resets;         // RSTs for segments to unpublished ports
    bool reset_unpublished = true; // send them at all
    syn_cookie_mode syn_cookies = syn_cookie_mode::off;
    siphash_key syn_cookie_secret;         // the same on every gateway of a group that shares it
    rate_limit arp_replies;                // answers to ARP requests for our addresses
    rate_limit new_connections_per_source; // new connections of one client address
    rate_limit kernel_packets;             // to a kernel interface, TCP SYNs aside
    rate_limit kernel_syns;                // TCP SYNs to a kernel interface

    // Moves when a snapshot ends tasks (absent now, not before) or shortens a timeout: each
    // worker then sweeps its connections for ones whose task has ended or that are past it.
    uint64_t sweep_epoch = 0;
    // [timeouts] with this snapshot: in the connection table before the snapshot is published,
    // so that the sweep it may start judges by them.
    conntrack_timeouts timeouts;

    // First listener for PROTO (IPPROTO_TCP or IPPROTO_UDP) and PORT (network order).
    uint16_t first_listener(uint8_t proto, rte_be16_t port) const
    {
        return published[proto == IPPROTO_UDP][rte_be_to_cpu_16(port)];
    }

    // Is A the broadcast address of a subnet the gateway is on (never a packet's true source)?
    bool is_subnet_broadcast(rte_be32_t a) const
    {
        for (uint16_t p = 0; p < port_count; ++p)
            if (ports[p].netmask != UINT32_MAX && (a | ports[p].netmask) == UINT32_MAX &&
                (a & ports[p].netmask) == (ports[p].address & ports[p].netmask))
                return true;
        return false;
    }

    // Is A the gateway's address (or one of its SNAT addresses) on the ingress network?
    bool is_overlay_address(rte_be32_t a) const
    {
        for (rte_be32_t s : snat_addresses)
            if (s == a) return true;
        return false;
    }

    std::vector<adopted_gateway> adopted; // dead peers' addresses, taken over
    // While the gateway joins its cluster: ARP for the cluster port's own address is answered
    // (by the workers, and by the kernel they copy it to) only for these peers, so that no node
    // sends replies here before the peers' connections are (joining_port: none when empty).
    std::vector<rte_be32_t> joining_peers;
    uint16_t joining_port = UINT16_MAX;

    bool withheld_arp(uint16_t port, rte_be32_t sender) const
    {
        if (port != joining_port) return false;
        for (rte_be32_t p : joining_peers)
            if (p == sender) return false;
        return true;
    }

    // Is a reply to MAC, ADDRESS on the overlay one for a dead peer we took over from?
    bool is_adopted(const rte_ether_addr &mac, rte_be32_t address) const
    {
        for (const adopted_gateway &g : adopted)
            if (rte_is_same_ether_addr(&g.overlay_mac, &mac))
                for (rte_be32_t s : g.snat_addresses)
                    if (s == address) return true;
        return false;
    }

    // Next hop toward DST out of PORT, or 0 when that port cannot reach it.
    rte_be32_t next_hop(uint16_t port, rte_be32_t dst) const
    {
        const gateway_port &p = ports[port];
        return ((dst ^ p.address) & p.netmask) == 0 ? dst : p.gateway;
    }
};

} // namespace meshgate::dataplane
