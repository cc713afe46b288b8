// The exception path (dataplane/kernel_path.h) in the data path meshgate builds: the external
// port and its kernel interface are net_ring devices (what a ring's TX queue takes its RX queue
// gives back), so the test reads what the gateway sent out of the port and what it handed to
// the kernel, frame by frame. The workers are driven burst by burst, as in data_path_test.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "dataplane/kernel_path.h"
#include "tests/support/frames.h"
#include "tests/support/gateway_fixture.h"

namespace
{

using namespace meshgate;
using namespace meshgate::test_support;
namespace dp = meshgate::dataplane;
using bytes = std::vector<uint8_t>;

const mac_address client_mac = *parse_mac("02:00:00:00:00:aa");
const ipv4_address port_address = *parse_ipv4("203.0.113.10");
const ipv4_address client = *parse_ipv4("203.0.113.50");
const ipv4_address vip = *parse_ipv4("198.51.100.10");
constexpr uint16_t workers = 2;

// ext on net_ring0 with its kernel interface on net_ring1 (a queue pair per worker), und on
// net_null2; service "web" (tcp 8000) on any address, "vip" (tcp 8000) on a
// routed address; a kernel_syns_per_second small enough to count.
config::gateway_config gateway()
{
    config::gateway_config c = null_ports_gateway("exception_path_test", 1024);
    c.dpdk.lcore_ids = {0, 0, 0};
    c.ports[0].device = "net_ring0";
    c.ports[0].kernel_interface = "mgk-test";
    c.ports[1].device = "net_null2";
    c.neighbors.push_back(config::neighbor{client, client_mac});
    c.limits.kernel_syns_per_second = 20; // each worker 10, 8 at once
    for (const char *name : {"web", "vip"}) {
        config::service s;
        s.name = name;
        s.ports.push_back(config::service_port{.published = 8000, .target = 80});
        s.tasks = {task_on_n1("10.255.0.5")};
        if (std::string(name) == "vip") s.address = vip;
        c.services.push_back(s);
    }
    return c;
}

class eal_environment : public ::testing::Environment
{
  public:
    void SetUp() override
    {
        const char *argv[] = {"exception_path_test",
                              "--no-huge",
                              "-m",
                              "256",
                              "--no-pci",
                              "--file-prefix=exception_path_test",
                              "--no-telemetry",
                              "-l",
                              "0",
                              "--vdev=net_ring0",
                              "--vdev=net_ring1",
                              "--vdev=net_null2,no-rx=1",
                              "--log-level=error"};
        ASSERT_GE(rte_eal_init(sizeof argv / sizeof argv[0], const_cast<char **>(argv)), 0);
        devices = gateway_devices::open(gateway(), workers);
        ASSERT_EQ(rte_eth_dev_get_port_by_name("net_ring1", &kernel), 0);
        rte_eth_conf conf{};
        ASSERT_EQ(rte_eth_dev_configure(kernel, workers, workers, &conf), 0);
        for (uint16_t q = 0; q < workers; ++q) {
            ASSERT_EQ(rte_eth_rx_queue_setup(kernel, q, 256, 0, nullptr, devices.pool), 0);
            ASSERT_EQ(rte_eth_tx_queue_setup(kernel, q, 256, 0, nullptr), 0);
        }
        ASSERT_EQ(rte_eth_dev_start(kernel), 0);
        devices.ports[0].kernel_port_id = kernel;
    }
    void TearDown() override { rte_eal_cleanup(); }
    static inline gateway_devices devices;
    static inline uint16_t kernel = 0;
};
[[maybe_unused]] auto *const eal = ::testing::AddGlobalTestEnvironment(new eal_environment);

// Frames waiting in RX queue Q of ring port PORT (what its TX queue Q took), taken out.
std::vector<bytes> take(uint16_t port, uint16_t q = 0)
{
    std::vector<bytes> out;
    rte_mbuf *m[32];
    for (uint16_t n; (n = rte_eth_rx_burst(port, q, m, 32)) != 0;)
        for (uint16_t i = 0; i < n; ++i) {
            const auto *p = rte_pktmbuf_mtod(m[i], const uint8_t *);
            out.emplace_back(p, p + rte_pktmbuf_data_len(m[i]));
            rte_pktmbuf_free(m[i]);
        }
    return out;
}

bytes segment(ipv4_address to, uint16_t port, uint8_t flags, uint16_t client_port = 40000)
{
    return tcp_frame({.to = ext_mac,
                      .from = client_mac,
                      .client = client,
                      .published = to,
                      .client_port = client_port,
                      .published_port = port,
                      .flags = flags});
}

// An ARP request from the client for WHO.
bytes arp_request(ipv4_address who)
{
    bytes f(sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr));
    auto *eth = reinterpret_cast<rte_ether_hdr *>(f.data());
    std::memset(eth->dst_addr.addr_bytes, 0xff, 6);
    std::memcpy(eth->src_addr.addr_bytes, client_mac.bytes.data(), 6);
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
    auto *arp = reinterpret_cast<rte_arp_hdr *>(eth + 1);
    arp->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
    arp->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    arp->arp_hlen = 6;
    arp->arp_plen = 4;
    arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REQUEST);
    std::memcpy(arp->arp_data.arp_sha.addr_bytes, client_mac.bytes.data(), 6);
    arp->arp_data.arp_sip = rte_cpu_to_be_32(client.value);
    arp->arp_data.arp_tip = rte_cpu_to_be_32(who.value);
    return f;
}

