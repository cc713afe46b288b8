// control_api on a fake runtime (no DPDK): ids stay with names across reorders, removals and
// re-adds; removed tasks go through their grace and end; ids come back only when no connection
// names them; a change with errors changes nothing; restart-only keys are refused by name;
// gateways that reach one file by reloads in different orders publish the same Maglev tables.
#include "control/api/control_api.h"
#include "tests/support/fake_runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace meshgate
{
namespace
{

ipv4_address ip(const char *text)
{
    return *parse_ipv4(text);
}

config::gateway_config base_config()
{
    config::gateway_config c;
    c.file = "test.toml";
    c.dpdk.lcore_ids = {0, 1};
    config::port ext, und;
    ext.name = "ext";
    ext.device = "net_null0";
    ext.address = *parse_ipv4_prefix("203.0.113.10/24");
    und.name = "und";
    und.device = "net_null1";
    und.role = config::port_role::underlay;
    und.address = *parse_ipv4_prefix("192.168.50.1/24");
    c.ports = {ext, und};
    c.overlay.at = {1, 1}; // read from a file
    c.overlay.address = *parse_ipv4_prefix("10.255.0.2/16");
    c.overlay.mac = docker_mac_for(c.overlay.address.address);
    c.nodes.push_back(config::node{.name = "n1", .address = ip("192.168.50.11"), .mac = {}});
    c.nodes.push_back(config::node{.name = "n2", .address = ip("192.168.50.12"), .mac = {}});
    c.limits.connections = 1024;
    return c;
}

config::service service(const std::string &name, uint16_t port, std::vector<const char *> tasks,
                        config::scheduler_kind kind = config::scheduler_kind::rr)
{
    config::service s;
    s.name = name;
    s.scheduler = kind;
    s.ports.push_back(
        config::service_port{.proto = config::protocol::tcp, .published = port, .target = port});
    for (const char *t : tasks) {
        config::task k;
        k.address = ip(t);
        k.node = "n1";
        k.mac = docker_mac_for(k.address);
        s.tasks.push_back(k);
    }
    return s;
}

class ControlApi : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        gateway_runtime r;
        r.ports = {opened_port{"ext", "net_null0", 0, {}}, opened_port{"und", "net_null1", 1, {}}};
        r.publish = [this](const dataplane::dataplane_tables *t) {
            published = t;
            ++publishes;
        };
        r.synchronize = [this] { ++synchronizes; };
        r.active = [this](uint16_t id) { return active[id]; };
        r.prepare_settings = [this](const config::gateway_config *,
                                    const config::gateway_config &) { return settings_errors; };
        r.commit_settings = [this](const config::gateway_config *, const config::gateway_config &) {
            ++commits;
        };
        r.abort_settings = [] {};
        r.clock = [this] { return now; };
        api = std::make_unique<control_api>(std::move(r));
    }

    config::gateway_config three_services()
    {
        config::gateway_config c = base_config();
        c.services = {service("web", 80, {"10.255.0.5", "10.255.0.6"}),
                      service("dns", 53, {"10.255.0.7"}),
                      service("api", 8000, {"10.255.0.8", "10.255.0.9"})};
        return c;
    }

    uint16_t task_id(const std::string &s, const char *a)
    {
        const task_record *r = api->ids().task({s, ip(a)});
        EXPECT_NE(r, nullptr) << s << "/" << a;
        return r ? r->id : UINT16_MAX;
    }
    uint16_t service_id(const std::string &s) { return api->ids().service(s)->id; }
    dataplane::task_state state_of(uint16_t id) { return published->tasks.at(id).state; }

    std::unique_ptr<control_api> api;
    const dataplane::dataplane_tables *published = nullptr;
    int publishes = 0, synchronizes = 0, commits = 0;
    std::map<uint16_t, uint32_t> active;
    std::vector<config::config_error> settings_errors;
    double now = 1000;
};

