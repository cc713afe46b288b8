// libFuzzer target: arbitrary bytes as an Engine API answer, read as each of the documents the
// swarm sync reads (a network, services, tasks, nodes, an event line). A reader gives a value or
// an error, never both or neither, never a crash. What reads becomes part of a swarm state with
// the recorded answers for the rest (tests/control/swarm/engine_api), merged with a file's
// configuration and validated, as the control thread does with a manager's answers.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "control/config/config.h"
#include "control/swarm/objects.h"
#include "control/swarm/state.h"

namespace
{

using namespace meshgate;

[[noreturn]] void fail(const std::string &why)
{
    std::fprintf(stderr, "engine_fuzz: %s\n", why.c_str());
    std::abort();
}

std::string recorded(const char *name)
{
    std::ifstream in(std::string(MESHGATE_ENGINE_API_DIR) + "/" + name);
    if (!in) fail(std::string("cannot read ") + name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

template <typename T>
T must(swarm::read<T> r, const char *what)
{
    if (!r.ok()) fail(std::string(what) + ": " + r.error);
    return std::move(*r.value);
}

template <typename T>
void check(const swarm::read<T> &r)
{
    if (r.ok() == !r.error.empty()) fail("a read must give a value or an error");
}

swarm::network network_seen;
std::vector<swarm::service> services_seen;
std::vector<swarm::task> tasks_seen;
std::vector<swarm::node> nodes_seen;
config::gateway_config file;

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    network_seen = must(swarm::read_network(recorded("network-many.json")), "network");
    services_seen = must(swarm::read_services(recorded("services-many.json")), "services");
    tasks_seen = must(swarm::read_tasks(recorded("tasks-draining.json"), network_seen.id), "tasks");
    nodes_seen = must(swarm::read_nodes(recorded("nodes.json")), "nodes");
    config::load_result r = config::load(MESHGATE_SWARM_CONFIG, {.cpus = {0, 1, 2, 3}});
    if (!r.config) fail("the swarm config does not load");
    file = std::move(*r.config);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string_view body(reinterpret_cast<const char *>(data), size);
    const auto n = swarm::read_network(body);
    const auto s = swarm::read_services(body);
    const auto t = swarm::read_tasks(body, n.ok() ? n.value->id : network_seen.id);
    const auto d = swarm::read_nodes(body);
    check(n);
    check(s);
    check(t);
    check(d);
    (void)swarm::event_type(body);
    const swarm::state state =
        swarm::assemble(n.ok() ? *n.value : network_seen, s.ok() ? *s.value : services_seen,
                        t.ok() ? *t.value : tasks_seen, d.ok() ? *d.value : nodes_seen);
    const swarm::merged m = swarm::with_swarm(file, state);
    (void)config::validate(m.config);
    return 0;
}
