// The connection table's key index: see flow_index.h.
#include "dataplane/flow_index.h"

#include <stdexcept>
#include <string>

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

namespace meshgate::dataplane
{

namespace
{

template <typename T>
T *allocate(const char *what, uint64_t n, int socket)
{
    void *p = rte_malloc_socket(what, sizeof(T) * n, RTE_CACHE_LINE_SIZE, socket);
    if (p == nullptr) throw std::runtime_error(std::string("conntrack: cannot allocate ") + what);
    return static_cast<T *>(p);
}

} // namespace

void flow_index::init(uint32_t keys, int socket_id, rte_rcu_qsbr *qsbr)
{
    const shape s = shape_for(keys);
    buckets_ = allocate<bucket>("conntrack_index", uint64_t{s.buckets} + s.overflow, socket_id);
    n_buckets_ = s.buckets;
    n_overflow_ = s.overflow;
    for (uint32_t b = 0; b < s.buckets + s.overflow; b++) {
        buckets_[b] = bucket{};
        std::fill_n(buckets_[b].ref, bucket_entries, empty);
        buckets_[b].next = no_bucket;
    }
    qsbr_ = qsbr;
    free_ = allocate<uint32_t>("conntrack_index_pool", s.overflow, socket_id);
    for (uint32_t i = 0; i < s.overflow; i++)
        free_[i] = s.buckets + s.overflow - 1 - i; // taken in ascending order
    free_top_ = s.overflow;
    const uint32_t ring = std::bit_ceil(s.overflow);
    retired_ = allocate<retired_bucket>("conntrack_index_retired", ring, socket_id);
    retired_mask_ = ring - 1;
}

flow_index::~flow_index()
{
    rte_free(retired_);
    rte_free(free_);
    rte_free(buckets_);
}

bool flow_index::grow(bucket &last, uint16_t sig, uint32_t ref) noexcept
{
    if (free_top_ == 0) reclaim();
    if (free_top_ == 0) return false;
    const uint32_t at = free_[free_top_ - 1];
    std::atomic_ref<uint32_t>(free_top_).store(free_top_ - 1, std::memory_order_relaxed);
    bucket &b = buckets_[at]; // empty, its link cleared: nobody reads it before the link below
    b.sig[0] = sig;
    b.ref[0] = ref;
    std::atomic_ref<uint32_t>(last.next).store(at, std::memory_order_release);
    return true;
}

void flow_index::retire(bucket &before, uint32_t at) noexcept
{
    // Readers in AT follow its own link on; it is cleared only when it is taken again.
    std::atomic_ref<uint32_t>(before.next).store(buckets_[at].next, std::memory_order_release);
    retired_[retired_tail_++ & retired_mask_] = {rte_rcu_qsbr_start(qsbr_), at};
    reclaim();
}

void flow_index::reclaim() noexcept
{
    while (retired_head_ != retired_tail_) {
        const retired_bucket &r = retired_[retired_head_ & retired_mask_];
        if (rte_rcu_qsbr_check(qsbr_, r.token, false) != 1) break; // FIFO: later are not older
        buckets_[r.at].next = no_bucket;
        free_[free_top_] = r.at;
        std::atomic_ref<uint32_t>(free_top_).store(free_top_ + 1, std::memory_order_relaxed);
        retired_head_++;
    }
}

} // namespace meshgate::dataplane
