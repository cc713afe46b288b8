// Packets for the gateway itself: ARP for its addresses, ICMP echo to them.
#pragma once

#include <optional>

#include <rte_ip.h>
#include <rte_tcp.h>

#include "dataplane/pipeline.h"
#include "dataplane/worker.h"

namespace meshgate::dataplane
{

// M is an ARP frame that arrived on PORT: a request for our address becomes its reply in place.
verdict arp_input(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m);

// Turns the ICMP echo request at IP (inside M, after its Ethernet header) into its reply in place,
// addressed back to the sender's MAC from OUR_MAC; otherwise says why it is dropped.
std::optional<drop_reason> echo_to_reply(rte_mbuf *m, rte_ipv4_hdr *ip,
                                         const rte_ether_addr &our_mac);

// The RST a host sends for a TCP segment to a port nobody listens on (RFC 793, "Reset
// Generation"), written over M in place: IPv4 and TCP headers without options or payload, back
// to the sender. False (M untouched) when the segment is a RST itself (never answered) or M is
// chained.
bool segment_to_reset(rte_mbuf *m, rte_ipv4_hdr *ip, const rte_tcp_hdr *tcp);

// M is a valid, unfragmented IPv4 ICMP packet to a gateway address; IP points into it.
verdict icmp_input(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                   rte_ipv4_hdr *ip);

} // namespace meshgate::dataplane
