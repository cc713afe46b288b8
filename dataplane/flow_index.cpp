// The connection table's key index: see flow_index.h.
#include "dataplane/flow_index.h"

#include <stdexcept>

#include <rte_malloc.h>

namespace meshgate::dataplane
{

flow_index::flow_index(uint32_t keys, int socket_id)
{
    const shape s = shape_for(keys);
    void *p = rte_malloc_socket("conntrack_index", s.bytes(), RTE_CACHE_LINE_SIZE, socket_id);
    if (p == nullptr) throw std::runtime_error("conntrack: cannot allocate the key index");
    buckets_ = static_cast<bucket *>(p);
    n_buckets_ = s.buckets;
    n_overflow_ = s.overflow;
    for (uint32_t b = 0; b < s.buckets + s.overflow; b++) {
        buckets_[b] = bucket{};
        std::fill_n(buckets_[b].ref, bucket_entries, empty);
        buckets_[b].next = no_bucket;
    }
}

flow_index::~flow_index()
{
    rte_free(buckets_);
}

} // namespace meshgate::dataplane
