// Leaving the gateway: TX buffering per port, next-hop resolution through the neighbor table,
// and the short wait for ARP.
#pragma once

#include "dataplane/worker.h"

namespace meshgate::dataplane
{

// Sends PORT's buffered frames; what the queue refuses is dropped as tx_full.
void tx_flush(worker &w, uint16_t port);

// Queues a complete frame for PORT.
inline void tx_enqueue(worker &w, uint16_t port, rte_mbuf *m)
{
    tx_buffer &b = w.tx[port];
    b.packets[b.count++] = m;
    if (b.count == burst_size) tx_flush(w, port);
}

// Sends an IPv4 packet (M starts with room for its Ethernet header, already in place) out of
// PORT toward DST: fills the Ethernet addresses from the neighbor table, or parks it while ARP
// resolves the next hop.
void send_ipv4(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m, rte_be32_t dst);

void drop(worker &w, rte_mbuf *m, drop_reason r);

} // namespace meshgate::dataplane
