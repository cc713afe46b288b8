// The gateway's configuration as plain values, filled by config_load.cpp from TOML.
// Every field has its default here; docs/configuration.md describes each key.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/base/net_text.h"
#include "dataplane/proxy_kind.h"
#include "dataplane/scheduler.h"
#include "dataplane/syn_cookie_kind.h"
#include "dataplane/timeouts.h"

namespace meshgate::config
{

// Where a value stood in the file, for errors found after parsing (cross references); 0:0 for
// values that come from elsewhere (the API, the swarm) or take their default.
struct source_position {
    uint32_t line = 0;
    uint32_t column = 0;

    bool known() const { return line != 0; }
    bool operator==(const source_position &) const = default;
};

// Where a service, task or node came from: the file, a call of the control API, the swarm.
enum class origin : uint8_t { file, api, swarm };
inline constexpr std::array<std::string_view, 3> origin_names = {"file", "api", "swarm"};
inline std::string_view name_of(origin o)
{
    return origin_names[static_cast<size_t>(o)];
}

struct dpdk_section {
    source_position at;                   // the [dpdk] header (1:1 when absent)
    std::string lcores = "0-1";           // EAL -l, or --lcores if LCORE@CPU; first is control
    std::vector<unsigned> lcore_ids;      // lcores expanded, control first
    std::vector<unsigned> lcore_cpus;     // the CPU each of lcore_ids runs on
    bool lcores_pinned = false;           // written LCORE@CPU: EAL gets --lcores
    std::optional<uint32_t> memory_mb;    // EAL -m, and the limit of DPDK memory
    source_position memory_at;            // of memory_mb
    bool no_huge = false;                 // EAL --no-huge
    std::string file_prefix = "meshgate"; // EAL --file-prefix
    std::vector<std::string> extra_args;  // passed to EAL verbatim
    std::optional<uint32_t> mbufs;        // packet pool size; default: what the queues need
    source_position mbufs_at;             //
    uint16_t rx_descriptors = 1024;       // per RX queue
    uint16_t tx_descriptors = 1024;       // per TX queue
};

enum class port_role { external, underlay, both };
// The `role` key's values, in the enum's order.
inline constexpr std::array<std::string_view, 3> port_role_names = {"external", "underlay", "both"};
inline std::string_view name_of(port_role r)
{
    return port_role_names[static_cast<size_t>(r)];
}

struct port {
    std::string name;                     // used in logs, metrics and references
    std::string device;                   // PCI address or DPDK vdev string
    port_role role = port_role::external; // which side of the gateway this port faces
    ipv4_prefix address;                  // the gateway's address on this port
    std::optional<ipv4_address> gateway;  // next hop for destinations off the subnet
    std::optional<mac_address> mac;       // set the port's MAC (where the driver allows)
    uint16_t mtu = 1500;                  // IP MTU of the link
    // The exception path: a TAP of this name with the port's MAC, address and MTU takes what
    // the gateway does not handle for the port's address; "" = none (control/kernel/).
    std::string kernel_interface;
    source_position at;
};

struct neighbor {
    ipv4_address address;
    mac_address mac;
};

struct overlay_section {
    source_position at;                       // the [overlay] header; 0:0 if it was not read
    uint32_t vni = 4096;                      // Docker's ingress network usually has 4096
    source_position vni_at;                   // 0:0 when the default is in force
    uint16_t udp_port = 4789;                 // IANA VXLAN port, as Docker uses
    ipv4_prefix address;                      // the gateway's endpoint on the ingress network
    mac_address mac;                          // default 02:42 + the 4 address bytes
    std::vector<ipv4_address> snat_addresses; // more SNAT sources on the ingress network
    uint16_t snat_port_min = 1024;            // snat_ports = "MIN-MAX", as ip_local_port_range
    uint16_t snat_port_max = 65535;           //
    source_position snat_ports_at;            // 0:0 when the default is in force
};

struct node {
    std::string name;
    ipv4_address address;           // its VXLAN tunnel endpoint on the underlay
    std::optional<mac_address> mac; // known next-hop MAC: skips ARP
    origin from = origin::file;
    source_position at{}, name_at{}, address_at{};
    bool address_unread = false; // the file's value had an error, reported: checks skip it

