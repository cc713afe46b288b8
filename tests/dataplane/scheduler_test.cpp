// Unit tests of the per-service schedulers: exact sequences where the algorithm defines one
// (rr, wrr, lc, wlc, pinned Maglev slots), shares over 100k flows where it is statistical.
#include "dataplane/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace meshgate::dataplane
{
namespace
{

constexpr int flow_count = 100000;

// Tasks 10.255.0.2, .3, ... with the given weights, identified as the control plane would.
std::vector<scheduler_task> tasks_with(std::vector<uint32_t> weights)
{
    std::vector<scheduler_task> tasks;
    for (uint32_t i = 0; i < weights.size(); ++i)
        tasks.push_back({.id = task_identity(0x0aff0002 + i, 80), .weight = weights[i], .key = i});
    return tasks;
}

struct flow {
    uint32_t ip;
    uint16_t port;
};

// mt19937's output is fixed by the standard (its distributions are not): same flows everywhere.
std::vector<flow> random_flows(int n, uint32_t seed = 4242)
{
    std::mt19937 rng(seed);
    std::vector<flow> flows(n);
    for (flow &f : flows) {
        f.ip = static_cast<uint32_t>(rng());
        f.port = static_cast<uint16_t>(rng() >> 16);
    }
    return flows;
}

// Picks over the flows; each pick opens a connection that lives for the next 1000 picks, so
// lc/wlc see loads rise and fall as a connection table would make them.
std::vector<uint32_t> pick_counts(const service_scheduler &s, const std::vector<flow> &flows)
{
    std::vector<std::atomic<uint32_t>> active(s.task_count);
    std::vector<uint32_t> counts(s.task_count, 0);
    std::deque<uint32_t> open;
    scheduler_cursor cursor{};
    for (const flow &f : flows) {
        uint32_t task = pick_task(s, cursor, active, f.ip, f.port);
        EXPECT_LT(task, s.task_count);
        if (task >= s.task_count) return counts;
        ++counts[task];
        active[task].fetch_add(1, std::memory_order_relaxed);
        open.push_back(task);
        if (open.size() > 1000) {
            active[open.front()].fetch_sub(1, std::memory_order_relaxed);
            open.pop_front();
        }
    }
    return counts;
}

// Each task's share of the flows is within 2% (relative) of its share of the weight.
void expect_shares(const std::vector<uint32_t> &counts, const std::vector<uint32_t> &weights)
{
    uint64_t total = 0, weight_total = 0;
    for (uint32_t c : counts)
        total += c;
    for (uint32_t w : weights)
        weight_total += w;
    ASSERT_EQ(counts.size(), weights.size());
    for (size_t i = 0; i < counts.size(); ++i) {
        double share = double(counts[i]) / double(total);
        double expected = double(weights[i]) / double(weight_total);
        EXPECT_NEAR(share, expected, 0.02 * expected) << "task " << i << " weight " << weights[i];
    }
}

void expect_distribution(scheduler_kind kind, std::vector<uint32_t> weights,
                         std::vector<uint32_t> expected_weights)
{
    auto tasks = tasks_with(weights);
    service_scheduler s = build_scheduler(kind, tasks);
    expect_shares(pick_counts(s, random_flows(flow_count)), expected_weights);
}

// --- flow hash -----------------------------------------------------------------------------

TEST(FlowHash, PinnedValues)
{
    // The hash is a contract between gateways: a change here moves every flow of every service.
    EXPECT_EQ(flow_hash(0xc0000201, 40000), 3238215331u);
    EXPECT_EQ(address_hash(0xc0000201), 415567982u);
    EXPECT_EQ(task_identity(0x0aff0005, 80), 10685105485298664743u);
}

TEST(FlowHash, PortMattersOnlyForFlowHash)
{
    EXPECT_NE(flow_hash(0xc0000201, 40000), flow_hash(0xc0000201, 40001));
    EXPECT_NE(flow_hash(0xc0000201, 40000), flow_hash(0xc0000202, 40000));
    EXPECT_NE(address_hash(0xc0000201), address_hash(0xc0000202));
}

TEST(Fastmod, MatchesModulo)
{
    std::mt19937 rng(7);
    for (uint32_t d : {1u, 2u, 13u, 4096u, 65537u, 131071u, 16777213u, 0xffffffffu}) {
        uint64_t m = fastmod_constant(d);
        for (uint32_t a : {0u, 1u, d - 1, d, 0xffffffffu})
            EXPECT_EQ(fastmod(a, m, d), a % d) << a << " % " << d;
        for (int i = 0; i < 10000; ++i) {
            uint32_t a = static_cast<uint32_t>(rng());
            ASSERT_EQ(fastmod(a, m, d), a % d) << a << " % " << d;
        }
    }
}

// --- Maglev --------------------------------------------------------------------------------

TEST(Maglev, TableSizeHelper)
{
    EXPECT_EQ(maglev_table_size_for(0), 65537u);
    EXPECT_EQ(maglev_table_size_for(100), 65537u);
    EXPECT_EQ(maglev_table_size_for(655), 65537u);
    EXPECT_EQ(maglev_table_size_for(656), 131071u);
    EXPECT_EQ(maglev_table_size_for(10000), 1048573u);
    for (size_t n : {1u, 700u, 3000u, 6000u, 11000u, 21000u, 42000u, 84000u, 1000000u}) {
        uint32_t size = maglev_table_size_for(n);
        EXPECT_TRUE(is_prime(size)) << size;
        if (n <= 167772) {
            EXPECT_GE(size, 100 * n);
        }
    }
}

TEST(Maglev, PinnedSmallTable)
{
    // Any change to the builder or the seeds shows up here: update only on purpose.
    auto tasks = tasks_with({1, 1, 1});
    std::vector<uint32_t> expected = {2, 2, 1, 1, 2, 2, 0, 0, 0, 2, 1, 1, 0};
    EXPECT_EQ(build_maglev_table(tasks, 13), expected);
}

TEST(Maglev, PinnedDefaultTable)
{
    auto tasks = tasks_with({1, 2, 3});
    std::vector<uint32_t> table = build_maglev_table(tasks, 65537);
    std::vector<uint32_t> first(table.begin(), table.begin() + 16);
    std::vector<uint32_t> expected = {1, 1, 1, 1, 1, 1, 1, 0, 2, 0, 2, 0, 2, 0, 2, 0};
    EXPECT_EQ(first, expected);
}

TEST(Maglev, IndependentBuildsAreIdentical)
{
    auto tasks = tasks_with({3, 1, 4, 1, 5, 9, 2, 6});
    EXPECT_EQ(build_maglev_table(tasks, 65537), build_maglev_table(tasks, 65537));
    EXPECT_EQ(build_scheduler(scheduler_kind::maglev, tasks).table,
              build_scheduler(scheduler_kind::maglev, tasks).table);
}

TEST(Maglev, ConfigOrderDoesNotMoveSlots)
{
    auto tasks = tasks_with({3, 1, 4, 1, 5, 9, 2, 6});
    auto reversed = tasks;
    std::reverse(reversed.begin(), reversed.end());
    auto a = build_maglev_table(tasks, 65537);
    auto b = build_maglev_table(reversed, 65537);
    for (size_t slot = 0; slot < a.size(); ++slot)
        ASSERT_EQ(tasks[a[slot]].id, reversed[b[slot]].id) << "slot " << slot;
}

TEST(Maglev, SlotsInProportionToWeight)
{
    for (std::vector<uint32_t> weights :
         {std::vector<uint32_t>{1, 2, 3, 4}, {1, 1, 1, 1, 1}, {10, 1}, {7, 100, 33}}) {
        auto tasks = tasks_with(weights);
        auto table = build_maglev_table(tasks, 65537);
        std::vector<uint32_t> slots(tasks.size(), 0);
        for (uint32_t t : table) {
            ASSERT_LT(t, tasks.size());
            ++slots[t];
        }
        uint64_t weight_total = 0;
        for (uint32_t w : weights)
            weight_total += w;
        for (size_t i = 0; i < tasks.size(); ++i) {
            double expected = 65537.0 * weights[i] / double(weight_total);
            // Weighted turns round to one slot per task per round, not to a fraction.
            EXPECT_NEAR(slots[i], expected, 2.0) << "task " << i;
        }
    }
}

TEST(Maglev, DrainedTaskGetsNoSlots)
{
    auto tasks = tasks_with({1, 0, 1, 2});
    auto table = build_maglev_table(tasks, 65537);
    EXPECT_EQ(std::count(table.begin(), table.end(), 1u), 0);
    EXPECT_EQ(std::count(table.begin(), table.end(), no_task), 0);

    // Draining is removal as far as new flows go.
    auto removed = tasks_with({1, 0, 1, 2});
    removed.erase(removed.begin() + 1);
    auto without = build_maglev_table(removed, 65537);
    for (size_t slot = 0; slot < table.size(); ++slot)
        ASSERT_EQ(tasks[table[slot]].id, removed[without[slot]].id);
}

TEST(Maglev, NoLiveTaskMeansNoTask)
{
    auto none = build_maglev_table({}, 13);
    EXPECT_EQ(none, std::vector<uint32_t>(13, no_task));
    auto zero = tasks_with({0, 0, 0});
    auto drained = build_maglev_table(zero, 65537);
    EXPECT_EQ(std::count(drained.begin(), drained.end(), no_task), 65537);
}

TEST(Maglev, RejectsTableSizeThatIsNotPrime)
{
    auto tasks = tasks_with({1, 1});
    EXPECT_THROW(build_maglev_table(tasks, 65536), std::invalid_argument);
    EXPECT_THROW(build_maglev_table(tasks, 1), std::invalid_argument);
    EXPECT_THROW(build_maglev_table(tasks, 0), std::invalid_argument);
    EXPECT_THROW(build_scheduler(scheduler_kind::maglev, tasks, 1000), std::invalid_argument);
}

// Fraction of flows whose task differs between two schedulers; keys name the same task in both.
double moved_fraction(const std::vector<scheduler_task> &a_tasks,
                      const std::vector<scheduler_task> &b_tasks, const std::vector<flow> &flows)
{
    service_scheduler a = build_scheduler(scheduler_kind::maglev, a_tasks);
    service_scheduler b = build_scheduler(scheduler_kind::maglev, b_tasks);
    scheduler_cursor cursor{};
    int moved = 0;
    for (const flow &f : flows)
        moved += pick_task(a, cursor, {}, f.ip, f.port) != pick_task(b, cursor, {}, f.ip, f.port);
    return double(moved) / double(flows.size());
}

TEST(Maglev, RemovingOneOfNMovesAboutOneNth)
{
    auto flows = random_flows(flow_count);
    for (uint32_t n : {3u, 5u, 10u}) {
        auto all = tasks_with(std::vector<uint32_t>(n, 1));
        for (uint32_t gone : {0u, n / 2, n - 1}) {
            auto fewer = all;
            fewer.erase(fewer.begin() + gone);
            double bound = 1.0 / n + 0.02;
            EXPECT_LE(moved_fraction(all, fewer, flows), bound) << "remove " << gone << " of " << n;
            EXPECT_LE(moved_fraction(fewer, all, flows), bound)
                << "add back " << gone << " of " << n;
        }
    }
}

// --- distributions over 100k flows ---------------------------------------------------------

TEST(Distribution, Maglev)
{
    expect_distribution(scheduler_kind::maglev, {1, 2, 3, 4}, {1, 2, 3, 4});
    expect_distribution(scheduler_kind::maglev, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1});
    expect_distribution(scheduler_kind::maglev, {5, 0, 5}, {1, 0, 1});
}

TEST(Distribution, RoundRobinIgnoresWeightsAboveZero)
{
    expect_distribution(scheduler_kind::rr, {1, 2, 3, 4}, {1, 1, 1, 1});
    expect_distribution(scheduler_kind::rr, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1});
    expect_distribution(scheduler_kind::rr, {1, 0, 7}, {1, 0, 1});
}

