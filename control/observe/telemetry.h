// DPDK telemetry commands under /meshgate/: dpdk-telemetry.py lists and runs them, meshgatectl
// speaks the same socket. The handlers run on EAL's telemetry thread: they read the stats state
// and the connection table (racily, as the metrics do), and hand a reload to the control thread.
//
// Replies are dictionaries of plain values, arrays and dicts of plain values (DPDK 22.11 nests no
// deeper); listings are columns of equal length, a page at a time within telemetry's 16 KiB
// reply, with `next` the offset to ask for the following page (absent on the last one).
#pragma once

#include "control/api/control_requests.h"
#include "control/observe/stats_view.h"

namespace meshgate
{

// Registers every /meshgate/ command, answering from STATE and REQUESTS.
void register_telemetry(const stats_state &state, control_requests &requests);

// From now on the commands answer with an error: STATE and REQUESTS are about to go. Waits for
// a command being answered.
void unregister_telemetry();

} // namespace meshgate
