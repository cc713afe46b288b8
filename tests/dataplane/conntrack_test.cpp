// Connection table: both-direction lookups, SNAT port choice, limits, TCP states, expiry on a
// mocked clock, port reuse, and a random workload checked against a std::map model.
#include "dataplane/conntrack.h"

#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "tests/support/qsbr_var.h"

namespace mg = meshgate::dataplane;
using mg::conn_ref;
using mg::connection_table;
using mg::create_status;
using mg::direction;
using mg::flow_key;
using mg::tcp_state;
namespace f = mg::tcp_flag;

namespace
{

using meshgate::test_support::qsbr_var;

// rte_hash lives in EAL memory: one EAL per process, no hugepages, its own file prefix.
class eal_environment : public ::testing::Environment
{
  public:
    void SetUp() override
    {
        const char *argv[] = {"conntrack_test",
                              "--no-huge",
                              "-m",
                              "256",
                              "--no-pci",
                              "--file-prefix=ct_test",
                              "-l",
                              "0-1",
                              "--log-level=error"};
        int argc = sizeof(argv) / sizeof(argv[0]);
        if (rte_eal_init(argc, const_cast<char **>(argv)) < 0) {
            // one core only: run without the concurrent reader
            argv[7] = "0";
            ASSERT_GE(rte_eal_init(argc, const_cast<char **>(argv)), 0) << "rte_eal_init failed";
        }
    }
    void TearDown() override { rte_eal_cleanup(); }
};
[[maybe_unused]] auto *const eal_env = ::testing::AddGlobalTestEnvironment(new eal_environment);

uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    return rte_cpu_to_be_32(RTE_IPV4(a, b, c, d));
}
uint16_t port(uint16_t p)
{
    return rte_cpu_to_be_16(p);
}
uint16_t host_port(uint16_t p)
{
    return rte_be_to_cpu_16(p);
}

const uint32_t published_ip = ip(203, 0, 113, 10);
const uint32_t task_ip_a = ip(10, 255, 0, 5);
const uint32_t task_ip_b = ip(10, 255, 0, 6);
const uint32_t snat_1 = ip(10, 255, 0, 2);
const uint32_t snat_2 = ip(10, 255, 0, 3);
const uint32_t peer_snat = ip(10, 255, 0, 9); // a peer gateway's

flow_key client(uint32_t n, uint16_t client_port = 40001, uint8_t proto = IPPROTO_TCP)
{
    return mg::make_flow_key(ip(192, 0, 2, 0) + rte_cpu_to_be_32(n), published_ip,
                             port(client_port), port(8000), proto);
}

// A connection peer 2 tells of: client N's flow to task a (id 3, service 7) through the peer's
// SNAT address at SNAT_PORT, in STATE.
mg::synced_connection peers_connection(uint32_t n, uint16_t snat_port, tcp_state state)
{
    mg::synced_connection s{};
    s.forward = client(n);
    s.reverse = mg::make_flow_key(task_ip_a, peer_snat, port(80), port(snat_port), IPPROTO_TCP);
    s.service = 7;
    s.task = 3;
    s.state = uint8_t(state);
    s.peer = 2;
    return s;
}

// The reply of `c` as the task sends it.
flow_key reply_key(const mg::connection &c)
{
    return mg::make_flow_key(c.task_ip(), c.snat_ip(), c.target_port(), c.snat_port(),
                             c.forward.proto);
}

class Conntrack : public ::testing::Test
{
  protected:
    qsbr_var rcu{1};
    std::unique_ptr<connection_table> table;
    std::vector<mg::removed_connection> removed_buf = std::vector<mg::removed_connection>(100000);
    uint32_t now = 1000;

    void make(mg::conntrack_params p)
    {
        p.qsbr = rcu.v;
        table = connection_table::create(p);
    }
    void SetUp() override { make({.capacity = 1024}); }
    void TearDown() override
    {
        rcu.quiescent();
        table.reset();
    }

    mg::create_result add(const flow_key &k, uint16_t task = 1, uint32_t task_ip = task_ip_a,
                          std::vector<uint32_t> snat = {snat_1}, uint8_t worker = 0)
    {
        return table->create(worker, k, mg::connection_table::hash(k), 7, task, task_ip, port(80),
                             snat, now);
    }

    // One expire call with a big budget; returns what it removed.
    std::vector<mg::removed_connection> expire(uint32_t budget = 100000, uint8_t worker = 0)
    {
        const uint32_t n = table->expire(worker, now, budget, removed_buf.data());
        rcu.quiescent();
        return {removed_buf.begin(), removed_buf.begin() + n};
    }

    // The clock runs to `until` one second at a time, expiring as a worker would.
    size_t run_until(uint32_t until)
    {
        size_t n = 0;
        while (now < until) {
            now++;
            n += expire().size();
        }
        return n;
    }

    void establish(uint32_t index)
    {
        table->update(index, direction::reverse, f::syn | f::ack, now);
        ASSERT_EQ(table->update(index, direction::forward, f::ack, now).state,
                  tcp_state::established);
    }
};

TEST_F(Conntrack, CreateAndLookupBothDirections)
{
    const flow_key k = client(10);
    const auto r = add(k, 3);
    ASSERT_EQ(r.status, create_status::ok);
    EXPECT_EQ(table->size(), 1u);

    const conn_ref f = table->lookup(k);
    ASSERT_TRUE(f.hit());
    EXPECT_EQ(f.index(), r.index);
    EXPECT_EQ(f.dir(), direction::forward);

    const mg::connection &c = table->at(r.index);
    EXPECT_EQ(c.forward, k);
    EXPECT_EQ(c.service, 7);
    EXPECT_EQ(c.task, 3);
    EXPECT_EQ(c.owner, 0);
    EXPECT_EQ(c.task_ip(), task_ip_a);
    EXPECT_EQ(c.target_port(), port(80));
    EXPECT_EQ(c.snat_ip(), snat_1);
    EXPECT_EQ(c.tcp(), tcp_state::syn_recv);
    EXPECT_EQ(c.last_seen.load(), now);
    EXPECT_EQ(table->timeout(c), 60u);

    const conn_ref b = table->lookup(reply_key(c));
    ASSERT_TRUE(b.hit());
    EXPECT_EQ(b.index(), r.index);
    EXPECT_EQ(b.dir(), direction::reverse);

    // Other tuples miss; a UDP flow with the same numbers is a different connection.
    EXPECT_FALSE(table->lookup(client(11)).hit());
    EXPECT_FALSE(table->lookup(client(10, 40002)).hit());
    const flow_key u = client(10, 40001, IPPROTO_UDP);
    EXPECT_FALSE(table->lookup(u).hit());
    const auto ru = add(u);
    ASSERT_EQ(ru.status, create_status::ok);
    EXPECT_NE(ru.index, r.index);
    EXPECT_EQ(table->at(ru.index).tclass, mg::timeout_class::udp);
    EXPECT_EQ(table->timeout(table->at(ru.index)), 30u); // until the task answers
    table->update(ru.index, direction::reverse, 0, now);
    EXPECT_EQ(table->timeout(table->at(ru.index)), 300u);
    EXPECT_EQ(table->size(), 2u);
}

