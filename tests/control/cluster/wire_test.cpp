// The cluster's wire codec (control/cluster/wire.h): messages round-trip with and without the
// group's key, record batches sized by record_size() fit a datagram, every malformed, cut,
// forged or replayed datagram is refused with its reason, and the key is SHA-256 of the secret.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>
#include <string>
#include <tuple>

#include "control/cluster/wire.h"

namespace
{

using namespace meshgate::cluster;
using bytes = std::vector<uint8_t>;

group_key key_of(std::string_view secret)
{
    return derive_key({reinterpret_cast<const uint8_t *>(secret.data()), secret.size()});
}

const group_key key_a = key_of("the group's secret, 32 bytes ...");
const group_key key_b = key_of("another group's secret, 32 bytes");

message heartbeat_message()
{
    heartbeat h;
    h.state = member_state::serving;
    h.wants_bulk = true;
    h.bulk_done_for = 0x1122334455667788;
    h.underlay = htonl(0xc0a83201);
    h.overlay_mac = {0x02, 0x42, 0x0a, 0xff, 0x00, 0x02};
    h.underlay_mac = {0x02, 0x00, 0x00, 0x00, 0x0b, 0x0b};
    h.snat_addresses = {htonl(0x0aff0002), htonl(0x0aff0003)};
    return {{message_kind::heartbeat, "gw-a", 1'700'000'000'000'000'000, 42}, h};
}

connection_record record(uint8_t proto, uint8_t state, std::string service, std::string owner)
{
    connection_record r;
    r.kind = record_kind::upsert;
    r.proto = proto;
    r.state = state;
    r.client_ip = htonl(0xc6120009);
    r.published_ip = htonl(0xcb00710a);
    r.client_port = htons(40000);
    r.published_port = htons(443);
    r.task_ip = htonl(0x0a000105);
    r.target_port = htons(8443);
    r.snat_ip = htonl(0x0aff0002);
    r.snat_port = htons(61000);
    r.idle_seconds = 17;
    r.service = std::move(service);
    r.owner = std::move(owner);
    return r;
}

message connections_message()
{
    connections c;
    c.bulk_last = true;
    c.bulk_for = 1'699'999'999'000'000'000;
    c.records = {record(6, 3, "web", "gw-a"), record(17, 1, "dns", "gw-b")};
    c.records[1].kind = record_kind::gone;
    c.records[0].proxy_version = 2; // a TCP connection whose task gets a PROXY v2 header
    c.records[0].proxy_start = 0xfffffff1;
    c.records[0].cookie = true; // opened by a SYN cookie: the task's numbers move
    c.records[0].wscales = 7 << 4 | 15;
    c.records[0].seq_offset = 0x89abcdef;
    return {{message_kind::connections, "gw-a", 1'700'000'000'000'000'000, 43}, c};
}

void expect_same(const message &a, const message &b)
{
    EXPECT_EQ(a.head.kind, b.head.kind);
    EXPECT_EQ(a.head.sender, b.head.sender);
    EXPECT_EQ(a.head.incarnation, b.head.incarnation);
    EXPECT_EQ(a.head.sequence, b.head.sequence);
    ASSERT_EQ(a.body.index(), b.body.index());
    if (const auto *h = std::get_if<heartbeat>(&a.body)) {
        const auto &g = std::get<heartbeat>(b.body);
        EXPECT_EQ(std::tie(h->state, h->wants_bulk, h->bulk_done_for, h->underlay),
                  std::tie(g.state, g.wants_bulk, g.bulk_done_for, g.underlay));
        EXPECT_EQ(h->overlay_mac, g.overlay_mac);
        EXPECT_EQ(h->underlay_mac, g.underlay_mac);
        EXPECT_EQ(h->snat_addresses, g.snat_addresses);
        return;
    }
    const auto &c = std::get<connections>(a.body), &d = std::get<connections>(b.body);
    EXPECT_EQ(c.bulk_last, d.bulk_last);
    EXPECT_EQ(c.bulk_for, d.bulk_for);
    ASSERT_EQ(c.records.size(), d.records.size());
    for (size_t i = 0; i < c.records.size(); ++i) {
        const connection_record &r = c.records[i], &s = d.records[i];
        EXPECT_EQ(std::tie(r.kind, r.proto, r.state, r.client_ip, r.published_ip, r.client_port,
                           r.published_port, r.task_ip, r.target_port, r.snat_ip, r.snat_port,
                           r.idle_seconds, r.proxy_version, r.proxy_start, r.cookie, r.wscales,
                           r.seq_offset, r.service, r.owner),
                  std::tie(s.kind, s.proto, s.state, s.client_ip, s.published_ip, s.client_port,
                           s.published_port, s.task_ip, s.target_port, s.snat_ip, s.snat_port,
                           s.idle_seconds, s.proxy_version, s.proxy_start, s.cookie, s.wscales,
                           s.seq_offset, s.service, s.owner));
    }
}

// The error decode() gives, or a failure if it accepted the datagram.
testing::AssertionResult refused_as(const bytes &datagram, const group_key *key, wire_error want)
{
    auto r = decode(datagram, key);
    if (std::holds_alternative<message>(r)) return testing::AssertionFailure() << "accepted";
    wire_error got = std::get<wire_error>(r);
    if (got == want) return testing::AssertionSuccess();
    return testing::AssertionFailure() << "refused as " << wire_error_names[size_t(got)] << ", not "
                                       << wire_error_names[size_t(want)];
}

// BODY (a datagram without its MAC, authenticated flag set) with its HMAC under KEY appended.
bytes signed_with(bytes body, const group_key &key)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), int(key.size()), body.data(), body.size(), mac, &length);
    body.insert(body.end(), mac, mac + length);
    return body;
}

