// The data path meshgate builds (control/runtime/data_path.h), driven burst by burst through
// the tests' fixture with two workers on net_null ports: what its connection table holds after
// client segments, task replies, reloads and the workers' periodic work, at seconds of the
// connection clock the test chooses. No wall clock decides a verdict.
#include <gtest/gtest.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_tcp.h>

#include "control/api/control_api.h"
#include "dataplane/conntrack.h"
#include "tests/support/frames.h"
#include "tests/support/gateway_fixture.h"

namespace
{

using namespace meshgate;
namespace dp = meshgate::dataplane;

const mac_address ext_mac = *parse_mac("02:00:00:00:00:10");
const mac_address und_mac = *parse_mac("02:00:00:00:00:20");
const mac_address client_mac = *parse_mac("02:00:00:00:00:aa");
const mac_address node_mac = *parse_mac("02:00:00:00:01:11");
const ipv4_address published = *parse_ipv4("203.0.113.10");
const ipv4_address client = *parse_ipv4("203.0.113.50");
constexpr uint16_t workers = 2;

// Two net_null ports, a node, one service "web" with tasks .5 and .6 (rr: the first
// connection goes to .5).
config::gateway_config gateway(uint32_t connections = 1024)
{
    config::gateway_config c;
    c.file = "data_path_test";
    c.dpdk.lcore_ids = {0, 0, 0};
    config::port ext, und;
    ext.name = "ext";
    ext.device = "net_null0";
    ext.address = *parse_ipv4_prefix("203.0.113.10/24");
    ext.mac = ext_mac;
    und.name = "und";
    und.device = "net_null1";
    und.role = config::port_role::underlay;
    und.address = *parse_ipv4_prefix("192.168.50.1/24");
    und.mac = und_mac;
    c.ports = {ext, und};
    c.neighbors.push_back(config::neighbor{client, client_mac});
    c.overlay.at = {1, 1};
    c.overlay.address = *parse_ipv4_prefix("10.255.0.2/16");
    c.overlay.mac = docker_mac_for(c.overlay.address.address);
    c.nodes.push_back(
        config::node{.name = "n1", .address = *parse_ipv4("192.168.50.11"), .mac = node_mac});
    config::service s;
    s.name = "web";
    s.scheduler = config::scheduler_kind::rr;
    s.ports.push_back(
        config::service_port{.proto = config::protocol::tcp, .published = 8000, .target = 80});
    for (const char *t : {"10.255.0.5", "10.255.0.6"})
        s.tasks.push_back(config::task{
            .address = *parse_ipv4(t), .node = "n1", .mac = docker_mac_for(*parse_ipv4(t))});
    c.services.push_back(s);
    c.limits.connections = connections;
    return c;
}

// EAL without hugepages, the two ports opened once (a closed vdev is gone for good).
class eal_environment : public ::testing::Environment
{
  public:
    void SetUp() override
    {
        const char *argv[] = {"data_path_test",
                              "--no-huge",
                              "-m",
                              "256",
                              "--no-pci",
                              "--file-prefix=data_path_test",
                              "--no-telemetry",
                              "-l",
                              "0",
                              "--vdev=net_null0,no-rx=1",
                              "--vdev=net_null1,no-rx=1",
                              "--log-level=error"};
        const int argc = sizeof(argv) / sizeof(argv[0]);
        ASSERT_GE(rte_eal_init(argc, const_cast<char **>(argv)), 0) << "rte_eal_init failed";
        devices = test_support::gateway_devices::open(gateway(), workers);
    }
    void TearDown() override { rte_eal_cleanup(); }
    static inline test_support::gateway_devices devices;
};
[[maybe_unused]] auto *const eal_env = ::testing::AddGlobalTestEnvironment(new eal_environment);

class DataPathTest : public ::testing::Test
{
  protected:
    void start(const config::gateway_config &c)
    {
        g = std::make_unique<test_support::gateway_fixture>(c, eal_environment::devices);
    }

