#include "dataplane/sync.h"

#include "dataplane/mesh.h"

namespace meshgate::dataplane
{

// Installs per housekeeping pass (100 us): a bulk sync of 1M connections in ~4 s per worker.
constexpr uint32_t installs_per_pass = 256;

void sync_apply(worker &w)
{
    constexpr uint32_t batch = 32;
    synced_connection told[batch];
    connection_table &connections = *w.shared->connections;
    const auto owner = static_cast<uint8_t>(w.id);
    for (uint32_t done = 0; done < installs_per_pass;) {
        const uint32_t n =
            rte_ring_sc_dequeue_burst_elem(w.sync_installs, told, sizeof told[0], batch, nullptr);
        for (uint32_t i = 0; i < n; ++i) {
            removed_connection gone{};
            gone.index = connection_table::no_index; // install() fills it when it removes
            switch (connections.install(owner, told[i], w.now, &gone)) {
            case install_status::installed:
                w.shared->task_active[told[i].task].fetch_add(1, std::memory_order_relaxed);
                w.counters.count(event::synced_connections_installed);
                break;
            case install_status::refreshed:
                w.counters.count(event::synced_connections_refreshed);
                break;
            case install_status::replaced:
                release_task(w, gone);
                w.shared->task_active[told[i].task].fetch_add(1, std::memory_order_relaxed);
                w.counters.count(event::synced_connections_replaced);
                break;
            case install_status::removed:
                if (gone.index != connection_table::no_index) release_task(w, gone);
                break;
            case install_status::refused: // having given the old one's place, found no room
                if (gone.index != connection_table::no_index) release_task(w, gone);
                w.counters.count(event::synced_connections_refused);
                break;
            }
        }
        if (n < batch) return;
        done += n;
    }
}

} // namespace meshgate::dataplane
