// config::load(): a complete file round-trips into the structs; every invalid file under
// configs/invalid/ gives its exact FILE:LINE:COL: message; the example configs load.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/config/lcores.h"
#include "control/runtime/eal.h"

namespace meshgate::config
{
namespace
{

const std::string test_dir = MESHGATE_CONFIG_TEST_DIR;       // tests/control/config/configs
const std::string example_dir = MESHGATE_EXAMPLE_CONFIG_DIR; // config/

// The machine the test files are written for, whatever machine runs the tests.
load_options four_cpus()
{
    return load_options{{0, 1, 2, 3}};
}

ipv4_address ip(const char *text)
{
    return *parse_ipv4(text);
}
mac_address mac(const char *text)
{
    return *parse_mac(text);
}

std::vector<std::string> error_texts(const load_result &r)
{
    std::vector<std::string> out;
    for (const config_error &e : r.errors)
        out.push_back(e.to_string());
    return out;
}

// --- a complete valid file --------------------------------------------------------------

class FullConfig : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        result = load(test_dir + "/valid/full.toml", load_options{{0, 1, 2, 3, 4, 5, 6, 7}});
        ASSERT_TRUE(result.errors.empty()) << ::testing::PrintToString(error_texts(result));
        ASSERT_TRUE(result.config.has_value());
        c = &*result.config;
    }
    load_result result;
    const gateway_config *c = nullptr;
};

TEST_F(FullConfig, Dpdk)
{
    EXPECT_EQ(c->file, test_dir + "/valid/full.toml");
    EXPECT_EQ(c->dpdk.lcores, "1,3-4");
    EXPECT_EQ(c->dpdk.lcore_ids, (std::vector<unsigned>{1, 3, 4}));
    EXPECT_EQ(c->dpdk.memory_mb, 65536u); // what 134217728 connections need
    EXPECT_TRUE(c->dpdk.no_huge);
    EXPECT_EQ(c->dpdk.file_prefix, "mg_test-1");
    EXPECT_EQ(c->dpdk.extra_args,
              (std::vector<std::string>{"--log-level=lib.eal:debug", "--no-pci"}));
    EXPECT_EQ(c->dpdk.mbufs, 131071u);
    EXPECT_EQ(c->dpdk.rx_descriptors, 512);
    EXPECT_EQ(c->dpdk.tx_descriptors, 2048);
}

TEST_F(FullConfig, Ports)
{
    ASSERT_EQ(c->ports.size(), 2u);
    const port &ext = c->ports[0];
    EXPECT_EQ(ext.name, "ext");
    EXPECT_EQ(ext.device, "0000:3b:00.0");
    EXPECT_EQ(ext.role, port_role::external);
    EXPECT_EQ(ext.address, (ipv4_prefix{ip("203.0.113.10"), 24}));
    EXPECT_EQ(ext.gateway, ip("203.0.113.1"));
    EXPECT_EQ(ext.mtu, 1400);
    EXPECT_EQ(ext.mac, mac("02:00:00:00:00:10"));
    EXPECT_EQ(ext.at.line, 12u);
    EXPECT_EQ(ext.at.column, 1u);

    const port &under = c->ports[1];
    EXPECT_EQ(under.name, "under_lay-2");
    EXPECT_EQ(under.device, "net_tap1,iface=mg-underlay");
    EXPECT_EQ(under.role, port_role::both);
    EXPECT_EQ(under.address, (ipv4_prefix{ip("192.168.50.1"), 24}));
    EXPECT_FALSE(under.gateway.has_value());
    EXPECT_EQ(under.mtu, 1500); // the default
    EXPECT_FALSE(under.mac.has_value());
    EXPECT_EQ(under.at.line, 21u);
}

TEST_F(FullConfig, Neighbors)
{
    ASSERT_EQ(c->neighbors.size(), 2u);
    EXPECT_EQ(c->neighbors[0].address, ip("203.0.113.1"));
    EXPECT_EQ(c->neighbors[0].mac, mac("02:00:00:00:00:01"));
    EXPECT_EQ(c->neighbors[1].address, ip("192.168.50.2"));
    EXPECT_EQ(c->neighbors[1].mac, mac("02:00:00:00:00:02"));
}

TEST_F(FullConfig, Overlay)
{
    EXPECT_EQ(c->overlay.vni, 16777215u);
    EXPECT_EQ(c->overlay.udp_port, 8472);
    EXPECT_EQ(c->overlay.address, (ipv4_prefix{ip("10.0.0.2"), 24}));
    EXPECT_EQ(c->overlay.mac, mac("02:42:00:00:00:99"));
    EXPECT_EQ(c->overlay.snat_addresses,
              (std::vector<ipv4_address>{ip("10.0.0.3"), ip("10.0.0.254")}));
}

