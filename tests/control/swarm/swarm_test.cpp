// The swarm sync's readers and its merge with the file, on Engine API answers recorded from a
// real Docker 20.10 one-node swarm (tests/control/swarm/engine_api/; how they were made: its
// README).
#include <gtest/gtest.h>

#include <algorithm>

#include "control/swarm/objects.h"
#include "control/swarm/state.h"
#include "tests/control/swarm/recorded.h"

namespace meshgate::swarm
{
namespace
{

ipv4_address ip(const char *text)
{
    return *parse_ipv4(text);
}

template <typename T>
T value_of(read<T> r)
{
    EXPECT_TRUE(r.ok()) << r.error;
    return r.ok() ? std::move(*r.value) : T{};
}

const service &named(const std::vector<service> &list, const std::string &name)
{
    auto it =
        std::find_if(list.begin(), list.end(), [&](const service &s) { return s.name == name; });
    EXPECT_NE(it, list.end()) << name;
    return *it;
}

const config::service *find(const std::vector<config::service> &list, const std::string &name)
{
    auto it = std::find_if(list.begin(), list.end(),
                           [&](const config::service &s) { return s.name == name; });
    return it == list.end() ? nullptr : &*it;
}

const std::string ingress_id = "fx24pg5m5z4i9jtlax2yls5ys";

TEST(EngineObjects, NetworkGivesVniSubnetRangePeersAndEndpointHosts)
{
    const network n = value_of(read_network(recorded("network.json")));
    EXPECT_EQ(n.id, ingress_id);
    EXPECT_EQ(n.name, "ingress");
    EXPECT_EQ(n.vni, 4097u); // a re-created ingress network: not 4096
    EXPECT_EQ(to_string(n.subnet), "10.0.0.0/24");
    ASSERT_TRUE(n.ip_range);
    EXPECT_EQ(to_string(*n.ip_range), "10.0.0.0/25");
    ASSERT_EQ(n.peers.size(), 1u);
    EXPECT_EQ(n.peers[0], ip("192.168.77.1"));
    // Three tasks of web and the ingress sandbox's endpoint, all on the one node.
    EXPECT_EQ(n.endpoint_hosts.size(), 4u);
    EXPECT_EQ(n.endpoint_hosts.at(ip("10.0.0.3")), ip("192.168.77.1"));
    EXPECT_EQ(n.endpoint_hosts.at(ip("10.0.0.6")), ip("192.168.77.1"));
}

TEST(EngineObjects, ServicesWithSeveralPortsProtocolsAndModes)
{
    const std::vector<service> list = value_of(read_services(recorded("services-states.json")));
    EXPECT_EQ(list.size(), 8u);
    const service &web = named(list, "web");
    EXPECT_EQ(web.id, "qguxbkx2uy7z0y3xk52y2z194");
    ASSERT_EQ(web.ports.size(), 3u);
    EXPECT_EQ(web.ports[0].proto, config::protocol::udp);
    EXPECT_EQ(web.ports[0].published, 5353);
    EXPECT_EQ(web.ports[0].target, 53);
    EXPECT_EQ(web.ports[2].proto, config::protocol::tcp);
    EXPECT_EQ(web.ports[2].published, 8080);
    EXPECT_EQ(web.ports[2].target, 80);

    const service &multi = named(list, "multi");
    ASSERT_EQ(multi.ports.size(), 4u);
    EXPECT_EQ(multi.ports[1].proto, config::protocol::udp);
    EXPECT_EQ(multi.ports[3].published, 7003);
    EXPECT_EQ(multi.ports[3].mode, publish_mode::host);
    EXPECT_EQ(multi.ports[0].mode, publish_mode::ingress);

    EXPECT_EQ(named(list, "hostmode").ports.at(0).mode, publish_mode::host);
    EXPECT_TRUE(named(list, "done").ports.empty()); // publishes nothing: no Endpoint.Ports
}

TEST(SwarmState, ServiceLabelsSetSchedulerAffinityAndRate)
{
    const std::vector<service> list = value_of(read_services(recorded("services-labels.json")));
    EXPECT_EQ(named(list, "labelled").labels.at("team"), "web");
    const network n = value_of(read_network(recorded("network.json")));
    const state s = assemble(n, list, {}, {});
    const config::service &labelled = *find(s.services, "labelled");
    EXPECT_EQ(labelled.scheduler, config::scheduler_kind::rr);
    EXPECT_EQ(labelled.persistence_timeout, 300u);
    EXPECT_EQ(labelled.max_new_connections_per_second, 0u); // "many": the default stays
    EXPECT_EQ(find(s.services, "badscheduler")->scheduler, config::scheduler_kind::maglev);
    std::string said;
    for (const std::string &l : s.left_out)
        said += l + "\n";
    EXPECT_NE(said.find("service 'labelled': label com.meshgate.max_new_connections_per_second="
                        "many ignored: not a number"),
              std::string::npos)
        << said;
    EXPECT_NE(said.find("service 'badscheduler': label com.meshgate.scheduler=fastest ignored: "
                        "not one of: maglev, rr, wrr, lc, wlc, sh"),
              std::string::npos)
        << said;
}

TEST(SwarmState, ProxyProtocolLabelOnTcpServicesOnly)
{
    const network n = value_of(read_network(recorded("network.json")));
    auto published = [](config::protocol proto, uint16_t port) {
        return published_port{proto, port, port, publish_mode::ingress};
    };
    const std::vector<service> list = {
        {"id1",
         "v2",
         {published(config::protocol::tcp, 8000)},
         {},
         {{"com.meshgate.proxy_protocol", "v2"}}},
        {"id2",
         "wrong",
         {published(config::protocol::tcp, 8001)},
         {},
         {{"com.meshgate.proxy_protocol", "yes"}}},
        {"id3",
         "dns",
         {published(config::protocol::tcp, 53), published(config::protocol::udp, 53)},
         {},
         {{"com.meshgate.proxy_protocol", "v1"}}},
        {"id4", "plain", {published(config::protocol::tcp, 8002)}, {}, {}},
    };
    const state s = assemble(n, list, {}, {});
    EXPECT_EQ(find(s.services, "v2")->proxy, config::proxy_protocol::v2);
    EXPECT_EQ(find(s.services, "wrong")->proxy, config::proxy_protocol::off);
    EXPECT_EQ(find(s.services, "dns")->proxy, config::proxy_protocol::off);
    EXPECT_EQ(find(s.services, "plain")->proxy, config::proxy_protocol::off);
    std::string said;
    for (const std::string &l : s.left_out)
        said += l + "\n";
    EXPECT_NE(said.find("service 'wrong': label com.meshgate.proxy_protocol=yes ignored: not one "
                        "of: off, v1, v2"),
              std::string::npos)
        << said;
    EXPECT_NE(said.find("service 'dns': label com.meshgate.proxy_protocol=v1 ignored: the service "
                        "publishes UDP ports (TCP only)"),
              std::string::npos)
        << said;
}

TEST(EngineObjects, SctpPortsAreNamedNotCarried)
{
    const std::vector<service> list = value_of(read_services(recorded("services-sctp.json")));
    ASSERT_EQ(list.size(), 1u);
    ASSERT_EQ(list[0].ports.size(), 1u);
    EXPECT_EQ(list[0].ports[0].published, 9301);
    ASSERT_EQ(list[0].unsupported_ports.size(), 1u);
    EXPECT_EQ(list[0].unsupported_ports[0], "sctp 9300");
}

TEST(EngineObjects, TasksInEveryState)
{
    const std::vector<task> list = value_of(read_tasks(recorded("tasks-states.json"), ingress_id));
    auto by_prefix = [&](const std::string &prefix) -> const task & {
        auto it = std::find_if(list.begin(), list.end(),
                               [&](const task &t) { return t.id.starts_with(prefix); });
        EXPECT_NE(it, list.end()) << prefix;
        return *it;
    };
    struct expected {
        const char *id, *state, *desired, *address;
    };
    for (const expected &e : {
             expected{"7lyqra", "running", "running", "10.0.0.112"},
             expected{"ob3039", "running", "shutdown", "10.0.0.4"}, // being replaced: drains
             expected{"d1swgj", "shutdown", "shutdown", "10.0.0.3"},
             expected{"z5qiy5", "ready", "ready", "10.0.0.122"},
             expected{"l1gx80", "pending", "running", "10.0.0.121"}, // no node can take it
             expected{"igp17f", "complete", "shutdown", "10.0.0.119"},
             expected{"n40wzc", "failed", "shutdown", "10.0.0.8"},
             expected{"tgetds", "rejected", "ready", "10.0.0.125"},
             expected{"2ktmdu", "running", "running", nullptr}, // host mode: not on ingress
         }) {
        const task &t = by_prefix(e.id);
        EXPECT_EQ(t.state, e.state) << e.id;
        EXPECT_EQ(t.desired_state, e.desired) << e.id;
        if (e.address) {
            ASSERT_TRUE(t.address) << e.id;
            EXPECT_EQ(*t.address, ip(e.address)) << e.id;
        } else {
            EXPECT_FALSE(t.address) << e.id;
        }
    }
    EXPECT_TRUE(by_prefix("l1gx80").node_id.empty()); // pending: not assigned to a node
    EXPECT_EQ(by_prefix("7lyqra").node_id, "mr7gl8s20z13hf1ye941t0yp3");
    // Addresses on another network are not this one's.
    const std::vector<task> elsewhere = value_of(read_tasks(recorded("tasks-states.json"), "x"));
    EXPECT_TRUE(std::none_of(elsewhere.begin(), elsewhere.end(),
                             [](const task &t) { return t.address.has_value(); }));
}

TEST(EngineObjects, Nodes)
{
    const std::vector<node> list = value_of(read_nodes(recorded("nodes.json")));
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].id, "mr7gl8s20z13hf1ye941t0yp3");
    EXPECT_EQ(list[0].hostname, "vm");
    EXPECT_EQ(list[0].state, "ready");
    ASSERT_TRUE(list[0].address);
    EXPECT_EQ(*list[0].address, ip("192.168.77.1"));
}