TEST(Distribution, WeightedRoundRobin)
{
    expect_distribution(scheduler_kind::wrr, {1, 2, 3, 4}, {1, 2, 3, 4});
    expect_distribution(scheduler_kind::wrr, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1});
    expect_distribution(scheduler_kind::wrr, {4, 0, 2}, {2, 0, 1});
}

TEST(Distribution, LeastConnectionsEvensOutLoad)
{
    expect_distribution(scheduler_kind::lc, {1, 2, 3, 4}, {1, 1, 1, 1});
    expect_distribution(scheduler_kind::lc, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1});
}

TEST(Distribution, WeightedLeastConnections)
{
    expect_distribution(scheduler_kind::wlc, {1, 2, 3, 4}, {1, 2, 3, 4});
    expect_distribution(scheduler_kind::wlc, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1});
    expect_distribution(scheduler_kind::wlc, {2, 0, 6}, {1, 0, 3});
}

TEST(Distribution, SourceHashing)
{
    expect_distribution(scheduler_kind::sh, {1, 2, 3, 4}, {1, 2, 3, 4});
    expect_distribution(scheduler_kind::sh, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1});
}

// --- exact sequences -----------------------------------------------------------------------

std::vector<uint32_t> sequence(const service_scheduler &s, scheduler_cursor &cursor, int n)
{
    std::vector<uint32_t> picks;
    for (int i = 0; i < n; ++i)
        picks.push_back(pick_task(s, cursor, {}, 0, 0));
    return picks;
}

