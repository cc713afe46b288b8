#include "control/cluster/wire.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dataplane/conntrack.h"
#include "dataplane/proxy_kind.h"
#include "dataplane/tcp_state.h"

namespace meshgate::cluster
{

namespace
{

constexpr std::array<uint8_t, 4> magic = {'M', 'G', 'C', 'L'};
constexpr uint8_t flag_authenticated = 0x01; // header flags
constexpr uint8_t flag_wants_bulk = 0x01;    // heartbeat flags
constexpr uint8_t flag_bulk_last = 0x01;     // connections flags
constexpr size_t prefix_bytes = 8;           // magic, version, kind, flags, reserved
constexpr size_t version_at = 4, kind_at = 5, flags_at = 6, reserved_at = 7;
constexpr size_t header_fixed = prefix_bytes + 1 + 8 + 8; // + the sender's name
constexpr size_t connections_fixed = 1 + 8 + 1;           // flags, bulk_for, count
constexpr size_t record_fixed = 4 + 12 + 12 + 4 + 4 + 6;  // + the service's and owner's names
constexpr size_t max_records = 255;                       // count is a u8
constexpr uint8_t ipproto_tcp = 6, ipproto_udp = 17;
constexpr uint8_t tcp_states = 9, udp_states = 2;

// The wire's state bounds are the format's: a new dataplane state needs a new wire version.
static_assert(tcp_states == dataplane::tcp_state_count);
static_assert(udp_states == uint8_t(dataplane::udp_state::replied) + 1);

bool valid_name(size_t length)
{
    return length >= 1 && length <= max_name;
}

bool valid_state(uint8_t proto, uint8_t state)
{
    if (proto == ipproto_tcp) return state < tcp_states;
    if (proto == ipproto_udp) return state < udp_states;
    return false;
}

bool valid_member_state(uint8_t s)
{
    return s >= uint8_t(member_state::joining) && s <= uint8_t(member_state::leaving);
}

bool valid_record_kind(uint8_t k)
{
    return k == uint8_t(record_kind::upsert) || k == uint8_t(record_kind::gone);
}

// A cookie's translation: TCP only, and nothing without a cookie (every window scale nibble,
// 0..14 or 15 for none, is one).
bool valid_cookie(const connection_record &r)
{
    return r.cookie ? r.proto == ipproto_tcp : r.wscales == 0 && r.seq_offset == 0;
}

// ---- encoding ----

class writer
{
  public:
    writer() { bytes_.reserve(max_datagram); }
    void u8(uint8_t v) { bytes_.push_back(v); }
    void u64(uint64_t v) { big_endian(v, 8); }
    void u32(uint32_t v) { big_endian(v, 4); }
    // Already in network order: its bytes as they lie in memory.
    template <typename T>
    void raw(const T &v)
    {
        const auto *p = reinterpret_cast<const uint8_t *>(&v);
        bytes_.insert(bytes_.end(), p, p + sizeof(T));
    }
    void name(const std::string &s)
    {
        u8(uint8_t(s.size()));
        bytes_.insert(bytes_.end(), s.begin(), s.end());
    }
    std::vector<uint8_t> &bytes() { return bytes_; }

  private:
    void big_endian(uint64_t v, int n)
    {
        for (int shift = 8 * (n - 1); shift >= 0; shift -= 8)
            u8(uint8_t(v >> shift));
    }