TEST_F(FullConfig, Nodes)
{
    ASSERT_EQ(c->nodes.size(), 2u);
    EXPECT_EQ(c->nodes[0].name, "node-1.example");
    EXPECT_EQ(c->nodes[0].address, ip("192.168.50.2"));
    EXPECT_EQ(c->nodes[0].mac, mac("02:00:00:00:01:11"));
    EXPECT_EQ(c->nodes[0].at.line, 43u);
    EXPECT_EQ(c->nodes[1].name, "node-2");
    EXPECT_EQ(c->nodes[1].address, ip("192.168.50.7"));
    EXPECT_FALSE(c->nodes[1].mac.has_value());
}

TEST_F(FullConfig, Services)
{
    ASSERT_EQ(c->services.size(), 2u);
    const service &web = c->services[0];
    EXPECT_EQ(web.name, "web");
    EXPECT_EQ(web.scheduler, scheduler_kind::wrr);
    EXPECT_EQ(web.persistence_timeout, 3600u);
    EXPECT_EQ(web.max_new_connections_per_second, 500u);
    EXPECT_EQ(web.address, ip("203.0.113.10"));
    EXPECT_EQ(web.at.line, 52u);
    ASSERT_EQ(web.ports.size(), 2u);
    EXPECT_EQ(web.ports[0].proto, protocol::udp);
    EXPECT_EQ(web.ports[0].published, 53);
    EXPECT_EQ(web.ports[0].target, 5353);
    EXPECT_EQ(web.ports[0].at.line, 58u);
    EXPECT_EQ(web.ports[0].at.column, 3u);
    EXPECT_EQ(web.ports[1].proto, protocol::tcp); // the default
    EXPECT_EQ(web.ports[1].published, 65535);
    EXPECT_EQ(web.ports[1].target, 65535); // defaults to published
    ASSERT_EQ(web.tasks.size(), 2u);
    EXPECT_EQ(web.tasks[0].address, ip("10.0.0.5"));
    EXPECT_EQ(web.tasks[0].node, "node-1.example");
    EXPECT_EQ(web.tasks[0].weight, 0u);
    EXPECT_EQ(web.tasks[0].mac, mac("02:00:00:00:05:05"));
    EXPECT_EQ(web.tasks[0].at.line, 64u);
    EXPECT_EQ(web.tasks[1].address, ip("10.0.0.6"));
    EXPECT_EQ(web.tasks[1].node, "node-2");
    EXPECT_EQ(web.tasks[1].weight, 65535u);
    EXPECT_EQ(web.tasks[1].mac, mac("02:42:0a:00:00:06")); // docker_mac_for

    // udp/53 on any address beside udp/53 on 203.0.113.10: not a duplicate.
    const service &api = c->services[1];
    EXPECT_EQ(api.name, "api");
    EXPECT_EQ(api.scheduler, scheduler_kind::maglev);
    EXPECT_EQ(api.persistence_timeout, 0u);
    EXPECT_EQ(api.max_new_connections_per_second, 0u);
    EXPECT_FALSE(api.address.has_value());
    ASSERT_EQ(api.ports.size(), 1u);
    EXPECT_EQ(api.ports[0].proto, protocol::udp);
    EXPECT_EQ(api.ports[0].published, 53);
    EXPECT_TRUE(api.tasks.empty());
}

TEST_F(FullConfig, SwarmLimitsTimeoutsStatsLog)
{
    ASSERT_TRUE(c->swarm.has_value());
    EXPECT_EQ(c->swarm->endpoint, "tcp://192.168.50.2:2376");
    EXPECT_EQ(c->swarm->network, "my-ingress");
    EXPECT_EQ(c->swarm->tls_cert, "/etc/meshgate/cert.pem");
    EXPECT_EQ(c->swarm->tls_key, "/etc/meshgate/key.pem");
    EXPECT_EQ(c->swarm->tls_ca, "/etc/meshgate/ca.pem");
    EXPECT_EQ(c->limits.connections, 134217728u);
    EXPECT_EQ(c->limits.icmp_errors_per_second, 0u);
    EXPECT_EQ(c->overlay.snat_port_min, 30000);
    EXPECT_EQ(c->overlay.snat_port_max, 39999);
    EXPECT_EQ(c->limits.new_connections_per_source, 20u);
    EXPECT_EQ(c->limits.syn_cookies, meshgate::dataplane::syn_cookie_mode::under_pressure);
    ASSERT_TRUE(c->limits.syn_cookie_secret.has_value());
    EXPECT_EQ(c->limits.syn_cookie_secret->k0, 0x0011223344556677ULL);
    EXPECT_EQ(c->limits.syn_cookie_secret->k1, 0x8899aabbccddeeffULL);
    EXPECT_EQ(c->timeouts.tcp_established, 2147483648u);
    EXPECT_EQ(c->timeouts.tcp_fin, 1u);
    EXPECT_EQ(c->timeouts.tcp_close, 2u);
    EXPECT_EQ(c->timeouts.tcp_syn, 3u);
    EXPECT_EQ(c->timeouts.udp, 4u);
    EXPECT_EQ(c->timeouts.udp_unreplied, 5u);
    EXPECT_EQ(c->timeouts.half_open_under_pressure, 6u);
    EXPECT_EQ(c->timeouts.removed_task_grace, 0u);
    EXPECT_EQ(c->stats.listen, "");
    EXPECT_EQ(c->log.level, "critical");
    EXPECT_FALSE(c->reload.watch);
    EXPECT_EQ(c->reload.debounce_ms, 2000u);
}