// An ICMP message of TYPE from the client to the port address (an echo reply is the answer to
// a ping the host sent).
bytes icmp(uint8_t type)
{
    bytes f(sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_icmp_hdr));
    auto *eth = reinterpret_cast<rte_ether_hdr *>(f.data());
    std::memcpy(eth->dst_addr.addr_bytes, ext_mac.bytes.data(), 6);
    std::memcpy(eth->src_addr.addr_bytes, client_mac.bytes.data(), 6);
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(sizeof(rte_ipv4_hdr) + sizeof(rte_icmp_hdr));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_ICMP;
    ip->src_addr = rte_cpu_to_be_32(client.value);
    ip->dst_addr = rte_cpu_to_be_32(port_address.value);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto *h = reinterpret_cast<rte_icmp_hdr *>(ip + 1);
    h->icmp_type = type;
    h->icmp_ident = RTE_BE16(7);
    h->icmp_cksum = static_cast<uint16_t>(~rte_raw_cksum(h, sizeof *h));
    return f;
}

const rte_tcp_hdr &tcp_of(const bytes &f)
{
    return *reinterpret_cast<const rte_tcp_hdr *>(f.data() + sizeof(rte_ether_hdr) +
                                                  sizeof(rte_ipv4_hdr));
}

class ExceptionPath : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        g = std::make_unique<gateway_fixture>(gateway(), eal_environment::devices);
        take(port()), take(kernel());
    }
    void TearDown() override { take(port()), take(kernel()); }

    static uint16_t port() { return eal_environment::devices.ports[0].port_id; }
    static uint16_t kernel() { return eal_environment::kernel; }

    void send(const bytes &frame)
    {
        rte_mbuf *m = nullptr;
        ASSERT_TRUE(g->load(&m, 1, std::span(&frame, 1), 0));
        g->burst(0, &m, 1, 0);
    }
    uint64_t port_counter(uint64_t dp::port_counters::*c) const
    {
        return g->worker(0).counters.ports[0].*c;
    }

    std::unique_ptr<gateway_fixture> g;
};

// A SYN to a port of the port address that nothing publishes (BGP) is the host's: the kernel
// gets the frame as it came, and the gateway sends no RST of its own.
TEST_F(ExceptionPath, UnpublishedTcpGoesToTheKernelAsItCame)
{
    ASSERT_TRUE(dp::has_kernel(g->worker(0), 0));
    const bytes syn = segment(port_address, 179, RTE_TCP_SYN_FLAG);
    send(syn);
    const std::vector<bytes> handed = take(kernel());
    ASSERT_EQ(handed.size(), 1u);
    // As it came, but for the Ethernet padding the IPv4 check trims.
    EXPECT_EQ(handed[0], bytes(syn.begin(), syn.begin() + sizeof(rte_ether_hdr) +
                                                sizeof(rte_ipv4_hdr) + sizeof(rte_tcp_hdr)));
    EXPECT_TRUE(take(port()).empty()) << "no RST: the kernel answers";
    EXPECT_EQ(port_counter(&dp::port_counters::to_kernel), 1u);
    EXPECT_EQ(g->connections->size(), 0u);
}

