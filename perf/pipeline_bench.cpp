// Cycles per packet of the whole data path: bursts of 32 frames through process_burst() and out
// of net_null ports (EAL without hugepages, the real tables built by the control API), as a
// worker sees them:
//   BM_forward/FLOWS      client -> task on established TCP connections (NAT, VXLAN encap)
//   BM_reverse/FLOWS      task -> client replies (decap, reverse NAT)
//   BM_new_connections    SYNs of flows never seen: schedule, create, NAT, encap
//   BM_parse_and_match    ACKs of flows never seen: parse, key, lookup (a miss), published-port
//                         match, drop as no_connection: what precedes every verdict
// Frames are copied into fresh mbufs outside the timed part, as an RX queue would hand them.
//   build/perf/pipeline_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_vxlan.h>

#include "control/api/control_api.h"
#include "dataplane/output.h"
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

// The null ports' gateway, clients behind a router, 16 SNAT addresses (a task has 64512 SNAT
// ports per address: 1M connections over 3 tasks need more), one rr service of 3 tasks.
config::gateway_config bench_config(uint32_t connections)
{
    config::gateway_config c = test_support::null_ports_gateway("pipeline_bench", connections);
    c.ports[0].gateway = parse_ipv4("203.0.113.1");
    c.neighbors.push_back(config::neighbor{*parse_ipv4("203.0.113.1"), client_mac});
    for (uint32_t i = 0; i < 16; ++i)
        c.overlay.snat_addresses.push_back(ipv4_address{0x0aff0100 + i}); // 10.255.1.0..
    config::service s;
    s.name = "bench";
    s.scheduler = config::scheduler_kind::rr;
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
                                    .flags = flags});
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

// One gateway: tables, connection table, a worker, on the devices. Built per flow count.
struct gateway_fixture : test_support::gateway_fixture {
    explicit gateway_fixture(uint32_t capacity)
        : test_support::gateway_fixture(bench_config(capacity), devices())
    {
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
                  bool all_sent = true)
{
    rte_mbuf *pkts[burst];
    uint64_t cycles = 0, packets = 0, sent_before = g.w->counters.ports[out_port].tx_packets;
    size_t next = 0;
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
    }
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
}

void BM_forward(benchmark::State &state)
{
    const auto flows = static_cast<uint32_t>(state.range(0));
    gateway_fixture g(2 * flows + 4096);
    g.run(frames_of(flows, RTE_TCP_SYN_FLAG), 0, flows / burst);
    timed_bursts(state, g, frames_of(flows, RTE_TCP_ACK_FLAG), 0, 1);
}
BENCHMARK(BM_forward)->Arg(4096)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

void BM_reverse(benchmark::State &state)
{
    const auto flows = static_cast<uint32_t>(state.range(0));
    gateway_fixture g(2 * flows + 4096);
    g.run(frames_of(flows, RTE_TCP_SYN_FLAG), 0, flows / burst);
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
    timed_bursts(state, g, replies, 1, 0);
}
BENCHMARK(BM_reverse)->Arg(4096)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

// 1M new connections into a table of 2M: it ends half full (a full cuckoo table inserts
// far slower: conntrack_bench's create+expire shows the cost at steady size). A first million,
// made and ended before, has touched the table's memory: no first-touch page faults timed.
void BM_new_connections(benchmark::State &state)
{
    constexpr uint32_t flows = 1 << 20;
    gateway_fixture g(2 * flows);
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
    timed_bursts(state, g, frames_of(flows, RTE_TCP_SYN_FLAG), 0, 1);
    state.counters["connections"] = double(g.connections->size());
}
BENCHMARK(BM_new_connections)->Iterations((1 << 20) / burst)->Unit(benchmark::kMicrosecond);

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