TEST_F(ControlApi, StartGivesIdsLowestFirstInConfigOrder)
{
    const apply_result r = api->start(three_services());
    ASSERT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0].to_string());
    EXPECT_EQ(r.generation, 1u);
    EXPECT_EQ(service_id("web"), 0);
    EXPECT_EQ(service_id("dns"), 1);
    EXPECT_EQ(service_id("api"), 2);
    EXPECT_EQ(task_id("web", "10.255.0.5"), 0);
    EXPECT_EQ(task_id("api", "10.255.0.9"), 4);
    ASSERT_EQ(published, api->tables());
    EXPECT_EQ(published->listeners[published->first_listener(IPPROTO_TCP, RTE_BE16(53))].service,
              1);
    EXPECT_EQ(state_of(2), dataplane::task_state::serving);
    EXPECT_EQ(published->tasks[2].address, rte_cpu_to_be_32(ip("10.255.0.7").value));
    EXPECT_EQ(state_of(5), dataplane::task_state::absent);
}

TEST_F(ControlApi, ReorderingKeepsEveryId)
{
    ASSERT_TRUE(api->start(three_services()).ok);
    config::gateway_config c = three_services();
    std::swap(c.services[0], c.services[2]);
    std::swap(c.services[0].tasks[0], c.services[0].tasks[1]);
    const apply_result r = api->apply(c);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(service_id("web"), 0);
    EXPECT_EQ(service_id("api"), 2);
    EXPECT_EQ(task_id("api", "10.255.0.9"), 4);
    EXPECT_EQ(task_id("web", "10.255.0.6"), 1);
    EXPECT_EQ(r.changes.summary(), "no change"); // order is not what names things
}

TEST_F(ControlApi, RemovingTheFirstServiceKeepsTheOthersIdsAndEndsItsTasksAfterTheGrace)
{
    ASSERT_TRUE(api->start(three_services()).ok);
    config::gateway_config c = three_services();
    c.services.erase(c.services.begin());
    const uint64_t epoch = published->sweep_epoch;
    const apply_result r = api->apply(c);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.changes.services_removed, std::vector<std::string>{"web"});
    EXPECT_EQ(r.changes.tasks_removed.size(), 2u);
    EXPECT_EQ(service_id("dns"), 1);
    EXPECT_EQ(task_id("dns", "10.255.0.7"), 2);
    // web/10.255.0.5 (id 0) keeps serving its connections for removed_task_grace (10 s).
    EXPECT_EQ(state_of(0), dataplane::task_state::removed);
    EXPECT_EQ(published->sweep_epoch, epoch);
    EXPECT_EQ(published->first_listener(IPPROTO_TCP, RTE_BE16(80)), dataplane::no_listener);

    now += 9;
    EXPECT_FALSE(api->tick());
    EXPECT_EQ(state_of(0), dataplane::task_state::removed);
    now += 2;
    active[0] = 3; // three connections still name it
    EXPECT_TRUE(api->tick());
    EXPECT_EQ(state_of(0), dataplane::task_state::absent);
    EXPECT_EQ(state_of(1), dataplane::task_state::absent);
    EXPECT_EQ(published->sweep_epoch, epoch + 1); // the workers sweep them out
    EXPECT_EQ(api->ids().ending(), (std::vector<uint16_t>{0}));
    EXPECT_NE(api->ids().service("web"), nullptr); // held by its ending task

    // A new task does not get id 0 while a connection names it ...
    config::gateway_config more = c;
    more.services[0].tasks.push_back(service("x", 1, {"10.255.0.20"}).tasks[0]);
    ASSERT_TRUE(api->apply(more).ok);
    EXPECT_EQ(task_id("dns", "10.255.0.20"), 1);
    // ... and gets it once they are gone and a grace period of the workers has passed.
    active[0] = 0;
    const int syncs = synchronizes;
    api->tick();
    EXPECT_GT(synchronizes, syncs);
    EXPECT_TRUE(api->ids().ending().empty());
    EXPECT_EQ(api->ids().service("web"), nullptr);
    more.services[0].tasks.push_back(service("x", 1, {"10.255.0.21"}).tasks[0]);
    ASSERT_TRUE(api->apply(more).ok);
    EXPECT_EQ(task_id("dns", "10.255.0.21"), 0);
}