    std::vector<uint8_t> bytes_;
};

void require(bool ok, const char *what)
{
    if (!ok) throw std::invalid_argument(std::string("cluster message: ") + what);
}

void check(const heartbeat &h)
{
    require(valid_member_state(uint8_t(h.state)), "member state out of range");
    require(!h.snat_addresses.empty() && h.snat_addresses.size() <= max_snat,
            "SNAT addresses not within 1..max_snat");
}

void check(const connection_record &r)
{
    require(valid_record_kind(uint8_t(r.kind)), "record kind out of range");
    require(valid_state(r.proto, r.state), "record proto or state out of range");
    require(valid_cookie(r), "record cookie translation out of range");
    require(valid_name(r.service.size()) && valid_name(r.owner.size()),
            "record service or owner name not within 1..max_name bytes");
}

void check(const connections &c)
{
    require(c.records.size() <= max_records, "more than 255 records");
    for (const connection_record &r : c.records)
        check(r);
}

void put(writer &w, const heartbeat &h)
{
    w.u8(uint8_t(h.state));
    w.u8(h.wants_bulk ? flag_wants_bulk : 0);
    w.u64(h.bulk_done_for);
    w.raw(h.underlay);
    w.raw(h.overlay_mac);
    w.raw(h.underlay_mac);
    w.u8(uint8_t(h.snat_addresses.size()));
    for (uint32_t a : h.snat_addresses)
        w.raw(a);
}

void put(writer &w, const connection_record &r)
{
    w.u8(uint8_t(r.kind));
    w.u8(r.proto);
    w.u8(r.state);
    w.u8(r.proxy_version);
    w.raw(r.client_ip);
    w.raw(r.published_ip);
    w.raw(r.client_port);
    w.raw(r.published_port);
    w.raw(r.task_ip);
    w.raw(r.target_port);
    w.raw(r.snat_ip);
    w.raw(r.snat_port);
    w.u32(r.idle_seconds);
    w.u32(r.proxy_start);
    w.u8(r.cookie ? 1 : 0);
    w.u8(r.wscales);
    w.u32(r.seq_offset);
    w.name(r.service);
    w.name(r.owner);
}

void put(writer &w, const connections &c)
{
    w.u8(c.bulk_last ? flag_bulk_last : 0);
    w.u64(c.bulk_for);
    w.u8(uint8_t(c.records.size()));
    for (const connection_record &r : c.records)
        put(w, r);
}

using mac = std::array<uint8_t, mac_bytes>;

// HMAC-SHA256 of DATA under KEY; false only if libcrypto fails.
bool compute_mac(const group_key &key, std::span<const uint8_t> data, mac &out)
{
    unsigned int length = 0;
    return HMAC(EVP_sha256(), key.data(), int(key.size()), data.data(), data.size(), out.data(),
                &length) != nullptr &&
           length == out.size();
}

// ---- decoding ----

// Reads forward through a datagram; the first failure sticks, and every read after it yields
// zeros without touching memory, so that a parse can check once per step.
class reader
{
  public:
    explicit reader(std::span<const uint8_t> bytes) : rest_(bytes) {}

    bool failed() const { return error_.has_value(); }
    wire_error error() const { return *error_; }
    void fail(wire_error e)
    {
        if (!error_) error_ = e;
    }
    bool at_end() const { return rest_.empty(); }

    uint8_t u8()
    {
        uint8_t v = 0;
        take(&v, 1);
        return v;
    }
    uint64_t u64() { return big_endian(8); }
    uint32_t u32() { return uint32_t(big_endian(4)); }
    // Network order kept: the bytes as they come.
    template <typename T>
    T raw()
    {
        T v{};
        take(reinterpret_cast<uint8_t *>(&v), sizeof(T));
        return v;
    }
    // A length byte (checked to 1..max_name before use) and that many bytes.
    std::string name()
    {
        const uint8_t length = u8();
        if (failed()) return {};
        if (!valid_name(length)) {
            fail(wire_error::bad_field);
            return {};
        }
        std::string s(length, '\0');
        take(reinterpret_cast<uint8_t *>(s.data()), length);
        return s;
    }

  private:
    void take(uint8_t *out, size_t n)
    {
        if (failed()) return;
        if (rest_.size() < n) {
            fail(wire_error::truncated);
            return;
        }
        std::memcpy(out, rest_.data(), n);
        rest_ = rest_.subspan(n);
    }
    uint64_t big_endian(size_t n)
    {
        std::array<uint8_t, 8> b{};
        take(b.data(), n);
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i)
            v = v << 8 | b[i];
        return v;
    }