// An authenticated datagram changed at OFFSET (of its bytes before the MAC) and signed again.
bytes patched_and_signed(const message &m, size_t offset, uint8_t value)
{
    bytes b = encode(m, &key_a);
    b.resize(b.size() - mac_bytes);
    b.at(offset) = value;
    return signed_with(b, key_a);
}

bytes patched(const message &m, size_t offset, uint8_t value)
{
    bytes b = encode(m, nullptr);
    b.at(offset) = value;
    return b;
}

// Offsets in a datagram from "gw-a": the header takes 8 + 1 + 4 + 16 bytes.
constexpr size_t body_at = 29;
constexpr size_t record_at = body_at + 10; // the first record of a connections message

TEST(WireRoundTrip, HeartbeatWithAndWithoutKey)
{
    for (const group_key *key : {static_cast<const group_key *>(nullptr), &key_a}) {
        auto r = decode(encode(heartbeat_message(), key), key);
        ASSERT_TRUE(std::holds_alternative<message>(r));
        expect_same(std::get<message>(r), heartbeat_message());
    }
}

TEST(WireRoundTrip, ConnectionsWithAndWithoutKey)
{
    for (const group_key *key : {static_cast<const group_key *>(nullptr), &key_a}) {
        auto r = decode(encode(connections_message(), key), key);
        ASSERT_TRUE(std::holds_alternative<message>(r));
        expect_same(std::get<message>(r), connections_message());
    }
}

TEST(WireRoundTrip, NoRecords)
{
    message m = connections_message();
    std::get<connections>(m.body).records.clear();
    auto r = decode(encode(m, nullptr), nullptr);
    ASSERT_TRUE(std::holds_alternative<message>(r));
    expect_same(std::get<message>(r), m);
}

TEST(WireRoundTrip, WithoutKeyAnAuthenticatedMessageIsReadAndItsMacIgnored)
{
    auto r = decode(encode(connections_message(), &key_b), nullptr);
    ASSERT_TRUE(std::holds_alternative<message>(r));
    expect_same(std::get<message>(r), connections_message());
}

// The layout of wire.h's comment, byte by byte: integers big-endian, addresses as they are.
TEST(WireLayout, HeartbeatBytes)
{
    heartbeat h;
    h.state = member_state::draining;
    h.wants_bulk = true;
    h.bulk_done_for = 0x10;
    h.underlay = htonl(0xc0a83201);
    h.overlay_mac = {0x02, 0, 0, 0, 0, 0x20};
    h.underlay_mac = {0x02, 0, 0, 0, 0x0b, 0x0b};
    h.snat_addresses = {htonl(0x0aff0002)};
    message m;
    m.head = {message_kind::heartbeat, "a", 0x0102030405060708, 9};
    m.body = h;
    const bytes want = {'M',  'G', 'C', 'L', 3, 1,    0,    0,    1,    'a',  1, 2, 3, 4, 5,
                        6,    7,   8,   0,   0, 0,    0,    0,    0,    0,    9, 3, 1, 0, 0,
                        0,    0,   0,   0,   0, 0x10, 0xc0, 0xa8, 0x32, 1,    2, 0, 0, 0, 0,
                        0x20, 2,   0,   0,   0, 0x0b, 0x0b, 1,    0x0a, 0xff, 0, 2};
    EXPECT_EQ(encode(m, nullptr), want);
    bytes authenticated = want;
    authenticated[6] = 1;
    EXPECT_EQ(encode(m, &key_a), signed_with(authenticated, key_a));
}