// --- defaults ----------------------------------------------------------------------------

TEST(ConfigDefaults, MinimalFileTakesEveryDefault)
{
    const load_result r = load(test_dir + "/valid/minimal.toml", four_cpus());
    ASSERT_TRUE(r.errors.empty()) << ::testing::PrintToString(error_texts(r));
    const gateway_config &c = *r.config;
    EXPECT_EQ(c.dpdk.lcores, "0-1");
    EXPECT_EQ(c.dpdk.lcore_ids, (std::vector<unsigned>{0, 1}));
    EXPECT_FALSE(c.dpdk.memory_mb.has_value());
    EXPECT_FALSE(c.dpdk.no_huge);
    EXPECT_EQ(c.dpdk.file_prefix, "meshgate");
    EXPECT_FALSE(c.dpdk.mbufs.has_value());
    EXPECT_EQ(c.dpdk.rx_descriptors, 1024);
    EXPECT_EQ(c.dpdk.tx_descriptors, 1024);
    EXPECT_EQ(c.ports[0].role, port_role::external);
    EXPECT_EQ(c.overlay.vni, 4096u);
    EXPECT_EQ(c.overlay.udp_port, 4789);
    EXPECT_EQ(c.overlay.mac, mac("02:42:0a:ff:00:02"));
    EXPECT_FALSE(c.swarm.has_value());
    EXPECT_EQ(c.services[0].tasks[0].weight, 1u);
    EXPECT_EQ(c.limits.connections, 1048576u);
    EXPECT_EQ(c.limits.icmp_errors_per_second, 1000u);
    EXPECT_EQ(c.limits.new_connections_per_source, 0u);
    EXPECT_EQ(c.services[0].max_new_connections_per_second, 0u);
    EXPECT_EQ(c.timeouts.tcp_established, 900u);
    EXPECT_EQ(c.timeouts.udp, 300u);
    EXPECT_EQ(c.timeouts.udp_unreplied, 30u);
    EXPECT_EQ(c.timeouts.half_open_under_pressure, 5u);
    EXPECT_EQ(c.timeouts.removed_task_grace, 10u);
    EXPECT_EQ(c.stats.listen, "127.0.0.1:9091");
    EXPECT_EQ(c.log.level, "info");
    EXPECT_TRUE(c.reload.watch);
    EXPECT_EQ(c.reload.debounce_ms, 500u);
    EXPECT_EQ(c.ports[0].kernel_interface, "");
    EXPECT_EQ(c.limits.kernel_packets_per_second, 20000u);
    EXPECT_EQ(c.limits.kernel_syns_per_second, 1000u);
    EXPECT_EQ(c.limits.syn_cookies, meshgate::dataplane::syn_cookie_mode::under_pressure);
    EXPECT_FALSE(c.limits.syn_cookie_secret.has_value());
    EXPECT_EQ(c.drain.stop_delay_ms, 2000u);
}

// The keys of more than one gateway: a port's kernel interface, a routed service address, the
// rates toward the kernel and the stop delay.
TEST(ConfigCluster, KernelInterfaceRoutedAddressAndDrain)
{
    const std::string path = ::testing::TempDir() + "/cluster.toml";
    std::ofstream(path) << R"([dpdk]
lcores = "0-1"
[[port]]
name = "ext"
device = "net_null0"
role = "both"
address = "203.0.113.10/24"
kernel_interface = "mg-ext"
[overlay]
address = "10.255.0.2/16"
[[node]]
name = "n1"
address = "203.0.113.11"
[[service]]
name = "web"
address = "198.51.100.10"
  [[service.port]]
  published = 80
  [[service.task]]
  address = "10.255.0.5"
  node = "n1"
[limits]
kernel_packets_per_second = 5000
kernel_syns_per_second = 100
[drain]
stop_delay_ms = 0
)";
    const load_result r = load(path, four_cpus());
    ASSERT_TRUE(r.errors.empty()) << ::testing::PrintToString(error_texts(r));
    EXPECT_EQ(r.config->ports[0].kernel_interface, "mg-ext");
    EXPECT_EQ(r.config->services[0].address, ip("198.51.100.10"));
    EXPECT_EQ(r.config->limits.kernel_packets_per_second, 5000u);
    EXPECT_EQ(r.config->limits.kernel_syns_per_second, 100u);
    EXPECT_EQ(r.config->drain.stop_delay_ms, 0u);
}

