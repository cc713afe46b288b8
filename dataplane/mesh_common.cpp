#include <rte_ether.h>

#include "dataplane/mesh.h"

#include "dataplane/ipv4.h"
#include "dataplane/nat_rewrite.h"
#include "dataplane/output.h"
#include "dataplane/vxlan.h"

namespace meshgate::dataplane
{

rte_mbuf *build_icmp_error(worker &w, const dataplane_tables &t, const rte_ipv4_hdr *offender,
                           rte_be32_t src_addr, uint8_t type, uint8_t code, uint16_t mtu)
{
    if (!icmp_error_allowed(offender, rte_be_to_cpu_16(offender->total_length)) ||
        t.is_subnet_broadcast(offender->src_addr)) {
        w.counters.count(event::icmp_errors_suppressed);
        return nullptr;
    }
    // RFC 1812 4.3.2.8: a router limits the errors it sends, or it becomes a reflector.
    if (!rate_admit(w.icmp_error_bucket, t.icmp_errors, w.tsc)) {
        w.counters.count(event::icmp_errors_rate_limited);
        return nullptr;
    }
    rte_mbuf *m = rte_pktmbuf_alloc(w.pool);
    if (m == nullptr) return nullptr;
    constexpr uint32_t room = sizeof(rte_ipv4_hdr) + icmp_header_len + 60 + icmp_quote_payload_len;
    auto *frame = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, sizeof(rte_ether_hdr) + room));
    uint8_t *l3 = frame + sizeof(rte_ether_hdr);
    uint16_t len =
        type == icmp_type_dest_unreachable
            ? icmp_frag_needed_build(l3, room, offender, rte_be_to_cpu_16(offender->total_length),
                                     src_addr, mtu)
            : icmp_error_build(l3, room, offender, rte_be_to_cpu_16(offender->total_length),
                               src_addr, type, code, 0);
    if (len == 0) {
        rte_pktmbuf_free(m);
        return nullptr;
    }
    rte_pktmbuf_trim(m, static_cast<uint16_t>(room - len));
    w.counters.count(event::icmp_errors_sent);
    return m;
}

int32_t fragment_ipv4(worker &w, rte_mbuf *m, uint16_t mtu, rte_mbuf *fragments[max_fragments])
{
    rte_pktmbuf_adj(m, sizeof(rte_ether_hdr));
    const int32_t n =
        rte_ipv4_fragment_packet(m, fragments, max_fragments, mtu, w.pool, w.shared->indirect_pool);
    if (n < 0) return -1;
    int32_t ready = 0;
    for (int32_t i = 0; i < n; ++i) {
        rte_mbuf *f = fragments[i];
        auto *fip = rte_pktmbuf_mtod(f, rte_ipv4_hdr *);
        fip->hdr_checksum = 0;
        fip->hdr_checksum = ipv4_header_checksum(fip);
        if (rte_pktmbuf_prepend(f, sizeof(rte_ether_hdr)) == nullptr) {
            w.counters.drop(drop_reason::mtu);
            rte_pktmbuf_free(f);
            continue;
        }
        fragments[ready++] = f;
    }
    return ready;
}

verdict to_node(const dataplane_tables &t, rte_mbuf *m, uint16_t node, uint32_t flow_hash)
{
    const node_entry &n = t.nodes[node];
    if (!vxlan_encap(m, n.tunnel, flow_hash)) return drop_as(drop_reason::mtu);
    // The outer Ethernet addresses come from the neighbor table when it is delivered.
    return route_to(n.port, n.vtep);
}

uint16_t client_port_for(const dataplane_tables &t, const connection &c)
{
    const rte_be32_t addr = c.forward.src_ip;
    const uint16_t in = c.client_port;
    if (in < t.port_count && t.ports[in].external && t.next_hop(in, addr) != 0) return in;
    uint16_t via_gateway = no_port;
    for (uint16_t p = 0; p < t.port_count; ++p) {
        const gateway_port &gp = t.ports[p];
        if (!gp.external) continue;
        if (((addr ^ gp.address) & gp.netmask) == 0) return p;
        if (gp.gateway != 0 && via_gateway == no_port) via_gateway = p;
    }
    return via_gateway;
}

} // namespace meshgate::dataplane
