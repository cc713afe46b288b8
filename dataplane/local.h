// Packets for the gateway itself: ARP for its addresses, ICMP echo to them.
#pragma once

#include <rte_ip.h>

#include "dataplane/worker.h"

namespace meshgate::dataplane
{

// M is an ARP frame that arrived on PORT.
void arp_input(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m);

// M is a valid, unfragmented IPv4 ICMP packet to a gateway address; IP points into it.
void icmp_input(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m, rte_ipv4_hdr *ip);

} // namespace meshgate::dataplane
