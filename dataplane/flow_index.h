// One owner's index of its connections' keys: flow key -> reference (slot index << 1 | direction).
//
// Layout. An array of one-cache-line buckets. A key's bucket is its hash scaled onto the array
// (multiply-shift: any bucket count, no power of two to round up to); each bucket holds
// `bucket_entries` pairs of a 16-bit signature (the hash's low bits) and a 32-bit reference, and
// the index of an overflow bucket. The keys themselves are stored once, in the connection slots
// (connection_table): a lookup reads the bucket, compares signatures, and confirms the candidate
// against its slot's key. An established flow's lookup touches two cache lines, bucket then slot,
// and a bulk lookup prefetches each in turn for a whole burst.
//
// Why buckets with chaining rather than cuckoo hashing: keys never move once inserted, so a
// lock-free reader cannot miss a live key while the writer inserts or deletes others (a cuckoo
// displacement needs a change counter that readers re-check, as rte_hash does), and a lookup
// reads one bucket where a cuckoo lookup may read two.
//
// Sizing. Two keys per connection and `keys_per_bucket` (5) on average when every slot is taken:
// 2 / 5 * 64 = 25.6 bytes per connection. A bucket overflows when more than 10 keys land in it
// (Poisson(5): 1.4% of buckets at a full table); overflow buckets come from a pool of 1/8 of the
// buckets (3.2 bytes per connection). An overflow bucket that empties is unlinked from its chain
// and goes back to the pool after an RCU grace period, so that a reader still in it follows its
// old link and never lands in another chain; under churn, buckets that once overflowed do not
// keep the pool.
//
// Concurrency: one writer (the owner), readers on any worker without a lock. An insert writes the
// signature, then the reference with release; a delete stores the empty reference. An entry is
// reusable at once: a reader that read a stale or a newer reference confirms it against the
// slot's key, and slots are reused only after an RCU grace period (connection_table).
//
// Hostile keys (chosen to collide): a chain is at most `max_chain` overflow buckets long, so a
// lookup reads at most 1 + max_chain buckets; an insert past that fails (the table says
// table_full) and costs nobody else their entry.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <utility>

#include <rte_common.h>
#include <rte_memory.h>
#include <rte_prefetch.h>

struct rte_rcu_qsbr;

#include "dataplane/flow_key.h"

namespace meshgate::dataplane
{

class flow_index
{
  public:
    static constexpr uint32_t bucket_entries = 10;
    static constexpr uint32_t keys_per_bucket = 5; // average at full load: the sizing
    static constexpr uint32_t max_chain = 4;       // overflow buckets after the first
    static constexpr uint32_t empty = UINT32_MAX;  // a free entry's reference; a miss
    static constexpr uint32_t no_bucket = UINT32_MAX;

    struct alignas(RTE_CACHE_LINE_SIZE) bucket {
        uint16_t sig[bucket_entries];
        uint32_t ref[bucket_entries];
        uint32_t next; // overflow bucket, or no_bucket
    };
    static_assert(sizeof(bucket) == RTE_CACHE_LINE_SIZE);

    // An unlinked overflow bucket waiting for readers to leave it.
    struct retired_bucket {
        uint64_t token; // rte_rcu_qsbr token taken after the unlink
        uint32_t at;
    };

    struct shape {
        uint32_t buckets;  // where keys hash to
        uint32_t overflow; // the pool chains grow from
        // The buckets, the pool's free stack and its ring of retired buckets.
        uint64_t bytes() const
        {
            return uint64_t{buckets + overflow} * sizeof(bucket) + uint64_t{overflow} * 4 +
                   std::bit_ceil(uint64_t{overflow}) * sizeof(retired_bucket);
        }
    };
    // The buckets an index of KEYS keys has.
    static constexpr shape shape_for(uint32_t keys)
    {
        const uint32_t buckets =
            std::max<uint32_t>((keys + keys_per_bucket - 1) / keys_per_bucket, 1);
        return {buckets, std::max<uint32_t>(buckets / 8, 4)};
    }

