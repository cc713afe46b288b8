// The cluster's messages on the wire: what gateways of one group send each other over UDP
// between their underlay addresses (heartbeats, and the connections each one carries).
//
// A datagram is one message, at most max_datagram bytes, all integers in network order:
//   magic "MGCL" | version u8 (1) | kind u8 | flags u8 (bit 0: authenticated) | reserved u8 (0)
//   sender: name_len u8 (1..63) + name bytes
//   incarnation u64   the sender's start, ns of CLOCK_REALTIME: a newer one is a restarted peer
//   sequence u64      strictly increasing per incarnation: what replays are judged by
//   body (by kind, below)
//   [authenticated: HMAC-SHA256 under the group's key of every byte before it, 32 bytes]
// heartbeat body:
//   state u8 (member_state) | flags u8 (bit 0: wants a bulk sync) | bulk_done_for u64
//   underlay address be32 | overlay mac 6 bytes | underlay mac 6 bytes (the underlay port's)
//   n_snat u8 (1..max_snat) + n_snat x be32
// connections body:
//   flags u8 (bit 0: last message of a bulk sync) | bulk_for u64 (0 outside a bulk sync)
//   count u8 (0..) then count records:
//     kind u8 (record_kind) | proto u8 (6 or 17) | state u8 | proxy_protocol u8 (0 off, 1, 2)
//     client ip be32, published ip be32, client port be16, published port be16
//     task ip be32, target port be16, snat ip be32, snat port be16
//     idle_seconds u32 (how long the sender has not seen a packet of it)
//     proxy_start u32 (with a PROXY header or a cookie: the client's ISN + 1, where the header's
//     shift starts and what the task's SYN-ACK acks; 0 without)
//     cookie u8 (1: opened by a SYN cookie, the task's numbers translated) | wscales u8 (the
//     client's << 4 | the task's; 15: none) | seq_offset u32 (task ISN - cookie); 0s without
//     service: len u8 (1..63) + bytes | owner: len u8 (1..63) + bytes (a gateway's name)
// Decoding checks every length, count and enum against its bound and that nothing trails; it
// never reads past the datagram and never trusts a length it has not checked.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace meshgate::cluster
{

inline constexpr uint8_t wire_version = 3;   // 2: the PROXY header's shift; 3: a cookie's
inline constexpr size_t max_datagram = 1400; // within a 1500-byte underlay with IP and UDP
inline constexpr size_t max_name = 63;       // gateway and service names, as the config's
inline constexpr size_t max_snat = 16;       // overlay addresses one gateway SNATs with
inline constexpr size_t mac_bytes = 32;      // HMAC-SHA256
inline constexpr size_t key_bytes = 32;      // the HMAC key
inline constexpr size_t min_secret = 16;     // bytes of [cluster] key_file, at least

enum class message_kind : uint8_t { heartbeat = 1, connections = 2 };

// Where a gateway stands in its group, as its heartbeats say.
enum class member_state : uint8_t {
    joining = 1,  // started: receiving the group's connections, not yet announcing
    serving = 2,  // announcing its published addresses, carrying its connections
    draining = 3, // withdrawn, still serving what arrives
    leaving = 4,  // about to stop: peers take its addresses now rather than after dead_after_ms
};
// By value: member_state_names[size_t(member_state::serving)] is "serving"; 0 is no state.
inline constexpr std::array<std::string_view, 5> member_state_names = {"none", "joining", "serving",
                                                                       "draining", "leaving"};
static_assert(member_state_names.size() == size_t(member_state::leaving) + 1);

enum class record_kind : uint8_t {
    upsert = 1, // the connection exists in this state: install it or refresh it
    gone = 2,   // the owner ended it
};

struct header {
    message_kind kind = message_kind::heartbeat;
    std::string sender;       // a gateway's [cluster] name
    uint64_t incarnation = 0; // ns of CLOCK_REALTIME at the sender's start
    uint64_t sequence = 0;    // strictly increasing within an incarnation
};

struct heartbeat {
    member_state state = member_state::joining;
    bool wants_bulk = false;    // asks the receiver for every connection it knows
    uint64_t bulk_done_for = 0; // the receiver's incarnation whose bulk sync the sender finished
    uint32_t underlay = 0;      // the sender's underlay address, network order
    std::array<uint8_t, 6> overlay_mac{};
    std::array<uint8_t, 6> underlay_mac{}; // where its underlay address is, without asking ARP
    std::vector<uint32_t> snat_addresses;  // network order, 1..max_snat: the sender's SNAT sources
};

struct connection_record {
    record_kind kind = record_kind::upsert;
    uint8_t proto = 6;                        // IPPROTO_TCP or IPPROTO_UDP
    uint8_t state = 0;                        // dataplane tcp_state (TCP) or udp_state (UDP) value
    uint32_t client_ip = 0, published_ip = 0; // network order (all addresses and ports)
    uint16_t client_port = 0, published_port = 0;
    uint32_t task_ip = 0;
    uint16_t target_port = 0;
    uint32_t snat_ip = 0;
    uint16_t snat_port = 0;
    uint32_t idle_seconds = 0;
    uint8_t proxy_version = 0; // dataplane::proxy_protocol of the connection's header
    uint32_t proxy_start = 0;  // host order: connection::proxy_start
    bool cookie = false;       // opened by a SYN cookie: seq_offset and wscales translate it
    uint8_t wscales = 0;       // connection::wscales
    uint32_t seq_offset = 0;   // host order: connection::seq_offset
    std::string service;       // the service's name
    std::string owner;         // the gateway whose SNAT address and port it uses
};

struct connections {
    bool bulk_last = false; // the last message of a bulk sync
    uint64_t bulk_for = 0;  // the incarnation of the receiver that asked for it; 0 = none
    std::vector<connection_record> records;
};

struct message {
    header head;
    std::variant<heartbeat, connections> body;
};

// Why a datagram was refused; each has its counter.
enum class wire_error : uint8_t {
    truncated,       // shorter than its header or a length it states
    bad_magic,       // not ours
    bad_version,     // another version of the format
    bad_kind,        // a message kind this version does not know
    bad_field,       // a value out of its bounds (name length, enum, count, reserved bits)
    trailing,        // bytes after the message
    unauthenticated, // a key is configured and the message carries no MAC
    bad_mac,         // the MAC does not match under our key (forged, or another key)
};
inline constexpr std::array<std::string_view, 8> wire_error_names = {
    "truncated", "bad_magic", "bad_version",     "bad_kind",
    "bad_field", "trailing",  "unauthenticated", "bad_mac"};

using group_key = std::array<uint8_t, key_bytes>;

// The group's key from the content of [cluster] key_file (at least 16 bytes of secret, in any
// form: `head -c 32 /dev/urandom`, a passphrase): its SHA-256.
group_key derive_key(std::span<const uint8_t> secret);

// Encoded bytes of M (authenticated when KEY is given). M must be within the bounds above
// (names, counts) and fit max_datagram: callers size record batches with record_size().
std::vector<uint8_t> encode(const message &m, const group_key *key);

// Bytes RECORD takes in a connections message.
size_t record_size(const connection_record &record);
// Bytes a connections message takes before its records, for a sender named SENDER.
size_t connections_overhead(std::string_view sender, bool authenticated);

// The message in DATAGRAM, or why not. With KEY, an unauthenticated or badly authenticated
// message is refused; without, an authenticated one is read and its MAC ignored.
std::variant<message, wire_error> decode(std::span<const uint8_t> datagram, const group_key *key);

// Replay protection, per peer: accepts a message's (incarnation, sequence) when its
// incarnation is newer than any seen, or equal with a sequence above the last accepted one.
class replay_window
{
  public:
    bool accept(uint64_t incarnation, uint64_t sequence);
    uint64_t incarnation() const { return incarnation_; }

  private:
    uint64_t incarnation_ = 0;
    uint64_t sequence_ = 0;
    bool any_ = false;
};

} // namespace meshgate::cluster
