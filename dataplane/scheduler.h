// Per-service task schedulers: which task gets a NEW connection. Established packets never come
// here; the connection table remembers the answer.
//
// The control thread builds a service_scheduler (immutable once published); workers read it.
// Mutable state lives outside it: rr/wrr position in one scheduler_cursor per service that all
// workers share (as IPVS keeps one per service: round robin over the gateway's new connections,
// not each worker's), lc/wlc load in per-task atomic active-connection counts that the
// connection table maintains.
// A pick returns the task's key, the caller's stable name for it (the gateway's task id), which
// also says where its active-connection count is: position in the service never leaks out.
// The pick path takes no lock, allocates nothing, throws nothing and makes no indirect call.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "dataplane/flow_hash.h"

namespace meshgate::dataplane
{

// The config's `scheduler` key takes these names, in this order.
enum class scheduler_kind : uint8_t { maglev, rr, wrr, lc, wlc, sh };

inline constexpr std::array<std::string_view, 6> scheduler_kind_names = {"maglev", "rr",  "wrr",
                                                                         "lc",     "wlc", "sh"};

// What a pick returns when no task has weight > 0: the caller drops (drop_reason::no_backend).
inline constexpr uint32_t no_task = UINT32_MAX;

// ipvsadm's limit; keeps wrr's signed current weight and wlc's products in range.
inline constexpr uint32_t max_task_weight = 65535;

inline constexpr uint32_t maglev_default_table_size = 65537;

// IPVS sh uses 256 buckets; more buckets follow the weights more closely at 16 KB per service.
inline constexpr uint32_t sh_min_table_size = 4096;

// One task as the schedulers see it.
struct scheduler_task {
    uint64_t id = 0;     // stable identity, e.g. task_identity(address): seeds its Maglev slots
    uint32_t weight = 1; // 0 = drain: existing connections stay, no new ones
    uint32_t key = 0;    // what a pick returns for it, and the index of its count in `active`
};
using maglev_backend = scheduler_task;

// Everything a worker reads to pick a task. Built by build_scheduler(), never written after.
// Task index: a task's position in the span build_scheduler() was given; internal to a scheduler.
struct service_scheduler {
    scheduler_kind kind = scheduler_kind::maglev;
    uint32_t task_count = 0;       // tasks of the service, weight 0 included
    std::vector<uint32_t> keys;    // by task index
    std::vector<uint32_t> weights; // by task index
    std::vector<uint32_t> live;    // task indices with weight > 0, in task order: rr/wrr/lc/wlc
    uint32_t key_limit = 0;        // max key + 1: `active` must hold that many counts
    int32_t wrr_gcd = 0;           // IPVS mark->di: step of the current weight
    int32_t wrr_max = 0;           // IPVS mark->mw: max weight - (gcd - 1)
    std::vector<uint32_t> table;   // maglev slots or sh buckets: task key or no_task
    uint32_t table_size = 0;       // == table.size()
    uint64_t table_fastmod = 0;    // Lemire's constant: hash % table_size without a divide
};

// The rr/wrr position of one service, shared by every worker and moved with compare-and-swap;
// zero-initialised is a fresh start. A cursor left over from an older snapshot of the service is
// repaired on its next pick. A cache line each: services do not slow each other's picks.
struct alignas(64) scheduler_cursor {
    // alignas(8): clang calls libatomic (not linked) for an atomic of a 4-aligned type.
    struct alignas(8) position {
        uint32_t next = 0; // position in service_scheduler::live examined next
        int32_t cw = 0;    // wrr current weight (IPVS mark->cw)
    };
    std::atomic<position> at{};
    static_assert(std::atomic<position>::is_always_lock_free);
};

// Control thread. Throws std::invalid_argument for a weight above max_task_weight, a key of
// no_task, or a Maglev table size that is not prime. maglev_table_size 0 =
// maglev_table_size_for(tasks.size()).
service_scheduler build_scheduler(scheduler_kind kind, std::span<const scheduler_task> tasks,
                                  uint32_t maglev_table_size = 0);

// Smallest prime in a fixed list that is >= 100 x backends (at least 65537), so each task's
// share of slots is within 1% of its weight.
uint32_t maglev_table_size_for(size_t backends);

// Weighted Maglev (Eisenbud et al., NSDI'16; weights as in Katran's MaglevHashV2): slot -> index
// into backends, no_task when no backend has weight > 0. Pure function of its input; a backend's
// slots depend on its id, not on its position, so config order does not move flows.
std::vector<uint32_t> build_maglev_table(std::span<const maglev_backend> backends,
                                         uint32_t table_size);

// Source-hashing buckets as ip_vs_sh.c lays them out (runs of each task, in task order), with
// counts by largest remainder so every task of weight > 0 gets its share and at least 1 bucket.
std::vector<uint32_t> build_sh_table(std::span<const scheduler_task> tasks, uint32_t buckets);

bool is_prime(uint32_t n);

// Lemire's fastmod: a % d for 32-bit a and d with two multiplies. m = fastmod_constant(d).
inline constexpr uint64_t fastmod_constant(uint32_t d)
{
    return UINT64_MAX / d + 1;
}

inline uint32_t fastmod(uint32_t a, uint64_t m, uint32_t d)
{
    __extension__ using u128 = unsigned __int128;
    uint64_t low = m * a;
    return static_cast<uint32_t>((static_cast<u128>(low) * d) >> 64);
}

namespace detail
{

inline uint32_t table_pick(const service_scheduler &s, uint32_t hash) noexcept
{
    if (s.table_size == 0) return no_task;
    return s.table[fastmod(hash, s.table_fastmod, s.table_size)];
}

inline uint32_t rr_step(const service_scheduler &s, scheduler_cursor::position &c) noexcept
{
    const uint32_t n = static_cast<uint32_t>(s.live.size());
    if (c.next >= n) c.next = 0;
    uint32_t task = s.live[c.next];
    c.next = c.next + 1 == n ? 0 : c.next + 1;
    return s.keys[task];
}

// ip_vs_wrr.c without the overload flag: walk the live tasks, lowering the current weight by
// the gcd at each wrap, and take the first task whose weight reaches it.
inline uint32_t wrr_step(const service_scheduler &s, scheduler_cursor::position &c) noexcept
{
    const uint32_t n = static_cast<uint32_t>(s.live.size());
    if (c.next >= n || c.cw > s.wrr_max || c.cw <= 0) c = {};
    for (;;) {
        if (c.next == 0) {
            c.cw -= s.wrr_gcd;
            if (c.cw <= 0) c.cw = s.wrr_max;
        }
        uint32_t task = s.live[c.next];
        c.next = c.next + 1 == n ? 0 : c.next + 1;
        // Terminates: the heaviest task's weight is >= wrr_max >= cw.
        if (s.weights[task] >= static_cast<uint32_t>(c.cw)) return s.keys[task];
    }
}

// One STEP from the shared position, retried if another worker moved it meanwhile.
template <typename Step>
inline uint32_t cursor_pick(const service_scheduler &s, scheduler_cursor &c, Step step) noexcept
{
    if (s.live.empty()) return no_task;
    scheduler_cursor::position now = c.at.load(std::memory_order_relaxed);
    for (;;) {
        scheduler_cursor::position next = now;
        const uint32_t key = step(s, next);
        if (c.at.compare_exchange_weak(now, next, std::memory_order_relaxed)) return key;
    }
}

// ip_vs_lc.c with overhead = active connections; the lowest index wins a tie. Selects without
// branches: loads change between picks, so a compare-and-jump would mispredict.
template <typename LoadOf>
inline uint32_t lc_scan(const service_scheduler &s, LoadOf load_of) noexcept
{
    const size_t n = s.live.size();
    if (n == 0) return no_task;
    uint32_t best = s.keys[s.live[0]];
    uint32_t best_load = load_of(best);
    for (size_t i = 1; i < n; ++i) {
        uint32_t task = s.keys[s.live[i]];
        uint32_t load = load_of(task);
        bool better = load < best_load;
        best = better ? task : best;
        best_load = better ? load : best_load;
    }
    return best;
}

// ip_vs_wlc.c: load_t / weight_t < load_best / weight_best, cross-multiplied to avoid a divide.
template <typename LoadOf>
inline uint32_t wlc_scan(const service_scheduler &s, LoadOf load_of) noexcept
{
    const size_t n = s.live.size();
    if (n == 0) return no_task;
    uint32_t best = s.live[0];
    uint64_t best_load = load_of(s.keys[best]);
    uint64_t best_weight = s.weights[best];
    for (size_t i = 1; i < n; ++i) {
        uint32_t task = s.live[i];
        uint64_t load = load_of(s.keys[task]);
        uint64_t weight = s.weights[task];
        bool better = load * best_weight < best_load * weight;
        best = better ? task : best;
        best_load = better ? load : best_load;
        best_weight = better ? weight : best_weight;
    }
    return s.keys[best];
}

// Relaxed: a pick needs a recent count, not one ordered with other memory. A span shorter than
// the keys (a caller bug) reads the missing tasks as idle instead of past its end.
inline uint32_t lc_pick(const service_scheduler &s,
                        std::span<const std::atomic<uint32_t>> active) noexcept
{
    if (active.size() >= s.key_limit)
        return lc_scan(s,
                       [active](uint32_t k) { return active[k].load(std::memory_order_relaxed); });
    return lc_scan(s, [active](uint32_t k) {
        return k < active.size() ? active[k].load(std::memory_order_relaxed) : 0u;
    });
}

inline uint32_t wlc_pick(const service_scheduler &s,
                         std::span<const std::atomic<uint32_t>> active) noexcept
{
    if (active.size() >= s.key_limit)
        return wlc_scan(s,
                        [active](uint32_t k) { return active[k].load(std::memory_order_relaxed); });
    return wlc_scan(s, [active](uint32_t k) {
        return k < active.size() ? active[k].load(std::memory_order_relaxed) : 0u;
    });
}

} // namespace detail

// The key of the task for a new connection from client_ip:client_port (host byte order), or
// no_task. ACTIVE holds the live connections of each task by key (lc, wlc; others ignore it).
inline uint32_t pick_task(const service_scheduler &s, scheduler_cursor &cursor,
                          std::span<const std::atomic<uint32_t>> active, uint32_t client_ip,
                          uint16_t client_port) noexcept
{
    switch (s.kind) {
    case scheduler_kind::maglev:
        return detail::table_pick(s, flow_hash(client_ip, client_port));
    case scheduler_kind::rr:
        return detail::cursor_pick(s, cursor, detail::rr_step);
    case scheduler_kind::wrr:
        return detail::cursor_pick(s, cursor, detail::wrr_step);
    case scheduler_kind::lc:
        return detail::lc_pick(s, active);
    case scheduler_kind::wlc:
        return detail::wlc_pick(s, active);
    case scheduler_kind::sh:
        return detail::table_pick(s, address_hash(client_ip));
    }
    return no_task;
}

} // namespace meshgate::dataplane
