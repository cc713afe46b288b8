// Two workers making new connections at once: what decided the connection table's layout
// (docs/architecture.md, "Multi-core").
//   writers_bench EAL-ARGS -- [--seconds S] [--connections N]
//   e.g. writers_bench --lcores 0@0,1@0,2@1 -m 2048 --no-pci -- --seconds 3
// (the main lcore sleeps while the writers run, so it may share a CPU with one of them).
//
// Two kinds of runs, each writer on its own lcore, holding N/2 live connections:
//   hash   the rte_hash part alone, as a connection uses it: add the forward and reverse keys,
//          and delete the oldest connection's two keys. Either one rte_hash both writers share
//          (MULTI_WRITER_ADD: one writer lock for every add and delete of every writer), or one
//          rte_hash per writer (no lock). Lock-free readers (RW_CONCURRENCY_LF) and RCU as the
//          table has them.
//   table  the connection table as the workers use it (create 512 UDP connections, advance
//          the clock a second, expire the idle ones), with one owner, or two; optionally
//          moving the shared per-task live counts that lc/wlc read.
// Prints new connections per second per writer and in total, and cycles per connection.
#include <getopt.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/conntrack.h"

namespace mg = meshgate::dataplane;

namespace
{

constexpr uint32_t per_tick = 512;
constexpr uint32_t n_tasks = 16;

// What every writer shares in one run.
struct run_state {
    rte_rcu_qsbr *qsbr = nullptr;
    uint16_t writers = 1;
    double seconds = 0;
    std::atomic<uint32_t> warm{0}; // writers done filling
};

struct writer {
    run_state *run = nullptr;
    uint16_t id = 0;
    std::function<void()> fill;       // untimed: reach N/2 live connections
    std::function<uint32_t()> step;   // timed: returns the connections it made
    uint64_t created = 0, cycles = 0; //
};

int writer_main(void *arg)
{
    writer &w = *static_cast<writer *>(arg);
    run_state &r = *w.run;
    rte_rcu_qsbr_thread_register(r.qsbr, w.id);
    rte_rcu_qsbr_thread_online(r.qsbr, w.id);
    w.fill();
    // All writers start timing together, and keep quiescing meanwhile.
    r.warm.fetch_add(1);
    while (r.warm.load() < r.writers)
        rte_rcu_qsbr_quiescent(r.qsbr, w.id);
    const uint64_t start = rte_rdtsc();
    const uint64_t stop = start + static_cast<uint64_t>(double(rte_get_tsc_hz()) * r.seconds);
    while (rte_rdtsc() < stop) {
        w.created += w.step();
        rte_rcu_qsbr_quiescent(r.qsbr, w.id);
    }
    w.cycles = rte_rdtsc() - start;
    rte_rcu_qsbr_thread_offline(r.qsbr, w.id);
    rte_rcu_qsbr_thread_unregister(r.qsbr, w.id);
    return 0;
}

// Client SEQ of writer W: the writers' clients differ, as RSS keeps them apart.
mg::flow_key client_key(uint16_t w, uint32_t seq)
{
    return mg::make_flow_key(rte_cpu_to_be_32(0x64000000u + (uint32_t{w} << 22) + (seq & 0x3fffff)),
                             rte_cpu_to_be_32(0xcb00710a),
                             rte_cpu_to_be_16(static_cast<uint16_t>(1024 + (seq >> 22))),
                             rte_cpu_to_be_16(8000), 17);
}

std::vector<uint32_t> snat_ips()
{
    std::vector<uint32_t> v;
    for (uint32_t i = 0; i < 16; i++)
        v.push_back(rte_cpu_to_be_32(0x0aff0002 + i)); // 10.255.0.2..
    return v;
}

rte_hash *make_hash(uint32_t entries, bool multi_writer, rte_rcu_qsbr *qsbr)
{
    static std::atomic<uint32_t> seq{0};
    const std::string name = "wb" + std::to_string(seq.fetch_add(1));
    rte_hash_parameters hp{};
    hp.name = name.c_str();
    hp.entries = entries;
    hp.key_len = sizeof(mg::flow_key);
    hp.hash_func = rte_hash_crc;
    hp.socket_id = static_cast<int>(rte_socket_id());
    hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE |
                    (multi_writer ? RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD : 0);
    rte_hash *h = rte_hash_create(&hp);
    rte_hash_rcu_config rc{};
    rc.v = qsbr;
    rc.mode = RTE_HASH_QSBR_MODE_DQ;
    rc.trigger_reclaim_limit = 64;
    if (h == nullptr || rte_hash_rcu_qsbr_add(h, &rc) != 0) {
        std::fprintf(stderr, "writers_bench: rte_hash: %s\n", rte_strerror(rte_errno));
        std::exit(1);
    }
    return h;
}

struct result {
    double per_writer_mpps = 0, total_mpps = 0, cycles = 0;
};

result launch(run_state &r, std::vector<writer> &writers, const std::vector<unsigned> &lcores)
{
    for (uint16_t w = 0; w < writers.size(); w++)
        rte_eal_remote_launch(writer_main, &writers[w], lcores[w]);
    // Wait without spinning: the main lcore may share a CPU with a writer.
    for (uint16_t w = 0; w < writers.size(); w++) {
        while (rte_eal_get_lcore_state(lcores[w]) == RUNNING)
            usleep(10000);
        rte_eal_wait_lcore(lcores[w]);
    }
    result out;
    const double hz = double(rte_get_tsc_hz());
    for (const writer &w : writers) {
        out.total_mpps += double(w.created) * hz / double(w.cycles) / 1e6;
        out.cycles += double(w.cycles) / double(w.created ? w.created : 1) / double(r.writers);
    }
    out.per_writer_mpps = out.total_mpps / r.writers;
    return out;
}

void print(const char *name, uint16_t writers, const result &r)
{
    std::printf("%-44s writers=%u new_per_s_per_writer=%.2fM new_per_s_total=%.2fM "
                "cycles_per_new=%.0f\n",
                name, writers, r.per_writer_mpps, r.total_mpps, r.cycles);
    std::fflush(stdout);
}

run_state *new_run(uint16_t writers, double seconds)
{
    auto *r = new run_state;
    r->writers = writers;
    r->seconds = seconds;
    r->qsbr = static_cast<rte_rcu_qsbr *>(
        rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(writers), RTE_CACHE_LINE_SIZE));
    rte_rcu_qsbr_init(r->qsbr, writers);
    return r;
}