TEST(RoundRobin, ExactOrderSkipsDrainedTasks)
{
    auto tasks = tasks_with({1, 0, 2, 1});
    service_scheduler s = build_scheduler(scheduler_kind::rr, tasks);
    scheduler_cursor cursor{};
    EXPECT_EQ(sequence(s, cursor, 7), (std::vector<uint32_t>{0, 2, 3, 0, 2, 3, 0}));
}

// Workers share a service's cursor: two threads picking at once still share the tasks exactly.
TEST(RoundRobin, TwoWorkersPickingAtOnceTakeTurnsExactly)
{
    for (scheduler_kind kind : {scheduler_kind::rr, scheduler_kind::wrr}) {
        auto tasks = tasks_with({1, 2, 1});
        service_scheduler s = build_scheduler(kind, tasks);
        scheduler_cursor cursor{};
        constexpr int picks = 200000; // per thread; a multiple of the cycle (3 for rr, 4 for wrr)
        std::vector<uint32_t> counts[2] = {std::vector<uint32_t>(3), std::vector<uint32_t>(3)};
        std::thread other([&] {
            for (int i = 0; i < picks; ++i)
                ++counts[1][pick_task(s, cursor, {}, 0, 0)];
        });
        for (int i = 0; i < picks; ++i)
            ++counts[0][pick_task(s, cursor, {}, 0, 0)];
        other.join();
        std::vector<uint32_t> total(3);
        for (size_t t = 0; t < 3; ++t)
            total[t] = counts[0][t] + counts[1][t];
        const std::vector<uint32_t> expected = kind == scheduler_kind::rr
                                                   ? std::vector<uint32_t>{133334, 133333, 133333}
                                                   : std::vector<uint32_t>{100000, 200000, 100000};
        EXPECT_EQ(total, expected) << scheduler_kind_names[static_cast<size_t>(kind)];
    }
}

