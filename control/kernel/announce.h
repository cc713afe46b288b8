// Announcing the published addresses: while the gateway serves a routed service address (one
// no port holds; a service on it has a task of weight > 0) and is not draining, the address is
// a /32 on the kernel interface of every external port that has one, where the host's BGP
// daemon (FRR's `redistribute connected`, BIRD's `protocol direct`) picks it up. Nothing here
// speaks BGP.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/kernel/addresses.h"
#include "control/kernel/interfaces.h"

namespace meshgate
{

// The routed service addresses of C (every one, served or not) and whether each is served.
std::map<ipv4_address, bool> routed_addresses(const config::gateway_config &c);

// One routed address as the readers see it.
struct announcement {
    ipv4_address address;
    bool wanted = false;    // served and not draining
    bool announced = false; // on every external kernel interface
    std::string error;      // the kernel's last refusal, while it lasts
};

class announcer
{
  public:
    // On the external ones of INTERFACES; none: nothing is ever announced.
    explicit announcer(const std::vector<kernel_interface> &interfaces);

    // What should be announced now: ROUTED (routed_addresses()) unless DRAINING. Puts on and
    // takes off what changed; what the kernel refused is tried again by retry().
    void set(const std::map<ipv4_address, bool> &routed, bool draining);
    // Tries again what the kernel refused (once a second is plenty).
    void retry();
    // Takes every address off (drain, stop); true if any was on.
    bool withdraw_all();

    std::vector<announcement> state() const;
    bool any_announced() const;

  private:
    void apply(announcement &a);

    std::vector<std::pair<std::string, int>> links_; // external kernel interfaces: name, ifindex
    std::unique_ptr<kernel_addresses> kernel_;       // while there are links
    std::map<ipv4_address, announcement> addresses_;
};

} // namespace meshgate
