// What the configuration says of SYN cookies (dataplane/syn_cookie.h): when, and under which key.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace meshgate::dataplane
{

// When the gateway answers a client's SYN with a cookie instead of a connection.
enum class syn_cookie_mode : uint8_t {
    off,            // never: every SYN makes a (half-open) connection
    under_pressure, // when the worker's share of the table is under pressure (3/4 taken, or a
                    // create failed in the last 10 s)
    always,         // every SYN: state only for clients whose ACK proves them
};
inline constexpr std::array<std::string_view, 3> syn_cookie_mode_names = {"off", "under_pressure",
                                                                          "always"};

// The 128-bit SipHash key cookies are made under.
struct siphash_key {
    uint64_t k0 = 0;
    uint64_t k1 = 0;
    bool operator==(const siphash_key &) const = default;
};

} // namespace meshgate::dataplane
