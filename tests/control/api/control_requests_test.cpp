// control_requests: another thread's reload request, carried out by the control thread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <thread>

#include "control/api/control_requests.h"

namespace meshgate
{
namespace
{

// The control thread serves requests until the asker has its answer.
template <typename Reload>
std::optional<reload_reply> ask_while_serving(control_requests &requests, Reload reload)
{
    std::optional<reload_reply> reply;
    std::atomic<bool> answered{false};
    std::thread asker([&] {
        reply = requests.reload(std::chrono::seconds(60));
        answered = true;
    });
    while (!answered) {
        EXPECT_NO_THROW(requests.serve(reload));
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    asker.join();
    return reply;
}

TEST(ControlRequests, AReloadIsAnsweredWithItsReply)
{
    control_requests requests;
    const std::optional<reload_reply> r = ask_while_serving(requests, [] {
        return reload_reply{true, 7, "no change", {}};
    });
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->generation, 7u);
}

// A reload that throws on the control thread: the asker (DPDK's telemetry thread, inside a C
// callback) gets an error reply, and the control thread goes on.
TEST(ControlRequests, AReloadThatThrowsIsAnsweredAsAnError)
{
    control_requests requests;
    const std::optional<reload_reply> r = ask_while_serving(
        requests, []() -> reload_reply { throw std::runtime_error("out of disk"); });
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(r->ok);
    ASSERT_EQ(r->errors.size(), 1u);
    EXPECT_EQ(r->errors[0], "internal error: out of disk");
}

TEST(ControlRequests, AStoppingGatewayAnswersAndRefuses)
{
    control_requests requests;
    requests.close(reload_reply{false, 0, "", {"the gateway is stopping"}});
    EXPECT_FALSE(requests.reload(std::chrono::seconds(1)).has_value());
}

} // namespace
} // namespace meshgate
