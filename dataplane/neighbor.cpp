#include "dataplane/neighbor.h"

#include <algorithm>
#include <cstring>

#include <rte_hash_crc.h>

namespace meshgate::dataplane
{

namespace
{

constexpr uint64_t flag_valid = uint64_t{1} << 48;
constexpr uint64_t flag_static = uint64_t{1} << 49;
constexpr uint64_t flag_unsolicited = uint64_t{1} << 50; // learned without our asking: expendable
constexpr uint64_t mac_mask = (uint64_t{1} << 48) - 1;
constexpr uint64_t tombstone = UINT64_MAX; // a slot changing key: no key matches it

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

neighbor_table::neighbor_table(uint64_t tsc_hz)
    : entries_(new entry[capacity]), refresh_after_(refresh_after_s * tsc_hz),
      valid_for_(valid_for_s * tsc_hz), unresolved_hold_(unresolved_hold_s * tsc_hz)
{
}

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

neighbor_table::entry *neighbor_table::find_or_insert(uint64_t key, uint64_t now, take what)
{
    const uint32_t slot = slot_of(key);
    for (int attempt = 0; attempt < 4; ++attempt) {
        entry *victim = nullptr;
        uint64_t victim_age = 0;
        for (uint32_t i = 0; i < max_probes; ++i) {
            entry &e = entries_[(slot + i) & (capacity - 1)];
            uint64_t k = e.key.load(std::memory_order_acquire);
            if (k == 0 && e.key.compare_exchange_strong(k, key, std::memory_order_acq_rel)) {
                e.confirmed.store(now, std::memory_order_relaxed); // not a victim at once
                return &e;
            }
            if (k == key) return &e; // present, or another worker inserted it just now
            if (k == tombstone) continue;
            const uint64_t v = e.mac_flags.load(std::memory_order_relaxed);
            if (v & flag_static) continue;
            // Since it was last heard from, asked for, or put here.
            const uint64_t last = std::max(e.confirmed.load(std::memory_order_relaxed),
                                           e.last_request.load(std::memory_order_relaxed));
            const uint64_t age = now > last ? now - last : 0; // workers' TSCs differ a little
            const bool expendable = what == take::any_learned || (v & flag_unsolicited) ||
                                    ((v & flag_valid) ? age > valid_for_ : age > unresolved_hold_);
            if (expendable && (victim == nullptr || age > victim_age)) {
                victim = &e;
                victim_age = age;
            }
        }
        if (victim == nullptr) return nullptr;
        uint64_t k = victim->key.load(std::memory_order_acquire);
        if (k == tombstone ||
            !victim->key.compare_exchange_strong(k, tombstone, std::memory_order_acq_rel))
            continue; // another worker took it: look again
        victim->mac_flags.store(0, std::memory_order_release);
        victim->confirmed.store(now, std::memory_order_relaxed);
        victim->last_request.store(0, std::memory_order_relaxed);
        victim->key.store(key, std::memory_order_release);
        return victim;
    }
    return nullptr;
}

neighbor_state neighbor_table::lookup(uint16_t port, rte_be32_t ip, rte_ether_addr *mac,
                                      uint64_t now) const
{
    const uint64_t key = key_of(port, ip);
    const entry *e = find(key);
    if (e == nullptr) return neighbor_state::missing;
    const uint64_t v = e->mac_flags.load(std::memory_order_acquire);
    const uint64_t confirmed = e->confirmed.load(std::memory_order_relaxed);
    // The slot may have changed key since find() saw it: then v is another neighbor's.
    if ((v & flag_valid) == 0 || e->key.load(std::memory_order_relaxed) != key)
        return neighbor_state::missing;
    if (!(v & flag_static)) {
        const uint64_t age = now > confirmed ? now - confirmed : 0;
        if (age > valid_for_) return neighbor_state::missing;
        std::memcpy(mac->addr_bytes, &v, RTE_ETHER_ADDR_LEN);
        return age > refresh_after_ ? neighbor_state::stale : neighbor_state::fresh;
    }
    std::memcpy(mac->addr_bytes, &v, RTE_ETHER_ADDR_LEN);
    return neighbor_state::fresh;
}

bool neighbor_table::store(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac, uint64_t flags,
                           uint64_t now, take what)
{
    entry *e = find_or_insert(key_of(port, ip), now, what);
    if (e == nullptr) return false;
    uint64_t cur = e->mac_flags.load(std::memory_order_relaxed);
    if ((cur & flag_static) && !(flags & flag_static)) return true; // configured entries win
    if (flags & flag_unsolicited) {
        // An answer to our request, or news of a neighbor we asked for before, is kept.
        const uint64_t asked = e->last_request.load(std::memory_order_relaxed);
        const bool outstanding = asked != 0 && now - asked <= unresolved_hold_;
        const bool kept = (cur & flag_valid) && !(cur & flag_unsolicited);
        if (outstanding || kept) flags &= ~flag_unsolicited;
    }
    uint64_t next = (pack(mac) & mac_mask) | flag_valid | flags;
    e->confirmed.store(now, std::memory_order_relaxed);
    while (cur != next &&
           !e->mac_flags.compare_exchange_weak(cur, next, std::memory_order_release)) {
        if ((cur & flag_static) && !(flags & flag_static)) return true;
    }
    return true;
}

bool neighbor_table::learn(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac, uint64_t now)
{
    return store(port, ip, mac, flag_unsolicited, now, take::victims);
}

void neighbor_table::refresh(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac, uint64_t now)
{
    const entry *e = find(key_of(port, ip));
    if (e == nullptr) return;
    const uint64_t v = e->mac_flags.load(std::memory_order_relaxed);
    if (v & flag_valid) store(port, ip, mac, v & flag_unsolicited, now, take::victims);
}

bool neighbor_table::add_static(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac)
{
    return store(port, ip, mac, flag_static, 0, take::any_learned);
}

void neighbor_table::remove_static(uint16_t port, rte_be32_t ip, uint64_t now)
{
    entry *e = find(key_of(port, ip));
    if (e == nullptr) return;
    e->confirmed.store(now, std::memory_order_relaxed);
    e->mac_flags.fetch_and(~flag_static, std::memory_order_release);
}

bool neighbor_table::claim_request(uint16_t port, rte_be32_t ip, uint64_t now, uint64_t interval)
{
    entry *e = find_or_insert(key_of(port, ip), now, take::victims);
    if (e == nullptr) return false;
    uint64_t last = e->last_request.load(std::memory_order_relaxed);
    if (last != 0 && now - last < interval) return false;
    return e->last_request.compare_exchange_strong(last, now, std::memory_order_relaxed);
}

uint32_t neighbor_table::size() const
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < capacity; ++i) {
        const uint64_t k = entries_[i].key.load(std::memory_order_relaxed);
        n += k != 0 && k != tombstone;
    }
    return n;
}

} // namespace meshgate::dataplane
