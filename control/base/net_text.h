// Addresses as value types, and their text forms as they appear in config files and logs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <arpa/inet.h>

namespace meshgate
{

// IPv4 address in host byte order.
struct ipv4_address {
    uint32_t value = 0;
    friend auto operator<=>(const ipv4_address &, const ipv4_address &) = default;
};

struct ipv4_prefix {
    ipv4_address address; // the gateway's own address inside the subnet
    uint8_t length = 32;

    uint32_t mask() const { return length == 0 ? 0 : ~uint32_t{0} << (32 - length); }
    bool contains(ipv4_address a) const { return (a.value & mask()) == (address.value & mask()); }
    friend bool operator==(const ipv4_prefix &, const ipv4_prefix &) = default;
};

struct mac_address {
    std::array<uint8_t, 6> bytes{};
    bool is_zero() const { return bytes == std::array<uint8_t, 6>{}; }
    bool is_multicast() const { return (bytes[0] & 1) != 0; }
    friend bool operator==(const mac_address &, const mac_address &) = default;
};

// A decimal number in [0, max] that uses all of TEXT (at most 10 digits).
std::optional<uint32_t> parse_decimal(std::string_view text, uint32_t max);

// A as the packets carry it (network byte order).
inline uint32_t network_order(ipv4_address a)
{
    return htonl(a.value);
}

std::optional<ipv4_address> parse_ipv4(std::string_view text);
std::optional<ipv4_prefix> parse_ipv4_prefix(std::string_view text); // "a.b.c.d/len"
std::optional<mac_address> parse_mac(std::string_view text);         // "02:42:0a:ff:00:02"

std::string to_string(ipv4_address a);
std::string to_string(const ipv4_prefix &p);
std::string to_string(const mac_address &m);

// Docker's convention for a container on an overlay: 02:42 followed by its IPv4 address.
mac_address docker_mac_for(ipv4_address a);

} // namespace meshgate