// [cluster]: a gateway of a group, its peers on the underlay port's link, its key file.
std::string cluster_config(const std::string &cluster, bool kernel = true)
{
    return R"([dpdk]
lcores = "0-1"
[[port]]
name = "ext"
device = "net_null0"
role = "external"
address = "203.0.113.10/24"
[[port]]
name = "und"
device = "net_null1"
role = "underlay"
address = "192.168.50.1/24"
)" + std::string(kernel ? "kernel_interface = \"mg-und\"\n" : "\n") +
           R"([overlay]
address = "10.255.0.2/16"
)" + cluster;
}

const std::string group_file = ::testing::TempDir() + "/group.toml";

load_result load_cluster(const std::string &text)
{
    std::ofstream(group_file) << text;
    return load(group_file, four_cpus());
}

TEST(ConfigCluster, PeersKeyAndTimers)
{
    const std::string key = ::testing::TempDir() + "/group.key";
    std::ofstream(key) << "0123456789abcdef0123456789abcdef";
    const load_result r = load_cluster(cluster_config(R"([cluster]
name = "gw-a"
key_file = ")" + key + R"("
heartbeat_ms = 50
dead_after_ms = 150
  [[cluster.peer]]
  name = "gw-b"
  address = "192.168.50.2"
  [[cluster.peer]]
  name = "gw-c"
  address = "192.168.50.3"
)"));
    ASSERT_TRUE(r.errors.empty()) << ::testing::PrintToString(error_texts(r));
    const cluster_section &c = *r.config->cluster;
    EXPECT_EQ(c.name, "gw-a");
    EXPECT_EQ(c.key_file, key);
    EXPECT_EQ(c.heartbeat_ms, 50u);
    EXPECT_EQ(c.dead_after_ms, 150u);
    EXPECT_EQ(c.sync_port, 7410u);
    ASSERT_EQ(c.peers.size(), 2u);
    EXPECT_EQ(c.peers[1].name, "gw-c");
    EXPECT_EQ(c.peers[1].address, ip("192.168.50.3"));
    EXPECT_EQ(cluster_port(*r.config), &r.config->ports[1]);

    // The SYN cookie secret the key file gives: the same for the same file, on every gateway.
    ASSERT_TRUE(c.syn_cookie_secret.has_value());
    auto secret_of = [&](const std::string &contents) {
        std::ofstream(key) << contents;
        const load_result again = load_cluster(
            cluster_config("[cluster]\nname = \"gw-b\"\nkey_file = \"" + key + "\"\n"));
        EXPECT_TRUE(again.errors.empty()) << ::testing::PrintToString(error_texts(again));
        return again.config->cluster->syn_cookie_secret.value_or(
            meshgate::dataplane::siphash_key{});
    };
    EXPECT_EQ(secret_of("0123456789abcdef0123456789abcdef"), *c.syn_cookie_secret);
    EXPECT_NE(secret_of("0123456789abcdef0123456789abcdeF"), *c.syn_cookie_secret);
    EXPECT_NE(c.syn_cookie_secret->k0, 0u);
}

TEST(ConfigCluster, MistakesAreNamedWhereTheyAre)
{
    const std::pair<std::string, std::string> cases[] = {
        {"[cluster]\nname = \"gw-a\"\n  [[cluster.peer]]\n  name = \"gw-b\"\n"
         "  address = \"192.168.51.2\"\n",
         "18:3: peer 'gw-b' at 192.168.51.2 is not on the subnet 192.168.50.0/24 of port 'und': "
         "a survivor takes a dead peer's address by ARP"},
        {"[cluster]\nname = \"gw-a\"\n  [[cluster.peer]]\n  name = \"gw-a\"\n"
         "  address = \"192.168.50.2\"\n",
         "19:10: gateway name 'gw-a' is already used on line 16"},
        {"[cluster]\nname = \"gw-a\"\ndead_after_ms = 150\n",
         "18:17: dead_after_ms 150 is less than two heartbeats (heartbeat_ms 100): one late "
         "heartbeat would kill a peer"},
        {"[cluster]\nname = \"gw-a\"\nkey_file = \"/nonexistent/group.key\"\n",
         "18:12: key_file '/nonexistent/group.key' cannot be read"},
    };
    for (const auto &[cluster, expected] : cases) {
        const load_result r = load_cluster(cluster_config(cluster));
        EXPECT_EQ(::testing::PrintToString(error_texts(r)),
                  ::testing::PrintToString(std::vector<std::string>{group_file + ":" + expected}))
            << cluster;
    }
    const load_result no_kernel =
        load_cluster(cluster_config("[cluster]\nname = \"gw-a\"\n", false));
    EXPECT_EQ(::testing::PrintToString(error_texts(no_kernel)),
              ::testing::PrintToString(std::vector<std::string>{
                  group_file +
                  ":16:1: [cluster] speaks through the kernel: port 'und' (the first facing the "
                  "underlay) needs a kernel_interface"}));
}

// --- invalid files: one expected error each ----------------------------------------------

struct invalid_case {
    const char *file;     // under configs/invalid/
    const char *expected; // LINE:COL: message
};

void PrintTo(const invalid_case &c, std::ostream *os)
{
    *os << c.file;
}

class InvalidConfig : public ::testing::TestWithParam<invalid_case>
{
};

const invalid_case invalid_cases[] = {
    {"unknown_key", "9:1: unknown key 'adress' in [[port]]"},
    {"unknown_table", "34:1: unknown table [stat]"},
    {"unknown_array_table", "34:1: unknown table [[services]]"},
    {"wrong_type", "10:7: 'mtu' must be an integer"},
    {"vni_range", "18:7: vni 0 out of range 1..16777215"},
    {"mtu_range", "16:7: mtu 9001 out of range 68..9000"},
    {"integer_overflow", "35:15: connections 99999999999999999999 out of range 1..134217728"},
    {"lcores_one", "3:10: lcores '0' names 1 lcore, at least 2 are needed (control + worker)"},
    {"lcores_missing_cpu", "3:10: lcores 4-7 do not exist on this machine (cpus: 0-3)"},
    {"lcores_syntax", "3:10: lcores '0-': bad item '0-', expected a list like '0-1', '0,2-3' or "
                      "'0@0,1@1,2@1'"},
    {"lcores_pinned_missing_cpu", "3:10: cpu 9 does not exist on this machine (cpus: 0-3)"},
    {"lcores_out_of_range", "3:10: lcores '0,200': lcore 200 out of range 0..127, expected a list "
                            "like '0-1', '0,2-3' or '0@0,1@1,2@1'"},
    {"port_name_long", "6:8: name 'external-uplink-0' is longer than 15 characters"},
    {"port_name_twice", "12:8: port name 'ext' is already used on line 6"},
    {"kernel_interface_twice", "17:20: kernel_interface 'mg-host' is already used on line 10"},
    {"kernel_interface_long",
     "10:20: kernel_interface 'meshgate-external' is longer than 15 characters"},
    {"service_address_multicast",
     "19:1: service 'web' address 239.1.2.3 is not a unicast address clients can reach"},
    {"port_network_address", "9:11: address 203.0.113.0 is the network address of 203.0.113.0/24"},
    {"gateway_off_subnet", "10:11: gateway 198.51.100.1 is not inside the subnet 203.0.113.0/24"},
    {"no_underlay_port", "5:1: no [[port]] with role underlay or both: nodes need one"},
    {"missing_device", "11:1: missing required key 'device' in [[port]]"},
    {"missing_overlay", "1:1: missing required table [overlay]"},
    {"multicast_mac", "24:7: mac 01:00:5e:00:00:01 is multicast, expected a unicast MAC"},
    {"snat_off_subnet", "20:33: snat address 10.254.0.3 is not inside the subnet 10.255.0.0/16"},
    {"task_unknown_node", "32:10: task node 'node-9' is not a [[node]]"},
    {"published_twice", "38:15: published port tcp/8000 is already used by service 'web'"},
    {"task_off_overlay",
     "31:13: task address 10.0.0.5 is not inside the overlay subnet 10.255.0.0/16"},
    {"task_twice", "34:13: task address 10.255.0.5 is already used on line 31"},
    {"service_without_port", "25:1: service 'web' has no [[service.port]]"},
    {"scheduler_unknown", "27:13: scheduler 'random' is not one of: maglev, rr, wrr, lc, wlc, sh"},
    {"proxy_protocol_unknown", "27:18: proxy_protocol 'v3' is not one of: off, v1, v2"},
    {"syn_cookies_unknown", "26:15: syn_cookies 'yes' is not one of: off, under_pressure, always"},
    {"syn_cookie_secret_short", "26:21: syn_cookie_secret must be 32 hex digits (a 128-bit key), "
                                "not \"0123456789abcdef\""},
    {"proxy_protocol_udp", "27:18: service 'web' has proxy_protocol = \"v1\": a PROXY header goes "
                           "ahead of a TCP stream; its port 8000 is udp"},
    {"weight_range", "33:12: weight 65536 out of range 0..65535"},
    {"stats_listen",
     "35:10: listen 'localhost:9091' is not HOST:PORT like 127.0.0.1:9091, or \"\" for off"},
    {"log_level",
     "35:9: level 'verbose' is not one of: trace, debug, info, warn, error, critical, off"},
    {"swarm_endpoint",
     "35:12: endpoint 'http://manager:2375' is not unix:///PATH or tcp://HOST:PORT"},
    {"timeout_zero", "35:11: tcp_fin 0 out of range 1..2147483648"},
    {"snat_ports_range",
     "20:14: snat_ports '2000-1000' is not a range MIN-MAX of ports in 1..65535, "
     "like \"1024-65535\""},
    {"rate_negative", "27:34: max_new_connections_per_second -5 out of range 0..2147483647"},
    {"too_many_ports", "70:1: too many [[port]] tables: at most 8"},
    {"port_as_table", "5:1: 'port' must be an array of tables, written [[port]]"},
    {"neighbor_off_subnet", "35:11: neighbor 198.51.100.1 is not on the subnet of any [[port]]"},
    {"syntax_error",
     "18:6: missing value after key-value separator '=': expected value, but got nothing"},
    {"duplicate_key", "19:7: value (\"vni\") already exists: value defined twice"},
    {"nesting_too_deep", "35:37: nested deeper than 32 levels"},
    {"not_utf8", "26:14: not UTF-8"},
    {"node_unreachable", "28:11: node address 203.0.113.77 is reached by no underlay port: it is "
                         "on no underlay port's subnet and no underlay port has a gateway"},
    {"mbufs_too_few",
     "4:9: mbufs 4095 is less than the 16383 that the queues' descriptors and the workers hold"},
    {"memory_too_small",
     "4:13: memory_mb 160 is too small: 1048576 connections with 2 port(s) and 1 worker(s) need "
     "195 MiB of DPDK memory (lower [limits] connections or raise memory_mb)"},
};

TEST_P(InvalidConfig, GivesItsErrorAtItsPosition)
{
    const std::string file = test_dir + "/invalid/" + GetParam().file + ".toml";
    const load_result r = load(file, four_cpus());
    EXPECT_FALSE(r.config.has_value());
    EXPECT_EQ(error_texts(r), std::vector<std::string>{file + ":" + GetParam().expected});
}

INSTANTIATE_TEST_SUITE_P(Files, InvalidConfig, ::testing::ValuesIn(invalid_cases),
                         [](const auto &info) { return std::string(info.param.file); });

TEST(InvalidConfigs, EveryFileInTheDirectoryHasACase)
{
    std::set<std::string> listed;
    for (const invalid_case &c : invalid_cases)
        listed.insert(c.file);
    listed.insert("many_errors");
    for (const auto &entry : std::filesystem::directory_iterator(test_dir + "/invalid"))
        EXPECT_TRUE(listed.count(entry.path().stem().string())) << entry.path();
}

TEST(InvalidConfigs, SeveralErrorsAreAllReportedInFileOrder)
{
    const std::string file = test_dir + "/invalid/many_errors.toml";
    const load_result r = load(file, four_cpus());
    EXPECT_FALSE(r.config.has_value());
    const std::vector<std::string> expected = {
        "4:13: memory_mb -512 out of range 1..1048576",
        "6:1: missing required key 'name' in [[port]]",
        "7:1: unknown key 'nam' in [[port]]",
        "10:11: address '203.0.113.10/33' is not an address with prefix length like 192.0.2.1/24",
        "17:7: mtu 67 out of range 68..9000",
        "20:7: vni 16777216 out of range 1..16777215",
        "32:15: published 0 out of range 1..65535",
        "35:10: task node 'node-2' is not a [[node]]",
        "38:7: 'udp' must be an integer",
    };
    std::vector<std::string> with_file;
    for (const std::string &e : expected)
        with_file.push_back(file + ":" + e);
    EXPECT_EQ(error_texts(r), with_file);
}

// --- files that are not configs ----------------------------------------------------------

TEST(UnreadableConfig, MissingFileIsOneErrorAtLineZero)
{
    const load_result r = load(test_dir + "/no-such-file.toml");
    EXPECT_FALSE(r.config.has_value());
    EXPECT_EQ(error_texts(r),
              std::vector<std::string>{test_dir + "/no-such-file.toml:0:0: cannot open " +
                                       test_dir + "/no-such-file.toml: no such file or directory"});
}

TEST(UnreadableConfig, DirectoryIsAnError)
{
    const load_result r = load(test_dir);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].message, "cannot read " + test_dir + ": is a directory");
}

