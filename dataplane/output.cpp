#include "dataplane/output.h"

#include <cstring>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>

#include "dataplane/kernel_path.h"

namespace meshgate::dataplane
{

namespace
{

void drop(worker &w, rte_mbuf *m, drop_reason r)
{
    w.counters.drop(r);
    rte_pktmbuf_free(m);
}

// Queues a complete frame for PORT.
void tx_enqueue(worker &w, uint16_t port, rte_mbuf *m)
{
    if (m->nb_segs > 1 && (w.single_segment_ports >> port & 1) != 0 &&
        rte_pktmbuf_linearize(m) != 0)
        return drop(w, m, drop_reason::tx_segments);
    tx_buffer &b = w.tx[port];
    b.packets[b.count++] = m;
    if (b.count == burst_size) tx_flush(w, port);
}

} // namespace

void tx_flush(worker &w, uint16_t port)
{
    tx_buffer &b = w.tx[port];
    if (b.count == 0) return;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < b.count; ++i)
        bytes += rte_pktmbuf_pkt_len(b.packets[i]);
    uint16_t sent = rte_eth_tx_burst(w.port_ids[port], w.id, b.packets.data(), b.count);
    port_counters &pc = w.counters.ports[port];
    for (uint16_t i = sent; i < b.count; ++i) {
        bytes -= rte_pktmbuf_pkt_len(b.packets[i]);
        drop(w, b.packets[i], drop_reason::tx_full);
    }
    pc.tx_packets += sent;
    pc.tx_bytes += bytes;
    b.count = 0;
}

namespace
{

void fill_ethernet(rte_mbuf *m, const rte_ether_addr &src, const rte_ether_addr &dst)
{
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    eth->src_addr = src;
    eth->dst_addr = dst;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
}

// Broadcasts "who has NEXT_HOP" out of PORT.
void send_arp_request(worker &w, const dataplane_tables &t, uint16_t port, rte_be32_t next_hop)
{
    rte_mbuf *m = rte_pktmbuf_alloc(w.pool);
    if (m == nullptr) return; // the waiting packet times out and is counted then
    const gateway_port &p = t.ports[port];
    auto *eth = reinterpret_cast<rte_ether_hdr *>(
        rte_pktmbuf_append(m, sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)));
    std::memset(eth->dst_addr.addr_bytes, 0xff, RTE_ETHER_ADDR_LEN);
    eth->src_addr = p.mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
    auto *arp = reinterpret_cast<rte_arp_hdr *>(eth + 1);
    arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    arp->arp_hlen = RTE_ETHER_ADDR_LEN;
    arp->arp_plen = sizeof(rte_be32_t);
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
    arp->arp_data.arp_sha = p.mac;
    arp->arp_data.arp_sip = p.address;
    std::memset(arp->arp_data.arp_tha.addr_bytes, 0, RTE_ETHER_ADDR_LEN);
    arp->arp_data.arp_tip = next_hop;
    w.counters.count(event::arp_requests_sent);
    tx_enqueue(w, port, m);
}

uint16_t waiting_on(const pending_queue &q, uint16_t port, rte_be32_t next_hop)
{
    uint16_t n = 0;
    for (uint16_t i = 0; i < q.count; ++i)
        n += q.packets[i].port == port && q.packets[i].next_hop == next_hop;
    return n;
}

// Sends an IPv4 packet (M starts with room for its Ethernet header, already in place) out of
// PORT toward DST: fills the Ethernet addresses from the neighbor table, or parks it while ARP
// resolves the next hop.
void send_ipv4(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m, rte_be32_t dst)
{
    rte_be32_t next_hop = t.next_hop(port, dst);
    if (next_hop == 0) return drop(w, m, drop_reason::no_route);

    next_hop_memo &last = w.last_hop;
    if (last.port == port && last.next_hop == next_hop) {
        fill_ethernet(m, t.ports[port].mac, last.mac);
        return tx_enqueue(w, port, m);
    }
    rte_ether_addr mac;
    const neighbor_state known = w.shared->neighbors->lookup(port, next_hop, &mac, w.tsc);
    if (known != neighbor_state::missing) [[likely]] {
        // Not heard from for a while: ask again, still sending to what it was.
        if (known == neighbor_state::stale &&
            w.shared->neighbors->claim_request(port, next_hop, w.tsc, w.arp_interval))
            send_arp_request(w, t, port, next_hop);
        last = {port, next_hop, mac};
        fill_ethernet(m, t.ports[port].mac, mac);
        return tx_enqueue(w, port, m);
    }

    pending_queue &q = w.pending;
    if (q.count == pending_queue::capacity ||
        waiting_on(q, port, next_hop) >= pending_queue::per_next_hop)
        return drop(w, m, drop_reason::no_neighbor);
    uint64_t now = rte_rdtsc();
    q.packets[q.count++] = pending_packet{m, now + w.arp_wait, next_hop, port};
    if (w.shared->neighbors->claim_request(port, next_hop, now, w.arp_interval))
        send_arp_request(w, t, port, next_hop);
}

} // namespace

void deliver(worker &w, const dataplane_tables &t, rte_mbuf *m, const verdict &v)
{
    switch (v.action) {
    case next::drop:
        return drop(w, m, v.reason);
    case next::frame:
        return tx_enqueue(w, v.port, m);
    case next::route:
        return send_ipv4(w, t, v.port, m, v.dst);
    case next::taken:
        return;
    case next::spent:
        rte_pktmbuf_free(m);
        return;
    case next::kernel:
        return kernel_enqueue(w, v.port, m);
    }
}

void flush_and_service(worker &w, const dataplane_tables &t, uint64_t now)
{
    pending_queue &q = w.pending;
    uint16_t kept = 0;
    for (uint16_t i = 0; i < q.count; ++i) {
        pending_packet p = q.packets[i];
        rte_ether_addr mac;
        if (w.shared->neighbors->lookup(p.port, p.next_hop, &mac, now) != neighbor_state::missing) {
            fill_ethernet(p.packet, t.ports[p.port].mac, mac);
            tx_enqueue(w, p.port, p.packet);
        } else if (static_cast<int64_t>(now - p.deadline) > 0) {
            drop(w, p.packet, drop_reason::no_neighbor);
        } else {
            if (w.shared->neighbors->claim_request(p.port, p.next_hop, now, w.arp_interval))
                send_arp_request(w, t, p.port, p.next_hop);
            q.packets[kept++] = p;
        }
    }
    q.count = kept;
    for (uint16_t port = 0; port < w.port_count; ++port)
        tx_flush(w, port);
    kernel_flush(w);
}

void release_all(worker &w)
{
    for (uint16_t port = 0; port < w.port_count; ++port)
        tx_flush(w, port);
    kernel_flush(w);
    for (uint16_t i = 0; i < w.pending.count; ++i)
        drop(w, w.pending.packets[i].packet, drop_reason::no_neighbor);
    w.pending.count = 0;
    if (w.reassembly != nullptr) { // incomplete datagrams: every one is out of time now
        rte_ip_frag_table_del_expired_entries(w.reassembly, &w.death_row, UINT64_MAX);
        free_dropped_fragments(w);
    }
}

void free_dropped_fragments(worker &w)
{
    if (w.death_row.cnt == 0) return;
    w.counters.drop(drop_reason::fragment, w.death_row.cnt);
    rte_ip_frag_free_death_row(&w.death_row, 0);
}

} // namespace meshgate::dataplane
