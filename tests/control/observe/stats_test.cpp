// What meshgate exports for its services and tasks (the Prometheus text of gateway_collector,
// and the per-task rates) when ids change hands and services come back, on the null gateway
// driven burst by burst: each series counts what its own service or task did, from its first
// packet, and nothing of another's.
#include <gtest/gtest.h>

#include <sstream>

#include "control/observe/metrics.h"
#include "control/observe/stats_view.h"
#include "tests/support/null_gateway.h"

namespace
{

using namespace meshgate;
using namespace meshgate::test_support;

[[maybe_unused]] auto *const eal =
    ::testing::AddGlobalTestEnvironment(new null_gateway_eal("stats_test"));

class StatsTest : public NullGatewayTest
{
  protected:
    void start(const config::gateway_config &c)
    {
        NullGatewayTest::start(c);
        for (const dataplane::worker *w : g->path->workers())
            stats.counters.workers.push_back(&w->counters);
        stats.counters.task_active = g->path->task_active();
        stats.counters.connections = g->connections;
        stats.counters.neighbors = &g->path->neighbors();
        stats.counters.start_tsc = g->path->shared().start_tsc;
        stats.counters.tsc_hz = g->path->tsc_hz();
        after_change();
    }

    // As the gateway does after every change: the readers' view follows the API.
    void after_change() { stats.set_view(build_view(*g->api, g->ports)); }

    void apply(const config::gateway_config &c)
    {
        const apply_result r = g->api->apply(c);
        ASSERT_TRUE(r.ok) << r.errors.front().to_string();
        after_change();
    }

    // The value of the series NAME whose labels include every one of LABELS ('key="value"').
    double metric(const std::string &name, std::initializer_list<std::string> labels)
    {
        gateway_collector collector(stats);
        std::istringstream text(render_text(collector));
        for (std::string line; std::getline(text, line);) {
            if (!line.starts_with(name + "{")) continue;
            const std::string series = line.substr(0, line.rfind(' '));
            bool all = true;
            for (const std::string &l : labels)
                all = all && series.find(l) != std::string::npos;
            if (all) return std::stod(line.substr(line.rfind(' ') + 1));
        }
        ADD_FAILURE() << "no series " << name;
        return -1;
    }

    // Service "api" (tcp 9000 -> 80) with task .7.
    static config::service api_service()
    {
        config::service s;
        s.name = "api";
        s.ports.push_back(
            config::service_port{.proto = config::protocol::tcp, .published = 9000, .target = 80});
        s.tasks.push_back(config::task{.address = *parse_ipv4("10.255.0.7"),
                                       .node = "n1",
                                       .mac = docker_mac_for(*parse_ipv4("10.255.0.7"))});
        return s;
    }

    stats_state stats;
};

// Task .6 leaves (its id is given back), service api comes with task .7, which takes .6's id;
// api's first SYN arrives the moment the snapshot is published: api and .7 count it, and
// nothing of what .6 did.
TEST_F(StatsTest, AReusedIdCountsItsNewHolderFromItsFirstPacket)
{
    config::gateway_config c = null_gateway();
    c.timeouts.removed_task_grace = 0;
    start(c);
    establish(1000); // web/10.255.0.5
    establish(1001); // web/10.255.0.6: 3 packets in, 1 out
    const uint16_t reused = task_id("10.255.0.6");
    c.services[0].tasks.pop_back();
    apply(c);
    g->housekeeping(0, 1); // the sweep ends .6's connection
    g->api->tick();        // .6's id goes back
    ASSERT_EQ(g->api->ids().task({"web", *parse_ipv4("10.255.0.6")}), nullptr);

    c.services.push_back(api_service());
    g->after_publish = [&] { client_sends(2000, RTE_TCP_SYN_FLAG, 0, 9000); };
    apply(c);
    g->after_publish = nullptr;
    ASSERT_EQ(g->api->ids().task({"api", *parse_ipv4("10.255.0.7")})->id, reused);
    EXPECT_EQ(metric("meshgate_connections_total", {"service=\"api\""}), 1);
    EXPECT_EQ(metric("meshgate_backend_packets_total",
                     {"service=\"api\"", "task=\"10.255.0.7\"", "direction=\"in\""}),
              1);
    EXPECT_EQ(metric("meshgate_backend_packets_total",
                     {"service=\"api\"", "task=\"10.255.0.7\"", "direction=\"out\""}),
              0);
}

// The key index's overflow pool is exported: all of it free in an empty table, its size 1/8 of
// the buckets of an index sized for two keys per connection (5 keys per bucket).
TEST_F(StatsTest, TheKeyIndexsOverflowBucketsAreExported)
{
    config::gateway_config c = null_gateway();
    start(c);
    establish(1000);
    const double capacity =
        metric("meshgate_connection_index_overflow_buckets", {"state=\"capacity\""});
    double pool = 0;
    for (uint8_t w = 0; w < g->connections->n_workers(); w++)
        pool += dataplane::flow_index::shape_for(2 * g->connections->capacity(w)).overflow;
    EXPECT_GT(pool, 0);
    EXPECT_EQ(capacity, pool);
    EXPECT_EQ(metric("meshgate_connection_index_overflow_buckets", {"state=\"in_use\""}), 0);
}

// Service web leaves the file and comes back within removed_task_grace: its tasks kept their
// ids and their counts, and so does the service: meshgate_connections_total goes on.
TEST_F(StatsTest, AServiceBackWithinTheGraceKeepsItsCounts)
{
    config::gateway_config c = null_gateway();
    c.services.push_back(api_service());
    start(c);
    establish(1000);
    ASSERT_EQ(metric("meshgate_connections_total", {"service=\"web\""}), 1);
    config::gateway_config without = c;
    without.services.erase(without.services.begin());
    apply(without);
    apply(c);
    EXPECT_EQ(metric("meshgate_connections_total", {"service=\"web\""}), 1);
    EXPECT_EQ(metric("meshgate_backend_packets_total",
                     {"service=\"web\"", "task=\"10.255.0.5\"", "direction=\"in\""}),
              2);
}

// The rates (meshgatectl services --rate) over a second in which .6 sent its last packets and
// left, and .7 took its id and got its first SYN: .7's are its own.
TEST_F(StatsTest, TheRateOfAReusedIdIsItsNewHolders)
{
    config::gateway_config c = null_gateway();
    c.timeouts.removed_task_grace = 0;
    start(c);
    rate_samples samples;
    task_rates(g->api->ids(), stats.counters, 1.0, samples);
    establish(1000); // web/10.255.0.5
    establish(1001); // web/10.255.0.6
    c.services[0].tasks.pop_back();
    apply(c);
    g->housekeeping(0, 1);
    g->api->tick();
    c.services.push_back(api_service());
    apply(c);
    client_sends(2000, RTE_TCP_SYN_FLAG, 0, 9000);
    const std::vector<task_rate> rates = task_rates(g->api->ids(), stats.counters, 1.0, samples);
    const uint16_t id = g->api->ids().task({"api", *parse_ipv4("10.255.0.7")})->id;
    EXPECT_EQ(rates[id].connections, 1);
    EXPECT_EQ(rates[id].packets_in, 1);
    EXPECT_EQ(rates[id].packets_out, 0);
    EXPECT_EQ(rates[task_id("10.255.0.5")].packets_in, 2);
}

} // namespace
