#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_prefetch.h>

#include "dataplane/ipv4.h"
#include "dataplane/kernel_path.h"
#include "dataplane/local.h"
#include "dataplane/mesh.h"
#include "dataplane/output.h"
#include "dataplane/pipeline.h"

namespace meshgate::dataplane
{

namespace
{

// Classify, IPv4 to a gateway address on PORT: what the gateway answers itself, a tunnel
// packet from a node, a client's packet to a published port, or the host's (its kernel).
void classify_ipv4(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                   packet_state &s)
{
    auto *ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr *, sizeof(rte_ether_hdr));
    if (!valid_ipv4(m, ip)) {
        s.v = drop_as(drop_reason::malformed);
        return;
    }
    const uint16_t local = t.local_addresses.find(ip->dst_addr);
    if (local == address_map::none) {
        s.v = drop_as(drop_reason::not_local);
    } else if (rte_ipv4_frag_pkt_is_fragmented(ip)) {
        s.v = host_takes(w, t, port, ip->dst_addr) ? to_kernel(w, t, port, false)
                                                   : drop_as(drop_reason::fragment);
    } else if (ip->next_proto_id == IPPROTO_ICMP) {
        s.stage = mesh_stage::client_icmp;
        s.ip = ip;
    } else if (ip->next_proto_id == IPPROTO_UDP && t.ports[port].underlay && local == port &&
               rte_be_to_cpu_16(ip->total_length) >= rte_ipv4_hdr_len(ip) + sizeof(rte_udp_hdr) &&
               reinterpret_cast<const rte_udp_hdr *>(reinterpret_cast<const uint8_t *>(ip) +
                                                     rte_ipv4_hdr_len(ip))
                       ->dst_port == t.vxlan_port) {
        classify_underlay(w, t, port, m, ip, s);
    } else if (ip->next_proto_id == IPPROTO_UDP || ip->next_proto_id == IPPROTO_TCP) {
        classify_published(w, t, port, ip, s);
    } else {
        s.v = host_takes(w, t, port, ip->dst_addr) ? to_kernel(w, t, port, false)
                                                   : drop_as(drop_reason::unsupported_protocol);
    }
}

void classify(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m, packet_state &s)
{
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr)) {
        s.v = drop_as(drop_reason::malformed);
        return;
    }
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    // Ports may be promiscuous (af_packet, tap): keep only what is sent to us or to a group.
    if (!rte_is_multicast_ether_addr(&eth->dst_addr) &&
        !rte_is_same_ether_addr(&eth->dst_addr, &t.ports[port].mac))
        s.v = drop_as(drop_reason::not_local);
    else if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4))
        classify_ipv4(w, t, port, m, s);
    else if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP))
        s.v = arp_input(w, t, port, m);
    else
        s.v = drop_as(drop_reason::ethertype);
}

// Takes idle connections out, a bounded number per call, and gives back their task's slot.
void expire_connections(worker &w)
{
    uint32_t n =
        w.shared->connections->expire(static_cast<uint8_t>(w.id), w.now,
                                      static_cast<uint32_t>(w.expired.size()), w.expired.data());
    for (uint32_t i = 0; i < n; ++i) {
        w.counters.count(event::connections_expired_under_pressure, w.expired[i].under_pressure);
        release_task(w, w.expired[i]);
    }
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
        return t.tasks[c.task].state == task_state::absent || connections.past_timeout(c, now);
    };
    const uint32_t n =
        connections.sweep(static_cast<uint8_t>(w.id), w.sweep.cursor, sweep_budget, ended,
                          w.expired.data(), static_cast<uint32_t>(w.expired.size()));
    for (uint32_t i = 0; i < n; ++i)
        release_task(w, w.expired[i]);
    w.sweep.running = w.sweep.cursor != 0;
}

