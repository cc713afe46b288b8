// Cycles per packet of the whole data path: bursts of 32 frames through process_burst() and out
// of net_null ports (EAL without hugepages, the real tables built by the control API), as a
// worker sees them:
//   BM_forward/flows:F    client -> task on F established TCP connections (NAT, VXLAN encap)
//   BM_reverse/flows:F    task -> client replies (decap, reverse NAT)
//   BM_new_connections/packets:P  SYNs of flows never seen: schedule, create, NAT, encap;
//                         P = 2: each one's ACK a burst later too (ESTABLISHED), P = 3: and its
//                         FIN (CLOSE_WAIT)
//   BM_syn_cookies        SYNs of flows never seen answered with SYN cookies ([limits]
//                         syn_cookies = "always"): what a SYN flood costs; nothing is kept
//   BM_parse_and_match    ACKs of flows never seen: parse, key, lookup (a miss), published-port
//                         match, drop as no_connection: what precedes every verdict
//   BM_housekeeping/K     one housekeeping() pass (every 100 us in a worker) that reads the
//                         kernel interface: what the exception path costs outside the bursts
// Frames are copied into fresh mbufs outside the timed part, as an RX queue would hand them.
// BM_forward and BM_reverse run with the external port's kernel interface (issue 15) K = none,
// net_ring: the ring is polled the way a TAP is; BM_housekeeping also with K = net_tap, a real
// TAP (root; its read is a system call). BM_forward, BM_reverse and BM_new_connections also run
// with the cluster's sync rings on the worker, .../sync:S: 0 none (no [cluster]), 1 drained
// every 128 bursts with the timing paused (the control thread's part), 2 (new connections) the
// event ring full, never drained (every change a counted loss).
//   build/perf/pipeline_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_vxlan.h>
#include <unistd.h>

#include "control/api/control_api.h"
#include "dataplane/output.h"
#include "dataplane/proxy_protocol.h"
#include "dataplane/sync.h"
#include "dataplane/worker.h"
#include "tests/support/frames.h"
#include "tests/support/gateway_fixture.h"

