// meshgatectl cluster against this program's own telemetry socket: what /meshgate/cluster makes
// of the cluster status, as people (the text) and scripts (--json) see it, and what meshgatectl
// says without [cluster] and without a gateway. MESHGATECTL names the meshgatectl to run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>
#include <rte_eal.h>

#include "control/observe/telemetry.h"
#include "tests/support/command.h"

namespace
{

using namespace meshgate;

constexpr const char *prefix = "telemetry_test";

// What the commands answer from: no [cluster] until a test sets one.
stats_state stats;
control_requests requests;

// EAL without hugepages or ports, with its telemetry socket, and the /meshgate/ commands.
class telemetry_eal : public ::testing::Environment
{
  public:
    void SetUp() override
    {
        const std::string file_prefix = std::string("--file-prefix=") + prefix;
        const char *argv[] = {"telemetry_test",    "--no-huge",         "-m", "64", "--no-pci",
                              file_prefix.c_str(), "--log-level=error", "-l", "0"};
        ASSERT_GE(rte_eal_init(std::size(argv), const_cast<char **>(argv)), 0)
            << "rte_eal_init failed";
        register_telemetry(stats, requests);
    }
    void TearDown() override
    {
        unregister_telemetry();
        rte_eal_cleanup();
    }
};

[[maybe_unused]] auto *const eal = ::testing::AddGlobalTestEnvironment(new telemetry_eal);

// meshgatectl ARGS, run to its end.
test_support::command_result meshgatectl(const std::string &args)
{
    const char *exe = std::getenv("MESHGATECTL");
    if (exe == nullptr) {
        ADD_FAILURE() << "MESHGATECTL is not set";
        return {};
    }
    return test_support::run_command("'" + std::string(exe) + "' " + args + " 2>&1");
}

uint32_t be(const char *address)
{
    return network_order(*parse_ipv4(address));
}

// gw-a serving with gw-b alive and gw-c dead, whose addresses gw-a took over.
cluster::group_status two_peers()
{
    cluster::group_status s;
    s.name = "gw-a";
    s.state = cluster::member_state::serving;
    s.own_connections = 12;
    s.takeovers = 1;
    s.last_takeover_ms = 301.4;
    s.refused[static_cast<size_t>(cluster::wire_error::bad_mac)] = 3;
    s.refused_replay = 1;
    s.peers.push_back(cluster::peer_status{.name = "gw-b",
                                           .address = be("192.168.50.2"),
                                           .health = cluster::peer_health::alive,
                                           .says = cluster::member_state::serving,
                                           .adopted = false,
                                           .synced_us = true,
                                           .heard_ms_ago = 40.2,
                                           .messages_in = 120,
                                           .messages_out = 118,
                                           .records_in = 30,
                                           .records_out = 29,
                                           .connections = 3});
    s.peers.push_back(cluster::peer_status{.name = "gw-c",
                                           .address = be("192.168.50.3"),
                                           .health = cluster::peer_health::dead,
                                           .says = cluster::member_state::leaving,
                                           .adopted = true,
                                           .synced_us = false,
                                           .heard_ms_ago = 12480,
                                           .messages_in = 50,
                                           .messages_out = 60,
                                           .records_in = 10,
                                           .records_out = 12,
                                           .connections = 5});
    return s;
}

// Without a gateway of that prefix, as the other subcommands: the socket it looked for, exit 1.
TEST(MeshgatectlCluster, SaysWhenNoGatewayRuns)
{
    const test_support::command_result r = meshgatectl("--file-prefix no-such-gateway cluster");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("no gateway with file prefix 'no-such-gateway'"), std::string::npos)
        << r.output;
}

// Without [cluster] it says so and exits 1; with one, a line for this gateway, one per peer
// and the refusals, and --json the same as one document with the peers as objects.
TEST(MeshgatectlCluster, ShowsThePeersOrSaysThereIsNoCluster)
{
    test_support::command_result r =
        meshgatectl(std::string("--file-prefix ") + prefix + " cluster");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.output, "meshgatectl: no [cluster] in the configuration\n");

    stats.set_cluster(two_peers());
    r = meshgatectl(std::string("--file-prefix ") + prefix + " cluster");
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.output,
              "cluster gw-a: serving, 12 connection(s) of its own, 1 takeover(s) (last 0.301 s)\n"
              "  gw-b 192.168.50.2: alive (serving), heard 40 ms ago, 3 connection(s) here, "
              "messages in/out 120/118, records in/out 30/29\n"
              "  gw-c 192.168.50.3: dead (leaving), heard 12.5 s ago, 5 connection(s) here, "
              "messages in/out 50/60, records in/out 10/12, its addresses taken over\n"
              "refused: bad_mac 3, replay 1\n");

    r = meshgatectl(std::string("--file-prefix ") + prefix + " cluster --json");
    ASSERT_EQ(r.status, 0) << r.output;
    const nlohmann::json doc = nlohmann::json::parse(r.output);
    EXPECT_EQ(doc["name"], "gw-a");
    EXPECT_EQ(doc["state"], "serving");
    EXPECT_EQ(doc["own_connections"], 12);
    EXPECT_EQ(doc["takeovers"], 1);
    EXPECT_EQ(doc["last_takeover_ms"], 301);
    EXPECT_EQ(doc["refused"]["bad_mac"], 3);
    EXPECT_EQ(doc["refused"]["replay"], 1);
    EXPECT_EQ(doc["refused"]["truncated"], 0);
    EXPECT_EQ(doc["refused"]["send_error"], 0);
    ASSERT_EQ(doc["peers"].size(), 2u);
    EXPECT_EQ(doc["peers"][0], nlohmann::json::parse(R"({"name": "gw-b", "address": "192.168.50.2",
                  "health": "alive", "says": "serving", "adopted": 0, "synced_us": 1,
                  "heard_ms_ago": 40, "messages_in": 120, "messages_out": 118,
                  "records_in": 30, "records_out": 29, "connections": 3})"));
    EXPECT_EQ(doc["peers"][1]["name"], "gw-c");
    EXPECT_EQ(doc["peers"][1]["health"], "dead");
    EXPECT_EQ(doc["peers"][1]["says"], "leaving");
    EXPECT_EQ(doc["peers"][1]["adopted"], 1);
    EXPECT_EQ(doc["peers"][1]["heard_ms_ago"], 12480);
}

} // namespace
