// swarm_sync against a real HTTP peer on a unix socket that answers the Engine API with
// documents recorded from a real Docker 20.10 swarm (engine_api/), and holds /events open.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <thread>

#include "control/swarm/sync.h"
#include "tests/control/swarm/recorded.h"
#include "tests/support/http_peer.h"

namespace meshgate
{
namespace
{

using namespace std::chrono_literals;

// A manager that answers every read with the recorded swarm, and an events stream that says
// nothing until the test ends.
class recorded_manager
{
  public:
    recorded_manager()
        : peer_(true, [this](const std::string &request, const auto &send) {
              const std::string path = request.substr(4, request.find(' ', 4) - 4);
              if (path.find("/events") != std::string::npos) {
                  send("HTTP/1.1 200 X\r\nContent-Type: application/json\r\n\r\n");
                  while (!done_)
                      std::this_thread::sleep_for(10ms);
                  return;
              }
              for (const char *what : {"networks", "services", "nodes", "tasks"})
                  if (path.find(std::string("/") + what) != std::string::npos) {
                      send(test_support::response(
                          200,
                          recorded(std::string(what == std::string("networks") ? "network" : what) +
                                   ".json")));
                      return;
                  }
              send(test_support::response(404, R"({"message":"not here"})"));
          })
    {
    }
    ~recorded_manager() { done_ = true; }

    config::swarm_section settings() const
    {
        config::swarm_section s;
        s.endpoint = peer_.endpoint();
        s.poll_interval_ms = 100;
        return s;
    }

  private:
    std::atomic<bool> done_{false};
    test_support::http_peer peer_;
};

// The next state the sync offers, waited for up to a minute (a hang, not a speed, fails it).
std::optional<swarm::state> next_state(swarm_sync &sync)
{
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (std::optional<swarm::state> s = sync.take()) return s;
        std::this_thread::sleep_for(20ms);
    }
    return std::nullopt;
}

TEST(SwarmSync, OffersTheSwarmsStateOnceWhileItStaysTheSame)
{
    recorded_manager manager;
    swarm_sync sync(manager.settings());
    const std::optional<swarm::state> first = next_state(sync);
    ASSERT_TRUE(first.has_value());
    EXPECT_FALSE(first->services.empty());
    sync.applied(true, "");
    const uint64_t reads = sync.status().reads;
    while (sync.status().reads < reads + 3) // three more polls of the same swarm
        std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(sync.take().has_value());
}

// The gateway refused a state (a file reload may make room for it later): the sync offers it
// again at its next poll, without waiting for the swarm to change.
TEST(SwarmSync, ARefusedStateIsOfferedAgain)
{
    recorded_manager manager;
    swarm_sync sync(manager.settings());
    const std::optional<swarm::state> first = next_state(sync);
    ASSERT_TRUE(first.has_value());
    sync.applied(false, "no room");
    const std::optional<swarm::state> again = next_state(sync);
    ASSERT_TRUE(again.has_value()) << "not offered again";
    EXPECT_TRUE(*again == *first);
    EXPECT_EQ(sync.status().apply_errors, 1u);
}

} // namespace
} // namespace meshgate
