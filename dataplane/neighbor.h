// IPv4 -> MAC per gateway port, shared by all workers without locks: any worker may learn from an
// ARP packet it received, every worker reads. A MAC and its flags live in one 64-bit word.
//
// Bounded: 4096 slots, open addressing over a window of 32. Learned entries age: one confirmed
// (ARP from it) more than refresh_after ago is still used but asked again; one not confirmed for
// valid_for is gone. A full window takes a new next hop in place of its oldest victim: an entry
// learned without our asking (ARP requests to us, answers we had not asked for), an unresolved
// one nobody asked for lately, or an expired one; never a static entry or one that answered our
// request, so spoofed ARP or SYNs toward fake on-link hosts cannot push out nodes and routers.
// Slots are never emptied (a probe stops at an empty one): a victim's slot changes key in place,
// through a tombstone, and readers check the key again after reading the MAC.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <rte_byteorder.h>
#include <rte_ether.h>

namespace meshgate::dataplane
{

enum class neighbor_state : uint8_t {
    missing, // unknown, unresolved or expired: ARP for it
    fresh,   // use the MAC
    stale,   // use the MAC, and ARP for it again (claim_request())
};

class neighbor_table
{
  public:
    static constexpr uint32_t capacity = 4096; // next hops per gateway: nodes and routers
    static constexpr uint32_t max_probes = 32;
    static constexpr uint32_t refresh_after_s = 240; // then each use asks again (1/s)
    static constexpr uint32_t valid_for_s = 300;     // unconfirmed that long: gone
    static constexpr uint32_t unresolved_hold_s = 3; // an unanswered request's slot is kept

    // TSC_HZ turns the ages above into TSC ticks: every `now` below is a TSC reading.
    explicit neighbor_table(uint64_t tsc_hz);

    // The MAC of IP on PORT, and whether it may be used.
    neighbor_state lookup(uint16_t port, rte_be32_t ip, rte_ether_addr *mac, uint64_t now) const;

    // Learned from ARP; does not override a static entry. False when no slot could be had.
    bool learn(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac, uint64_t now);

    // Refreshes IP only if it is already resolved (gratuitous ARP, ARP not aimed at us).
    void refresh(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac, uint64_t now);

    // Configured ([[neighbor]], [[node]].mac): never replaced by ARP, never aged; takes the
    // slot of any learned entry if it must.
    bool add_static(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac);

    // No longer configured: the entry keeps its MAC as if learned at NOW, and ARP may replace it.
    void remove_static(uint16_t port, rte_be32_t ip, uint64_t now);

    // True for one caller per INTERVAL ticks per next hop: that caller sends the ARP request.
    // False too when no slot could be had for it (the packet waits, then is no_neighbor).
    bool claim_request(uint16_t port, rte_be32_t ip, uint64_t now, uint64_t interval);

    // Slots in use, by a scan (the control thread's metrics).
    uint32_t size() const;

  private:
    struct alignas(32) entry {
        std::atomic<uint64_t> key{0};          // (port + 1) << 32 | ip; 0 = free
        std::atomic<uint64_t> mac_flags{0};    // MAC in bits 0-47, flags above
        std::atomic<uint64_t> confirmed{0};    // TSC of the last ARP from it
        std::atomic<uint64_t> last_request{0}; // TSC of the last ARP request sent
    };
    enum class take : uint8_t { victims, any_learned };

    entry *find(uint64_t key) const;
    entry *find_or_insert(uint64_t key, uint64_t now, take what);
    bool store(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac, uint64_t flags,
               uint64_t now, take what);

    std::unique_ptr<entry[]> entries_;
    uint64_t refresh_after_;
    uint64_t valid_for_;
    uint64_t unresolved_hold_;
};

} // namespace meshgate::dataplane
