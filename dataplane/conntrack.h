// The connection table: full-NAT state of every client flow, found by every worker lcore.
//
// Layout. One flat array of 64-byte `connection` slots holds every connection with both its keys:
//   forward key = the client's packet as received  (client_ip:client_port -> published_ip:port)
//   reverse key = the task's reply as received      (task_ip:target_port -> snat_ip:snat_port)
// and each owner (worker) has its own key index (dataplane/flow_index.h: one-cache-line buckets
// of signatures and references `index << 1 | direction`, the keys only in the slots) over both
// keys of its connections: 104 bytes per connection in all at 10M, and an established flow's
// lookup reads two cache lines, bucket and slot. Any worker looks up any owner's index without a
// lock, because replies arrive on whatever queue RSS picked from the outer VXLAN header: a
// reverse key is in the index of the owner its SNAT port names (port % n_workers == owner,
// below), a forward key in the index of the worker that received it (RSS keeps a client's flow
// on one queue), else, looked for on a miss, in the others. One writer per index needs no writer
// lock: measured against one shared rte_hash with MULTI_WRITER_ADD, two workers made 2.3x the new
// connections per second (docs/architecture.md).
//
// Ownership. The worker that saw a client's first packet owns the connection: only it creates,
// expires and removes it, and only in its own index. Any worker may refresh last_seen and move
// the TCP state (relaxed atomics). Slots are partitioned by owner too: worker w allocates only
// from its own slice of the array and its own free stack, so allocation takes no lock.
//
// Reclamation. Readers hold no lock, so a removed connection slot (and an emptied overflow bucket
// of an index) is reused only after every reader passed a quiescent state of the workers'
// rte_rcu_qsbr variable: each owner keeps a FIFO of deferred slots and a FIFO of the tokens that
// cover them, one per expire() call. An index entry is reusable at once (flow_index.h says why).
// Workers must report quiescent states.
//
// SNAT ports. The reverse key must be unique; rather than a port allocator the owner probes its
// index: the client's port first, then pseudo-random ports, over all SNAT addresses. Worker w only
// picks ports with port % n_workers == w, so two owners never race for the same reverse key, a
// reply's owner is known from its key, and "lookup, then add" is safe. (With one worker every
// port is allowed.)
//
// Expiry. Each owner has a timer wheel (1 s ticks, 4096 slots) threaded through the slots. Entries
// are filed with lazy refresh: when a slot comes due the entry is deleted if last_seen + timeout
// has passed, else filed again. Cost: O(1) amortized per connection, bounded per call by a budget.
// A UDP flow has the udp_unreplied timeout until its task answers. While an owner is under
// pressure (3/4 of its slots live, or a create failed in the last 10 s) its half-open entries
// (TCP before ESTABLISHED, unreplied UDP) get half_open_under_pressure: a flood's go first.
//
// Choices beyond the layout above, with reasons:
// - An index of our own rather than rte_hash: rte_hash keeps its own copy of both 16-byte keys
//   (32-byte key slots), sizes buckets and its RCU defer queue for every key slot rounded up to a
//   power of two, and took 230 bytes per connection beside the slot; it also reads up to two
//   buckets per lookup (cuckoo). A key index sized for two keys per slot is full only when the
//   slots are, so "table full" means one thing.
// - Connection slots are freed through our own per-owner FIFO rather than rte_rcu_qsbr_dq (an
//   experimental API in DPDK 22.11); one qsbr token covers every deletion of an expire() call.
// - A connection whose state moved to a shorter timeout (FIN, RST) is noticed when its wheel slot
//   comes due. To bound that lag the wheel re-checks ESTABLISHED entries every tcp_fin seconds and
//   other TCP states every tcp_close seconds (UDP never changes class): a closed connection is
//   freed at most that late.
// - remove() (port reuse, flushes) cannot unlink from a singly linked wheel list: it deletes the
//   keys at once and leaves the slot as a zombie that the wheel frees when it next visits it.
//
// Ending another owner's connection. A client SYN that reuses the ports of a closing connection
// (port reuse, moby#35082) may reach another worker than its owner (RSS moved the flow, the
// client came in on another port); that worker cannot delete the owner's keys, so it asks: each
// owner has a queue of end requests (an rte_ring, many producers, the owner consumes), served at
// the start of its next expire(), within a drain interval; meanwhile the asker makes the new
// connection in its own index, so no SYN is lost, and only the owner's own lookups can still find
// the old one until then. A request names the connection's forward key: a slot that has moved
// on to another connection by then is left alone.
//
// Threading contract: create/remove/expire/sweep for owner w run on one thread at a time (worker
// w); lookups, update() and request_end() on any thread. Per-packet methods are noexcept, never
// allocate, throw or log, and take no lock.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_memory.h>

