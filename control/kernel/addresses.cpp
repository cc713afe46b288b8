#include "control/kernel/addresses.h"

#include <arpa/inet.h>
#include <netlink/errno.h>
#include <netlink/route/addr.h>
#include <netlink/route/neighbour.h>

#include <stdexcept>

namespace meshgate
{

namespace
{

// An rtnl_addr for PREFIX on IFINDEX, freed with its scope.
struct address_object {
    rtnl_addr *object = rtnl_addr_alloc();
    nl_addr *local = nullptr;

    address_object(int ifindex, ipv4_prefix prefix)
    {
        const uint32_t network = htonl(prefix.address.value);
        local = nl_addr_build(AF_INET, &network, sizeof network);
        if (object == nullptr || local == nullptr) return;
        nl_addr_set_prefixlen(local, prefix.length);
        rtnl_addr_set_ifindex(object, ifindex);
        rtnl_addr_set_family(object, AF_INET);
        rtnl_addr_set_local(object, local);
        rtnl_addr_set_prefixlen(object, prefix.length);
    }
    ~address_object()
    {
        if (local != nullptr) nl_addr_put(local);
        if (object != nullptr) rtnl_addr_put(object);
    }
    address_object(const address_object &) = delete;
    address_object &operator=(const address_object &) = delete;
    bool ok() const { return object != nullptr && local != nullptr; }
};

} // namespace

kernel_addresses::kernel_addresses() : socket_(nl_socket_alloc())
{
    if (socket_ == nullptr) throw std::runtime_error("rtnetlink: no memory for a socket");
    if (int rc = nl_connect(socket_, NETLINK_ROUTE); rc < 0) {
        nl_socket_free(socket_);
        throw std::runtime_error(std::string("rtnetlink: ") + nl_geterror(rc));
    }
}

kernel_addresses::~kernel_addresses()
{
    nl_socket_free(socket_);
}

std::string kernel_addresses::add(int ifindex, ipv4_prefix prefix)
{
    address_object a(ifindex, prefix);
    if (!a.ok()) return "no memory";
    const int rc = rtnl_addr_add(socket_, a.object, NLM_F_REPLACE);
    return rc < 0 && rc != -NLE_EXIST ? nl_geterror(rc) : "";
}

std::string kernel_addresses::remove(int ifindex, ipv4_prefix prefix)
{
    address_object a(ifindex, prefix);
    if (!a.ok()) return "no memory";
    const int rc = rtnl_addr_delete(socket_, a.object, 0);
    return rc < 0 && rc != -NLE_NOADDR && rc != -NLE_OBJ_NOTFOUND ? nl_geterror(rc) : "";
}

std::string kernel_addresses::set_neighbor(int ifindex, uint32_t address,
                                           const std::array<uint8_t, 6> &mac)
{
    rtnl_neigh *neigh = rtnl_neigh_alloc();
    nl_addr *dst = nl_addr_build(AF_INET, &address, sizeof address);
    nl_addr *lladdr = nl_addr_build(AF_LLC, mac.data(), mac.size());
    std::string error = "no memory";
    if (neigh != nullptr && dst != nullptr && lladdr != nullptr) {
        rtnl_neigh_set_ifindex(neigh, ifindex);
        rtnl_neigh_set_family(neigh, AF_INET);
        rtnl_neigh_set_dst(neigh, dst);
        rtnl_neigh_set_lladdr(neigh, lladdr);
        rtnl_neigh_set_state(neigh, NUD_PERMANENT);
        const int rc = rtnl_neigh_add(socket_, neigh, NLM_F_CREATE | NLM_F_REPLACE);
        error = rc < 0 ? nl_geterror(rc) : "";
    }
    if (lladdr != nullptr) nl_addr_put(lladdr);
    if (dst != nullptr) nl_addr_put(dst);
    if (neigh != nullptr) rtnl_neigh_put(neigh);
    return error;
}

} // namespace meshgate
