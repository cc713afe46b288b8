#include "control/swarm/sync.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "control/base/edge.h"
#include "control/swarm/engine_client.h"

namespace meshgate
{

namespace
{

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto request_timeout = 5s;
constexpr auto first_backoff = 500ms;
constexpr auto max_backoff = 30s;
constexpr auto min_read_gap = 100ms; // a burst of container events is one read

double epoch_seconds()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Tasks the swarm wants running: the others are history (5 per slot) or on their way out, and
// a task stopped by the swarm drains once it leaves this list (control_api's removed_task_grace).
const std::string tasks_path = "/tasks?filters=" + url_encoded(R"({"desired-state":["running"]})");
const std::string events_path =
    "/events?filters=" + url_encoded(R"({"type":["service","node","network","container"]})");

} // namespace

swarm_sync::swarm_sync(config::swarm_section settings) : settings_(std::move(settings))
{
    reader_ = std::thread([this] { at_edge("swarm reader", [this] { read_loop(); }); });
    try {
        events_ = std::thread([this] { at_edge("swarm events", [this] { event_loop(); }); });
    } catch (...) {
        stop(); // no thread left running behind a constructor that failed
        throw;
    }
}

swarm_sync::~swarm_sync()
{
    stop();
}

void swarm_sync::stop() noexcept
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread *t : {&reader_, &events_})
        if (t->joinable()) t->join();
}

std::optional<swarm::state> swarm_sync::take()
{
    std::lock_guard lock(mutex_);
    std::optional<swarm::state> s = std::move(fresh_);
    fresh_.reset();
    return s;
}

void swarm_sync::applied(bool ok, const std::string &error)
{
    std::lock_guard lock(mutex_);
    if (ok) {
        ++status_.applied;
        status_.last_change_at = epoch_seconds();
        status_.last_error.clear();
    } else {
        ++status_.apply_errors;
        status_.last_error = error;
        last_.reset();
    }
}

swarm_status swarm_sync::status() const
{
    std::lock_guard lock(mutex_);
    return status_;
}

bool swarm_sync::wait(std::chrono::milliseconds for_time, bool wake_early)
{
    const auto gap = std::min<std::chrono::milliseconds>(for_time, min_read_gap);
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, gap, [&] { return stopping_; });
    wake_.wait_for(lock, for_time - gap,
                   [&] { return stopping_ || (wake_early && (read_all_due_ || tasks_due_)); });
    return !stopping_;
}

void swarm_sync::failed(const std::string &error)
{
    std::lock_guard lock(mutex_);
    if (status_.connected || status_.last_error != error)
        spdlog::warn("swarm {}: {}; the last tables stay in force", settings_.endpoint, error);
    status_.connected = false;
    ++status_.read_errors;
    status_.last_error = error;
    read_all_due_ = true;
}

void swarm_sync::publish(swarm::state s)
{
    std::lock_guard lock(mutex_);
    if (!status_.connected) spdlog::info("swarm {}: connected", settings_.endpoint);
    status_.connected = true;
    ++status_.reads;
    status_.last_read_at = epoch_seconds();
    if (last_ && *last_ == s) return;
    status_.services = s.services.size();
    status_.tasks = 0;
    for (const config::service &sv : s.services)
        status_.tasks += sv.tasks.size();
    status_.nodes = s.nodes.size();
    last_ = s;
    fresh_ = std::move(s);
}

bool swarm_sync::running() const
{
    std::lock_guard lock(mutex_);
    return !stopping_;
}

void swarm_sync::read_loop()
{
    engine_client client(settings_, [this] { return running(); });
    auto backoff = std::chrono::milliseconds(first_backoff);
    auto last_full = steady::now();
    bool ok = true;
    // After a failure only the back-off time, events or not.
    while (wait(ok ? std::chrono::milliseconds(settings_.poll_interval_ms) : backoff, ok)) {
        bool all = false;
        {
            std::lock_guard lock(mutex_);
            all = read_all_due_ || !network_ ||
                  steady::now() - last_full >=
                      std::chrono::milliseconds(settings_.resync_interval_ms);
            read_all_due_ = tasks_due_ = false;
        }
        try {
            ok = all ? read_all(client) : read_tasks(client, false);
        } catch (const std::exception &e) { // as a read that failed: the last state stays
            failed(std::string("internal error: ") + e.what());
            ok = false;
        }
        if (ok && all) last_full = steady::now();
        backoff = ok ? std::chrono::milliseconds(first_backoff)
                     : std::min<std::chrono::milliseconds>(backoff * 2, max_backoff);
    }
}

