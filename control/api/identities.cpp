#include "control/api/identities.h"

#include <algorithm>
#include <set>

#include "dataplane/capacity.h"

namespace meshgate
{

std::optional<uint16_t> id_pool::take()
{
    auto it = std::find(used_.begin(), used_.end(), false);
    if (it == used_.end()) return std::nullopt;
    *it = true;
    return static_cast<uint16_t>(it - used_.begin());
}

uint32_t id_pool::in_use() const
{
    return static_cast<uint32_t>(std::count(used_.begin(), used_.end(), true));
}

identities::identities()
    : task_ids_(dataplane::task_id_capacity), service_ids_(dataplane::service_id_capacity)
{
}

bool identities::follow(const config::gateway_config &next, uint64_t generation, double now,
                        double grace, std::string &error)
{
    std::map<std::string, const config::node *> nodes;
    for (const config::node &n : next.nodes)
        nodes.emplace(n.name, &n);

    std::set<std::string> present;
    std::set<task_key> configured;
    for (const config::service &s : next.services) {
        present.insert(s.name);
        auto [it, fresh] = services_.try_emplace(s.name);
        if (fresh) {
            std::optional<uint16_t> id = service_ids_.take();
            if (!id) {
                error = "no free service id: " + std::to_string(service_ids_.capacity()) +
                        " services, the removed ones with connections left included";
                return false;
            }
            it->second = service_record{*id, true, generation};
        }
        it->second.present = true;
        for (const config::task &t : s.tasks) {
            task_key key{s.name, t.address};
            configured.insert(key);
            auto [rec, new_task] = tasks_.try_emplace(key);
            if (new_task) {
                std::optional<uint16_t> id = task_ids_.take();
                if (!id) {
                    error = "no free task id: " + std::to_string(task_ids_.capacity()) +
                            " tasks, the removed ones not yet ended included";
                    return false;
                }
                rec->second.id = *id;
                rec->second.taken = generation;
            }
            rec->second.phase = task_phase::serving;
            rec->second.spec = t;
            if (auto n = nodes.find(t.node); n != nodes.end()) rec->second.node = *n->second;
        }
    }
    for (auto &[name, rec] : services_)
        rec.present = present.count(name) != 0;
    for (auto &[key, rec] : tasks_)
        if (rec.phase == task_phase::serving && configured.count(key) == 0) {
            rec.phase = task_phase::removed;
            rec.ends_at = now + grace;
        }
    if (grace <= 0) end_expired(now);
    return true;
}

size_t identities::end_expired(double now)
{
    size_t n = 0;
    for (auto it = tasks_.begin(); it != tasks_.end();) {
        if (it->second.phase == task_phase::removed && it->second.ends_at <= now) {
            ended_.emplace(it->second.id, ended_task{it->first, false});
            it = tasks_.erase(it);
            ++n;
        } else {
            ++it;
        }
    }
    return n;
}

void identities::mark_published()
{
    for (auto &[id, e] : ended_)
        e.published = true;
}

size_t identities::release(const std::function<uint32_t(uint16_t)> &active,
                           const std::function<void()> &synchronize)
{
    std::vector<uint16_t> done;
    for (const auto &[id, e] : ended_)
        if (e.published && active(id) == 0) done.push_back(id);
    if (!done.empty()) {
        synchronize();
        for (uint16_t id : done) {
            ended_.erase(id);
            task_ids_.give_back(id);
        }
    }
    // A gone service keeps its id while any task of it holds one. (This runs every control
    // loop pass: nothing to do in the common case of no gone service.)
    if (std::all_of(services_.begin(), services_.end(),
                    [](const auto &s) { return s.second.present; }))
        return done.size();
    std::set<std::string> holding;
    for (const auto &[key, rec] : tasks_)
        holding.insert(key.service);
    for (const auto &[id, e] : ended_)
        holding.insert(e.key.service);
    for (auto it = services_.begin(); it != services_.end();) {
        if (!it->second.present && holding.count(it->first) == 0) {
            service_ids_.give_back(it->second.id);
            it = services_.erase(it);
        } else {
            ++it;
        }
    }
    return done.size();
}

const task_record *identities::task(const task_key &k) const
{
    auto it = tasks_.find(k);
    return it == tasks_.end() ? nullptr : &it->second;
}

const service_record *identities::service(const std::string &name) const
{
    auto it = services_.find(name);
    return it == services_.end() ? nullptr : &it->second;
}

std::vector<uint16_t> identities::ending() const
{
    std::vector<uint16_t> ids;
    for (const auto &[id, e] : ended_)
        ids.push_back(id);
    return ids;
}

std::optional<double> identities::next_end() const
{
    std::optional<double> soonest;
    for (const auto &[key, rec] : tasks_)
        if (rec.phase == task_phase::removed && (!soonest || rec.ends_at < *soonest))
            soonest = rec.ends_at;
    return soonest;
}

} // namespace meshgate
