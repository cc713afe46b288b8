// The running gateway: EAL, ports, workers, and the control loop that serves statistics,
// reloads the configuration and stops everything cleanly.
#pragma once

#include <atomic>

#include "control/config/config.h"

namespace meshgate
{

// Set from signal handlers; the control loop acts on them.
struct control_signals {
    std::atomic<bool> stop{false};
    std::atomic<bool> reload{false};
};

// Runs until SIGNALS.stop; returns the process exit status.
int run_gateway(config::gateway_config initial, control_signals &signals);

} // namespace meshgate