    bool operator==(const node &o) const
    {
        return name == o.name && address == o.address && mac == o.mac;
    }
};

using scheduler_kind = dataplane::scheduler_kind;
using proxy_protocol = dataplane::proxy_protocol;
enum class protocol : uint8_t { tcp = 6, udp = 17 };

struct service_port {
    protocol proto = protocol::tcp;
    uint16_t published = 0; // the port clients connect to
    uint16_t target = 0;    // the port the task listens on
    source_position at{}, published_at{};

    bool operator==(const service_port &o) const
    {
        return proto == o.proto && published == o.published && target == o.target;
    }
};

struct task {
    ipv4_address address; // the task's address on the ingress network: with its service, its name
    std::string node;     // name of the [[node]] that runs it
    uint32_t weight = 1;  // 0 = drain: no new connections
    mac_address mac;      // default 02:42 + the 4 address bytes
    source_position at{}, address_at{}, node_at{};
    bool node_unread = false; // the file's value had an error, reported: checks skip it

    bool operator==(const task &o) const
    {
        return address == o.address && node == o.node && weight == o.weight && mac == o.mac;
    }
};

struct service {
    std::string name;
    scheduler_kind scheduler = scheduler_kind::maglev;
    uint32_t persistence_timeout = 0;            // seconds of client-address affinity; 0 = off
    uint32_t max_new_connections_per_second = 0; // over all workers; 0 = no limit
    std::optional<ipv4_address> address; // match only this destination (else any external address)
    proxy_protocol proxy = proxy_protocol::off; // the header its tasks get ahead of each TCP stream
    std::vector<service_port> ports;
    std::vector<task> tasks;
    origin from = origin::file;
    source_position at{}, name_at{}, proxy_at{};
    bool name_unread = false; // the file's value had an error, reported: checks skip it

    bool operator==(const service &o) const
    {
        return name == o.name && scheduler == o.scheduler &&
               persistence_timeout == o.persistence_timeout &&
               max_new_connections_per_second == o.max_new_connections_per_second &&
               address == o.address && proxy == o.proxy && ports == o.ports && tasks == o.tasks;
    }
};

struct swarm_section {
    std::string endpoint; // unix:///var/run/docker.sock or tcp://HOST:PORT
    std::string network = "ingress";
    std::string tls_cert, tls_key, tls_ca;
    uint32_t poll_interval_ms = 1000;    // tasks have no events: /tasks is read this often
    uint32_t resync_interval_ms = 60000; // everything read again, whatever the events said

    bool operator==(const swarm_section &) const = default;
};

// The rates are per second over all workers (each worker enforces its share); 0 = no limit.
struct limits_section {
    uint32_t connections = 1048576;          // connection table capacity
    source_position connections_at;          // 0:0 when the default is in force
    uint32_t icmp_errors_per_second = 1000;  // errors the gateway originates (Linux's default)
    uint32_t new_connections_per_source = 0; // new connections a second from one client address
    bool reset_unpublished = true;           // RST for TCP to a port nothing publishes, as Linux
    // As Linux's tcp_syncookies = 1: a flood to 3/4 of the table meets cookies, not a full one.
    dataplane::syn_cookie_mode syn_cookies = dataplane::syn_cookie_mode::under_pressure;
    std::optional<dataplane::siphash_key> syn_cookie_secret; // none: one of this process's own
    uint32_t tcp_resets_per_second = 1000;                   // those RSTs
    uint32_t arp_replies_per_second = 10000;    // answers to ARP requests for our addresses
    uint32_t kernel_packets_per_second = 20000; // to kernel interfaces, TCP SYNs aside
    uint32_t kernel_syns_per_second = 1000;     // TCP SYNs to kernel interfaces (a SYN flood)
};

// Seconds. The idle timeouts (IPVS defaults) and how long a removed task's connections go on:
// Docker gives a stopping task 10 s (stop_grace_period) before it kills it, so a task removed
// from the config gets as long to finish what it serves; 0 ends them at once.
struct timeouts_section : dataplane::conntrack_timeouts {
    uint32_t removed_task_grace = 10;

