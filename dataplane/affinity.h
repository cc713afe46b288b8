// Client-address affinity (IPVS persistence, `persistence_timeout`): which task a client's
// address last got from a service, for that many seconds after its last new connection.
// Shared by all workers without locks: open addressing over a fixed array, a bounded probe,
// and each entry's key and value in one 64-bit word each. A lost race or a full neighbourhood
// only costs affinity for one connection (the scheduler picks instead), never a flow.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/flow_hash.h"

namespace meshgate::dataplane
{

class affinity_table
{
  public:
    static constexpr uint32_t capacity = 1u << 18; // clients with affinity, over all services
    static constexpr uint32_t max_probes = 8;

    affinity_table() : entries_(new entry[capacity]) {}

    // The task address (network order) CLIENT (network order) has with SERVICE, or 0.
    uint32_t lookup(uint32_t client, uint16_t service, uint32_t now) const
    {
        uint64_t key = key_of(client, service);
        for (uint32_t i = 0; i < max_probes; ++i) {
            const entry &e = entries_[(slot_of(key) + i) & (capacity - 1)];
            if (e.key.load(std::memory_order_acquire) != key) continue;
            uint64_t v = e.value.load(std::memory_order_acquire);
            return static_cast<uint32_t>(v) > now ? static_cast<uint32_t>(v >> 32) : 0;
        }
        return 0;
    }

    // Records that CLIENT got TASK from SERVICE until NOW + TIMEOUT.
    void remember(uint32_t client, uint16_t service, uint32_t task, uint32_t now, uint32_t timeout)
    {
        uint64_t key = key_of(client, service);
        uint64_t value = uint64_t{task} << 32 | (now + timeout);
        for (uint32_t i = 0; i < max_probes; ++i) {
            entry &e = entries_[(slot_of(key) + i) & (capacity - 1)];
            uint64_t k = e.key.load(std::memory_order_acquire);
            bool expired = static_cast<uint32_t>(e.value.load(std::memory_order_relaxed)) <= now;
            if (k == key || ((k == 0 || expired) &&
                             e.key.compare_exchange_strong(k, key, std::memory_order_acq_rel))) {
                e.value.store(value, std::memory_order_release);
                return;
            }
        }
    }

  private:
    struct entry {
        std::atomic<uint64_t> key{0};   // client << 16 | service + 1; 0 = never used
        std::atomic<uint64_t> value{0}; // task << 32 | expiry second
    };

    static uint64_t key_of(uint32_t client, uint16_t service)
    {
        return uint64_t{client} << 16 | (uint64_t{service} + 1);
    }
    static uint32_t slot_of(uint64_t key)
    {
        return static_cast<uint32_t>(mix64(key)) & (capacity - 1);
    }

    std::unique_ptr<entry[]> entries_;
};

} // namespace meshgate::dataplane