TEST(Lcores, PinnedFormPutsTwoLcoresOnOneCpuAndAsksEalForLcores)
{
    const lcore_list l = parse_lcore_list("0@0,1@1,2@1");
    EXPECT_EQ(l.error, "");
    EXPECT_EQ(l.ids, (std::vector<unsigned>{0, 1, 2}));
    EXPECT_EQ(l.cpus, (std::vector<unsigned>{0, 1, 1}));
    EXPECT_TRUE(l.pinned);

    gateway_config c;
    c.dpdk.lcores = "0@0,1@1,2@1";
    c.dpdk.lcore_ids = l.ids;
    c.dpdk.lcores_pinned = true;
    const std::vector<std::string> args = eal_arguments(c);
    ASSERT_GE(args.size(), 5u);
    EXPECT_EQ(std::vector<std::string>(args.begin() + 1, args.begin() + 5),
              (std::vector<std::string>{"--lcores", "0@0,1@1,2@1", "--main-lcore", "0"}));
}

TEST(Lcores, PlainFormRunsEachLcoreOnItsOwnCpu)
{
    const lcore_list l = parse_lcore_list("1,3-4");
    EXPECT_EQ(l.cpus, (std::vector<unsigned>{1, 3, 4}));
    EXPECT_FALSE(l.pinned);
    EXPECT_EQ(parse_lcore_list("1@").error, "bad item '1@'");
    EXPECT_EQ(parse_lcore_list("1-2@3").error, "bad item '1-2@3'");
    EXPECT_EQ(parse_lcore_list("0@0,0@1").error, "lcore 0 is listed twice");
}

