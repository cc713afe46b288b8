// What readers of the statistics (the Prometheus endpoint, DPDK telemetry, meshgatectl) need to
// put names on the workers' counters: ports, services and tasks by name and address with their
// ids. The control thread builds a new immutable view after every change and swaps it in; the
// readers' threads take the current one and read the counters, which the workers keep writing.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "control/api/control_api.h"
#include "control/cluster/group.h"
#include "control/runtime/ports.h"
#include "control/swarm/sync.h"
#include "dataplane/conntrack.h"
#include "dataplane/counters.h"

namespace meshgate
{

struct port_view {
    std::string name, device, role, mac;
    std::string kernel_interface; // "" = none
    uint16_t port_id = 0;         // DPDK's: its link state is read when exported
};

struct task_view {
    uint16_t id = 0;
    std::string service;
    ipv4_address address;
    std::string node;
    uint32_t weight = 0;
    std::string state; // serving, draining (weight 0), removed (in its grace)
    config::origin from = config::origin::file;
};

struct service_view {
    uint16_t id = 0;
    std::string name;
    std::string scheduler;
    uint32_t persistence_timeout = 0;
    std::string proxy_protocol;     // "off", "v1", "v2"
    std::vector<std::string> ports; // "tcp 8000 -> 8000", with " on ADDRESS" when bound
    config::origin from = config::origin::file;
    std::vector<size_t> tasks; // indices into gateway_view::tasks, serving ones in config order
};

struct gateway_view {
    uint64_t generation = 0;
    std::string file;
    std::vector<port_view> ports;
    std::vector<service_view> services;
    std::vector<task_view> tasks; // serving, then removed
};

// Where the live numbers are: set up at start, valid until the workers stop.
struct counter_sources {
    std::vector<const dataplane::worker_counters *> workers;
    const std::atomic<uint32_t> *task_active = nullptr; // by task id
    const dataplane::connection_table *connections = nullptr;
    const dataplane::neighbor_table *neighbors = nullptr;
    std::vector<std::pair<int, const rte_mempool *>> packet_pools; // by NUMA socket
    uint64_t start_tsc = 0; // second 0 of the connections' clock
    uint64_t tsc_hz = 1;

    uint32_t now() const; // the workers' clock: seconds since start_tsc
};

// What a task did over the last second (ipvsadm --rate): connections, packets, bytes per second.
struct task_rate {
    double connections = 0, packets_in = 0, packets_out = 0, bytes_in = 0, bytes_out = 0;
};

// The workers' counters added up.
struct gateway_totals {
    std::vector<dataplane::port_counters> ports;
    std::array<uint64_t, dataplane::drop_reason_count> drops{};
    std::array<uint64_t, dataplane::event_count> events{};
};
gateway_totals sum_totals(const counter_sources &c, size_t port_count);
dataplane::task_counters sum_task(const counter_sources &c, uint16_t id);
uint64_t sum_service_connections(const counter_sources &c, uint16_t id);

// Connections per task id by class (ipvsadm: active = ESTABLISHED, inactive = the others): one
// walk over the whole table.
struct task_states {
    std::vector<uint32_t> active, inactive;
    uint64_t total_active() const;
};
task_states scan_states(const dataplane::connection_table &t);

// The view of what API runs now. The counters of an id are its holder's alone: the data path
// sets them back to 0 when the id changes hands (gateway_runtime::reset_counters).
std::shared_ptr<const gateway_view> build_view(const control_api &api,
                                               const std::vector<opened_port> &ports);

// What each task did over the last DT seconds (by task id), from the samples SAMPLES took DT
// seconds ago, which it replaces with today's. A task not sampled then, or whose id was taken
// since (a task that ended and came back), counts from 0.
struct rate_sample {
    uint64_t taken = 0; // the generation that gave the task its id
    dataplane::task_counters counters;
};
using rate_samples = std::map<task_key, rate_sample>;
std::vector<task_rate> task_rates(const identities &ids, const counter_sources &counters, double dt,
                                  rate_samples &samples);

// Reload outcomes, for metrics and the CLI.
struct reload_status {
    uint64_t ok = 0, error = 0;
    std::string last_result = "none"; // ok | error | none
    std::string last_changes;         // change_set::summary() of the last good one
    std::vector<std::string> last_errors;
    double last_at = 0; // seconds since the epoch
};

// A routed service address and whether the host's BGP daemon is given it (control/kernel/).
struct address_status {
    std::string address;
    bool wanted = false;    // served and the gateway is not draining
    bool announced = false; // on the external kernel interfaces
    std::string error;      // what the kernel refused, while it lasts
};

// meshgatectl drain: the addresses withdrawn, the connections that still arrive served.
struct drain_status {
    bool draining = false;
    bool ended = false;        // no TCP connection is established any more, or the deadline passed
    double deadline_left = -1; // seconds until the deadline; -1: none
    bool stop = false;         // the gateway stops when it ends
    uint64_t established = 0;  // ESTABLISHED TCP connections at the last look
    uint64_t left = 0;         // those still there when it ended
    bool carried = false;      // in a group: the peers had every one of them (synced) then
    std::vector<address_status> addresses;
};

// The current view, the reload status and the counters, shared by the readers' threads.
class stats_state
{
  public:
    void set_view(std::shared_ptr<const gateway_view> v);
    std::shared_ptr<const gateway_view> view() const;
    void set_reload(reload_status r);
    reload_status reload() const;
    // By task id; the control thread updates them every second.
    void set_rates(std::vector<task_rate> r);
    std::vector<task_rate> rates() const;
    // While [swarm] is set.
    void set_swarm(std::optional<swarm_status> s);
    std::optional<swarm_status> swarm() const;
    void set_drain(drain_status d);
    drain_status drain() const;
    // While [cluster] is set.
    void set_cluster(cluster::group_status c);
    std::optional<cluster::group_status> cluster() const;

    counter_sources counters; // set once before any reader starts

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const gateway_view> view_;
    reload_status reload_;
    std::vector<task_rate> rates_;
    std::optional<swarm_status> swarm_;
    drain_status drain_;
    std::optional<cluster::group_status> cluster_;
};

} // namespace meshgate