// A peer's connection (the cluster's sync): both keys find it, it is the peer's, a later word
// of the peer refreshes it, the owner's end removes it, and it never displaces a live one of
// ours (a closed one gives way).
TEST_F(Conntrack, InstallsAPeersConnection)
{
    mg::synced_connection s = peers_connection(20, 40000, tcp_state::established);
    s.idle = 5;
    mg::removed_connection gone{};
    ASSERT_EQ(table->install(0, s, now, &gone), mg::install_status::installed);
    const conn_ref f = table->lookup(s.forward), b = table->lookup(s.reverse);
    ASSERT_TRUE(f.hit());
    ASSERT_TRUE(b.hit());
    EXPECT_EQ(f.index(), b.index());
    EXPECT_EQ(b.dir(), direction::reverse);
    const mg::connection &c = table->at(f.index());
    EXPECT_EQ(c.peer, 2);
    EXPECT_EQ(c.snat_ip(), peer_snat);
    EXPECT_EQ(c.tcp(), tcp_state::established);
    EXPECT_EQ(c.last_seen.load(), now - 5);
    EXPECT_EQ(c.cookie.load(), uint8_t(mg::cookie_state::none)); // not opened by a cookie
    EXPECT_EQ(c.seq_offset, 0u);

    // One a SYN cookie opened at the peer: its translation comes with it.
    mg::synced_connection by_cookie = s;
    by_cookie.forward = client(22);
    by_cookie.reverse.dst_port = port(40002);
    by_cookie.cookie = 1;
    by_cookie.seq_offset = 0x89abcdef;
    by_cookie.wscales = 7 << 4 | 9;
    ASSERT_EQ(table->install(0, by_cookie, now, &gone), mg::install_status::installed);
    const mg::connection &k = table->at(table->lookup(by_cookie.forward).index());
    EXPECT_EQ(k.cookie.load(), uint8_t(mg::cookie_state::open));
    EXPECT_EQ(k.seq_offset, 0x89abcdefu);
    EXPECT_EQ(k.wscales, 7 << 4 | 9);
    by_cookie.ended = 1;
    ASSERT_EQ(table->install(0, by_cookie, now, &gone), mg::install_status::removed);

    s.idle = 0;
    s.state = uint8_t(tcp_state::close_wait);
    EXPECT_EQ(table->install(0, s, now + 10, &gone), mg::install_status::refreshed);
    EXPECT_EQ(c.last_seen.load(), now + 10);
    EXPECT_EQ(c.tcp(), tcp_state::close_wait);

    // One of ours with the same client flow is not the peer's to replace.
    const auto ours = add(client(21), 3);
    ASSERT_EQ(ours.status, create_status::ok);
    mg::synced_connection clash = s;
    clash.forward = client(21);
    clash.reverse.dst_port = port(40001);
    EXPECT_EQ(table->install(0, clash, now, &gone), mg::install_status::refused);
    EXPECT_EQ(table->at(ours.index).peer, 0);
    // Closed, it gives way: the client reused its port at the peer.
    table->at(ours.index).state.store(uint8_t(tcp_state::time_wait));
    EXPECT_EQ(table->install(0, clash, now, &gone), mg::install_status::replaced);
    EXPECT_EQ(gone.index, ours.index);
    EXPECT_EQ(table->at(table->lookup(clash.forward).index()).peer, 2);

    s.ended = 1;
    EXPECT_EQ(table->install(0, s, now + 11, &gone), mg::install_status::removed);
    EXPECT_EQ(gone.index, f.index());
    EXPECT_FALSE(table->lookup(s.forward).hit());
    EXPECT_FALSE(table->lookup(s.reverse).hit());
    EXPECT_EQ(table->size(), 1u);
}

// A peer tells of another connection of a client flow we hold: the client reused its port
// there. It replaces the copy of the old one, and the end of a connection we do not hold
// removes nothing. (Ours: InstallsAPeersConnection.)
TEST_F(Conntrack, APeersNewConnectionReplacesAnOldOneOfTheSameClientFlow)
{
    const mg::synced_connection old = peers_connection(30, 41000, tcp_state::time_wait);
    mg::removed_connection gone{};
    ASSERT_EQ(table->install(0, old, now, &gone), mg::install_status::installed);
    const uint32_t old_index = table->lookup(old.forward).index();

    mg::synced_connection fresh = old;
    fresh.reverse.dst_port = port(41001);
    fresh.task = 4;
    fresh.state = uint8_t(tcp_state::established);
    mg::synced_connection other_end = fresh;
    other_end.reverse.dst_port = port(41002);
    other_end.ended = 1;
    EXPECT_EQ(table->install(0, other_end, now, &gone), mg::install_status::refused);
    EXPECT_EQ(table->lookup(old.forward).index(), old_index) << "not the one that ended";

    gone = {};
    ASSERT_EQ(table->install(0, fresh, now, &gone), mg::install_status::replaced);
    EXPECT_EQ(gone.index, old_index);
    EXPECT_EQ(gone.task, 3);
    const conn_ref f = table->lookup(fresh.forward);
    ASSERT_TRUE(f.hit());
    EXPECT_EQ(table->at(f.index()).reverse, fresh.reverse);
    EXPECT_EQ(table->at(f.index()).tcp(), tcp_state::established);
    EXPECT_FALSE(table->lookup(old.reverse).hit());
    EXPECT_EQ(table->size(), 1u);
}

// The same with 2 workers, the old copy in the other worker's index (its reverse key's SNAT
// port names that worker): the new one is installed at once, and the old one's owner ends it.
TEST_F(Conntrack, APeersNewConnectionEndsTheOldCopyInAnotherWorkersIndex)
{
    make({.capacity = 64, .n_workers = 2});
    const mg::synced_connection old = peers_connection(40, 41000, tcp_state::time_wait);
    mg::synced_connection fresh = old;
    fresh.reverse.dst_port = port(41001);
    fresh.state = uint8_t(tcp_state::established);
    const uint32_t old_owner = table->owner_of_reverse(old.reverse);
    const uint32_t new_owner = table->owner_of_reverse(fresh.reverse);
    ASSERT_NE(old_owner, new_owner);
    mg::removed_connection gone{};
    ASSERT_EQ(table->install(uint8_t(old_owner), old, now, &gone), mg::install_status::installed);
    const uint32_t old_index = table->lookup(old.forward).index();
    EXPECT_EQ(table->install(uint8_t(new_owner), fresh, now, &gone), mg::install_status::installed);
    const auto ended = expire(100000, uint8_t(old_owner));
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].index, old_index);
    const conn_ref f = table->lookup(fresh.forward);
    ASSERT_TRUE(f.hit());
    EXPECT_EQ(table->at(f.index()).reverse, fresh.reverse);
    EXPECT_FALSE(table->lookup(old.reverse).hit());
    EXPECT_EQ(table->size(), 1u);
}

TEST_F(Conntrack, CreateOnExistingKeyReportsIt)
{
    const auto r = add(client(1));
    ASSERT_EQ(r.status, create_status::ok);
    const auto again = add(client(1), 2, task_ip_b);
    EXPECT_EQ(again.status, create_status::exists);
    EXPECT_EQ(again.index, r.index);
    EXPECT_EQ(table->at(r.index).task, 1); // untouched
    EXPECT_EQ(table->size(), 1u);
}

TEST_F(Conntrack, SnatKeepsClientPortWhenFree)
{
    const auto r = add(client(1, 40001));
    ASSERT_EQ(r.status, create_status::ok);
    EXPECT_EQ(host_port(table->at(r.index).snat_port()), 40001);
}

