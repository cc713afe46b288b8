// The gateway's configuration as plain values, filled by config_load.cpp from TOML.
// Every field has its default here; docs/configuration.md describes each key.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/net_text.h"

namespace meshgate::config
{

// Where a value stood in the file, for errors found after parsing (cross references).
struct source_position {
    uint32_t line = 0;
    uint32_t column = 0;
};

struct dpdk_section {
    std::string lcores = "0-1";           // EAL -l; the first is the control thread
    std::vector<unsigned> lcore_ids;      // lcores expanded, control first
    std::optional<uint32_t> memory_mb;    // EAL -m
    bool no_huge = false;                 // EAL --no-huge
    std::string file_prefix = "meshgate"; // EAL --file-prefix
    std::vector<std::string> extra_args;  // passed to EAL verbatim
};

enum class port_role { external, underlay, both };

struct port {
    std::string name;                     // used in logs, metrics and references
    std::string device;                   // PCI address or DPDK vdev string
    port_role role = port_role::external; // which side of the gateway this port faces
    ipv4_prefix address;                  // the gateway's address on this port
    std::optional<ipv4_address> gateway;  // next hop for destinations off the subnet
    std::optional<mac_address> mac;       // set the port's MAC (where the driver allows)
    uint16_t mtu = 1500;                  // IP MTU of the link
    source_position at;
};

struct neighbor {
    ipv4_address address;
    mac_address mac;
};

struct overlay_section {
    uint32_t vni = 4096;                      // Docker's ingress network usually has 4096
    uint16_t udp_port = 4789;                 // IANA VXLAN port, as Docker uses
    ipv4_prefix address;                      // the gateway's endpoint on the ingress network
    mac_address mac;                          // default 02:42 + the 4 address bytes
    std::vector<ipv4_address> snat_addresses; // more SNAT sources on the ingress network
};

struct node {
    std::string name;
    ipv4_address address;           // its VXLAN tunnel endpoint on the underlay
    std::optional<mac_address> mac; // known next-hop MAC: skips ARP
    source_position at;
};

enum class scheduler_kind { maglev, rr, wrr, lc, wlc, sh };
enum class protocol : uint8_t { tcp = 6, udp = 17 };

struct service_port {
    protocol proto = protocol::tcp;
    uint16_t published = 0; // the port clients connect to
    uint16_t target = 0;    // the port the task listens on
    source_position at;
};

struct task {
    ipv4_address address; // the task's address on the ingress network
    std::string node;     // name of the [[node]] that runs it
    uint32_t weight = 1;  // 0 = drain: no new connections
    mac_address mac;      // default 02:42 + the 4 address bytes
    source_position at;
};

struct service {
    std::string name;
    scheduler_kind scheduler = scheduler_kind::maglev;
    uint32_t persistence_timeout = 0;    // seconds of client-address affinity; 0 = off
    std::optional<ipv4_address> address; // match only this destination (else any external address)
    std::vector<service_port> ports;
    std::vector<task> tasks;
    source_position at;
};

struct swarm_section {
    std::string endpoint; // unix:///var/run/docker.sock or tcp://HOST:PORT
    std::string network = "ingress";
    std::string tls_cert, tls_key, tls_ca;
};

struct limits_section {
    uint32_t connections = 1048576; // connection table capacity
};

struct timeouts_section { // seconds, IPVS defaults
    uint32_t tcp_established = 900;
    uint32_t tcp_fin = 120;
    uint32_t tcp_close = 10;
    uint32_t tcp_syn = 60; // SYN seen, no reply yet
    uint32_t udp = 300;
};

struct stats_section {
    std::string listen = "127.0.0.1:9091"; // host:port of the /metrics endpoint; "" = off
};

struct log_section {
    std::string level = "info"; // trace, debug, info, warn, error, critical, off
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

} // namespace meshgate::config