TEST(RoundRobin, CursorFromALargerServiceIsRepaired)
{
    auto big = tasks_with({1, 1, 1, 1, 1});
    auto small = tasks_with({1, 1});
    service_scheduler before = build_scheduler(scheduler_kind::rr, big);
    service_scheduler after = build_scheduler(scheduler_kind::rr, small);
    scheduler_cursor cursor{};
    sequence(before, cursor, 4);
    EXPECT_EQ(sequence(after, cursor, 3), (std::vector<uint32_t>{0, 1, 0}));
}

TEST(WeightedRoundRobin, IpvsSequenceFor432)
{
    // ip_vs_wrr.c with weights A=4, B=3, C=2 schedules AABABCABC, then again.
    auto tasks = tasks_with({4, 3, 2});
    service_scheduler s = build_scheduler(scheduler_kind::wrr, tasks);
    scheduler_cursor cursor{};
    std::vector<uint32_t> period = {0, 0, 1, 0, 1, 2, 0, 1, 2};
    std::vector<uint32_t> expected = period;
    expected.insert(expected.end(), period.begin(), period.end());
    EXPECT_EQ(sequence(s, cursor, 18), expected);
}

TEST(WeightedRoundRobin, GcdStepAndDrainedTask)
{
    // gcd 2, mw = 4 - (2 - 1) = 3: cw runs 3, 1, 3, ... giving A, A C, A, A C.
    auto tasks = tasks_with({4, 0, 2});
    service_scheduler s = build_scheduler(scheduler_kind::wrr, tasks);
    EXPECT_EQ(s.wrr_gcd, 2);
    EXPECT_EQ(s.wrr_max, 3);
    scheduler_cursor cursor{};
    EXPECT_EQ(sequence(s, cursor, 6), (std::vector<uint32_t>{0, 0, 2, 0, 0, 2}));
}