namespace
{

using namespace meshgate;
namespace dp = meshgate::dataplane;

constexpr uint16_t burst = dp::burst_size;
using test_support::ext_mac;
using test_support::node_mac;
using test_support::und_mac;
const mac_address client_mac = *parse_mac("02:00:00:00:00:aa");

// The external port's kernel interface: none, a net_ring or a net_tap vdev.
enum kernel_kind : int64_t { no_kernel, ring_kernel, tap_kernel };
const char *const kernel_vdevs[] = {nullptr, "net_ring0", "net_tap0"};

// The null ports' gateway, clients behind a router, 16 SNAT addresses (a task has 64512 SNAT
// ports per address: 1M connections over 3 tasks need more), one rr service of 3 tasks, with
// the PROXY header PROXY.
config::gateway_config bench_config(uint32_t connections, int64_t kernel = no_kernel,
                                    config::proxy_protocol proxy = config::proxy_protocol::off,
                                    bool cookies = false)
{
    config::gateway_config c = test_support::null_ports_gateway("pipeline_bench", connections);
    if (cookies) c.limits.syn_cookies = dp::syn_cookie_mode::always;
    if (kernel != no_kernel) c.ports[0].kernel_interface = "mgplbench";
    c.ports[0].gateway = parse_ipv4("203.0.113.1");
    c.neighbors.push_back(config::neighbor{*parse_ipv4("203.0.113.1"), client_mac});
    for (uint32_t i = 0; i < 16; ++i)
        c.overlay.snat_addresses.push_back(ipv4_address{0x0aff0100 + i}); // 10.255.1.0..
    config::service s;
    s.name = "bench";
    s.scheduler = config::scheduler_kind::rr;
    s.proxy = proxy;
    s.ports.push_back(
        config::service_port{.proto = config::protocol::tcp, .published = 8000, .target = 80});
    s.tasks = {test_support::task_on_n1("10.255.0.5"), test_support::task_on_n1("10.255.0.6"),
               test_support::task_on_n1("10.255.0.7")};
    c.services.push_back(s);
    return c;
}

// Flow i: client 198.18.0.0 + i, port 1024 + i % 64000: its own SNAT port (see throughput.py).
uint32_t client_ip(uint32_t i)
{
    return 0xc6120000 + i;
}
uint16_t client_port(uint32_t i)
{
    return static_cast<uint16_t>(1024 + i % 64000);
}

std::vector<uint8_t> client_frame(uint32_t i, uint8_t flags)
{
    return test_support::tcp_frame({.to = ext_mac,
                                    .from = client_mac,
                                    .client = ipv4_address{client_ip(i)},
                                    .published = ipv4_address{0xcb00710a}, // 203.0.113.10
                                    .client_port = client_port(i),
                                    .published_port = 8000,
                                    .flags = flags,
                                    // the SYN's ISN is 0: the client's bytes start at 1
                                    .seq = (flags & RTE_TCP_SYN_FLAG) ? 0u : 1u});
}

// The task's reply on connection C: VXLAN from the node, inner task:80 -> SNAT address:port.
std::vector<uint8_t> reply_frame(uint32_t i, const dp::connection &c)
{
    return test_support::reply_frame(
        {.port_mac = und_mac,
         .node_mac = node_mac,
         .overlay_mac = docker_mac_for(*parse_ipv4("10.255.0.2")), // the gateway's
         .port_address = *parse_ipv4("192.168.50.1"),
         .node_address = *parse_ipv4("192.168.50.11"),
         .outer_sport = static_cast<uint16_t>(50000 + i % 1000)},
        c);
}

// The pool and the two net_null ports, opened once: a closed vdev is gone for good.
const test_support::gateway_devices &devices()
{
    static const test_support::gateway_devices d =
        test_support::gateway_devices::open(bench_config(1024));
    return d;
}

// The same with the external port's kernel interface on vdev KERNEL, made when first asked for
// and opened as meshgate opens a TAP (control/kernel/interfaces.cpp: hotplugged, RX queue 0, a
// TX queue per worker), then set as exception_path_test does; nullptr if it does not start.
// The TAP (root only) is named after this process; it goes when the process ends.
const test_support::gateway_devices *devices(int64_t kernel)
{
    if (kernel == no_kernel) return &devices();
    static std::unique_ptr<test_support::gateway_devices> opened[3];
    if (opened[kernel]) return opened[kernel].get();
    auto d = std::make_unique<test_support::gateway_devices>(devices());
    const std::string args =
        kernel == tap_kernel ? "iface=mgplb" + std::to_string(getpid() % 100000) : "";
    uint16_t id = 0;
    rte_eth_conf conf{};
    if (rte_eal_hotplug_add("vdev", kernel_vdevs[kernel], args.c_str()) != 0 ||
        rte_eth_dev_get_port_by_name(kernel_vdevs[kernel], &id) != 0 ||
        rte_eth_dev_configure(id, 1, d->workers, &conf) != 0 ||
        rte_eth_rx_queue_setup(id, 0, 512, 0, nullptr, d->pool) != 0)
        return nullptr;
    for (uint16_t q = 0; q < d->workers; ++q)
        if (rte_eth_tx_queue_setup(id, q, 512, 0, nullptr) != 0) return nullptr;
    if (rte_eth_dev_start(id) != 0) return nullptr;
    d->ports[0].kernel_port_id = id;
    opened[kernel] = std::move(d);
    return opened[kernel].get();
}

// One gateway: tables, connection table, a worker, on the devices. Built per flow count.
struct gateway_fixture : test_support::gateway_fixture {
    explicit gateway_fixture(uint32_t capacity, int64_t kernel = no_kernel, int64_t proxy = 0,
                             bool cookies = false)
        : test_support::gateway_fixture(
              bench_config(capacity, kernel, static_cast<config::proxy_protocol>(proxy), cookies),
              *devices(kernel))
    {
    }
};

// The kernel interface of STATE's second argument, or false if it cannot be opened.
bool kernel_of(benchmark::State &state, int64_t &kernel)
{
    kernel = state.range(1);
    if (devices(kernel) != nullptr) return true;
    state.SkipWithError("the kernel interface's vdev did not start");
    return false;
}

// The cluster's sync on the worker (dataplane/sync.h): none (no [cluster], the rings' pointers
// null), its event ring drained before it can fill (the control thread keeping up: it takes it
// every 20 ms), or that ring full and never drained (every change a counted loss).
enum sync_kind : int64_t { no_sync, sync_drained, sync_full };

// The worker's two sync rings, made as control/gateway.cpp's sync_rings makes them (SP/SC,
// sync_event_slots and sync_install_slots), unless KIND is no_sync; detached and freed at the
// end. drain() takes every change, as group::drain_events() does, and counts them.
struct sync_rings {
    dp::worker &w;
    int64_t kind;
    rte_ring *events = nullptr, *installs = nullptr;
    uint64_t drained = 0;

