// Connection table micro-benchmarks: bulk lookup per key at 4k and 1M connections, and the
// create + expire cost of a connection in a table kept at steady size.
//   build-ct/perf/conntrack_bench [--benchmark_filter=...]
// Cycles come from the TSC; quote them as ratios within one run (docs/performance.md).
#include "dataplane/conntrack.h"

#include <memory>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "tests/support/qsbr_var.h"

namespace mg = meshgate::dataplane;

namespace
{

using meshgate::test_support::qsbr_var;

constexpr uint32_t n_tasks = 64;
constexpr uint32_t burst = 32; // a worker's RX burst

const std::vector<uint32_t> &snat_ips()
{
    static const std::vector<uint32_t> ips = [] {
        std::vector<uint32_t> v;
        for (uint32_t i = 0; i < 16; i++)
            v.push_back(rte_cpu_to_be_32(0x0aff0002 + i)); // 10.255.0.2..
        return v;
    }();
    return ips;
}

mg::flow_key client_key(uint32_t n, uint16_t client_port, uint8_t proto)
{
    return mg::make_flow_key(rte_cpu_to_be_32(0x64000000 + n), rte_cpu_to_be_32(0xcb00710a),
                             rte_cpu_to_be_16(client_port), rte_cpu_to_be_16(8000), proto);
}

mg::create_status add(mg::connection_table &t, const mg::flow_key &k, uint32_t n, uint32_t now)
{
    const uint32_t task = n % n_tasks;
    return t
        .create(0, k, mg::connection_table::hash(k), 1, static_cast<uint16_t>(task),
                rte_cpu_to_be_32(0x0aff1000 + task), rte_cpu_to_be_16(80), snat_ips(), now)
        .status;
}

void set_cycles(benchmark::State &state, uint64_t cycles, uint64_t items)
{
    state.counters["cycles/item"] =
        benchmark::Counter(items ? double(cycles) / double(items) : 0.0);
}

// lookup_bulk of 32 keys a call, over N connections, keys in random order (half forward, half
// reverse keys: the two directions a worker sees).
void BM_lookup_bulk(benchmark::State &state)
{
    const auto n = static_cast<uint32_t>(state.range(0));
    qsbr_var rcu;
    auto table = mg::connection_table::create({.capacity = n, .qsbr = rcu.v});
    std::mt19937 rng(1);
    std::vector<mg::flow_key> keys;
    keys.reserve(n);
    for (uint32_t i = 0; i < n; i++) {
        const mg::flow_key k = client_key(i, static_cast<uint16_t>(1024 + rng() % 60000), 6);
        if (add(*table, k, i, 1) != mg::create_status::ok) {
            state.SkipWithError("populate failed");
            return;
        }
        const mg::connection &c = table->at(table->lookup(k).index());
        keys.push_back(
            i % 2 ? k
                  : mg::make_flow_key(c.task_ip(), c.snat_ip(), c.target_port(), c.snat_port(), 6));
    }
    std::shuffle(keys.begin(), keys.end(), rng);

    mg::conn_ref res[burst];
    uint32_t pos = 0, hits = 0;
    uint64_t cycles = 0, items = 0;
    for (auto _ : state) {
        const uint64_t t0 = rte_rdtsc();
        hits += table->lookup_bulk(&keys[pos], burst, res);
        cycles += rte_rdtsc() - t0;
        benchmark::DoNotOptimize(res);
        items += burst;
        pos += burst;
        if (pos + burst > n) pos = 0;
    }
    if (hits != items) state.SkipWithError("lookup missed");
    state.SetItemsProcessed(int64_t(items));
    set_cycles(state, cycles, items);
    rcu.quiescent();
}
BENCHMARK(BM_lookup_bulk)->Arg(4096)->Arg(1 << 20);

// One iteration = one second of a worker: create a burst of new UDP connections, then
// expire() the connections that went idle. The timeout keeps the table at ~N entries, so every
// connection is created once and expired once; time is per connection (create + expire).
void BM_create_expire(benchmark::State &state)
{
    const auto n = static_cast<uint32_t>(state.range(0));
    const uint32_t per_tick = 512;
    const uint32_t timeout = n / per_tick;
    qsbr_var rcu;
    auto table = mg::connection_table::create(
        {.capacity = n + 2 * per_tick, .qsbr = rcu.v, .timeouts = {.udp = timeout}});
    std::vector<mg::removed_connection> removed(4 * per_tick);
    std::mt19937 rng(2);
    uint32_t now = 1, seq = 0;
    uint64_t failed = 0, expired = 0;

    auto tick = [&] {
        for (uint32_t i = 0; i < per_tick; i++, seq++) {
            const auto k = client_key(seq, static_cast<uint16_t>(1024 + rng() % 60000), 17);
            failed += add(*table, k, seq, now) != mg::create_status::ok;
        }
        now++;
        expired += table->expire(0, now, 4 * per_tick, removed.data());
        rcu.quiescent();
    };
    for (uint32_t i = 0; i < timeout + 2; i++) // reach steady state before timing
        tick();
    failed = expired = 0;

    uint64_t cycles = 0;
    for (auto _ : state) {
        const uint64_t t0 = rte_rdtsc();
        tick();
        cycles += rte_rdtsc() - t0;
    }
    if (failed != 0) state.SkipWithError("create failed");
    state.counters["live"] = double(table->size());
    state.counters["expired/tick"] =
        benchmark::Counter(double(expired) / double(state.iterations()));
    state.SetItemsProcessed(int64_t(state.iterations()) * per_tick);
    set_cycles(state, cycles, uint64_t(state.iterations()) * per_tick);
}
BENCHMARK(BM_create_expire)->Arg(4096)->Arg(1 << 20);

} // namespace

int main(int argc, char **argv)
{
    const char *eal_argv[] = {"conntrack_bench",
                              "--no-huge",
                              "-m",
                              "1536",
                              "--no-pci",
                              "--file-prefix=ct_bench",
                              "-l",
                              "0",
                              "--log-level=error"};
    if (rte_eal_init(sizeof(eal_argv) / sizeof(eal_argv[0]), const_cast<char **>(eal_argv)) < 0)
        return 1;
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    rte_eal_cleanup();
    return 0;
}
