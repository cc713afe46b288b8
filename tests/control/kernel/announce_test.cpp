// Which routed service addresses a gateway announces (control/kernel/announce.h): every
// service address no port holds, announced while one of its services has a task of weight > 0.
#include <gtest/gtest.h>

#include <map>

#include "control/kernel/announce.h"

namespace
{

using namespace meshgate;

config::service service_on(const char *name, const char *address, std::vector<uint32_t> weights)
{
    config::service s;
    s.name = name;
    s.address = *parse_ipv4(address);
    for (uint32_t w : weights) {
        config::task t;
        t.weight = w;
        s.tasks.push_back(t);
    }
    return s;
}

config::gateway_config gateway(std::vector<config::service> services)
{
    config::gateway_config c;
    config::port ext;
    ext.address = *parse_ipv4_prefix("203.0.113.10/24");
    c.ports = {ext};
    c.services = std::move(services);
    return c;
}

TEST(RoutedAddresses, ServedWhileATaskHasWeight)
{
    const auto routed = routed_addresses(gateway(
        {service_on("web", "198.51.100.10", {0, 1}), service_on("api", "198.51.100.11", {0, 0})}));
    EXPECT_EQ(routed, (std::map<ipv4_address, bool>{{*parse_ipv4("198.51.100.10"), true},
                                                    {*parse_ipv4("198.51.100.11"), false}}));
}

TEST(RoutedAddresses, OneServingServiceServesItsAddress)
{
    const auto routed = routed_addresses(
        gateway({service_on("web", "198.51.100.10", {0}), service_on("api", "198.51.100.10", {}),
                 service_on("dns", "198.51.100.10", {3})}));
    EXPECT_EQ(routed, (std::map<ipv4_address, bool>{{*parse_ipv4("198.51.100.10"), true}}));
}

TEST(RoutedAddresses, PortAddressesAndServicesOnAnyAddressAreNotRouted)
{
    config::service any = service_on("any", "198.51.100.10", {1});
    any.address.reset();
    const auto routed =
        routed_addresses(gateway({service_on("web", "203.0.113.10", {1}), std::move(any)}));
    EXPECT_TRUE(routed.empty());
}

} // namespace