TEST_F(Conntrack, SnatPicksAnotherPortWhenTaken)
{
    // Two clients, same source port, same task: the second cannot keep its port.
    const auto a = add(client(1, 40001));
    const auto b = add(client(2, 40001));
    ASSERT_EQ(a.status, create_status::ok);
    ASSERT_EQ(b.status, create_status::ok);
    const uint16_t pb = host_port(table->at(b.index).snat_port());
    EXPECT_NE(pb, 40001);
    EXPECT_GE(pb, 1024);
    EXPECT_EQ(table->lookup(reply_key(table->at(b.index))).index(), b.index);
    EXPECT_EQ(table->lookup(reply_key(table->at(a.index))).index(), a.index);

    // A different task can reuse the same snat port: the reverse key differs.
    const auto c = add(client(3, 40001), 2, task_ip_b);
    ASSERT_EQ(c.status, create_status::ok);
    EXPECT_EQ(host_port(table->at(c.index).snat_port()), 40001);
}

TEST_F(Conntrack, SnatTriesEveryAddressBeforeChangingThePort)
{
    const auto a = add(client(1, 40001), 1, task_ip_a, {snat_1, snat_2});
    const auto b = add(client(2, 40001), 1, task_ip_a, {snat_1, snat_2});
    ASSERT_EQ(b.status, create_status::ok);
    EXPECT_EQ(table->at(a.index).snat_ip(), snat_1);
    EXPECT_EQ(table->at(b.index).snat_ip(), snat_2);
    EXPECT_EQ(host_port(table->at(b.index).snat_port()), 40001);
}

TEST_F(Conntrack, SnatPortsArePartitionedByWorker)
{
    make({.capacity = 1024, .n_workers = 2});
    // Even client port on worker 0: kept. Even port on worker 1: an odd port instead.
    const auto a = add(client(1, 40000), 1, task_ip_a, {snat_1}, 0);
    const auto b = add(client(2, 40000), 1, task_ip_a, {snat_1}, 1);
    ASSERT_EQ(a.status, create_status::ok);
    ASSERT_EQ(b.status, create_status::ok);
    EXPECT_EQ(host_port(table->at(a.index).snat_port()), 40000);
    EXPECT_EQ(host_port(table->at(b.index).snat_port()) % 2, 1);
    EXPECT_EQ(table->at(b.index).owner, 1);
    // Slots come from the owner's half of the array.
    EXPECT_LT(a.index, 512u);
    EXPECT_GE(b.index, 512u);
    EXPECT_EQ(table->size(0), 1u);
    EXPECT_EQ(table->size(1), 1u);
    for (int i = 0; i < 200; i++) {
        const auto r = add(client(100 + i, 1000 + i), 1, task_ip_a, {snat_1}, 1);
        ASSERT_EQ(r.status, create_status::ok);
        EXPECT_EQ(host_port(table->at(r.index).snat_port()) % 2, 1) << i;
    }
}

TEST_F(Conntrack, SnatExhausted)
{
    make({.capacity = 64, .snat_port_min = 40000, .snat_port_max = 40003});
    // Client port 5000 is outside the range: every connection gets a random port of 4.
    std::vector<uint32_t> idx;
    for (uint32_t i = 0; i < 4; i++) {
        const auto r = add(client(i, 5000));
        ASSERT_EQ(r.status, create_status::ok) << i;
        idx.push_back(r.index);
    }
    std::set<uint16_t> ports;
    for (uint32_t i : idx)
        ports.insert(host_port(table->at(i).snat_port()));
    EXPECT_EQ(ports, (std::set<uint16_t>{40000, 40001, 40002, 40003}));

    const auto full = add(client(99, 5000));
    EXPECT_EQ(full.status, create_status::snat_exhausted);
    EXPECT_EQ(table->size(), 4u);
    for (uint32_t i = 0; i < 4; i++)
        EXPECT_EQ(table->lookup(client(i, 5000)).index(), idx[i]);
    // Another task still has all four ports.
    EXPECT_EQ(add(client(99, 5000), 2, task_ip_b).status, create_status::ok);
    // No SNAT address at all.
    EXPECT_EQ(add(client(98, 5000), 1, task_ip_a, {}).status, create_status::snat_exhausted);

    // Freeing one port makes room again.
    ASSERT_TRUE(table->remove(0, idx[0], nullptr));
    EXPECT_EQ(add(client(100, 5000)).status, create_status::ok);
}

TEST_F(Conntrack, TableFull)
{
    make({.capacity = 8});
    for (uint32_t i = 0; i < 8; i++)
        ASSERT_EQ(add(client(i)).status, create_status::ok);
    EXPECT_EQ(add(client(100)).status, create_status::table_full);
    EXPECT_EQ(add(client(101, 1, IPPROTO_UDP)).status, create_status::table_full);
    EXPECT_EQ(table->size(), 8u);
    for (uint32_t i = 0; i < 8; i++) {
        const conn_ref r = table->lookup(client(i));
        ASSERT_TRUE(r.hit());
        EXPECT_TRUE(table->lookup(reply_key(table->at(r.index()))).hit());
    }
}

TEST_F(Conntrack, FreedSlotsWaitForAGracePeriod)
{
    make({.capacity = 4});
    for (uint32_t i = 0; i < 4; i++)
        ASSERT_EQ(add(client(i)).status, create_status::ok);
    now += 61; // SYN_RECV times out after 60 s
    const uint32_t n = table->expire(0, now, 100, removed_buf.data());
    EXPECT_EQ(n, 4u);
    EXPECT_EQ(table->size(), 0u);
    EXPECT_FALSE(table->lookup(client(0)).hit());
    // A reader may still hold those slots: no reuse before it reports quiescent.
    EXPECT_EQ(add(client(10)).status, create_status::table_full);
    rcu.quiescent();
    EXPECT_EQ(add(client(10)).status, create_status::ok);
}

TEST_F(Conntrack, TcpHandshakeFinCloseAndReset)
{
    const auto r = add(client(1));
    const uint32_t i = r.index;
    auto up = [&](direction d, uint8_t fl) { return table->update(i, d, fl, now).state; };
    EXPECT_EQ(up(direction::reverse, f::syn | f::ack), tcp_state::syn_recv);
    EXPECT_EQ(up(direction::forward, f::ack), tcp_state::established);
    EXPECT_EQ(table->timeout(table->at(i)), 900u);
    EXPECT_EQ(up(direction::forward, f::fin | f::ack), tcp_state::close_wait);
    EXPECT_EQ(table->timeout(table->at(i)), 120u);
    EXPECT_EQ(up(direction::reverse, f::fin | f::ack), tcp_state::time_wait);
    EXPECT_EQ(up(direction::forward, f::ack), tcp_state::time_wait);
    EXPECT_EQ(table->at(i).tcp(), tcp_state::time_wait);

    const auto r2 = add(client(2));
    establish(r2.index);
    EXPECT_EQ(table->update(r2.index, direction::reverse, f::rst, now).state, tcp_state::close);
    EXPECT_EQ(table->timeout(table->at(r2.index)), 10u);

    // UDP has no states; updates only refresh it.
    const auto u = add(client(3, 53, IPPROTO_UDP));
    now += 5;
    EXPECT_EQ(table->update(u.index, direction::reverse, 0, now).state, tcp_state::none);
    EXPECT_EQ(table->at(u.index).last_seen.load(), now);
}