TEST(WeightedRoundRobin, EqualWeightsAreRoundRobin)
{
    auto tasks = tasks_with({5, 5, 5});
    service_scheduler s = build_scheduler(scheduler_kind::wrr, tasks);
    scheduler_cursor cursor{};
    EXPECT_EQ(sequence(s, cursor, 6), (std::vector<uint32_t>{0, 1, 2, 0, 1, 2}));
}

TEST(WeightedRoundRobin, CursorFromAHeavierServiceIsRepaired)
{
    service_scheduler before = build_scheduler(scheduler_kind::wrr, tasks_with({100, 1, 1, 1}));
    service_scheduler after = build_scheduler(scheduler_kind::wrr, tasks_with({4, 3}));
    scheduler_cursor cursor{};
    sequence(before, cursor, 3);
    EXPECT_EQ(sequence(after, cursor, 7), (std::vector<uint32_t>{0, 0, 1, 0, 1, 0, 1}));
}

std::vector<std::atomic<uint32_t>> loads(std::vector<uint32_t> values)
{
    std::vector<std::atomic<uint32_t>> active(values.size());
    for (size_t i = 0; i < values.size(); ++i)
        active[i] = values[i];
    return active;
}

uint32_t pick_with_loads(scheduler_kind kind, std::vector<uint32_t> weights,
                         std::vector<uint32_t> active_counts)
{
    service_scheduler s = build_scheduler(kind, tasks_with(weights));
    scheduler_cursor cursor{};
    auto active = loads(active_counts);
    return pick_task(s, cursor, active, 0, 0);
}

TEST(LeastConnections, PicksLeastLoadedLowestIndexOnTie)
{
    EXPECT_EQ(pick_with_loads(scheduler_kind::lc, {1, 1, 1, 1}, {3, 1, 1, 2}), 1u);
    EXPECT_EQ(pick_with_loads(scheduler_kind::lc, {1, 1, 1, 1}, {0, 0, 0, 0}), 0u);
    EXPECT_EQ(pick_with_loads(scheduler_kind::lc, {1, 1, 1, 1}, {5, 4, 3, 2}), 3u);
    // Weights other than zero do not matter to lc.
    EXPECT_EQ(pick_with_loads(scheduler_kind::lc, {9, 1, 1}, {2, 1, 1}), 1u);
    // A drained task is skipped however idle it is.
    EXPECT_EQ(pick_with_loads(scheduler_kind::lc, {0, 1, 1}, {0, 7, 6}), 2u);
}

TEST(WeightedLeastConnections, PicksLeastLoadPerWeightLowestIndexOnTie)
{
    // 1/1 = 2/2 = 3/3: a tie, the first wins.
    EXPECT_EQ(pick_with_loads(scheduler_kind::wlc, {1, 2, 3}, {1, 2, 3}), 0u);
    // 2/1, 3/2, 3/3: the heaviest is the least loaded.
    EXPECT_EQ(pick_with_loads(scheduler_kind::wlc, {1, 2, 3}, {2, 3, 3}), 2u);
    // 4/4 < 2/1 although 4 > 2.
    EXPECT_EQ(pick_with_loads(scheduler_kind::wlc, {1, 4}, {2, 4}), 1u);
    EXPECT_EQ(pick_with_loads(scheduler_kind::wlc, {0, 1, 1}, {0, 3, 3}), 1u);
    // Large counts and weights do not overflow the cross products.
    EXPECT_EQ(pick_with_loads(scheduler_kind::wlc, {65535, 65534}, {4000000000u, 3999999999u}), 0u);
}