TEST(EngineObjects, EventTypes)
{
    std::istringstream lines(recorded("events.jsonl"));
    std::map<std::string, int> types;
    for (std::string line; std::getline(lines, line);)
        ++types[event_type(line)];
    EXPECT_GT(types["service"], 0);
    EXPECT_GT(types["container"], 0);
    EXPECT_EQ(types.count(""), 0u);
    EXPECT_EQ(event_type("not json"), "");
    EXPECT_EQ(event_type("[1]"), "");
}

TEST(EngineObjects, DocumentsThatAreNotTheApisAreErrorsNotCrashes)
{
    EXPECT_EQ(read_services("{").error, "not JSON");
    EXPECT_EQ(read_services("{}").error, "services is not an array");
    const auto no_spec = read_services(R"([{"ID":"abc"}])");
    EXPECT_FALSE(no_spec.ok());
    EXPECT_NE(no_spec.error.find("services[0] abc"), std::string::npos) << no_spec.error;
    EXPECT_NE(no_spec.error.find("'Spec'"), std::string::npos) << no_spec.error;
    const auto bad_port = read_services(
        R"([{"ID":"a","Spec":{"Name":"s"},"Endpoint":{"Ports":[{"PublishedPort":70000,"TargetPort":1}]}}])");
    EXPECT_NE(bad_port.error.find("PublishedPort"), std::string::npos) << bad_port.error;
    EXPECT_FALSE(
        read_tasks(R"([{"ID":"t","ServiceID":"s","Status":{"State":1},"DesiredState":"running"}])",
                   "n")
            .ok());
    std::string network = recorded("network.json");
    const std::string vni = "\"4097\"";
    network.replace(network.find(vni), vni.size(), "\"0x10\"");
    EXPECT_NE(read_network(network).error.find("VNI"), std::string::npos);
    EXPECT_FALSE(read_nodes("null").ok());
}