void free_run(run_state *r)
{
    rte_free(r->qsbr);
    delete r;
}

// The rte_hash part: one hash both writers share, or one each.
void hash_run(const char *name, bool shared, uint16_t writers, double seconds, uint32_t connections,
              const std::vector<unsigned> &lcores)
{
    run_state *r = new_run(writers, seconds);
    const uint32_t share = connections / 2;
    std::vector<rte_hash *> hashes;
    for (uint16_t h = 0; h < (shared ? 1 : writers); h++)
        hashes.push_back(make_hash(4 * share * (shared ? writers : 1), shared, r->qsbr));
    std::vector<writer> ws(writers);
    // Per writer: its live connections' keys in creation order, a ring of `share`.
    std::vector<std::vector<mg::flow_key>> ring(writers, std::vector<mg::flow_key>(2 * share));
    std::vector<uint32_t> seq(writers, 0);
    for (uint16_t w = 0; w < writers; w++) {
        rte_hash *h = hashes[shared ? 0 : w];
        auto add = [&, w, h] {
            const uint32_t at = seq[w] % share;
            mg::flow_key &fwd = ring[w][2 * at], &rev = ring[w][2 * at + 1];
            if (seq[w] >= share) { // the oldest goes first
                rte_hash_del_key(h, &fwd);
                rte_hash_del_key(h, &rev);
            }
            fwd = client_key(w, seq[w]);
            rev = mg::make_flow_key(rte_cpu_to_be_32(0x0aff1000 + seq[w] % n_tasks), fwd.src_ip,
                                    rte_cpu_to_be_16(80), fwd.src_port, 17);
            rte_hash_add_key_data(h, &fwd, nullptr);
            rte_hash_add_key_data(h, &rev, nullptr);
            ++seq[w];
        };
        ws[w].run = r;
        ws[w].id = w;
        ws[w].fill = [&, add, w] {
            while (seq[w] < share)
                add();
        };
        ws[w].step = [add] {
            for (uint32_t i = 0; i < per_tick; i++)
                add();
            return per_tick;
        };
    }
    print(name, writers, launch(*r, ws, lcores));
    for (rte_hash *h : hashes)
        rte_hash_free(h);
    free_run(r);
}