    std::span<const uint8_t> rest_;
    std::optional<wire_error> error_;
};

// A byte that must be 0 or hold only KNOWN bits.
void expect_bits(reader &r, uint8_t value, uint8_t known)
{
    if ((value & ~known) != 0) r.fail(wire_error::bad_field);
}

heartbeat read_heartbeat(reader &r)
{
    heartbeat h;
    const uint8_t state = r.u8();
    if (!valid_member_state(state)) r.fail(wire_error::bad_field);
    h.state = member_state(state);
    const uint8_t flags = r.u8();
    expect_bits(r, flags, flag_wants_bulk);
    h.wants_bulk = (flags & flag_wants_bulk) != 0;
    h.bulk_done_for = r.u64();
    h.underlay = r.raw<uint32_t>();
    h.overlay_mac = r.raw<std::array<uint8_t, 6>>();
    h.underlay_mac = r.raw<std::array<uint8_t, 6>>();
    const uint8_t n_snat = r.u8();
    if (n_snat < 1 || n_snat > max_snat) r.fail(wire_error::bad_field);
    for (uint8_t i = 0; i < n_snat && !r.failed(); ++i)
        h.snat_addresses.push_back(r.raw<uint32_t>());
    return h;
}

connection_record read_record(reader &r)
{
    connection_record c;
    const uint8_t kind = r.u8();
    if (!valid_record_kind(kind)) r.fail(wire_error::bad_field);
    c.kind = record_kind(kind);
    c.proto = r.u8();
    c.state = r.u8();
    if (!valid_state(c.proto, c.state)) r.fail(wire_error::bad_field);
    c.proxy_version = r.u8();
    if (c.proxy_version > uint8_t(dataplane::proxy_protocol::v2) ||
        (c.proxy_version != 0 && c.proto != 6))
        r.fail(wire_error::bad_field);
    c.client_ip = r.raw<uint32_t>();
    c.published_ip = r.raw<uint32_t>();
    c.client_port = r.raw<uint16_t>();
    c.published_port = r.raw<uint16_t>();
    c.task_ip = r.raw<uint32_t>();
    c.target_port = r.raw<uint16_t>();
    c.snat_ip = r.raw<uint32_t>();
    c.snat_port = r.raw<uint16_t>();
    c.idle_seconds = r.u32();
    c.proxy_start = r.u32();
    const uint8_t cookie = r.u8();
    c.cookie = cookie == 1;
    c.wscales = r.u8();
    c.seq_offset = r.u32();
    if (cookie > 1 || !valid_cookie(c)) r.fail(wire_error::bad_field);
    c.service = r.name();
    c.owner = r.name();
    return c;
}

connections read_connections(reader &r)
{
    connections c;
    const uint8_t flags = r.u8();
    expect_bits(r, flags, flag_bulk_last);
    c.bulk_last = (flags & flag_bulk_last) != 0;
    c.bulk_for = r.u64();
    const uint8_t count = r.u8();
    for (uint8_t i = 0; i < count && !r.failed(); ++i)
        c.records.push_back(read_record(r));
    return c;
}

// The message in BYTES (the datagram without its MAC), its MAC already checked if any.
std::variant<message, wire_error> parse(std::span<const uint8_t> bytes)
{
    reader r(bytes.subspan(prefix_bytes));
    const uint8_t kind = bytes[kind_at], flags = bytes[flags_at], reserved = bytes[reserved_at];
    if (kind != uint8_t(message_kind::heartbeat) && kind != uint8_t(message_kind::connections))
        return wire_error::bad_kind;
    if ((flags & ~flag_authenticated) != 0 || reserved != 0) return wire_error::bad_field;
    message m;
    m.head.kind = message_kind(kind);
    m.head.sender = r.name();
    m.head.incarnation = r.u64();
    m.head.sequence = r.u64();
    if (m.head.kind == message_kind::heartbeat)
        m.body = read_heartbeat(r);
    else
        m.body = read_connections(r);
    if (r.failed()) return r.error();
    if (!r.at_end()) return wire_error::trailing;
    return m;
}

// Magic and version: whether the rest can be read as this format at all.
std::optional<wire_error> check_prefix(std::span<const uint8_t> d)
{
    const size_t have = std::min(d.size(), magic.size());
    if (!std::equal(d.begin(), d.begin() + have, magic.begin())) return wire_error::bad_magic;
    if (d.size() < prefix_bytes) return wire_error::truncated;
    if (d[version_at] != wire_version) return wire_error::bad_version;
    return std::nullopt;
}

} // namespace