TEST(WireSize, OverheadAndRecordSizesAreExact)
{
    const message m = connections_message();
    const auto &records = std::get<connections>(m.body).records;
    for (bool authenticated : {false, true}) {
        size_t want = connections_overhead(m.head.sender, authenticated);
        for (const connection_record &r : records)
            want += record_size(r);
        EXPECT_EQ(encode(m, authenticated ? &key_a : nullptr).size(), want);
    }
}

TEST(WireSize, ABatchFillingMaxDatagramEncodesWithinIt)
{
    message m = connections_message();
    auto &records = std::get<connections>(m.body).records;
    records.clear();
    const std::string longest(max_name, 'n');
    size_t size = connections_overhead(m.head.sender, true);
    // The last record takes exactly what is left.
    connection_record last = record(17, 0, "s", "o");
    while (size + record_size(record(6, 1, longest, longest)) + record_size(last) <= max_datagram) {
        records.push_back(record(6, 1, longest, longest));
        size += record_size(records.back());
    }
    ASSERT_LE(size + record_size(last), max_datagram);
    if (const size_t over = max_datagram - size - record_size(last); over > 2 * (max_name - 1)) {
        // more than the last record's names can take: a middle record takes it but for them
        connection_record middle = record(6, 1, "m", "m");
        const size_t extra = over - record_size(middle);
        middle.service += std::string(extra / 2, 'm');
        middle.owner += std::string(extra - extra / 2, 'm');
        records.push_back(middle);
        size += record_size(middle);
    }
    const size_t left = max_datagram - size - record_size(last);
    last.service += std::string(left / 2, 's');
    last.owner += std::string(left - left / 2, 'o');
    records.push_back(last);
    size += record_size(last);
    ASSERT_EQ(size, max_datagram);

    const bytes b = encode(m, &key_a);
    EXPECT_EQ(b.size(), max_datagram);
    auto r = decode(b, &key_a);
    ASSERT_TRUE(std::holds_alternative<message>(r));
    expect_same(std::get<message>(r), m);

    records.back().owner += 'o'; // one byte over
    EXPECT_THROW(encode(m, &key_a), std::invalid_argument);
}

TEST(WireEncode, RefusesWhatIsOutOfBounds)
{
    std::vector<message> bad;
    auto heartbeat_with = [&](auto change) {
        message m = heartbeat_message();
        change(m, std::get<heartbeat>(m.body));
        bad.push_back(m);
    };
    auto record_with = [&](auto change) {
        message m = connections_message();
        change(std::get<connections>(m.body).records[0]);
        bad.push_back(m);
    };
    heartbeat_with([](message &m, heartbeat &) { m.head.sender.clear(); });
    heartbeat_with([](message &m, heartbeat &) { m.head.sender.assign(max_name + 1, 'g'); });
    heartbeat_with([](message &m, heartbeat &) { m.head.kind = message_kind::connections; });
    heartbeat_with([](message &, heartbeat &h) { h.state = member_state(0); });
    heartbeat_with([](message &, heartbeat &h) { h.state = member_state(5); });
    heartbeat_with([](message &, heartbeat &h) { h.snat_addresses.clear(); });
    heartbeat_with([](message &, heartbeat &h) { h.snat_addresses.resize(max_snat + 1); });
    record_with([](connection_record &r) { r.kind = record_kind(3); });
    record_with([](connection_record &r) { r.proto = 1; });
    record_with([](connection_record &r) { r.state = 9; });
    record_with([](connection_record &r) { r.proto = 17, r.state = 2; });
    record_with([](connection_record &r) { r.service.clear(); });
    record_with([](connection_record &r) { r.owner.assign(max_name + 1, 'o'); });
    record_with([](connection_record &r) { r.cookie = false; }); // a translation without a cookie
    record_with([](connection_record &r) { r.proto = 17, r.state = 1, r.proxy_version = 0; });
    bad.push_back(connections_message());
    std::get<connections>(bad.back().body).records.resize(256, record(6, 1, "s", "o"));
    for (const message &m : bad)
        EXPECT_THROW(encode(m, nullptr), std::invalid_argument);
}

