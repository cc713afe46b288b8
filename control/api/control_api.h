// The one way the running gateway's configuration changes, in the spirit of VPP's lb.h: SIGHUP,
// the file watcher, the control CLI and telemetry, and the swarm sync are thin layers that
// decode their input and call these functions.
//
// Every call builds the whole next configuration, checks it with the validation `--check` runs,
// refuses keys that need a restart, gives stable ids to what is new, compiles the tables (the
// schedulers that changed in parallel), applies the live settings and publishes the tables with
// one pointer swap; or it returns the errors with their locations and changes nothing at all.
// A connection keeps its task across every change that keeps that task. Nothing throws.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "control/api/identities.h"
#include "control/api/tables_build.h"
#include "control/config/config.h"
#include "control/config/diff.h"
#include "control/runtime/data_path.h"
#include "control/runtime/ports.h"
#include "dataplane/tables.h"

namespace meshgate
{

struct apply_result {
    bool ok = false;
    change_set changes;
    std::vector<config::config_error> errors;
    uint64_t generation = 0; // of the configuration running after the call
    double compile_ms = 0;   // ids and tables
    double swap_ms = 0;      // live settings, publish, and the wait for the workers
};

// What the API needs of the running gateway. Plain functions, so tests can run it without DPDK.
struct gateway_runtime {
    std::vector<opened_port> ports;
    // Makes TABLES the workers' snapshot and returns once no worker uses the previous one.
    std::function<void(const dataplane::dataplane_tables *tables)> publish;
    // Waits until every worker has passed a quiescent point.
    std::function<void()> synchronize;
    // Live connections of a task id.
    std::function<uint32_t(uint16_t task)> active;
    // Live settings (MTU, the stats listener, log level, static neighbors): `prepare`
    // does what can fail and undoes it itself on failure; then either `commit` or `abort`.
    // OLD is null for the first configuration.
    std::function<std::vector<config::config_error>(const config::gateway_config *old,
                                                    const config::gateway_config &next)>
        prepare_settings;
    std::function<void(const config::gateway_config *old, const config::gateway_config &next)>
        commit_settings;
    std::function<void()> abort_settings;
    // Ids given to new holders (tasks, services) by the next snapshot, before it is published:
    // what their previous holders counted is not theirs.
    std::function<void(std::span<const uint16_t> tasks, std::span<const uint16_t> services)>
        reset_counters;
    // Seconds of a steady clock.
    std::function<double()> clock;
};

// What DATA_PATH answers of gateway_runtime, the same for meshgate and the tests' fixture:
// PORTS, publish (with the snapshot's timeouts), synchronize, active, and the live setting of the
// data path (static neighbors) that the gateway's own settings are added to. The clock is the
// caller's.
gateway_runtime data_path_runtime(data_path &dp, std::vector<opened_port> ports);

class control_api
{
  public:
    explicit control_api(gateway_runtime runtime, compile_options options = {});
    control_api(const control_api &) = delete;
    control_api &operator=(const control_api &) = delete;

    // The first configuration (nothing to compare against for restart-only keys).
    apply_result start(config::gateway_config initial);
    // A whole new configuration in place of the running one. The calls below each build one
    // from the running configuration and the object they change, and apply it here.
    apply_result apply(config::gateway_config next);

    apply_result upsert_service(config::service s);
    apply_result remove_service(const std::string &name);
    apply_result upsert_task(const std::string &service, config::task t);
    apply_result remove_task(const std::string &service, ipv4_address address);
    apply_result set_task_weight(const std::string &service, ipv4_address address, uint32_t weight);
    apply_result upsert_node(config::node n);
    apply_result remove_node(const std::string &name);

    // The cluster took over the addresses of ADOPTED (dead peers), or gave some back: a new
    // snapshot of the same configuration with them. Never throws; false if nothing changed.
    bool adopt(std::vector<dataplane::adopted_gateway> adopted);
    // While this gateway joins its cluster, ARP for PORT's address is answered only for PEERS
    // (network order); an empty list ends that.
    bool set_joining(std::vector<uint32_t> peers, uint16_t port);

    // Often (the control loop): ends removed tasks whose grace ran out, in a new snapshot, and
    // gives back the ids nothing names any more. True if it published.
    bool tick();

    bool started() const { return tables_ != nullptr; }
    const config::gateway_config &config() const { return config_; }
    const identities &ids() const { return ids_; }
    uint64_t generation() const { return generation_; }
    const dataplane::dataplane_tables *tables() const { return tables_.get(); }

  private:
    apply_result commit(config::gateway_config next, bool first);
    apply_result refuse(std::string message) const; // an error of an API call, nothing changed
    // A copy of the running tables changed by CHANGE, published; WHAT names it in the log.
    bool republish(const char *what,
                   const std::function<void(dataplane::dataplane_tables &)> &change);
    void release_ids();
    // The ids IDS gave out in GENERATION start their counts again (runtime_.reset_counters).
    void reset_new_holders(const identities &ids, uint64_t generation);

    gateway_runtime runtime_;
    compile_options options_;
    config::gateway_config config_;
    identities ids_;
    uint64_t generation_ = 0;
    uint64_t sweep_epoch_ = 0;
    std::unique_ptr<dataplane::dataplane_tables> tables_;
};

} // namespace meshgate
