#include "control/config/memory.h"

#include <algorithm>
#include <bit>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "dataplane/conntrack.h"
#include "dataplane/vxlan.h"
#include "dataplane/worker.h"

namespace meshgate
{

namespace
{

// A pool of N objects of ELEMENT bytes laid in pages of PAGE bytes that objects do not cross
// (IOVA as PA, what this machine's EAL selects), plus the pool's header, lcore caches and ring.
// Computed here rather than by rte_mempool_calc_obj_size(), which needs EAL (--check has none):
// an object is its header line, the element in whole cache lines, and one line of the padding
// that spreads objects over memory channels.
uint64_t pool_bytes(uint32_t n, uint32_t element, uint64_t page)
{
    const uint64_t line = RTE_CACHE_LINE_SIZE;
    const uint64_t object = line + (element + line - 1) / line * line + line;
    const uint64_t per_page = std::max<uint64_t>(page / object, 1);
    const uint64_t pages = (n + per_page - 1) / per_page;
    const uint64_t ring = std::bit_ceil(uint64_t{n} + 1) * sizeof(void *);
    const uint64_t total =
        pages * page + ring + RTE_MAX_LCORE * (packet_pool_cache * 3 + 16) * sizeof(void *);
    return total + total / 100 + 256 * 1024; // memzone and chunk headers, measured under 0.1%
}

} // namespace

uint16_t worker_count(const config::gateway_config &c)
{
    return static_cast<uint16_t>(std::max<size_t>(c.dpdk.lcore_ids.size(), 2) - 1);
}

uint32_t packet_pool_size(const config::gateway_config &c)
{
    return c.dpdk.mbufs.value_or(packet_pool_minimum(c));
}

uint32_t packet_pool_minimum(const config::gateway_config &c)
{
    const uint64_t ports = c.ports.size();
    const uint64_t queues = worker_count(c);
    const uint64_t kernels = static_cast<uint64_t>(
        std::count_if(c.ports.begin(), c.ports.end(),
                      [](const config::port &p) { return !p.kernel_interface.empty(); }));
    const uint64_t wanted =
        ports * queues * (uint64_t{c.dpdk.rx_descriptors} + c.dpdk.tx_descriptors) +
        kernels * queues * (kernel_interface_descriptors + dataplane::burst_size) +
        queues * (ports * dataplane::burst_size + dataplane::pending_queue::capacity +
                  dataplane::cookie_hold_queue::capacity + 64 + dataplane::reassembly_mbufs +
                  packet_pool_cache) +
        4096;
    // A mempool is most memory-efficient at 2^n - 1 objects.
    uint64_t count = 1;
    while (count - 1 < wanted)
        count <<= 1;
    return static_cast<uint32_t>(count - 1);
}

uint16_t packet_data_room(const config::gateway_config &c)
{
    uint32_t mtu = 0;
    for (const config::port &p : c.ports)
        mtu = std::max<uint32_t>(mtu, p.mtu);
    const uint32_t frame = mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN + 2 * RTE_VLAN_HLEN +
                           dataplane::vxlan_outer_len;
    return static_cast<uint16_t>(
        std::max<uint32_t>(RTE_MBUF_DEFAULT_BUF_SIZE, frame + RTE_PKTMBUF_HEADROOM));
}

uint64_t dpdk_memory_needed(const config::gateway_config &c)
{
    // --no-huge backs EAL memory with 4 KiB pages; hugepages are 2 MiB at least.
    const uint64_t page = c.dpdk.no_huge ? 4096 : 2u << 20;
    const uint64_t mbuf = sizeof(rte_mbuf);
    dataplane::conntrack_params p;
    p.capacity = c.limits.connections;
    p.n_workers = worker_count(c);
    return dpdk_base_bytes + dataplane::connection_table::memory_needed(p) +
           pool_bytes(packet_pool_size(c), static_cast<uint32_t>(mbuf + packet_data_room(c)),
                      page) +
           pool_bytes(indirect_pool_size, static_cast<uint32_t>(mbuf), page);
}

} // namespace meshgate
