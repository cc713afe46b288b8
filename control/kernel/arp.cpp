#include "control/kernel/arp.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace meshgate
{

namespace
{

constexpr size_t arp_frame = 42; // Ethernet + ARP for IPv4

// An ARP frame of OP: SENDER (at MAC) asks for or tells about TARGET, to DST_MAC.
void write_arp(uint8_t (&frame)[arp_frame], uint16_t op, const std::array<uint8_t, 6> &mac,
               uint32_t sender, uint32_t target, const uint8_t *dst_mac, const uint8_t *target_mac)
{
    std::memset(frame, 0, sizeof frame);
    std::memcpy(frame, dst_mac, 6);
    std::memcpy(frame + 6, mac.data(), 6);
    frame[12] = 0x08;
    frame[13] = 0x06;
    uint8_t *arp = frame + 14;
    arp[1] = 1;    // Ethernet
    arp[2] = 0x08; // IPv4
    arp[4] = 6;
    arp[5] = 4;
    arp[7] = static_cast<uint8_t>(op);
    std::memcpy(arp + 8, mac.data(), 6);
    std::memcpy(arp + 14, &sender, 4);
    std::memcpy(arp + 18, target_mac, 6);
    std::memcpy(arp + 24, &target, 4);
}

bool send_frame(int fd, int ifindex, const uint8_t (&frame)[arp_frame])
{
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, frame, 6);
    return sendto(fd, frame, sizeof frame, 0, reinterpret_cast<const sockaddr *>(&to), sizeof to) ==
           static_cast<ssize_t>(sizeof frame);
}

const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const uint8_t unknown[6] = {};

} // namespace

bool send_gratuitous_arp(int ifindex, const std::array<uint8_t, 6> &mac, uint32_t address)
{
    const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (fd < 0) return false;
    uint8_t frame[arp_frame];
    write_arp(frame, ARPOP_REPLY, mac, address, address, broadcast, mac.data());
    const bool sent = send_frame(fd, ifindex, frame);
    const int saved = errno;
    close(fd);
    errno = saved;
    return sent;
}

arp_prober::arp_prober(int ifindex, const std::array<uint8_t, 6> &mac, uint32_t own)
    : ifindex_(ifindex), mac_(mac), own_(own)
{
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ARP));
    if (fd_ < 0) throw std::runtime_error(std::string("ARP socket: ") + strerror(errno));
    sockaddr_ll at{};
    at.sll_family = AF_PACKET;
    at.sll_protocol = htons(ETH_P_ARP);
    at.sll_ifindex = ifindex;
    if (bind(fd_, reinterpret_cast<sockaddr *>(&at), sizeof at) != 0) {
        const std::string why = strerror(errno);
        close(fd_);
        throw std::runtime_error("ARP socket: " + why);
    }
}

arp_prober::~arp_prober()
{
    close(fd_);
}

void arp_prober::ask(uint32_t address)
{
    uint8_t frame[arp_frame];
    write_arp(frame, ARPOP_REQUEST, mac_, own_, address, broadcast, unknown);
    send_frame(fd_, ifindex_, frame);
}

std::vector<uint32_t> arp_prober::answers()
{
    std::vector<uint32_t> senders;
    uint8_t frame[128];
    for (int n = 0; n < 1024; ++n) {
        sockaddr_ll from{};
        socklen_t len = sizeof from;
        const ssize_t got =
            recvfrom(fd_, frame, sizeof frame, 0, reinterpret_cast<sockaddr *>(&from), &len);
        if (got < 0) break;
        // Replies that came in (not our own requests going out).
        if (got < static_cast<ssize_t>(arp_frame) || from.sll_pkttype == PACKET_OUTGOING) continue;
        const uint8_t *arp = frame + 14;
        if (arp[7] != ARPOP_REPLY) continue;
        uint32_t sender;
        std::memcpy(&sender, arp + 14, 4);
        senders.push_back(sender);
    }
    return senders;
}

} // namespace meshgate
