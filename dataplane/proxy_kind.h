// Which PROXY protocol header (dataplane/proxy_protocol.h) a service's tasks get: the config's,
// the swarm label's and the cluster wire's values.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace meshgate::dataplane
{

enum class proxy_protocol : uint8_t { off = 0, v1 = 1, v2 = 2 };
inline constexpr std::array<std::string_view, 3> proxy_protocol_names = {"off", "v1", "v2"};

} // namespace meshgate::dataplane