TEST(LeastConnections, ShortLoadSpanCountsAsIdle)
{
    service_scheduler s = build_scheduler(scheduler_kind::lc, tasks_with({1, 1, 1}));
    scheduler_cursor cursor{};
    auto active = loads({5, 4});
    EXPECT_EQ(pick_task(s, cursor, active, 0, 0), 2u);
}

TEST(SourceHashing, SameAddressSameTaskWhateverThePort)
{
    service_scheduler s = build_scheduler(scheduler_kind::sh, tasks_with({1, 2, 3, 4}));
    scheduler_cursor cursor{};
    std::set<uint32_t> seen;
    for (const flow &f : random_flows(1000)) {
        uint32_t task = pick_task(s, cursor, {}, f.ip, 1);
        seen.insert(task);
        for (uint16_t port : {uint16_t{2}, uint16_t{1024}, uint16_t{40000}, uint16_t{65535}})
            ASSERT_EQ(pick_task(s, cursor, {}, f.ip, port), task);
    }
    EXPECT_EQ(seen.size(), 4u);
}

TEST(SourceHashing, BucketsLaidOutInRunsByWeight)
{
    auto table = build_sh_table(tasks_with({1, 0, 2, 1}), 4096);
    ASSERT_EQ(table.size(), 4096u);
    // 1 each, then 4092 split 1:2:1 = 1023, 2046, 1023: runs of 1024, 2048, 1024.
    EXPECT_EQ(std::count(table.begin(), table.end(), 0u), 1024);
    EXPECT_EQ(std::count(table.begin(), table.end(), 1u), 0);
    EXPECT_EQ(std::count(table.begin(), table.end(), 2u), 2048);
    EXPECT_EQ(std::count(table.begin(), table.end(), 3u), 1024);
    // One run per task (in the order of their identities).
    size_t runs = 1;
    for (size_t b = 1; b < table.size(); ++b)
        runs += table[b] != table[b - 1];
    EXPECT_EQ(runs, 3u);
}

// As Maglev's slots: two gateways whose files list the tasks in another order send a client to
// the same task.
TEST(SourceHashing, ConfigOrderDoesNotMoveBuckets)
{
    auto tasks = tasks_with({3, 1, 4, 1, 5, 9, 2, 6});
    auto reversed = tasks;
    std::reverse(reversed.begin(), reversed.end());
    auto a = build_sh_table(tasks, 4096);
    auto b = build_sh_table(reversed, 4096);
    for (size_t bucket = 0; bucket < a.size(); ++bucket)
        ASSERT_EQ(tasks[a[bucket]].id, reversed[b[bucket]].id) << "bucket " << bucket;
}

TEST(SourceHashing, EveryLiveTaskGetsABucketWhateverTheWeights)
{
    std::vector<uint32_t> weights(100, 1);
    weights[0] = 65535;
    auto table = build_sh_table(tasks_with(weights), 4096);
    for (uint32_t t = 0; t < 100; ++t)
        EXPECT_GE(std::count(table.begin(), table.end(), t), 1) << "task " << t;
}

// --- keys: the caller's names for its tasks -------------------------------------------------

// Tasks 0..n-1 of tasks_with(weights), known to the caller by KEYS.
std::vector<scheduler_task> keyed(std::vector<uint32_t> weights, std::vector<uint32_t> keys)
{
    auto tasks = tasks_with(weights);
    for (size_t i = 0; i < tasks.size(); ++i)
        tasks[i].key = keys.at(i);
    return tasks;
}