TEST_F(ControlApi, ATaskBackWithinItsGraceKeepsItsId)
{
    ASSERT_TRUE(api->start(three_services()).ok);
    config::gateway_config c = three_services();
    const config::task gone = c.services[2].tasks[0];
    c.services[2].tasks.erase(c.services[2].tasks.begin());
    ASSERT_TRUE(api->apply(c).ok);
    EXPECT_EQ(state_of(3), dataplane::task_state::removed);
    now += 5;
    c.services[2].tasks.push_back(gone);
    ASSERT_TRUE(api->apply(c).ok);
    EXPECT_EQ(task_id("api", "10.255.0.8"), 3);
    EXPECT_EQ(state_of(3), dataplane::task_state::serving);
    now += 60;
    EXPECT_FALSE(api->tick());
    EXPECT_EQ(state_of(3), dataplane::task_state::serving);
}

TEST_F(ControlApi, GraceZeroEndsAtOnceAndComesBackAsANewTask)
{
    config::gateway_config c = three_services();
    c.timeouts.removed_task_grace = 0;
    ASSERT_TRUE(api->start(c).ok);
    const config::task gone = c.services[1].tasks[0];
    c.services[1].tasks.clear();
    const uint64_t epoch = published->sweep_epoch;
    active[2] = 1;
    ASSERT_TRUE(api->apply(c).ok);
    EXPECT_EQ(state_of(2), dataplane::task_state::absent);
    EXPECT_EQ(published->sweep_epoch, epoch + 1);
    c.services[1].tasks.push_back(gone);
    ASSERT_TRUE(api->apply(c).ok);
    EXPECT_EQ(task_id("dns", "10.255.0.7"), 5); // id 2 still ends
    EXPECT_EQ(state_of(2), dataplane::task_state::absent);
}

TEST_F(ControlApi, ErrorsChangeNothing)
{
    ASSERT_TRUE(api->start(three_services()).ok);
    const auto *before = published;
    config::gateway_config c = three_services();
    c.services[1].tasks[0].address = ip("192.0.2.1"); // off the overlay
    c.services.push_back(service("new", 9000, {"10.255.0.30"}));
    const apply_result r = api->apply(c);
    EXPECT_FALSE(r.ok);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].message,
              "task address 192.0.2.1 is not inside the overlay subnet 10.255.0.0/16");
    EXPECT_EQ(published, before);
    EXPECT_EQ(api->generation(), 1u);
    EXPECT_EQ(api->ids().service("new"), nullptr);
    EXPECT_EQ(api->config().services.size(), 3u);

    // A live setting that fails (the stats listener cannot bind) also changes nothing.
    settings_errors = {config::config_error{"test.toml", 9, 10, "cannot listen"}};
    c = three_services();
    c.services.push_back(service("new", 9000, {"10.255.0.30"}));
    EXPECT_FALSE(api->apply(c).ok);
    EXPECT_EQ(published, before);
    EXPECT_EQ(api->ids().service("new"), nullptr);
}

TEST_F(ControlApi, KeysThatNeedARestartAreRefusedByName)
{
    ASSERT_TRUE(api->start(three_services()).ok);
    config::gateway_config c = three_services();
    c.dpdk.lcores = "0-2";
    c.dpdk.at = {2, 1};
    c.limits.connections = 2048;
    c.limits.connections_at = {30, 15};
    c.ports[1].device = "net_null7";
    c.ports[1].at = {12, 1};
    const apply_result r = api->apply(c);
    EXPECT_FALSE(r.ok);
    std::vector<std::string> texts;
    for (const config::config_error &e : r.errors)
        texts.push_back(e.to_string());
    EXPECT_EQ(texts,
              (std::vector<std::string>{
                  "test.toml:2:1: [dpdk] lcores '0-1' -> '0-2': a restart is needed to change it",
                  "test.toml:12:1: [[port]] 'und' device: a restart is needed to change it",
                  "test.toml:30:15: [limits] connections 1024 -> 2048: a restart is needed to "
                  "change it"}));
    EXPECT_EQ(api->generation(), 1u);
}

