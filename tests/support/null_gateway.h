// A gateway for tests that drive the data path themselves (GoogleTest only): two net_null
// ports (ext 203.0.113.10/24, und 192.168.50.1/24), node n1 at 192.168.50.11, service "web"
// (rr, tcp 8000 -> 80) with tasks 10.255.0.5 and 10.255.0.6, two workers; the EAL it needs;
// and a test base that sends a client's segments and a task's replies through a worker and
// reads the connection table. Header-only: it uses GoogleTest's assertions.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include <rte_eal.h>
#include <rte_tcp.h>

#include "control/api/control_api.h"
#include "dataplane/conntrack.h"
#include "tests/support/frames.h"
#include "tests/support/gateway_fixture.h"

namespace meshgate::test_support
{

inline const mac_address client_mac = *parse_mac("02:00:00:00:00:aa");
inline const ipv4_address published = *parse_ipv4("203.0.113.10");
inline const ipv4_address client = *parse_ipv4("203.0.113.50");
inline constexpr uint16_t workers = 2;

// The gateway above (rr: the first connection goes to .5).
inline config::gateway_config null_gateway(uint32_t connections = 1024)
{
    config::gateway_config c = null_ports_gateway("null_gateway", connections);
    c.dpdk.lcore_ids = {0, 0, 0};
    c.neighbors.push_back(config::neighbor{client, client_mac});
    config::service s;
    s.name = "web";
    s.scheduler = config::scheduler_kind::rr;
    s.ports.push_back(
        config::service_port{.proto = config::protocol::tcp, .published = 8000, .target = 80});
    s.tasks = {task_on_n1("10.255.0.5"), task_on_n1("10.255.0.6")};
    c.services.push_back(s);
    return c;
}

// EAL without hugepages and the two ports, opened once per test program (a closed vdev is gone
// for good); PROGRAM names its files. Register it with ::testing::AddGlobalTestEnvironment.
class null_gateway_eal : public ::testing::Environment
{
  public:
    explicit null_gateway_eal(std::string program) : program_(std::move(program)) {}
    void SetUp() override
    {
        const std::string prefix = "--file-prefix=" + program_;
        const char *argv[] = {program_.c_str(),
                              "--no-huge",
                              "-m",
                              "256",
                              "--no-pci",
                              prefix.c_str(),
                              "--no-telemetry",
                              "-l",
                              "0",
                              "--vdev=net_null0,no-rx=1",
                              "--vdev=net_null1,no-rx=1",
                              "--log-level=error"};
        const int argc = sizeof(argv) / sizeof(argv[0]);
        ASSERT_GE(rte_eal_init(argc, const_cast<char **>(argv)), 0) << "rte_eal_init failed";
        devices = gateway_devices::open(null_gateway(), workers);
    }
    void TearDown() override { rte_eal_cleanup(); }
    static inline gateway_devices devices;

  private:
    std::string program_;
};

// A test on the null gateway: a client's segments and a task's replies through the worker it
// names, and what the connection table holds.
class NullGatewayTest : public ::testing::Test
{
  protected:
    void start(const config::gateway_config &c)
    {
        g = std::make_unique<gateway_fixture>(c, null_gateway_eal::devices);
    }

    // The client's segment with FLAGS from CLIENT_PORT, through worker WORKER.
    void client_sends(uint16_t client_port, uint8_t flags, size_t worker = 0,
                      uint16_t published_port = 8000)
    {
        const std::vector<uint8_t> f = tcp_frame({.to = ext_mac,
                                                  .from = client_mac,
                                                  .client = client,
                                                  .published = published,
                                                  .client_port = client_port,
                                                  .published_port = published_port,
                                                  .flags = flags});
        send(0, f, worker);
    }

    // The client's segment from CLIENT_PORT to port 8000 with FLAGS, SEQ, ACK and PAYLOAD bytes
    // of data, through worker 0.
    void client_segment(uint16_t client_port, uint8_t flags, uint32_t seq, uint32_t ack,
                        uint16_t payload = 0)
    {
        send(0,
             tcp_frame({.to = ext_mac,
                        .from = client_mac,
                        .client = client,
                        .published = published,
                        .client_port = client_port,
                        .published_port = 8000,
                        .flags = flags,
                        .seq = seq,
                        .ack = ack,
                        .payload = payload}),
             0);
    }

    // The task's reply with FLAGS on the connection of CLIENT_PORT, through worker WORKER, its
    // ack ACK or else the client's ISN + 1 where the connection knows it (a cookie, a PROXY
    // header).
    void task_replies(uint16_t client_port, uint8_t flags, size_t worker = 0,
                      std::optional<uint32_t> ack = std::nullopt)
    {
        const dataplane::connection *c = connection_of(client_port);
        ASSERT_NE(c, nullptr);
        send(1,
             reply_frame({.port_mac = und_mac,
                          .node_mac = node_mac,
                          .overlay_mac = docker_mac_for(*parse_ipv4("10.255.0.2")),
                          .port_address = *parse_ipv4("192.168.50.1"),
                          .node_address = *parse_ipv4("192.168.50.11"),
                          .flags = flags,
                          .ack = ack.value_or(c->proxy_start)},
                         *c),
             worker);
    }

    void send(uint16_t port, const std::vector<uint8_t> &frame, size_t worker)
    {
        rte_mbuf *m = nullptr;
        ASSERT_TRUE(g->load(&m, 1, std::span(&frame, 1), 0));
        g->burst(port, &m, 1, worker);
    }

    static dataplane::flow_key forward_key(uint16_t client_port)
    {
        return dataplane::make_flow_key(
            rte_cpu_to_be_32(client.value), rte_cpu_to_be_32(published.value),
            rte_cpu_to_be_16(client_port), rte_cpu_to_be_16(8000), IPPROTO_TCP);
    }

    // The live connection of CLIENT_PORT as WORKER finds it, or nullptr.
    const dataplane::connection *connection_of(uint16_t client_port, size_t worker = 0) const
    {
        const dataplane::flow_key key = forward_key(client_port);
        const dataplane::conn_ref r =
            g->connections->lookup(static_cast<uint8_t>(worker), dataplane::direction::forward, key,
                                   dataplane::connection_table::hash(key));
        return r.hit() ? &g->connections->at(r.index()) : nullptr;
    }

    // The handshake of CLIENT_PORT's connection through worker 0: it is established.
    void establish(uint16_t client_port)
    {
        client_sends(client_port, RTE_TCP_SYN_FLAG);
        task_replies(client_port, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
        client_sends(client_port, RTE_TCP_ACK_FLAG);
        const dataplane::connection *c = connection_of(client_port);
        ASSERT_NE(c, nullptr);
        ASSERT_EQ(c->tcp(), dataplane::tcp_state::established);
    }

    // The task id of ADDRESS in service web.
    uint16_t task_id(const char *address) const
    {
        return g->api->ids().task({"web", *parse_ipv4(address)})->id;
    }

    std::unique_ptr<gateway_fixture> g;
};

} // namespace meshgate::test_support
