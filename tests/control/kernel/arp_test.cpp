// The gratuitous ARP a gateway sends when it takes over a peer's underlay address
// (control/kernel/arp.h), heard by a real Linux neighbor table: in a network namespace of the
// test's own, a veth pair; the kernel side knows 10.0.0.2 at the old MAC, and the gratuitous
// ARP comes in through the pair.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <string>

#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include "control/kernel/arp.h"
#include "tests/support/command.h"

namespace
{

using namespace meshgate;

class GratuitousArp : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace and a veth pair)";
        // This process's own namespace: nothing of the host's is touched, and it goes with us.
        ASSERT_EQ(unshare(CLONE_NEWNET), 0);
        ASSERT_EQ(std::system("ip link add node type veth peer name gateway && "
                              "ip link set node up && ip link set gateway up && "
                              "ip address add 10.0.0.1/24 dev node"),
                  0);
        // Long enough that no entry of the test grows out of its locktime, however slow the run.
        std::ofstream locktime("/proc/sys/net/ipv4/neigh/node/locktime");
        locktime << 6000 << std::flush;
        ASSERT_TRUE(locktime.good()) << "locktime not set";
    }

    // The node's entry for 10.0.0.2, as `ip neigh` shows it ("" when it has none).
    static std::string entry()
    {
        return test_support::run_command("ip neigh show to 10.0.0.2 dev node").output;
    }
};

// A takeover: the node knows the dead gateway's address at the dead gateway's MAC, learned a
// moment ago (well inside its locktime); the survivor's gratuitous ARP must move it at once, or
// the node's replies go to the dead MAC until the entry ages out.
TEST_F(GratuitousArp, MovesAKnownAddressAtOnce)
{
    ASSERT_EQ(std::system("ip neigh replace 10.0.0.2 lladdr 02:00:00:00:00:01 dev node "
                          "nud reachable"),
              0);
    ASSERT_NE(entry().find("lladdr 02:00:00:00:00:01"), std::string::npos) << entry();

    const std::array<uint8_t, 6> survivor = {0x02, 0, 0, 0, 0, 0x02};
    in_addr address{};
    ASSERT_EQ(inet_pton(AF_INET, "10.0.0.2", &address), 1);
    ASSERT_TRUE(
        send_gratuitous_arp(static_cast<int>(if_nametoindex("gateway")), survivor, address.s_addr));

    // The kernel takes it in softirq, after the send returned.
    std::string now;
    for (int i = 0; i < 100; ++i) {
        now = entry();
        if (now.find("lladdr 02:00:00:00:00:02") != std::string::npos) break;
        usleep(10000);
    }
    EXPECT_NE(now.find("lladdr 02:00:00:00:00:02"), std::string::npos)
        << "the node kept the old MAC: " << now;
}

} // namespace