// The connection table as workers use it: OWNERS owners in one table, or one table per writer.
void table_run(const char *name, uint16_t writers, bool one_table, bool atomics, double seconds,
               uint32_t connections, const std::vector<unsigned> &lcores)
{
    run_state *r = new_run(writers, seconds);
    const uint32_t share = connections / 2;
    const uint32_t timeout = share / per_tick; // holds each writer at its share
    std::vector<std::unique_ptr<mg::connection_table>> tables;
    for (uint16_t t = 0; t < (one_table ? 1 : writers); t++)
        tables.push_back(mg::connection_table::create(
            {.capacity = 2 * share * (one_table ? writers : 1),
             .n_workers = static_cast<uint16_t>(one_table ? writers : 1),
             .qsbr = r->qsbr,
             .timeouts = {.udp = timeout}}));
    std::unique_ptr<std::atomic<uint32_t>[]> active(new std::atomic<uint32_t>[n_tasks] {});
    const std::vector<uint32_t> ips = snat_ips();
    std::vector<writer> ws(writers);
    std::vector<uint32_t> seq(writers, 0), now(writers, 1);
    std::vector<std::vector<mg::removed_connection>> removed(
        writers, std::vector<mg::removed_connection>(4 * per_tick));
    uint64_t failed = 0;
    for (uint16_t w = 0; w < writers; w++) {
        mg::connection_table *table = tables[one_table ? 0 : w].get();
        const auto owner = static_cast<uint8_t>(one_table ? w : 0);
        auto tick = [&, w, table, owner] {
            uint32_t made = 0;
            for (uint32_t i = 0; i < per_tick; i++, seq[w]++) {
                const mg::flow_key k = client_key(w, seq[w]);
                const auto task = static_cast<uint16_t>(seq[w] % n_tasks);
                const mg::create_result c = table->create(
                    owner, k, mg::connection_table::hash(k), 1, task,
                    rte_cpu_to_be_32(0x0aff1000 + task), rte_cpu_to_be_16(80), ips, now[w]);
                if (c.status != mg::create_status::ok) continue;
                ++made;
                if (atomics) active[task].fetch_add(1, std::memory_order_relaxed);
            }
            ++now[w];
            const uint32_t n = table->expire(owner, now[w], 4 * per_tick, removed[w].data());
            if (atomics)
                for (uint32_t i = 0; i < n; i++)
                    active[removed[w][i].task].fetch_sub(1, std::memory_order_relaxed);
            return made;
        };
        ws[w].run = r;
        ws[w].id = w;
        ws[w].fill = [&, tick, w] {
            for (uint32_t i = 0; i < timeout + 2; i++) {
                tick();
                rte_rcu_qsbr_quiescent(r->qsbr, w);
            }
        };
        ws[w].step = [&, tick] {
            const uint32_t made = tick();
            failed += per_tick - made; // the table is sized never to refuse
            return made;
        };
    }
    print(name, writers, launch(*r, ws, lcores));
    if (failed != 0) std::printf("  (%" PRIu64 " creations refused)\n", failed);
    tables.clear();
    free_run(r);
}

} // namespace

int main(int argc, char **argv)
{
    const int eal = rte_eal_init(argc, argv);
    if (eal < 0) {
        std::fprintf(stderr, "writers_bench: EAL init failed\n");
        return 1;
    }
    double seconds = 3;
    uint32_t connections = 1 << 20;
    static const option opts[] = {{"seconds", required_argument, nullptr, 's'},
                                  {"connections", required_argument, nullptr, 'c'},
                                  {nullptr, 0, nullptr, 0}};
    optind = 1;
    for (int c; (c = getopt_long(argc - eal, argv + eal, "", opts, nullptr)) != -1;) {
        if (c == 's') seconds = std::atof(optarg);
        if (c == 'c') connections = static_cast<uint32_t>(std::strtoul(optarg, nullptr, 10));
    }
    std::vector<unsigned> lcores;
    unsigned id;
    RTE_LCORE_FOREACH_WORKER(id)
    lcores.push_back(id);
    if (lcores.size() < 2) {
        std::fprintf(stderr, "writers_bench: needs two worker lcores (--lcores 0@0,1@0,2@1)\n");
        return 1;
    }
    std::printf("writer lcores %u and %u; %u connections in all; %.1f s a run\n", lcores[0],
                lcores[1], connections, seconds);
    hash_run("hash: one writer", false, 1, seconds, connections, lcores);
    hash_run("hash: shared by two (MULTI_WRITER_ADD)", true, 2, seconds, connections, lcores);
    hash_run("hash: one per writer", false, 2, seconds, connections, lcores);
    table_run("table: one owner", 1, true, false, seconds, connections, lcores);
    table_run("table: two owners, a hash each", 2, true, false, seconds, connections, lcores);
    table_run("table: two owners + shared task counts", 2, true, true, seconds, connections,
              lcores);
    rte_eal_cleanup();
    return 0;
}