    flow_index() = default;
    // Control plane: an index for KEYS keys whose readers report quiescent states on QSBR;
    // throws std::runtime_error when DPDK memory runs out.
    flow_index(uint32_t keys, int socket_id, rte_rcu_qsbr *qsbr) { init(keys, socket_id, qsbr); }
    void init(uint32_t keys, int socket_id, rte_rcu_qsbr *qsbr);
    ~flow_index();
    flow_index(const flow_index &) = delete;
    flow_index &operator=(const flow_index &) = delete;

    // The CRC is linear over GF(2): keys that differ in a few fields (ports, the low bits of an
    // address) map to a subspace whose top bits can repeat. A multiplication by an odd constant
    // mixes them (Fibonacci hashing): at 1M connections of pipeline_bench's keys, 1.4% of
    // buckets overflow instead of 3.2% (a Poisson(5) law gives 1.4%).
    uint32_t bucket_of(flow_key_hash h) const noexcept
    {
        return static_cast<uint32_t>((uint64_t{h * 0x9e3779b1u} * n_buckets_) >> 32);
    }
    static uint16_t signature(flow_key_hash h) noexcept { return static_cast<uint16_t>(h); }

    // Any worker. KEY_OF(ref) is the key a reference stands for (in its slot); returns the
    // reference whose key is KEY, or empty.
    template <typename KeyOf>
    uint32_t find(const flow_key &key, flow_key_hash h, KeyOf key_of) const noexcept
    {
        return find_from(bucket_of(h), signature(h), key, key_of);
    }

    // Any worker: refs[i] = find(*keys[i], hashes[i]) for i < n, the buckets of all of them
    // prefetched first, then the slots of their candidates.
    template <typename KeyOf>
    void find_bulk(const flow_key *const keys[], const flow_key_hash hashes[], uint32_t n,
                   uint32_t refs[], KeyOf key_of) const noexcept
    {
        constexpr uint32_t stride = 64;
        for (uint32_t off = 0; off < n; off += stride) {
            const uint32_t m = std::min(n - off, stride);
            uint32_t at[stride];
            for (uint32_t i = 0; i < m; i++) {
                at[i] = bucket_of(hashes[off + i]);
                rte_prefetch0(&buckets_[at[i]]);
            }
            for (uint32_t i = 0; i < m; i++) {
                // The first live candidate of the bucket; the rest (rare) in find_from() below.
                const bucket &b = buckets_[at[i]];
                uint32_t ref = empty;
                for (uint32_t match = matches(b, signature(hashes[off + i])); match != 0;
                     match &= match - 1) {
                    ref = load(b.ref[std::countr_zero(match)]);
                    if (ref != empty) break;
                }
                refs[off + i] = ref;
                if (ref != empty) rte_prefetch0(&key_of(ref));
            }
            for (uint32_t i = 0; i < m; i++) {
                const uint32_t ref = refs[off + i];
                if (ref != empty && key_of(ref) == *keys[off + i]) continue;
                const bucket &b = buckets_[at[i]];
                refs[off + i] =
                    ref == empty && load(b.next) == no_bucket
                        ? empty
                        : find_from(at[i], signature(hashes[off + i]), *keys[off + i], key_of);
            }
        }
    }

    // Owner only. REF for a key of hash H; false when its chain is at max_chain or the
    // overflow pool is used up.
    bool insert(flow_key_hash h, uint32_t ref) noexcept
    {
        const uint16_t sig = signature(h);
        uint32_t at = bucket_of(h);
        for (uint32_t chain = 0;; chain++) {
            bucket &b = buckets_[at];
            for (uint32_t i = 0; i < bucket_entries; i++) {
                if (b.ref[i] != empty) continue;
                std::atomic_ref<uint16_t>(b.sig[i]).store(sig, std::memory_order_relaxed);
                std::atomic_ref<uint32_t>(b.ref[i]).store(ref, std::memory_order_release);
                return true;
            }
            if (b.next == no_bucket) return chain < max_chain && grow(b, sig, ref);
            at = b.next;
        }
    }

