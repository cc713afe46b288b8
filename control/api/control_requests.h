// Requests from other threads (the DPDK telemetry thread) that only the control thread may
// carry out: it owns the configuration. The asker waits for the answer, with a time limit.
#pragma once

#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace meshgate
{

struct reload_reply {
    bool ok = false;
    uint64_t generation = 0;
    std::string changes;             // change_set::summary()
    std::vector<std::string> errors; // FILE:LINE:COL: message
};

// Withdraw the published addresses and serve what still arrives (meshgatectl drain), or
// announce them again.
struct drain_order {
    bool cancel = false;   // announce again, forget the deadline
    double deadline_s = 0; // seconds from the order until the drain ends; 0 = no deadline
    bool stop = false;     // stop the gateway when it ends
};

class control_requests
{
  public:
    // Any thread: a drain order for the control thread's next pass (a later one replaces it);
    // what it does is seen in the drain status (stats_state::drain()).
    void order_drain(drain_order order)
    {
        std::lock_guard lock(mutex_);
        drain_ = order;
    }
    // Control thread: the order given since the last call, if any.
    std::optional<drain_order> take_drain_order()
    {
        std::lock_guard lock(mutex_);
        return std::exchange(drain_, std::nullopt);
    }

    // Any thread: a reload, answered by the control thread within TIMEOUT or nothing.
    std::optional<reload_reply> reload(std::chrono::milliseconds timeout)
    {
        std::future<reload_reply> answer;
        {
            std::lock_guard lock(mutex_);
            if (closed_) return std::nullopt;
            answer = reloads_.emplace_back().get_future();
        }
        if (answer.wait_for(timeout) != std::future_status::ready) return std::nullopt;
        try {
            return answer.get();
        } catch (const std::future_error &) { // never set: no answer
            return std::nullopt;
        }
    }

    // Control thread: carries out what is pending with DO_RELOAD() -> reload_reply; a reload
    // that throws is answered as an error.
    template <typename Reload>
    void serve(Reload do_reload)
    {
        std::vector<std::promise<reload_reply>> pending;
        {
            std::lock_guard lock(mutex_);
            pending.swap(reloads_);
        }
        if (pending.empty()) return;
        reload_reply reply; // one reload answers every asker
        try {
            reply = do_reload();
        } catch (const std::exception &e) {
            reply = reload_reply{false, 0, "", {std::string("internal error: ") + e.what()}};
        } catch (...) {
            reply = reload_reply{false, 0, "", {"internal error"}};
        }
        for (std::promise<reload_reply> &p : pending)
            p.set_value(reply);
    }

    // Control thread, when it stops: answers what is pending with STOPPING, refuses the rest.
    void close(const reload_reply &stopping)
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        for (std::promise<reload_reply> &p : reloads_)
            p.set_value(stopping);
        reloads_.clear();
    }

  private:
    std::mutex mutex_;
    bool closed_ = false;
    std::vector<std::promise<reload_reply>> reloads_;
    std::optional<drain_order> drain_;
};

} // namespace meshgate