TEST(WireDecode, EveryCutOfAMessageIsRefused)
{
    for (const message &m : {heartbeat_message(), connections_message()})
        for (const group_key *sender : {static_cast<const group_key *>(nullptr), &key_a}) {
            const bytes whole = encode(m, sender);
            for (size_t size = 0; size < whole.size(); ++size) {
                const bytes cut(whole.begin(), whole.begin() + ptrdiff_t(size));
                for (const group_key *key : {static_cast<const group_key *>(nullptr), &key_a})
                    EXPECT_TRUE(std::holds_alternative<wire_error>(decode(cut, key)))
                        << "cut at " << size;
            }
        }
    const bytes whole = encode(connections_message(), nullptr);
    EXPECT_TRUE(refused_as(bytes(whole.begin(), whole.end() - 1), nullptr, wire_error::truncated));
    EXPECT_TRUE(
        refused_as(bytes(whole.begin(), whole.begin() + 7), nullptr, wire_error::truncated));
    EXPECT_TRUE(refused_as({}, nullptr, wire_error::truncated));
    EXPECT_TRUE(refused_as(patched(connections_message(), body_at + 9, 3), nullptr,
                           wire_error::truncated)); // a count above the records there
    // An authenticated datagram shorter than its prefix and a MAC.
    const bytes signed_whole = encode(heartbeat_message(), &key_a);
    EXPECT_TRUE(refused_as(bytes(signed_whole.begin(), signed_whole.begin() + 39), &key_a,
                           wire_error::truncated));
}

TEST(WireDecode, AnyChangedByteOfAnAuthenticatedMessageIsRefused)
{
    for (const message &m : {heartbeat_message(), connections_message()}) {
        const bytes whole = encode(m, &key_a);
        for (size_t i = 0; i < whole.size(); ++i)
            for (uint8_t flip : {0x01, 0x80, 0xff}) {
                bytes b = whole;
                b[i] ^= flip;
                EXPECT_TRUE(std::holds_alternative<wire_error>(decode(b, &key_a)))
                    << "byte " << i << " ^ " << int(flip);
            }
        bytes body = whole;
        body[body_at + 1] ^= 0x01; // a flag of the body, where only the MAC notices
        EXPECT_TRUE(refused_as(body, &key_a, wire_error::bad_mac));
        bytes tag = whole;
        tag.back() ^= 0x01;
        EXPECT_TRUE(refused_as(tag, &key_a, wire_error::bad_mac));
    }
}

TEST(WireDecode, AnotherKeyIsABadMac)
{
    EXPECT_TRUE(refused_as(encode(heartbeat_message(), &key_b), &key_a, wire_error::bad_mac));
    EXPECT_TRUE(refused_as(encode(connections_message(), &key_b), &key_a, wire_error::bad_mac));
}

TEST(WireDecode, WithAKeyAMessageWithoutMacIsUnauthenticated)
{
    EXPECT_TRUE(
        refused_as(encode(heartbeat_message(), nullptr), &key_a, wire_error::unauthenticated));
    bytes stripped = encode(connections_message(), &key_a);
    stripped.resize(stripped.size() - mac_bytes);
    stripped[6] = 0; // the flag cleared, the MAC cut off
    EXPECT_TRUE(refused_as(stripped, &key_a, wire_error::unauthenticated));
}

TEST(WireDecode, PrefixErrors)
{
    const message m = heartbeat_message();
    EXPECT_TRUE(refused_as(patched(m, 0, 'X'), nullptr, wire_error::bad_magic));
    EXPECT_TRUE(refused_as(patched(m, 3, 'X'), &key_a, wire_error::bad_magic));
    EXPECT_TRUE(refused_as({'M', 'X'}, nullptr, wire_error::bad_magic));
    EXPECT_TRUE(refused_as({'M', 'G'}, nullptr, wire_error::truncated));
    EXPECT_TRUE(refused_as(patched(m, 4, 1), nullptr, wire_error::bad_version)); // before PROXY
    EXPECT_TRUE(refused_as(patched(m, 4, 2), nullptr, wire_error::bad_version)); // before cookies
    EXPECT_TRUE(refused_as(patched(m, 4, 4), nullptr, wire_error::bad_version));
    EXPECT_TRUE(refused_as(patched(m, 4, 0), &key_a, wire_error::bad_version));
    EXPECT_TRUE(refused_as(patched(m, 5, 0), nullptr, wire_error::bad_kind));
    EXPECT_TRUE(refused_as(patched(m, 5, 3), nullptr, wire_error::bad_kind));
    EXPECT_TRUE(refused_as(patched_and_signed(m, 5, 3), &key_a, wire_error::bad_kind));
}