class HostileConfig : public ::testing::Test
{
  protected:
    load_result load_text(const std::string &text)
    {
        const std::string path = ::testing::TempDir() + "/meshgate-config-test-" +
                                 ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                                 ".toml";
        std::ofstream(path, std::ios::binary) << text;
        load_result r = load(path, four_cpus());
        std::filesystem::remove(path);
        return r;
    }
};

TEST_F(HostileConfig, DeeplyNestedArraysDoNotCrash)
{
    const load_result r = load_text("x = " + std::string(200000, '[') + std::string(200000, ']'));
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].message, "nested deeper than 32 levels");
    EXPECT_EQ(r.errors[0].column, 37u);
}

TEST_F(HostileConfig, LongDottedKeysDoNotCrash)
{
    std::string key = "a";
    for (int i = 0; i < 100000; ++i)
        key += ".a";
    const load_result r = load_text(key + " = 1\n");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].message, "nested deeper than 32 levels");
}

TEST_F(HostileConfig, HugeFileIsRefused)
{
    const load_result r = load_text(std::string(2 << 20, '#'));
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].message, "file is larger than 1 MiB");
}

TEST_F(HostileConfig, LongStringsAreCutShortInMessages)
{
    const load_result r = load_text("[log]\nlevel = \"" + std::string(2000, 'x') + "\"\n");
    ASSERT_FALSE(r.errors.empty());
    for (const config_error &e : r.errors)
        EXPECT_LT(e.message.size(), 200u) << e.message;
}

