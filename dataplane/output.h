// Leaving the gateway: deliver() carries out a packet's verdict (the one place that frees and
// counts drops and hands packets to TX), with TX buffering per port, next-hop resolution
// through the neighbor table and the short wait for ARP.
#pragma once

#include "dataplane/pipeline.h"
#include "dataplane/worker.h"

namespace meshgate::dataplane
{

// What V says of M: counted and freed, queued for TX as it is, or routed to its next hop
// (which may park it while ARP resolves). Also the way out for packets the gateway makes.
void deliver(worker &w, const dataplane_tables &t, rte_mbuf *m, const verdict &v);

// Sends PORT's buffered frames; what the queue refuses is dropped as tx_full.
void tx_flush(worker &w, uint16_t port);

// Sends every buffered packet and retries or expires packets waiting on ARP.
void flush_and_service(worker &w, const dataplane_tables &t, uint64_t now);

// Frees what the reassembly table let go (incomplete in time, table full, bad overlap),
// counted as `fragment`.
void free_dropped_fragments(worker &w);

// Drops everything still held (at shutdown), incomplete datagrams included.
void release_all(worker &w);

} // namespace meshgate::dataplane
