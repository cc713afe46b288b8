// Builders of the per-service scheduler tables. Control thread only: they allocate and throw.
#include "dataplane/scheduler.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace meshgate::dataplane
{

bool is_prime(uint32_t n)
{
    if (n < 2) return false;
    if (n % 2 == 0) return n == 2;
    for (uint32_t d = 3; uint64_t{d} * d <= n; d += 2)
        if (n % d == 0) return false;
    return true;
}

uint32_t maglev_table_size_for(size_t backends)
{
    // Primes near powers of two; 65537 serves up to 655 tasks, the last up to ~167k.
    static constexpr uint32_t primes[] = {65537,   131071,  262147,  524287,  1048573,
                                          2097143, 4194301, 8388617, 16777213};
    for (uint32_t p : primes)
        if (p / 100 >= backends) return p;
    return primes[std::size(primes) - 1];
}

std::vector<uint32_t> build_maglev_table(std::span<const maglev_backend> backends,
                                         uint32_t table_size)
{
    if (!is_prime(table_size))
        throw std::invalid_argument("maglev table size " + std::to_string(table_size) +
                                    " is not prime");
    std::vector<uint32_t> table(table_size, no_task);

    // Each backend walks its own permutation of the slots: offset, offset + skip, ... (mod a
    // prime, so every slot comes up once) and claims the next free slot on its turn.
    struct walker {
        uint64_t id;
        uint32_t task;
        uint32_t weight;
        uint32_t pos;
        uint32_t skip;
        uint64_t credit; // weight earned since the last claim; a claim costs max_weight
    };
    std::vector<walker> walkers;
    uint32_t max_weight = 0;
    for (uint32_t i = 0; i < backends.size(); ++i) {
        const maglev_backend &b = backends[i];
        if (b.weight == 0) continue; // drained: no slots, so no new flows
        walkers.push_back({
            .id = b.id,
            .task = i,
            .weight = b.weight,
            .pos = static_cast<uint32_t>(mix64(b.id ^ maglev_offset_seed) % table_size),
            .skip = static_cast<uint32_t>(mix64(b.id ^ maglev_skip_seed) % (table_size - 1) + 1),
            .credit = 0,
        });
        max_weight = std::max(max_weight, b.weight);
    }
    if (walkers.empty()) return table;

    // Turn order by identity, not config order, so every gateway builds the same table.
    std::sort(walkers.begin(), walkers.end(), [](const walker &a, const walker &b) {
        return a.id != b.id ? a.id < b.id : a.task < b.task;
    });

    uint32_t filled = 0;
    for (;;) {
        for (walker &w : walkers) {
            // Weighted turns (Katran's MaglevHashV2): a backend claims a slot each time its
            // earned weight reaches the heaviest one's, so claims follow weight ratios.
            w.credit += w.weight;
            if (w.credit < max_weight) continue;
            w.credit -= max_weight;
            while (table[w.pos] != no_task) {
                w.pos += w.skip;
                if (w.pos >= table_size) w.pos -= table_size;
            }
            table[w.pos] = w.task;
            if (++filled == table_size) return table;
        }
    }
}

std::vector<uint32_t> build_sh_table(std::span<const scheduler_task> tasks, uint32_t buckets)
{
    std::vector<uint32_t> table(buckets, no_task);
    uint64_t total = 0;
    uint32_t live = 0;
    for (const scheduler_task &t : tasks) {
        total += t.weight;
        live += t.weight > 0;
    }
    if (live == 0 || buckets < live) return table;

    // One bucket each, then the rest by weight; leftovers to the largest remainders.
    const uint64_t spare = buckets - live;
    std::vector<uint32_t> count(tasks.size(), 0);
    std::vector<std::pair<uint64_t, uint32_t>> remainders; // (remainder, task)
    uint64_t given = 0;
    for (uint32_t i = 0; i < tasks.size(); ++i) {
        if (tasks[i].weight == 0) continue;
        uint64_t share = spare * tasks[i].weight;
        count[i] = 1 + static_cast<uint32_t>(share / total);
        given += count[i];
        remainders.emplace_back(share % total, i);
    }
    // Ties and the layout by identity, not config order: every gateway builds the same table.
    auto before = [&](uint32_t a, uint32_t b) {
        return tasks[a].id != tasks[b].id ? tasks[a].id < tasks[b].id : a < b;
    };
    std::sort(remainders.begin(), remainders.end(), [&](const auto &a, const auto &b) {
        return a.first != b.first ? a.first > b.first : before(a.second, b.second);
    });
    for (size_t k = 0; given < buckets; ++k, ++given)
        ++count[remainders[k].second];

    // Runs, as ip_vs_sh_reassign() lays them out.
    std::vector<uint32_t> order(tasks.size());
    for (uint32_t i = 0; i < tasks.size(); ++i)
        order[i] = i;
    std::sort(order.begin(), order.end(), before);
    uint32_t bucket = 0;
    for (uint32_t i : order)
        for (uint32_t k = 0; k < count[i]; ++k)
            table[bucket++] = i;
    return table;
}

service_scheduler build_scheduler(scheduler_kind kind, std::span<const scheduler_task> tasks,
                                  uint32_t maglev_table_size)
{
    service_scheduler s;
    s.kind = kind;
    s.task_count = static_cast<uint32_t>(tasks.size());
    s.keys.reserve(tasks.size());
    s.weights.reserve(tasks.size());
    uint32_t gcd = 0;
    uint32_t max_weight = 0;
    for (uint32_t i = 0; i < tasks.size(); ++i) {
        uint32_t w = tasks[i].weight;
        if (w > max_task_weight)
            throw std::invalid_argument("task " + std::to_string(i) + " weight " +
                                        std::to_string(w) + " is above " +
                                        std::to_string(max_task_weight));
        if (tasks[i].key == no_task)
            throw std::invalid_argument("task " + std::to_string(i) + " has key no_task");
        s.keys.push_back(tasks[i].key);
        s.key_limit = std::max(s.key_limit, tasks[i].key + 1);
        s.weights.push_back(w);
        if (w == 0) continue;
        s.live.push_back(i);
        gcd = std::gcd(gcd, w);
        max_weight = std::max(max_weight, w);
    }
    if (gcd != 0) {
        s.wrr_gcd = static_cast<int32_t>(gcd);
        s.wrr_max = static_cast<int32_t>(max_weight - (gcd - 1));
    }

    switch (kind) {
    case scheduler_kind::maglev:
        s.table = build_maglev_table(
            tasks, maglev_table_size ? maglev_table_size : maglev_table_size_for(tasks.size()));
        break;
    case scheduler_kind::sh: {
        uint32_t buckets = sh_min_table_size;
        while (buckets < s.live.size())
            buckets *= 2;
        s.table = build_sh_table(tasks, buckets);
        break;
    }
    case scheduler_kind::rr:
    case scheduler_kind::wrr:
    case scheduler_kind::lc:
    case scheduler_kind::wlc:
        break;
    }
    // Slots hold keys, so a pick is one load.
    for (uint32_t &slot : s.table)
        if (slot != no_task) slot = s.keys[slot];
    s.table_size = static_cast<uint32_t>(s.table.size());
    if (s.table_size != 0) s.table_fastmod = fastmod_constant(s.table_size);
    return s;
}

} // namespace meshgate::dataplane
