// Gratuitous ARP through a kernel interface of the exception path: the worker that reads the
// TAP sends it out of the port, as everything else the kernel writes there.
#pragma once

#include <array>
#include <cstdint>

namespace meshgate
{

// An ARP reply to everyone (RFC 5227's announcement): ADDRESS (network order) is at MAC.
// False when the frame could not be written (logged by the caller).
bool send_gratuitous_arp(int ifindex, const std::array<uint8_t, 6> &mac, uint32_t address);

} // namespace meshgate