// The packet pool and the rings are made once at start: a reload that changes them is refused
// by name, not answered ok with nothing applied.
TEST_F(ControlApi, PoolAndRingSizesNeedARestart)
{
    ASSERT_TRUE(api->start(three_services()).ok);
    config::gateway_config c = three_services();
    c.dpdk.at = {2, 1};
    c.dpdk.mbufs = 65535;
    c.dpdk.mbufs_at = {5, 9};
    c.dpdk.rx_descriptors = 2048;
    c.dpdk.tx_descriptors = 512;
    const apply_result r = api->apply(c);
    EXPECT_FALSE(r.ok);
    std::vector<std::string> texts;
    for (const config::config_error &e : r.errors)
        texts.push_back(e.to_string());
    EXPECT_EQ(texts, (std::vector<std::string>{
                         "test.toml:2:1: [dpdk] rx_descriptors 1024 -> 2048: a restart is needed "
                         "to change it",
                         "test.toml:2:1: [dpdk] tx_descriptors 1024 -> 512: a restart is needed "
                         "to change it",
                         "test.toml:5:9: [dpdk] mbufs: a restart is needed to change it"}));
    EXPECT_EQ(api->generation(), 1u);
}

TEST_F(ControlApi, UnchangedServicesKeepTheirSchedulerObject)
{
    config::gateway_config c = three_services();
    c.services[2].scheduler = config::scheduler_kind::maglev;
    ASSERT_TRUE(api->start(c).ok);
    const auto maglev = published->services[2].scheduler;
    const auto dns = published->services[1].scheduler;
    c.services[1].tasks[0].weight = 5;
    ASSERT_TRUE(api->apply(c).ok);
    EXPECT_EQ(published->services[2].scheduler, maglev); // the same object, not rebuilt
    EXPECT_NE(published->services[1].scheduler, dns);
    EXPECT_EQ(published->services[1].scheduler->weights, std::vector<uint32_t>{5});
    // Picks name task ids.
    EXPECT_EQ(published->services[2].scheduler->keys, (std::vector<uint32_t>{3, 4}));
}

TEST_F(ControlApi, SingleObjectCallsGoThroughTheSameChecks)
{
    ASSERT_TRUE(api->start(three_services()).ok);
    apply_result r = api->set_task_weight("web", ip("10.255.0.6"), 0);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.changes.tasks_changed.size(), 1u);
    EXPECT_EQ(published->services[0].scheduler->weights, (std::vector<uint32_t>{1, 0}));

    config::task t = service("x", 1, {"10.255.0.40"}).tasks[0];
    t.node = "n9";
    r = api->upsert_task("dns", t);
    EXPECT_FALSE(r.ok);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].message, "task node 'n9' is not a [[node]]");

    t.node = "n2";
    ASSERT_TRUE(api->upsert_task("dns", t).ok);
    EXPECT_EQ(published->tasks[task_id("dns", "10.255.0.40")].node, 1);

    EXPECT_FALSE(api->remove_node("n2").ok); // a task still runs there
    EXPECT_FALSE(api->remove_service("nope").ok);
    ASSERT_TRUE(api->remove_task("dns", ip("10.255.0.40")).ok);
    ASSERT_TRUE(api->remove_node("n2").ok);

    config::service s = service("late", 9000, {"10.255.0.50"});
    s.from = config::origin::api;
    ASSERT_TRUE(api->upsert_service(s).ok);
    EXPECT_EQ(service_id("late"), 3);
    EXPECT_EQ(api->generation(), 6u);
}

