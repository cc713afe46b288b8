// libFuzzer target: arbitrary bytes as a datagram from a peer gateway through cluster::decode(),
// without a key and with a fixed one. A datagram is a message or a wire_error, never a crash or
// an out-of-bounds read. A message that decodes is in bounds, so it encodes again: to the same
// bytes (the format has one encoding per message; without a key an authenticated one loses its
// flag and MAC), which decode to the same fields. A message accepted under the key is accepted
// without it too. MESHGATE_FUZZ_SEED_DIR, when set, receives seeds: valid datagrams of each kind,
// with and without the key, encoded by the codec itself.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <tuple>

#include "control/cluster/wire.h"

namespace
{

using namespace meshgate::cluster;
using bytes = std::vector<uint8_t>;

[[noreturn]] void fail(const std::string &why)
{
    std::fprintf(stderr, "cluster_fuzz: %s\n", why.c_str());
    std::abort();
}

const group_key fixed_key = [] {
    const std::string secret = "cluster_fuzz's fixed group secret";
    return derive_key({reinterpret_cast<const uint8_t *>(secret.data()), secret.size()});
}();

bool same(const connection_record &r, const connection_record &s)
{
    return std::tie(r.kind, r.proto, r.state, r.client_ip, r.published_ip, r.client_port,
                    r.published_port, r.task_ip, r.target_port, r.snat_ip, r.snat_port,
                    r.idle_seconds, r.service, r.owner) ==
           std::tie(s.kind, s.proto, s.state, s.client_ip, s.published_ip, s.client_port,
                    s.published_port, s.task_ip, s.target_port, s.snat_ip, s.snat_port,
                    s.idle_seconds, s.service, s.owner);
}

bool same(const heartbeat &h, const heartbeat &g)
{
    return std::tie(h.state, h.wants_bulk, h.bulk_done_for, h.underlay, h.overlay_mac,
                    h.snat_addresses) == std::tie(g.state, g.wants_bulk, g.bulk_done_for,
                                                  g.underlay, g.overlay_mac, g.snat_addresses);
}

bool same(const connections &c, const connections &d)
{
    if (c.bulk_last != d.bulk_last || c.bulk_for != d.bulk_for) return false;
    if (c.records.size() != d.records.size()) return false;
    for (size_t i = 0; i < c.records.size(); ++i)
        if (!same(c.records[i], d.records[i])) return false;
    return true;
}

bool same(const message &a, const message &b)
{
    if (std::tie(a.head.kind, a.head.sender, a.head.incarnation, a.head.sequence) !=
        std::tie(b.head.kind, b.head.sender, b.head.incarnation, b.head.sequence))
        return false;
    if (a.body.index() != b.body.index()) return false;
    if (const auto *h = std::get_if<heartbeat>(&a.body))
        return same(*h, std::get<heartbeat>(b.body));
    return same(std::get<connections>(a.body), std::get<connections>(b.body));
}

constexpr size_t flags_at = 6;               // the header's flags byte (wire.h)
constexpr uint8_t flag_authenticated = 0x01; // its bit 0

// What encode() must give again for M decoded from INPUT with KEY.
bytes canonical(std::span<const uint8_t> input, const group_key *key)
{
    const bool authenticated = (input[flags_at] & flag_authenticated) != 0;
    if (key != nullptr || !authenticated) return {input.begin(), input.end()};
    bytes b(input.begin(), input.end() - mac_bytes);
    b[flags_at] &= uint8_t(~flag_authenticated);
    return b;
}

// M, decoded from INPUT with KEY, encodes to the same bytes and decodes to the same fields.
void check_round_trip(const message &m, std::span<const uint8_t> input, const group_key *key)
{
    const bytes again = encode(m, key);
    if (again != canonical(input, key)) fail("encode(decode(x)) differs from x");
    auto r = decode(again, key);
    if (!std::holds_alternative<message>(r)) fail("a re-encoded message does not decode");
    if (!same(std::get<message>(r), m)) fail("a re-encoded message decodes to other fields");
}

message seed_heartbeat()
{
    heartbeat h;
    h.state = member_state::serving;
    h.wants_bulk = true;
    h.bulk_done_for = 1'700'000'000'000'000'000;
    h.underlay = 0x0132a8c0;
    h.overlay_mac = {0x02, 0x42, 0x0a, 0xff, 0x00, 0x02};
    h.snat_addresses = {0x0200ff0a, 0x0300ff0a};
    message m;
    m.head = {message_kind::heartbeat, "gw-a", 1'700'000'000'000'000'001, 7};
    m.body = h;
    return m;
}

message seed_connections(size_t n)
{
    connections c;
    c.bulk_last = n > 1;
    c.bulk_for = n > 1 ? 1'700'000'000'000'000'000 : 0;
    for (size_t i = 0; i < n; ++i) {
        connection_record r;
        r.kind = i % 3 == 2 ? record_kind::gone : record_kind::upsert;
        r.proto = i % 2 == 0 ? 6 : 17;
        r.state = i % 2 == 0 ? 3 : 1;
        r.client_ip = 0x0900126c + uint32_t(i);
        r.published_ip = 0x0a7100cb;
        r.client_port = uint16_t(0x409c + i);
        r.published_port = 0xbb01;
        r.task_ip = 0x0501000a;
        r.target_port = 0xfb20;
        r.snat_ip = 0x0200ff0a;
        r.snat_port = uint16_t(0x48ee + i);
        r.idle_seconds = uint32_t(i * 10);
        r.service = i % 2 == 0 ? "web" : "dns";
        r.owner = "gw-b";
        c.records.push_back(r);
    }
    message m;
    m.head = {message_kind::connections, "gw-b", 1'700'000'000'000'000'002, 8 + n};
    m.body = c;
    return m;
}

void write_seeds(const std::string &dir)
{
    const std::vector<std::pair<std::string, message>> seeds = {
        {"heartbeat", seed_heartbeat()},
        {"connections-0", seed_connections(0)},
        {"connections-1", seed_connections(1)},
        {"connections-5", seed_connections(5)},
    };
    for (const auto &[name, m] : seeds)
        for (const group_key *key : {static_cast<const group_key *>(nullptr), &fixed_key}) {
            const bytes b = encode(m, key);
            std::ofstream out(dir + "/" + name + (key != nullptr ? "-key" : ""),
                              std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char *>(b.data()), std::streamsize(b.size()));
            if (!out) fail("cannot write seeds into " + dir);
        }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    if (const char *dir = std::getenv("MESHGATE_FUZZ_SEED_DIR")) write_seeds(dir);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::span<const uint8_t> input(data, size);
    auto plain = decode(input, nullptr);
    auto keyed = decode(input, &fixed_key);
    if (const auto *m = std::get_if<message>(&plain)) check_round_trip(*m, input, nullptr);
    if (const auto *m = std::get_if<message>(&keyed)) {
        check_round_trip(*m, input, &fixed_key);
        if (!std::holds_alternative<message>(plain) || !same(*m, std::get<message>(plain)))
            fail("a message accepted under the key is read otherwise without it");
    }
    return 0;
}