// toml11 copies a value's line into the value: long lines cost the square of their length.
TEST_F(HostileConfig, LongLinesAreRefused)
{
    std::string line = "snat_addresses = [";
    for (int i = 0; i < 50000; ++i)
        line += "\"bad\",";
    const load_result r = load_text("[overlay]\naddress = \"10.255.0.2/16\"\n" + line + "]\n");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].line, 3u);
    EXPECT_EQ(r.errors[0].column, 2049u);
    EXPECT_EQ(r.errors[0].message, "line longer than 2048 characters");
}

TEST_F(HostileConfig, HugeArraysAreRejectedWithoutFloodingErrors)
{
    std::string text = "[overlay]\naddress = \"10.255.0.2/16\"\nsnat_addresses = [\n";
    for (int i = 0; i < 50000; ++i)
        text += "\"bad\",\n";
    const load_result r = load_text(text + "]\n");
    ASSERT_FALSE(r.errors.empty());
    EXPECT_LE(r.errors.size(), 101u);
    EXPECT_TRUE(std::any_of(r.errors.begin(), r.errors.end(), [](const config_error &e) {
        return e.message == "snat_addresses has 50000 entries, at most 256";
    }));
}

TEST_F(HostileConfig, ManyErrorsAreCappedAtOneHundred)
{
    std::string text;
    for (int i = 0; i < 500; ++i)
        text += "unknown_" + std::to_string(i) + " = 1\n";
    const load_result r = load_text(text);
    ASSERT_EQ(r.errors.size(), 101u);
    EXPECT_EQ(r.errors.back().message, "too many errors: 403 more not shown");
}

TEST_F(HostileConfig, ControlCharactersInTextAreNotPrinted)
{
    const load_result r = load_text("[log]\nlevel = \"a\\nb\\u001b[31m\"\n");
    ASSERT_FALSE(r.errors.empty());
    for (const config_error &e : r.errors)
        EXPECT_EQ(e.message.find_first_of("\n\x1b"), std::string::npos) << e.message;
}

// --- what the tables hold: checked before anything is compiled --------------------------

// A valid file with N services of one port and one task each (tasks_each per service).
std::string services_file(size_t n, size_t tasks_each = 1)
{
    std::string text = "[[port]]\nname = \"ext\"\ndevice = \"net_null0\"\n"
                       "address = \"203.0.113.10/24\"\n"
                       "[[port]]\nname = \"und\"\ndevice = \"net_null1\"\nrole = \"underlay\"\n"
                       "address = \"192.168.50.1/24\"\n"
                       "[overlay]\naddress = \"10.0.0.2/8\"\n"
                       "[[node]]\nname = \"n\"\naddress = \"192.168.50.11\"\n";
    uint32_t task = 0;
    for (size_t i = 0; i < n; ++i) {
        text += "[[service]]\nname = \"s" + std::to_string(i) + "\"\n[[service.port]]\n" +
                "published = " + std::to_string(1 + i % 65535) + "\nprotocol = \"" +
                (i < 65535 ? "tcp" : "udp") + "\"\n";
        for (size_t k = 0; k < tasks_each; ++k, ++task)
            text += "[[service.task]]\naddress = \"" + to_string(ipv4_address{0x0a000003 + task}) +
                    "\"\nnode = \"n\"\n";
    }
    return text;
}