TEST_F(Conntrack, EstablishedSurvives899IdleSecondsAndIsGoneAfter901)
{
    const auto r = add(client(1), 4);
    establish(r.index);
    const uint32_t t0 = now;
    EXPECT_EQ(run_until(t0 + 899), 0u);
    EXPECT_TRUE(table->lookup(client(1)).hit());
    const auto keep_reply = reply_key(table->at(r.index));

    std::vector<mg::removed_connection> gone;
    while (now < t0 + 901) {
        now++;
        auto v = expire();
        gone.insert(gone.end(), v.begin(), v.end());
    }
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0].index, r.index);
    EXPECT_EQ(gone[0].service, 7);
    EXPECT_EQ(gone[0].task, 4);
    EXPECT_EQ(gone[0].state, tcp_state::established);
    EXPECT_FALSE(table->lookup(client(1)).hit());
    EXPECT_FALSE(table->lookup(keep_reply).hit());
    EXPECT_EQ(table->size(), 0u);
}

TEST_F(Conntrack, RefreshedConnectionStays)
{
    const auto r = add(client(1));
    establish(r.index);
    const uint32_t t0 = now;
    while (now < t0 + 5000) {
        now++;
        if (now % 300 == 0) // a reply every 5 minutes, on "another worker"
            table->update(r.index, direction::reverse, f::ack, now);
        ASSERT_TRUE(expire().empty()) << "at " << now - t0;
    }
    EXPECT_TRUE(table->lookup(client(1)).hit());
}

TEST_F(Conntrack, ClosedConnectionGoesEarly)
{
    // Established, then reset: the wheel notices within tcp_fin (re-check) + tcp_close.
    const auto r = add(client(1));
    establish(r.index);
    now += 100;
    table->update(r.index, direction::forward, f::rst, now);
    const uint32_t t_rst = now;
    run_until(t_rst + 130);
    EXPECT_FALSE(table->lookup(client(1)).hit());
}

TEST_F(Conntrack, UnrepliedUdpTimesOutAfter30)
{
    const auto r = add(client(1, 53, IPPROTO_UDP));
    ASSERT_EQ(r.status, create_status::ok);
    const uint32_t t0 = now;
    run_until(t0 + 29);
    EXPECT_TRUE(table->lookup(client(1, 53, IPPROTO_UDP)).hit());
    // The client keeps sending: still unreplied, still 30 s from its last datagram.
    table->update(r.index, direction::forward, 0, now);
    run_until(now + 29);
    EXPECT_TRUE(table->lookup(client(1, 53, IPPROTO_UDP)).hit());
    run_until(now + 2);
    EXPECT_FALSE(table->lookup(client(1, 53, IPPROTO_UDP)).hit());
}

TEST_F(Conntrack, UdpTimesOutAfter300)
{
    const auto r = add(client(1, 53, IPPROTO_UDP));
    ASSERT_EQ(r.status, create_status::ok);
    table->update(r.index, direction::reverse, 0, now); // the task answered
    const uint32_t t0 = now;
    run_until(t0 + 299);
    EXPECT_TRUE(table->lookup(client(1, 53, IPPROTO_UDP)).hit());
    run_until(t0 + 301);
    EXPECT_FALSE(table->lookup(client(1, 53, IPPROTO_UDP)).hit());
}

TEST_F(Conntrack, ExpireBudgetIsRespected)
{
    for (uint32_t i = 0; i < 100; i++)
        ASSERT_EQ(add(client(i, 53, IPPROTO_UDP)).status, create_status::ok);
    now += 400; // all idle far beyond 300 s
    uint32_t total = 0;
    for (int call = 0; call < 10; call++) {
        const uint32_t n = table->expire(0, now, 10, removed_buf.data());
        EXPECT_EQ(n, 10u) << "call " << call;
        total += n;
        EXPECT_EQ(table->size(), 100 - total);
    }
    EXPECT_EQ(table->expire(0, now, 10, removed_buf.data()), 0u);
    EXPECT_EQ(table->size(), 0u);
}

TEST_F(Conntrack, ExpireAfterLongPauseDoesNotWalkEveryTick)
{
    const auto r = add(client(1, 53, IPPROTO_UDP));
    ASSERT_EQ(r.status, create_status::ok);
    now += 1000000; // clock jumped: one lap of the wheel finds it
    EXPECT_EQ(expire().size(), 1u);
    EXPECT_EQ(table->size(), 0u);
}

// Busy flows with the longest timeout the configuration takes (2^31 s) are filed a lap of the
// wheel ahead, not a second: a wheel full of them, visited at a worker's budget of 64 a
// second, leaves the others' expiry on time.
TEST_F(Conntrack, BusyFlowsWithTheLongestTimeoutLeaveOtherExpiryOnTime)
{
    make({.capacity = 4096, .timeouts = {.tcp_syn = 5, .udp = 2147483648u}});
    std::vector<uint32_t> busy;
    for (uint32_t i = 0; i < 2000; i++) {
        const auto r = add(client(i, 53, IPPROTO_UDP));
        ASSERT_EQ(r.status, create_status::ok);
        table->update(r.index, direction::reverse, 0, now); // answered: udp applies
        busy.push_back(r.index);
    }
    // Each second every busy flow sends, then the owner expires what is due.
    auto second = [&](uint32_t budget) {
        now++;
        for (uint32_t index : busy)
            table->update(index, direction::forward, 0, now);
        table->expire(0, now, budget, removed_buf.data());
        rcu.quiescent();
    };
    for (int s = 0; s < 5; s++) // each visited once since: filed by its 2^31 s timeout
        second(100000);
    const flow_key syn = client(1, 40001);
    ASSERT_EQ(add(syn).status, create_status::ok); // SYN_RECV: tcp_syn, 5 s
    for (int s = 0; s < 10; s++)
        second(64);
    EXPECT_FALSE(table->lookup(syn).hit()) << "idle 10 s, tcp_syn 5";
    EXPECT_EQ(table->size(), 2000u);
}

TEST_F(Conntrack, SynOnTimeWaitIsReuse)
{
    const flow_key k = client(1);
    const auto r = add(k, 1, task_ip_a);
    establish(r.index);
    table->update(r.index, direction::forward, f::fin | f::ack, now);
    table->update(r.index, direction::reverse, f::fin | f::ack, now);
    ASSERT_EQ(table->at(r.index).tcp(), tcp_state::time_wait);
    const flow_key old_reply = reply_key(table->at(r.index));

    now += 2;
    const conn_ref hit = table->lookup(k);
    ASSERT_TRUE(hit.hit());
    const auto u = table->update(hit.index(), direction::forward, f::syn, now);
    EXPECT_TRUE(u.reuse);
    EXPECT_EQ(u.state, tcp_state::time_wait);
    EXPECT_EQ(table->at(r.index).tcp(), tcp_state::time_wait); // untouched

    // Caller: remove, re-schedule (task 2 now), create again.
    mg::removed_connection gone{};
    ASSERT_TRUE(table->remove(0, hit.index(), &gone));
    EXPECT_EQ(gone.task, 1);
    EXPECT_FALSE(table->remove(0, hit.index(), nullptr)); // only once
    EXPECT_FALSE(table->lookup(k).hit());
    EXPECT_FALSE(table->lookup(old_reply).hit());
    const auto r2 = add(k, 2, task_ip_b);
    ASSERT_EQ(r2.status, create_status::ok);
    EXPECT_NE(r2.index, r.index); // the old slot waits for the wheel and a grace period
    EXPECT_EQ(table->lookup(k).index(), r2.index);
    EXPECT_EQ(table->at(r2.index).task_ip(), task_ip_b);
    EXPECT_EQ(table->at(r2.index).tcp(), tcp_state::syn_recv);
    EXPECT_EQ(table->size(), 1u);

    // Not reuse: SYN on an established connection, SYN+ACK, the task's SYN.
    establish(r2.index);
    EXPECT_FALSE(table->update(r2.index, direction::forward, f::syn, now).reuse);
    table->update(r2.index, direction::forward, f::rst, now);
    EXPECT_FALSE(table->update(r2.index, direction::forward, f::syn | f::ack, now).reuse);
    EXPECT_FALSE(table->update(r2.index, direction::reverse, f::syn, now).reuse);

    // The zombie slot is freed when the wheel passes; nothing is reported twice.
    const size_t reported = run_until(now + 200);
    EXPECT_EQ(reported, 1u); // only r2 (closed by RST), never the removed one
}