// Issue 15, "N gateways, one answer": gateways whose files say the same thing, in any order and
// reached by any path of reloads, publish the same Maglev tables. Task ids follow each gateway's
// history, so slots are compared by the task address they name.
struct task_spec {
    const char *address;
    const char *node;
    uint32_t weight;
};

config::service maglev(const std::string &name, uint16_t port, std::vector<task_spec> tasks)
{
    config::service s = service(name, port, {}, config::scheduler_kind::maglev);
    for (const task_spec &t : tasks) {
        config::task k;
        k.address = ip(t.address);
        k.node = t.node;
        k.weight = t.weight;
        k.mac = docker_mac_for(k.address);
        s.tasks.push_back(k);
    }
    return s;
}

// A control_api of its own with a fake runtime whose clock stands still: removed tasks stay in
// their grace, holding their ids.
class fake_gateway
{
  public:
    fake_gateway()
    {
        api_ = std::make_unique<control_api>(test_support::fake_runtime(
            [this](const dataplane::dataplane_tables *t) { published_ = t; }, 1000.0));
    }
    fake_gateway(const fake_gateway &) = delete; // the runtime holds `this`
    fake_gateway &operator=(const fake_gateway &) = delete;

    // start() with the first, apply() with each next; false with the errors on the first refused.
    ::testing::AssertionResult run(const std::vector<config::gateway_config> &path)
    {
        for (size_t i = 0; i < path.size(); ++i) {
            const apply_result r = i == 0 ? api_->start(path[i]) : api_->apply(path[i]);
            if (!r.ok)
                return ::testing::AssertionFailure()
                       << "step " << i << ": " << (r.errors.empty() ? "" : r.errors[0].to_string());
        }
        return ::testing::AssertionSuccess();
    }

    // The task address (host order) in each slot of SERVICE's Maglev table, 0 for none.
    std::vector<uint32_t> slots(const std::string &service) const
    {
        const dataplane::service_scheduler &s =
            *published_->services.at(api_->ids().service(service)->id).scheduler;
        std::vector<uint32_t> out;
        out.reserve(s.table.size());
        for (uint32_t key : s.table)
            out.push_back(key == dataplane::no_task
                              ? 0
                              : rte_be_to_cpu_32(published_->tasks.at(key).address));
        return out;
    }

    uint16_t task_id(const std::string &s, const char *a) const
    {
        return api_->ids().task({s, ip(a)})->id;
    }

  private:
    std::unique_ptr<control_api> api_;
    const dataplane::dataplane_tables *published_ = nullptr;
};

config::gateway_config with(std::vector<config::service> services, bool nodes_reversed = false)
{
    config::gateway_config c = base_config();
    c.services = std::move(services);
    if (nodes_reversed) std::reverse(c.nodes.begin(), c.nodes.end());
    return c;
}

