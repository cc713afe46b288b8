#include "dataplane/neighbor.h"

#include <cstring>

#include <rte_hash_crc.h>

namespace meshgate::dataplane
{

namespace
{

constexpr uint64_t flag_valid = uint64_t{1} << 48;
constexpr uint64_t flag_static = uint64_t{1} << 49;
constexpr uint64_t mac_mask = (uint64_t{1} << 48) - 1;

uint64_t key_of(uint16_t port, rte_be32_t ip)
{
    return (uint64_t{port} + 1) << 32 | ip;
}

uint64_t pack(const rte_ether_addr &mac)
{
    uint64_t v = 0;
    std::memcpy(&v, mac.addr_bytes, RTE_ETHER_ADDR_LEN);
    return v;
}

uint32_t slot_of(uint64_t key)
{
    return rte_hash_crc_8byte(key, 0) & (neighbor_table::capacity - 1);
}

} // namespace

neighbor_table::neighbor_table() : entries_(new entry[capacity]) {}

neighbor_table::entry *neighbor_table::find(uint64_t key) const
{
    uint32_t slot = slot_of(key);
    for (uint32_t i = 0; i < max_probes; ++i) {
        entry &e = entries_[(slot + i) & (capacity - 1)];
        uint64_t k = e.key.load(std::memory_order_acquire);
        if (k == key) return &e;
        if (k == 0) return nullptr;
    }
    return nullptr;
}

neighbor_table::entry *neighbor_table::find_or_insert(uint64_t key)
{
    uint32_t slot = slot_of(key);
    for (uint32_t i = 0; i < max_probes; ++i) {
        entry &e = entries_[(slot + i) & (capacity - 1)];
        uint64_t k = e.key.load(std::memory_order_acquire);
        if (k == 0 && e.key.compare_exchange_strong(k, key, std::memory_order_acq_rel)) return &e;
        if (k == key) // present, or another worker inserted it just now
            return &e;
    }
    return nullptr;
}

bool neighbor_table::lookup(uint16_t port, rte_be32_t ip, rte_ether_addr *mac) const
{
    const entry *e = find(key_of(port, ip));
    if (e == nullptr) return false;
    uint64_t v = e->mac_flags.load(std::memory_order_acquire);
    if ((v & flag_valid) == 0) return false;
    std::memcpy(mac->addr_bytes, &v, RTE_ETHER_ADDR_LEN);
    return true;
}

bool neighbor_table::store(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac, uint64_t flags)
{
    entry *e = find_or_insert(key_of(port, ip));
    if (e == nullptr) return false;
    uint64_t next = (pack(mac) & mac_mask) | flag_valid | flags;
    uint64_t cur = e->mac_flags.load(std::memory_order_relaxed);
    do {
        if ((cur & flag_static) && !(flags & flag_static))
            return true; // configured entries win over ARP
        if (cur == next) return true;
    } while (!e->mac_flags.compare_exchange_weak(cur, next, std::memory_order_release));
    return true;
}

bool neighbor_table::learn(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac)
{
    return store(port, ip, mac, 0);
}

void neighbor_table::refresh(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac)
{
    const entry *e = find(key_of(port, ip));
    if (e != nullptr && (e->mac_flags.load(std::memory_order_relaxed) & flag_valid))
        store(port, ip, mac, 0);
}

bool neighbor_table::add_static(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac)
{
    return store(port, ip, mac, flag_static);
}

void neighbor_table::remove_static(uint16_t port, rte_be32_t ip)
{
    entry *e = find(key_of(port, ip));
    if (e != nullptr) e->mac_flags.fetch_and(~flag_static, std::memory_order_release);
}

bool neighbor_table::claim_request(uint16_t port, rte_be32_t ip, uint64_t now, uint64_t interval)
{
    entry *e = find_or_insert(key_of(port, ip));
    if (e == nullptr) return false;
    uint64_t last = e->last_request.load(std::memory_order_relaxed);
    if (last != 0 && now - last < interval) return false;
    return e->last_request.compare_exchange_strong(last, now, std::memory_order_relaxed);
}

} // namespace meshgate::dataplane