    // Owner only: the entry REF of a key of hash H emptied (and its overflow bucket retired
    // if that left it empty); false when it is not there.
    bool erase(flow_key_hash h, uint32_t ref) noexcept
    {
        uint32_t before = no_bucket;
        for (uint32_t at = bucket_of(h); at != no_bucket; before = at, at = buckets_[at].next) {
            bucket &b = buckets_[at];
            for (uint32_t i = 0; i < bucket_entries; i++)
                if (b.ref[i] == ref) {
                    std::atomic_ref<uint32_t>(b.ref[i]).store(empty, std::memory_order_release);
                    if (before != no_bucket && std::all_of(b.ref, b.ref + bucket_entries,
                                                           [](uint32_t r) { return r == empty; }))
                        retire(buckets_[before], at);
                    return true;
                }
        }
        return false;
    }

    uint32_t buckets() const noexcept { return n_buckets_; }
    // Overflow buckets linked into chains or waiting for a grace period (any thread).
    uint32_t overflow_used() const noexcept
    {
        return n_overflow_ - std::atomic_ref<uint32_t>(const_cast<uint32_t &>(free_top_))
                                 .load(std::memory_order_relaxed);
    }
    uint32_t overflow_capacity() const noexcept { return n_overflow_; }

  private:
    static uint32_t load(const uint32_t &v) noexcept
    {
        return std::atomic_ref<uint32_t>(const_cast<uint32_t &>(v)).load(std::memory_order_acquire);
    }

    // Bit i set: entry i's signature is SIG. Plain reads, as rte_hash's: a torn or stale one
    // only adds or hides a candidate that its reference and its slot's key then settle.
    static uint32_t matches(const bucket &b, uint16_t sig) noexcept
    {
        uint32_t m = 0;
        for (uint32_t i = 0; i < bucket_entries; i++)
            m |= uint32_t{b.sig[i] == sig} << i;
        return m;
    }

    template <typename KeyOf>
    uint32_t find_from(uint32_t at, uint16_t sig, const flow_key &key, KeyOf key_of) const noexcept
    {
        for (uint32_t hops = 0; at != no_bucket && hops <= max_chain; hops++) {
            const bucket &b = buckets_[at];
            for (uint32_t match = matches(b, sig); match != 0; match &= match - 1) {
                const uint32_t ref = load(b.ref[std::countr_zero(match)]);
                if (ref != empty && key_of(ref) == key) return ref;
            }
            at = load(b.next);
        }
        return empty;
    }

    // Owner only, rare: a bucket from the pool linked after LAST with its first entry; false
    // when the pool is empty. retire(): AT unlinked from after BEFORE, back in the pool after a
    // grace period.
    bool grow(bucket &last, uint16_t sig, uint32_t ref) noexcept;
    void retire(bucket &before, uint32_t at) noexcept;
    void reclaim() noexcept;

    // Read by every worker.
    bucket *buckets_ = nullptr;
    uint32_t n_buckets_ = 0;
    uint32_t n_overflow_ = 0;
    // The owner's: the pool of overflow buckets.
    alignas(RTE_CACHE_LINE_SIZE) rte_rcu_qsbr *qsbr_ = nullptr;
    uint32_t *free_ = nullptr; // free overflow buckets, `free_top_` of them
    uint32_t free_top_ = 0;
    retired_bucket *retired_ = nullptr; // FIFO waiting for a grace period
    uint32_t retired_mask_ = 0;
    uint32_t retired_head_ = 0;
    uint32_t retired_tail_ = 0;
};

} // namespace meshgate::dataplane
