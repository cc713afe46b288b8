#include "control/kernel/announce.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace meshgate
{

std::map<ipv4_address, bool> routed_addresses(const config::gateway_config &c)
{
    std::map<ipv4_address, bool> routed;
    for (const config::service &s : c.services) {
        if (!s.address) continue;
        if (std::any_of(c.ports.begin(), c.ports.end(),
                        [&](const config::port &p) { return p.address.address == *s.address; }))
            continue; // a port's own address: on its link already
        const bool serves = std::any_of(s.tasks.begin(), s.tasks.end(),
                                        [](const config::task &k) { return k.weight > 0; });
        routed[*s.address] = routed[*s.address] || serves;
    }
    return routed;
}

announcer::announcer(const std::vector<kernel_interface> &interfaces)
{
    for (const kernel_interface &k : interfaces)
        if (k.external) links_.emplace_back(k.name, k.ifindex);
    if (!links_.empty()) kernel_ = std::make_unique<kernel_addresses>();
}

void announcer::apply(announcement &a)
{
    if (kernel_ == nullptr) return;
    a.error.clear();
    const ipv4_prefix host{a.address, 32};
    for (const auto &[name, ifindex] : links_) {
        const std::string e =
            a.wanted ? kernel_->add(ifindex, host) : kernel_->remove(ifindex, host);
        if (!e.empty()) a.error = name + ": " + e;
    }
    const bool was = a.announced;
    a.announced = a.wanted && a.error.empty();
    if (!a.error.empty())
        spdlog::warn("address {}: {} on {} refused: {}", to_string(a.address),
                     a.wanted ? "announcing" : "withdrawing", links_.front().first, a.error);
    else if (was != a.announced || a.wanted)
        spdlog::info("address {} {}", to_string(a.address),
                     a.announced ? "announced" : "withdrawn");
}

void announcer::set(const std::map<ipv4_address, bool> &routed, bool draining)
{
    for (auto it = addresses_.begin(); it != addresses_.end();) {
        if (routed.count(it->first) == 0) {
            it->second.wanted = false;
            if (it->second.announced || !it->second.error.empty()) apply(it->second);
            it = addresses_.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto &[address, serves] : routed) {
        announcement &a = addresses_[address];
        a.address = address;
        const bool wanted = serves && !draining;
        if (wanted == a.wanted && a.error.empty()) continue;
        a.wanted = wanted;
        apply(a);
    }
}

void announcer::retry()
{
    for (auto &[address, a] : addresses_)
        if (!a.error.empty()) apply(a);
}

bool announcer::withdraw_all()
{
    bool any = false;
    for (auto &[address, a] : addresses_) {
        any = any || a.announced;
        if (!a.wanted && a.error.empty()) continue;
        a.wanted = false;
        apply(a);
    }
    return any;
}

std::vector<announcement> announcer::state() const
{
    std::vector<announcement> out;
    for (const auto &[address, a] : addresses_)
        out.push_back(a);
    return out;
}

bool announcer::any_announced() const
{
    return std::any_of(addresses_.begin(), addresses_.end(),
                       [](const auto &a) { return a.second.announced; });
}

} // namespace meshgate