    bool operator==(const timeouts_section &) const = default;
};

struct stats_section {
    std::string listen = "127.0.0.1:9091"; // host:port of the /metrics endpoint; "" = off
    source_position listen_at;
};

struct log_section {
    std::string level = "info"; // trace, debug, info, warn, error, critical, off
};

// Reloads besides SIGHUP and the control CLI: when the file changes (inotify), once it has been
// quiet for debounce_ms.
struct reload_section {
    bool watch = true;
    uint32_t debounce_ms = 500;
};

// Withdrawing the published addresses from the routers before the gateway stops.
struct drain_section {
    // On SIGTERM with addresses announced: withdraw them, serve this long while the routers
    // move new connections elsewhere, then stop. 0 = stop at once.
    uint32_t stop_delay_ms = 2000;
};

// Gateways that carry each other's connections (control/cluster/): they sync connections and
// heartbeats over UDP between their underlay addresses, through the underlay port's kernel
// interface, and one takes over a dead peer's addresses.
struct cluster_peer {
    std::string name;
    ipv4_address address; // its underlay address, on the underlay port's subnet
    source_position at;

    bool operator==(const cluster_peer &o) const { return name == o.name && address == o.address; }
};

struct cluster_section {
    static constexpr size_t max_name = 63;         // a gateway's name, as a service's
    static constexpr size_t max_peers = 31;        // a group of at most 32 gateways
    static constexpr size_t min_secret_bytes = 16; // of key_file

    source_position at;
    std::string name;            // this gateway, unique in the group
    std::string key_file;        // the group's secret: authenticates every message; "" = none
    source_position key_file_at; //
    // From the key file: the SYN cookie secret of every gateway that shares it, unless
    // [limits] syn_cookie_secret says another (a client's ACK may reach another gateway).
    std::optional<dataplane::siphash_key> syn_cookie_secret;
    std::vector<cluster_peer> peers;
    uint16_t sync_port = 7410;           // UDP, on every member's underlay address
    uint32_t heartbeat_ms = 100;         // how often each peer hears from us
    uint32_t dead_after_ms = 300;        // silence that makes a peer dead (3 heartbeats, like BFD)
    uint32_t resync_interval_ms = 10000; // every connection sent again: repairs lost messages

    bool operator==(const cluster_section &o) const
    {
        return name == o.name && key_file == o.key_file && peers == o.peers &&
               sync_port == o.sync_port && heartbeat_ms == o.heartbeat_ms &&
               dead_after_ms == o.dead_after_ms && resync_interval_ms == o.resync_interval_ms;
    }
};

struct gateway_config {
    std::string file; // the path it was loaded from
    dpdk_section dpdk;
    std::vector<port> ports;
    std::vector<neighbor> neighbors;
    overlay_section overlay;
    std::vector<node> nodes;
    std::vector<service> services;
    std::optional<swarm_section> swarm;
    limits_section limits;
    timeouts_section timeouts;
    stats_section stats;
    log_section log;
    reload_section reload;
    drain_section drain;
    std::optional<cluster_section> cluster;
};

// One problem in a file, printed as FILE:LINE:COL: message.
struct config_error {
    std::string file;
    uint32_t line = 0;
    uint32_t column = 0;
    std::string message;

    std::string to_string() const;
};

// Either a valid configuration or every error found in the file.
struct load_result {
    std::optional<gateway_config> config;
    std::vector<config_error> errors;
};

// What load() checks against the machine it runs on.
struct load_options {
    // CPUs that [dpdk] lcores may name; empty = the CPUs this process may run on
    // (sched_getaffinity, else /sys/devices/system/cpu/online).
    std::vector<unsigned> cpus;
};

// Reads, parses and validates FILE. Never throws.
load_result load(const std::string &file);
load_result load(const std::string &file, const load_options &options);

// The checks across a whole configuration, whichever input built it: references between its
// parts, names and published ports used once, and every limit of the tables and of the memory.
// load() runs them too, so a file that loads is one that start and reload accept. Never throws.
std::vector<config_error> validate(const gateway_config &c);

// Two of validate()'s checks on single objects, for inputs that leave out what fails them
// (the swarm sync): whether an underlay port reaches VTEP (its subnet, or a gateway), and what
// keeps ADDRESS from being a task on the overlay ("" if nothing).
bool underlay_reaches(const gateway_config &c, ipv4_address vtep);
std::string task_address_problem(ipv4_address address, const overlay_section &overlay);

// The port a [cluster] speaks and takes over addresses through: the first one that faces the
// underlay (nullptr when none does).
const port *cluster_port(const gateway_config &c);

} // namespace meshgate::config