TEST_F(Conntrack, RemoveChecksOwner)
{
    make({.capacity = 64, .n_workers = 2});
    const auto r = add(client(1), 1, task_ip_a, {snat_1}, 1);
    ASSERT_EQ(r.status, create_status::ok);
    EXPECT_FALSE(table->remove(0, r.index, nullptr));
    EXPECT_FALSE(table->remove(1, 9999, nullptr));
    EXPECT_TRUE(table->remove(1, r.index, nullptr));
}

// Another worker asks owner 1 to end its connection: it ends at the owner's next expire(),
// and counts among what expire() returns; a request whose key is not the slot's any more (the
// slot moved on to another connection) ends nothing. The queue holds what it holds.
TEST_F(Conntrack, EndRequestsAreServedByTheOwner)
{
    make({.capacity = 64, .n_workers = 2});
    const auto r = add(client(1), 1, task_ip_a, {snat_1}, 1);
    ASSERT_EQ(r.status, create_status::ok);
    EXPECT_TRUE(table->request_end(r.index, client(2)));
    EXPECT_TRUE(expire(100000, 1).empty());
    EXPECT_TRUE(table->lookup(client(1)).hit());
    EXPECT_TRUE(table->request_end(r.index, client(1)));
    EXPECT_TRUE(table->lookup(client(1)).hit()) << "until the owner's next expire()";
    const auto gone = expire(100000, 1);
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0].index, r.index);
    EXPECT_FALSE(table->lookup(client(1)).hit());
    EXPECT_EQ(table->size(), 0u);
    uint32_t queued = 0;
    while (table->request_end(r.index, client(1)))
        ++queued;
    EXPECT_GE(queued, 1000u);
    EXPECT_LT(queued, 1024u);
}

TEST_F(Conntrack, LookupBulkMatchesSingleLookups)
{
    std::vector<flow_key> keys;
    for (uint32_t i = 0; i < 300; i++) {
        keys.push_back(client(i, 2000 + i));
        if (i % 2 == 0) {
            ASSERT_EQ(add(keys.back()).status, create_status::ok);
        }
    }
    // reply keys too
    for (uint32_t i = 0; i < 300; i += 2)
        keys.push_back(reply_key(table->at(table->lookup(keys[i]).index())));
    std::vector<conn_ref> res(keys.size());
    const uint32_t hits =
        table->lookup_bulk(keys.data(), static_cast<uint32_t>(keys.size()), res.data());
    EXPECT_EQ(hits, 300u);
    for (size_t i = 0; i < keys.size(); i++) {
        EXPECT_EQ(res[i].value, table->lookup(keys[i]).value) << i;
        if (i >= 300) {
            EXPECT_EQ(res[i].dir(), direction::reverse);
        }
    }
}

// Each owner writes its own hash; every worker finds every connection: a reply in the hash its
// SNAT port names, a client's packet first where it arrived, then in the other owners' hashes.
TEST_F(Conntrack, EveryWorkerFindsEveryOwnersConnectionsByDirection)
{
    make({.capacity = 3000, .n_workers = 3});
    std::vector<flow_key> forward, reverse;
    std::vector<uint32_t> index;
    for (uint32_t i = 0; i < 300; i++) {
        const auto owner = static_cast<uint8_t>(i % 3);
        const auto r =
            add(client(i, static_cast<uint16_t>(2000 + i)), 1, task_ip_a, {snat_1}, owner);
        ASSERT_EQ(r.status, create_status::ok) << i;
        EXPECT_EQ(host_port(table->at(r.index).snat_port()) % 3, owner) << i;
        forward.push_back(table->at(r.index).forward);
        reverse.push_back(reply_key(table->at(r.index)));
        index.push_back(r.index);
    }
    for (uint8_t worker = 0; worker < 3; worker++) {
        std::vector<const flow_key *> keys;
        std::vector<mg::flow_key_hash> hashes;
        std::vector<direction> dirs;
        for (size_t i = 0; i < forward.size(); i++) {
            for (auto [k, d] : {std::pair{&forward[i], direction::forward},
                                std::pair{&reverse[i], direction::reverse}}) {
                keys.push_back(k);
                hashes.push_back(connection_table::hash(*k));
                dirs.push_back(d);
                const conn_ref one = table->lookup(worker, d, *k, connection_table::hash(*k));
                ASSERT_TRUE(one.hit()) << i << " from worker " << int(worker);
                EXPECT_EQ(one.index(), index[i]);
                EXPECT_EQ(one.dir(), d);
            }
        }
        std::vector<conn_ref> res(keys.size());
        EXPECT_EQ(table->lookup_bulk(worker, dirs.data(), keys.data(), hashes.data(),
                                     static_cast<uint32_t>(keys.size()), res.data()),
                  keys.size());
        for (size_t i = 0; i < keys.size(); i++)
            EXPECT_EQ(res[i].index(), index[i / 2]) << i;
    }
    // Unknown keys miss in every direction; removed ones too.
    EXPECT_FALSE(
        table->lookup(0, direction::forward, client(9999), connection_table::hash(client(9999)))
            .hit());
    mg::removed_connection gone;
    ASSERT_TRUE(table->remove(2, index[2], &gone));
    EXPECT_FALSE(
        table->lookup(0, direction::reverse, reverse[2], connection_table::hash(reverse[2])).hit());
    EXPECT_FALSE(
        table->lookup(1, direction::forward, forward[2], connection_table::hash(forward[2])).hit());
}

