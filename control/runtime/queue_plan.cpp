#include "control/runtime/queue_plan.h"

#include <algorithm>

namespace meshgate
{

queue_plan plan_queues(std::span<const int> port_sockets, std::span<const int> worker_sockets)
{
    const auto workers = static_cast<uint16_t>(worker_sockets.size());
    queue_plan plan;
    plan.rx_workers.resize(port_sockets.size());
    plan.crosses_sockets.assign(workers, false);
    std::vector<bool> polls(workers, false);
    for (size_t p = 0; p < port_sockets.size(); ++p) {
        for (uint16_t w = 0; w < workers; ++w)
            if (worker_sockets[w] == port_sockets[p]) plan.rx_workers[p].push_back(w);
        if (plan.rx_workers[p].empty())
            for (uint16_t w = 0; w < workers; ++w)
                plan.rx_workers[p].push_back(w);
        for (uint16_t w : plan.rx_workers[p])
            polls[w] = true;
        if (std::find(plan.pool_sockets.begin(), plan.pool_sockets.end(), port_sockets[p]) ==
            plan.pool_sockets.end())
            plan.pool_sockets.push_back(port_sockets[p]);
    }
    for (uint16_t w = 0; w < workers; ++w)
        if (!polls[w])
            for (std::vector<uint16_t> &rx : plan.rx_workers)
                rx.push_back(w);
    for (size_t p = 0; p < port_sockets.size(); ++p)
        for (uint16_t w : plan.rx_workers[p])
            if (worker_sockets[w] != port_sockets[p]) plan.crosses_sockets[w] = true;
    return plan;
}

} // namespace meshgate
