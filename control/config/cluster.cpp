// [cluster] and its [[cluster.peer]] tables: the gateways this one carries connections with.
#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

#include "control/config/sections.h"

namespace meshgate::config
{

namespace
{

// SHA-256 of a label and the group's secret: a key of its own, whatever the cluster's messages
// are signed with, the same on every gateway that has the file.
dataplane::siphash_key cookie_secret_of(const std::vector<uint8_t> &secret)
{
    static constexpr std::string_view label = "meshgate syn cookie secret";
    std::array<uint8_t, 32> digest{};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, label.data(), label.size()) == 1 &&
                    EVP_DigestUpdate(ctx, secret.data(), secret.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx, digest.data(), nullptr) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) throw std::runtime_error("config: SHA-256 failed in libcrypto");
    dataplane::siphash_key key;
    std::memcpy(&key.k0, digest.data(), 8);
    std::memcpy(&key.k1, digest.data() + 8, 8);
    return key;
}

// The key file must hold a secret worth the name; what is in it is the cluster room's business,
// and the cookie secret's.
void read_key_file(const field &f, cluster_section &c)
{
    std::ifstream in(c.key_file, std::ios::binary);
    if (!in) {
        f.error("key_file " + in_quotes(c.key_file) + " cannot be read");
        return;
    }
    const std::vector<uint8_t> secret{std::istreambuf_iterator<char>(in), {}};
    if (secret.size() < cluster_section::min_secret_bytes) {
        f.error("key_file " + in_quotes(c.key_file) + " holds " + std::to_string(secret.size()) +
                " bytes, at least " + std::to_string(cluster_section::min_secret_bytes) +
                " are needed (head -c 32 /dev/urandom > FILE)");
        return;
    }
    c.syn_cookie_secret = cookie_secret_of(secret);
}

void read_peers(const table_reader &t, cluster_section &c)
{
    std::map<std::string, source_position> names, addresses;
    if (!c.name.empty()) names[c.name] = c.at;
    for (const toml::value *table : t.tables("peer")) {
        table_reader p(*table, "cluster.peer", true, {"name", "address"}, t.errors());
        cluster_peer peer;
        peer.at = p.at();
        field name = p.required("name");
        if (auto n = name.name_text(cluster_section::max_name)) {
            peer.name = *n;
            check_unique(t.errors(), origin::file, name.at(), peer.name,
                         "gateway name " + in_quotes(peer.name), names);
        }
        field address = p.required("address");
        if (auto a = address.ipv4()) {
            peer.address = *a;
            check_unique(t.errors(), origin::file, address.at(), to_string(*a),
                         "peer address " + to_string(*a), addresses);
        }
        if (!peer.name.empty() && peer.address.value != 0) c.peers.push_back(peer);
    }
    if (c.peers.size() > cluster_section::max_peers)
        t.errors().add(c.at, "[cluster] has " + std::to_string(c.peers.size()) +
                                 " peers, at most " + std::to_string(cluster_section::max_peers));
}

} // namespace

std::optional<cluster_section> read_cluster(const table_reader &root)
{
    const toml::value *table = root.table("cluster");
    if (!table) return std::nullopt;
    table_reader t(*table, "cluster", false,
                   {"name", "key_file", "peer", "sync_port", "heartbeat_ms", "dead_after_ms",
                    "resync_interval_ms"},
                   root.errors());
    cluster_section c;
    c.at = t.at();
    if (auto n = t.required("name").name_text(cluster_section::max_name)) c.name = *n;
    field key = t.get("key_file");
    if (auto k = key.text()) {
        c.key_file = *k;
        c.key_file_at = key.at();
        read_key_file(key, c);
    }
    if (auto v = t.get("sync_port").integer(1, 65535)) c.sync_port = static_cast<uint16_t>(*v);
    if (auto v = t.get("heartbeat_ms").integer(10, 10000))
        c.heartbeat_ms = static_cast<uint32_t>(*v);
    field dead = t.get("dead_after_ms");
    if (auto v = dead.integer(20, 60000)) {
        c.dead_after_ms = static_cast<uint32_t>(*v);
        if (c.dead_after_ms < 2 * c.heartbeat_ms)
            dead.error("dead_after_ms " + std::to_string(c.dead_after_ms) +
                       " is less than two heartbeats (heartbeat_ms " +
                       std::to_string(c.heartbeat_ms) + "): one late heartbeat would kill a peer");
    }
    if (auto v = t.get("resync_interval_ms").integer(1000, 3600000))
        c.resync_interval_ms = static_cast<uint32_t>(*v);
    read_peers(t, c);
    return c;
}

} // namespace meshgate::config
