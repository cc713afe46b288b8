#include "control/api/control_api.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>

#include "control/config/errors.h"

namespace meshgate
{

namespace
{

double ms_since(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

config::service *find_service(config::gateway_config &c, const std::string &name)
{
    auto it = std::find_if(c.services.begin(), c.services.end(),
                           [&](const config::service &s) { return s.name == name; });
    return it == c.services.end() ? nullptr : &*it;
}

config::task *find_task(config::service &s, ipv4_address a)
{
    auto it = std::find_if(s.tasks.begin(), s.tasks.end(),
                           [&](const config::task &t) { return t.address == a; });
    return it == s.tasks.end() ? nullptr : &*it;
}

} // namespace

gateway_runtime data_path_runtime(data_path &dp, std::vector<opened_port> ports)
{
    gateway_runtime r;
    r.ports = std::move(ports);
    r.publish = [&dp](const dataplane::dataplane_tables *t) { dp.publish(t); };
    r.synchronize = [&dp] { dp.synchronize(); };
    r.active = [&dp](uint16_t task) { return dp.active(task); };
    r.reset_counters = [&dp](std::span<const uint16_t> tasks, std::span<const uint16_t> services) {
        dp.reset_counters(tasks, services);
    };
    r.prepare_settings = [](const config::gateway_config *, const config::gateway_config &) {
        return std::vector<config::config_error>{};
    };
    r.commit_settings = [&dp](const config::gateway_config *old,
                              const config::gateway_config &next) {
        install_static_neighbors(next, old, dp.neighbors());
    };
    r.abort_settings = [] {};
    return r;
}

control_api::control_api(gateway_runtime runtime, compile_options options)
    : runtime_(std::move(runtime)), options_(options)
{
}

apply_result control_api::refuse(std::string message) const
{
    apply_result r;
    r.generation = generation_;
    r.errors.push_back(config::config_error{"api", 0, 0, std::move(message)});
    return r;
}

apply_result control_api::start(config::gateway_config initial)
{
    return commit(std::move(initial), true);
}

apply_result control_api::apply(config::gateway_config next)
{
    if (!started()) return refuse("the gateway has not started");
    return commit(std::move(next), false);
}

apply_result control_api::commit(config::gateway_config next, bool first)
{
    const auto t0 = std::chrono::steady_clock::now();
    apply_result r;
    r.generation = generation_;
    try {
        r.errors = config::validate(next);
        if (r.errors.empty() && !first) r.errors = restart_needed(config_, next);
        if (!r.errors.empty()) return r;

        const double now = runtime_.clock();
        identities ids = ids_;
        const size_t ending_before = ids.ending().size();
        std::string error;
        if (!ids.follow(next, generation_ + 1, now, next.timeouts.removed_task_grace, error)) {
            r.errors.push_back(config::config_error{next.file, 0, 0, error});
            return r;
        }
        r.changes = first ? change_set{} : diff(config_, next);
        // Tasks ended now, or connections now past a shorter timeout: the workers sweep.
        const bool sweep = ids.ending().size() > ending_before ||
                           (!first && timeouts_shortened(config_.timeouts, next.timeouts));
        const uint64_t epoch = sweep_epoch_ + (sweep ? 1 : 0);
        auto tables = build_tables(next, ids, runtime_.ports, tables_.get(), epoch, options_);
        r.compile_ms = ms_since(t0);

        const auto t1 = std::chrono::steady_clock::now();
        r.errors = runtime_.prepare_settings(first ? nullptr : &config_, next);
        if (!r.errors.empty()) return r;
        if (runtime_.reset_counters) reset_new_holders(ids, generation_ + 1);
        runtime_.publish(tables.get());
        // From here the change is made: the state follows the published tables at once.
        tables_ = std::move(tables); // the old snapshot goes: no worker uses it any more
        ids.mark_published();
        ids_ = std::move(ids);
        sweep_epoch_ = epoch;
        r.generation = ++generation_;
        r.ok = true;
        const config::gateway_config old = std::exchange(config_, std::move(next));
        runtime_.commit_settings(first ? nullptr : &old, config_);
        r.swap_ms = ms_since(t1);
    } catch (const std::exception &e) {
        if (r.ok) { // after the publish: the new configuration runs, a setting may lag
            spdlog::error("applying the live settings: {}", e.what());
        } else {
            if (runtime_.abort_settings) runtime_.abort_settings();
            r.errors = {
                config::config_error{next.file, 0, 0, std::string("internal error: ") + e.what()}};
        }
    }
    if (r.ok) release_ids();
    return r;
}

void control_api::reset_new_holders(const identities &ids, uint64_t generation)
{
    std::vector<uint16_t> tasks, services;
    for (const auto &[key, r] : ids.tasks())
        if (r.taken == generation) tasks.push_back(r.id);
    for (const auto &[name, r] : ids.services())
        if (r.taken == generation) services.push_back(r.id);
    if (!tasks.empty() || !services.empty()) runtime_.reset_counters(tasks, services);
}

void control_api::release_ids()
{
    try {
        ids_.release(runtime_.active, runtime_.synchronize);
    } catch (const std::exception &e) {
        spdlog::error("giving back ids: {} (tried again shortly)", e.what());
    }
}

bool control_api::republish(const char *what,
                            const std::function<void(dataplane::dataplane_tables &)> &change)
{
    if (!started()) return false;
    try {
        auto tables = std::make_unique<dataplane::dataplane_tables>(*tables_);
        change(*tables);
        runtime_.publish(tables.get());
        tables_ = std::move(tables);
        return true;
    } catch (const std::exception &e) {
        spdlog::error("{}: {}", what, e.what());
        return false;
    }
}

bool control_api::adopt(std::vector<dataplane::adopted_gateway> adopted)
{
    return republish("taking over addresses", [&](dataplane::dataplane_tables &t) {
        set_adopted(config_, std::move(adopted), t);
    });
}

bool control_api::set_joining(std::vector<uint32_t> peers, uint16_t port)
{
    return republish("joining the cluster", [&](dataplane::dataplane_tables &t) {
        t.joining_port = peers.empty() ? UINT16_MAX : port;
        t.joining_peers = std::move(peers);
    });
}

bool control_api::tick()
{
    if (!started()) return false;
    bool published = false;
    try {
        const std::optional<double> due = ids_.next_end();
        if (due && *due <= runtime_.clock()) {
            identities ids = ids_;
            const size_t ended = ids.end_expired(runtime_.clock());
            auto tables = build_tables(config_, ids, runtime_.ports, tables_.get(),
                                       sweep_epoch_ + 1, options_);
            runtime_.publish(tables.get());
            tables_ = std::move(tables);
            ids.mark_published();
            ids_ = std::move(ids);
            ++sweep_epoch_;
            published = true;
            spdlog::info("{} removed task(s) reached the end of removed_task_grace: their "
                         "connections end",
                         ended);
        }
        release_ids();
    } catch (const std::exception &e) {
        spdlog::error("ending removed tasks: {} (tried again shortly)", e.what());
    }
    return published;
}

apply_result control_api::upsert_service(config::service s)
{
    config::gateway_config next = config_;
    if (config::service *old = find_service(next, s.name))
        *old = std::move(s);
    else
        next.services.push_back(std::move(s));
    return apply(std::move(next));
}

apply_result control_api::remove_service(const std::string &name)
{
    config::gateway_config next = config_;
    auto it = std::find_if(next.services.begin(), next.services.end(),
                           [&](const config::service &s) { return s.name == name; });
    if (it == next.services.end()) return refuse("no service " + config::in_quotes(name));
    next.services.erase(it);
    return apply(std::move(next));
}

apply_result control_api::upsert_task(const std::string &service, config::task t)
{
    config::gateway_config next = config_;
    config::service *s = find_service(next, service);
    if (s == nullptr) return refuse("no service " + config::in_quotes(service));
    if (config::task *old = find_task(*s, t.address))
        *old = std::move(t);
    else
        s->tasks.push_back(std::move(t));
    return apply(std::move(next));
}

apply_result control_api::remove_task(const std::string &service, ipv4_address address)
{
    config::gateway_config next = config_;
    config::service *s = find_service(next, service);
    if (s == nullptr) return refuse("no service " + config::in_quotes(service));
    auto it = std::find_if(s->tasks.begin(), s->tasks.end(),
                           [&](const config::task &t) { return t.address == address; });
    if (it == s->tasks.end())
        return refuse("service " + config::in_quotes(service) + " has no task " +
                      to_string(address));
    s->tasks.erase(it);
    return apply(std::move(next));
}

apply_result control_api::set_task_weight(const std::string &service, ipv4_address address,
                                          uint32_t weight)
{
    config::gateway_config next = config_;
    config::service *s = find_service(next, service);
    if (s == nullptr) return refuse("no service " + config::in_quotes(service));
    config::task *t = find_task(*s, address);
    if (t == nullptr)
        return refuse("service " + config::in_quotes(service) + " has no task " +
                      to_string(address));
    if (weight > dataplane::max_task_weight)
        return refuse("weight " + std::to_string(weight) + " out of range 0.." +
                      std::to_string(dataplane::max_task_weight));
    t->weight = weight;
    return apply(std::move(next));
}

apply_result control_api::upsert_node(config::node n)
{
    config::gateway_config next = config_;
    auto it = std::find_if(next.nodes.begin(), next.nodes.end(),
                           [&](const config::node &o) { return o.name == n.name; });
    if (it != next.nodes.end())
        *it = std::move(n);
    else
        next.nodes.push_back(std::move(n));
    return apply(std::move(next));
}

apply_result control_api::remove_node(const std::string &name)
{
    config::gateway_config next = config_;
    auto it = std::find_if(next.nodes.begin(), next.nodes.end(),
                           [&](const config::node &n) { return n.name == name; });
    if (it == next.nodes.end()) return refuse("no node " + config::in_quotes(name));
    next.nodes.erase(it);
    return apply(std::move(next));
}

} // namespace meshgate
