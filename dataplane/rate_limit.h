// Rate limits on the TSC, as a virtual-scheduling token bucket (GCRA): one word of state per
// bucket, one compare and one add per admitted event, no division on the packet path.
#pragma once

#include <algorithm>
#include <cstdint>

namespace meshgate::dataplane
{

// RATE events a second, up to BURST at once; computed by the control thread.
struct rate_limit {
    uint64_t interval = 0; // TSC between two events at the steady rate; 0 = no limit
    uint64_t burst = 0;    // TSC of credit a bucket may save: (burst - 1) * interval

    static rate_limit per_second(uint64_t rate, uint64_t burst_events, uint64_t tsc_hz)
    {
        if (rate == 0) return {};
        const uint64_t interval = std::max<uint64_t>(tsc_hz / rate, 1);
        return {interval, interval * (std::max<uint64_t>(burst_events, 1) - 1)};
    }
    bool limited() const { return interval != 0; }
};

// Is one more event at NOW within LIMIT? BUCKET is the theoretical time of the next event.
inline bool rate_admit(uint64_t &bucket, const rate_limit &limit, uint64_t now)
{
    if (limit.interval == 0) return true;
    if (bucket > now + limit.burst) return false;
    bucket = std::max(bucket, now) + limit.interval;
    return true;
}

} // namespace meshgate::dataplane
