// Frames as a client and a task send them, built in place for tests and benchmarks that drive
// the data path without a packet oracle: a client's TCP segment to a published port, and a
// task's reply to a connection through the VXLAN tunnel; and the gateway on net_null ports
// they are sent to.
#pragma once

#include <cstdint>
#include <vector>

#include "control/base/net_text.h"
#include "control/config/config.h"
#include "dataplane/conntrack.h"

namespace meshgate::test_support
{

inline const mac_address ext_mac = *parse_mac("02:00:00:00:00:10");
inline const mac_address und_mac = *parse_mac("02:00:00:00:00:20");
inline const mac_address node_mac = *parse_mac("02:00:00:00:01:11");

// Two net_null ports: "ext" (external, 203.0.113.10/24, ext_mac) and "und" (underlay,
// 192.168.50.1/24, und_mac); the overlay address 10.255.0.2/16; node "n1" at 192.168.50.11
// (node_mac); [limits] connections; no service: the caller adds its own.
config::gateway_config null_ports_gateway(std::string name, uint32_t connections);

// A task of node n1 at ADDRESS, with Docker's MAC for it.
config::task task_on_n1(const char *address);

// A frame of 60 bytes at least: IPv4 TCP (no options) from CLIENT:CLIENT_PORT to
// PUBLISHED:PUBLISHED_PORT with FLAGS, SEQ and ACK, and PAYLOAD bytes of data; host byte order
// throughout.
struct client_segment {
    mac_address to, from;
    ipv4_address client, published;
    uint16_t client_port = 0, published_port = 0;
    uint8_t flags = 0;
    uint32_t seq = 0, ack = 0;
    uint16_t payload = 0;
};
std::vector<uint8_t> tcp_frame(const client_segment &s);

// A task's TCP reply to connection C (task:target -> SNAT address:port, flags FLAGS) in VXLAN
// (VNI, port 4789) from NODE (MAC and underlay address) to the gateway's underlay port (MAC
// and address), the inner frame to OVERLAY_MAC; OUTER_SPORT the node's flow hash; ACK in host
// byte order.
struct task_reply {
    mac_address port_mac, node_mac, overlay_mac;
    ipv4_address port_address, node_address;
    uint32_t vni = 4096;
    uint16_t outer_sport = 50000;
    uint8_t flags = 0x10; // ACK
    uint32_t ack = 0;
};
std::vector<uint8_t> reply_frame(const task_reply &r, const dataplane::connection &c);

} // namespace meshgate::test_support
