// The neighbor table: aging of learned entries, static ones that never age, and a full table
// that takes new next hops in place of expendable entries, never of the ones we rely on.
#include <gtest/gtest.h>

#include "dataplane/neighbor.h"

namespace mg = meshgate::dataplane;
using mg::neighbor_state;
using mg::neighbor_table;

namespace
{

constexpr uint64_t hz = 1000; // one tick a millisecond
constexpr uint64_t second = hz;

rte_be32_t ip(uint32_t host_order)
{
    return rte_cpu_to_be_32(host_order);
}

rte_ether_addr mac(uint8_t last)
{
    return rte_ether_addr{{0x02, 0, 0, 0, 0, last}};
}

// An answer to our request: ask, then learn.
void resolve(neighbor_table &n, uint16_t port, rte_be32_t a, const rte_ether_addr &m, uint64_t now)
{
    ASSERT_TRUE(n.claim_request(port, a, now, second));
    ASSERT_TRUE(n.learn(port, a, m, now));
}

TEST(Neighbor, LearnedEntriesAgeThenGo)
{
    neighbor_table n(hz);
    rte_ether_addr got{};
    resolve(n, 0, ip(0x0a000001), mac(1), 1000);
    EXPECT_EQ(n.lookup(0, ip(0x0a000001), &got, 1000), neighbor_state::fresh);
    EXPECT_EQ(got.addr_bytes[5], 1);
    EXPECT_EQ(n.lookup(1, ip(0x0a000001), &got, 1000), neighbor_state::missing); // other port
    const uint64_t stale = 1000 + (neighbor_table::refresh_after_s + 1) * second;
    EXPECT_EQ(n.lookup(0, ip(0x0a000001), &got, stale), neighbor_state::stale);
    const uint64_t gone = 1000 + (neighbor_table::valid_for_s + 1) * second;
    EXPECT_EQ(n.lookup(0, ip(0x0a000001), &got, gone), neighbor_state::missing);
    // it answers again, with a new MAC
    resolve(n, 0, ip(0x0a000001), mac(2), gone);
    EXPECT_EQ(n.lookup(0, ip(0x0a000001), &got, gone), neighbor_state::fresh);
    EXPECT_EQ(got.addr_bytes[5], 2);
}

TEST(Neighbor, StaticEntriesNeverAgeAndArpCannotChangeThem)
{
    neighbor_table n(hz);
    rte_ether_addr got{};
    ASSERT_TRUE(n.add_static(0, ip(0x0a000002), mac(7)));
    ASSERT_TRUE(n.learn(0, ip(0x0a000002), mac(8), 5));
    const uint64_t much_later = 100000 * second;
    EXPECT_EQ(n.lookup(0, ip(0x0a000002), &got, much_later), neighbor_state::fresh);
    EXPECT_EQ(got.addr_bytes[5], 7);
    n.remove_static(0, ip(0x0a000002), much_later); // learned from now on: it ages
    const uint64_t gone = much_later + (neighbor_table::valid_for_s + 1) * second;
    EXPECT_EQ(n.lookup(0, ip(0x0a000002), &got, gone), neighbor_state::missing);
}

// 4096 spoofed senders ARP us: every slot holds an unsolicited entry. Our next hops still
// resolve, and once resolved they are not pushed out by more of the same.
TEST(Neighbor, ArpFloodCannotLockOutNextHops)
{
    neighbor_table n(hz);
    uint64_t now = 1000;
    for (uint32_t i = 0; i < 3 * neighbor_table::capacity; ++i)
        n.learn(0, ip(0xc0a80000 + i), mac(static_cast<uint8_t>(i)), now);
    EXPECT_GE(n.size(), neighbor_table::capacity - 64);
    rte_ether_addr got{};
    const rte_be32_t router = ip(0xcb007101), node = ip(0xc0a8ff0b);
    ASSERT_TRUE(n.claim_request(0, router, now, second));
    ASSERT_TRUE(n.learn(0, router, mac(0xee), now));
    ASSERT_TRUE(n.claim_request(0, node, now, second));
    ASSERT_TRUE(n.learn(0, node, mac(0xef), now));
    for (uint32_t i = 0; i < 3 * neighbor_table::capacity; ++i)
        n.learn(0, ip(0x0b000000 + i), mac(static_cast<uint8_t>(i)), ++now);
    EXPECT_EQ(n.lookup(0, router, &got, now), neighbor_state::fresh);
    EXPECT_EQ(got.addr_bytes[5], 0xee);
    EXPECT_EQ(n.lookup(0, node, &got, now), neighbor_state::fresh);
    EXPECT_EQ(got.addr_bytes[5], 0xef);
}

// SYNs from a large on-link subnet: SYN-ACKs ARP for hosts that do not exist. Unanswered
// requests hold their slot for unresolved_hold_s, then give it to the next next hop.
TEST(Neighbor, UnansweredRequestsGiveTheirSlotsBack)
{
    neighbor_table n(hz);
    uint64_t now = 1000;
    uint32_t claimed = 0;
    for (uint32_t i = 0; i < 2 * neighbor_table::capacity; ++i)
        claimed += n.claim_request(0, ip(0xcb000000 + i), now, second);
    EXPECT_LT(claimed, 2 * neighbor_table::capacity); // the table is full of fresh requests
    now += (neighbor_table::unresolved_hold_s + 1) * second;
    const rte_be32_t real = ip(0xcb00ffee);
    ASSERT_TRUE(n.claim_request(0, real, now, second));
    ASSERT_TRUE(n.learn(0, real, mac(0x42), now));
    rte_ether_addr got{};
    EXPECT_EQ(n.lookup(0, real, &got, now), neighbor_state::fresh);
    EXPECT_LE(n.size(), neighbor_table::capacity);
}

// A configured next hop gets a slot even when every learned one is fresh.
TEST(Neighbor, StaticEntryTakesALearnedSlot)
{
    neighbor_table n(hz);
    for (uint32_t i = 0; i < 2 * neighbor_table::capacity; ++i)
        if (n.claim_request(0, ip(0x0a000000 + i), 1000, second))
            n.learn(0, ip(0x0a000000 + i), mac(1), 1000);
    ASSERT_TRUE(n.add_static(0, ip(0x0a0fffff), mac(9)));
    rte_ether_addr got{};
    EXPECT_EQ(n.lookup(0, ip(0x0a0fffff), &got, 2000), neighbor_state::fresh);
    EXPECT_EQ(got.addr_bytes[5], 9);
}

} // namespace