#include "dataplane/flow_index.h"
#include "dataplane/flow_key.h"
#include "dataplane/tcp_state.h"
#include "dataplane/timeouts.h"

struct rte_rcu_qsbr;
struct rte_ring;

namespace meshgate::dataplane
{

struct conntrack_params {
    uint32_t capacity = 1048576;    // connection slots, split evenly between workers
    uint16_t n_workers = 1;         // owners 0..n_workers-1 (at most 256)
    rte_rcu_qsbr *qsbr = nullptr;   // required: the workers' RCU variable
    int socket_id = SOCKET_ID_ANY;  // NUMA node of the table memory
    conntrack_timeouts timeouts{};  // idle timeouts per state
    uint16_t snat_port_min = 1024;  // SNAT ports are picked in [min, max] (host order)
    uint16_t snat_port_max = 65535; //
    uint32_t snat_tries = 64;       // random probes before snat_exhausted
    uint32_t rng_seed = 0x6d676374; // seeds the per-worker SNAT port generators
};

enum class timeout_class : uint8_t { tcp, udp };

// Whether a connection was opened by a SYN cookie, and how far its handshake with the task got.
enum class cookie_state : uint8_t {
    none,    // opened by the client's SYN, as usual
    waiting, // the task has our SYN, not yet answered: the client's data waits (is dropped)
    opening, // a worker is setting seq_offset from the task's SYN-ACK
    open,    // seq_offset known: every segment translated
};

// One connection, one cache line. Written by the owner before its keys are published; after
// that only state and last_seen change (any worker, relaxed).
struct alignas(RTE_CACHE_LINE_SIZE) connection {
    flow_key forward;                // client -> published address, as received
    flow_key reverse;                // task -> snat address, as received
    uint16_t service;                // caller's service id
    uint16_t task;                   // caller's task id: stable while this connection lives
    uint8_t owner;                   // worker that created it and alone may delete it
    std::atomic<uint8_t> state;      // tcp_state (tcp_state::none for UDP)
    timeout_class tclass;            // which timeout table applies
    std::atomic<uint8_t> live;       // 1 from create to remove/expiry; owner writes
    std::atomic<uint32_t> last_seen; // seconds of the gateway clock
    // A connection its client opened with a SYN cookie (dataplane/syn_proxy.h): the task's ISN
    // minus the cookie, set by the task's SYN-ACK (until then: the cookie).
    uint32_t seq_offset;
    uint32_t wheel_next; // owner only: next slot index in the same wheel list
    uint8_t client_port; // gateway port the client's first packet came in on
    uint8_t peer;        // 0: this gateway's; else 1 + the index of the [cluster]
                         // peer that made it and whose SNAT address it has
    // The PROXY protocol header the task gets (dataplane/proxy_protocol.h): set by the owner
    // with the client's SYN, before the task can answer; acked moves on any worker.
    uint8_t proxy_len;                // header bytes; 0: the connection has none
    uint8_t proxy_version;            // proxy_protocol
    uint32_t proxy_start;             // the client's ISN + 1, host order (PROXY header, cookie)
    std::atomic<uint8_t> proxy_acked; // 1 once the task acknowledged the whole header
    std::atomic<uint8_t> cookie;      // cookie_state
    uint8_t wscales;                  // client's << 4 | task's window scale (15: none)