TEST(WireDecode, FieldsOutOfBounds)
{
    const message h = heartbeat_message(), c = connections_message();
    const std::vector<bytes> bad = {
        patched(h, 6, 0x02),                      // an unknown header flag
        patched(h, 7, 1),                         // header reserved
        patched(h, 8, 0),                         // empty sender
        patched(h, 8, max_name + 1),              // sender too long
        patched(h, body_at, 0),                   // member state below joining
        patched(h, body_at, 5),                   // member state above leaving
        patched(h, body_at + 1, 0x03),            // an unknown heartbeat flag
        patched(h, body_at + 26, 0),              // no SNAT address
        patched(h, body_at + 26, max_snat + 1),   // too many SNAT addresses
        patched(c, body_at, 0x81),                // an unknown connections flag
        patched(c, record_at, 0),                 // record kind below upsert
        patched(c, record_at, 3),                 // record kind above gone
        patched(c, record_at + 1, 1),             // proto
        patched(c, record_at + 2, 9),             // TCP state
        patched(c, record_at + 3, 3),             // PROXY protocol version
        patched(c, record_at + 36, 2),            // cookie neither 0 nor 1
        patched(c, record_at + 36, 0),            // a cookie's translation without the cookie
        patched(c, record_at + 42, 0),            // empty service
        patched(c, record_at + 42, max_name + 1), // service too long
        patched(c, record_at + 46, 0),            // empty owner
        patched_and_signed(c, record_at + 1, 1),  // proto, under the key: checked after the MAC
    };
    for (size_t i = 0; i < bad.size(); ++i)
        EXPECT_TRUE(
            refused_as(bad[i], i + 1 < bad.size() ? nullptr : &key_a, wire_error::bad_field))
            << "case " << i;
    // The second record is UDP: state 1 is its last.
    const size_t second = record_at + record_size(std::get<connections>(c.body).records[0]);
    EXPECT_TRUE(refused_as(patched(c, second + 2, 2), nullptr, wire_error::bad_field));
    EXPECT_TRUE(std::holds_alternative<message>(decode(patched(c, second + 2, 0), nullptr)));
    // A PROXY header and a cookie go with TCP only.
    EXPECT_TRUE(refused_as(patched(c, second + 3, 1), nullptr, wire_error::bad_field));
    EXPECT_TRUE(refused_as(patched(c, second + 36, 1), nullptr, wire_error::bad_field));
}

TEST(WireDecode, ADatagramAboveMaxDatagramIsABadField)
{
    bytes b = encode(connections_message(), nullptr);
    b.resize(max_datagram + 1);
    EXPECT_TRUE(refused_as(b, nullptr, wire_error::bad_field));
}

TEST(WireDecode, TrailingBytes)
{
    bytes b = encode(heartbeat_message(), nullptr);
    b.push_back(0);
    EXPECT_TRUE(refused_as(b, nullptr, wire_error::trailing));
    // Within the MAC's reach: signed, still trailing.
    bytes body = encode(connections_message(), &key_a);
    body.resize(body.size() - mac_bytes);
    body.push_back(0);
    EXPECT_TRUE(refused_as(signed_with(body, key_a), &key_a, wire_error::trailing));
    EXPECT_TRUE(refused_as(signed_with(body, key_a), nullptr, wire_error::trailing));
}

TEST(ReplayWindow, SequencesWithinAnIncarnation)
{
    replay_window w;
    EXPECT_TRUE(w.accept(100, 5));
    EXPECT_FALSE(w.accept(100, 5));
    EXPECT_FALSE(w.accept(100, 4));
    EXPECT_TRUE(w.accept(100, 6));
    EXPECT_TRUE(w.accept(100, 1000));
    EXPECT_FALSE(w.accept(100, 999));
    EXPECT_EQ(w.incarnation(), 100u);
}

TEST(ReplayWindow, TheFirstMessageIsAcceptedWhateverItsNumbers)
{
    replay_window w;
    EXPECT_TRUE(w.accept(0, 0));
    EXPECT_FALSE(w.accept(0, 0));
}

TEST(ReplayWindow, ANewerIncarnationResetsTheSequence)
{
    replay_window w;
    EXPECT_TRUE(w.accept(100, 50));
    EXPECT_TRUE(w.accept(200, 1));
    EXPECT_EQ(w.incarnation(), 200u);
    EXPECT_TRUE(w.accept(200, 2));
    EXPECT_FALSE(w.accept(100, 51)); // the older incarnation, whatever its sequence
    EXPECT_FALSE(w.accept(199, 1000));
    EXPECT_EQ(w.incarnation(), 200u);
}

TEST(DeriveKey, IsTheSha256OfTheSecret)
{
    const group_key abc = key_of("abc");
    const group_key want = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                            0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                            0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    EXPECT_EQ(abc, want);
    EXPECT_NE(key_a, key_b);
}

} // namespace