    sync_rings(dp::worker &worker, int64_t k) : w(worker), kind(k)
    {
        if (kind == no_sync) return;
        static uint32_t seq = 0;
        auto make = [](const char *what, uint32_t slots, size_t element) {
            char name[RTE_RING_NAMESIZE];
            std::snprintf(name, sizeof name, "%s%u", what, seq++);
            rte_ring *r = rte_ring_create_elem(name, static_cast<unsigned>(element), slots,
                                               SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
            if (r == nullptr) throw std::runtime_error("rte_ring_create_elem failed");
            return r;
        };
        events = make("plb_ev", dp::sync_event_slots, sizeof(dp::sync_event));
        installs = make("plb_in", dp::sync_install_slots, sizeof(dp::synced_connection));
        w.sync_events = events;
        w.sync_installs = installs;
        if (kind == sync_full) {
            dp::sync_event e{};
            while (rte_ring_sp_enqueue_elem(events, &e, sizeof e) == 0) {
            }
        }
    }
    ~sync_rings()
    {
        w.sync_events = nullptr;
        w.sync_installs = nullptr;
        rte_ring_free(events);
        rte_ring_free(installs);
    }
    sync_rings(const sync_rings &) = delete;
    sync_rings &operator=(const sync_rings &) = delete;

    void drain()
    {
        if (kind != sync_drained) return;
        dp::sync_event e[64];
        while (const unsigned n =
                   rte_ring_sc_dequeue_burst_elem(events, e, sizeof e[0], 64, nullptr))
            drained += n;
    }
    uint64_t lost() const
    {
        return w.counters.events[static_cast<size_t>(dp::event::sync_events_lost)];
    }
};

// Frames of flows FIRST..FIRST+FLOWS.
std::vector<std::vector<uint8_t>> frames_of(uint32_t flows, uint8_t flags, uint32_t first = 0)
{
    std::vector<std::vector<uint8_t>> f;
    f.reserve(flows);
    for (uint32_t i = 0; i < flows; ++i)
        f.push_back(client_frame(first + i, flags));
    return f;
}

// Times FRAMES through process_burst() + TX, per packet.
void timed_bursts(benchmark::State &state, gateway_fixture &g,
                  const std::vector<std::vector<uint8_t>> &frames, uint16_t port, uint16_t out_port,
                  bool all_sent = true, sync_rings *sync = nullptr)
{
    rte_mbuf *pkts[burst];
    uint64_t cycles = 0, packets = 0, sent_before = g.w->counters.ports[out_port].tx_packets;
    size_t next = 0, bursts = 0;
    const uint64_t drained_before = sync ? sync->drained : 0, lost_before = sync ? sync->lost() : 0;
    for (auto _ : state) {
        if (!g.load(pkts, burst, frames, next)) {
            state.SkipWithError("pool empty");
            break;
        }
        next += burst;
        const uint64_t t0 = rte_rdtsc();
        dp::process_burst(*g.w, g.tables(), port, pkts, burst);
        dp::tx_flush(*g.w, out_port);
        cycles += rte_rdtsc() - t0;
        packets += burst;
        // The control thread's part, untimed: at most one change per packet, 4096 per drain.
        if (sync != nullptr && sync->kind == sync_drained && ++bursts % 128 == 0) {
            state.PauseTiming();
            sync->drain();
            state.ResumeTiming();
        }
    }
    if (sync != nullptr) sync->drain();
    const uint64_t sent = g.w->counters.ports[out_port].tx_packets - sent_before;
    if (all_sent && sent != packets) {
        std::string why = "not every packet went out:";
        for (size_t r = 0; r < dp::drop_reason_count; ++r)
            if (g.w->counters.drops[r] != 0)
                why += " " + std::string(dp::drop_reason_names[r]) + "=" +
                       std::to_string(g.w->counters.drops[r]);
        state.SkipWithError(why.c_str());
    }
    state.SetItemsProcessed(int64_t(packets));
    state.counters["cycles/packet"] = packets ? double(cycles) / double(packets) : 0.0;
    if (sync != nullptr && sync->kind != no_sync) {
        state.counters["sync_events"] = double(sync->drained - drained_before);
        state.counters["sync_lost"] = double(sync->lost() - lost_before);
    }
}

// FLOWS established flows, the kernel interface (none, or a ring: the established path never
// looks at it, the difference is the cost of having one) and the cluster's sync (none, or its
// rings drained: an established flow's packets change no state, so make no sync event), each
// variant right after the plain one.
// And the PROXY protocol: v2 headers, which every task has acknowledged (the sequence numbers
// shift, the acks shift back).
void established_args(benchmark::internal::Benchmark *b)
{
    b->ArgNames({"flows", "kernel", "sync", "proxy"})->Unit(benchmark::kMicrosecond);
    for (int64_t flows : {4096, 1 << 20}) {
        b->Args({flows, no_kernel, no_sync, 0});
        b->Args({flows, no_kernel, sync_drained, 0});
        b->Args({flows, ring_kernel, no_sync, 0});
        b->Args({flows, no_kernel, no_sync, int64_t(dp::proxy_protocol::v2)});
    }
}

// The task of every connection acknowledged its PROXY header (as its reply to the header's
// segment would say): the client's later segments only shift.
void acknowledge_headers(gateway_fixture &g)
{
    for (uint32_t i = 0; i < g.connections->capacity(); ++i)
        g.connections->at(i).proxy_acked.store(1, std::memory_order_relaxed);
}

// Opens FLOWS connections and completes their handshakes, a block at a time: the client's SYN,
// then its ACK (SYN_RECV -> ESTABLISHED), so that no timed packet moves a connection's state.
void establish(gateway_fixture &g, uint32_t flows, sync_rings &sync)
{
    constexpr uint32_t block = 4096;
    for (uint32_t first = 0; first < flows; first += block) {
        const uint32_t n = std::min(block, flows - first);
        g.run(frames_of(n, RTE_TCP_SYN_FLAG, first), 0, n / burst);
        g.run(frames_of(n, RTE_TCP_ACK_FLAG, first), 0, n / burst);
        sync.drain(); // n changes (ESTABLISHED): within a ring
    }
}

void BM_forward(benchmark::State &state)
{
    const auto flows = static_cast<uint32_t>(state.range(0));
    int64_t kernel;
    if (!kernel_of(state, kernel)) return;
    gateway_fixture g(2 * flows + 4096, kernel, state.range(3));
    sync_rings sync(*g.w, state.range(2));
    establish(g, flows, sync);
    acknowledge_headers(g);
    timed_bursts(state, g, frames_of(flows, RTE_TCP_ACK_FLAG), 0, 1, true, &sync);
}
BENCHMARK(BM_forward)->Apply(established_args);

void BM_reverse(benchmark::State &state)
{
    const auto flows = static_cast<uint32_t>(state.range(0));
    int64_t kernel;
    if (!kernel_of(state, kernel)) return;
    gateway_fixture g(2 * flows + 4096, kernel, state.range(3));
    sync_rings sync(*g.w, state.range(2));
    establish(g, flows, sync);
    acknowledge_headers(g);
    std::vector<std::vector<uint8_t>> replies;
    replies.reserve(flows);
    for (uint32_t i = 0; i < flows; ++i) {
        const auto key = dp::make_flow_key(
            rte_cpu_to_be_32(client_ip(i)), rte_cpu_to_be_32(0xcb00710a),
            rte_cpu_to_be_16(client_port(i)), rte_cpu_to_be_16(8000), IPPROTO_TCP);
        const dp::conn_ref ref = g.connections->lookup(key);
        if (!ref.hit()) {
            state.SkipWithError("a connection was not made");
            return;
        }
        replies.push_back(reply_frame(i, g.connections->at(ref.index())));
    }
    timed_bursts(state, g, replies, 1, 0, true, &sync);
}
BENCHMARK(BM_reverse)->Apply(established_args);

// One housekeeping() pass of a worker with 4096 connections, each pass one that reads the
// kernel interface (kernel_poll() does it once a millisecond: here every time), the kernel
// silent: its cost per packet is this over the packets of a millisecond.
void BM_housekeeping(benchmark::State &state)
{
    constexpr uint32_t flows = 4096;
    int64_t kernel;
    if (!kernel_of(state, kernel)) return;
    gateway_fixture g(2 * flows + 4096, kernel);
    g.run(frames_of(flows, RTE_TCP_SYN_FLAG), 0, flows / burst);
    uint64_t cycles = 0;
    for (auto _ : state) {
        g.w->kernel_poll_at = 0;
        const uint64_t t0 = rte_rdtsc();
        g.housekeeping(0, 1);
        cycles += rte_rdtsc() - t0;
    }
    state.counters["cycles/pass"] = double(cycles) / double(state.iterations());
    state.counters["from_kernel"] = double(g.w->counters.ports[0].from_kernel);
}
BENCHMARK(BM_housekeeping)
    ->ArgNames({"flows", "kernel"})
    ->ArgsProduct({{4096}, {no_kernel, ring_kernel, tap_kernel}});

// The client's packets of FLOWS new connections, PACKETS each, in bursts of one kind: a burst
// of 32 SYNs (32 connections in SYN_RECV), then (PACKETS >= 2) their ACKs, which complete the
// handshakes (ESTABLISHED), then (PACKETS >= 3) their FINs (CLOSE_WAIT): each later packet comes
// a burst after its connection was made, as it would a round trip later.
std::vector<std::vector<uint8_t>> connection_frames(uint32_t flows, uint32_t packets)
{
    const uint8_t flags[] = {RTE_TCP_SYN_FLAG, RTE_TCP_ACK_FLAG,
                             RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG};
    std::vector<std::vector<uint8_t>> f;
    f.reserve(size_t(flows) * packets);
    for (uint32_t first = 0; first < flows; first += burst)
        for (uint32_t p = 0; p < packets; ++p)
            for (uint32_t i = first; i < first + burst; ++i)
                f.push_back(client_frame(i, flags[p]));
    return f;
}

// SYNs of 1M flows never seen, each answered with a cookie's SYN-ACK out of the external port.
void BM_syn_cookies(benchmark::State &state)
{
    constexpr uint32_t flows = 1 << 20;
    gateway_fixture g(flows, no_kernel, 0, true);
    timed_bursts(state, g, frames_of(flows, RTE_TCP_SYN_FLAG), 0, 0);
    if (g.connections->size() != 0) state.SkipWithError("a SYN answered with a cookie made state");
}
BENCHMARK(BM_syn_cookies);

// 1M new connections into a table of 2M, PACKETS client packets each (connection_frames()), with
// the cluster's sync as SYNC says (sync_kind; its rings made after the table was filled): it
// ends half full (a full cuckoo table inserts far slower: conntrack_bench's create+expire shows
// the cost at steady size). A first million, made and ended before, has touched the table's
// memory: no first-touch page faults timed.
void BM_new_connections(benchmark::State &state)
{
    constexpr uint32_t flows = 1 << 20;
    const auto packets = static_cast<uint32_t>(state.range(0));
    gateway_fixture g(2 * flows, no_kernel, state.range(2));
    g.run(frames_of(flows, RTE_TCP_SYN_FLAG, 1u << 21), 0, flows / burst);
    std::vector<dp::removed_connection> gone(4096);
    uint32_t cursor = 0;
    do {
        g.connections->sweep(
            0, cursor, 4096, [](const dp::connection &) { return true; }, gone.data(),
            static_cast<uint32_t>(gone.size()));
    } while (cursor != 0);
    for (uint32_t second = 0; g.connections->size() != 0 || second < 4; ++second) {
        g.connections->expire(0, g.w->now + 200 + second, 1u << 22, gone.data());
    }
    sync_rings sync(*g.w, state.range(1));
    timed_bursts(state, g, connection_frames(flows, packets), 0, 1, true, &sync);
    state.counters["connections"] = double(g.connections->size());
    state.counters["cycles/connection"] = state.counters["cycles/packet"].value * packets;
}
// Each the time of 1M connections: SYNs only (no sync event: a SYN flood makes no sync
// traffic); SYN + ACK (one event each, ESTABLISHED); SYN + ACK + FIN (two: and CLOSE_WAIT). Each
// variant with the sync right after the same without.
// With the PROXY protocol (v1, the longer header): each handshake's ACK carries the header.
BENCHMARK(BM_new_connections)
    ->ArgNames({"packets", "sync", "proxy"})
    ->Args({1, no_sync, 0})
    ->Iterations((1 << 20) / burst)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_new_connections)
    ->ArgNames({"packets", "sync", "proxy"})
    ->Args({2, no_sync, 0})
    ->Args({2, sync_drained, 0})
    ->Args({2, sync_full, 0})
    ->Args({2, no_sync, int64_t(dp::proxy_protocol::v1)})
    ->Iterations(2 * (1 << 20) / burst)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_new_connections)
    ->ArgNames({"packets", "sync", "proxy"})
    ->Args({3, no_sync, 0})
    ->Args({3, sync_drained, 0})
    ->Iterations(3 * (1 << 20) / burst)
    ->Unit(benchmark::kMicrosecond);

void BM_parse_and_match(benchmark::State &state)
{
    const auto flows = static_cast<uint32_t>(state.range(0));
    gateway_fixture g(2 * flows + 4096);
    timed_bursts(state, g, frames_of(flows, RTE_TCP_ACK_FLAG), 0, 1, false);
    if (g.w->counters.drops[static_cast<size_t>(dp::drop_reason::no_connection)] !=
        static_cast<uint64_t>(state.iterations()) * burst)
        state.SkipWithError("every packet should be dropped as no_connection");
}
BENCHMARK(BM_parse_and_match)->Arg(4096)->Unit(benchmark::kMicrosecond);

} // namespace

int main(int argc, char **argv)
{
    const char *eal_argv[] = {"pipeline_bench",
                              "--no-huge",
                              "-m",
                              "3072",
                              "--no-pci",
                              "--file-prefix=pl_bench",
                              "-l",
                              "0",
                              "--log-level=error",
                              "--vdev=net_null0,no-rx=1",
                              "--vdev=net_null1,no-rx=1"};
    if (rte_eal_init(sizeof(eal_argv) / sizeof(eal_argv[0]), const_cast<char **>(eal_argv)) < 0)
        return 1;
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    rte_eal_cleanup();
    return 0;
}