    uint32_t task_ip() const { return reverse.src_ip; }       // network order
    uint16_t target_port() const { return reverse.src_port; } // network order
    uint32_t snat_ip() const { return reverse.dst_ip; }       // network order
    uint16_t snat_port() const { return reverse.dst_port; }   // network order
    tcp_state tcp() const { return static_cast<tcp_state>(state.load(std::memory_order_relaxed)); }
};
static_assert(sizeof(connection) == 64);

// What a lookup found: index << 1 | direction, or miss. The reference the key index stores.
struct conn_ref {
    static constexpr uint32_t miss_value = flow_index::empty;
    uint32_t value = miss_value;

    bool hit() const { return value != miss_value; }
    uint32_t index() const { return value >> 1; }
    direction dir() const { return static_cast<direction>(value & 1); }
};

enum class create_status : uint8_t {
    ok,             // new connection at index
    exists,         // the forward key is already there: index is the existing connection
    table_full,     // no free slot for this worker (or no room in its key index)
    snat_exhausted, // no free (snat address, port) toward this task:target_port
    probe_budget,   // the caller's SNAT probe budget ran out before a free port was found
};

struct create_result {
    uint32_t index;
    create_status status;
};

// Returned by update(): the state after the packet, and whether the packet is a client SYN
// reusing a port of a closing connection (then nothing was changed: remove() and create again).
struct update_result {
    tcp_state state;
    bool reuse;
    bool changed; // the packet moved the state (TCP) or made a UDP flow replied
};

// A connection a peer of the cluster told of (control/cluster/), for install(): its keys, what
// they are here (service and task ids), its state and how long the peer has not seen it.
struct synced_connection {
    flow_key forward;
    flow_key reverse;
    uint16_t service;
    uint16_t task;
    uint32_t idle;             // seconds
    uint8_t state;             // tcp_state or udp_state
    uint8_t peer;              // connection::peer: 0 for ours, handed back after a restart
    uint8_t ended;             // 1: the owner ended it (install() removes it)
    uint8_t proxy_version = 0; // connection::proxy_*: the header's shift goes with it
    uint8_t proxy_len = 0;
    uint32_t proxy_start = 0;
    uint32_t seq_offset = 0; // connection::seq_offset, with cookie: the task's numbers move by it
    uint8_t wscales = 0;     // connection::wscales, with cookie
    uint8_t cookie = 0;      // 1: opened by a SYN cookie at its owner
};
static_assert(sizeof(synced_connection) == 60);

enum class install_status : uint8_t {
    installed, // a new connection
    refreshed, // known already: last_seen and state updated
    replaced,  // a new connection in place of an older one of the same client flow (removed)
    removed,   // ended by its owner, gone here too
    refused,   // a different connection has one of its keys, no slot is free, or not ours
};

// What expire()/remove() took out, so the caller can decrement per-task active counts.
struct removed_connection {
    uint32_t index;
    uint16_t service;
    uint16_t task;
    tcp_state state;
    timeout_class tclass;
    bool under_pressure; // expired on half_open_under_pressure, sooner than it would have been
};

// The state of a UDP connection (in connection::state).
enum class udp_state : uint8_t { unreplied, replied };

class connection_table
{
  public:
    static constexpr uint32_t wheel_slots = 4096; // 1 s ticks: timeouts up to ~68 min per lap
    static constexpr uint32_t no_index = UINT32_MAX;

    // Control plane: allocates the key indexes and the slot array; throws std::invalid_argument on
    // bad params, std::runtime_error when DPDK cannot create the table.
    static std::unique_ptr<connection_table> create(const conntrack_params &p);
    ~connection_table();
    connection_table(const connection_table &) = delete;
    connection_table &operator=(const connection_table &) = delete;

    // The table's hash of KEY (hash_flow()).
    static flow_key_hash hash(const flow_key &key) noexcept { return hash_flow(key); }