state recorded_state(const char *network_file, const char *services_file, const char *tasks_file)
{
    const network n = value_of(read_network(recorded(network_file)));
    return assemble(n, value_of(read_services(recorded(services_file))),
                    value_of(read_tasks(recorded(tasks_file), n.id)),
                    value_of(read_nodes(recorded("nodes.json"))));
}

TEST(SwarmState, RunningTasksServeTasksBeingStoppedDrainTheRestAreLeftOut)
{
    const state s =
        recorded_state("network-many.json", "services-many.json", "tasks-draining.json");
    EXPECT_EQ(s.vni, 4097u);
    // badimage, failing, multi, web publish in ingress mode; hostmode only in host mode; done
    // publishes nothing.
    std::vector<std::string> names;
    for (const config::service &sv : s.services)
        names.push_back(sv.name);
    EXPECT_EQ(names, (std::vector<std::string>{"badimage", "failing", "multi", "web"}));
    const config::service &web = *find(s.services, "web");
    EXPECT_EQ(web.from, config::origin::swarm);
    ASSERT_EQ(web.tasks.size(), 3u);
    EXPECT_EQ(web.tasks[0].address, ip("10.0.0.3"));
    EXPECT_EQ(web.tasks[0].weight, 1u);
    EXPECT_EQ(web.tasks[0].node, "vm");
    EXPECT_EQ(to_string(web.tasks[0].mac), "02:42:0a:00:00:03");
    EXPECT_EQ(web.tasks[2].address, ip("10.0.0.5")); // running, desired "remove": drains
    EXPECT_EQ(web.tasks[2].weight, 0u);
    EXPECT_TRUE(find(s.services, "badimage")->tasks.empty()); // rejected tasks do not serve
    EXPECT_TRUE(find(s.services, "failing")->tasks.empty());

    const config::service &multi = *find(s.services, "multi");
    ASSERT_EQ(multi.ports.size(), 3u); // 7003 is published in host mode
    EXPECT_EQ(multi.ports[1].proto, config::protocol::udp);
    EXPECT_EQ(multi.ports[1].published, 7001);
    EXPECT_EQ(multi.ports[1].target, 71);

    ASSERT_EQ(s.nodes.size(), 1u);
    EXPECT_EQ(s.nodes[0].name, "vm");
    EXPECT_EQ(s.nodes[0].address, ip("192.168.77.1"));
    EXPECT_EQ(s.nodes[0].from, config::origin::swarm);
    ASSERT_EQ(s.left_out.size(), 1u);
    EXPECT_NE(s.left_out[0].find("'hostmode'"), std::string::npos) << s.left_out[0];
}

