// ARP through a kernel interface of the exception path: what the kernel writes to the TAP, the
// worker that reads it sends out of the port, and the ARP the port receives for the port's
// address comes back to the TAP (dataplane/local.cpp), where a packet socket sees it.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace meshgate
{

// An ARP reply to everyone: ADDRESS (network order) is at MAC, with MAC as the target's hardware
// address too (as `arping -A` sends it). Linux takes only that form (or a request) for
// gratuitous and replaces a known neighbor's MAC at once; any other waits out the entry's
// locktime (1 s). False when the frame could not be written (errno says why).
bool send_gratuitous_arp(int ifindex, const std::array<uint8_t, 6> &mac, uint32_t address);

// Asks who has an address and hears the answers: whether a peer's data path still runs when
// its heartbeats stop coming (the cluster tells a dead peer from a cut sync channel by it).
class arp_prober
{
  public:
    // Asks from OWN (network order) at MAC, through the interface IFINDEX. Throws
    // std::runtime_error when the packet socket cannot be had.
    arp_prober(int ifindex, const std::array<uint8_t, 6> &mac, uint32_t own);
    ~arp_prober();
    arp_prober(const arp_prober &) = delete;
    arp_prober &operator=(const arp_prober &) = delete;

    void ask(uint32_t address);
    // Senders (network order) of the ARP replies that came since the last call.
    std::vector<uint32_t> answers();

  private:
    int fd_ = -1;
    int ifindex_;
    std::array<uint8_t, 6> mac_;
    uint32_t own_;
};

} // namespace meshgate
