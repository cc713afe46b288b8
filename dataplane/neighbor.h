// IPv4 -> MAC per gateway port, shared by all workers without locks: any worker may learn from an
// ARP packet it received, every worker reads. Entries are never removed, only refreshed, so a
// reader never sees a slot change owner; a MAC and its flags live in one 64-bit word.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <rte_byteorder.h>
#include <rte_ether.h>

namespace meshgate::dataplane
{

class neighbor_table
{
  public:
    static constexpr uint32_t capacity = 4096; // next hops per gateway: nodes and routers
    static constexpr uint32_t max_probes = 32;

    neighbor_table();

    // The MAC of IP on PORT, if resolved.
    bool lookup(uint16_t port, rte_be32_t ip, rte_ether_addr *mac) const;

    // Learned from ARP; does not override a static entry. Returns false when the table is full.
    bool learn(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac);

    // Refreshes IP only if it is already known (gratuitous ARP, ARP not aimed at us).
    void refresh(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac);

    // Configured ([[neighbor]], [[node]].mac): never replaced by ARP.
    bool add_static(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac);

    // No longer configured: the entry keeps its MAC as if learned, and ARP may replace it.
    void remove_static(uint16_t port, rte_be32_t ip);

    // True for one caller per INTERVAL ticks per next hop: that caller sends the ARP request.
    bool claim_request(uint16_t port, rte_be32_t ip, uint64_t now, uint64_t interval);

  private:
    struct alignas(32) entry {
        std::atomic<uint64_t> key{0};          // (port + 1) << 32 | ip; 0 = free
        std::atomic<uint64_t> mac_flags{0};    // MAC in bits 0-47, flags above
        std::atomic<uint64_t> last_request{0}; // TSC of the last ARP request sent
    };

    entry *find(uint64_t key) const;
    entry *find_or_insert(uint64_t key);
    bool store(uint16_t port, rte_be32_t ip, const rte_ether_addr &mac, uint64_t flags);

    std::unique_ptr<entry[]> entries_;
};

} // namespace meshgate::dataplane
