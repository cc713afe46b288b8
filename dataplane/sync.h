// The workers' side of the cluster's connection sync (control/cluster/): changes of this
// gateway's connections go to the control thread, which tells the peers; connections the peers
// told of come back from it and are installed in the owner's hash as the peer's.
//
// Both directions are one rte_ring per worker (one producer, one consumer): a worker never
// blocks or allocates for the sync; a full ring is a counted loss, which the periodic full
// exchange repairs. Only what a client has proved is sent: a TCP connection once ESTABLISHED
// and its later states, a UDP flow once its task replied; a SYN flood makes no sync traffic.
#pragma once

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dataplane/conntrack.h"
#include "dataplane/worker.h"

namespace meshgate::dataplane
{

// A change of one of this gateway's connections, for the peers.
struct sync_event {
    flow_key forward;
    flow_key reverse;
    uint16_t service;
    uint8_t state;         // tcp_state or udp_state
    uint8_t ended;         // 1: the connection is gone
    uint32_t proxy_start;  // connection::proxy_*
    uint8_t proxy_version; //
    uint8_t proxy_len;     //
    uint8_t cookie;        // 1: opened by a SYN cookie; seq_offset and wscales translate it
    uint8_t wscales;       // connection::wscales
    uint32_t seq_offset;   // connection::seq_offset
};
static_assert(sizeof(sync_event) == 48);

// Slots of each worker's rings (powers of two): a burst of changes between two control loop
// passes (20 ms) of a worker making ~100k connections per second.
inline constexpr uint32_t sync_event_slots = 8192;
inline constexpr uint32_t sync_install_slots = 8192;

// A client has proved it: a TCP connection past its handshake, a UDP flow its task answered.
inline bool worth_syncing(const connection &c)
{
    const uint8_t s = c.state.load(std::memory_order_relaxed);
    return c.tclass == timeout_class::tcp ? s >= uint8_t(tcp_state::established)
                                          : s == uint8_t(udp_state::replied);
}

// C (one of ours) changed or ENDED: tell the control thread, if the gateway has peers.
inline void sync_note(worker &w, const connection &c, bool ended)
{
    if (w.sync_events == nullptr || c.peer != 0 || !worth_syncing(c)) return;
    // Established, so a cookie's handshake is complete: open, its offset fixed.
    const bool cookie = c.cookie.load(std::memory_order_acquire) == uint8_t(cookie_state::open);
    // Not const: DPDK 22.11 takes it as void *.
    sync_event e{c.forward,
                 c.reverse,
                 c.service,
                 c.state.load(std::memory_order_relaxed),
                 uint8_t(ended),
                 c.proxy_start,
                 c.proxy_version,
                 c.proxy_len,
                 uint8_t(cookie),
                 cookie ? c.wscales : uint8_t{0},
                 cookie ? c.seq_offset : 0};
    if (rte_ring_sp_enqueue_elem(w.sync_events, &e, sizeof e) != 0)
        w.counters.count(event::sync_events_lost);
}

// Housekeeping: installs (or refreshes, or ends) what the peers told of, a bounded number.
void sync_apply(worker &w);

} // namespace meshgate::dataplane