TEST(Keys, EveryKindReturnsKeysNotPositions)
{
    const std::vector<uint32_t> keys = {700, 12, 4095};
    for (scheduler_kind kind : {scheduler_kind::maglev, scheduler_kind::rr, scheduler_kind::wrr,
                                scheduler_kind::lc, scheduler_kind::wlc, scheduler_kind::sh}) {
        service_scheduler s = build_scheduler(kind, keyed({1, 1, 1}, keys));
        EXPECT_EQ(s.key_limit, 4096u);
        std::vector<std::atomic<uint32_t>> active(4096);
        scheduler_cursor cursor{};
        std::set<uint32_t> seen;
        for (const flow &f : random_flows(300)) {
            uint32_t key = pick_task(s, cursor, active, f.ip, f.port);
            ASSERT_TRUE(key == 700 || key == 12 || key == 4095)
                << scheduler_kind_names[static_cast<size_t>(kind)] << " picked " << key;
            seen.insert(key);
            active[key].fetch_add(1, std::memory_order_relaxed);
        }
        EXPECT_EQ(seen.size(), 3u) << scheduler_kind_names[static_cast<size_t>(kind)];
    }
}

TEST(Keys, LeastConnectionsReadsTheCountOfEachKey)
{
    service_scheduler s = build_scheduler(scheduler_kind::lc, keyed({1, 1, 1}, {9, 3, 6}));
    auto active = loads({0, 0, 0, 5, 0, 0, 1, 0, 0, 2});
    scheduler_cursor cursor{};
    EXPECT_EQ(pick_task(s, cursor, active, 0, 0), 6u); // 9: 2, 3: 5, 6: 1
    service_scheduler w = build_scheduler(scheduler_kind::wlc, keyed({1, 8, 1}, {9, 3, 6}));
    EXPECT_EQ(pick_task(w, cursor, active, 0, 0), 3u); // 2/1, 5/8, 1/1
}

TEST(Keys, MaglevSlotsHoldKeysAndDoNotDependOnThem)
{
    auto plain = build_scheduler(scheduler_kind::maglev, tasks_with({1, 2, 3}));
    auto renamed = build_scheduler(scheduler_kind::maglev, keyed({1, 2, 3}, {50, 60, 70}));
    ASSERT_EQ(plain.table.size(), renamed.table.size());
    for (size_t slot = 0; slot < plain.table.size(); ++slot)
        ASSERT_EQ(renamed.table[slot], 50 + 10 * plain.table[slot]) << "slot " << slot;
}

TEST(Keys, NoTaskIsNotAKey)
{
    EXPECT_THROW(build_scheduler(scheduler_kind::rr, keyed({1, 1}, {0, no_task})),
                 std::invalid_argument);
}

// --- no task, bad input --------------------------------------------------------------------

TEST(AllKinds, NoLiveTaskMeansNoTask)
{
    for (scheduler_kind kind : {scheduler_kind::maglev, scheduler_kind::rr, scheduler_kind::wrr,
                                scheduler_kind::lc, scheduler_kind::wlc, scheduler_kind::sh}) {
        for (std::vector<uint32_t> weights : {std::vector<uint32_t>{}, {0}, {0, 0, 0}}) {
            service_scheduler s = build_scheduler(kind, tasks_with(weights));
            scheduler_cursor cursor{};
            auto active = loads(std::vector<uint32_t>(weights.size(), 0));
            for (const flow &f : random_flows(100))
                ASSERT_EQ(pick_task(s, cursor, active, f.ip, f.port), no_task)
                    << scheduler_kind_names[static_cast<size_t>(kind)] << " with " << weights.size()
                    << " tasks";
        }
    }
}

TEST(AllKinds, DefaultConstructedSchedulerPicksNoTask)
{
    service_scheduler s;
    scheduler_cursor cursor{};
    EXPECT_EQ(pick_task(s, cursor, {}, 1, 2), no_task);
}

TEST(AllKinds, RejectsWeightAboveIpvsLimit)
{
    EXPECT_NO_THROW(build_scheduler(scheduler_kind::wrr, tasks_with({max_task_weight, 1})));
    EXPECT_THROW(build_scheduler(scheduler_kind::wrr, tasks_with({max_task_weight + 1, 1})),
                 std::invalid_argument);
}

} // namespace
} // namespace meshgate::dataplane
