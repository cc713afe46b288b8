// Which worker polls which port on one- and two-socket hosts.
#include "control/runtime/queue_plan.h"

#include <gtest/gtest.h>

namespace meshgate
{
namespace
{

using workers = std::vector<uint16_t>;

TEST(QueuePlan, OneSocketEveryWorkerPollsEveryPort)
{
    const std::vector<int> ports = {0, 0}, lcores = {0, 0};
    const queue_plan p = plan_queues(ports, lcores);
    EXPECT_EQ(p.rx_workers, (std::vector<workers>{{0, 1}, {0, 1}}));
    EXPECT_EQ(p.crosses_sockets, (std::vector<bool>{false, false}));
    EXPECT_EQ(p.pool_sockets, (std::vector<int>{0}));
}

TEST(QueuePlan, TwoSocketsKeepEachPortOnItsOwnSocketsWorkers)
{
    const std::vector<int> ports = {0, 1, 0}, lcores = {0, 1, 1, 0};
    const queue_plan p = plan_queues(ports, lcores);
    EXPECT_EQ(p.rx_workers, (std::vector<workers>{{0, 3}, {1, 2}, {0, 3}}));
    EXPECT_EQ(p.crosses_sockets, (std::vector<bool>{false, false, false, false}));
    EXPECT_EQ(p.pool_sockets, (std::vector<int>{0, 1}));
}

TEST(QueuePlan, APortWithNoWorkerOnItsSocketIsPolledByAll)
{
    const std::vector<int> ports = {0, 1}, lcores = {0, 0};
    const queue_plan p = plan_queues(ports, lcores);
    EXPECT_EQ(p.rx_workers, (std::vector<workers>{{0, 1}, {0, 1}}));
    EXPECT_EQ(p.crosses_sockets, (std::vector<bool>{true, true}));
    EXPECT_EQ(p.pool_sockets, (std::vector<int>{0, 1}));
}

TEST(QueuePlan, AWorkerWithNoPortOnItsSocketPollsEveryPort)
{
    const std::vector<int> ports = {0, 0}, lcores = {0, 1};
    const queue_plan p = plan_queues(ports, lcores);
    EXPECT_EQ(p.rx_workers, (std::vector<workers>{{0, 1}, {0, 1}}));
    EXPECT_EQ(p.crosses_sockets, (std::vector<bool>{false, true}));
    EXPECT_EQ(p.pool_sockets, (std::vector<int>{0}));
}

} // namespace
} // namespace meshgate
