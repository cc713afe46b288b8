// An rte_rcu_qsbr variable for tests and benchmarks: THREADS readers, thread 0 (the caller)
// registered and online for the variable's life; quiescent() reports for it.
#pragma once

#include <cstdint>

#include <rte_common.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

namespace meshgate::test_support
{

struct qsbr_var {
    rte_rcu_qsbr *v;
    explicit qsbr_var(uint32_t threads = 1)
    {
        v = static_cast<rte_rcu_qsbr *>(
            rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(threads), RTE_CACHE_LINE_SIZE));
        rte_rcu_qsbr_init(v, threads);
        rte_rcu_qsbr_thread_register(v, 0);
        rte_rcu_qsbr_thread_online(v, 0);
    }
    ~qsbr_var()
    {
        rte_rcu_qsbr_thread_offline(v, 0);
        rte_free(v);
    }
    qsbr_var(const qsbr_var &) = delete;
    qsbr_var &operator=(const qsbr_var &) = delete;
    void quiescent() { rte_rcu_qsbr_quiescent(v, 0); }
};

} // namespace meshgate::test_support