    // Any worker, lock-free. DIR says which key of a connection KEY would be: a reverse key is
    // looked for in its owner's index, a forward key in WORKER's, then (on a miss) in the
    // others'. The result's dir() is the direction the key was stored under.
    conn_ref lookup(uint8_t worker, direction dir, const flow_key &key,
                    flow_key_hash key_hash) const noexcept;
    // keys[i] (with hashes[i] = hash(*keys[i]), of direction dirs[i]) for i < n (any n);
    // results[i] set for each; returns the number of hits. One bulk lookup per owner's index
    // and 64 keys: buckets are prefetched.
    uint32_t lookup_bulk(uint8_t worker, const direction dirs[], const flow_key *const keys[],
                         const flow_key_hash hashes[], uint32_t n,
                         conn_ref results[]) const noexcept;
    // Tests and slow paths: KEY in every owner's index.
    conn_ref lookup(const flow_key &key) const noexcept;
    uint32_t lookup_bulk(const flow_key keys[], uint32_t n, conn_ref results[]) const noexcept;

    // Owner `worker` only, after a forward-key miss: a TCP SYN (no ACK) or any UDP datagram.
    // FORWARD_HASH = hash(forward); task_ip, target_port and snat_ips in network byte order.
    // The new connection is in SYN_RECV (TCP) and filed in the owner's timer wheel.
    // PROBE_BUDGET, when given, is what the caller may still spend on SNAT port candidates; each
    // one probed is taken from it. CLIENT_PORT is where replies go back out.
    create_result create(uint8_t worker, const flow_key &forward, flow_key_hash forward_hash,
                         uint16_t service, uint16_t task, uint32_t task_ip, uint16_t target_port,
                         std::span<const uint32_t> snat_ips, uint32_t now,
                         uint32_t *probe_budget = nullptr, uint8_t client_port = 0) noexcept;

    connection &at(uint32_t index) noexcept { return conns_[index]; }
    const connection &at(uint32_t index) const noexcept { return conns_[index]; }

    // Any worker: refresh last_seen and step the TCP state machine.
    update_result update(uint32_t index, direction dir, uint8_t tcp_flags, uint32_t now) noexcept
    {
        connection &c = conns_[index];
        if (c.last_seen.load(std::memory_order_relaxed) != now)
            c.last_seen.store(now, std::memory_order_relaxed); // skip the store: line stays shared
        if (c.tclass != timeout_class::tcp) {
            if (dir == direction::reverse &&
                c.state.load(std::memory_order_relaxed) != uint8_t(udp_state::replied)) {
                c.state.store(uint8_t(udp_state::replied), std::memory_order_relaxed);
                return {tcp_state::none, false, true};
            }
            return {tcp_state::none, false, false};
        }
        uint8_t cur = c.state.load(std::memory_order_relaxed);
        if (is_port_reuse(static_cast<tcp_state>(cur), dir, tcp_flags))
            return {static_cast<tcp_state>(cur), true, false};
        for (;;) {
            const auto next =
                static_cast<uint8_t>(next_state(static_cast<tcp_state>(cur), dir, tcp_flags));
            if (next == cur) return {static_cast<tcp_state>(next), false, false};
            if (c.state.compare_exchange_weak(cur, next, std::memory_order_relaxed))
                return {static_cast<tcp_state>(next), false, true};
            // another worker moved the state (other direction): apply ours to theirs
        }
    }

    // Owner `worker` only, the one owner_of_reverse(s.reverse) names: a peer's connection
    // installed (or refreshed, or removed when S says it ended) in this worker's index, as that
    // peer's. What it removed goes to *OUT (for the task's count).
    install_status install(uint8_t worker, const synced_connection &s, uint32_t now,
                           removed_connection *out) noexcept;

    // The owner whose index holds reverse key KEY: its SNAT port's residue.
    uint32_t owner_of_reverse(const flow_key &key) const noexcept
    {
        return n_workers_ == 1 ? 0 : rte_be_to_cpu_16(key.dst_port) % n_workers_;
    }

    // Owner only: take a connection out now (port reuse, flushing a task). The keys are deleted
    // at once; the slot is freed when the wheel next visits it. False if not live or not ours.
    bool remove(uint8_t worker, uint32_t index, removed_connection *out) noexcept;

    // Any worker: asks the owner of connection INDEX (whose forward key is FORWARD) to end it at
    // its next expire(). False when the owner's queue is full (or there is no other owner).
    bool request_end(uint32_t index, const flow_key &forward) noexcept;