TEST(SwarmState, ARollingUpdate)
{
    const state s =
        recorded_state("network-states.json", "services-states.json", "tasks-states.json");
    const config::service &web = *find(s.services, "web");
    ASSERT_EQ(web.ports.size(), 3u);
    ASSERT_EQ(web.tasks.size(), 2u); // the new task runs, the old one drains, "ready" waits
    EXPECT_EQ(web.tasks[0].address, ip("10.0.0.4"));
    EXPECT_EQ(web.tasks[0].weight, 0u);
    EXPECT_EQ(web.tasks[1].address, ip("10.0.0.112"));
    EXPECT_EQ(web.tasks[1].weight, 1u);
    EXPECT_TRUE(find(s.services, "pending")->tasks.empty());
    EXPECT_TRUE(find(s.services, "completes")->tasks.empty());
}

TEST(SwarmState, SameAnswersSameState)
{
    EXPECT_EQ(recorded_state("network.json", "services.json", "tasks.json"),
              recorded_state("network.json", "services.json", "tasks.json"));
    EXPECT_FALSE(recorded_state("network.json", "services.json", "tasks.json") ==
                 recorded_state("network-many.json", "services-many.json", "tasks-draining.json"));
}

TEST(SwarmState, TwoNodesOfOneHostnameKeepApart)
{
    const network n = value_of(read_network(recorded("network.json")));
    std::vector<node> nodes = {{"aaaaaaaaaaaa1", "host", ip("192.168.77.1"), "ready"},
                               {"bbbbbbbbbbbb2", "host", ip("192.168.77.9"), "ready"}};
    std::vector<service> services = {
        {"s1", "web", {{config::protocol::tcp, 80, 80, publish_mode::ingress}}, {}, {}}};
    std::vector<task> tasks = {{"t1", "s1", "aaaaaaaaaaaa1", "running", "running", ip("10.0.0.50")},
                               {"t2", "s1", "bbbbbbbbbbbb2", "running", "running", ip("10.0.0.51")},
                               {"t3", "s1", "nobody", "running", "running", ip("10.0.0.52")}};
    const state s = assemble(n, services, tasks, nodes);
    ASSERT_EQ(s.nodes.size(), 2u);
    EXPECT_EQ(s.nodes[0].name, "host-aaaaaaaaaaaa");
    EXPECT_EQ(s.nodes[1].name, "host-bbbbbbbbbbbb");
    EXPECT_EQ(s.nodes[1].address, ip("192.168.77.9"));
    // A task on a node the API does not list has no tunnel to go by.
    ASSERT_EQ(s.services[0].tasks.size(), 2u);
    EXPECT_EQ(s.left_out.size(), 1u);
}

