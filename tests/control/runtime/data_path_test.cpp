// The data path meshgate builds (control/runtime/data_path.h), driven burst by burst through
// the tests' fixture with two workers on net_null ports: what its connection table holds after
// client segments, task replies, reloads and the workers' periodic work, at seconds of the
// connection clock the test chooses. No wall clock decides a verdict.
#include <gtest/gtest.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_tcp.h>

#include "dataplane/syn_cookie.h"
#include "tests/support/null_gateway.h"

namespace
{

using namespace meshgate;
using namespace meshgate::test_support;
namespace dp = meshgate::dataplane;

[[maybe_unused]] auto *const eal =
    ::testing::AddGlobalTestEnvironment(new null_gateway_eal("data_path_test"));

using DataPathTest = NullGatewayTest;

// A gateway that answers every new client's SYN with a cookie, under a secret the test knows.
config::gateway_config cookies_always()
{
    config::gateway_config c = null_gateway();
    c.limits.syn_cookies = dp::syn_cookie_mode::always;
    c.limits.syn_cookie_secret = dp::siphash_key{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    return c;
}

// The fixture's connection table is the one [limits], [timeouts] and [overlay] snat_ports ask
// for, as meshgate's is: SNAT ports from the range, half-open connections gone after tcp_syn.
TEST_F(DataPathTest, ConnectionTableFollowsTheConfiguration)
{
    config::gateway_config c = null_gateway();
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
    config::gateway_config c = null_gateway();
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
    config::gateway_config c = null_gateway();
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
    start(null_gateway());
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
    config::gateway_config c = null_gateway();
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

// Under pressure (the default), a worker answers SYNs with cookies once 3/4 of its share of the
// table is taken, and takes an ACK for a cookie's proof only while it has sent cookies: a stray
// ACK before that is no_connection, after it bad_cookie; a real cookie's ACK opens.
TEST_F(DataPathTest, UnderPressureCookiesAndStrayAcks)
{
    config::gateway_config c = null_gateway(16); // 8 a worker
    c.limits.syn_cookie_secret = dp::siphash_key{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    ASSERT_EQ(c.limits.syn_cookies, dp::syn_cookie_mode::under_pressure);
    start(c);
    const dp::worker_counters &counted = g->w->counters;
    auto dropped = [&](dp::drop_reason r) { return counted.drops[size_t(r)]; };

    client_segment(2000, RTE_TCP_ACK_FLAG, 5, 6);
    EXPECT_EQ(dropped(dp::drop_reason::no_connection), 1u) << "no cookie sent yet: a stray ACK";
    for (uint16_t port = 1000; port < 1006; port++) // 6 of worker 0's 8
        client_segment(port, RTE_TCP_SYN_FLAG, 1, 0);
    ASSERT_NE(connection_of(1005), nullptr);
    g->housekeeping(0, 1); // where pressure is judged
    client_segment(3000, RTE_TCP_SYN_FLAG, 1000, 0);
    EXPECT_EQ(connection_of(3000), nullptr) << "answered with a cookie";
    EXPECT_EQ(counted.events[size_t(dp::event::syn_cookies_sent)], 1u);

    client_segment(2000, RTE_TCP_ACK_FLAG, 5, 6);
    EXPECT_EQ(dropped(dp::drop_reason::bad_cookie), 1u) << "cookies are out: checked as one";
    EXPECT_EQ(dropped(dp::drop_reason::no_connection), 1u);
    const uint32_t cookie =
        dp::syn_cookie_make(*c.limits.syn_cookie_secret, forward_key(3000), 1000, g->w->now, {});
    client_segment(3000, RTE_TCP_ACK_FLAG, 1001, cookie + 1);
    const dp::connection *opened = connection_of(3000);
    ASSERT_NE(opened, nullptr) << "the cookie's ACK opens it";
    EXPECT_EQ(opened->cookie.load(), uint8_t(dp::cookie_state::waiting));
}

// With SYN cookies, the client's first data sent before the task answered the gateway's SYN
// waits at the worker that got it, and goes to the task once the task answered (here through
// the other worker); with no answer it is freed 1-2 s later (the client sends it again).
TEST_F(DataPathTest, CookieConnectionHoldsTheClientsFirstDataUntilTheTaskAnswers)
{
    const config::gateway_config c = cookies_always();
    start(c);
    constexpr uint32_t isn = 1000;
    // The client's ISN, and its numbers after it.
    auto numbered = [&](uint16_t port, uint8_t flags, uint32_t ack, uint16_t payload) {
        client_segment(port, flags, flags & RTE_TCP_SYN_FLAG ? isn : isn + 1, ack, payload);
    };
    // The cookie the gateway's SYN-ACK carried (to net_null): the SYN had no options.
    auto opened = [&](uint16_t port) {
        numbered(port, RTE_TCP_SYN_FLAG, 0, 0);
        EXPECT_EQ(connection_of(port), nullptr) << "a SYN answered by a cookie keeps nothing";
        const uint32_t cookie =
            dp::syn_cookie_make(*c.limits.syn_cookie_secret, forward_key(port), isn, g->w->now, {});
        numbered(port, RTE_TCP_ACK_FLAG, cookie + 1, 0);
        const dp::connection *conn = connection_of(port);
        EXPECT_NE(conn, nullptr);
        return std::pair{conn, cookie};
    };
    auto packets_to_tasks = [&] {
        uint64_t n = 0;
        for (size_t i = 0; i < workers; i++)
            for (const dp::task_counters &t : g->worker(i).counters.tasks)
                n += t.packets_in;
        return n;
    };

    const auto [conn, cookie] = opened(3000);
    ASSERT_NE(conn, nullptr);
    EXPECT_EQ(conn->cookie.load(), uint8_t(dp::cookie_state::waiting));
    EXPECT_EQ(packets_to_tasks(), 1u); // our SYN
    numbered(3000, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, cookie + 1, 100);
    EXPECT_EQ(g->w->cookie_holds.count, 1);
    EXPECT_EQ(packets_to_tasks(), 1u) << "held, not sent";
    task_replies(3000, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, 1);
    EXPECT_EQ(conn->cookie.load(), uint8_t(dp::cookie_state::open));
    g->housekeeping(0, 1);
    EXPECT_EQ(g->w->cookie_holds.count, 0);
    EXPECT_EQ(packets_to_tasks(), 2u) << "the held segment went to the task";
    EXPECT_EQ(g->w->counters.events[size_t(dp::event::cookie_segments_held)], 1u);

    // Its retransmission is our SYN again, not held twice; with no answer the held one goes.
    const auto [quiet, quiet_cookie] = opened(3001);
    ASSERT_NE(quiet, nullptr);
    numbered(3001, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, quiet_cookie + 1, 100);
    numbered(3001, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, quiet_cookie + 1, 100);
    EXPECT_EQ(g->w->cookie_holds.count, 1);
    EXPECT_EQ(packets_to_tasks(), 4u) << "2 SYNs of 3001's";
    const unsigned before = rte_mempool_avail_count(g->pool);
    g->housekeeping(0, 2);
    EXPECT_EQ(g->w->cookie_holds.count, 1) << "within its time";
    g->housekeeping(0, 3);
    EXPECT_EQ(g->w->cookie_holds.count, 0);
    EXPECT_EQ(rte_mempool_avail_count(g->pool), before + 1) << "its mbuf back in the pool";
}

// A client whose bare ACK was lost proves the cookie with its first data segment: the segment
// becomes the task's SYN, and a copy of it, data and all, goes to the task once it answered.
TEST_F(DataPathTest, CookieConnectionKeepsTheDataOfTheProvingSegment)
{
    const config::gateway_config c = cookies_always();
    start(c);
    constexpr uint32_t isn = 5000;
    constexpr uint16_t port = 3100, payload = 100;
    client_segment(port, RTE_TCP_SYN_FLAG, isn, 0);
    const uint32_t cookie =
        dp::syn_cookie_make(*c.limits.syn_cookie_secret, forward_key(port), isn, g->w->now, {});
    client_segment(port, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, isn + 1, cookie + 1, payload);
    const dp::connection *conn = connection_of(port);
    ASSERT_NE(conn, nullptr) << "the data segment proved the cookie";
    const dp::task_counters &task = g->w->counters.tasks[conn->task];
    EXPECT_EQ(task.packets_in, 1u) << "our SYN";
    EXPECT_LT(task.bytes_in, uint64_t{payload}) << "the SYN carries no data";
    EXPECT_EQ(g->w->cookie_holds.count, 1) << "a copy of the data waits";
    EXPECT_EQ(g->w->counters.events[size_t(dp::event::cookie_segments_held)], 1u);

    task_replies(port, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
    const uint64_t bytes_before = task.bytes_in;
    g->housekeeping(0, 1);
    EXPECT_EQ(g->w->cookie_holds.count, 0);
    EXPECT_EQ(task.packets_in, 2u) << "the SYN, then the data";
    EXPECT_GE(task.bytes_in - bytes_before, uint64_t{payload} + 40) << "the data, whole";
}

// Our state of a cookie connection outlived the client's (its close unseen: a peer died before
// it synced it), and the client opens a new connection from the same port. Its SYN, at another
// ISN, ends the old connection and is answered by a cookie as any new client's; a late copy of
// the old SYN ends nothing. And a task's SYN-ACK that does not ack the client's ISN + 1 is no
// answer to our SYN: it completes nothing (else the client's new SYN never got its SYN-ACK).
TEST_F(DataPathTest, SynAtAnotherIsnOnACookieConnectionOpensANewOne)
{
    const config::gateway_config c = cookies_always();
    start(c);
    constexpr uint16_t port = 3200;
    const dp::worker_counters &counted = g->w->counters;
    auto cookies_sent = [&] { return counted.events[size_t(dp::event::syn_cookies_sent)]; };
    // The client's ACK of the cookie for ISN, and the task's answer to our SYN.
    auto proved = [&](uint32_t isn) {
        const uint32_t cookie =
            dp::syn_cookie_make(*c.limits.syn_cookie_secret, forward_key(port), isn, g->w->now, {});
        client_segment(port, RTE_TCP_ACK_FLAG, isn + 1, cookie + 1);
        const dp::connection *conn = connection_of(port);
        EXPECT_NE(conn, nullptr);
        if (conn == nullptr) return conn;
        task_replies(port, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
        EXPECT_EQ(conn->cookie.load(), uint8_t(dp::cookie_state::open));
        EXPECT_EQ(conn->proxy_start, isn + 1);
        return conn;
    };

    client_segment(port, RTE_TCP_SYN_FLAG, 1000, 0);
    const dp::connection *old = proved(1000);
    ASSERT_NE(old, nullptr);
    ASSERT_EQ(cookies_sent(), 1u);
    client_segment(port, RTE_TCP_SYN_FLAG, 1000, 0);
    EXPECT_EQ(connection_of(port), old) << "a late copy of its own SYN";

    const uint64_t unmatched = counted.drops[size_t(dp::drop_reason::no_connection)];
    const uint64_t to_task = counted.tasks[old->task].packets_in;
    task_replies(port, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, 0, 77001);
    EXPECT_EQ(counted.drops[size_t(dp::drop_reason::no_connection)], unmatched + 1)
        << "a SYN-ACK to another SYN than ours";
    EXPECT_EQ(counted.tasks[old->task].packets_in, to_task) << "no ACK of ours to the task";

    client_segment(port, RTE_TCP_SYN_FLAG, 90000, 0);
    EXPECT_EQ(connection_of(port), nullptr) << "the old connection ended";
    EXPECT_EQ(cookies_sent(), 2u) << "the new SYN answered by a cookie";
    const dp::connection *renewed = proved(90000);
    ASSERT_NE(renewed, nullptr);
    EXPECT_EQ(g->connections->size(), 1u);
}

} // namespace