// What process_burst() does once the packets are counted in, and what a held one goes through.
void handle_burst(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf **packets,
                  uint16_t count)
{
    // Classify every packet: most get their key and hash, the rest their verdict.
    w.last_hop = {}; // what housekeeping sent since the last burst may have set it
    packet_state s[burst_size];
    for (uint16_t i = 0; i < count; ++i) {
        classify(w, t, port, packets[i], s[i]);
        if (s[i].reassembled != nullptr) packets[i] = s[i].reassembled; // a fragment held instead
    }

    // One bulk lookup of every key (it reads the slots of the hits: the stages find them cached).
    const flow_key *keys[burst_size];
    flow_key_hash hashes[burst_size];
    direction dirs[burst_size];
    conn_ref refs[burst_size];
    uint16_t of[burst_size]; // lookup i -> packet
    uint16_t n = 0;
    for (uint16_t i = 0; i < count; ++i)
        if (s[i].stage == mesh_stage::forward || s[i].stage == mesh_stage::reverse) {
            keys[n] = &s[i].key;
            hashes[n] = s[i].hash;
            dirs[n] = s[i].stage == mesh_stage::forward ? direction::forward : direction::reverse;
            of[n++] = i;
        }
    const connection_table &connections = *w.shared->connections;
    if (n != 0) connections.lookup_bulk(static_cast<uint8_t>(w.id), dirs, keys, hashes, n, refs);
    for (uint16_t k = 0; k < n; ++k)
        s[of[k]].ref = refs[k];

    // The mesh stages in packet order, then every verdict from one place.
    w.burst_created = 0;
    w.snat_probes_left = snat_probes_per_burst;
    for (uint16_t i = 0; i < count; ++i) {
        packet_state &p = s[i];
        switch (p.stage) {
        case mesh_stage::none:
            break;
        case mesh_stage::forward:
            p.v = forward_stage(w, t, port, packets[i], p);
            break;
        case mesh_stage::reverse:
            p.v = reverse_stage(w, t, packets[i], p);
            break;
        case mesh_stage::client_icmp:
            p.v = client_icmp_stage(w, t, port, packets[i], p);
            break;
        case mesh_stage::tunnel_icmp:
            p.v = tunnel_icmp_stage(w, t, packets[i], p);
            break;
        }
    }
    for (uint16_t i = 0; i < count; ++i)
        deliver(w, t, packets[i], s[i].v);
    w.last_hop = {};
    free_dropped_fragments(w);
}

// Client segments held for their cookie's connection (hold_for_task()): handled again once the
// task answered, freed when the connection went or after 1-2 s (the client sends them again).
void release_cookie_holds(worker &w, const dataplane_tables &t)
{
    cookie_hold_queue &q = w.cookie_holds;
    const connection_table &connections = *w.shared->connections;
    for (uint16_t i = 0; i < q.count;) {
        cookie_hold h = q.holds[i];
        const connection &c = connections.at(h.index);
        const bool same = c.live.load(std::memory_order_relaxed) != 0 && c.forward == h.forward;
        const uint8_t cookie =
            same ? c.cookie.load(std::memory_order_acquire) : uint8_t(cookie_state::none);
        if (same && cookie != uint8_t(cookie_state::open) &&
            static_cast<int32_t>(w.now - h.expires) < 0) {
            ++i;
            continue;
        }
        q.holds[i] = q.holds[--q.count];
        if (same && cookie == uint8_t(cookie_state::open))
            handle_burst(w, t, h.port, &h.segment, 1);
        else
            rte_pktmbuf_free(h.segment);
    }
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
    handle_burst(w, t, port, packets, count);
}

void housekeeping(worker &w, const dataplane_tables &t, uint64_t tsc)
{
    kernel_poll(w, t, tsc);
    flush_and_service(w, t, tsc);
    w.now = static_cast<uint32_t>((tsc - w.shared->start_tsc) / w.tsc_hz);
    expire_connections(w);
    sweep_connections(w, t);
    resend_cookie_syns(w, t);
    release_cookie_holds(w, t);
    if (w.sync_installs != nullptr) sync_apply(w);
    if (w.reassembly != nullptr) { // incomplete datagrams give their mbufs back in time
        rte_ip_frag_table_del_expired_entries(w.reassembly, &w.death_row, tsc);
        free_dropped_fragments(w);
    }
}

int worker_main(void *arg)
{
    worker &w = *static_cast<worker *>(arg);
    gateway_shared &shared = *w.shared;
    rte_rcu_qsbr_thread_register(shared.qsbr, w.id);
    rte_rcu_qsbr_thread_online(shared.qsbr, w.id);

    const uint64_t drain_interval = w.tsc_hz / 10000; // 100 us, as l3fwd's BURST_TX_DRAIN_US
    uint64_t last_drain = rte_rdtsc();
    w.tsc = last_drain;
    rte_mbuf *packets[burst_size];

    while (!shared.stop.load(std::memory_order_relaxed)) {
        const dataplane_tables &t = *shared.tables.load(std::memory_order_acquire);
        for (uint16_t i = 0; i < w.rx_count; ++i) {
            const rx_queue q = w.rx[i];
            uint16_t n = rte_eth_rx_burst(w.port_ids[q.port], q.queue, packets, burst_size);
            if (n != 0) process_burst(w, t, q.port, packets, n);
        }
        uint64_t now = rte_rdtsc();
        w.tsc = now;
        if (now - last_drain > drain_interval) {
            housekeeping(w, t, now);
            last_drain = now;
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