bool swarm_sync::read_all(engine_client &client)
{
    const engine_response net = client.get(
        "/networks/" + url_encoded(settings_.network) + "?verbose=true", request_timeout);
    if (!net.ok()) {
        failed("network '" + settings_.network + "': " + net.error());
        return false;
    }
    swarm::read<swarm::network> n = swarm::read_network(net.body);
    if (!n.ok()) {
        failed("network '" + settings_.network + "': " + n.error);
        return false;
    }
    const engine_response services = client.get("/services", request_timeout);
    const engine_response nodes = client.get("/nodes", request_timeout);
    for (const auto &[what, r] : {std::pair{"services", &services}, std::pair{"nodes", &nodes}})
        if (!r->ok()) {
            failed(std::string(what) + ": " + r->error());
            return false;
        }
    swarm::read<std::vector<swarm::service>> s = swarm::read_services(services.body);
    swarm::read<std::vector<swarm::node>> d = swarm::read_nodes(nodes.body);
    if (!s.ok() || !d.ok()) {
        failed(!s.ok() ? "services: " + s.error : "nodes: " + d.error);
        return false;
    }
    network_ = std::move(*n.value);
    services_ = std::move(*s.value);
    nodes_ = std::move(*d.value);
    {
        std::lock_guard lock(mutex_);
        ++status_.resyncs;
        status_.last_resync_at = epoch_seconds();
    }
    return read_tasks(client, true);
}

bool swarm_sync::read_tasks(engine_client &client, bool after_read_all)
{
    const engine_response r = client.get(tasks_path, request_timeout);
    if (!r.ok()) {
        failed("tasks: " + r.error());
        return false;
    }
    swarm::read<std::vector<swarm::task>> tasks = swarm::read_tasks(r.body, network_->id);
    if (!tasks.ok()) {
        failed("tasks: " + tasks.error);
        return false;
    }
    // A task of a service or on a node the last full read did not see: read everything (once:
    // what a full read itself does not see stays out).
    const bool unknown = std::any_of(tasks.value->begin(), tasks.value->end(), [&](const auto &t) {
        auto known = [&](const auto &list, const std::string &id) {
            return std::any_of(list.begin(), list.end(), [&](const auto &o) { return o.id == id; });
        };
        return t.state == "running" &&
               (!known(services_, t.service_id) || !known(nodes_, t.node_id));
    });
    if (unknown && !after_read_all) {
        std::lock_guard lock(mutex_);
        read_all_due_ = true;
    }
    publish(swarm::assemble(*network_, services_, *tasks.value, nodes_));
    return true;
}

void swarm_sync::event_loop()
{
    engine_client client(settings_, [this] { return running(); });
    auto backoff = std::chrono::milliseconds(first_backoff);
    auto on_line = [&](std::string_view line) {
        const std::string type = swarm::event_type(line);
        {
            std::lock_guard lock(mutex_);
            ++status_.events;
            status_.last_event_at = epoch_seconds();
            status_.following_events = true;
            (type == "container" ? tasks_due_ : read_all_due_) = true;
        }
        wake_.notify_all();
        backoff = first_backoff;
    };
    while (running()) {
        {
            std::lock_guard lock(mutex_);
            status_.following_events = true; // until the stream says otherwise
        }
        const engine_response end = client.stream(events_path, on_line);
        {
            std::lock_guard lock(mutex_);
            status_.following_events = false;
            read_all_due_ = true; // what happened while nobody listened
            if (stopping_) return;
        }
        spdlog::debug("swarm events: {}", end.error());
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, backoff, [&] { return stopping_; });
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, max_backoff);
    }
}

} // namespace meshgate