    // The client's segment with FLAGS from CLIENT_PORT, through worker WORKER.
    void client_sends(uint16_t client_port, uint8_t flags, size_t worker = 0)
    {
        const std::vector<uint8_t> f = test_support::tcp_frame({.to = ext_mac,
                                                                .from = client_mac,
                                                                .client = client,
                                                                .published = published,
                                                                .client_port = client_port,
                                                                .published_port = 8000,
                                                                .flags = flags});
        send(0, f, worker);
    }

    // The task's reply with FLAGS on the connection of CLIENT_PORT, through worker WORKER.
    void task_replies(uint16_t client_port, uint8_t flags, size_t worker = 0)
    {
        const dp::connection *c = connection_of(client_port);
        ASSERT_NE(c, nullptr);
        send(1,
             test_support::reply_frame({.port_mac = und_mac,
                                        .node_mac = node_mac,
                                        .overlay_mac = docker_mac_for(*parse_ipv4("10.255.0.2")),
                                        .port_address = *parse_ipv4("192.168.50.1"),
                                        .node_address = *parse_ipv4("192.168.50.11"),
                                        .flags = flags},
                                       *c),
             worker);
    }

    void send(uint16_t port, const std::vector<uint8_t> &frame, size_t worker)
    {
        rte_mbuf *m = nullptr;
        ASSERT_TRUE(g->load(&m, 1, std::span(&frame, 1), 0));
        g->burst(port, &m, 1, worker);
    }

    static dp::flow_key forward_key(uint16_t client_port)
    {
        return dp::make_flow_key(rte_cpu_to_be_32(client.value), rte_cpu_to_be_32(published.value),
                                 rte_cpu_to_be_16(client_port), rte_cpu_to_be_16(8000),
                                 IPPROTO_TCP);
    }

    // The live connection of CLIENT_PORT as WORKER finds it, or nullptr.
    const dp::connection *connection_of(uint16_t client_port, size_t worker = 0) const
    {
        const dp::flow_key key = forward_key(client_port);
        const dp::conn_ref r =
            g->connections->lookup(static_cast<uint8_t>(worker), dp::direction::forward, key,
                                   dp::connection_table::hash(key));
        return r.hit() ? &g->connections->at(r.index()) : nullptr;
    }

