#include "control/kernel/interfaces.h"

#include <net/if.h>

#include <fstream>
#include <stdexcept>

#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <spdlog/spdlog.h>

#include "control/config/memory.h"
#include "control/kernel/addresses.h"

namespace meshgate
{

namespace
{

std::string mac_text(const rte_ether_addr &mac)
{
    char text[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(text, sizeof text, &mac);
    return text;
}

// Opens one TAP like the port P it serves; K names it.
void open_one(kernel_interface &k, const config::port &p, const opened_port &port, uint16_t workers,
              rte_mempool *pool)
{
    const std::string fail = "port " + p.name + ": kernel interface " + k.name + ": ";
    if (if_nametoindex(k.name.c_str()) != 0)
        throw std::runtime_error(fail + "an interface of that name exists already");
    const std::string args = "iface=" + k.name + ",mac=" + mac_text(port.mac);
    if (int rc = rte_eal_hotplug_add("vdev", k.vdev.c_str(), args.c_str()); rc != 0)
        throw std::runtime_error(fail + "net_tap: " + rte_strerror(-rc));
    if (rte_eth_dev_get_port_by_name(k.vdev.c_str(), &k.port_id) != 0)
        throw std::runtime_error(fail + "net_tap made no port");

    rte_eth_conf conf{};
    // net_tap takes queue pairs (a multiqueue TAP: the kernel spreads what it sends by flow).
    if (int rc = rte_eth_dev_configure(k.port_id, workers, workers, &conf); rc != 0)
        throw std::runtime_error(fail + "configure: " + rte_strerror(-rc));
    for (uint16_t q = 0; q < workers; ++q) {
        if (int rc = rte_eth_rx_queue_setup(k.port_id, q, kernel_interface_descriptors,
                                            rte_eth_dev_socket_id(k.port_id), nullptr, pool);
            rc != 0)
            throw std::runtime_error(fail + "RX queue: " + rte_strerror(-rc));
        if (int rc = rte_eth_tx_queue_setup(k.port_id, q, kernel_interface_descriptors,
                                            rte_eth_dev_socket_id(k.port_id), nullptr);
            rc != 0)
            throw std::runtime_error(fail + "TX queue: " + rte_strerror(-rc));
    }
    if (int rc = rte_eth_dev_set_mtu(k.port_id, p.mtu); rc != 0)
        spdlog::warn("{}MTU {} not set ({})", fail, p.mtu, rte_strerror(-rc));
    if (int rc = rte_eth_dev_start(k.port_id); rc != 0)
        throw std::runtime_error(fail + "start: " + rte_strerror(-rc));
    rte_eth_dev_set_link_up(k.port_id);

    k.ifindex = static_cast<int>(if_nametoindex(k.name.c_str()));
    if (k.ifindex == 0) throw std::runtime_error(fail + "not in the kernel after start");
    // The data path is IPv4: the host's IPv6 chatter (router solicitations) stays home.
    std::ofstream("/proc/sys/net/ipv6/conf/" + k.name + "/disable_ipv6") << "1\n";
    if (std::string e = kernel_addresses().add(k.ifindex, p.address); !e.empty())
        throw std::runtime_error(fail + "address " + to_string(p.address) + ": " + e);
    spdlog::info("port {}: kernel interface {} (DPDK port {}), {} {}", p.name, k.name, k.port_id,
                 to_string(p.address), mac_text(port.mac));
}

} // namespace

std::vector<kernel_interface> open_kernel_interfaces(const config::gateway_config &c,
                                                     std::span<opened_port> ports, uint16_t workers,
                                                     const packet_pools &pools)
{
    std::vector<kernel_interface> opened;
    try {
        for (size_t i = 0; i < c.ports.size(); ++i) {
            const config::port &p = c.ports[i];
            if (p.kernel_interface.empty()) continue;
            kernel_interface &k = opened.emplace_back();
            k.name = p.kernel_interface;
            k.port = p.name;
            k.port_index = i;
            k.external = p.role != config::port_role::underlay;
            k.vdev = "net_tap_meshgate" + std::to_string(i);
            open_one(k, p, ports[i], workers, pools.on(ports[i].socket));
            ports[i].kernel_port_id = k.port_id;
        }
    } catch (...) {
        close_kernel_interfaces(opened);
        throw;
    }
    return opened;
}

void close_kernel_interfaces(const std::vector<kernel_interface> &interfaces)
{
    for (const kernel_interface &k : interfaces) {
        uint16_t id = 0;
        if (rte_eth_dev_get_port_by_name(k.vdev.c_str(), &id) != 0) continue;
        rte_eth_dev_stop(id);
        rte_eth_dev_close(id);
        rte_eal_hotplug_remove("vdev", k.vdev.c_str());
    }
}

} // namespace meshgate
