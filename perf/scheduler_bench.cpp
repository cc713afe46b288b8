// Cost of picking a task for a new connection, per scheduler, and of building a Maglev table on
// the control thread. Run: build/perf/scheduler_bench [--benchmark_filter=...]
#include "dataplane/scheduler.h"

#include <benchmark/benchmark.h>

#include <atomic>
#include <random>
#include <vector>

namespace
{

using namespace meshgate::dataplane;

constexpr size_t flow_mask = 4095; // 4096 pre-generated clients, cycled

struct flow {
    uint32_t ip;
    uint16_t port;
};

std::vector<flow> make_flows()
{
    std::mt19937 rng(1);
    std::vector<flow> flows(flow_mask + 1);
    for (flow &f : flows) {
        f.ip = static_cast<uint32_t>(rng());
        f.port = static_cast<uint16_t>(rng() >> 16);
    }
    return flows;
}

// Weights 1..4 so every weighted scheduler does real work.
std::vector<scheduler_task> make_tasks(size_t n)
{
    std::vector<scheduler_task> tasks;
    for (uint32_t i = 0; i < n; ++i)
        tasks.push_back({.id = task_identity(0x0aff0002 + i, 80), .weight = 1 + i % 4, .key = i});
    return tasks;
}

void bm_pick(benchmark::State &state, scheduler_kind kind)
{
    const size_t n = static_cast<size_t>(state.range(0));
    service_scheduler s = build_scheduler(kind, make_tasks(n));
    std::vector<flow> flows = make_flows();
    std::vector<std::atomic<uint32_t>> active(n);
    for (size_t i = 0; i < n; ++i)
        active[i] = static_cast<uint32_t>(1000 + (i * 7919) % 500);
    scheduler_cursor cursor{};
    size_t i = 0;
    for (auto _ : state) {
        const flow &f = flows[i++ & flow_mask];
        uint32_t task = pick_task(s, cursor, active, f.ip, f.port);
        benchmark::DoNotOptimize(task);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

BENCHMARK_CAPTURE(bm_pick, maglev, scheduler_kind::maglev)->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(bm_pick, rr, scheduler_kind::rr)->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(bm_pick, wrr, scheduler_kind::wrr)->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(bm_pick, lc, scheduler_kind::lc)->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(bm_pick, wlc, scheduler_kind::wlc)->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(bm_pick, sh, scheduler_kind::sh)->Arg(10)->Arg(100);

// The bare Maglev lookup, with fastmod (as pick_task does) and with a hardware divide.
void bm_maglev_lookup(benchmark::State &state)
{
    service_scheduler s = build_scheduler(scheduler_kind::maglev, make_tasks(100));
    std::vector<flow> flows = make_flows();
    const bool divide = state.range(0) != 0;
    size_t i = 0;
    for (auto _ : state) {
        const flow &f = flows[i++ & flow_mask];
        uint32_t hash = flow_hash(f.ip, f.port);
        uint32_t slot = divide ? hash % s.table_size : fastmod(hash, s.table_fastmod, s.table_size);
        benchmark::DoNotOptimize(s.table[slot]);
    }
    state.SetLabel(divide ? "divide" : "fastmod");
}
BENCHMARK(bm_maglev_lookup)->Arg(0)->Arg(1);

void bm_flow_hash(benchmark::State &state)
{
    std::vector<flow> flows = make_flows();
    size_t i = 0;
    for (auto _ : state) {
        const flow &f = flows[i++ & flow_mask];
        benchmark::DoNotOptimize(flow_hash(f.ip, f.port));
    }
}
BENCHMARK(bm_flow_hash);

// Control thread: a reload rebuilds one table per Maglev service.
void bm_build_maglev(benchmark::State &state)
{
    std::vector<scheduler_task> tasks = make_tasks(static_cast<size_t>(state.range(0)));
    if (state.range(1) == 0)
        for (scheduler_task &t : tasks)
            t.weight = 1;
    for (auto _ : state) {
        std::vector<uint32_t> table = build_maglev_table(tasks, maglev_default_table_size);
        benchmark::DoNotOptimize(table.data());
    }
    state.SetLabel(state.range(1) ? "weights 1..4" : "equal weights");
}
BENCHMARK(bm_build_maglev)
    ->Args({100, 0})
    ->Args({100, 1})
    ->Args({10, 1})
    ->Unit(benchmark::kMicrosecond);

} // namespace

BENCHMARK_MAIN();
