// The burst pipeline (worker.cpp process_burst()), in the way of DPDK's l3fwd_em_hlm.h and
// VPP's nodes: stages run over the whole burst, and each packet ends with a verdict that one
// place, deliver() (output.cpp), carries out.
//
//   classify   every packet: Ethernet, ARP, IPv4, ICMP, VXLAN decap; local answers and drops get
//              their verdict here; TCP/UDP of the mesh get a connection key and its hash
//   lookup     one bulk lookup of every key with the hashes above (the same hash then creates
//              connections and picks the VXLAN source port); it reads the hits' slots
//   mesh       forward (client -> task: schedule, NAT, VXLAN), reverse (task -> client), and
//              ICMP, which may quote a connection; in packet order
//   deliver    drop (count, free), queue a frame, or route an IPv4 packet to its next hop
#pragma once

#include <cstdint>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "dataplane/conntrack.h"
#include "dataplane/counters.h"

namespace meshgate::dataplane
{

enum class next : uint8_t {
    drop,   // free it, counted under `reason`
    frame,  // a complete Ethernet frame: queue it on `port` as it is (ARP and echo replies)
    route,  // an IPv4 packet, room for Ethernet in front: to `dst` out of `port`, via ARP
    taken,  // a stage passed it on in another form (fragments): nothing more to do
    spent,  // it did its job here (an ARP reply we learned from): free it, no drop to count
    kernel, // for the host: to `port`'s kernel interface (dataplane/kernel_path.h)
};

struct verdict {
    next action = next::drop;
    drop_reason reason = drop_reason::malformed;
    uint16_t port = 0;
    rte_be32_t dst = 0;
};

inline constexpr verdict drop_as(drop_reason r)
{
    return {next::drop, r, 0, 0};
}
inline constexpr verdict send_frame(uint16_t port)
{
    return {next::frame, drop_reason::malformed, port, 0};
}
inline constexpr verdict route_to(uint16_t port, rte_be32_t dst)
{
    return {next::route, drop_reason::malformed, port, dst};
}
inline constexpr verdict taken()
{
    return {next::taken, drop_reason::malformed, 0, 0};
}
inline constexpr verdict to_kernel_interface(uint16_t port)
{
    return {next::kernel, drop_reason::malformed, port, 0};
}
inline constexpr verdict spent()
{
    return {next::spent, drop_reason::malformed, 0, 0};
}

// Which stage takes a packet after the lookup. The stages run in the order of the packets, so
// that one sees what an earlier packet of its burst did (a SYN's connection, say).
enum class mesh_stage : uint8_t {
    none,        // its verdict is set
    forward,     // a client's packet to a published address: `key` is the forward key
    reverse,     // a task's reply out of the tunnel (decapsulated): `key` is the reverse key
    client_icmp, // ICMP to a gateway address: an error about a connection, or a ping
    tunnel_icmp, // ICMP from the tunnel (decapsulated): an error about a connection, or a ping
};

// One packet's way through the pipeline. The fields a stage sets before its own use (from
// tcp_flags to key: to_lookup_stage(), and ip for ICMP) have no initializer, so that a burst's
// states are not zeroed whole (a 2.3 KB memset per burst, 4% of the forward path's cycles).
struct packet_state {
    verdict v;
    mesh_stage stage = mesh_stage::none;
    uint8_t tcp_flags;
    rte_ipv4_hdr *ip;   // the packet's IPv4 header (the inner one for reverse)
    uint8_t *l4;        // its TCP or UDP header
    flow_key_hash hash; // of `key`: lookup, create, VXLAN source port
    flow_key key;
    rte_be32_t vtep = 0; // reverse: the tunnel's source
    conn_ref ref{};
    rte_mbuf *reassembled = nullptr; // the whole datagram its fragment completed: it replaces it
};

} // namespace meshgate::dataplane
