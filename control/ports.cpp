#include "control/ports.h"

#include <algorithm>
#include <stdexcept>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include "control/eal.h"
#include "control/memory.h"

namespace meshgate
{

namespace
{

std::runtime_error dpdk_error(const std::string &what, int rc)
{
    return std::runtime_error(what + ": " + rte_strerror(rc < 0 ? -rc : rte_errno));
}

void log_link(const opened_port &p)
{
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(p.port_id, &link) != 0) return;
    char text[RTE_ETH_LINK_MAX_STR_LEN];
    rte_eth_link_to_str(text, sizeof text, &link);
    spdlog::info("port {} ({}): {}", p.name, p.device, text);
}

opened_port open_port(const config::port &cp, uint16_t queues,
                      std::pair<uint16_t, uint16_t> descriptors, rte_mempool *pool)
{
    opened_port p{cp.name, cp.device, 0, {}};
    std::string dev = device_name(cp.device);
    if (int rc = rte_eth_dev_get_port_by_name(dev.c_str(), &p.port_id); rc != 0)
        throw std::runtime_error("port " + cp.name + ": no DPDK device '" + dev + "'");

    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(p.port_id, &info); rc != 0)
        throw dpdk_error("port " + cp.name + ": device info", rc);
    if (queues > info.max_rx_queues || queues > info.max_tx_queues)
        throw std::runtime_error("port " + cp.name + ": " + std::to_string(queues) +
                                 " queues wanted, the device has " +
                                 std::to_string(info.max_rx_queues));

    rte_eth_conf conf{};
    if (queues > 1) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    if (int rc = rte_eth_dev_configure(p.port_id, queues, queues, &conf); rc != 0)
        throw dpdk_error("port " + cp.name + ": configure", rc);

    uint16_t rxd = descriptors.first, txd = descriptors.second;
    rte_eth_dev_adjust_nb_rx_tx_desc(p.port_id, &rxd, &txd);
    int socket = rte_eth_dev_socket_id(p.port_id);
    for (uint16_t q = 0; q < queues; ++q) {
        if (int rc = rte_eth_rx_queue_setup(p.port_id, q, rxd, socket, nullptr, pool); rc != 0)
            throw dpdk_error("port " + cp.name + ": RX queue", rc);
        if (int rc = rte_eth_tx_queue_setup(p.port_id, q, txd, socket, nullptr); rc != 0)
            throw dpdk_error("port " + cp.name + ": TX queue", rc);
    }

    if (int rc = rte_eth_dev_set_mtu(p.port_id, cp.mtu); rc != 0)
        spdlog::warn("port {}: driver keeps its MTU, {} not applied to the device ({})", cp.name,
                     cp.mtu, rte_strerror(-rc));
    bool mac_in_software = false;
    if (cp.mac) {
        rte_ether_addr mac;
        std::copy(cp.mac->bytes.begin(), cp.mac->bytes.end(), mac.addr_bytes);
        if (int rc = rte_eth_dev_default_mac_addr_set(p.port_id, &mac); rc != 0) {
            // net_pcap and others cannot: listen promiscuously and filter on it ourselves.
            spdlog::info("port {}: driver cannot set MAC {} ({}): using it in software", cp.name,
                         to_string(*cp.mac), rte_strerror(-rc));
            mac_in_software = true;
        }
    }

    if (int rc = rte_eth_dev_start(p.port_id); rc != 0)
        throw dpdk_error("port " + cp.name + ": start", rc);
    rte_eth_macaddr_get(p.port_id, &p.mac);
    if (mac_in_software) {
        std::copy(cp.mac->bytes.begin(), cp.mac->bytes.end(), p.mac.addr_bytes);
        rte_eth_promiscuous_enable(p.port_id);
    }
    char mac_text[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(mac_text, sizeof mac_text, &p.mac);
    spdlog::info("port {} is DPDK port {}, MAC {}, {} queue(s)", cp.name, p.port_id, mac_text,
                 queues);
    log_link(p);
    return p;
}

} // namespace

rte_mempool *create_packet_pool(const config::gateway_config &c)
{
    const uint32_t count = packet_pool_size(c);
    rte_mempool *pool =
        rte_pktmbuf_pool_create("meshgate_packets", count, packet_pool_cache, 0,
                                packet_data_room(c), static_cast<int>(rte_socket_id()));
    if (pool == nullptr)
        throw dpdk_error("packet pool of " + std::to_string(count) + " buffers", 0);
    return pool;
}

mtu_result set_port_mtu(const opened_port &p, uint16_t mtu)
{
    const int rc = rte_eth_dev_set_mtu(p.port_id, mtu);
    if (rc == 0) return {true, ""};
    // Virtual devices without an MTU (pcap, null) take any frame: the data path uses the value.
    if (rc == -ENOTSUP) return {true, rte_strerror(-rc)};
    return {false, rte_strerror(-rc)};
}

std::vector<opened_port> open_ports(const config::gateway_config &c, uint16_t queues,
                                    rte_mempool *pool)
{
    std::vector<opened_port> ports;
    for (const config::port &cp : c.ports)
        ports.push_back(
            open_port(cp, queues, {c.dpdk.rx_descriptors, c.dpdk.tx_descriptors}, pool));
    return ports;
}

void close_ports(const std::vector<opened_port> &ports)
{
    for (const opened_port &p : ports) {
        if (int rc = rte_eth_dev_stop(p.port_id); rc != 0)
            spdlog::warn("port {}: stop: {}", p.name, rte_strerror(-rc));
        rte_eth_dev_close(p.port_id);
    }
}

} // namespace meshgate
