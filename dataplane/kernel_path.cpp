#include "dataplane/kernel_path.h"

#include <rte_arp.h>

#include <rte_ethdev.h>

#include "dataplane/output.h"

namespace meshgate::dataplane
{

verdict to_kernel(worker &w, const dataplane_tables &t, uint16_t port, bool syn)
{
    const bool admitted = syn ? rate_admit(w.kernel_syn_bucket, t.kernel_syns, w.tsc)
                              : rate_admit(w.kernel_bucket, t.kernel_packets, w.tsc);
    if (!admitted) {
        ++w.counters.ports[port].kernel_rate_drops;
        return drop_as(drop_reason::kernel_rate);
    }
    return to_kernel_interface(port);
}

void copy_to_kernel(worker &w, const dataplane_tables &t, uint16_t port, const rte_mbuf *m)
{
    const verdict v = to_kernel(w, t, port, false);
    if (v.action != next::kernel) return; // counted; the original goes its own way
    rte_mbuf *copy = rte_pktmbuf_copy(m, w.pool, 0, UINT32_MAX);
    if (copy == nullptr) return; // no buffer: the kernel asks again
    kernel_enqueue(w, port, copy);
}

namespace
{

// Hands PORT's kernel buffer to the TAP; what its queue refuses is dropped as kernel_full.
void send_buffer(worker &w, uint16_t port)
{
    tx_buffer &b = w.kernel_tx[port];
    const uint16_t sent =
        rte_eth_tx_burst(w.kernel_port_ids[port], w.id, b.packets.data(), b.count);
    port_counters &pc = w.counters.ports[port];
    pc.to_kernel += sent;
    pc.kernel_full_drops += b.count - sent;
    w.counters.drop(drop_reason::kernel_full, b.count - sent);
    for (uint16_t i = sent; i < b.count; ++i)
        rte_pktmbuf_free(b.packets[i]);
    b.count = 0;
}

} // namespace

void kernel_enqueue(worker &w, uint16_t port, rte_mbuf *m)
{
    tx_buffer &b = w.kernel_tx[port];
    b.packets[b.count++] = m;
    w.kernel_pending |= 1u << port;
    if (b.count == burst_size) send_buffer(w, port);
}

void kernel_flush(worker &w)
{
    for (uint32_t ports = w.kernel_pending; ports != 0; ports &= ports - 1) {
        const auto port = static_cast<uint16_t>(__builtin_ctz(ports));
        if (w.kernel_tx[port].count != 0) send_buffer(w, port);
    }
    w.kernel_pending = 0;
}

// The host's ARP request: while joining its cluster it would tell every node where our
// underlay address is (Linux updates a known sender's entry from a request); the peers' own
// requests teach the host their MACs instead.
bool is_arp_request(const rte_mbuf *m)
{
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) return false;
    const auto *eth = rte_pktmbuf_mtod(m, const rte_ether_hdr *);
    const auto *arp = reinterpret_cast<const rte_arp_hdr *>(eth + 1);
    return eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP) &&
           arp->arp_opcode == RTE_BE16(RTE_ARP_OP_REQUEST);
}

void kernel_poll(worker &w, const dataplane_tables &t, uint64_t tsc)
{
    if (tsc < w.kernel_poll_at) return;
    w.kernel_poll_at = tsc + w.tsc_hz / 1000000 * kernel_poll_interval_us;
    rte_mbuf *frames[burst_size];
    for (uint16_t port = 0; port < w.port_count; ++port) {
        if (!has_kernel(w, port)) continue;
        const uint16_t n = rte_eth_rx_burst(w.kernel_port_ids[port], w.id, frames, burst_size);
        w.counters.ports[port].from_kernel += n;
        for (uint16_t i = 0; i < n; ++i)
            deliver(w, t, frames[i],
                    port == t.joining_port && is_arp_request(frames[i])
                        ? drop_as(drop_reason::joining_arp)
                        : send_frame(port));
    }
}

} // namespace meshgate::dataplane