// Random creates, removals and clock moves; a std::map says what must be found.
TEST_F(Conntrack, RandomWorkloadMatchesModel)
{
    // The model knows one timeout per protocol: unreplied UDP and pressure change nothing here.
    mg::conntrack_timeouts timeouts;
    timeouts.udp_unreplied = timeouts.udp;
    timeouts.half_open_under_pressure = 3600;
    make({.capacity = 256, .timeouts = timeouts, .snat_port_min = 20000, .snat_port_max = 20031});
    struct model_conn {
        uint32_t index;
        uint32_t last_seen;
        bool udp;
    };
    auto key_tuple = [](const flow_key &k) {
        return std::make_tuple(k.src_ip, k.src_port, k.proto);
    };
    std::map<std::tuple<uint32_t, uint16_t, uint8_t>, std::pair<flow_key, model_conn>> model;
    std::mt19937 rng(12345);
    const std::vector<uint32_t> snat = {snat_1, snat_2};
    size_t n_created = 0, n_exists = 0, n_full = 0, n_snat = 0, n_removed = 0, n_expired = 0;

    for (int op = 0; op < 60000; op++) {
        const uint32_t pick = rng() % 100;
        if (pick < 55) { // new flow (or an existing one: must say exists)
            const flow_key k = client(rng() % 1000, 1024 + rng() % 2, rng() % 3 ? 6 : 17);
            // one busy task (its ports run out) and seven quiet ones (the table fills up)
            const uint32_t task = rng() % 10 < 8 ? 0 : 1 + rng() % 7;
            const auto r =
                table->create(0, k, mg::connection_table::hash(k), 1, static_cast<uint16_t>(task),
                              task_ip_a + rte_cpu_to_be_32(task), port(80), snat, now);
            auto it = model.find(key_tuple(k));
            if (it != model.end()) {
                ASSERT_EQ(r.status, create_status::exists);
                ASSERT_EQ(r.index, it->second.second.index);
                n_exists++;
            } else if (r.status == create_status::ok) {
                model[key_tuple(k)] = {k, {r.index, now, k.proto == IPPROTO_UDP}};
                n_created++;
            } else {
                ASSERT_TRUE(r.status == create_status::table_full ||
                            r.status == create_status::snat_exhausted);
                (r.status == create_status::table_full ? n_full : n_snat)++;
            }
        } else if (pick < 75 && !model.empty()) { // traffic on a random flow
            auto it = model.begin();
            std::advance(it, rng() % model.size());
            table->update(it->second.second.index, direction::reverse, 0, now);
            it->second.second.last_seen = now;
        } else if (pick < 85 && !model.empty()) { // owner removes one
            auto it = model.begin();
            std::advance(it, rng() % model.size());
            ASSERT_TRUE(table->remove(0, it->second.second.index, nullptr));
            model.erase(it);
            n_removed++;
        } else { // time passes
            now += rng() % 4;
            const uint32_t n = table->expire(0, now, 100000, removed_buf.data());
            for (uint32_t j = 0; j < n; j++) {
                const auto &rm = removed_buf[j];
                const flow_key k = table->at(rm.index).forward;
                auto it = model.find(key_tuple(k));
                ASSERT_NE(it, model.end());
                ASSERT_EQ(it->second.second.index, rm.index);
                const uint32_t timeout = it->second.second.udp ? 300 : 60; // SYN_RECV
                ASSERT_GE(now - it->second.second.last_seen, timeout);
                model.erase(it);
                n_expired++;
            }
            // Nothing idle beyond its timeout + the re-check period may survive.
            for (const auto &[t, v] : model)
                ASSERT_LT(now - v.second.last_seen, (v.second.udp ? 300u : 60u) + 1u);
        }
        if (op % 3 == 0) rcu.quiescent();
        ASSERT_EQ(table->size(), model.size()) << "op " << op;
        if (op % 500 == 0) {
            for (const auto &[t, v] : model) {
                const conn_ref f = table->lookup(v.first);
                ASSERT_TRUE(f.hit());
                ASSERT_EQ(f.index(), v.second.index);
                const conn_ref b = table->lookup(reply_key(table->at(v.second.index)));
                ASSERT_TRUE(b.hit());
                ASSERT_EQ(b.index(), v.second.index);
                ASSERT_EQ(b.dir(), direction::reverse);
            }
        }
    }
    // The workload reached every path: slots were reused many times over.
    EXPECT_GT(n_created, 20u * 256);
    EXPECT_GT(n_exists, 1000u);
    EXPECT_GT(n_full, 0u);
    EXPECT_GT(n_snat, 0u);
    EXPECT_GT(n_removed, 1000u);
    EXPECT_GT(n_expired, 1000u);
    std::printf("created %zu exists %zu table_full %zu snat_exhausted %zu removed %zu "
                "expired %zu\n",
                n_created, n_exists, n_full, n_snat, n_removed, n_expired);
}

