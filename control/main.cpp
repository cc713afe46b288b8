// meshgate: Docker Swarm's routing mesh as a DPDK gateway.
//   meshgate --config FILE [--check] [--log-level LEVEL]
//   meshgate --version

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "control/config/config.h"
#include "control/gateway.h"
#include "dataplane/version.h"

namespace
{

meshgate::control_signals signals;

void on_signal(int sig)
{
    if (sig == SIGHUP)
        signals.reload.store(true);
    else
        signals.stop.store(true);
}

void install_signal_handlers()
{
    struct sigaction sa {
    };
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
}

int usage(FILE *out, int status)
{
    std::fprintf(out, "usage: meshgate --config FILE [--check] [--log-level LEVEL]\n"
                      "       meshgate --version\n"
                      "  --config FILE      the gateway's TOML configuration\n"
                      "  --check            validate FILE, print every error, exit 0 or 1\n"
                      "  --log-level LEVEL  trace|debug|info|warn|error|critical|off\n"
                      "                     (overrides [log] level)\n");
    return status;
}

} // namespace

int main(int argc, char **argv)
{
    std::string config_file, log_level;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&](std::string &into) {
            if (i + 1 >= argc) return false;
            into = argv[++i];
            return true;
        };
        if (arg == "--version") {
            std::printf("meshgate %s\n", meshgate::version());
            return 0;
        } else if (arg == "--help" || arg == "-h") {
            return usage(stdout, 0);
        } else if (arg == "--check") {
            check = true;
        } else if (arg == "--config" || arg == "-c") {
            if (!value(config_file)) return usage(stderr, 2);
        } else if (arg == "--log-level") {
            if (!value(log_level)) return usage(stderr, 2);
        } else {
            std::fprintf(stderr, "meshgate: unknown argument '%s'\n", arg.c_str());
            return usage(stderr, 2);
        }
    }
    if (config_file.empty()) return usage(stderr, 2);

    meshgate::config::load_result loaded = meshgate::config::load(config_file);
    for (const meshgate::config::config_error &e : loaded.errors)
        std::fprintf(stderr, "%s\n", e.to_string().c_str());
    if (!loaded.config) return 1;
    if (check) {
        std::printf("%s: ok\n", config_file.c_str());
        return 0;
    }

    std::string level = log_level.empty() ? loaded.config->log.level : log_level;
    spdlog::set_level(spdlog::level::from_str(level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    install_signal_handlers();
    return meshgate::run_gateway(std::move(*loaded.config), signals);
}
