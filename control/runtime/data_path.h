// The data path of one gateway: what its workers share (the RCU variable, the neighbor,
// connection and affinity tables, live connections by task, rr/wrr positions, the pool of
// fragments' references) and the workers themselves, each with its RX queues, TX queue ids and
// reassembly table. One constructor builds it for meshgate and for the tests and benchmarks that
// drive process_burst() themselves (tests/support/gateway_fixture.h), from the configuration
// and the ports it opened, so that what they test is what runs.
//
// Threads: the control thread builds it, launches and stops the workers and publishes the
// snapshots; the workers touch only what gateway_shared and their own struct hold.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <rte_memory.h>

#include "control/config/config.h"
#include "control/runtime/ports.h"
#include "control/runtime/queue_plan.h"
#include "dataplane/affinity.h"
#include "dataplane/conntrack.h"
#include "dataplane/neighbor.h"
#include "dataplane/scheduler.h"
#include "dataplane/worker.h"

namespace meshgate
{

// Where a worker runs: its lcore and that lcore's NUMA socket.
struct worker_place {
    unsigned lcore = 0;
    int socket = SOCKET_ID_ANY;
};

// The workers of C as EAL placed them: every [dpdk] lcore but the first, on its socket.
std::vector<worker_place> worker_places(const config::gateway_config &c);

// The connection table C asks for ([limits] connections, [timeouts], [overlay] snat_ports),
// shared by WORKERS owners.
dataplane::conntrack_params connection_params(const config::gateway_config &c, uint16_t workers,
                                              rte_rcu_qsbr *qsbr);

class data_path
{
  public:
    // Workers at PLACES (worker i polls what PLAN gives worker i and sends on TX queue i of
    // every port). Throws std::runtime_error when DPDK memory runs out.
    data_path(const config::gateway_config &c, std::span<const opened_port> ports,
              const queue_plan &plan, const packet_pools &pools,
              std::span<const worker_place> places);
    ~data_path(); // stop(), then everything goes
    data_path(const data_path &) = delete;
    data_path &operator=(const data_path &) = delete;

    // Each worker on its lcore; throws if one cannot be launched (those launched are stopped
    // by stop()). Before it, nothing polls: tests drive the workers themselves.
    void launch();
    // The workers see the stop flag, drop what they hold and return. Idempotent.
    void stop();

    // What the control API asks of the data path (gateway_runtime, control/api/control_api.h):
    // TABLES becomes the workers' snapshot, its timeouts in force before any worker can sweep
    // by them; returns once no worker uses the snapshot before.
    void publish(const dataplane::dataplane_tables *tables);
    // Returns once every online worker has passed a quiescent point.
    void synchronize();
    // Live connections of a task id.
    uint32_t active(uint16_t task) const;
    // TASKS and SERVICES (ids) go to new holders in a snapshot not yet published: no worker
    // counts for them now (their last holders' connections are gone, a grace period passed),
    // so this thread may set their counters back to 0 for the new holders.
    void reset_counters(std::span<const uint16_t> tasks, std::span<const uint16_t> services);

    dataplane::gateway_shared &shared() { return shared_; }
    std::span<dataplane::worker *const> workers() const { return worker_view_; }
    dataplane::connection_table &connections() { return *connections_; }
    const dataplane::connection_table &connections() const { return *connections_; }
    const dataplane::neighbor_table &neighbors() const { return *neighbors_; }
    dataplane::neighbor_table &neighbors() { return *neighbors_; }
    const std::atomic<uint32_t> *task_active() const { return task_active_.get(); }
    uint64_t tsc_hz() const { return tsc_hz_; }

  private:
    // A worker lives in hugepage memory of its lcore's NUMA socket.
    struct worker_free {
        void operator()(dataplane::worker *w) const;
    };
    using worker_ptr = std::unique_ptr<dataplane::worker, worker_free>;
    struct qsbr_free {
        void operator()(rte_rcu_qsbr *q) const;
    };
    struct pool_free {
        void operator()(rte_mempool *p) const;
    };

    // In the order the constructor makes them; members go in reverse.
    uint64_t tsc_hz_;
    std::unique_ptr<rte_rcu_qsbr, qsbr_free> qsbr_;
    std::unique_ptr<dataplane::neighbor_table> neighbors_;
    std::unique_ptr<rte_mempool, pool_free> indirect_pool_;
    std::unique_ptr<dataplane::connection_table> connections_;
    dataplane::affinity_table affinity_;
    std::unique_ptr<std::atomic<uint32_t>[]> task_active_;
    std::unique_ptr<dataplane::scheduler_cursor[]> cursors_;
    dataplane::gateway_shared shared_;
    std::vector<worker_ptr> workers_;
    std::vector<dataplane::worker *> worker_view_;
    size_t launched_ = 0;
};

} // namespace meshgate