TEST_F(HostileConfig, AtMostMaxServices)
{
    EXPECT_TRUE(load_text(services_file(1024)).errors.empty());
    const load_result r = load_text(services_file(1025));
    ASSERT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(error_texts(r));
    EXPECT_EQ(r.errors[0].message, "too many services: at most 1024");
    EXPECT_EQ(r.errors[0].line, 15u + 1024u * 8u); // the header of the 1025th
}

TEST_F(HostileConfig, AtMostMaxTasks)
{
    EXPECT_TRUE(load_text(services_file(4, 4096)).errors.empty());
    const load_result r = load_text(services_file(5, 3277)); // 16385 tasks
    ASSERT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(error_texts(r));
    EXPECT_EQ(r.errors[0].message, "too many tasks: at most 16384 in all services");
}

// The listener index is 16 bits: the API path (no file limit) must be stopped by validate().
TEST(Validate, AtMostMaxListeners)
{
    const load_result base = load(test_dir + "/valid/minimal.toml", four_cpus());
    ASSERT_TRUE(base.config.has_value());
    gateway_config c = *base.config;
    c.services.resize(2, c.services[0]);
    c.services[1].name = "second";
    c.services[1].address = ip("203.0.113.10");
    c.services[0].ports.clear();
    c.services[1].ports.clear();
    for (uint32_t p = 1; p <= 65534; ++p) // and one in the second service: 65535 in all
        c.services[0].ports.push_back(service_port{
            .proto = protocol::tcp, .published = static_cast<uint16_t>(p), .target = 80});
    c.services[1].ports.push_back(
        service_port{.proto = protocol::tcp, .published = 1, .target = 80});
    c.services[1].tasks.clear();
    EXPECT_EQ(validate(c).size(), 0u) << validate(c)[0].to_string();
    c.services[1].ports.push_back(
        service_port{.proto = protocol::udp, .published = 1, .target = 80});
    const std::vector<config_error> errors = validate(c);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message, "too many published ports: at most 65535 in all services");
}

TEST(Validate, ApiObjectsAreCheckedAndNamedByOrigin)
{
    const load_result base = load(test_dir + "/valid/minimal.toml", four_cpus());
    ASSERT_TRUE(base.config.has_value());
    gateway_config c = *base.config;
    service s = c.services[0];
    s.from = origin::api;
    s.name_at = s.at = source_position{};
    s.tasks[0].address = ip("192.0.2.9"); // not on the overlay
    s.tasks[0].address_at = source_position{};
    c.services.push_back(s); // and a second service of the same name
    const std::vector<config_error> errors = validate(c);
    std::vector<std::string> texts;
    for (const config_error &e : errors)
        texts.push_back(e.to_string());
    EXPECT_EQ(texts, (std::vector<std::string>{
                         "api:0:0: service name '" + s.name + "' is already used on line " +
                             std::to_string(c.services[0].name_at.line),
                         "api:0:0: published port tcp/" + std::to_string(s.ports[0].published) +
                             " is already used by service '" + s.name + "'",
                         "api:0:0: task address 192.0.2.9 is not inside the overlay subnet " +
                             to_string(ipv4_prefix{ipv4_address{c.overlay.address.address.value &
                                                                c.overlay.address.mask()},
                                                   c.overlay.address.length}),
                     }));
}

// --- config_error ------------------------------------------------------------------------

TEST(ConfigError, PrintsFileLineColumnMessage)
{
    const config_error e{"gw.toml", 12, 7, "mtu 70000 out of range 68..9000"};
    EXPECT_EQ(e.to_string(), "gw.toml:12:7: mtu 70000 out of range 68..9000");
}

// --- the example configurations ----------------------------------------------------------

TEST(ExampleConfigs, DemoLoads)
{
    const load_result r = load(example_dir + "/demo.toml", four_cpus());
    ASSERT_TRUE(r.errors.empty()) << ::testing::PrintToString(error_texts(r));
    EXPECT_EQ(r.config->ports.size(), 2u);
    EXPECT_EQ(r.config->dpdk.file_prefix, "meshgate-demo");
    ASSERT_EQ(r.config->services.size(), 2u);
    EXPECT_EQ(r.config->services[0].tasks.size(), 3u);
    EXPECT_EQ(r.config->services[0].proxy, proxy_protocol::off);
    EXPECT_EQ(r.config->services[1].name, "whoami-client");
    EXPECT_EQ(r.config->services[1].proxy, proxy_protocol::v1);
}

TEST(ExampleConfigs, GatewayHostLoads)
{
    const load_result r = load(example_dir + "/gateway-host.toml", four_cpus());
    ASSERT_TRUE(r.errors.empty()) << ::testing::PrintToString(error_texts(r));
    EXPECT_EQ(r.config->dpdk.lcore_ids, (std::vector<unsigned>{0, 1}));
    EXPECT_TRUE(r.config->swarm.has_value());
    EXPECT_GE(r.config->services.size(), 3u);
}

} // namespace
} // namespace meshgate::config
