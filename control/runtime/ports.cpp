#include "control/runtime/ports.h"

#include <algorithm>
#include <stdexcept>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include "control/config/memory.h"
#include "control/runtime/eal.h"

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

uint16_t device_port_id(const config::port &cp)
{
    uint16_t id = 0;
    const std::string dev = device_name(cp.device);
    if (rte_eth_dev_get_port_by_name(dev.c_str(), &id) != 0)
        throw std::runtime_error("port " + cp.name + ": no DPDK device '" + dev + "'");
    return id;
}

std::string worker_list(const std::vector<uint16_t> &workers)
{
    std::string text;
    for (uint16_t w : workers)
        text += (text.empty() ? "" : ",") + std::to_string(w);
    return text;
}

opened_port open_port(const config::port &cp, int socket, const std::vector<uint16_t> &rx_workers,
                      uint16_t tx_queues, std::pair<uint16_t, uint16_t> descriptors,
                      rte_mempool *pool)
{
    opened_port p{cp.name, cp.device, device_port_id(cp), {}, socket, true};
    const auto rx_queues = static_cast<uint16_t>(rx_workers.size());

    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(p.port_id, &info); rc != 0)
        throw dpdk_error("port " + cp.name + ": device info", rc);
    if (rx_queues > info.max_rx_queues || tx_queues > info.max_tx_queues)
        throw std::runtime_error(
            "port " + cp.name + ": " + std::to_string(rx_queues) + " RX and " +
            std::to_string(tx_queues) + " TX queues wanted (one per worker), the device has " +
            std::to_string(info.max_rx_queues) + " and " + std::to_string(info.max_tx_queues));

    rte_eth_conf conf{};
    if (rx_queues > 1) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
        if (conf.rx_adv_conf.rss_conf.rss_hf == 0)
            spdlog::info("port {}: no RSS, the driver spreads frames over its {} RX queues itself",
                         cp.name, rx_queues);
    }
    // Fragments are chains (a header, then the payload by reference): without this offload the
    // simple TX paths of ixgbe, i40e and ice send and free only the first segment.
    p.multi_segs = (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0;
    if (p.multi_segs)
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    else
        spdlog::info("port {}: sends one segment per frame: fragments are joined before TX",
                     cp.name);
    if (int rc = rte_eth_dev_configure(p.port_id, rx_queues, tx_queues, &conf); rc != 0)
        throw dpdk_error("port " + cp.name + ": configure", rc);

    uint16_t rxd = descriptors.first, txd = descriptors.second;
    rte_eth_dev_adjust_nb_rx_tx_desc(p.port_id, &rxd, &txd);
    for (uint16_t q = 0; q < rx_queues; ++q)
        if (int rc = rte_eth_rx_queue_setup(p.port_id, q, rxd, p.socket, nullptr, pool); rc != 0)
            throw dpdk_error("port " + cp.name + ": RX queue", rc);
    for (uint16_t q = 0; q < tx_queues; ++q)
        if (int rc = rte_eth_tx_queue_setup(p.port_id, q, txd, p.socket, nullptr); rc != 0)
            throw dpdk_error("port " + cp.name + ": TX queue", rc);

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
    spdlog::info("port {} is DPDK port {}, MAC {}, socket {}, RX queues {} (workers {}), TX queues "
                 "{}",
                 cp.name, p.port_id, mac_text, p.socket, rx_queues, worker_list(rx_workers),
                 tx_queues);
    log_link(p);
    return p;
}

} // namespace

rte_mempool *packet_pools::on(int socket) const
{
    for (const auto &[s, pool] : by_socket)
        if (s == socket) return pool;
    return by_socket.front().second;
}

std::vector<int> port_sockets(const config::gateway_config &c)
{
    std::vector<int> sockets;
    for (const config::port &cp : c.ports) {
        const int socket = rte_eth_dev_socket_id(device_port_id(cp));
        sockets.push_back(socket >= 0 ? socket : static_cast<int>(rte_socket_id()));
    }
    return sockets;
}

packet_pools create_packet_pools(const config::gateway_config &c, const queue_plan &plan,
                                 std::span<const int> sockets_of_ports)
{
    const uint64_t total = packet_pool_size(c);
    packet_pools pools;
    for (int socket : plan.pool_sockets) {
        const auto ports = static_cast<uint64_t>(
            std::count(sockets_of_ports.begin(), sockets_of_ports.end(), socket));
        const uint64_t share = total * ports / sockets_of_ports.size();
        const auto count = static_cast<uint32_t>(std::max<uint64_t>(share, 1023));
        const std::string name = "meshgate_packets_" + std::to_string(socket);
        rte_mempool *pool = rte_pktmbuf_pool_create(name.c_str(), count, packet_pool_cache, 0,
                                                    packet_data_room(c), socket);
        if (pool == nullptr)
            throw dpdk_error("packet pool of " + std::to_string(count) + " buffers on socket " +
                                 std::to_string(socket),
                             0);
        spdlog::info("packet pool on socket {}: {} buffers", socket, count);
        pools.by_socket.emplace_back(socket, pool);
    }
    return pools;
}

mtu_result set_port_mtu(const opened_port &p, uint16_t mtu)
{
    const int rc = rte_eth_dev_set_mtu(p.port_id, mtu);
    if (rc == 0) return {true, ""};
    // Virtual devices without an MTU (pcap, null) take any frame: the data path uses the value.
    if (rc == -ENOTSUP) return {true, rte_strerror(-rc)};
    return {false, rte_strerror(-rc)};
}

std::vector<opened_port> open_ports(const config::gateway_config &c, const queue_plan &plan,
                                    std::span<const int> sockets_of_ports, uint16_t workers,
                                    const packet_pools &pools)
{
    std::vector<opened_port> ports;
    for (size_t i = 0; i < c.ports.size(); ++i)
        ports.push_back(open_port(c.ports[i], sockets_of_ports[i], plan.rx_workers[i], workers,
                                  {c.dpdk.rx_descriptors, c.dpdk.tx_descriptors},
                                  pools.on(sockets_of_ports[i])));
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
