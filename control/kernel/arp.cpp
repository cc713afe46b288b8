#include "control/kernel/arp.h"

#include <cstring>

#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace meshgate
{

bool send_gratuitous_arp(int ifindex, const std::array<uint8_t, 6> &mac, uint32_t address)
{
    const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (fd < 0) return false;
    uint8_t frame[42] = {};
    std::memset(frame, 0xff, 6); // to everyone
    std::memcpy(frame + 6, mac.data(), 6);
    frame[12] = 0x08;
    frame[13] = 0x06;
    uint8_t *arp = frame + 14;
    arp[1] = 1;    // Ethernet
    arp[2] = 0x08; // IPv4
    arp[4] = 6;
    arp[5] = 4;
    arp[7] = ARPOP_REPLY;
    std::memcpy(arp + 8, mac.data(), 6);
    std::memcpy(arp + 14, &address, 4);
    std::memset(arp + 18, 0xff, 6);
    std::memcpy(arp + 24, &address, 4);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    std::memset(to.sll_addr, 0xff, 6);
    const bool sent = sendto(fd, frame, sizeof frame, 0, reinterpret_cast<sockaddr *>(&to),
                             sizeof to) == static_cast<ssize_t>(sizeof frame);
    close(fd);
    return sent;
}

} // namespace meshgate
