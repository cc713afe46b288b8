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
    uint32_t udp = 300;             // any UDP flow

    bool operator==(const conntrack_timeouts &) const = default;
};

} // namespace meshgate::dataplane
