// The kernel interfaces of the exception path ([[port]] kernel_interface): a TAP per port
// (DPDK's net_tap), in meshgate's network namespace, with the port's MAC, address and MTU.
// TAP rather than virtio-user: virtio-user needs /dev/vhost-net, which hosts without the
// vhost_net module lack, and the exception path's rate is bounded anyway
// (docs/cluster.md). The TAP goes with the process: a crash takes the interface, and with it
// every address it held, out of the kernel (and the routes out of BGP).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/runtime/ports.h"

namespace meshgate
{

struct kernel_interface {
    std::string name;      // [[port]] kernel_interface
    std::string port;      // [[port]] name
    size_t port_index = 0; // in the configuration and in the opened ports
    bool external = false; // published addresses are announced on it
    int ifindex = 0;       // the kernel's
    uint16_t port_id = 0;  // DPDK's
    std::string vdev;      // the TAP's DPDK device name
};

// Makes the kernel interface of every port of C that has one, a queue pair per worker (worker i
// sends to and reads queue i); records its DPDK port id in PORTS.
// Throws on failure (an interface of that name that exists already, say).
std::vector<kernel_interface> open_kernel_interfaces(const config::gateway_config &c,
                                                     std::span<opened_port> ports, uint16_t workers,
                                                     const packet_pools &pools);

// Stops them and takes them out of the kernel.
void close_kernel_interfaces(const std::vector<kernel_interface> &interfaces);

} // namespace meshgate
