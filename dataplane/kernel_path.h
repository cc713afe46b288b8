// The exception path: what arrives for a gateway port's own address that the gateway does not
// handle itself (BGP, BFD, SSH, the host's DNS answers, ICMP other than echo, a copy of ARP)
// goes to the host's kernel through the port's kernel interface (a TAP made by
// control/kernel/), and what the kernel sends out of that interface leaves by the port.
//
// Bounded both ways: toward the kernel each worker buffers a burst per port and admits frames
// at [limits] kernel_packets_per_second (TCP SYNs, which a flood is made of, at their own
// kernel_syns_per_second, so that a SYN flood cannot starve the host's established sessions);
// what the TAP's queue refuses is a counted drop. From the kernel each worker reads its own
// queue of the TAP (a multiqueue TAP: the kernel spreads its flows), a burst every millisecond
// (kernel_poll_interval_us), never more: a TAP read is a system call, and the host's sessions
// need no finer latency than that.
#pragma once

#include "dataplane/pipeline.h"
#include "dataplane/worker.h"

namespace meshgate::dataplane
{

inline constexpr uint64_t kernel_poll_interval_us = 1000;

// Does PORT hand what it does not handle to a kernel interface?
inline bool has_kernel(const worker &w, uint16_t port)
{
    return w.kernel_port_ids[port] != no_kernel_interface;
}

// Is a packet to DST that arrived on PORT the host's when the gateway does not take it? PORT
// has a kernel interface and DST is a port address (routed service addresses are the mesh's).
inline bool host_takes(const worker &w, const dataplane_tables &t, uint16_t port, rte_be32_t dst)
{
    return has_kernel(w, port) && t.local_addresses.find(dst) != routed_address;
}

// The verdict for M, which goes to PORT's kernel interface if the rate allows (SYN: a TCP
// segment opening a connection, admitted at kernel_syns_per_second).
verdict to_kernel(worker &w, const dataplane_tables &t, uint16_t port, bool syn);

// A copy of M for PORT's kernel (ARP, which the gateway answers itself too); M is untouched.
void copy_to_kernel(worker &w, const dataplane_tables &t, uint16_t port, const rte_mbuf *m);

// deliver(): M joins PORT's buffer toward its kernel interface, sent when full.
void kernel_enqueue(worker &w, uint16_t port, rte_mbuf *m);

// Sends every kernel buffer; what a TAP queue refuses is dropped as kernel_full.
void kernel_flush(worker &w);

// At TSC, if a poll interval has passed: reads what the kernel sent out of the interfaces this
// worker polls and queues it on their ports as it is (the TAP has the port's MAC).
void kernel_poll(worker &w, const dataplane_tables &t, uint64_t tsc);

} // namespace meshgate::dataplane
