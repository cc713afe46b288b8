// A poll-mode worker: one per worker lcore, owning TX queue `id` of every port and the RX queues
// the control thread gave it (those of the ports on its NUMA socket, where it can).
// Its struct is cache aligned and touched only by its lcore, except the counters the control
// thread reads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include <rte_ip_frag.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "dataplane/affinity.h"
#include "dataplane/conntrack.h"
#include "dataplane/counters.h"
#include "dataplane/neighbor.h"
#include "dataplane/scheduler.h"
#include "dataplane/syn_cookie.h"
#include "dataplane/tables.h"

namespace meshgate::dataplane
{

inline constexpr uint16_t burst_size = 32;
// A gateway port without a kernel interface (dataplane/kernel_path.h).
inline constexpr uint16_t no_kernel_interface = UINT16_MAX;
// SNAT port probes (conntrack's bulk lookups of candidate reverse keys) a worker may spend per
// burst: a healthy create takes one round of 4; near exhaustion one takes up to 68 per SNAT
// address, and a SYN flood must not take the time established flows need.
inline constexpr uint32_t snat_probes_per_burst = 32 * 16;
// Tasks' UDP datagrams a worker reassembles at once (of up to RTE_LIBRTE_IP_FRAG_MAX_FRAG
// fragments each, mbufs the packet pool has room for) and how long an incomplete one is kept.
inline constexpr uint32_t reassembly_datagrams = 128;
inline constexpr uint32_t reassembly_timeout_ms = 2000;
inline constexpr uint32_t reassembly_mbufs = reassembly_datagrams * RTE_LIBRTE_IP_FRAG_MAX_FRAG;

// What all workers share with the control thread.
struct gateway_shared {
    std::atomic<const dataplane_tables *> tables{nullptr}; // swapped by control, RCU-protected
    std::atomic<bool> stop{false};
    rte_rcu_qsbr *qsbr = nullptr; // one thread id per worker
    neighbor_table *neighbors = nullptr;
    rte_mempool *indirect_pool = nullptr; // fragments' payload references
    connection_table *connections = nullptr;
    affinity_table *affinity = nullptr;           // persistence_timeout: client address -> task
    std::atomic<uint32_t> *task_active = nullptr; // live connections by task id (lc, wlc)
    scheduler_cursor *cursors = nullptr;          // rr/wrr position by service id
    uint64_t start_tsc = 0;                       // second 0 of the connection clock
};

// One RX queue a worker polls.
struct rx_queue {
    uint16_t port;  // gateway port index
    uint16_t queue; // RX queue id on it
};

// Packets ready for one port's TX queue, sent when full or on the drain timer.
struct tx_buffer {
    uint16_t count = 0;
    std::array<rte_mbuf *, burst_size> packets{};
};

// A packet waiting for its next hop's MAC.
struct pending_packet {
    rte_mbuf *packet;
    uint64_t deadline; // TSC after which it is dropped as no_neighbor
    rte_be32_t next_hop;
    uint16_t port;
};

struct pending_queue {
    static constexpr uint16_t capacity = 64;     // per worker
    static constexpr uint16_t per_next_hop = 16; // one dead host cannot fill it
    uint16_t count = 0;
    std::array<pending_packet, capacity> packets{};
};

// The last next hop a packet of this burst was sent to, and its MAC: a burst's packets mostly go
// to one node or one router, and a neighbor table lookup was 5% of the forward path's cycles.
// Kept for one burst (handle_burst()), so that a change in the table is seen by the next.
struct next_hop_memo {
    static constexpr uint16_t none = UINT16_MAX;
    uint16_t port = none;
    rte_be32_t next_hop = 0;
    rte_ether_addr mac{};
};

// A walk over this worker's connections for ones a new snapshot ended (their task is absent,
// or they are idle past a shortened timeout), a bounded number of slots per loop.
struct sweep_state {
    uint64_t epoch = 0;   // the snapshot's sweep_epoch this walk (or the last) was for
    uint32_t cursor = 0;  // next slot of this owner's slice
    bool running = false; //
};

// A connection this worker opened by a cookie whose task has not answered our SYN yet: the SYN
// goes again from housekeeping, as a client whose server speaks first sends nothing that could
// carry it (cookie_syn_again()).
struct cookie_wait {
    flow_key forward;    // the connection's: its slot may have been freed and taken since
    uint64_t due;        // TSC of the next SYN
    uint32_t index;      // its slot
    uint32_t client_isn; // host order
    syn_options client;  // what the cookie kept
    uint8_t syns_left;
};

// In the order the SYNs went: every wait is one second (Linux's first SYN retransmission), so
// the oldest is due first.
struct cookie_wait_queue {
    static constexpr uint16_t capacity = 2048; // connections opened per second, per worker
    static constexpr uint8_t syns = 5;         // sent again at most, a second apart
    uint16_t head = 0;
    uint16_t count = 0;
    std::array<cookie_wait, capacity> waits{};
};

// A client's first data segment of a connection its cookie opened, held while the task has not
// answered our SYN, then handled again as if it had just arrived: the client need not wait for
// its retransmission timer (200 ms at least) once per connection.
struct cookie_hold {
    rte_mbuf *segment;
    flow_key forward; // the connection's: its slot may have been freed and taken since
    uint32_t expires; // connection clock (worker::now) when it is freed: the client sends it again
    uint32_t index;   // its slot
    uint16_t port;    // the gateway port it came in by
};

struct cookie_hold_queue {
    static constexpr uint16_t capacity = 64; // segments one worker holds at once
    static constexpr uint32_t seconds = 2;   // held 1 to 2 s at most
    uint16_t count = 0;
    std::array<cookie_hold, capacity> holds{};
};

struct alignas(RTE_CACHE_LINE_SIZE) worker {
    uint16_t id = 0; // TX queue id on every port, and RCU thread id
    unsigned lcore = 0;
    gateway_shared *shared = nullptr;
    rte_mempool *pool = nullptr; // packets it originates or fragments: its NUMA socket's pool
    uint64_t tsc_hz = 0;
    uint64_t arp_interval = 0; // TSC between two ARP requests for one next hop
    uint64_t arp_wait = 0;     // TSC a packet may wait for ARP
    uint16_t port_count = 0;
    std::array<uint16_t, max_ports> port_ids{}; // DPDK port id of each gateway port
    uint16_t rx_count = 0;
    std::array<rx_queue, max_ports> rx{}; // what it polls, in order
    // Bit p: port p was opened without RTE_ETH_TX_OFFLOAD_MULTI_SEGS (its driver's simple TX
    // path sends and frees only the first segment): chained frames are joined before TX.
    uint32_t single_segment_ports = 0;
    static_assert(max_ports <= 32);
    std::array<tx_buffer, max_ports> tx{};
    // The exception path (dataplane/kernel_path.h): DPDK port id of each gateway port's kernel
    // interface (no_kernel_interface: none; the worker's queue of it is its id) and what
    // waits for it.
    std::array<uint16_t, max_ports> kernel_port_ids = [] {
        std::array<uint16_t, max_ports> none;
        none.fill(no_kernel_interface);
        return none;
    }();
    std::array<tx_buffer, max_ports> kernel_tx{};
    uint32_t kernel_pending = 0; // bit p: kernel_tx[p] holds frames
    uint64_t kernel_poll_at = 0; // TSC of the next read of them (a read of a TAP is a syscall)
    // The cluster's connection sync (dataplane/sync.h); null without [cluster].
    rte_ring *sync_events = nullptr;   // changes of our connections, to the control thread
    rte_ring *sync_installs = nullptr; // the peers' connections, from it
    uint32_t now = 0; // seconds since start_tsc, refreshed by housekeeping() (every 100 us)
    uint64_t tsc = 0; // the TSC, refreshed every loop iteration: what rate limits count in
    pending_queue pending;
    next_hop_memo last_hop;
    cookie_wait_queue cookie_waits;
    // The connection clock (now + 1) when it last answered a SYN with a cookie; 0: never.
    uint32_t cookies_sent_at = 0;
    cookie_hold_queue cookie_holds;
    std::array<removed_connection, 64> expired{}; // scratch for connection expiry
    sweep_state sweep;
    // Inner fragments from tasks, until their datagram is whole; what it drops waits in the
    // death row until the end of the burst (counted as `fragment`).
    rte_ip_frag_tbl *reassembly = nullptr;
    rte_ip_frag_death_row death_row{};
    uint32_t burst_created = 0;    // connections this burst made: later misses look again
    uint32_t snat_probes_left = 0; // this burst's SNAT port probes (snat_probe_budget)
    // Rate-limit buckets (rate_admit()): ICMP errors, new connections by service id and by
    // client address hash (addresses that share a bucket share its limit).
    uint64_t icmp_error_bucket = 0;
    uint64_t tcp_reset_bucket = 0;
    uint64_t arp_reply_bucket = 0;
    uint64_t kernel_bucket = 0;
    uint64_t kernel_syn_bucket = 0;
    std::array<uint64_t, service_id_capacity> service_buckets{};
    static constexpr uint32_t source_bucket_count = 8192;
    std::array<uint64_t, source_bucket_count> source_buckets{};
    worker_counters counters;
};

// rte_eal_remote_launch entry point; ARG is a worker*. Returns when shared->stop is set.
int worker_main(void *arg);

// Everything the worker does with one received frame (exposed for tests and benchmarks).
void process_burst(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf **packets,
                   uint16_t count);

// Sends every buffered packet and retries or expires packets waiting on ARP.
void flush_and_service(worker &w, const dataplane_tables &t, uint64_t now);

// What the worker does every TX drain interval (100 us) besides polling, at TSC: sends what
// waits (flush_and_service()), moves the connection clock (`now`) to TSC's second, expires idle
// connections, takes the next step of a sweep, frees incomplete datagrams past their time.
void housekeeping(worker &w, const dataplane_tables &t, uint64_t tsc);

// Drops everything still held (at shutdown).
void release_all(worker &w);

} // namespace meshgate::dataplane
