#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_prefetch.h>

#include "dataplane/ipv4.h"
#include "dataplane/local.h"
#include "dataplane/mesh.h"
#include "dataplane/output.h"

namespace meshgate::dataplane
{

namespace
{

void ipv4_input(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m)
{
    auto *ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr *, sizeof(rte_ether_hdr));
    if (!valid_ipv4(m, ip)) return drop(w, m, drop_reason::malformed);
    if (!t.is_port_address(ip->dst_addr)) return drop(w, m, drop_reason::not_local);
    if (rte_ipv4_frag_pkt_is_fragmented(ip)) return drop(w, m, drop_reason::fragment);
    switch (ip->next_proto_id) {
    case IPPROTO_ICMP:
        if (client_icmp_error(w, t, m, ip)) return;
        return icmp_input(w, t, port, m, ip);
    case IPPROTO_UDP:
        if (t.ports[port].underlay && ip->dst_addr == t.ports[port].address &&
            rte_be_to_cpu_16(ip->total_length) >= rte_ipv4_hdr_len(ip) + sizeof(rte_udp_hdr) &&
            reinterpret_cast<const rte_udp_hdr *>(reinterpret_cast<const uint8_t *>(ip) +
                                                  rte_ipv4_hdr_len(ip))
                    ->dst_port == t.vxlan_port)
            return underlay_input(w, t, port, m, ip);
        return published_input(w, t, port, m, ip);
    case IPPROTO_TCP:
        return published_input(w, t, port, m, ip);
    default:
        return drop(w, m, drop_reason::unsupported_protocol);
    }
}

void ethernet_input(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m)
{
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr)) return drop(w, m, drop_reason::malformed);
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    // Ports may be promiscuous (af_packet, tap): keep only what is sent to us or to a group.
    if (!rte_is_multicast_ether_addr(&eth->dst_addr) &&
        !rte_is_same_ether_addr(&eth->dst_addr, &t.ports[port].mac))
        return drop(w, m, drop_reason::not_local);
    switch (eth->ether_type) {
    case RTE_BE16(RTE_ETHER_TYPE_IPV4):
        return ipv4_input(w, t, port, m);
    case RTE_BE16(RTE_ETHER_TYPE_ARP):
        return arp_input(w, t, port, m);
    default:
        return drop(w, m, drop_reason::ethertype);
    }
}

// Takes idle connections out, a bounded number per call, and gives back their task's slot.
void expire_connections(worker &w)
{
    uint32_t n =
        w.shared->connections->expire(static_cast<uint8_t>(w.id), w.now,
                                      static_cast<uint32_t>(w.expired.size()), w.expired.data());
    for (uint32_t i = 0; i < n; ++i)
        release_task(w, w.expired[i]);
}

// Slots visited per loop while a sweep runs: 1M slots in ~250 loop passes, a few µs each.
constexpr uint32_t sweep_budget = 4096;

// After a snapshot that ended tasks or shortened timeouts: ends this worker's connections that
// it ended, a bounded walk per call, until the walk has seen every slot once.
void sweep_connections(worker &w, const dataplane_tables &t)
{
    if (t.sweep_epoch != w.sweep.epoch) w.sweep = {t.sweep_epoch, 0, true};
    if (!w.sweep.running) return;
    connection_table &connections = *w.shared->connections;
    const uint32_t now = w.now;
    auto ended = [&](const connection &c) {
        return t.tasks[c.task].state == task_state::absent ||
               now - c.last_seen.load(std::memory_order_relaxed) >= connections.timeout(c);
    };
    const uint32_t n =
        connections.sweep(static_cast<uint8_t>(w.id), w.sweep.cursor, sweep_budget, ended,
                          w.expired.data(), static_cast<uint32_t>(w.expired.size()));
    for (uint32_t i = 0; i < n; ++i)
        release_task(w, w.expired[i]);
    w.sweep.running = w.sweep.cursor != 0;
}

} // namespace

void process_burst(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf **packets,
                   uint16_t count)
{
    port_counters &pc = w.counters.ports[port];
    pc.rx_packets += count;
    for (uint16_t i = 0; i < count; ++i) {
        pc.rx_bytes += rte_pktmbuf_pkt_len(packets[i]);
        rte_prefetch0(rte_pktmbuf_mtod(packets[i], void *));
    }
    for (uint16_t i = 0; i < count; ++i)
        ethernet_input(w, t, port, packets[i]);
}

int worker_main(void *arg)
{
    worker &w = *static_cast<worker *>(arg);
    gateway_shared &shared = *w.shared;
    rte_rcu_qsbr_thread_register(shared.qsbr, w.id);
    rte_rcu_qsbr_thread_online(shared.qsbr, w.id);

    const uint64_t drain_interval = w.tsc_hz / 10000; // 100 us, as l3fwd's BURST_TX_DRAIN_US
    uint64_t last_drain = rte_rdtsc();
    rte_mbuf *packets[burst_size];

    while (!shared.stop.load(std::memory_order_relaxed)) {
        const dataplane_tables &t = *shared.tables.load(std::memory_order_acquire);
        for (uint16_t port = 0; port < w.port_count; ++port) {
            uint16_t n = rte_eth_rx_burst(w.port_ids[port], w.id, packets, burst_size);
            if (n != 0) process_burst(w, t, port, packets, n);
        }
        uint64_t now = rte_rdtsc();
        if (now - last_drain > drain_interval) {
            flush_and_service(w, t, now);
            last_drain = now;
            w.now = static_cast<uint32_t>((now - shared.start_tsc) / w.tsc_hz);
            expire_connections(w);
            sweep_connections(w, t);
        }
        // Past this point the worker holds no pointer into the tables.
        rte_rcu_qsbr_quiescent(shared.qsbr, w.id);
    }

    release_all(w);
    rte_rcu_qsbr_thread_offline(shared.qsbr, w.id);
    rte_rcu_qsbr_thread_unregister(shared.qsbr, w.id);
    return 0;
}

} // namespace meshgate::dataplane
