// Client -> published port -> task: match, schedule, full NAT, VXLAN to the task's node.
#include <rte_ether.h>
#include <rte_ip_frag.h>

#include "dataplane/local.h"
#include "dataplane/mesh.h"

#include "dataplane/ipv4.h"
#include "dataplane/kernel_path.h"
#include "dataplane/nat_rewrite.h"
#include "dataplane/output.h"
#include "dataplane/proxy_protocol.h"
#include "dataplane/syn_proxy.h"
#include "dataplane/vxlan.h"

namespace meshgate::dataplane
{

namespace
{

// A 9000-byte packet over a 1500-byte underlay needs 7.

// The listener for this destination, honouring services bound to one address.
uint16_t match_listener(const dataplane_tables &t, uint8_t proto, rte_be32_t dst,
                        rte_be16_t dst_port)
{
    uint16_t l = t.first_listener(proto, dst_port);
    while (l != no_listener && t.listeners[l].address != 0 && t.listeners[l].address != dst)
        l = t.listeners[l].next;
    return l;
}

// The task this client address had from the service within persistence_timeout, if it still
// takes new connections (weight > 0: a drained task loses its clients' affinity too).
uint32_t remembered_task(const worker &w, const dataplane_tables &t, const service_scheduler &s,
                         uint16_t service, const flow_key &key)
{
    uint32_t address = w.shared->affinity->lookup(key.src_ip, service, w.now);
    if (address == 0) return no_task;
    for (uint32_t i = 0; i < s.task_count; ++i)
        if (t.tasks[s.keys[i]].address == address && s.weights[i] > 0) return s.keys[i];
    return no_task;
}

// A new connection for the client's first packet (in on PORT): pick a task and a SNAT port.
// Returns the connection index, or connection_table::no_index after counting the drop.
uint32_t open_connection(worker &w, const dataplane_tables &t, uint16_t port, const listener &l,
                         const flow_key &key, flow_key_hash hash, drop_reason &why)
{
    const service_entry &s = t.services[l.service];
    // The limits first: a refused flood costs a compare, not a pick and a SNAT search.
    if (!rate_admit(w.service_buckets[l.service], s.new_connections, w.tsc)) {
        why = drop_reason::service_rate;
        return connection_table::no_index;
    }
    if (t.new_connections_per_source.limited() &&
        !rate_admit(
            w.source_buckets[rte_hash_crc_4byte(key.src_ip, 0) % worker::source_bucket_count],
            t.new_connections_per_source, w.tsc)) {
        why = drop_reason::source_rate;
        return connection_table::no_index;
    }
    const service_scheduler &scheduler = *s.scheduler;
    uint32_t task =
        s.persistence_timeout != 0 ? remembered_task(w, t, scheduler, l.service, key) : no_task;
    if (task == no_task)
        task = pick_task(
            scheduler, w.shared->cursors[l.service],
            std::span<const std::atomic<uint32_t>>(w.shared->task_active, task_id_capacity),
            rte_be_to_cpu_32(key.src_ip), rte_be_to_cpu_16(key.src_port));
    if (task == no_task) {
        why = drop_reason::no_backend;
        return connection_table::no_index;
    }
    const task_entry &te = t.tasks[task];
    create_result r = w.shared->connections->create(
        static_cast<uint8_t>(w.id), key, hash, l.service, static_cast<uint16_t>(task), te.address,
        l.target_port, std::span<const uint32_t>(t.snat_addresses), w.now, &w.snat_probes_left,
        static_cast<uint8_t>(port));
    switch (r.status) {
    case create_status::ok:
        w.shared->task_active[task].fetch_add(1, std::memory_order_relaxed);
        if (s.persistence_timeout != 0)
            w.shared->affinity->remember(key.src_ip, l.service, te.address, w.now,
                                         s.persistence_timeout);
        ++w.counters.connections_created[l.service];
        ++w.counters.tasks[task].connections;
        ++w.burst_created;
        return r.index;
    case create_status::exists:
        return r.index;
    case create_status::table_full:
        why = drop_reason::table_full;
        return connection_table::no_index;
    case create_status::snat_exhausted:
        why = drop_reason::snat_exhausted;
        return connection_table::no_index;
    case create_status::probe_budget:
        why = drop_reason::snat_probe_budget;
        return connection_table::no_index;
    }
    why = drop_reason::table_full;
    return connection_table::no_index;
}

// The client reuses the ports of connection INDEX, which is closing: it ends, by its owner's
// hand (at once, or at the owner's next expire() when that is another worker). False when the
// owner's queue of such requests is full.
bool end_reused(worker &w, uint32_t index, const flow_key &key)
{
    connection_table &connections = *w.shared->connections;
    if (connections.at(index).owner != w.id) return connections.request_end(index, key);
    end_connection(w, index);
    return true;
}

template <uint8_t Proto>
void nat_to_task(rte_ipv4_hdr *ip, void *l4, const connection &c)
{
    nat_forward<Proto>(ip, l4,
                       nat_endpoints{c.snat_ip(), c.task_ip(), c.snat_port(), c.target_port()});
}

// IP (from a client on PORT) would leave with TTL 0: time exceeded from the address it was for.
verdict time_exceeded(worker &w, const dataplane_tables &t, uint16_t port, const rte_ipv4_hdr *ip)
{
    if (rte_mbuf *e = build_icmp_error(w, t, ip, ip->dst_addr, icmp_type_time_exceeded,
                                       icmp_code_ttl_exceeded, 0))
        deliver(w, t, e, route_to(port, ip->src_addr));
    return drop_as(drop_reason::ttl_exceeded);
}

// Nothing publishes the port (yet): a TCP segment gets the RST a host would send, so that a
// client retries at once when the port appears instead of after its SYN timeout.
verdict unpublished(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                    const packet_state &s)
{
    // The host's ports (BGP, SSH) on a port address: its kernel answers, RST or not.
    if (host_takes(w, t, port, s.key.dst_ip))
        return to_kernel(w, t, port, s.key.proto == IPPROTO_TCP && tcp_flag::opens(s.tcp_flags));
    if (s.key.proto != IPPROTO_TCP || !t.reset_unpublished || (s.tcp_flags & tcp_flag::rst))
        return drop_as(drop_reason::no_service);
    w.counters.drop(drop_reason::no_service); // it goes no further; what leaves is our answer
    if (!rate_admit(w.tcp_reset_bucket, t.tcp_resets, w.tsc)) {
        w.counters.count(event::tcp_resets_rate_limited);
        return spent();
    }
    if (!segment_to_reset(m, s.ip, reinterpret_cast<const rte_tcp_hdr *>(s.l4))) return spent();
    w.counters.count(event::tcp_resets_sent);
    return route_to(port, s.ip->dst_addr);
}

// Can a client's ACK with no connection be the proof of a cookie? Always, with cookies always;
// under pressure, while this worker has answered a SYN with a cookie in a cookie's lifetime
// (the client's SYN and ACK come by one RSS queue): a stray ACK is `no_connection` otherwise,
// as Linux checks cookies only after a recent SYN queue overflow.
bool cookie_may_prove(const worker &w, const dataplane_tables &t)
{
    switch (t.syn_cookies) {
    case syn_cookie_mode::off:
        return false;
    case syn_cookie_mode::under_pressure:
        return w.cookies_sent_at != 0 && w.now + 1 - w.cookies_sent_at < 2 * cookie_period_seconds;
    case syn_cookie_mode::always:
        return true;
    }
    return false;
}

// Does this worker answer a new client's SYN with a cookie rather than a connection?
bool cookie_for_syn(const worker &w, const dataplane_tables &t)
{
    switch (t.syn_cookies) {
    case syn_cookie_mode::off:
        return false;
    case syn_cookie_mode::under_pressure:
        return w.shared->connections->under_pressure(static_cast<uint8_t>(w.id));
    case syn_cookie_mode::always:
        return true;
    }
    return false;
}

// A client's SYN answered with the gateway's SYN-ACK, its ISN a cookie: nothing is kept.
verdict answer_with_cookie(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                           const listener &l, const packet_state &s)
{
    auto *tcp = reinterpret_cast<rte_tcp_hdr *>(s.l4);
    const syn_options client = syn_options_of(tcp);
    const uint32_t cookie =
        syn_cookie_make(t.syn_cookie_secret, s.key, rte_be_to_cpu_32(tcp->sent_seq), w.now, client);
    // What fits one VXLAN packet on a 1500-byte underlay, or the client's link if smaller.
    // Less a PROXY header's length: a segment that must carry the header in front of its data
    // still fits (the same rule as proxy_to_client()'s for the task's SYN-ACK).
    const proxy_protocol proxy = t.services[l.service].proxy;
    const uint32_t header = proxy != proxy_protocol::off ? proxy_header_length(proxy, s.key) : 0;
    const auto our_mss = static_cast<uint16_t>(
        std::min<uint32_t>(syn_cookie_mss.back(),
                           t.ports[port].mtu - sizeof(rte_ipv4_hdr) - sizeof(rte_tcp_hdr)) -
        header);
    if (!syn_to_cookie_syn_ack(m, s.ip, tcp, cookie, client, our_mss))
        return drop_as(drop_reason::malformed);
    w.counters.count(event::syn_cookies_sent);
    w.cookies_sent_at = w.now + 1;
    return route_to(port, s.ip->dst_addr);
}

// Connection INDEX, opened by a cookie now, waits for the task's SYN-ACK: housekeeping sends our
// SYN again if it does not come (resend_cookie_syns()); with the queue full only the client can.
void watch_cookie_syn(worker &w, uint32_t index, const flow_key &forward, uint32_t client_isn,
                      const syn_options &client)
{
    cookie_wait_queue &q = w.cookie_waits;
    if (q.count == q.capacity) {
        w.counters.count(event::cookie_syns_unwatched);
        return;
    }
    q.waits[(q.head + q.count++) % q.capacity] = {
        forward, w.tsc + w.tsc_hz, index, client_isn, client, cookie_wait_queue::syns};
}

// Client segment M of connection INDEX (forward key FORWARD, in on PORT) kept to be handled
// again once the task answered (release_cookie_holds()). False when one is held for it already
// or there is no room: the caller frees it or drops it.
bool hold_segment(worker &w, uint32_t index, const flow_key &forward, rte_mbuf *m, uint16_t port)
{
    cookie_hold_queue &q = w.cookie_holds;
    if (q.count == q.capacity) return false;
    for (uint16_t i = 0; i < q.count; i++)
        if (q.holds[i].index == index) return false;
    q.holds[q.count++] = {m, forward, w.now + cookie_hold_queue::seconds, index, port};
    w.counters.count(event::cookie_segments_held);
    return true;
}

// A client's ACK (or data) with no connection: when its ack proves a cookie, the connection it
// stands for, opened now, and the segment turned into the task's SYN. no_index after counting
// the drop in WHY.
uint32_t open_by_cookie(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                        const listener &l, packet_state &s, drop_reason &why)
{
    auto *tcp = reinterpret_cast<rte_tcp_hdr *>(s.l4);
    const uint32_t client_isn = rte_be_to_cpu_32(tcp->sent_seq) - 1;
    const uint32_t cookie = rte_be_to_cpu_32(tcp->recv_ack) - 1;
    const std::optional<syn_options> client =
        syn_cookie_check(t.syn_cookie_secret, s.key, client_isn, cookie, w.now);
    if (!client) {
        why = drop_reason::bad_cookie;
        return connection_table::no_index;
    }
    const uint32_t index = open_connection(w, t, port, l, s.key, s.hash, why);
    if (index == connection_table::no_index) return index;
    connection &c = w.shared->connections->at(index);
    // Made by a copy of this ACK earlier in the burst (a stale bulk lookup): it waits already.
    if (c.cookie.load(std::memory_order_acquire) != uint8_t(cookie_state::none)) {
        why = drop_reason::cookie_pending;
        return connection_table::no_index;
    }
    // Data in the proving ACK (the client's bare ACK was lost): a copy of the segment waits for
    // the task's answer as a first data segment would, while M becomes our SYN.
    rte_mbuf *data =
        tcp_payload_length(s.ip, tcp) != 0 ? rte_pktmbuf_copy(m, w.pool, 0, UINT32_MAX) : nullptr;
    if (!cookie_ack_to_syn(m, s.ip, tcp, *client)) {
        rte_pktmbuf_free(data);
        end_connection(w, index);
        why = drop_reason::malformed;
        return connection_table::no_index;
    }
    s.tcp_flags = tcp->tcp_flags;
    c.seq_offset = cookie; // until the task's ISN is known
    c.proxy_start = client_isn + 1;
    c.wscales = static_cast<uint8_t>(client->wscale << 4 | no_wscale);
    c.cookie.store(uint8_t(cookie_state::waiting), std::memory_order_release);
    watch_cookie_syn(w, index, s.key, client_isn, *client);
    if (data != nullptr && !hold_segment(w, index, s.key, data, port)) rte_pktmbuf_free(data);
    w.counters.count(event::syn_cookies_accepted);
    return index;
}

// The client's first data segment of connection INDEX (C, opened by a cookie, the task not
// answered yet), kept in M to be handled again once the task answers (release_cookie_holds()).
// False when it is not that segment, one is held already (this is the client's retransmission:
// our SYN was lost), or there is no room.
bool hold_for_task(worker &w, uint32_t index, const connection &c, const packet_state &s,
                   rte_mbuf *m, uint16_t port)
{
    const auto *tcp = reinterpret_cast<const rte_tcp_hdr *>(s.l4);
    if (tcp_payload_length(s.ip, tcp) == 0 || rte_be_to_cpu_32(tcp->sent_seq) != c.proxy_start)
        return false;
    return hold_segment(w, index, s.key, m, port);
}

// A client's SYN at another ISN than connection C's own, which we know when a cookie or a PROXY
// header opened it: a new connection from the same port, the old one gone at the client while
// our state of it lives on (its close unseen: a lost RST, a peer that died before it synced
// the close). As a port reuse: passed to the task, the SYN-ACK would be taken for the old one's.
bool syn_of_new_connection(const connection &c, const packet_state &s)
{
    if ((s.tcp_flags & (tcp_flag::syn | tcp_flag::ack | tcp_flag::rst)) != tcp_flag::syn ||
        s.key.proto != IPPROTO_TCP)
        return false;
    if (c.proxy_len == 0 && c.cookie.load(std::memory_order_relaxed) == uint8_t(cookie_state::none))
        return false;
    const auto *tcp = reinterpret_cast<const rte_tcp_hdr *>(s.l4);
    return rte_be_to_cpu_32(tcp->sent_seq) + 1 != c.proxy_start;
}

// A client segment of connection C, opened by a cookie and still waiting for the task's
// SYN-ACK: our SYN, or that SYN-ACK, was lost. The client, nothing of its acknowledged, sends
// again from its first byte: that segment becomes our SYN again. False for any other (dropped).
bool cookie_syn_again(const connection &c, packet_state &s, rte_mbuf *m)
{
    auto *tcp = reinterpret_cast<rte_tcp_hdr *>(s.l4);
    const uint32_t cookie = c.seq_offset;
    if (c.cookie.load(std::memory_order_acquire) != uint8_t(cookie_state::waiting) ||
        rte_be_to_cpu_32(tcp->sent_seq) != c.proxy_start ||
        rte_be_to_cpu_32(tcp->recv_ack) != cookie + 1 ||
        !cookie_ack_to_syn(m, s.ip, tcp, syn_cookie_options(cookie)))
        return false;
    s.tcp_flags = tcp->tcp_flags;
    return true;
}

} // namespace

void resend_cookie_syns(worker &w, const dataplane_tables &t)
{
    cookie_wait_queue &q = w.cookie_waits;
    const connection_table &connections = *w.shared->connections;
    while (q.count != 0 && static_cast<int64_t>(w.tsc - q.waits[q.head].due) >= 0) {
        cookie_wait wait = q.waits[q.head];
        q.head = static_cast<uint16_t>((q.head + 1) % q.capacity);
        q.count--;
        const connection &c = connections.at(wait.index);
        // Answered, ended, or its slot another connection's by now.
        if (c.live.load(std::memory_order_relaxed) == 0 || !(c.forward == wait.forward) ||
            c.cookie.load(std::memory_order_acquire) != uint8_t(cookie_state::waiting))
            continue;
        const task_entry &task = t.tasks[c.task];
        if (task.state == task_state::absent) continue;
        rte_mbuf *m = rte_pktmbuf_alloc(w.pool);
        if (m == nullptr) continue;
        if (!write_task_syn(m, c, wait.client_isn, wait.client)) {
            rte_pktmbuf_free(m);
            continue;
        }
        vxlan_inner_ether_write(rte_pktmbuf_mtod(m, rte_ether_hdr *), t.overlay_mac, task.mac);
        deliver(w, t, m, to_node(t, m, task.node, connection_table::hash(c.forward)));
        w.counters.count(event::cookie_syns_resent);
        if (--wait.syns_left == 0) continue;
        wait.due = w.tsc + w.tsc_hz;
        q.waits[(q.head + q.count++) % q.capacity] = wait;
    }
}

void classify_published(worker &w, const dataplane_tables &t, uint16_t port, rte_ipv4_hdr *ip,
                        packet_state &s)
{
    l4_view l4 = parse_l4(ip);
    if (l4.header == nullptr) {
        s.v = drop_as(drop_reason::malformed);
        return;
    }
    if (!t.ports[port].external) { // nothing is published here: the host's, if it has a kernel
        const bool syn = ip->next_proto_id == IPPROTO_TCP && tcp_flag::opens(l4.tcp_flags);
        s.v = host_takes(w, t, port, ip->dst_addr) ? to_kernel(w, t, port, syn)
                                                   : drop_as(drop_reason::no_service);
        return;
    }
    to_lookup_stage(s, mesh_stage::forward, ip, l4);
}

verdict forward_stage(worker &w, const dataplane_tables &t, uint16_t port, rte_mbuf *m,
                      packet_state &s)
{
    rte_ipv4_hdr *ip = s.ip;
    const uint8_t proto = s.key.proto;

    // The connection first: it outlives the listener that opened it (a port unpublished or a
    // service removed by a reload), and ends with its task.
    connection_table &connections = *w.shared->connections;
    uint32_t index = connection_table::no_index;
    bool opened = false;
    // The bulk lookup ran before this burst's SYNs made their connections.
    if (!s.ref.hit() && w.burst_created != 0)
        s.ref = connections.lookup(static_cast<uint8_t>(w.id), direction::forward, s.key, s.hash);
    if (s.ref.hit() && s.ref.dir() == direction::forward) {
        // A packet dropped anyway moves no connection state.
        if (ip->time_to_live <= 1) return time_exceeded(w, t, port, ip);
        const connection &c = connections.at(s.ref.index());
        const uint8_t cookie = c.cookie.load(std::memory_order_acquire);
        if (syn_of_new_connection(c, s)) {
            if (!end_reused(w, s.ref.index(), s.key)) return drop_as(drop_reason::reuse_queue_full);
        } else if (proto == IPPROTO_TCP && !(s.tcp_flags & tcp_flag::rst) &&
                   (cookie == uint8_t(cookie_state::waiting) ||
                    cookie == uint8_t(cookie_state::opening))) {
            // Opened by a cookie, the task not yet answered our SYN: its first data waits, a
            // retransmission of it is our SYN again, the rest the client sends again.
            if (hold_for_task(w, s.ref.index(), c, s, m, port)) return {next::taken};
            if (!cookie_syn_again(c, s, m)) return drop_as(drop_reason::cookie_pending);
            index = s.ref.index(); // our SYN again: no state of the connection moves
        } else {
            update_result u =
                connections.update(s.ref.index(), direction::forward, s.tcp_flags, w.now);
            if (u.changed) sync_note(w, c, false);
            if (!u.reuse)
                index = s.ref.index();
            else if (!end_reused(w, s.ref.index(), s.key))
                return drop_as(drop_reason::reuse_queue_full);
        }
    }
    if (index == connection_table::no_index) {
        uint16_t li = match_listener(t, proto, s.key.dst_ip, s.key.dst_port);
        if (li == no_listener) return unpublished(w, t, port, m, s);
        // Only a SYN opens a TCP connection, as IPVS: anything else is a stray or a late packet,
        // or, with SYN cookies, the ACK that proves a cookie.
        bool opens = proto == IPPROTO_UDP || tcp_flag::opens(s.tcp_flags);
        const bool cookie_ack =
            !opens &&
            (s.tcp_flags & (tcp_flag::syn | tcp_flag::rst | tcp_flag::ack)) == tcp_flag::ack &&
            cookie_may_prove(w, t);
        if (!opens && !cookie_ack) return drop_as(drop_reason::no_connection);
        // Nor does it open a connection (a TTL 1 SYN would hold a slot for tcp_syn).
        if (ip->time_to_live <= 1) return time_exceeded(w, t, port, ip);
        if (opens && proto == IPPROTO_TCP && cookie_for_syn(w, t))
            return answer_with_cookie(w, t, port, m, t.listeners[li], s);
        drop_reason why = drop_reason::table_full;
        index = cookie_ack ? open_by_cookie(w, t, port, m, t.listeners[li], s, why)
                           : open_connection(w, t, port, t.listeners[li], s.key, s.hash, why);
        if (index == connection_table::no_index) return drop_as(why);
        connections.update(index, direction::forward, s.tcp_flags, w.now);
        opened = true;
        const proxy_protocol proxy = t.services[t.listeners[li].service].proxy;
        if (proxy != proxy_protocol::off && proto == IPPROTO_TCP) {
            // The header the connection keeps for its life, whatever a reload does to its service.
            connection &c = connections.at(index);
            c.proxy_version = uint8_t(proxy);
            c.proxy_start =
                rte_be_to_cpu_32(reinterpret_cast<const rte_tcp_hdr *>(s.l4)->sent_seq) + 1;
            c.proxy_len = proxy_header_length(proxy, c.forward);
        }
    }

    const connection &c = connections.at(index);
    const task_entry &task = t.tasks[c.task];
    if (task.state == task_state::absent) {
        end_connection(w, index); // its task ended with a reload
        return drop_as(drop_reason::task_gone);
    }

    if (proto == IPPROTO_TCP && !opened &&
        c.cookie.load(std::memory_order_acquire) == uint8_t(cookie_state::open))
        cookie_to_task(reinterpret_cast<rte_tcp_hdr *>(s.l4), c);

    if (c.proxy_len != 0 && proto == IPPROTO_TCP) {
        auto *tcp = reinterpret_cast<rte_tcp_hdr *>(s.l4);
        switch (proxy_to_task(m, ip, tcp, connections.at(index), vxlan_outer_len)) {
        case proxy_step::no_room:
            return drop_as(drop_reason::proxy_header);
        case proxy_step::inserted:
            w.counters.count(event::proxy_headers_sent);
            s.ip = ip;
            s.l4 = reinterpret_cast<uint8_t *>(tcp);
            break;
        case proxy_step::none:
        case proxy_step::shifted:
            break;
        }
    }

    const node_entry &node = t.nodes[task.node];
    uint16_t l3_len = rte_be_to_cpu_16(ip->total_length);
    // What fits in one VXLAN packet on the node's underlay link: the outer IPv4, UDP and VXLAN
    // headers and the inner Ethernet header take 50 bytes.
    uint16_t inner_mtu = static_cast<uint16_t>(t.ports[node.port].mtu - vxlan_outer_len);
    bool too_big = l3_len > inner_mtu;
    if (too_big && (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG))) {
        // Path MTU discovery: tell the client what fits, as a router on the path would.
        if (rte_mbuf *e = build_icmp_error(w, t, ip, ip->dst_addr, icmp_type_dest_unreachable,
                                           icmp_code_frag_needed, inner_mtu))
            deliver(w, t, e, route_to(port, ip->src_addr));
        if (opened) end_connection(w, index); // the client retries smaller, as a new flow
        return drop_as(drop_reason::mtu);
    }

    if (proto == IPPROTO_TCP)
        nat_to_task<IPPROTO_TCP>(ip, s.l4, c);
    else
        nat_to_task<IPPROTO_UDP>(ip, s.l4, c);
    task_counters &tc = w.counters.tasks[c.task];
    ++tc.packets_in;
    tc.bytes_in += l3_len;
    // The forward key's hash spreads the tunnelled flows (outer UDP source port).
    // DF clear and too big for the tunnel: each fragment its own VXLAN packet (the task's
    // kernel reassembles).
    if (too_big)
        return fragment_each(w, t, m, inner_mtu, [&](rte_mbuf *f, rte_ether_hdr *eth) {
            vxlan_inner_ether_write(eth, t.overlay_mac, task.mac);
            return to_node(t, f, task.node, s.hash);
        });
    vxlan_inner_ether_write(rte_pktmbuf_mtod(m, rte_ether_hdr *), t.overlay_mac, task.mac);
    return to_node(t, m, task.node, s.hash);
}

} // namespace meshgate::dataplane