    // The handshake of CLIENT_PORT's connection through worker 0: it is established.
    void establish(uint16_t client_port)
    {
        client_sends(client_port, RTE_TCP_SYN_FLAG);
        task_replies(client_port, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
        client_sends(client_port, RTE_TCP_ACK_FLAG);
        const dp::connection *c = connection_of(client_port);
        ASSERT_NE(c, nullptr);
        ASSERT_EQ(c->tcp(), dp::tcp_state::established);
    }

    // The task id of ADDRESS in service web.
    uint16_t task_id(const char *address) const
    {
        return g->api->ids().task({"web", *parse_ipv4(address)})->id;
    }

    std::unique_ptr<test_support::gateway_fixture> g;
};

// The fixture's connection table is the one [limits], [timeouts] and [overlay] snat_ports ask
// for, as meshgate's is: SNAT ports from the range, half-open connections gone after tcp_syn.
TEST_F(DataPathTest, ConnectionTableFollowsTheConfiguration)
{
    config::gateway_config c = gateway();
    c.overlay.snat_port_min = 40000;
    c.overlay.snat_port_max = 40099;
    c.timeouts.tcp_syn = 7;
    start(c);
    EXPECT_EQ(g->connections->capacity(), 1024u);
    client_sends(1234, RTE_TCP_SYN_FLAG);
    const dp::connection *conn = connection_of(1234);
    ASSERT_NE(conn, nullptr);
    const uint16_t snat = rte_be_to_cpu_16(conn->snat_port());
    EXPECT_GE(snat, 40000);
    EXPECT_LE(snat, 40099);
    EXPECT_EQ(snat % workers, 0) << "worker 0 owns the ports of its residue";
    g->housekeeping(0, 1 + 6);
    EXPECT_NE(connection_of(1234), nullptr) << "6 s idle, tcp_syn 7";
    g->housekeeping(0, 1 + 7);
    EXPECT_EQ(connection_of(1234), nullptr) << "7 s idle, tcp_syn 7";
}

// Worker 1's clock is a second ahead of worker 0's when it refreshes worker 0's established
// connection; a reload then ends another task and worker 0 sweeps its connections with its own
// clock: the connection of the task that stays lives on.
TEST_F(DataPathTest, SweepKeepsAConnectionAWorkerAheadRefreshed)
{
    config::gateway_config c = gateway();
    c.timeouts.removed_task_grace = 0; // a task that leaves ends at once: its connections go
    start(c);
    establish(1000);
    ASSERT_EQ(connection_of(1000)->task, task_id("10.255.0.5"));
    g->housekeeping(1, 101);
    client_sends(1000, RTE_TCP_ACK_FLAG, 1);
    ASSERT_EQ(connection_of(1000)->last_seen.load(), 101u);
    c.services[0].tasks.pop_back(); // 10.255.0.6
    ASSERT_TRUE(g->api->apply(c).ok);
    g->housekeeping(0, 100);
    const dp::connection *conn = connection_of(1000);
    ASSERT_NE(conn, nullptr) << "the sweep ended a connection of a task that stays";
    EXPECT_EQ(conn->tcp(), dp::tcp_state::established);
}

// A reload shortens tcp_established below what a connection has been idle: the sweep the
// reload starts ends it, even when a worker runs it the moment the snapshot is published.
TEST_F(DataPathTest, SweepAfterShorterTimeoutsJudgesByThem)
{
    config::gateway_config c = gateway();
    start(c);
    establish(1000);
    g->after_publish = [&] { g->housekeeping(0, 400); };
    c.timeouts.tcp_established = 300;
    ASSERT_TRUE(g->api->apply(c).ok);
    EXPECT_EQ(connection_of(1000), nullptr) << "399 s idle, tcp_established now 300";
}

// The client reuses its port while its connection closes, and the new SYN reaches worker 1,
// not worker 0 that owns the closing connection: one connection remains, the new one, and
// every worker finds it.
TEST_F(DataPathTest, PortReuseOnAnotherWorkerLeavesOneConnection)
{
    start(gateway());
    client_sends(1000, RTE_TCP_SYN_FLAG);
    client_sends(1000, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG);
    ASSERT_EQ(connection_of(1000)->tcp(), dp::tcp_state::time_wait);
    client_sends(1000, RTE_TCP_SYN_FLAG, 1);
    g->housekeeping(0, 1);
    g->housekeeping(1, 1);
    EXPECT_EQ(g->connections->size(), 1u);
    for (size_t w : {0, 1}) {
        const dp::connection *c = connection_of(1000, w);
        ASSERT_NE(c, nullptr);
        EXPECT_EQ(c->owner, 1) << "worker " << w << " finds the connection that closed";
        EXPECT_EQ(c->tcp(), dp::tcp_state::syn_recv);
    }
    EXPECT_EQ(g->path->active(task_id("10.255.0.5")) + g->path->active(task_id("10.255.0.6")), 1u);
}

// A reload moves the external port to another subnet and drops its [[neighbor]]: the static
// entry stops being static on the port it was on (ARP may replace it), as when only the
// neighbor leaves the file.
TEST_F(DataPathTest, StaticNeighborOfAPortMovedElsewhereIsNoLongerStatic)
{
    config::gateway_config c = gateway();
    start(c);
    c.ports[0].address = *parse_ipv4_prefix("198.51.100.10/24");
    c.neighbors.clear();
    const apply_result r = g->api->apply(c);
    ASSERT_TRUE(r.ok) << r.errors.front().to_string();
    dp::neighbor_table &neighbors = g->path->neighbors();
    const rte_be32_t address = rte_cpu_to_be_32(client.value);
    const rte_ether_addr other{{0x02, 0, 0, 0, 0, 0xbb}};
    const uint64_t now = rte_rdtsc();
    neighbors.learn(0, address, other, now);
    rte_ether_addr mac{};
    neighbors.lookup(0, address, &mac, now);
    EXPECT_TRUE(rte_is_same_ether_addr(&mac, &other)) << "the old static entry is still there";
}

} // namespace