// A published port stays the mesh's: a connection, nothing for the kernel.
TEST_F(ExceptionPath, PublishedPortIsTheMeshs)
{
    send(segment(port_address, 8000, RTE_TCP_SYN_FLAG));
    EXPECT_EQ(g->connections->size(), 1u);
    EXPECT_TRUE(take(kernel()).empty());
}

// A routed service address is the mesh's alone: its published port opens a connection, an
// unpublished one gets the gateway's RST, the kernel sees neither.
TEST_F(ExceptionPath, RoutedAddressIsServedAndNeverTheHosts)
{
    send(segment(vip, 8000, RTE_TCP_SYN_FLAG));
    EXPECT_EQ(g->connections->size(), 1u);
    send(segment(vip, 179, RTE_TCP_SYN_FLAG, 40001));
    EXPECT_TRUE(take(kernel()).empty());
    const std::vector<bytes> out = take(port());
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(tcp_of(out[0]).tcp_flags & RTE_TCP_RST_FLAG);
}

// The gateway answers ARP for its address itself and the kernel gets a copy (it keeps its own
// neighbors); it does not answer for a routed address, and the kernel hears nothing of it.
TEST_F(ExceptionPath, ArpIsAnsweredAndCopiedToTheKernel)
{
    const bytes request = arp_request(port_address);
    send(request);
    const std::vector<bytes> handed = take(kernel());
    ASSERT_EQ(handed.size(), 1u);
    EXPECT_EQ(handed[0], request);
    const std::vector<bytes> out = take(port());
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(
        reinterpret_cast<const rte_arp_hdr *>(out[0].data() + sizeof(rte_ether_hdr))->arp_opcode,
        RTE_BE16(RTE_ARP_OP_REPLY));
    send(arp_request(vip));
    EXPECT_TRUE(take(port()).empty());
    EXPECT_TRUE(take(kernel()).empty());
}

// A ping is the gateway's to answer; an echo reply (to a ping the host sent) is the kernel's.
TEST_F(ExceptionPath, PingsAreAnsweredEchoRepliesGoToTheKernel)
{
    send(icmp(RTE_IP_ICMP_ECHO_REQUEST));
    EXPECT_EQ(take(port()).size(), 1u);
    EXPECT_TRUE(take(kernel()).empty());
    send(icmp(RTE_IP_ICMP_ECHO_REPLY));
    EXPECT_EQ(take(kernel()).size(), 1u);
    EXPECT_TRUE(take(port()).empty());
}

// A SYN flood to the host's port 179 takes only its own share: over kernel_syns_per_second the
// SYNs are counted drops, and the host's established session (ACKs) still gets through.
TEST_F(ExceptionPath, SynFloodToTheHostIsRateLimitedApartFromItsSessions)
{
    constexpr uint16_t flood = 200;
    const uint64_t t0 = rte_rdtsc();
    for (uint16_t i = 0; i < flood; ++i)
        send(segment(port_address, 179, RTE_TCP_SYN_FLAG, static_cast<uint16_t>(20000 + i)));
    const double seconds = static_cast<double>(rte_rdtsc() - t0) / rte_get_tsc_hz();
    const size_t admitted = take(kernel()).size();
    // Worker 0's share: 10 a second, 8 at once; whatever the time the sends took.
    EXPECT_LE(admitted, 8u + static_cast<size_t>(10 * seconds) + 1);
    EXPECT_EQ(port_counter(&dp::port_counters::kernel_rate_drops), flood - admitted);
    EXPECT_EQ(g->worker(0).counters.drops[static_cast<size_t>(dp::drop_reason::kernel_rate)],
              flood - admitted);
    send(segment(port_address, 179, RTE_TCP_ACK_FLAG, 179));
    EXPECT_EQ(take(kernel()).size(), 1u) << "the session's segments have their own share";
}

// What the kernel sends out of its interface leaves by the port, as it is, at the worker's
// next housekeeping pass.
TEST_F(ExceptionPath, WhatTheKernelSendsLeavesByThePort)
{
    const bytes from_host = segment(client, 40000, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
    rte_mbuf *m = nullptr;
    ASSERT_TRUE(g->load(&m, 1, std::span(&from_host, 1), 0));
    ASSERT_EQ(rte_eth_tx_burst(kernel(), 0, &m, 1), 1); // the ring gives it back on RX
    g->housekeeping(0, 2);
    const std::vector<bytes> out = take(port());
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], from_host);
    EXPECT_EQ(port_counter(&dp::port_counters::from_kernel), 1u);
}

} // namespace