config::gateway_config file_config()
{
    config::gateway_config c;
    c.file = "gw.toml";
    c.overlay.address = *parse_ipv4_prefix("10.0.0.200/24");
    config::port underlay;
    underlay.name = "underlay";
    underlay.role = config::port_role::underlay;
    underlay.address = *parse_ipv4_prefix("192.168.77.2/24");
    c.ports.push_back(underlay);
    return c;
}

std::string all_notes(const merged &m)
{
    std::string notes;
    for (const std::string &note : m.notes)
        notes += note + "\n";
    return notes;
}

TEST(WithSwarm, SwarmServicesNodesAndVniJoinTheFiles)
{
    const state s =
        recorded_state("network-many.json", "services-many.json", "tasks-draining.json");
    config::gateway_config file = file_config();
    config::service own;
    own.name = "static";
    own.ports.push_back({config::protocol::tcp, 9999, 9999, {}, {}});
    file.services.push_back(own);
    const merged m = with_swarm(file, s);
    EXPECT_EQ(m.config.overlay.vni, 4097u);
    EXPECT_TRUE(m.notes.empty()); // vni not written; the address is outside Docker's range
    EXPECT_EQ(m.config.services.size(), 5u);
    EXPECT_EQ(m.config.services[0].name, "static");
    EXPECT_EQ(m.config.services[0].from, config::origin::file);
    EXPECT_EQ(find(m.config.services, "web")->from, config::origin::swarm);
    ASSERT_EQ(m.config.nodes.size(), 1u);
}

TEST(WithSwarm, AFileWithOnlySwarmAndTheRecordedSwarmMakeAValidConfiguration)
{
    config::load_result file =
        config::load(std::string(MESHGATE_CONFIG_TEST_DIR) + "/valid/swarm.toml");
    ASSERT_TRUE(file.config) << (file.errors.empty() ? "" : file.errors[0].to_string());
    ASSERT_TRUE(file.config->swarm);
    EXPECT_EQ(file.config->swarm->poll_interval_ms, 500u);
    EXPECT_EQ(file.config->swarm->resync_interval_ms, 30000u);
    EXPECT_TRUE(file.config->services.empty());
    const state s =
        recorded_state("network-many.json", "services-many.json", "tasks-draining.json");
    const merged m = with_swarm(*file.config, s);
    const std::vector<config::config_error> errors = config::validate(m.config);
    EXPECT_TRUE(errors.empty()) << errors[0].to_string();
    EXPECT_EQ(m.config.services.size(), 4u);
}

TEST(WithSwarm, TheFileWinsNamesPortsAndNodeAddresses)
{
    const state s =
        recorded_state("network-many.json", "services-many.json", "tasks-draining.json");
    config::gateway_config file = file_config();
    file.overlay.vni = 4096;
    file.overlay.vni_at = {12, 7};
    file.overlay.address = *parse_ipv4_prefix("10.0.0.20/24"); // inside --ip-range 10.0.0.0/25
    config::service web;
    web.name = "web";
    web.ports.push_back({config::protocol::tcp, 1, 1, {}, {}});
    config::service other;
    other.name = "other";
    other.ports.push_back({config::protocol::udp, 7001, 7001, {}, {}}); // multi's udp port
    file.services = {web, other};
    config::node n;
    n.name = "node-a";
    n.address = ip("192.168.77.1");
    file.nodes.push_back(n);

    const merged m = with_swarm(file, s);
    EXPECT_EQ(find(m.config.services, "web")->from, config::origin::file);
    EXPECT_EQ(find(m.config.services, "multi"), nullptr);
    EXPECT_NE(find(m.config.services, "failing"), nullptr);
    ASSERT_EQ(m.config.nodes.size(), 1u); // the swarm's node is the file's node-a
    EXPECT_EQ(find(m.config.services, "failing")->name, "failing");
    const std::string notes = all_notes(m);
    EXPECT_NE(notes.find("VNI 4097: used instead of [overlay] vni 4096"), std::string::npos)
        << notes;
    EXPECT_NE(notes.find("swarm service 'web' left out: the file has a service of that name"),
              std::string::npos)
        << notes;
    EXPECT_NE(notes.find("swarm service 'multi' left out: port 7001 is published by the file's "
                         "service 'other'"),
              std::string::npos)
        << notes;
    EXPECT_NE(notes.find("10.0.0.20 is in the range Docker gives tasks addresses from"),
              std::string::npos)
        << notes;
}