// Three owners, a million random operations: creates on any owner (the table full at times),
// lookups of both keys from every worker in bursts, removals, expiry, end requests from other
// workers, and slots reused after grace periods; a reference map says what must be found.
TEST_F(Conntrack, OwnersUnderAMillionRandomOperationsMatchAModel)
{
    mg::conntrack_timeouts timeouts;
    timeouts.udp_unreplied = timeouts.udp = 20;
    timeouts.tcp_syn = 20;
    timeouts.half_open_under_pressure = 20;
    make({.capacity = 3 * 200, .n_workers = 3, .timeouts = timeouts});
    struct model_conn {
        uint32_t index;
        flow_key reverse;
        uint32_t last_seen;
    };
    auto id = [](const flow_key &k) { return uint64_t{k.src_ip} << 16 | k.src_port; };
    std::map<uint64_t, std::pair<flow_key, model_conn>> model;
    std::mt19937 rng(20261206);
    const std::vector<uint32_t> snat = {snat_1, snat_2};
    uint64_t created = 0, full = 0, looked_up = 0, removed = 0, expired = 0, ended = 0;
    // Some connection of the model, in O(log n): the one at or after a random client.
    auto any = [&] {
        const auto it =
            model.lower_bound(id(client(rng() % 5000, static_cast<uint16_t>(1024 + rng() % 8))));
        return it == model.end() ? model.begin() : it;
    };
    auto forget = [&](const mg::removed_connection &rm) {
        const auto it = model.find(id(table->at(rm.index).forward));
        ASSERT_NE(it, model.end());
        ASSERT_EQ(it->second.second.index, rm.index);
        model.erase(it);
    };
    for (uint32_t op = 0; op < 1'000'000; op++) {
        const uint32_t pick = rng() % 100;
        const auto worker = static_cast<uint8_t>(rng() % 3);
        if (pick < 40) {
            const flow_key k = client(rng() % 5000, static_cast<uint16_t>(1024 + rng() % 8));
            const auto r = add(k, 1, task_ip_a + rte_cpu_to_be_32(rng() % 4), snat, worker);
            const auto it = model.find(id(k));
            if (it != model.end()) {
                // Known to its owner; another worker makes its own (a flow that moved queue).
                if (r.status == create_status::exists) continue;
                ASSERT_NE(table->at(it->second.second.index).owner, worker);
            }
            if (r.status != create_status::ok) {
                ASSERT_TRUE(r.status == create_status::table_full ||
                            r.status == create_status::snat_exhausted);
                full++;
                continue;
            }
            if (it != model.end()) { // keep the model one-to-one: take the new one out again
                ASSERT_TRUE(table->remove(worker, r.index, nullptr));
                continue;
            }
            model[id(k)] = {k, {r.index, reply_key(table->at(r.index)), now}};
            created++;
        } else if (pick < 75 && !model.empty()) {
            // A burst of 32 keys of both directions, some unknown, from one worker.
            flow_key storage[32];
            const flow_key *keys[32];
            mg::flow_key_hash hashes[32];
            direction dirs[32];
            uint32_t expect[32];
            for (uint32_t i = 0; i < 32; i++) {
                auto it = any();
                const uint32_t kind = rng() % 3;
                storage[i] = kind == 0   ? it->second.first
                             : kind == 1 ? it->second.second.reverse
                                         : client(100000 + rng() % 1000, 7);
                dirs[i] = kind == 1 ? direction::reverse : direction::forward;
                expect[i] = kind == 2 ? conn_ref::miss_value
                                      : it->second.second.index << 1 | (kind == 1 ? 1 : 0);
                keys[i] = &storage[i];
                hashes[i] = connection_table::hash(storage[i]);
            }
            conn_ref res[32];
            table->lookup_bulk(worker, dirs, keys, hashes, 32, res);
            for (uint32_t i = 0; i < 32; i++)
                ASSERT_EQ(res[i].value, expect[i]) << "op " << op << " key " << i;
            looked_up += 32;
        } else if (pick < 85 && !model.empty()) {
            auto it = any();
            const uint32_t index = it->second.second.index;
            const uint8_t owner = table->at(index).owner;
            if (owner != worker && rng() % 2 == 0) {
                // Asked of the owner; done at its next expire().
                ASSERT_TRUE(table->request_end(index, it->second.first));
                const uint32_t n = table->expire(owner, now, 100000, removed_buf.data());
                for (uint32_t j = 0; j < n; j++)
                    forget(removed_buf[j]);
                ended++;
            } else {
                mg::removed_connection rm;
                ASSERT_TRUE(table->remove(owner, index, &rm));
                forget(rm);
                removed++;
            }
        } else if (pick < 95 && !model.empty()) {
            auto it = any();
            table->update(it->second.second.index, direction::reverse, 0, now);
            it->second.second.last_seen = now;
        } else {
            if (rng() % 16 == 0) now += 1 + rng() % 2; // slow enough for the table to fill
            for (uint8_t w = 0; w < 3; w++) {
                const uint32_t n = table->expire(w, now, 100000, removed_buf.data());
                for (uint32_t j = 0; j < n; j++) {
                    const auto it = model.find(id(table->at(removed_buf[j].index).forward));
                    ASSERT_NE(it, model.end());
                    ASSERT_GE(now - it->second.second.last_seen, 20u);
                    forget(removed_buf[j]);
                    expired++;
                }
            }
        }
        if (op % 8 == 0) rcu.quiescent();
        ASSERT_EQ(table->size(), model.size()) << "op " << op;
    }
    std::printf("created %llu full %llu looked up %llu removed %llu ended %llu expired %llu\n",
                (unsigned long long)created, (unsigned long long)full,
                (unsigned long long)looked_up, (unsigned long long)removed,
                (unsigned long long)ended, (unsigned long long)expired);
    EXPECT_GT(created, 100'000u);
    EXPECT_GT(full, 1000u);
    EXPECT_GT(looked_up, 5'000'000u);
    EXPECT_GT(removed + ended, 50'000u);
    EXPECT_GT(ended, 10'000u);
    EXPECT_GT(expired, 10'000u);
}

// A second lcore keeps reading a fixed set of connections while this one churns others: every
// read must hit, with the right index, through add/delete/reclaim of other keys.
struct reader_args {
    const connection_table *table;
    rte_rcu_qsbr *v;
    const std::vector<flow_key> *keys;
    const std::vector<uint32_t> *index;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> reads{0};
    std::atomic<uint64_t> errors{0};
};

int reader_main(void *arg)
{
    auto *a = static_cast<reader_args *>(arg);
    rte_rcu_qsbr_thread_register(a->v, 1);
    rte_rcu_qsbr_thread_online(a->v, 1);
    std::vector<conn_ref> res(a->keys->size());
    while (!a->stop.load(std::memory_order_relaxed)) {
        a->table->lookup_bulk(a->keys->data(), static_cast<uint32_t>(a->keys->size()), res.data());
        for (size_t i = 0; i < res.size(); i++)
            if (!res[i].hit() || res[i].index() != (*a->index)[i])
                a->errors.fetch_add(1, std::memory_order_relaxed);
        a->reads.fetch_add(res.size(), std::memory_order_relaxed);
        rte_rcu_qsbr_quiescent(a->v, 1);
    }
    rte_rcu_qsbr_thread_offline(a->v, 1);
    rte_rcu_qsbr_thread_unregister(a->v, 1);
    return 0;
}

TEST_F(Conntrack, SweepRemovesOnlyEndedTasksConnections)
{
    std::vector<uint32_t> of_task_2, of_task_3;
    for (uint32_t i = 0; i < 300; ++i) {
        const uint16_t task = i % 3 == 0 ? 2 : 3;
        const auto r = add(client(i), task, task == 2 ? task_ip_a : task_ip_b);
        ASSERT_EQ(r.status, create_status::ok);
        (task == 2 ? of_task_2 : of_task_3).push_back(r.index);
    }
    // A walk in small steps: the cursor comes back to 0 when every slot was seen.
    uint32_t cursor = 0, steps = 0;
    std::vector<mg::removed_connection> gone;
    do {
        mg::removed_connection out[16];
        const uint32_t n = table->sweep(
            0, cursor, 16, [](const mg::connection &c) { return c.task == 2; }, out, 16);
        gone.insert(gone.end(), out, out + n);
        ++steps;
    } while (cursor != 0);
    EXPECT_EQ(steps, 1024u / 16u); // every slot of the owner, 16 per call
    ASSERT_EQ(gone.size(), of_task_2.size());
    for (const mg::removed_connection &g : gone)
        EXPECT_EQ(g.task, 2);
    EXPECT_EQ(table->size(), of_task_3.size());
    for (uint32_t index : of_task_2)
        EXPECT_FALSE(table->lookup(table->at(index).forward).hit());
    for (uint32_t index : of_task_3)
        EXPECT_TRUE(table->lookup(table->at(index).forward).hit());
    // The slots come back after a grace period, through the wheel.
    now += 61;
    expire();
    expire();
    for (uint32_t i = 0; i < 100; ++i)
        EXPECT_EQ(add(client(1000 + i)).status, create_status::ok);
}

TEST_F(Conntrack, SweepOnlyTouchesTheOwnersSlots)
{
    make({.capacity = 1024, .n_workers = 2});
    const auto mine = add(client(1, 40000), 1, task_ip_a, {snat_1}, 0);
    const auto theirs = add(client(2, 40001), 1, task_ip_a, {snat_1}, 1);
    ASSERT_EQ(mine.status, create_status::ok);
    ASSERT_EQ(theirs.status, create_status::ok);
    uint32_t cursor = 0;
    mg::removed_connection out[1024];
    EXPECT_EQ(table->sweep(
                  0, cursor, 1024, [](const mg::connection &) { return true; }, out, 1024),
              1u);
    EXPECT_EQ(out[0].index, mine.index);
    EXPECT_EQ(cursor, 0u);
    EXPECT_TRUE(table->lookup(client(2, 40001)).hit());
}

TEST_F(Conntrack, NewTimeoutsApplyToExistingConnections)
{
    const auto r = add(client(1, 40001, IPPROTO_UDP));
    ASSERT_EQ(r.status, create_status::ok);
    table->update(r.index, direction::reverse, 0, now);
    EXPECT_EQ(table->timeout(table->at(r.index)), 300u);
    // Filed a few seconds ahead while unreplied; the next visit files it by udp (300 s).
    run_until(now + 6);
    table->update(r.index, direction::reverse, 0, now);
    mg::conntrack_timeouts shorter;
    shorter.udp = 20;
    shorter.tcp_syn = 5;
    table->set_timeouts(shorter);
    EXPECT_EQ(table->timeout(table->at(r.index)), 20u);
    const auto t = add(client(2));
    EXPECT_EQ(table->timeout(table->at(t.index)), 5u);
    // The new SYN is filed by the new timeout; the UDP flow was filed 300 s ahead by the old
    // one, so the wheel alone would free it late, never early...
    EXPECT_EQ(run_until(now + 25), 1u);
    EXPECT_TRUE(table->lookup(client(1, 40001, IPPROTO_UDP)).hit());
    // ... and a sweep with the idle test (what a worker runs after a reload) takes it now.
    uint32_t cursor = 0;
    mg::removed_connection out[1024];
    const uint32_t n = table->sweep(
        0, cursor, 1024,
        [&](const mg::connection &c) { return now - c.last_seen.load() >= table->timeout(c); }, out,
        1024);
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(out[0].index, r.index);
}

// A table 3/4 full is under pressure: half-open entries go after half_open_under_pressure,
// answered ones keep their timeouts.
TEST_F(Conntrack, HalfOpenGoEarlyUnderPressure)
{
    make({.capacity = 64});
    const auto answered = add(client(1000));
    establish(answered.index);
    const auto replied = add(client(1001, 53, IPPROTO_UDP));
    table->update(replied.index, direction::reverse, 0, now);
    for (uint32_t i = 0; i < 46; i++)
        ASSERT_EQ(
            add(client(i, 40000 + static_cast<uint16_t>(i % 2), i % 2 ? IPPROTO_UDP : IPPROTO_TCP))
                .status,
            create_status::ok);
    ASSERT_EQ(table->size(), 48u);
    expire();
    EXPECT_TRUE(table->under_pressure(0));
    std::vector<mg::removed_connection> gone;
    for (uint32_t until = now + 11; now < until;) {
        now++;
        for (const auto &r : expire())
            gone.push_back(r);
    }
    ASSERT_EQ(gone.size(), 46u); // every half-open one, none of the answered two
    for (const auto &r : gone)
        EXPECT_TRUE(r.under_pressure);
    EXPECT_TRUE(table->lookup(client(1000)).hit());
    EXPECT_TRUE(table->lookup(client(1001, 53, IPPROTO_UDP)).hit());
    expire();
    EXPECT_FALSE(table->under_pressure(0));
}

// A failed create puts the owner under pressure for a while, full or not.
TEST_F(Conntrack, FailedCreateSetsPressure)
{
    make({.capacity = 1024, .snat_port_min = 20000, .snat_port_max = 20001});
    ASSERT_EQ(add(client(1, 20000)).status, create_status::ok);
    ASSERT_EQ(add(client(2, 20001)).status, create_status::ok);
    ASSERT_EQ(add(client(3, 20000)).status, create_status::snat_exhausted);
    EXPECT_TRUE(table->under_pressure(0));
    run_until(now + 5);
    EXPECT_EQ(table->size(), 0u); // both half-open ones went after 5 s
    run_until(now + 6);
    EXPECT_FALSE(table->under_pressure(0));
}

// The caller's budget bounds the SNAT probes of one create, and of several.
TEST_F(Conntrack, SnatProbeBudgetIsSpentAndReported)
{
    make({.capacity = 1024, .snat_port_min = 20000, .snat_port_max = 20003});
    for (uint16_t p = 20000; p <= 20003; p++)
        ASSERT_EQ(add(client(p, p)).status, create_status::ok);
    uint32_t budget = 10;
    const flow_key k = client(99, 30000);
    const auto r = table->create(0, k, connection_table::hash(k), 7, 1, task_ip_a, port(80),
                                 std::vector<uint32_t>{snat_1}, now, &budget);
    EXPECT_EQ(r.status, create_status::probe_budget);
    EXPECT_EQ(budget, 0u);
    // With a budget left, a create that finds a port at once spends one round or less.
    make({.capacity = 1024});
    budget = 10;
    const auto ok = table->create(0, k, connection_table::hash(k), 7, 1, task_ip_a, port(80),
                                  std::vector<uint32_t>{snat_1}, now, &budget);
    EXPECT_EQ(ok.status, create_status::ok);
    EXPECT_GE(budget, 6u);
}

// rte_malloc's own figures: the estimate covers what create() takes, and not much more.
TEST(ConntrackMemory, EstimateCoversWhatCreateTakes)
{
    qsbr_var rcu{2};
    auto heap = [] {
        rte_malloc_socket_stats s{};
        rte_malloc_get_socket_stats(static_cast<int>(rte_socket_id()), &s);
        return uint64_t{s.heap_allocsz_bytes};
    };
    for (uint32_t capacity : {16u, 1000u, 4096u, 50000u, 65536u, 200000u}) {
        for (uint16_t workers : {uint16_t{1}, uint16_t{2}, uint16_t{3}}) {
            mg::conntrack_params p{.capacity = capacity, .n_workers = workers, .qsbr = rcu.v};
            const uint64_t before = heap();
            auto table = connection_table::create(p);
            const uint64_t taken = heap() - before;
            const uint64_t estimate = connection_table::memory_needed(p);
            EXPECT_GE(estimate, taken) << capacity << " connections, " << workers << " workers";
            EXPECT_LE(estimate, taken + taken / 50 + 128 * 1024)
                << capacity << " connections, " << workers << " workers";
        }
    }
}

TEST(ConntrackConcurrent, ReaderOnAnotherLcoreSeesStableEntries)
{
    const unsigned reader_lcore = rte_get_next_lcore(rte_lcore_id(), 1, 0);
    if (reader_lcore >= RTE_MAX_LCORE) GTEST_SKIP() << "needs two lcores";
    qsbr_var rcu(2);
    auto table = connection_table::create({.capacity = 4096, .qsbr = rcu.v});
    uint32_t now = 1;
    const std::vector<uint32_t> snat = {snat_1};
    std::vector<flow_key> stable;
    std::vector<uint32_t> index;
    for (uint32_t i = 0; i < 64; i++) {
        stable.push_back(client(i, 3000));
        index.push_back(table
                            ->create(0, stable.back(), mg::connection_table::hash(stable.back()), 1,
                                     1, task_ip_a, port(80), snat, now)
                            .index);
    }
    reader_args args{table.get(), rcu.v, &stable, &index};
    ASSERT_EQ(rte_eal_remote_launch(reader_main, &args, reader_lcore), 0);

    std::vector<mg::removed_connection> removed(4096);
    std::vector<uint32_t> churn;
    for (int round = 0; round < 2000; round++) {
        for (uint32_t i = 0; i < 32; i++) {
            const flow_key k = client(10000 + (round * 32 + i) % 50000, 4000);
            const auto r = table->create(0, k, mg::connection_table::hash(k), 1, 1, task_ip_a,
                                         port(80), snat, now);
            if (r.status == create_status::ok) churn.push_back(r.index);
        }
        for (uint32_t i : churn)
            table->remove(0, i, nullptr);
        churn.clear();
        for (uint32_t i = 0; i < 64; i++) // keep the stable ones fresh
            table->update(index[i], direction::forward, 0, now);
        now++;
        table->expire(0, now, 4096, removed.data());
        rcu.quiescent();
    }
    args.stop = true;
    rte_eal_wait_lcore(reader_lcore);
    EXPECT_GT(args.reads.load(), 0u);
    EXPECT_EQ(args.errors.load(), 0u);
    EXPECT_EQ(table->size(), 64u);
    rcu.quiescent();
}

} // namespace