    // Owner only, at each housekeeping() pass (100 us): end what other workers asked to
    // (request_end()), visit at most `budget` due wheel entries, delete the idle ones into
    // removed[0..ret) (room for `budget`, the ended ones included), re-file the others; recycle
    // slots whose grace period ended.
    uint32_t expire(uint8_t worker, uint32_t now, uint32_t budget,
                    removed_connection removed[]) noexcept;

    // Owner only: a walk over at most `visits` of its slots from CURSOR that removes, into
    // removed[0..ret) (room for `room`), every live connection for which ended(connection)
    // holds. CURSOR moves on; the walk is complete when it comes back to 0. After a reload.
    template <typename Ended>
    uint32_t sweep(uint8_t worker, uint32_t &cursor, uint32_t visits, Ended ended,
                   removed_connection removed[], uint32_t room) noexcept
    {
        const owner_state &o = owners_[worker];
        uint32_t n = 0;
        for (uint32_t visited = 0; visited < visits && n < room; ++visited) {
            const uint32_t index = o.first + cursor;
            cursor = cursor + 1 == o.count ? 0 : cursor + 1;
            const connection &c = conns_[index];
            if (c.live.load(std::memory_order_relaxed) != 0 && ended(c))
                n += remove(worker, index, &removed[n]);
            if (cursor == 0) break;
        }
        return n;
    }

    // Any thread: new idle timeouts, in force for every connection from its next packet or
    // wheel visit on.
    void set_timeouts(const conntrack_timeouts &timeouts) noexcept;

    // Bytes of DPDK memory create(p) takes (the slots, the key indexes, the free and deferred
    // rings, the wheels): what [limits] connections costs against [dpdk] memory_mb.
    static uint64_t memory_needed(const conntrack_params &p) noexcept;

    // The key indexes' overflow buckets in use and in all, every owner (any thread): keys that
    // collide, by chance or on purpose, take them.
    struct overflow_use {
        uint64_t used;
        uint64_t capacity;
    };
    overflow_use index_overflow() const noexcept;
    uint32_t size() const noexcept;               // live connections, all owners
    uint32_t size(uint8_t worker) const noexcept; // live connections of one owner
    uint32_t capacity() const noexcept { return capacity_; }
    uint32_t capacity(uint8_t worker) const noexcept; // slots of one owner
    uint16_t n_workers() const noexcept { return n_workers_; }
    uint32_t timeout(const connection &c) const noexcept; // idle timeout of its current state
    // Seconds C has been idle at NOW: negative when a worker whose clock was ahead of NOW's
    // (workers read the TSC apart, up to a second) saw it last.
    int32_t idle_at(const connection &c, uint32_t now) const noexcept
    {
        return static_cast<int32_t>(now - c.last_seen.load(std::memory_order_relaxed));
    }
    // Idle past its timeout at NOW: what expiry and sweeps end.
    bool past_timeout(const connection &c, uint32_t now) const noexcept
    {
        const int32_t idle = idle_at(c, now);
        return idle >= 0 && static_cast<uint32_t>(idle) >= timeout(c);
    }
    bool under_pressure(uint8_t worker) const noexcept
    {
        return owners_[worker].pressure.load(std::memory_order_relaxed);
    }

  private:
    // What request_end() asks of an owner.
    struct end_request {
        uint32_t index;
        flow_key forward;
    };
    static constexpr uint32_t end_request_slots = 1024; // per owner, a power of two

    // Slots deferred before `end` (a count of defer_free() calls) wait for TOKEN, an
    // rte_rcu_qsbr token taken after their keys were deleted.
    struct deferred_batch {
        uint64_t token;
        uint32_t end;
    };
    static constexpr uint32_t deferred_batches = 256; // per owner, a power of two

