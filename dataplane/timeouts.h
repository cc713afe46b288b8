// Idle timeouts of connections, in seconds: the [timeouts] keys and their IPVS defaults. One
// definition for the config and the connection table.
#pragma once

#include <cstdint>

namespace meshgate::dataplane
{

struct conntrack_timeouts {
    uint32_t tcp_established = 900; // ESTABLISHED
    uint32_t tcp_fin = 120;         // FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT
    uint32_t tcp_close = 10;        // CLOSE
    uint32_t tcp_syn = 60;          // NONE, SYN_SENT, SYN_RECV
    uint32_t udp = 300;             // a UDP flow its task has answered
    uint32_t udp_unreplied = 30;    // a UDP flow its task has not answered yet (as Linux)
    // Half-open TCP (before ESTABLISHED) and unreplied UDP while their owner's table is under
    // pressure (3/4 full, or a create failed in the last 10 s): a flood's entries go first.
    uint32_t half_open_under_pressure = 5;

    bool operator==(const conntrack_timeouts &) const = default;
};

} // namespace meshgate::dataplane
