#include "control/base/net_text.h"

#include <charconv>
#include <cstdio>

namespace meshgate
{

std::optional<uint32_t> parse_decimal(std::string_view text, uint32_t max)
{
    if (text.empty() || text.size() > 10) return std::nullopt;
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v > max) return std::nullopt;
    return v;
}

namespace
{

std::optional<uint8_t> parse_hex_byte(std::string_view text)
{
    if (text.size() != 2) return std::nullopt;
    uint8_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + 2, v, 16);
    if (ec != std::errc{} || end != text.data() + 2) return std::nullopt;
    return v;
}

} // namespace

std::optional<ipv4_address> parse_ipv4(std::string_view text)
{
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
        size_t dot = i < 3 ? text.find('.') : text.size();
        if (dot == std::string_view::npos) return std::nullopt;
        std::string_view part = text.substr(0, dot);
        if (part.size() > 1 && part[0] == '0') // no octal-looking octets
            return std::nullopt;
        auto octet = parse_decimal(part, 255);
        if (!octet) return std::nullopt;
        value = value << 8 | *octet;
        text.remove_prefix(i < 3 ? dot + 1 : dot);
    }
    return ipv4_address{value};
}

std::optional<ipv4_prefix> parse_ipv4_prefix(std::string_view text)
{
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto address = parse_ipv4(text.substr(0, slash));
    auto length = parse_decimal(text.substr(slash + 1), 32);
    if (!address || !length) return std::nullopt;
    return ipv4_prefix{*address, static_cast<uint8_t>(*length)};
}

std::optional<mac_address> parse_mac(std::string_view text)
{
    mac_address mac;
    for (int i = 0; i < 6; ++i) {
        if (text.size() < 2) return std::nullopt;
        auto byte = parse_hex_byte(text.substr(0, 2));
        if (!byte) return std::nullopt;
        mac.bytes[i] = *byte;
        text.remove_prefix(2);
        if (i < 5) {
            if (text.empty() || (text[0] != ':' && text[0] != '-')) return std::nullopt;
            text.remove_prefix(1);
        }
    }
    if (!text.empty()) return std::nullopt;
    return mac;
}

std::string to_string(ipv4_address a)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a.value >> 24, (a.value >> 16) & 0xff,
                  (a.value >> 8) & 0xff, a.value & 0xff);
    return buf;
}

std::string to_string(const ipv4_prefix &p)
{
    return to_string(p.address) + "/" + std::to_string(p.length);
}

std::string to_string(const mac_address &m)
{
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m.bytes[0], m.bytes[1],
                  m.bytes[2], m.bytes[3], m.bytes[4], m.bytes[5]);
    return buf;
}

mac_address docker_mac_for(ipv4_address a)
{
    return mac_address{{0x02, 0x42, static_cast<uint8_t>(a.value >> 24),
                        static_cast<uint8_t>(a.value >> 16), static_cast<uint8_t>(a.value >> 8),
                        static_cast<uint8_t>(a.value)}};
}

} // namespace meshgate
