// Reload of a large configuration, stage by stage, on the control API with a fake runtime (no
// DPDK ports): parse+validate (config::load), first compile, a reload that changes every
// service (all Maglev tables rebuilt), one that changes one service (the others' schedulers are
// reused). With TBB building the changed schedulers in parallel, and without.
//   reload_bench [SERVICES] [TASKS_PER_SERVICE] [ROUNDS]    (default 1000 10 5)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "control/api/control_api.h"
#include "tests/support/fake_runtime.h"

namespace
{

using namespace meshgate;
using clock_type = std::chrono::steady_clock;

// N services of K tasks on 4 nodes; WEIGHT_BASE shifts every weight (a change to each service).
std::string config_text(int services, int tasks, int weight_base)
{
    std::string t =
        "[dpdk]\nlcores = \"0-1\"\n"
        "[[port]]\nname = \"ext\"\ndevice = \"net_null0\"\naddress = \"203.0.113.10/24\"\n"
        "[[port]]\nname = \"und\"\ndevice = \"net_null1\"\nrole = \"underlay\"\n"
        "address = \"192.168.50.1/24\"\n"
        "[overlay]\naddress = \"10.0.0.2/8\"\n";
    for (int n = 0; n < 4; ++n)
        t += "[[node]]\nname = \"n" + std::to_string(n) + "\"\naddress = \"192.168.50." +
             std::to_string(11 + n) + "\"\n";
    uint32_t address = 0x0a000003;
    for (int s = 0; s < services; ++s) {
        t += "[[service]]\nname = \"svc-" + std::to_string(s) +
             "\"\nscheduler = \"maglev\"\n"
             "  [[service.port]]\n  published = " +
             std::to_string(1 + s) + "\n";
        for (int k = 0; k < tasks; ++k, ++address)
            t += "  [[service.task]]\n  address = \"" + to_string(ipv4_address{address}) +
                 "\"\n  node = \"n" + std::to_string(k % 4) +
                 "\"\n  weight = " + std::to_string(1 + (k + weight_base) % 3) + "\n";
    }
    return t;
}

double ms(clock_type::time_point since)
{
    return std::chrono::duration<double, std::milli>(clock_type::now() - since).count();
}

config::gateway_config load(const std::string &path, double &parse_ms)
{
    const auto t0 = clock_type::now();
    config::load_result r = config::load(path, config::load_options{{0, 1}});
    parse_ms = ms(t0);
    if (!r.config) {
        std::fprintf(stderr, "%s\n", r.errors.at(0).to_string().c_str());
        std::exit(1);
    }
    return std::move(*r.config);
}

struct stage {
    const char *name;
    std::vector<double> ms;
};

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

} // namespace

int main(int argc, char **argv)
{
    const int services = argc > 1 ? std::atoi(argv[1]) : 1000;
    const int tasks = argc > 2 ? std::atoi(argv[2]) : 10;
    const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
    const auto dir = std::filesystem::temp_directory_path() / "meshgate-reload-bench";
    std::filesystem::create_directories(dir);
    const std::string a = (dir / "a.toml").string(), b = (dir / "b.toml").string();
    std::ofstream(a) << config_text(services, tasks, 0);
    std::ofstream(b) << config_text(services, tasks, 1);
    std::printf("%d services x %d tasks (maglev), %zu KiB of TOML, median of %d rounds\n", services,
                tasks, std::filesystem::file_size(a) / 1024, rounds);

    for (bool parallel : {true, false}) {
        stage parse{"parse + validate", {}}, first{"first compile", {}},
            all{"reload, every service changed", {}}, one{"reload, one service changed", {}};
        for (int r = 0; r < rounds; ++r) {
            double p = 0;
            config::gateway_config ca = load(a, p);
            parse.ms.push_back(p);
            config::gateway_config cb = load(b, p);
            control_api api(meshgate::test_support::fake_runtime(
                                [](const meshgate::dataplane::dataplane_tables *) {}),
                            compile_options{parallel});
            apply_result s = api.start(ca);
            first.ms.push_back(s.compile_ms + s.swap_ms);
            apply_result x = api.apply(cb);
            all.ms.push_back(x.compile_ms + x.swap_ms);
            cb.services[services / 2].tasks[0].weight += 1;
            apply_result y = api.apply(cb);
            one.ms.push_back(y.compile_ms + y.swap_ms);
            if (!s.ok || !x.ok || !y.ok) {
                std::fprintf(stderr, "a reload failed\n");
                return 1;
            }
        }
        std::printf("%s:\n", parallel ? "with TBB" : "without TBB (one thread)");
        for (const stage *st : {&parse, &first, &all, &one})
            std::printf("  %-32s %9.1f ms\n", st->name, median(st->ms));
    }
    std::filesystem::remove_all(dir);
    return 0;
}
