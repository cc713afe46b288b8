// Stable identities. A service is known by its name, a task by its service's name and its
// address on the ingress network. The data path names them by small ids (connections, counters,
// lc/wlc counts, affinity, metrics), so an id must not change while anything uses it and must
// not be reused while anything still could:
//
//   task:    serving --(left the config)--> removed --(removed_task_grace ran out)--> ended
//            --(its connections are gone, then one RCU grace period)--> its id is free
//   service: present --(left the config)--> gone --(no task of it holds an id)--> id free
//
// A removed task that comes back within its grace keeps its id, and its connections go on; one
// that comes back after it ended is a new task with a new id. Ids are taken lowest first.
// A value type: a change works on a copy that is kept only if the whole change succeeds.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/config/task_key.h"

namespace meshgate
{

enum class task_phase : uint8_t {
    serving, // in the config
    removed, // out of it; its connections go on until `ends_at`
};

struct task_record {
    uint16_t id = 0;
    task_phase phase = task_phase::serving;
    config::task spec;  // as last configured: a removed task is compiled from it
    config::node node;  // its node as last configured: a removed task may outlive it
    double ends_at = 0; // removed: when its grace runs out (seconds of the control clock)
    uint64_t taken = 0; // the config generation that took the id: its metrics start there
};

struct service_record {
    uint16_t id = 0;
    bool present = true; // in the config; a gone service keeps its id while its tasks hold ids
    uint64_t taken = 0;
};

// Ids 0..capacity-1, the lowest free one first.
class id_pool
{
  public:
    explicit id_pool(uint32_t capacity) : used_(capacity, false) {}
    std::optional<uint16_t> take();
    void give_back(uint16_t id) { used_.at(id) = false; }
    uint32_t in_use() const;
    uint32_t capacity() const { return static_cast<uint32_t>(used_.size()); }

  private:
    std::vector<bool> used_;
};

class identities
{
  public:
    identities();

    // Follows a new configuration: ids for new services and tasks; tasks that left it are
    // removed until NOW + GRACE (seconds of the control clock; 0 ends them at once). False with
    // ERROR, and this object half-changed (work on a copy), when ids run out.
    bool follow(const config::gateway_config &next, uint64_t generation, double now, double grace,
                std::string &error);

    // Removed tasks whose grace has run out at NOW end. Returns how many.
    size_t end_expired(double now);

    // Everything ended so far is absent in a snapshot the workers now see.
    void mark_published();

    // Ended tasks that no connection names any more (ACTIVE(id) == 0) give their ids back once
    // SYNCHRONIZE has waited out a grace period of the workers (a worker may still hold one of
    // their connections it found just before it went); then gone services without tasks give
    // theirs. Only tasks ended in a published snapshot qualify. Returns how many task ids.
    size_t release(const std::function<uint32_t(uint16_t)> &active,
                   const std::function<void()> &synchronize);

    const std::map<task_key, task_record> &tasks() const { return tasks_; }
    const std::map<std::string, service_record> &services() const { return services_; }
    const task_record *task(const task_key &k) const;
    const service_record *service(const std::string &name) const;
    // Ids of ended tasks that still wait for their connections to go.
    std::vector<uint16_t> ending() const;

    // When the soonest removed task ends, if one is removed.
    std::optional<double> next_end() const;

  private:
    struct ended_task {
        task_key key;
        bool published = false;
    };

    std::map<task_key, task_record> tasks_;
    std::map<uint16_t, ended_task> ended_; // by id
    std::map<std::string, service_record> services_;
    id_pool task_ids_;
    id_pool service_ids_;
};

} // namespace meshgate
