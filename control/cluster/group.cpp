#include "control/cluster/group.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_hash_crc.h>
#include <rte_ring_elem.h>
#include <spdlog/spdlog.h>

#include "dataplane/proxy_protocol.h"
#include "dataplane/sync.h"

namespace meshgate::cluster
{

namespace
{

// Slots of the table a walk reads per tick (20 ms): 1M slots in ~1 s.
constexpr uint32_t walk_slots_per_tick = 20000;
// Events taken from each worker's ring per tick.
constexpr uint32_t events_per_tick = 16384;
// Datagrams read per tick.
constexpr int datagrams_per_tick = 4096;
// How long a joining gateway waits to hear from a peer before it takes it for dead.
constexpr auto join_wait = std::chrono::seconds(1);
// How long a joining gateway waits for its peers' connections before it serves anyway.
constexpr auto join_limit = std::chrono::seconds(10);
// A returning peer's addresses are given back this long after it says it serves: its gratuitous
// ARPs reach every node first, their repeats too (should one be lost); meanwhile the replies that
// still come here are served.
constexpr auto give_back_delay = std::chrono::milliseconds(2500);
// A silent peer's address is asked for by ARP this long before it would be dead.
constexpr auto probe_window = std::chrono::milliseconds(100);
// Gratuitous ARPs after a takeover, after the first (a lost one must not leave a node behind).
constexpr std::array<std::chrono::milliseconds, 2> arp_repeats = {std::chrono::milliseconds(200),
                                                                  std::chrono::milliseconds(1000)};

uint64_t realtime_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

group_key read_key(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("[cluster] key_file " + path + " cannot be read");
    std::vector<uint8_t> secret{std::istreambuf_iterator<char>(in), {}};
    if (secret.size() < config::cluster_section::min_secret_bytes)
        throw std::runtime_error("[cluster] key_file " + path + " is too short");
    return derive_key(secret);
}

std::string address_text(uint32_t be)
{
    char text[INET_ADDRSTRLEN] = "";
    in_addr a{be};
    inet_ntop(AF_INET, &a, text, sizeof text);
    return text;
}

// What a connection's keys and STATE say, as the wire carries it (an upsert, its names unset).
connection_record record_of(const dataplane::flow_key &forward, const dataplane::flow_key &reverse,
                            uint8_t state, uint8_t proxy_version, uint32_t proxy_start)
{
    connection_record r;
    r.proto = forward.proto;
    r.state = state;
    r.proxy_version = proxy_version;
    r.proxy_start = proxy_start; // 0 unless a PROXY header or a cookie needs the client's ISN
    r.client_ip = forward.src_ip;
    r.published_ip = forward.dst_ip;
    r.client_port = forward.src_port;
    r.published_port = forward.dst_port;
    r.task_ip = reverse.src_ip;
    r.target_port = reverse.src_port;
    r.snat_ip = reverse.dst_ip;
    r.snat_port = reverse.dst_port;
    return r;
}

} // namespace

struct group::peer {
    config::cluster_peer config;
    uint8_t peer_byte = 0; // connection::peer of its connections here
    peer_health health = peer_health::unknown;
    replay_window window;
    uint64_t incarnation = 0;
    member_state says = member_state::joining;
    bool known_identity = false;
    identity who;
    bool adopted = false;
    bool synced_us = false;      // its heartbeat's bulk_done_for is our incarnation
    uint64_t bulk_done_for = 0;  // its incarnation whose bulk we completed
    bool wants_bulk = false;     // asked, not yet served
    bool probing = false;        // its address was asked for by ARP since it went silent
    bool probe_answered = false; // and its data path answered
    clock::time_point heard, bulk_at;
    clock::time_point recheck_from; // cut: its silence counts from here for the next probe
    std::optional<clock::time_point> give_back_at; // adopted, and it serves again
    std::vector<clock::time_point> arp_due;
    std::vector<connection_record> outbox;
    size_t outbox_bytes = 0;
    uint32_t connections = 0, counting = 0;
    uint64_t messages_in = 0, messages_out = 0, records_in = 0, records_out = 0;
};

// One pass over the connection table, a slice per tick, for some peers: a bulk sync (answers a
// peer that joins) or the periodic exchange.
struct group::walk {
    std::vector<size_t> targets;
    bool bulk = false;
    uint32_t next = 0;
    uint32_t own = 0;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

group::group(const config::cluster_section &c, identity self, dataplane::connection_table &table,
             std::span<rte_ring *const> events, std::span<rte_ring *const> installs,
             uint64_t start_tsc, group_hooks hooks)
    : config_(c), self_(std::move(self)), table_(table), events_(events.begin(), events.end()),
      installs_(installs.begin(), installs.end()), start_tsc_(start_tsc), hooks_(std::move(hooks))
{
    if (!c.key_file.empty()) key_ = read_key(c.key_file);
    incarnation_ = realtime_ns();
    started_ = heartbeat_at_ = clock::now();
    resync_at_ = started_ + std::chrono::milliseconds(c.resync_interval_ms);
    for (size_t i = 0; i < c.peers.size(); ++i) {
        peer p;
        p.config = c.peers[i];
        p.peer_byte = static_cast<uint8_t>(i + 1);
        peers_.push_back(std::move(p));
    }
    counters_.name = c.name;
    socket_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (socket_ < 0) throw std::runtime_error(std::string("cluster socket: ") + strerror(errno));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(c.sync_port);
    at.sin_addr.s_addr = self_.underlay;
    // A burst of a bulk sync must not be dropped by a default-sized buffer.
    const int buffer = 4 << 20;
    setsockopt(socket_, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    setsockopt(socket_, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    if (bind(socket_, reinterpret_cast<sockaddr *>(&at), sizeof at) != 0) {
        const std::string why = strerror(errno);
        ::close(socket_);
        throw std::runtime_error("cluster socket on " + address_text(self_.underlay) + ":" +
                                 std::to_string(c.sync_port) + ": " + why);
    }
    spdlog::info("cluster {}: {} peer(s), messages on {}:{}{}", c.name, peers_.size(),
                 address_text(self_.underlay), c.sync_port,
                 key_ ? ", authenticated" : " (no key_file: the underlay must be trusted)");
}

group::~group()
{
    if (socket_ >= 0) ::close(socket_);
}

uint32_t group::conntrack_now() const
{
    return static_cast<uint32_t>((rte_rdtsc() - start_tsc_) / rte_get_tsc_hz());
}

void group::tick()
{
    receive();
    drain_events();
    detect();
    const auto now = clock::now();
    if (now >= heartbeat_at_) {
        send_heartbeats();
        heartbeat_at_ = now + std::chrono::milliseconds(config_.heartbeat_ms);
    }
    // A peer that asked for our connections gets them: one walk serves every one that asked.
    if (!walk_) {
        std::vector<size_t> asking;
        for (size_t i = 0; i < peers_.size(); ++i)
            if (peers_[i].health == peer_health::alive && peers_[i].wants_bulk &&
                now - peers_[i].bulk_at > std::chrono::seconds(1))
                asking.push_back(i);
        if (!asking.empty()) {
            start_walk(std::move(asking), true);
        } else if (now >= resync_at_) {
            std::vector<size_t> alive;
            for (size_t i = 0; i < peers_.size(); ++i)
                if (peers_[i].health == peer_health::alive) alive.push_back(i);
            if (alive.empty()) last_full_walk_ = now; // nobody to tell
            start_walk(std::move(alive), false);
            resync_at_ = now + std::chrono::milliseconds(config_.resync_interval_ms);
        }
    }
    step_walk();
    for (peer &p : peers_) {
        if (p.give_back_at && now >= *p.give_back_at) {
            p.give_back_at.reset();
            p.adopted = false;
            readopt();
            spdlog::info("cluster: peer {} serves again: its addresses are its own", p.config.name);
        }
        flush(p);
        while (!p.arp_due.empty() && p.arp_due.front() <= now) {
            if (p.adopted && p.known_identity) hooks_.announce_address(p.who.underlay);
            p.arp_due.erase(p.arp_due.begin());
        }
    }
    while (!own_arp_due_.empty() && own_arp_due_.front() <= now) {
        hooks_.announce_address(self_.underlay);
        own_arp_due_.erase(own_arp_due_.begin());
    }
    if (state_ == member_state::joining) {
        // A peer not heard yet may be dead, or its heartbeats not here yet: wait for them a while.
        const bool waited =
            now - started_ >= std::max<clock::duration>(
                                  join_wait, 2 * std::chrono::milliseconds(config_.dead_after_ms));
        const bool all_synced = std::all_of(peers_.begin(), peers_.end(), [](const peer &p) {
            return p.health != peer_health::alive || p.synced_us;
        });
        const bool all_heard = std::all_of(peers_.begin(), peers_.end(), [](const peer &p) {
            return p.health == peer_health::alive;
        });
        if (((waited || all_heard) && all_synced) || now - started_ >= join_limit) {
            if (!all_synced) spdlog::warn("cluster: serving before every peer synced to us");
            state_ = member_state::serving;
            hooks_.joined();
            hooks_.announce_address(self_.underlay); // ours again, if a peer had it
            for (auto repeat : arp_repeats)
                own_arp_due_.push_back(now + repeat);
            send_heartbeats();
            spdlog::info("cluster {}: joined, serving", config_.name);
        }
    }
}

void group::set_draining(bool on)
{
    if (state_ == member_state::joining || state_ == member_state::leaving) return;
    if (on && state_ != member_state::draining) resync_at_ = clock::now();
    state_ = on ? member_state::draining : member_state::serving;
}

void group::leave()
{
    if (state_ == member_state::leaving) return;
    state_ = member_state::leaving;
    // Our connections as they are now, then the word that we go.
    std::vector<size_t> all;
    for (size_t i = 0; i < peers_.size(); ++i)
        if (peers_[i].health == peer_health::alive) all.push_back(i);
    for (size_t i : all)
        flush(peers_[i]);
    send_heartbeats();
}

void group::receive()
{
    std::array<uint8_t, max_datagram + 1> buffer;
    for (int n = 0; n < datagrams_per_tick; ++n) {
        sockaddr_in from{};
        socklen_t from_len = sizeof from;
        const ssize_t got = recvfrom(socket_, buffer.data(), buffer.size(), 0,
                                     reinterpret_cast<sockaddr *>(&from), &from_len);
        if (got < 0) return; // EAGAIN: all read
        auto source = std::find_if(peers_.begin(), peers_.end(), [&](const peer &p) {
            return network_order(p.config.address) == from.sin_addr.s_addr;
        });
        if (source == peers_.end()) {
            ++counters_.refused_source;
            continue;
        }
        auto decoded =
            decode(std::span<const uint8_t>(buffer.data(), size_t(got)), key_ ? &*key_ : nullptr);
        if (auto *e = std::get_if<wire_error>(&decoded)) {
            ++counters_.refused[static_cast<size_t>(*e)];
            continue;
        }
        const message &m = std::get<message>(decoded);
        if (m.head.sender != source->config.name) {
            ++counters_.refused_source;
            continue;
        }
        if (!source->window.accept(m.head.incarnation, m.head.sequence)) {
            ++counters_.refused_replay;
            continue;
        }
        take(m, *source);
    }
}

void group::take(const message &m, peer &p)
{
    ++p.messages_in;
    if (m.head.incarnation != p.incarnation) {
        if (p.incarnation != 0) spdlog::info("cluster: peer {} restarted", p.config.name);
        p.incarnation = m.head.incarnation;
        p.synced_us = false;
    }
    p.heard = clock::now();
    p.probing = p.probe_answered = false;
    if (p.health != peer_health::alive) {
        spdlog::info("cluster: peer {} is alive", p.config.name);
        p.health = peer_health::alive;
    }
    if (const auto *h = std::get_if<heartbeat>(&m.body))
        take_heartbeat(*h, p);
    else
        take_connections(std::get<connections>(m.body), p);
}

void group::take_heartbeat(const heartbeat &h, peer &p)
{
    p.says = h.state;
    if (hooks_.learn_peer &&
        (!p.known_identity || p.who.underlay != h.underlay || p.who.underlay_mac != h.underlay_mac))
        hooks_.learn_peer(h.underlay, h.underlay_mac);
    p.known_identity = true;
    p.who = identity{h.underlay, h.overlay_mac, h.snat_addresses, h.underlay_mac};
    p.synced_us = h.bulk_done_for == incarnation_;
    if (h.wants_bulk && p.bulk_done_for != p.incarnation) {
        if (!p.wants_bulk) p.bulk_at = {};
        p.wants_bulk = true;
    }
    if (h.state == member_state::leaving) {
        spdlog::info("cluster: peer {} is leaving", p.config.name);
        p.health = peer_health::dead;
        if (survivor_for(p)) take_over(p);
        return;
    }
    // It serves again (it has its connections and took its address back): no more ARP from us
    // for its address, and its addresses go back once its own ARP has reached the nodes.
    if (p.adopted && !p.give_back_at &&
        (h.state == member_state::serving || h.state == member_state::draining)) {
        p.arp_due.clear();
        p.give_back_at = clock::now() + give_back_delay;
    }
}

void group::take_connections(const connections &c, peer &p)
{
    for (const connection_record &r : c.records) {
        ++p.records_in;
        dataplane::synced_connection s{};
        // The owner, as this gateway knows it: us (a connection handed back), or a peer.
        if (r.owner == config_.name) {
            s.peer = 0;
        } else {
            auto owner = std::find_if(peers_.begin(), peers_.end(),
                                      [&](const peer &q) { return q.config.name == r.owner; });
            if (owner == peers_.end()) {
                ++counters_.records_unknown;
                continue;
            }
            s.peer = owner->peer_byte;
        }
        const auto ids = hooks_.resolve(r.service, r.task_ip);
        if (!ids) {
            ++counters_.records_unknown;
            continue;
        }
        s.forward = dataplane::make_flow_key(r.client_ip, r.published_ip, r.client_port,
                                             r.published_port, r.proto);
        s.reverse =
            dataplane::make_flow_key(r.task_ip, r.snat_ip, r.target_port, r.snat_port, r.proto);
        s.service = ids->first;
        s.task = ids->second;
        s.idle = r.idle_seconds;
        s.state = r.state;
        s.ended = r.kind == record_kind::gone;
        // The header's length follows from its version and the client flow, as at its owner.
        s.proxy_version = r.proxy_version;
        s.proxy_start = r.proxy_start;
        s.proxy_len =
            dataplane::proxy_header_length(dataplane::proxy_protocol(r.proxy_version), s.forward);
        s.cookie = r.cookie ? 1 : 0;
        s.wscales = r.wscales;
        s.seq_offset = r.seq_offset;
        rte_ring *ring = installs_[table_.owner_of_reverse(s.reverse)];
        if (rte_ring_sp_enqueue_elem(ring, &s, sizeof s) != 0) ++counters_.installs_lost;
    }
}

std::string group::owner_name(uint8_t peer_byte) const
{
    return peer_byte == 0 ? config_.name : peers_.at(peer_byte - 1u).config.name;
}

void group::queue(peer &p, connection_record r)
{
    const size_t size = record_size(r);
    if (p.outbox_bytes + size + connections_overhead(config_.name, key_.has_value()) > max_datagram)
        flush(p);
    p.outbox_bytes += size;
    p.outbox.push_back(std::move(r));
}

void group::flush(peer &p, bool bulk_last, uint64_t bulk_for)
{
    if (p.outbox.empty() && !bulk_last) return;
    message m;
    m.head.kind = message_kind::connections;
    connections body;
    body.bulk_last = bulk_last;
    body.bulk_for = bulk_for;
    body.records = std::move(p.outbox);
    p.records_out += body.records.size();
    m.body = std::move(body);
    p.outbox.clear();
    p.outbox_bytes = 0;
    send(p, m);
}

void group::send(peer &p, const message &m)
{
    message out = m;
    out.head.sender = config_.name;
    out.head.incarnation = incarnation_;
    out.head.sequence = ++sequence_;
    const std::vector<uint8_t> bytes = encode(out, key_ ? &*key_ : nullptr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(config_.sync_port);
    to.sin_addr.s_addr = network_order(p.config.address);
    if (sendto(socket_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr *>(&to),
               sizeof to) < 0)
        ++counters_.send_errors;
    else
        ++p.messages_out;
}

void group::drain_events()
{
    constexpr uint32_t batch = 64;
    dataplane::sync_event events[batch];
    for (rte_ring *ring : events_) {
        for (uint32_t taken = 0; taken < events_per_tick;) {
            const uint32_t n =
                rte_ring_sc_dequeue_burst_elem(ring, events, sizeof events[0], batch, nullptr);
            for (uint32_t i = 0; i < n; ++i) {
                const dataplane::sync_event &e = events[i];
                connection_record r =
                    record_of(e.forward, e.reverse, e.state, e.proxy_version, e.proxy_start);
                r.cookie = e.cookie != 0;
                r.wscales = e.wscales;
                r.seq_offset = e.seq_offset;
                r.kind = e.ended ? record_kind::gone : record_kind::upsert;
                r.service = hooks_.service_name(e.service);
                r.owner = config_.name;
                if (r.service.empty()) continue; // its service went with a reload
                for (peer &p : peers_)
                    if (p.health == peer_health::alive) queue(p, r);
            }
            taken += n;
            if (n < batch) break;
        }
    }
}

void group::start_walk(std::vector<size_t> targets, bool bulk)
{
    if (targets.empty()) return;
    walk_ = std::make_unique<walk>();
    walk_->targets = std::move(targets);
    walk_->bulk = bulk;
    for (peer &p : peers_)
        p.counting = 0;
    for (size_t i : walk_->targets) {
        peer &p = peers_[i];
        if (bulk) p.bulk_at = clock::now();
    }
}

void group::step_walk()
{
    if (!walk_) return;
    const uint32_t now = conntrack_now();
    const uint32_t end = std::min(walk_->next + walk_slots_per_tick, table_.capacity());
    for (uint32_t i = walk_->next; i < end; ++i) {
        const dataplane::connection &c = table_.at(i);
        if (c.live.load(std::memory_order_relaxed) == 0 || !dataplane::worth_syncing(c)) continue;
        // The periodic exchange repairs what carries data: a connection closed on both sides
        // (TIME_WAIT, CLOSE) is left to its own timeout at the peer (most of a busy table).
        if (!walk_->bulk && c.tclass == dataplane::timeout_class::tcp &&
            c.tcp() >= dataplane::tcp_state::time_wait)
            continue;
        if (c.peer == 0)
            ++walk_->own;
        else if (c.peer <= peers_.size())
            ++peers_[c.peer - 1u].counting;
        else
            continue;
        connection_record r =
            record_of(c.forward, c.reverse, c.state.load(std::memory_order_relaxed),
                      c.proxy_version, c.proxy_start);
        if (c.cookie.load(std::memory_order_acquire) == uint8_t(dataplane::cookie_state::open)) {
            r.cookie = true;
            r.wscales = c.wscales;
            r.seq_offset = c.seq_offset;
        }
        const int32_t idle = table_.idle_at(c, now);
        r.idle_seconds = idle > 0 ? static_cast<uint32_t>(idle) : 0;
        r.service = hooks_.service_name(c.service);
        r.owner = owner_name(c.peer);
        if (r.service.empty()) continue;
        for (size_t t : walk_->targets) {
            peer &p = peers_[t];
            // The periodic exchange tells a peer nothing of its own; a bulk hands them back.
            if (!walk_->bulk && c.peer == p.peer_byte) continue;
            if (p.health == peer_health::alive) queue(p, r);
        }
    }
    walk_->next = end;
    if (end < table_.capacity()) return;
    counters_.own_connections = walk_->own;
    for (peer &p : peers_)
        p.connections = p.counting;
    const bool everyone = std::all_of(peers_.begin(), peers_.end(), [&](const peer &p) {
        return p.health != peer_health::alive ||
               std::find(walk_->targets.begin(), walk_->targets.end(), &p - peers_.data()) !=
                   walk_->targets.end();
    });
    if (everyone && !walk_->bulk) last_full_walk_ = walk_->started;
    for (size_t t : walk_->targets) {
        peer &p = peers_[t];
        if (walk_->bulk) {
            p.bulk_done_for = p.incarnation;
            p.wants_bulk = false;
            flush(p, true, p.incarnation);
        }
    }
    walk_.reset();
    if (!walk_) send_heartbeats(); // bulk_done_for goes out now
}

void group::send_heartbeats()
{
    for (peer &p : peers_) {
        message m;
        m.head.kind = message_kind::heartbeat;
        heartbeat h;
        h.state = state_;
        h.wants_bulk = state_ == member_state::joining && !p.synced_us;
        h.bulk_done_for = p.bulk_done_for;
        h.underlay = self_.underlay;
        h.overlay_mac = self_.overlay_mac;
        h.underlay_mac = self_.underlay_mac;
        h.snat_addresses = self_.snat_addresses;
        m.body = std::move(h);
        send(p, m);
    }
}

// Rendezvous hashing over the live members: every survivor that sees the same members picks
// the same one, and a death moves only the dead member's addresses.
bool group::survivor_for(const peer &dead) const
{
    auto weight = [&](const std::string &member) {
        const std::string both = dead.config.name + "/" + member;
        return rte_hash_crc(both.data(), static_cast<uint32_t>(both.size()), 0x6d677376);
    };
    const uint32_t mine = weight(config_.name);
    for (const peer &p : peers_)
        if (&p != &dead && p.health == peer_health::alive && p.says != member_state::leaving) {
            const uint32_t theirs = weight(p.config.name);
            if (theirs > mine || (theirs == mine && p.config.name > config_.name)) return false;
        }
    return true;
}

void group::detect()
{
    const auto now = clock::now();
    const auto dead_after = std::chrono::milliseconds(config_.dead_after_ms);
    const auto probe_at = dead_after - std::min<clock::duration>(probe_window, dead_after / 3);
    for (uint32_t sender : hooks_.probe_answers())
        for (peer &p : peers_)
            if (p.probing && network_order(p.config.address) == sender) p.probe_answered = true;
    for (peer &p : peers_) {
        if (p.health != peer_health::alive && p.health != peer_health::cut) continue;
        const auto silence = now - std::max(p.heard, p.recheck_from);
        if (silence >= probe_at && !p.probing) {
            p.probing = true;
            p.probe_answered = false;
            hooks_.probe(network_order(p.config.address));
        }
        if (silence < dead_after) continue;
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(silence).count();
        if (p.probe_answered) {
            if (p.health != peer_health::cut)
                spdlog::warn("cluster: peer {} silent for {} ms but its data path answers ARP: "
                             "the sync channel is cut, its addresses stay its own",
                             p.config.name, ms);
            p.health = peer_health::cut;
            p.recheck_from = now - probe_at; // ask again in probe_window
            p.probing = false;
            continue;
        }
        p.health = peer_health::dead;
        p.wants_bulk = false;
        spdlog::warn("cluster: peer {} is dead (silent for {} ms, no ARP answer)", p.config.name,
                     ms);
        if (survivor_for(p)) take_over(p);
    }
}

void group::take_over(peer &p)
{
    p.give_back_at.reset(); // it came back and went again before we gave them back
    if (p.adopted || !p.known_identity) return;
    p.adopted = true;
    readopt();
    hooks_.announce_address(p.who.underlay);
    const auto now = clock::now();
    for (auto repeat : arp_repeats)
        p.arp_due.push_back(now + repeat);
    ++counters_.takeovers;
    counters_.last_takeover_ms = std::chrono::duration<double, std::milli>(now - p.heard).count();
    spdlog::warn("cluster: took over {}'s addresses ({}), {:.0f} ms after it was last heard",
                 p.config.name, address_text(p.who.underlay), counters_.last_takeover_ms);
}

void group::readopt()
{
    std::vector<dataplane::adopted_gateway> adopted;
    for (const peer &p : peers_) {
        if (!p.adopted) continue;
        dataplane::adopted_gateway g;
        g.underlay = p.who.underlay;
        std::copy(p.who.overlay_mac.begin(), p.who.overlay_mac.end(), g.overlay_mac.addr_bytes);
        g.snat_addresses = p.who.snat_addresses;
        adopted.push_back(std::move(g));
    }
    hooks_.adopt(std::move(adopted));
}

group_status group::status() const
{
    group_status s = counters_;
    s.state = state_;
    const auto now = clock::now();
    for (const peer &p : peers_) {
        peer_status ps;
        ps.name = p.config.name;
        ps.address = network_order(p.config.address);
        ps.health = p.health;
        ps.says = p.says;
        ps.adopted = p.adopted;
        ps.synced_us = p.synced_us;
        ps.heard_ms_ago = p.heard == clock::time_point{}
                              ? -1
                              : std::chrono::duration<double, std::milli>(now - p.heard).count();
        ps.messages_in = p.messages_in;
        ps.messages_out = p.messages_out;
        ps.records_in = p.records_in;
        ps.records_out = p.records_out;
        ps.connections = p.connections;
        s.peers.push_back(std::move(ps));
    }
    return s;
}

} // namespace meshgate::cluster
