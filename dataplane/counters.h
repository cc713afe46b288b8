// Per-worker counters. One list names every drop reason: the enum, the metric label and the
// counter slot all come from it, so a reason cannot exist without its name and its counter.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include <rte_common.h>

#include "dataplane/capacity.h"

namespace meshgate::dataplane
{

// X(reason, help text). The reason is the `reason` label of meshgate_drops_total.
#define MESHGATE_DROP_REASONS(X)                                                                   \
    X(malformed, "truncated or invalid Ethernet, ARP, IPv4, ICMP, TCP or UDP header")              \
    X(ethertype, "Ethernet type the gateway does not handle (IPv6, VLAN, LLDP, ...)")              \
    X(not_local, "frame or packet addressed to another host")                                      \
    X(unsupported_protocol, "IPv4 protocol to a gateway address the gateway does not serve")       \
    X(no_service, "TCP or UDP to a gateway address and port that no service publishes")            \
    X(unknown_vni, "VXLAN with a VNI other than the overlay's")                                    \
    X(unknown_vtep, "VXLAN from a source that is no configured node")                              \
    X(no_connection, "reply from a task, or a client's segment other than a SYN, that matches no " \
                     "connection")                                                                 \
    X(no_backend, "service with no task of weight > 0")                                            \
    X(task_gone, "packet of a connection whose task was removed (after removed_task_grace)")       \
    X(table_full, "connection table full")                                                         \
    X(snat_exhausted, "no free SNAT port toward the task")                                         \
    X(snat_probe_budget, "new connection refused: this burst's SNAT port probes were spent")       \
    X(reuse_queue_full, "SYN reusing the ports of another worker's closing connection while that " \
                        "worker's queue of connections to end was full")                           \
    X(service_rate, "new connection over its service's max_new_connections_per_second")            \
    X(source_rate, "new connection over [limits] new_connections_per_source (per second)")         \
    X(ttl_exceeded, "TTL expired in transit")                                                      \
    X(mtu, "too big for the next link and not fragmentable")                                       \
    X(fragment, "IPv4 fragment not reassembled (from a client, TCP from a task, incomplete or "    \
                "over the reassembly table in time)")                                              \
    X(no_route, "no port or gateway reaches the destination")                                      \
    X(no_neighbor, "next hop did not answer ARP in time, or its wait queue was full")              \
    X(tx_full, "port transmit queue full")                                                         \
    X(tx_segments, "chained frame (a fragment) for a port that sends one segment, too big to "     \
                   "join")                                                                         \
    X(kernel_rate,                                                                                 \
      "for the host's kernel (exception path) over [limits] kernel_packets_per_second "            \
      "or kernel_syns_per_second")                                                                 \
    X(kernel_full, "for the host's kernel: its interface's queue was full (the kernel did not "    \
                   "keep up)")                                                                     \
    X(joining_arp, "the host's ARP request on the underlay while the gateway joins its cluster")   \
    X(proxy_header, "client segment that must carry the PROXY protocol header, with no room in "   \
                    "its buffer to insert it")                                                     \
    X(bad_cookie, "client ACK with no connection whose SYN cookie is not valid (forged, another "  \
                  "gateway's secret, or older than two periods)")                                  \
    X(cookie_pending, "client segment of a connection its SYN cookie opened, before the task "     \
                      "answered the gateway's SYN: the client sends it again")

enum class drop_reason : uint8_t {
#define MESHGATE_X(name, help) name,
    MESHGATE_DROP_REASONS(MESHGATE_X)
#undef MESHGATE_X
        count
};

inline constexpr size_t drop_reason_count = static_cast<size_t>(drop_reason::count);

inline constexpr std::array<std::string_view, drop_reason_count> drop_reason_names = {
#define MESHGATE_X(name, help) #name,
    MESHGATE_DROP_REASONS(MESHGATE_X)
#undef MESHGATE_X
};

inline constexpr std::array<std::string_view, drop_reason_count> drop_reason_help = {
#define MESHGATE_X(name, help) help,
    MESHGATE_DROP_REASONS(MESHGATE_X)
#undef MESHGATE_X
};

// Traffic of one task seen by one worker: in = toward the task, out = its replies.
struct task_counters {
    uint64_t connections = 0; // opened toward it
    uint64_t packets_in = 0;
    uint64_t bytes_in = 0;
    uint64_t packets_out = 0;
    uint64_t bytes_out = 0;
};

// Traffic of one port seen by one worker.
struct port_counters {
    uint64_t rx_packets = 0;
    uint64_t rx_bytes = 0;
    uint64_t tx_packets = 0;
    uint64_t tx_bytes = 0;
    // The exception path of a port with a kernel interface: frames handed to the kernel, frames
    // the kernel sent out of the port, and those dropped on the way to it (also in drops[]).
    uint64_t to_kernel = 0;
    uint64_t from_kernel = 0;
    uint64_t kernel_rate_drops = 0;
    uint64_t kernel_full_drops = 0;
};

// What the gateway itself answered or asked.
#define MESHGATE_EVENTS(X)                                                                         \
    X(arp_replies_sent, "ARP requests for a gateway address answered")                             \
    X(arp_replies_rate_limited, "ARP requests not answered: over [limits] arp_replies_per_second") \
    X(arp_requests_sent, "ARP requests sent to resolve a next hop")                                \
    X(arp_learned, "neighbor entries learned or refreshed from ARP")                               \
    X(arp_withheld_joining,                                                                        \
      "ARP requests for the underlay address not answered: the gateway joins its cluster")         \
    X(icmp_echo_replies_sent, "ICMP echo requests to a gateway address answered")                  \
    X(icmp_errors_sent,                                                                            \
      "ICMP errors the gateway originated (time exceeded, fragmentation needed)")                  \
    X(icmp_errors_translated, "ICMP errors about a connection forwarded to its other side")        \
    X(datagrams_reassembled, "UDP datagrams from tasks reassembled from their fragments")          \
    X(icmp_errors_suppressed,                                                                      \
      "ICMP errors not sent: about an ICMP error or a later fragment, or toward a source that "    \
      "cannot take one (0.0.0.0, broadcast, multicast, loopback, class E)")                        \
    X(icmp_errors_rate_limited, "ICMP errors not sent: over [limits] icmp_errors_per_second")      \
    X(tcp_resets_sent, "RSTs sent for TCP segments to a port nothing publishes")                   \
    X(tcp_resets_rate_limited, "RSTs not sent: over [limits] tcp_resets_per_second")               \
    X(connections_expired_under_pressure,                                                          \
      "half-open TCP or unreplied UDP connections expired early (half_open_under_pressure)")       \
    X(proxy_headers_sent, "PROXY protocol headers sent to tasks (again while a task has not "      \
                          "acknowledged one)")                                                     \
    X(sync_events_lost, "connection changes not told to the cluster's peers: the queue was full")  \
    X(synced_connections_installed, "connections a peer told of, installed as the peer's")         \
    X(synced_connections_refreshed, "connections a peer told of again, refreshed")                 \
    X(synced_connections_replaced,                                                                 \
      "connections a peer told of in place of an older one of the same client flow here (the "     \
      "client reused its port)")                                                                   \
    X(synced_connections_refused,                                                                  \
      "connections a peer told of that clash with one here, or found no room")                     \
    X(syn_cookies_sent, "SYNs answered with a SYN cookie instead of a connection")                 \
    X(syn_cookies_accepted, "ACKs whose SYN cookie opened a connection")                           \
    X(cookie_segments_held,                                                                        \
      "client segments held until the task answered a connection a cookie opened, then sent")      \
    X(cookie_syns_resent,                                                                          \
      "SYNs sent again to a task that had not answered a connection a cookie opened, a second on") \
    X(cookie_syns_unwatched,                                                                       \
      "connections a cookie opened whose SYN to the task only the client could make go again "     \
      "(the worker's queue of them was full)")

enum class event : uint8_t {
#define MESHGATE_X(name, help) name,
    MESHGATE_EVENTS(MESHGATE_X)
#undef MESHGATE_X
        count
};

inline constexpr size_t event_count = static_cast<size_t>(event::count);

inline constexpr std::array<std::string_view, event_count> event_names = {
#define MESHGATE_X(name, help) #name,
    MESHGATE_EVENTS(MESHGATE_X)
#undef MESHGATE_X
};

inline constexpr std::array<std::string_view, event_count> event_help = {
#define MESHGATE_X(name, help) help,
    MESHGATE_EVENTS(MESHGATE_X)
#undef MESHGATE_X
};

// Written by its worker, read (racily, a word at a time) by the control thread; a task's or a
// service's slots are set back to 0 by the control thread only while no snapshot names its id,
// before the id goes to a new holder (control/runtime/data_path.h reset_counters()).
struct alignas(RTE_CACHE_LINE_SIZE) worker_counters {
    std::array<port_counters, max_ports> ports{};
    std::array<uint64_t, drop_reason_count> drops{};
    std::array<uint64_t, event_count> events{};
    std::array<uint64_t, service_id_capacity> connections_created{}; // by service id
    std::array<task_counters, task_id_capacity> tasks{};             // by task id

    void drop(drop_reason r, uint64_t n = 1) { drops[static_cast<size_t>(r)] += n; }
    void count(event e, uint64_t n = 1) { events[static_cast<size_t>(e)] += n; }
};

} // namespace meshgate::dataplane