    // Everything one owner touches on create/expire, on its own cache lines.
    struct alignas(RTE_CACHE_LINE_SIZE) owner_state {
        uint32_t first = 0;                // slice of the connection array: [first, first+count)
        uint32_t count = 0;                //
        uint32_t *free_stack = nullptr;    // free slot indices, `free_top` of them
        uint32_t free_top = 0;             //
        uint32_t *deferred = nullptr;      // FIFO of slots waiting for a grace period
        uint32_t deferred_mask = 0;        // ring size - 1 (power of two >= count)
        uint32_t deferred_head = 0;        // next to reclaim
        uint32_t deferred_tail = 0;        // next free position
        deferred_batch *batches = nullptr; // FIFO of the tokens that cover them
        uint32_t batch_head = 0;           //
        uint32_t batch_tail = 0;           //
        uint32_t *wheel = nullptr;         // wheel_slots list heads (slot index or no_index)
        uint32_t cursor = 0;               // next tick to process
        bool cursor_set = false;           // the wheel starts at the first now seen
        uint64_t rng = 0;                  // xorshift64 state for SNAT ports
        uint16_t port_first = 0;           // lowest SNAT port of this owner's partition
        uint32_t port_count = 0;           // number of ports in the partition
        uint32_t pressure_until = 0;       // a create failed: under pressure until then
        rte_ring *end_requests = nullptr;  // from other workers (request_end()); n_workers > 1
        alignas(RTE_CACHE_LINE_SIZE) std::atomic<uint32_t> live{0}; // read by the control thread
        std::atomic<bool> pressure{false}; // half-open entries get half_open_under_pressure
    };

    connection_table() = default;

    uint32_t alloc_slot(owner_state &o) noexcept;
    uint32_t reclaim(owner_state &o, uint32_t max) noexcept;
    uint32_t serve_end_requests(uint8_t worker, uint32_t budget,
                                removed_connection removed[]) noexcept;
    void defer_free(owner_state &o, uint32_t index) noexcept;
    void stamp_deferred(owner_state &o, uint32_t from) noexcept;
    void file(owner_state &o, uint32_t index, uint32_t now) noexcept;
    uint32_t recheck(const connection &c) const noexcept;
    bool pick_snat(owner_state &o, uint8_t worker, flow_key &rev, uint16_t client_port,
                   std::span<const uint32_t> snat_ips, uint32_t &rev_hash,
                   uint32_t *budget) noexcept;
    bool publish(owner_state &o, uint8_t worker, uint32_t index, flow_key_hash fwd_hash,
                 flow_key_hash rev_hash) noexcept;
    void unpublish(uint32_t index) noexcept;
    conn_ref lookup_in(uint32_t owner, const flow_key &key, flow_key_hash key_hash) const noexcept;
    conn_ref lookup_elsewhere(uint32_t owner, const flow_key &key,
                              flow_key_hash key_hash) const noexcept;

    // The key a conn_ref value stands for, in its slot: forward and reverse are its first two.
    const flow_key &key_of(uint32_t ref) const noexcept
    {
        const connection &c = conns_[ref >> 1];
        return (ref & 1) != 0 ? c.reverse : c.forward;
    }
    // Both keys of each of owner w's connections (lock-free readers, the owner writes).
    const flow_index &index(uint32_t owner) const noexcept { return indexes_[owner]; }

    rte_rcu_qsbr *qsbr_ = nullptr;
    connection *conns_ = nullptr;
    std::unique_ptr<flow_index[]> indexes_; // per owner; read by every worker
    owner_state *owners_ = nullptr;
    uint32_t capacity_ = 0;
    uint16_t n_workers_ = 0;
    uint32_t snat_tries_ = 64;
    uint16_t snat_port_min_ = 1024;
    uint16_t snat_port_max_ = 65535;
    // Read by the workers, written by set_timeouts() on reload: whole words, relaxed.
    std::array<std::atomic<uint32_t>, tcp_state_count> tcp_timeout_{}; // per tcp_state
    std::array<std::atomic<uint32_t>, tcp_state_count> tcp_recheck_{}; // longest wait to re-check
    std::atomic<uint32_t> udp_timeout_{0};
    std::atomic<uint32_t> udp_unreplied_timeout_{0};
    std::atomic<uint32_t> pressure_timeout_{0};
    std::atomic<uint32_t> close_timeout_{0}; // tcp_close: how late a state change is noticed
    bool half_open(const connection &c) const noexcept;
    void note_failure(owner_state &o, uint32_t now) noexcept;
};

} // namespace meshgate::dataplane