group_key derive_key(std::span<const uint8_t> secret)
{
    // min_secret is the configuration's rule (it reports it on key_file); here any bytes hash.
    group_key key{};
    unsigned int length = 0;
    if (EVP_Digest(secret.data(), secret.size(), key.data(), &length, EVP_sha256(), nullptr) != 1 ||
        length != key.size())
        throw std::runtime_error("cluster: SHA-256 failed in libcrypto");
    return key;
}

std::vector<uint8_t> encode(const message &m, const group_key *key)
{
    require(valid_name(m.head.sender.size()), "sender name not within 1..max_name bytes");
    const bool is_heartbeat = std::holds_alternative<heartbeat>(m.body);
    require(is_heartbeat == (m.head.kind == message_kind::heartbeat),
            "head.kind does not match the body");
    std::visit([](const auto &body) { check(body); }, m.body);

    writer w;
    w.raw(magic);
    w.u8(wire_version);
    w.u8(uint8_t(m.head.kind));
    w.u8(key != nullptr ? flag_authenticated : 0);
    w.u8(0);
    w.name(m.head.sender);
    w.u64(m.head.incarnation);
    w.u64(m.head.sequence);
    std::visit([&w](const auto &body) { put(w, body); }, m.body);
    if (key != nullptr) {
        mac tag{};
        if (!compute_mac(*key, w.bytes(), tag))
            throw std::runtime_error("cluster: HMAC-SHA256 failed in libcrypto");
        w.bytes().insert(w.bytes().end(), tag.begin(), tag.end());
    }
    require(w.bytes().size() <= max_datagram, "message larger than max_datagram");
    return std::move(w.bytes());
}

size_t record_size(const connection_record &record)
{
    return record_fixed + 1 + record.service.size() + 1 + record.owner.size();
}

size_t connections_overhead(std::string_view sender, bool authenticated)
{
    return header_fixed + sender.size() + connections_fixed + (authenticated ? mac_bytes : 0);
}

// Oversized datagrams are bad_field: the datagram's length is a value out of its bound (they
// cannot come from encode(), so they are not a cut message).
std::variant<message, wire_error> decode(std::span<const uint8_t> datagram, const group_key *key)
{
    if (datagram.size() > max_datagram) return wire_error::bad_field;
    if (auto e = check_prefix(datagram)) return *e;
    const bool authenticated = (datagram[flags_at] & flag_authenticated) != 0;
    if (key != nullptr && !authenticated) return wire_error::unauthenticated;
    if (!authenticated) return parse(datagram);
    if (datagram.size() < prefix_bytes + mac_bytes) return wire_error::truncated;
    const auto body = datagram.first(datagram.size() - mac_bytes);
    if (key != nullptr) {
        // Before anything of the body is read: forged bytes are never parsed.
        mac tag{};
        if (!compute_mac(*key, body, tag) ||
            CRYPTO_memcmp(tag.data(), datagram.last(mac_bytes).data(), mac_bytes) != 0)
            return wire_error::bad_mac;
    }
    return parse(body);
}

bool replay_window::accept(uint64_t incarnation, uint64_t sequence)
{
    const bool newer = !any_ || incarnation > incarnation_;
    if (!newer && (incarnation != incarnation_ || sequence <= sequence_)) return false;
    incarnation_ = incarnation;
    sequence_ = sequence;
    any_ = true;
    return true;
}

} // namespace meshgate::cluster
