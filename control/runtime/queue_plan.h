// Which worker polls which RX queue of which port, and which packet pool each socket gets: the
// NUMA placement of the data path, decided once at start.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace meshgate
{

struct queue_plan {
    // Per port, the workers that poll it, RX queue q going to rx_workers[p][q]. Every worker
    // has a TX queue (its worker id) on every port: any worker may send anywhere.
    std::vector<std::vector<uint16_t>> rx_workers;
    // Per worker, whether it polls a port of another socket (there was no better choice).
    std::vector<bool> crosses_sockets;
    // The distinct sockets of the ports, in port order: one packet pool each.
    std::vector<int> pool_sockets;
};

// Given the NUMA socket of each port and each worker: a port is polled by the workers of its
// socket, or by every worker if none is there; a worker with no port on its socket polls every
// port, so that no lcore idles.
queue_plan plan_queues(std::span<const int> port_sockets, std::span<const int> worker_sockets);

} // namespace meshgate