TEST(IdenticalChoices, ReloadsInDifferentOrdersPublishTheSameMaglevTables)
{
    const std::vector<task_spec> web = {{"10.255.0.11", "n1", 1},
                                        {"10.255.0.12", "n2", 1},
                                        {"10.255.0.13", "n2", 2},
                                        {"10.255.0.14", "n1", 1},
                                        {"10.255.0.15", "n2", 1}};
    const std::vector<task_spec> api = {{"10.255.0.21", "n1", 1},
                                        {"10.255.0.22", "n2", 1},
                                        {"10.255.0.23", "n1", 3},
                                        {"10.255.0.24", "n2", 0}}; // drained
    auto reversed = [](std::vector<task_spec> v) {
        std::reverse(v.begin(), v.end());
        return v;
    };
    const config::gateway_config final_config =
        with({maglev("web", 80, web), maglev("api", 8000, api)});

    // A: another service, three web tasks, a task api loses; then all tasks at weight 1; then
    // the final file.
    fake_gateway a;
    ASSERT_TRUE(
        a.run({with({maglev("old", 81, {{"10.255.0.31", "n1", 1}}),
                     maglev("web", 80, {web[0], web[1], {"10.255.0.13", "n2", 1}}),
                     maglev("api", 8000, {api[0], api[1], {"10.255.0.99", "n2", 1}})}),
               with({maglev("web", 80, {web[0], web[1], {"10.255.0.13", "n2", 1}, web[3], web[4]}),
                     maglev("api", 8000, {api[0], api[1], api[2], {"10.255.0.24", "n2", 1}})}),
               final_config}));
    // B: api first, other weights, a task web loses, .12 not yet there, nodes reversed; then
    // the final file with services, tasks and nodes reversed.
    fake_gateway b;
    ASSERT_TRUE(b.run(
        {with(
             {maglev("api", 8000, {api[3], {"10.255.0.23", "n1", 5}, api[1], api[0]}),
              maglev("web", 80,
                     {{"10.255.0.99", "n1", 1}, web[4], web[3], {"10.255.0.13", "n2", 7}, web[0]})},
             true),
         with({maglev("api", 8000, reversed(api)), maglev("web", 80, reversed(web))}, true)}));
    // C: the final file at once, tasks rotated.
    fake_gateway c;
    ASSERT_TRUE(c.run({with({maglev("web", 80, {web[2], web[3], web[4], web[0], web[1]}),
                             maglev("api", 8000, {api[1], api[2], api[3], api[0]})})}));
    // The histories differ, so do the ids: what is compared is not trivially equal.
    ASSERT_NE(a.task_id("web", "10.255.0.15"), b.task_id("web", "10.255.0.15"));

    for (const char *service : {"web", "api"}) {
        SCOPED_TRACE(service);
        const std::vector<uint32_t> slots = a.slots(service);
        EXPECT_EQ(slots.size(), dataplane::maglev_default_table_size);
        // Counted, not printed: 65537 slots.
        auto differing = [&slots](const std::vector<uint32_t> &other) {
            size_t n = slots.size() > other.size() ? slots.size() - other.size()
                                                   : other.size() - slots.size();
            for (size_t i = 0; i < std::min(slots.size(), other.size()); ++i)
                n += slots[i] != other[i];
            return n;
        };
        EXPECT_EQ(differing(b.slots(service)), 0u) << "slots differ between A and B";
        EXPECT_EQ(differing(c.slots(service)), 0u) << "slots differ between A and C";
        // Every task of weight > 0 owns slots, the drained one none.
        std::map<uint32_t, size_t> owned;
        for (uint32_t address : slots)
            ++owned[address];
        for (const task_spec &t : std::string(service) == "web" ? web : api)
            EXPECT_EQ(owned.count(ip(t.address).value), t.weight > 0 ? 1u : 0u) << t.address;
        EXPECT_EQ(owned.count(0), 0u);
    }
}

TEST(ChangeSet, SummaryCountsAndSettings)
{
    config::gateway_config a = base_config(), b = base_config();
    a.services = {service("web", 80, {"10.255.0.5"}), service("dns", 53, {"10.255.0.7"})};
    b.services = {service("web", 80, {"10.255.0.5", "10.255.0.6"}), service("new", 81, {})};
    b.services[0].scheduler = config::scheduler_kind::maglev;
    b.timeouts.udp = 30;
    b.ports[0].mtu = 9000;
    const change_set c = diff(a, b);
    EXPECT_EQ(c.summary(), "services +1 -1 ~1, tasks +1 -1 ~0, nodes +0 -0 ~0; timeouts, port ext "
                           "mtu 1500 -> 9000");
    EXPECT_TRUE(timeouts_shortened(a.timeouts, b.timeouts));
    EXPECT_FALSE(timeouts_shortened(b.timeouts, a.timeouts));
    EXPECT_EQ(diff(a, a).summary(), "no change");
}

} // namespace
} // namespace meshgate
