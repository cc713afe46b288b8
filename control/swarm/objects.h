// The Docker Engine API's objects that the swarm sync reads (API v1.41: GET /networks/ID
// ?verbose=true, /services, /tasks, /nodes), as plain values. Only what the routing mesh needs
// is kept; a document that is not what the API sends gives an error naming what was wrong.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/base/net_text.h"
#include "control/config/config.h"

namespace meshgate::swarm
{

// A value read from the API, or why it could not be.
template <typename T>
struct read {
    std::optional<T> value;
    std::string error;

    bool ok() const { return value.has_value(); }
};

struct network {
    std::string id, name;
    uint32_t vni = 0;                    // com.docker.network.driver.overlay.vxlanid_list
    ipv4_prefix subnet;                  // IPAM's first config: address = the network
    std::optional<ipv4_prefix> ip_range; // where IPAM hands out task addresses; none = subnet
    std::vector<ipv4_address> peers;     // the nodes' data-path addresses, from gossip
    // Endpoint address -> data-path address of the node that holds it ("Host IP").
    std::map<ipv4_address, ipv4_address> endpoint_hosts;
};

enum class publish_mode { ingress, host };

struct published_port {
    config::protocol proto = config::protocol::tcp;
    uint16_t published = 0;
    uint16_t target = 0;
    publish_mode mode = publish_mode::ingress;
};

struct service {
    std::string id, name;
    std::vector<published_port> ports;          // Endpoint.Ports: what the swarm did publish
    std::vector<std::string> unsupported_ports; // protocols the mesh does not carry (sctp)
    std::map<std::string, std::string> labels;  // Spec.Labels
};

struct task {
    std::string id, service_id, node_id;
    std::string state;         // Status.State: new ... running, complete, shutdown, failed ...
    std::string desired_state; // running, shutdown, remove, ready
    std::optional<ipv4_address> address; // on the network the sync follows
};

struct node {
    std::string id, hostname;
    std::optional<ipv4_address> address; // Status.Addr
    std::string state;                   // ready, down, unknown, disconnected
};

// Each takes the body of its API call as text.
read<network> read_network(std::string_view body);
read<std::vector<service>> read_services(std::string_view body);
// Tasks with their address on NETWORK_ID.
read<std::vector<task>> read_tasks(std::string_view body, const std::string &network_id);
read<std::vector<node>> read_nodes(std::string_view body);

// What an /events line is about: "service", "node", "network", "container", ... ("" if none).
std::string event_type(std::string_view line);

} // namespace meshgate::swarm