TEST(WithSwarm, SwarmTasksGoByTheFilesNodeAtTheirAddress)
{
    state s = recorded_state("network.json", "services.json", "tasks.json");
    config::gateway_config file = file_config();
    config::node n;
    n.name = "node-a";
    n.address = ip("192.168.77.1");
    file.nodes.push_back(n);
    config::node clash;
    clash.name = "vm";
    clash.address = ip("192.168.77.50");
    file.nodes.push_back(clash);
    const merged m = with_swarm(file, s);
    ASSERT_EQ(m.config.nodes.size(), 2u);
    for (const config::task &t : find(m.config.services, "web")->tasks)
        EXPECT_EQ(t.node, "node-a");

    // A swarm node whose name a file node has, at another address, goes by swarm-NAME.
    file.nodes.erase(file.nodes.begin());
    const merged m2 = with_swarm(file, s);
    ASSERT_EQ(m2.config.nodes.size(), 2u);
    EXPECT_EQ(m2.config.nodes[1].name, "swarm-vm");
    EXPECT_EQ(find(m2.config.services, "web")->tasks[0].node, "swarm-vm");
}

TEST(WithSwarm, WhatTheGatewayCannotServeIsLeftOutNotTheWholeSwarm)
{
    // A node off every underlay subnet (no gateway on the port), and a task at the gateway's
    // own overlay address (a network without --ip-range): validate() would refuse the whole
    // configuration; they are left out, the rest is served.
    const network n = value_of(read_network(recorded("network.json")));
    std::vector<node> nodes = {{"n1", "near", ip("192.168.77.1"), "ready"},
                               {"n2", "far", ip("172.16.0.9"), "ready"}};
    std::vector<service> services = {
        {"s1", "web", {{config::protocol::tcp, 80, 80, publish_mode::ingress}}, {}, {}}};
    std::vector<task> tasks = {{"t1", "s1", "n1", "running", "running", ip("10.0.0.50")},
                               {"t2", "s1", "n2", "running", "running", ip("10.0.0.51")},
                               {"t3", "s1", "n1", "running", "running", ip("10.0.0.200")}};
    const state s = assemble(n, services, tasks, nodes);
    ASSERT_EQ(s.services[0].tasks.size(), 3u);
    const merged m = with_swarm(file_config(), s);
    const config::service &web = *find(m.config.services, "web");
    ASSERT_EQ(web.tasks.size(), 1u);
    EXPECT_EQ(web.tasks[0].address, ip("10.0.0.50"));
    ASSERT_EQ(m.config.nodes.size(), 1u);
    EXPECT_EQ(m.config.nodes[0].name, "near");
    const std::string notes = all_notes(m);
    EXPECT_NE(notes.find("swarm node 'far' at 172.16.0.9 left out with its tasks: no underlay "
                         "port reaches it"),
              std::string::npos)
        << notes;
    EXPECT_NE(notes.find("swarm task 10.0.0.200 of 'web' left out: it is the gateway's overlay "
                         "address"),
              std::string::npos)
        << notes;
}

TEST(SwarmState, TwoNodesOfOneAddressAreOneTunnel)
{
    const network n = value_of(read_network(recorded("network.json")));
    std::vector<node> nodes = {{"n1", "old", ip("192.168.77.1"), "down"},
                               {"n2", "new", ip("192.168.77.1"), "ready"}};
    std::vector<service> services = {
        {"s1", "web", {{config::protocol::tcp, 80, 80, publish_mode::ingress}}, {}, {}}};
    std::vector<task> tasks = {{"t1", "s1", "n1", "running", "running", ip("10.0.0.50")},
                               {"t2", "s1", "n2", "running", "running", ip("10.0.0.51")}};
    const state s = assemble(n, services, tasks, nodes);
    ASSERT_EQ(s.nodes.size(), 1u);
    EXPECT_EQ(s.services[0].tasks[0].node, s.services[0].tasks[1].node);
}

} // namespace
} // namespace meshgate::swarm
