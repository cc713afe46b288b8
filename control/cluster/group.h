// This gateway as a member of its [cluster]: heartbeats and connection sync with its peers over
// UDP between underlay addresses (through the underlay port's kernel interface, so the workers
// build no packets for it), failure detection, and the takeover of a dead peer's addresses.
//
// Everything runs on the control thread, in tick() (every control loop pass, 20 ms). The
// workers hand over changes of our connections and take the peers' through rings
// (dataplane/sync.h); a full ring is a counted loss that the periodic exchange repairs.
//
// Membership. A peer is alive while we hear from it within dead_after_ms; then it is dead, and
// of the live members (us included) the one that rendezvous hashing picks for it takes over its
// underlay address (answers ARP for it on the underlay and announces it by gratuitous ARP) and
// its overlay MAC and SNAT addresses, so that its tasks' replies come here and meet the
// connections it synced. A peer that says it is leaving (drain --stop, SIGTERM) is taken over at
// once. A returning peer (a newer incarnation) asks for a bulk sync, gets its own connections
// back, takes its address back by gratuitous ARP and only then serves; we give its addresses
// back when its heartbeats say it serves.
//
// Split brain. Before a silent peer is declared dead, its underlay address is asked for by ARP
// (from dead_after_ms - probe_window on): a data path that answers is alive, only the sync
// channel is cut (a firewall, a full queue), and nothing is taken over from it: each gateway
// keeps its addresses and serves the connections that reach it (those synced before the cut
// wherever the routers send them, new ones where they were made, as the routers keep their
// paths). Only a peer that neither speaks nor answers ARP is taken over.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <rte_ring.h>

#include "control/cluster/wire.h"
#include "control/config/config.h"
#include "dataplane/conntrack.h"
#include "dataplane/tables.h"

namespace meshgate::cluster
{

// What this gateway tells its peers about itself.
struct identity {
    uint32_t underlay = 0; // network order
    std::array<uint8_t, 6> overlay_mac{};
    std::vector<uint32_t> snat_addresses;  // network order
    std::array<uint8_t, 6> underlay_mac{}; // the underlay port's
};

// What the group needs of the rest of the gateway.
struct group_hooks {
    // (service id, task id) here of a peer's task, by what it is; nothing if unknown here.
    std::function<std::optional<std::pair<uint16_t, uint16_t>>(const std::string &service,
                                                               uint32_t task_ip)>
        resolve;
    std::function<std::string(uint16_t service)> service_name;
    // The dead peers whose addresses we serve now (the whole list each time).
    std::function<void(std::vector<dataplane::adopted_gateway>)> adopt;
    // A gratuitous ARP for ADDRESS (network order) out of the underlay port.
    std::function<void(uint32_t address)> announce_address;
    // An ARP request for ADDRESS on the underlay, and the senders of the replies since the last
    // call: whether a silent peer's data path still runs.
    std::function<void(uint32_t address)> probe;
    std::function<std::vector<uint32_t>()> probe_answers;
    // A peer's underlay address ADDRESS (network order) is at MAC: the host's kernel sends it
    // heartbeats without asking ARP (a joining gateway's requests do not leave, see joined).
    std::function<void(uint32_t address, const std::array<uint8_t, 6> &mac)> learn_peer;
    // Joined: the workers answer ARP for our underlay address to everyone again.
    std::function<void()> joined;
};

// cut: its heartbeats stopped but its data path still answers ARP on the underlay (the sync
// channel is cut, not the gateway): nothing is taken over from it.
enum class peer_health : uint8_t { unknown, alive, dead, cut };
inline constexpr std::array<std::string_view, 4> peer_health_names = {"unknown", "alive", "dead",
                                                                      "cut"};

struct peer_status {
    std::string name;
    uint32_t address = 0;
    peer_health health = peer_health::unknown;
    member_state says = member_state::joining; // its last heartbeat's state
    bool adopted = false;                      // we serve its addresses
    bool synced_us = false;                    // it finished a bulk sync to us
    double heard_ms_ago = -1;
    uint64_t messages_in = 0, messages_out = 0, records_in = 0, records_out = 0;
    uint32_t connections = 0; // of its connections installed here (as of the last walk)
};

struct group_status {
    std::string name;
    member_state state = member_state::joining;
    std::vector<peer_status> peers;
    uint32_t own_connections = 0; // as of the last walk
    uint64_t takeovers = 0;
    double last_takeover_ms = 0;  // from the last message heard of the dead peer to our ARP
    uint64_t records_unknown = 0; // a peer's connection whose service or task is not known here
    uint64_t installs_lost = 0;   // the workers' install rings were full
    uint64_t send_errors = 0;
    std::array<uint64_t, wire_error_names.size()> refused{}; // by wire_error
    uint64_t refused_source = 0; // from an address that is no peer's, or a name not its own
    uint64_t refused_replay = 0;
};

class group
{
  public:
    // Opens the UDP socket on SELF's underlay address (the kernel interface holds it by now);
    // EVENTS and INSTALLS are the workers' rings (dataplane/sync.h), set on them by the caller.
    // Throws std::runtime_error when the socket or the key file cannot be had.
    group(const config::cluster_section &c, identity self, dataplane::connection_table &table,
          std::span<rte_ring *const> events, std::span<rte_ring *const> installs,
          uint64_t start_tsc, group_hooks hooks);
    ~group();
    group(const group &) = delete;
    group &operator=(const group &) = delete;

    void tick();
    // Joined: every live peer has sent us its connections (or none answered in time).
    bool ready() const { return state_ != member_state::joining; }
    // Draining: our heartbeats say so, and every connection goes to the peers now.
    void set_draining(bool on);
    // Every live peer has been sent every connection we have since T (a full walk ended).
    bool shared_all_since(std::chrono::steady_clock::time_point t) const
    {
        return last_full_walk_ >= t;
    }
    void leave(); // our heartbeats say we are about to stop: peers take over at once
    group_status status() const;

  private:
    using clock = std::chrono::steady_clock;
    struct peer;
    struct walk;

    void receive();
    void take(const message &m, peer &p);
    void take_heartbeat(const heartbeat &h, peer &p);
    void take_connections(const connections &c, peer &p);
    void drain_events();
    void step_walk();
    void start_walk(std::vector<size_t> targets, bool bulk);
    void send_heartbeats();
    void detect();
    void take_over(peer &p);
    void readopt();
    void flush(peer &p, bool bulk_last = false, uint64_t bulk_for = 0);
    void queue(peer &p, connection_record r);
    void send(peer &p, const message &m);
    std::string owner_name(uint8_t peer_byte) const;
    bool survivor_for(const peer &dead) const;
    uint32_t conntrack_now() const;

    config::cluster_section config_;
    identity self_;
    dataplane::connection_table &table_;
    std::vector<rte_ring *> events_, installs_;
    uint64_t start_tsc_ = 0;
    group_hooks hooks_;
    std::optional<group_key> key_;
    int socket_ = -1;
    uint64_t incarnation_ = 0;
    uint64_t sequence_ = 0;
    member_state state_ = member_state::joining;
    clock::time_point started_, heartbeat_at_, resync_at_, last_full_walk_;
    std::vector<peer> peers_;
    std::vector<clock::time_point> own_arp_due_; // repeats of the gratuitous ARP after joining
    std::unique_ptr<walk> walk_;
    group_status counters_;
};

} // namespace meshgate::cluster
