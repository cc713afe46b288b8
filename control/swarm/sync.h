// Follows a live swarm through the Engine API on two threads of its own: one streams /events,
// the other reads what changed (everything after a service, node or network event, the tasks
// after a container event or every poll interval, everything again every resync interval).
// Each read builds a swarm::state; the control thread takes the newest one that differs from
// the last and applies it. When the manager goes away the last state stays in force while the
// sync retries with back-off (0.5 s doubling to 30 s).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/config/config.h"
#include "control/swarm/state.h"

namespace meshgate
{

class engine_client;

// What the sync has done, for metrics and meshgatectl. Times in seconds since the epoch, 0 = never.
struct swarm_status {
    bool connected = false;        // the last read answered
    bool following_events = false; // the /events stream is open
    uint64_t reads = 0, read_errors = 0, events = 0, resyncs = 0;
    uint64_t applied = 0, apply_errors = 0; // states the gateway applied or refused
    double last_event_at = 0, last_read_at = 0, last_resync_at = 0, last_change_at = 0;
    std::string last_error;                    // of a read or an apply; cleared by the next success
    size_t services = 0, tasks = 0, nodes = 0; // in the last state
};

class swarm_sync
{
  public:
    explicit swarm_sync(config::swarm_section settings);
    ~swarm_sync(); // stops both threads (within a second: a request under way is given up)
    swarm_sync(const swarm_sync &) = delete;
    swarm_sync &operator=(const swarm_sync &) = delete;

    // The newest state, if one came since the last call.
    std::optional<swarm::state> take();
    // The gateway's answer to a state it took. A refused state is offered again after the
    // next read (every poll interval), equal or not: what refused it may have changed.
    void applied(bool ok, const std::string &error);
    swarm_status status() const;
    const config::swarm_section &settings() const { return settings_; }

  private:
    void stop() noexcept; // both threads end (within a second: requests stop when asked)
    bool running() const; // not stopping: what the requests ask
    void read_loop();
    void event_loop();
    bool read_all(engine_client &client);
    bool read_tasks(engine_client &client, bool after_read_all);
    void publish(swarm::state s);
    void failed(const std::string &error);
    // Sleeps FOR_TIME, or less (not under 100 ms) if WAKE_EARLY and something is due; false
    // when stopping.
    bool wait(std::chrono::milliseconds for_time, bool wake_early);

    const config::swarm_section settings_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool read_all_due_ = true; // after a service/node/network event, a reconnect, a failure
    bool tasks_due_ = false;   // after a container event
    std::optional<swarm::state> fresh_;
    swarm_status status_;
    // The last state offered and not refused: an equal one is not offered again.
    std::optional<swarm::state> last_;

    // The read thread's own: what the last full read saw.
    std::optional<swarm::network> network_;
    std::vector<swarm::service> services_;
    std::vector<swarm::node> nodes_;

    std::thread reader_, events_;
};

} // namespace meshgate
