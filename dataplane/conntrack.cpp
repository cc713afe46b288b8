// Connection table: see conntrack.h for the design (ownership, reclamation, SNAT, expiry).
#include "dataplane/conntrack.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <new>
#include <stdexcept>
#include <string>

#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

namespace meshgate::dataplane
{

namespace
{

constexpr uint32_t wheel_mask = connection_table::wheel_slots - 1;
static_assert(std::has_single_bit(connection_table::wheel_slots));

// Free-stack refill when empty: enough to amortize the qsbr check, small enough for a packet.
constexpr uint32_t alloc_reclaim_batch = 64;

// Names of DPDK objects are process-wide: each owner's ring of end requests gets its own.
std::atomic<uint32_t> table_seq{0};

template <typename T>
T *zalloc(const char *what, size_t n, int socket)
{
    void *p = rte_zmalloc_socket(what, sizeof(T) * n, RTE_CACHE_LINE_SIZE, socket);
    if (p == nullptr) throw std::runtime_error(std::string("conntrack: cannot allocate ") + what);
    return static_cast<T *>(p);
}

inline uint32_t xorshift32(uint64_t &s)
{
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<uint32_t>(s >> 32);
}

// Whether C gives way to another connection of its client flow that a peer tells of: the client
// reused its port there. A copy of a peer's does (the news is the newer), and one of ours that
// closed; a live one of ours, whose client's packets come here, does not.
bool gives_way(const connection &c)
{
    return c.peer != 0 || (c.tclass == timeout_class::tcp &&
                           (c.tcp() == tcp_state::time_wait || c.tcp() == tcp_state::close));
}

} // namespace

std::unique_ptr<connection_table> connection_table::create(const conntrack_params &p)
{
    if (p.n_workers == 0 || p.n_workers > 256)
        throw std::invalid_argument("conntrack: n_workers must be 1..256");
    if (p.capacity < p.n_workers || p.capacity > (1u << 29))
        throw std::invalid_argument("conntrack: capacity must be n_workers..2^29");
    if (p.qsbr == nullptr)
        throw std::invalid_argument("conntrack: an rte_rcu_qsbr variable is required");
    if (p.snat_port_min == 0 || p.snat_port_min > p.snat_port_max)
        throw std::invalid_argument("conntrack: bad SNAT port range");

    std::unique_ptr<connection_table> t(new connection_table());
    t->qsbr_ = p.qsbr;
    t->capacity_ = p.capacity;
    t->n_workers_ = p.n_workers;
    t->snat_tries_ = std::max<uint32_t>(p.snat_tries, 1);
    t->snat_port_min_ = p.snat_port_min;
    t->snat_port_max_ = p.snat_port_max;
    t->set_timeouts(p.timeouts);

    t->conns_ = zalloc<connection>("conntrack_slots", p.capacity, p.socket_id);
    for (uint32_t i = 0; i < p.capacity; i++)
        new (&t->conns_[i]) connection{};

    t->owners_ = zalloc<owner_state>("conntrack_owners", p.n_workers, p.socket_id);
    t->indexes_ = std::make_unique<flow_index[]>(p.n_workers);
    for (uint32_t w = 0; w < p.n_workers; w++)
        new (&t->owners_[w]) owner_state{};

    const uint32_t n = p.n_workers;
    const uint32_t per = p.capacity / n;
    for (uint32_t w = 0; w < n; w++) {
        owner_state &o = t->owners_[w];
        o.first = w * per;
        o.count = (w == n - 1) ? p.capacity - o.first : per; // last one takes the remainder
        o.free_stack = zalloc<uint32_t>("conntrack_free", o.count, p.socket_id);
        for (uint32_t i = 0; i < o.count; i++)
            o.free_stack[i] = o.first + o.count - 1 - i; // pops come out in ascending order
        o.free_top = o.count;
        const uint32_t ring = std::bit_ceil(o.count);
        o.deferred = zalloc<uint32_t>("conntrack_deferred", ring, p.socket_id);
        o.deferred_mask = ring - 1;
        o.batches = zalloc<deferred_batch>("conntrack_batches", deferred_batches, p.socket_id);
        o.wheel = zalloc<uint32_t>("conntrack_wheel", wheel_slots, p.socket_id);
        std::fill_n(o.wheel, wheel_slots, no_index);
        o.rng = (uint64_t{p.rng_seed} << 32 | (w + 1)) * 0x9e3779b97f4a7c15ULL | 1;

        // Ports of this owner: port % n == w, within [min, max].
        const uint32_t lo = p.snat_port_min, hi = p.snat_port_max;
        const uint32_t first = lo + (w + n - lo % n) % n;
        o.port_first = static_cast<uint16_t>(first);
        o.port_count = first <= hi ? (hi - first) / n + 1 : 0;
        t->indexes_[w].init(2 * o.count, p.socket_id, p.qsbr);
        if (n > 1) {
            char name[RTE_RING_NAMESIZE];
            std::snprintf(name, sizeof(name), "ct%u_end", table_seq.fetch_add(1));
            o.end_requests = rte_ring_create_elem(name, sizeof(end_request), end_request_slots,
                                                  p.socket_id, RING_F_SC_DEQ);
            if (o.end_requests == nullptr)
                throw std::runtime_error(std::string("conntrack: rte_ring_create_elem: ") +
                                         rte_strerror(rte_errno));
        }
    }
    return t;
}

void connection_table::set_timeouts(const conntrack_timeouts &to) noexcept
{
    // Timeout and re-check period per TCP state; 0 would mean "never filed ahead", make it 1 s.
    auto at_least_1 = [](uint32_t v) { return std::max<uint32_t>(v, 1); };
    const uint32_t by_state[tcp_state_count] = {
        to.tcp_syn, to.tcp_syn, to.tcp_syn, to.tcp_established, to.tcp_fin,
        to.tcp_fin, to.tcp_fin, to.tcp_fin, to.tcp_close,
    };
    for (size_t s = 0; s < tcp_state_count; s++) {
        const uint32_t timeout = at_least_1(by_state[s]);
        tcp_timeout_[s].store(timeout, std::memory_order_relaxed);
        // how late a move to a shorter-timeout state may be noticed (see conntrack.h)
        const uint32_t lag = s == size_t(tcp_state::established) ? to.tcp_fin : to.tcp_close;
        tcp_recheck_[s].store(at_least_1(std::min(timeout, lag)), std::memory_order_relaxed);
    }
    udp_timeout_.store(at_least_1(to.udp), std::memory_order_relaxed);
    udp_unreplied_timeout_.store(at_least_1(std::min(to.udp_unreplied, to.udp)),
                                 std::memory_order_relaxed);
    pressure_timeout_.store(at_least_1(to.half_open_under_pressure), std::memory_order_relaxed);
    close_timeout_.store(at_least_1(to.tcp_close), std::memory_order_relaxed);
}

connection_table::~connection_table()
{
    // Workers must be stopped or offline.
    if (owners_ != nullptr) {
        for (uint32_t w = 0; w < n_workers_; w++) {
            rte_ring_free(owners_[w].end_requests);
            rte_free(owners_[w].free_stack);
            rte_free(owners_[w].deferred);
            rte_free(owners_[w].batches);
            rte_free(owners_[w].wheel);
        }
        rte_free(owners_);
    }
    rte_free(conns_);
}

conn_ref connection_table::lookup_in(uint32_t owner, const flow_key &key,
                                     flow_key_hash key_hash) const noexcept
{
    return {index(owner).find(key, key_hash,
                              [this](uint32_t ref) -> const flow_key & { return key_of(ref); })};
}

// A forward key that missed at OWNER: its flow reached another worker than usual.
conn_ref connection_table::lookup_elsewhere(uint32_t owner, const flow_key &key,
                                            flow_key_hash key_hash) const noexcept
{
    for (uint32_t o = 0; o < n_workers_; o++)
        if (o != owner)
            if (conn_ref r = lookup_in(o, key, key_hash); r.hit()) return r;
    return {};
}

conn_ref connection_table::lookup(uint8_t worker, direction dir, const flow_key &key,
                                  flow_key_hash key_hash) const noexcept
{
    const uint32_t owner = dir == direction::reverse ? owner_of_reverse(key) : worker;
    const conn_ref r = lookup_in(owner, key, key_hash);
    if (r.hit() || dir == direction::reverse || n_workers_ == 1) return r;
    return lookup_elsewhere(owner, key, key_hash);
}

conn_ref connection_table::lookup(const flow_key &key) const noexcept
{
    const flow_key_hash h = hash(key);
    const conn_ref r = lookup_in(owner_of_reverse(key), key, h);
    return r.hit() || n_workers_ == 1 ? r : lookup_elsewhere(owner_of_reverse(key), key, h);
}

uint32_t connection_table::lookup_bulk(uint8_t worker, const direction dirs[],
                                       const flow_key *const keys[], const flow_key_hash hashes[],
                                       uint32_t n, conn_ref results[]) const noexcept
{
    constexpr uint32_t stride = 64; // keys per pass: one bit each in `pending`
    uint32_t hits = 0;
    for (uint32_t off = 0; off < n; off += stride) {
        const uint32_t m = std::min<uint32_t>(n - off, stride);
        uint32_t owner_of[stride];
        for (uint32_t i = 0; i < m; i++)
            owner_of[i] =
                dirs[off + i] == direction::reverse ? owner_of_reverse(*keys[off + i]) : worker;
        // One bulk lookup per owner's index among these keys (one, mostly; two or three with
        // replies for several owners).
        uint64_t pending = m == 64 ? ~uint64_t{0} : (uint64_t{1} << m) - 1;
        while (pending != 0) {
            const uint32_t owner = owner_of[std::countr_zero(pending)];
            const flow_key *kp[stride];
            flow_key_hash sig[stride];
            uint32_t at[stride];
            uint32_t k = 0;
            for (uint64_t left = pending; left != 0; left &= left - 1) {
                const auto i = static_cast<uint32_t>(std::countr_zero(left));
                if (owner_of[i] != owner) continue;
                kp[k] = keys[off + i];
                sig[k] = hashes[off + i];
                at[k++] = i;
                pending &= ~(uint64_t{1} << i);
            }
            uint32_t refs[stride];
            index(owner).find_bulk(
                kp, sig, k, refs, [this](uint32_t ref) -> const flow_key & { return key_of(ref); });
            for (uint32_t j = 0; j < k; j++) {
                conn_ref &r = results[off + at[j]];
                r.value = refs[j];
                if (!r.hit() && n_workers_ > 1 && dirs[off + at[j]] == direction::forward)
                    r = lookup_elsewhere(owner, *keys[off + at[j]], sig[j]);
                hits += r.hit();
            }
        }
    }
    return hits;
}

uint32_t connection_table::lookup_bulk(const flow_key keys[], uint32_t n,
                                       conn_ref results[]) const noexcept
{
    uint32_t hits = 0;
    for (uint32_t i = 0; i < n; i++) {
        results[i] = lookup(keys[i]);
        hits += results[i].hit();
    }
    return hits;
}

// Not yet answered: TCP before ESTABLISHED, UDP its task never replied to.
bool connection_table::half_open(const connection &c) const noexcept
{
    const uint8_t s = c.state.load(std::memory_order_relaxed);
    if (c.tclass != timeout_class::tcp) return s == uint8_t(udp_state::unreplied);
    return s <= uint8_t(tcp_state::syn_recv);
}

uint32_t connection_table::timeout(const connection &c) const noexcept
{
    uint32_t to;
    if (c.tclass != timeout_class::tcp) {
        to = c.state.load(std::memory_order_relaxed) == uint8_t(udp_state::replied)
                 ? udp_timeout_.load(std::memory_order_relaxed)
                 : udp_unreplied_timeout_.load(std::memory_order_relaxed);
    } else {
        const uint8_t s = c.state.load(std::memory_order_relaxed);
        const uint8_t known = s < tcp_state_count ? s : static_cast<uint8_t>(tcp_state::close);
        to = tcp_timeout_[known].load(std::memory_order_relaxed);
    }
    if (owners_[c.owner].pressure.load(std::memory_order_relaxed) && half_open(c))
        to = std::min(to, pressure_timeout_.load(std::memory_order_relaxed));
    return to;
}

uint32_t connection_table::recheck(const connection &c) const noexcept
{
    // Half-open entries are looked at often enough to go soon after pressure sets in.
    if (half_open(c))
        return std::min({timeout(c), close_timeout_.load(std::memory_order_relaxed),
                         pressure_timeout_.load(std::memory_order_relaxed)});
    if (c.tclass != timeout_class::tcp) return udp_timeout_.load(std::memory_order_relaxed);
    const uint8_t s = c.state.load(std::memory_order_relaxed);
    return s < tcp_state_count ? tcp_recheck_[s].load(std::memory_order_relaxed) : 1;
}

// How long a failed create keeps the owner under pressure, in seconds.
constexpr uint32_t pressure_hold = 10;

void connection_table::note_failure(owner_state &o, uint32_t now) noexcept
{
    o.pressure_until = now + pressure_hold;
    o.pressure.store(true, std::memory_order_relaxed);
}

// File a connection `now + wait` ahead, where wait is what is left of its timeout capped by the
// re-check period and by one lap (timeouts go up to 2^31 s: a tick that far ahead would read as
// behind the cursor), and the tick is kept within one lap ahead of the cursor.
void connection_table::file(owner_state &o, uint32_t index, uint32_t now) noexcept
{
    connection &c = conns_[index];
    const uint32_t to = timeout(c);
    const int32_t idle = idle_at(c, now);
    const uint32_t idle_s = idle > 0 ? static_cast<uint32_t>(idle) : 0; // another worker's now
    const uint32_t left = to > idle_s ? to - idle_s : 1;
    uint32_t tick = now + std::min({left, recheck(c), wheel_mask});
    const int32_t ahead = static_cast<int32_t>(tick - o.cursor);
    if (ahead < 1)
        tick = o.cursor + 1;
    else if (ahead > static_cast<int32_t>(wheel_mask))
        tick = o.cursor + wheel_mask;
    uint32_t &head = o.wheel[tick & wheel_mask];
    c.wheel_next = head;
    head = index;
}

void connection_table::defer_free(owner_state &o, uint32_t index) noexcept
{
    o.deferred[o.deferred_tail & o.deferred_mask] = index;
    o.deferred_tail++;
}

// One token for every slot deferred since `from`: taken after all their keys were deleted.
void connection_table::stamp_deferred(owner_state &o, uint32_t from) noexcept
{
    if (from == o.deferred_tail) return;
    const uint64_t token = rte_rcu_qsbr_start(qsbr_);
    if (o.batch_tail - o.batch_head == deferred_batches) {
        // All batches wait: the newest one takes these too, under the newer token.
        o.batches[(o.batch_tail - 1) & (deferred_batches - 1)] = {token, o.deferred_tail};
        return;
    }
    o.batches[o.batch_tail++ & (deferred_batches - 1)] = {token, o.deferred_tail};
}

uint32_t connection_table::reclaim(owner_state &o, uint32_t max) noexcept
{
    uint32_t n = 0;
    while (n < max && o.batch_head != o.batch_tail) {
        const deferred_batch &b = o.batches[o.batch_head & (deferred_batches - 1)];
        if (rte_rcu_qsbr_check(qsbr_, b.token, false) != 1)
            break; // FIFO: later tokens are not older
        while (n < max && o.deferred_head != b.end) {
            o.free_stack[o.free_top++] = o.deferred[o.deferred_head & o.deferred_mask];
            o.deferred_head++;
            n++;
        }
        if (o.deferred_head == b.end) o.batch_head++;
    }
    return n;
}

uint32_t connection_table::alloc_slot(owner_state &o) noexcept
{
    if (o.free_top == 0) reclaim(o, alloc_reclaim_batch);
    if (o.free_top == 0) return no_index;
    return o.free_stack[--o.free_top];
}

bool connection_table::pick_snat(owner_state &o, uint8_t worker, flow_key &rev,
                                 uint16_t client_port, std::span<const uint32_t> snat_ips,
                                 uint32_t &rev_hash, uint32_t *budget) noexcept
{
    // Candidates in order of preference, probed a round at a time with one bulk lookup, so the
    // buckets' cache misses overlap instead of following one another.
    constexpr uint32_t round = 4;
    flow_key candidates[round];
    flow_key_hash hashes[round];
    uint32_t count = 0;
    bool found = false;
    auto probe = [&]() {
        const flow_key *keys[round];
        for (uint32_t i = 0; i < count; i++)
            keys[i] = &candidates[i];
        uint32_t refs[round];
        index(worker).find_bulk(keys, hashes, count, refs,
                                [this](uint32_t ref) -> const flow_key & { return key_of(ref); });
        uint64_t free = 0;
        for (uint32_t i = 0; i < count; i++)
            free |= uint64_t{refs[i] == flow_index::empty} << i;
        if (free != 0) {
            const auto first = static_cast<uint32_t>(std::countr_zero(free));
            rev = candidates[first];
            rev_hash = hashes[first];
        }
        count = 0;
        found = free != 0;
    };
    // One more candidate; true when the search is over (a free port found, or no budget left).
    auto add = [&](uint32_t ip, uint16_t port) {
        if (budget != nullptr) {
            if (*budget == 0) {
                if (count != 0) probe();
                return true;
            }
            --*budget;
        }
        flow_key &k = candidates[count];
        k = rev;
        k.dst_ip = ip;
        k.dst_port = rte_cpu_to_be_16(port);
        hashes[count++] = hash(k);
        if (count == round) probe();
        return found;
    };

    // Keep the client's port when it is in our partition: the task sees the real port.
    const uint16_t cp = rte_be_to_cpu_16(client_port);
    if (cp >= snat_port_min_ && cp <= snat_port_max_ && cp % n_workers_ == worker)
        for (uint32_t ip : snat_ips)
            if (add(ip, cp)) return found;
    if (o.port_count != 0) {
        const auto n_ips = static_cast<uint32_t>(snat_ips.size());
        for (uint32_t t = 0; t < snat_tries_; t++) {
            const uint32_t r = xorshift32(o.rng);
            const auto k = static_cast<uint32_t>((uint64_t{r} * o.port_count) >> 32); // no division
            if (add(snat_ips[t % n_ips], static_cast<uint16_t>(o.port_first + k * n_workers_)))
                return found;
        }
    }
    if (count != 0) probe();
    return found;
}

create_result connection_table::create(uint8_t worker, const flow_key &forward,
                                       flow_key_hash fwd_hash, uint16_t service, uint16_t task,
                                       uint32_t task_ip, uint16_t target_port,
                                       std::span<const uint32_t> snat_ips, uint32_t now,
                                       uint32_t *probe_budget, uint8_t client_port) noexcept
{
    owner_state &o = owners_[worker];
    if (!o.cursor_set) {
        o.cursor = now;
        o.cursor_set = true;
    }

    // The caller just missed, but a bulk lookup earlier in the burst may be stale.
    if (const conn_ref known = lookup_in(worker, forward, fwd_hash); known.hit())
        return {known.index(), create_status::exists};
    if (snat_ips.empty()) return {no_index, create_status::snat_exhausted};

    const uint32_t index = alloc_slot(o);
    if (index == no_index) {
        note_failure(o, now);
        return {no_index, create_status::table_full};
    }
    rte_prefetch0_write(&conns_[index]); // its miss overlaps the SNAT probe's

    flow_key rev = make_flow_key(task_ip, 0, target_port, 0, forward.proto);
    uint32_t rev_hash = 0;
    if (!pick_snat(o, worker, rev, forward.src_port, snat_ips, rev_hash, probe_budget)) {
        o.free_stack[o.free_top++] = index; // never published: reuse at once
        note_failure(o, now);
        const bool spent = probe_budget != nullptr && *probe_budget == 0;
        return {no_index, spent ? create_status::probe_budget : create_status::snat_exhausted};
    }

    connection &c = conns_[index];
    c.forward = forward;
    c.reverse = rev;
    c.service = service;
    c.task = task;
    c.owner = worker;
    c.tclass = forward.proto == IPPROTO_TCP ? timeout_class::tcp : timeout_class::udp;
    c.state.store(c.tclass == timeout_class::tcp ? uint8_t(tcp_state::syn_recv)
                                                 : uint8_t(udp_state::unreplied),
                  std::memory_order_relaxed);
    c.last_seen.store(now, std::memory_order_relaxed);
    c.seq_offset = 0;
    c.client_port = client_port;
    c.peer = 0;
    c.proxy_start = 0;
    c.proxy_len = 0;
    c.proxy_version = 0;
    c.proxy_acked.store(0, std::memory_order_relaxed);
    c.cookie.store(uint8_t(cookie_state::none), std::memory_order_relaxed);
    c.wscales = 0xff;
    c.live.store(1, std::memory_order_relaxed);

    // The index publishes a reference with release: the fields above are visible first.
    if (!publish(o, worker, index, fwd_hash, rev_hash)) {
        note_failure(o, now);
        return {no_index, create_status::table_full};
    }
    file(o, index, now);
    o.live.store(o.live.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return {index, create_status::ok};
}

install_status connection_table::install(uint8_t worker, const synced_connection &s, uint32_t now,
                                         removed_connection *out) noexcept
{
    if (worker >= n_workers_ || owner_of_reverse(s.reverse) != worker)
        return install_status::refused;
    owner_state &o = owners_[worker];
    if (!o.cursor_set) {
        o.cursor = now;
        o.cursor_set = true;
    }
    const flow_key_hash fwd_hash = hash(s.forward), rev_hash = hash(s.reverse);
    const conn_ref known = lookup_in(worker, s.forward, fwd_hash);
    if (known.hit() && known.dir() != direction::forward) return install_status::refused;
    if (known.hit()) {
        connection &c = conns_[known.index()];
        if (c.peer == s.peer && c.reverse == s.reverse) {
            if (s.ended != 0)
                return remove(worker, known.index(), out) ? install_status::removed
                                                          : install_status::refused;
            // The peer saw it later than we did: it lives as long as the peer sees it.
            const uint32_t seen = now - std::min(s.idle, now);
            if (static_cast<int32_t>(seen - c.last_seen.load(std::memory_order_relaxed)) > 0)
                c.last_seen.store(seen, std::memory_order_relaxed);
            c.state.store(s.state, std::memory_order_relaxed);
            return install_status::refreshed;
        }
        if (s.ended != 0 || !gives_way(c)) return install_status::refused;
    }
    if (s.ended != 0) return install_status::removed; // never had it: nothing to do
    // This reverse key another connection's.
    const conn_ref taken = lookup_in(worker, s.reverse, rev_hash);
    if (taken.hit() && !(known.hit() && taken.index() == known.index()))
        return install_status::refused;
    // Another worker's connection with this client flow: when it gives way, installed beside it,
    // which its owner ends at its next housekeeping pass (within 100 us).
    const conn_ref elsewhere = lookup_elsewhere(worker, s.forward, fwd_hash);
    if (elsewhere.hit() &&
        (elsewhere.dir() != direction::forward || !gives_way(conns_[elsewhere.index()]) ||
         !request_end(elsewhere.index(), s.forward)))
        return install_status::refused;
    if (known.hit() && !remove(worker, known.index(), out)) return install_status::refused;
    const uint32_t index = alloc_slot(o);
    if (index == no_index) return install_status::refused;
    connection &c = conns_[index];
    c.forward = s.forward;
    c.reverse = s.reverse;
    c.service = s.service;
    c.task = s.task;
    c.owner = worker;
    c.tclass = s.forward.proto == IPPROTO_TCP ? timeout_class::tcp : timeout_class::udp;
    c.state.store(s.state, std::memory_order_relaxed);
    c.last_seen.store(now - std::min(s.idle, now), std::memory_order_relaxed);
    // A cookie's translation goes with it: the task's numbers are the same at every gateway.
    c.seq_offset = s.cookie != 0 ? s.seq_offset : 0;
    c.client_port = 0; // replies go out of whichever external port reaches the client
    c.peer = s.peer;
    c.proxy_start = s.proxy_start;
    c.proxy_len = s.proxy_len;
    c.proxy_version = s.proxy_version;
    c.proxy_acked.store(0, std::memory_order_relaxed); // a header sent twice does no harm
    c.cookie.store(uint8_t(s.cookie != 0 ? cookie_state::open : cookie_state::none),
                   std::memory_order_relaxed);
    c.wscales = s.cookie != 0 ? s.wscales : uint8_t{0xff};
    c.live.store(1, std::memory_order_relaxed);
    if (!publish(o, worker, index, fwd_hash, rev_hash)) return install_status::refused;
    file(o, index, now);
    o.live.store(o.live.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return known.hit() ? install_status::replaced : install_status::installed;
}

// Both keys of the live slot INDEX into its owner's index, reverse first; on failure (a chain
// at its limit) the slot is given back and false returned.
bool connection_table::publish(owner_state &o, uint8_t worker, uint32_t index,
                               flow_key_hash fwd_hash, flow_key_hash rev_hash) noexcept
{
    connection &c = conns_[index];
    flow_index &keys = indexes_[worker];
    if (!keys.insert(rev_hash, index << 1 | 1)) {
        c.live.store(0, std::memory_order_relaxed);
        o.free_stack[o.free_top++] = index; // never published: reuse at once
        return false;
    }
    if (!keys.insert(fwd_hash, index << 1)) {
        keys.erase(rev_hash, index << 1 | 1); // a reply may have seen it: defer the slot
        c.live.store(0, std::memory_order_relaxed);
        const uint32_t from = o.deferred_tail;
        defer_free(o, index);
        stamp_deferred(o, from);
        return false;
    }
    return true;
}

void connection_table::unpublish(uint32_t index) noexcept
{
    connection &c = conns_[index];
    flow_index &keys = indexes_[c.owner];
    keys.erase(hash(c.forward), index << 1);
    keys.erase(hash(c.reverse), index << 1 | 1);
    c.live.store(0, std::memory_order_relaxed);
}

bool connection_table::remove(uint8_t worker, uint32_t index, removed_connection *out) noexcept
{
    if (index >= capacity_ || worker >= n_workers_) return false;
    connection &c = conns_[index];
    if (c.owner != worker || c.live.load(std::memory_order_relaxed) == 0) return false;
    unpublish(index); // the slot stays in the wheel as a zombie; expire() frees it
    owner_state &o = owners_[worker];
    o.live.store(o.live.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    if (out != nullptr) *out = {index, c.service, c.task, c.tcp(), c.tclass, false};
    return true;
}

bool connection_table::request_end(uint32_t index, const flow_key &forward) noexcept
{
    if (index >= capacity_) return false;
    rte_ring *queue = owners_[conns_[index].owner].end_requests;
    end_request r{index, forward}; // (DPDK 22.11 takes it as void *)
    return queue != nullptr && rte_ring_mp_enqueue_elem(queue, &r, sizeof r) == 0;
}

// What other workers asked the owner to end (request_end()), at most BUDGET of them.
uint32_t connection_table::serve_end_requests(uint8_t worker, uint32_t budget,
                                              removed_connection removed[]) noexcept
{
    rte_ring *queue = owners_[worker].end_requests;
    if (queue == nullptr) return 0;
    constexpr uint32_t batch = 32;
    end_request requests[batch];
    const uint32_t n = rte_ring_sc_dequeue_burst_elem(queue, requests, sizeof(end_request),
                                                      std::min(budget, batch), nullptr);
    uint32_t ended = 0;
    for (uint32_t i = 0; i < n; i++) {
        const connection &c = conns_[requests[i].index];
        // Still the connection it was (the slot may have been freed and taken since).
        if (c.forward == requests[i].forward)
            ended += remove(worker, requests[i].index, &removed[ended]);
    }
    return ended;
}

uint32_t connection_table::expire(uint8_t worker, uint32_t now, uint32_t budget,
                                  removed_connection removed[]) noexcept
{
    owner_state &o = owners_[worker];
    const uint32_t asked = serve_end_requests(worker, budget, removed);
    budget -= asked;
    removed += asked;
    reclaim(o, budget);
    if (!o.cursor_set) {
        o.cursor = now;
        o.cursor_set = true;
    }
    // After a long pause one lap visits every list; no need to walk the missed ticks.
    if (static_cast<int32_t>(now - o.cursor) >= static_cast<int32_t>(wheel_slots))
        o.cursor = now - wheel_mask;

    const uint32_t stamp_from = o.deferred_tail;
    uint32_t visited = 0, n_removed = 0, live = o.live.load(std::memory_order_relaxed);
    const bool pressure = uint64_t{live} * 4 >= uint64_t{o.count} * 3 ||
                          static_cast<int32_t>(o.pressure_until - now) > 0;
    o.pressure.store(pressure, std::memory_order_relaxed);
    while (visited < budget && static_cast<int32_t>(now - o.cursor) >= 0) {
        uint32_t &head = o.wheel[o.cursor & wheel_mask];
        if (head == no_index) {
            o.cursor++;
            continue;
        }
        const uint32_t index = head;
        connection &c = conns_[index];
        head = c.wheel_next;
        visited++;
        if (c.live.load(std::memory_order_relaxed) == 0) {
            defer_free(o, index); // zombie left by remove()
            continue;
        }
        if (!past_timeout(c, now)) {
            file(o, index, now); // lazy refresh: seen since it was filed
            continue;
        }
        const bool early =
            pressure && half_open(c) &&
            static_cast<uint32_t>(idle_at(c, now)) <
                (c.tclass == timeout_class::tcp
                     ? tcp_timeout_[uint8_t(tcp_state::syn_recv)].load(std::memory_order_relaxed)
                     : udp_unreplied_timeout_.load(std::memory_order_relaxed));
        unpublish(index);
        removed[n_removed++] = {index, c.service, c.task, c.tcp(), c.tclass, early};
        defer_free(o, index);
        live--;
    }
    o.live.store(live, std::memory_order_relaxed);
    stamp_deferred(o, stamp_from);
    return asked + n_removed;
}

uint64_t connection_table::memory_needed(const conntrack_params &p) noexcept
{
    // Per connection: its slot, its place in the free stack, its deferred ring entry (rounded up
    // to a power of two per owner) and 2 keys in the owner's index; per owner: the index's
    // overflow pool, the deferred batches, a wheel and (with more than one owner) the queue of
    // end requests. Checked against rte_malloc's own figures in conntrack_test.
    const uint64_t n = std::max<uint16_t>(p.n_workers, 1);
    const uint64_t per = p.capacity / n;
    const uint64_t end_queue = n > 1 ? static_cast<uint64_t>(rte_ring_get_memsize_elem(
                                           sizeof(end_request), end_request_slots))
                                     : 0;
    auto owner_bytes = [&](uint64_t count) {
        return count * sizeof(uint32_t) + std::bit_ceil(std::max<uint64_t>(count, 1)) * 4 +
               flow_index::shape_for(static_cast<uint32_t>(2 * count)).bytes() +
               deferred_batches * sizeof(deferred_batch) + wheel_slots * sizeof(uint32_t) +
               sizeof(owner_state) + end_queue;
    };
    const uint64_t owners = (n - 1) * owner_bytes(per) + owner_bytes(p.capacity - (n - 1) * per);
    // rte_malloc's headers and cache-line padding: the table's own allocations, and each
    // owner's nine (stack, rings, wheel, index).
    constexpr uint64_t allocator_overhead = 4 * 1024, per_owner_overhead = 1024;
    return uint64_t{p.capacity} * sizeof(connection) + owners + allocator_overhead +
           n * per_owner_overhead;
}

connection_table::overflow_use connection_table::index_overflow() const noexcept
{
    overflow_use u{0, 0};
    for (uint32_t w = 0; w < n_workers_; w++) {
        u.used += indexes_[w].overflow_used();
        u.capacity += indexes_[w].overflow_capacity();
    }
    return u;
}

uint32_t connection_table::size() const noexcept
{
    uint32_t n = 0;
    for (uint32_t w = 0; w < n_workers_; w++)
        n += owners_[w].live.load(std::memory_order_relaxed);
    return n;
}

uint32_t connection_table::size(uint8_t worker) const noexcept
{
    return worker < n_workers_ ? owners_[worker].live.load(std::memory_order_relaxed) : 0;
}

uint32_t connection_table::capacity(uint8_t worker) const noexcept
{
    return worker < n_workers_ ? owners_[worker].count : 0;
}

} // namespace meshgate::dataplane
