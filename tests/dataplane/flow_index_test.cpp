// The connection table's key index against a reference map: millions of random inserts, erases,
// single and bulk lookups; a full index; keys chosen to collide in one bucket and on one
// signature.
#include "dataplane/flow_index.h"

#include <random>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "tests/support/qsbr_var.h"

namespace mg = meshgate::dataplane;
using mg::flow_index;
using mg::flow_key;

namespace
{

using meshgate::test_support::qsbr_var;

// The index lives in EAL memory: one EAL per process, no hugepages, its own file prefix.
class eal_environment : public ::testing::Environment
{
  public:
    void SetUp() override
    {
        const char *argv[] = {"flow_index_test",       "--no-huge",         "-m", "512", "--no-pci",
                              "--file-prefix=fi_test", "--log-level=error", "-l", "0"};
        int argc = sizeof(argv) / sizeof(argv[0]);
        ASSERT_GE(rte_eal_init(argc, const_cast<char **>(argv)), 0) << "rte_eal_init failed";
    }
    void TearDown() override { rte_eal_cleanup(); }
};
[[maybe_unused]] auto *const eal_env = ::testing::AddGlobalTestEnvironment(new eal_environment);

struct key_hash {
    size_t operator()(const flow_key &k) const { return mg::hash_flow(k); }
};

flow_key random_key(std::mt19937_64 &rng)
{
    const uint64_t r = rng();
    return mg::make_flow_key(static_cast<uint32_t>(r), static_cast<uint32_t>(rng()),
                             static_cast<uint16_t>(r >> 32), static_cast<uint16_t>(r >> 48),
                             (r & 1) != 0 ? IPPROTO_TCP : IPPROTO_UDP);
}

// What the connection table gives the index: references to slots that hold the keys. A
// reference's slot keeps its key until the reference is given back.
struct slots {
    std::vector<flow_key> key;
    std::vector<uint32_t> free;
    explicit slots(uint32_t n) : key(n)
    {
        for (uint32_t i = n; i-- > 0;)
            free.push_back(i);
    }
    auto key_of() const
    {
        return [this](uint32_t ref) -> const flow_key & { return key[ref]; };
    }
};

TEST(FlowIndex, ShapeGivesFiveKeysPerBucketAndAnEighthForOverflow)
{
    EXPECT_EQ(flow_index::shape_for(20'000'000).buckets, 4'000'000u);
    EXPECT_EQ(flow_index::shape_for(20'000'000).overflow, 500'000u);
    EXPECT_EQ(flow_index::shape_for(1).buckets, 1u);
    EXPECT_EQ(flow_index::shape_for(1).overflow, 4u);
    // 10M connections, two keys each: 4.5M buckets, the pool's stack and its retired ring
    // (2^19 entries of 16 bytes): 29.8 bytes per connection.
    EXPECT_EQ(flow_index::shape_for(20'000'000).bytes(), 288'000'000u + 2'000'000u + 8'388'608u);
}

// The hash made from a packet's fields in registers is the CRC of the key in memory, which every
// other caller hashes: a flow's two packets in one burst must land in one bucket.
TEST(FlowKey, HashOfFieldsIsTheHashOfTheKeyInMemory)
{
    std::mt19937_64 rng(18);
    for (int i = 0; i < 100'000; i++) {
        const uint64_t r = rng();
        const flow_key k = mg::make_flow_key(
            static_cast<uint32_t>(r), static_cast<uint32_t>(r >> 32), static_cast<uint16_t>(rng()),
            static_cast<uint16_t>(rng()), i % 2 ? IPPROTO_TCP : IPPROTO_UDP);
        ASSERT_EQ(mg::hash_flow(k.src_ip, k.dst_ip, k.src_port, k.dst_port, k.proto),
                  rte_hash_crc(&k, sizeof k, 0));
        ASSERT_EQ(mg::hash_flow(k), rte_hash_crc(&k, sizeof k, 0));
    }
}

// Random operations, checked after each against std::unordered_map; the index holds up to its
// sizing (two keys per connection of a full table).
TEST(FlowIndex, RandomOperationsMatchAReferenceMap)
{
    constexpr uint32_t capacity = 50'000; // keys
    qsbr_var rcu;
    flow_index index(capacity, SOCKET_ID_ANY, rcu.v);
    slots s(capacity);
    std::unordered_map<flow_key, uint32_t, key_hash> model;
    std::vector<flow_key> live; // for picking one at random
    std::mt19937_64 rng(20261206);
    uint64_t inserted = 0, erased = 0, found = 0, missed = 0, bulk = 0;

    for (uint32_t op = 0; op < 3'000'000; op++) {
        if (op % 64 == 0) rcu.quiescent(); // a worker's burst: retired buckets come back
        const uint32_t what = rng() % 100;
        if (what < 45 && !s.free.empty()) {
            const flow_key k = random_key(rng);
            if (model.contains(k)) continue;
            const uint32_t ref = s.free.back();
            s.free.pop_back();
            s.key[ref] = k;
            ASSERT_TRUE(index.insert(mg::hash_flow(k), ref)) << "op " << op;
            model.emplace(k, ref);
            live.push_back(k);
            inserted++;
        } else if (what < 85 && !live.empty()) {
            const size_t at = rng() % live.size();
            const flow_key k = live[at];
            const uint32_t ref = model.at(k);
            ASSERT_TRUE(index.erase(mg::hash_flow(k), ref));
            ASSERT_EQ(index.find(k, mg::hash_flow(k), s.key_of()), flow_index::empty);
            model.erase(k);
            live[at] = live.back();
            live.pop_back();
            s.free.push_back(ref); // reused at once, as the index allows
            erased++;
        } else if (what < 95) {
            // One live key and one absent key.
            if (!live.empty()) {
                const flow_key k = live[rng() % live.size()];
                ASSERT_EQ(index.find(k, mg::hash_flow(k), s.key_of()), model.at(k));
                found++;
            }
            const flow_key absent = random_key(rng);
            if (!model.contains(absent)) {
                ASSERT_EQ(index.find(absent, mg::hash_flow(absent), s.key_of()), flow_index::empty);
                missed++;
            }
        } else {
            // A burst of 32, live and absent mixed, as the workers look up.
            const flow_key *keys[32];
            flow_key storage[32];
            mg::flow_key_hash hashes[32];
            uint32_t refs[32];
            for (uint32_t i = 0; i < 32; i++) {
                storage[i] =
                    (i % 3 != 0 && !live.empty()) ? live[rng() % live.size()] : random_key(rng);
                keys[i] = &storage[i];
                hashes[i] = mg::hash_flow(storage[i]);
            }
            index.find_bulk(keys, hashes, 32, refs, s.key_of());
            for (uint32_t i = 0; i < 32; i++) {
                const auto it = model.find(storage[i]);
                ASSERT_EQ(refs[i], it == model.end() ? flow_index::empty : it->second);
            }
            bulk++;
        }
    }
    // Every key the model holds is found, and nothing else.
    for (const auto &[k, ref] : model)
        ASSERT_EQ(index.find(k, mg::hash_flow(k), s.key_of()), ref);
    EXPECT_GT(inserted, 1'000'000u);
    EXPECT_GT(erased, 900'000u);
    EXPECT_GT(found + missed + bulk, 300'000u);
    EXPECT_GT(model.size(), capacity * 9 / 10) << "the index was not driven near full";
}

// Filled to its sizing with random keys (what a full connection table puts in it), every insert
// succeeds and the overflow pool is far from used up.
TEST(FlowIndex, FullAtItsSizingWithRoomToSpare)
{
    for (uint32_t keys : {32u, 1000u, 200'000u, 2'000'000u}) {
        qsbr_var rcu;
        flow_index index(keys, SOCKET_ID_ANY, rcu.v);
        slots s(keys);
        std::mt19937_64 rng(keys);
        for (uint32_t ref = 0; ref < keys; ref++) {
            s.key[ref] = random_key(rng);
            ASSERT_TRUE(index.insert(mg::hash_flow(s.key[ref]), ref)) << keys << " keys, " << ref;
        }
        for (uint32_t ref = 0; ref < keys; ref++)
            ASSERT_EQ(index.find(s.key[ref], mg::hash_flow(s.key[ref]), s.key_of()), ref);
        EXPECT_LE(index.overflow_used(), index.overflow_capacity() / 2) << keys << " keys";
    }
}

// Keys found by brute force to share one bucket: a chain takes 1 + max_chain buckets of them,
// the next insert fails, everyone else's keys are still inserted and found, and freed entries
// in the chain are taken again.
TEST(FlowIndex, KeysCollidingInOneBucketAreBoundedAndHarmNoOne)
{
    constexpr uint32_t keys = 1000;
    qsbr_var rcu;
    flow_index index(keys, SOCKET_ID_ANY, rcu.v);
    slots s(keys + 200);
    std::mt19937_64 rng(7);
    const uint32_t target = 3;
    std::vector<flow_key> colliding;
    while (colliding.size() < 60) {
        const flow_key k = random_key(rng);
        if (index.bucket_of(mg::hash_flow(k)) == target) colliding.push_back(k);
    }
    constexpr uint32_t chain_room = flow_index::bucket_entries * (1 + flow_index::max_chain);
    uint32_t ref = 0;
    for (uint32_t i = 0; i < colliding.size(); i++, ref++) {
        s.key[ref] = colliding[i];
        EXPECT_EQ(index.insert(mg::hash_flow(colliding[i]), ref), i < chain_room) << i;
    }
    // Others: a few hundred random keys, all in.
    const uint32_t first_other = ref;
    for (; ref < first_other + 400; ref++) {
        do
            s.key[ref] = random_key(rng);
        while (index.bucket_of(mg::hash_flow(s.key[ref])) == target);
        ASSERT_TRUE(index.insert(mg::hash_flow(s.key[ref]), ref));
    }
    for (uint32_t r = 0; r < ref; r++) {
        const uint32_t expect = r < chain_room || r >= first_other ? r : flow_index::empty;
        ASSERT_EQ(index.find(s.key[r], mg::hash_flow(s.key[r]), s.key_of()), expect) << r;
    }
    // Entries freed deep in the chain are reused by the keys that did not fit.
    ASSERT_TRUE(index.erase(mg::hash_flow(s.key[45]), 45));
    ASSERT_TRUE(index.erase(mg::hash_flow(s.key[2]), 2));
    ASSERT_TRUE(index.insert(mg::hash_flow(s.key[50]), 50));
    ASSERT_TRUE(index.insert(mg::hash_flow(s.key[51]), 51));
    EXPECT_FALSE(index.insert(mg::hash_flow(s.key[52]), 52));
    EXPECT_EQ(index.find(s.key[50], mg::hash_flow(s.key[50]), s.key_of()), 50u);
    EXPECT_EQ(index.find(s.key[51], mg::hash_flow(s.key[51]), s.key_of()), 51u);
    EXPECT_EQ(index.find(s.key[45], mg::hash_flow(s.key[45]), s.key_of()), flow_index::empty);
    EXPECT_EQ(index.overflow_used(), flow_index::max_chain);
}

// Keys with the same bucket and the same signature: only the slot's key tells them apart, in
// single and bulk lookups.
TEST(FlowIndex, KeysSharingASignatureAreToldApartByTheirSlots)
{
    qsbr_var rcu;
    flow_index index(10, SOCKET_ID_ANY, rcu.v); // 2 buckets
    slots s(16);
    std::mt19937_64 rng(11);
    flow_key first = random_key(rng);
    const mg::flow_key_hash h0 = mg::hash_flow(first);
    std::vector<flow_key> twins{first};
    while (twins.size() < 12) {
        const flow_key k = random_key(rng);
        const mg::flow_key_hash h = mg::hash_flow(k);
        if (index.bucket_of(h) == index.bucket_of(h0) &&
            flow_index::signature(h) == flow_index::signature(h0))
            twins.push_back(k);
    }
    for (uint32_t i = 0; i < twins.size(); i++) {
        s.key[i] = twins[i];
        ASSERT_TRUE(index.insert(mg::hash_flow(twins[i]), i));
    }
    const flow_key *keys[12];
    mg::flow_key_hash hashes[12];
    uint32_t refs[12];
    for (uint32_t i = 0; i < 12; i++) {
        EXPECT_EQ(index.find(twins[i], mg::hash_flow(twins[i]), s.key_of()), i);
        keys[i] = &twins[i];
        hashes[i] = mg::hash_flow(twins[i]);
    }
    index.find_bulk(keys, hashes, 12, refs, s.key_of());
    for (uint32_t i = 0; i < 12; i++)
        EXPECT_EQ(refs[i], i);
    // One of them gone: the others still found, it not.
    ASSERT_TRUE(index.erase(hashes[4], 4));
    index.find_bulk(keys, hashes, 12, refs, s.key_of());
    for (uint32_t i = 0; i < 12; i++)
        EXPECT_EQ(refs[i], i == 4 ? flow_index::empty : i);
}

// A bucket that overflows again and again (its keys come and go): the overflow buckets its
// chain took go back to the pool once readers passed a quiescent state, and the pool never
// runs out. Without a grace period they stay out.
TEST(FlowIndex, OverflowBucketsReturnToThePoolAfterAGracePeriod)
{
    constexpr uint32_t keys = 200; // 40 buckets, a pool of 5
    qsbr_var rcu;
    flow_index index(keys, SOCKET_ID_ANY, rcu.v);
    slots s(64);
    std::mt19937_64 rng(5);
    std::vector<flow_key> colliding;
    while (colliding.size() < 50) {
        const flow_key k = random_key(rng);
        if (index.bucket_of(mg::hash_flow(k)) == 0) colliding.push_back(k);
    }
    for (uint32_t i = 0; i < 50; i++)
        s.key[i] = colliding[i];
    for (uint32_t round = 0; round < 1000; round++) {
        for (uint32_t i = 0; i < 50; i++)
            ASSERT_TRUE(index.insert(mg::hash_flow(s.key[i]), i)) << round << " " << i;
        ASSERT_EQ(index.overflow_used(), 4u);
        for (uint32_t i = 0; i < 50; i++)
            ASSERT_EQ(index.find(s.key[i], mg::hash_flow(s.key[i]), s.key_of()), i);
        for (uint32_t i = 0; i < 50; i++)
            ASSERT_TRUE(index.erase(mg::hash_flow(s.key[i]), i));
        rcu.quiescent();
    }
    // No quiescent state: the 4 retired buckets wait, one is left for the next chain.
    for (uint32_t i = 0; i < 50; i++)
        ASSERT_TRUE(index.insert(mg::hash_flow(s.key[i]), i));
    for (uint32_t i = 0; i < 50; i++)
        ASSERT_TRUE(index.erase(mg::hash_flow(s.key[i]), i));
    for (uint32_t i = 0; i < 20; i++)
        ASSERT_TRUE(index.insert(mg::hash_flow(s.key[i]), i));
    EXPECT_FALSE(index.insert(mg::hash_flow(s.key[20]), 20));
    rcu.quiescent();
    EXPECT_TRUE(index.insert(mg::hash_flow(s.key[20]), 20));
}

} // namespace
