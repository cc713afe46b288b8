#!/usr/bin/python3
"""pcap golden tests of the routing mesh: a client's SYN to a published port leaves as the exact
VXLAN frame toward the task's node, the task's reply comes back translated to the client, and
what does not belong is dropped under the right reason. Every frame is decoded by scapy."""

from scapy.all import ICMP, IP, TCP, UDP, VXLAN, Ether, IPerror, Raw, UDPerror, fragment

import harness
from harness import EXT, UNDERLAY

CLIENT_MAC = '02:00:00:00:00:aa'
CLIENT_IP = '203.0.113.2'
# Client ports a test expects to see again are even: with two workers every frame of a pcap
# test reaches worker 0, whose SNAT ports are the even ones, and only then is the port kept.
CLIENT_PORT = 40000
NODE_MAC = '02:00:00:00:01:11'
NODE_IP = '192.168.50.11'
OVERLAY_IP = '10.255.0.2'
OVERLAY_MAC = '02:42:0a:ff:00:02'
TASK_IP = '10.255.0.5'
TASK_MAC = '02:42:0a:ff:00:05'

SERVICE = f'''
[[neighbor]]
address = "{CLIENT_IP}"
mac = "{CLIENT_MAC}"

[[node]]
name = "node-1"
address = "{NODE_IP}"
{{node_mac}}

[[service]]
name = "whoami"
scheduler = "rr"
  [[service.port]]
  protocol = "tcp"
  published = 8000
  target = 80
  [[service.port]]
  protocol = "udp"
  published = 5353
  target = 53
  [[service.task]]
  address = "{TASK_IP}"
  node = "node-1"
'''


NEIGHBOR_3 = '\n[[neighbor]]\naddress = "203.0.113.3"\nmac = "02:00:00:00:00:bb"\n'


def config(node_mac=True):
    return SERVICE.replace('{node_mac}', f'mac = "{NODE_MAC}"' if node_mac else '')


def client_packet(l4, payload=b'', ttl=64, dst_mac=EXT.mac):
    return Ether(src=CLIENT_MAC, dst=dst_mac) / IP(src=CLIENT_IP, dst=EXT.address, ttl=ttl) / l4 / Raw(payload)


def syn(sport=CLIENT_PORT):
    return client_packet(TCP(sport=sport, dport=8000, flags='S', seq=1000))


def from_task(l4, vni=4096, payload=b'', node_ip=NODE_IP):
    inner = Ether(src=TASK_MAC, dst=OVERLAY_MAC) / IP(src=TASK_IP, dst=OVERLAY_IP, ttl=64) / l4 / Raw(payload)
    return (Ether(src=NODE_MAC, dst=UNDERLAY.mac) / IP(src=node_ip, dst=UNDERLAY.address) /
            UDP(sport=50000, dport=4789) / VXLAN(flags=0x08, vni=vni) / inner)


def checksums_valid(pkt):
    """scapy recomputes the IP and TCP/UDP checksums; they must equal what meshgate wrote."""
    ip = pkt[IP]
    clone = IP(bytes(ip))
    del clone.chksum
    del clone.payload.chksum
    rebuilt = IP(bytes(clone))
    return ip.chksum == rebuilt.chksum and ip.payload.chksum == rebuilt.payload.chksum


class MeshPcapTest(harness.WorkdirTestCase):

    def run_mesh(self, inputs, node_mac=True):
        return harness.run_pcap(self.workdir, inputs, extra_config=config(node_mac))

    def test_syn_becomes_exact_vxlan_frame(self):
        r = self.run_mesh({'ext': [syn()]})
        self.assertEqual(r.out['ext'], [], r.log)
        self.assertEqual(len(r.out['underlay']), 1, r.log)
        f = r.out['underlay'][0]
        # outer: underlay port -> node, DF, TTL 64, UDP 4789 without checksum, VNI 4096
        self.assertEqual((f[Ether].src, f[Ether].dst), (UNDERLAY.mac, NODE_MAC))
        outer = f[IP]
        self.assertEqual((outer.src, outer.dst, outer.ttl, outer.flags.DF), (UNDERLAY.address, NODE_IP, 64, 1))
        self.assertEqual(outer.len, len(bytes(outer)))
        udp = f[UDP]
        self.assertEqual((udp.dport, udp.chksum), (4789, 0))
        self.assertTrue(49152 <= udp.sport <= 65535, udp.sport)
        self.assertEqual((f[VXLAN].flags, f[VXLAN].vni), (0x08, 4096))
        # inner: overlay MAC -> task MAC, full NAT, TTL decremented, checksums valid
        inner = f[VXLAN].payload
        self.assertEqual((inner[Ether].src, inner[Ether].dst), (OVERLAY_MAC, TASK_MAC))
        ip = inner[IP]
        self.assertEqual((ip.src, ip.dst, ip.ttl), (OVERLAY_IP, TASK_IP, 63))
        tcp = inner[TCP]
        self.assertEqual((tcp.sport, tcp.dport, tcp.flags, tcp.seq), (CLIENT_PORT, 80, 'S', 1000))
        self.assertTrue(checksums_valid(inner), inner.show(dump=True))
        m = r.metrics
        self.assertEqual(m.nonzero_drops(), {}, m.text)
        self.assertEqual(m.get('meshgate_connections_total', 0, service='whoami'), 1, m.text)
        self.assertEqual(m.get('meshgate_active_connections', 0, service='whoami', task=TASK_IP), 1, m.text)
        self.assertEqual(m.get('meshgate_backend_packets_total', 0, service='whoami', task=TASK_IP,
                               direction='in'), 1, m.text)

    def test_reply_restores_client_view(self):
        reply = from_task(TCP(sport=80, dport=CLIENT_PORT, flags='SA', seq=5000, ack=1001), payload=b'hi')
        r = self.run_mesh({'ext': [syn()], 'underlay': [reply]})
        self.assertEqual(len(r.out['ext']), 1, r.log)
        f = r.out['ext'][0]
        self.assertEqual((f[Ether].src, f[Ether].dst), (EXT.mac, CLIENT_MAC))
        ip = f[IP]
        self.assertEqual((ip.src, ip.dst, ip.ttl), (EXT.address, CLIENT_IP, 63))
        tcp = f[TCP]
        self.assertEqual((tcp.sport, tcp.dport, tcp.flags, tcp.seq, tcp.ack), (8000, CLIENT_PORT, 'SA', 5000, 1001))
        self.assertEqual(bytes(tcp.payload), b'hi')
        self.assertTrue(checksums_valid(f), f.show(dump=True))
        self.assertEqual(r.metrics.nonzero_drops(), {}, r.metrics.text)

    def test_udp_both_ways(self):
        query = client_packet(UDP(sport=41000, dport=5353), payload=b'question')
        answer = from_task(UDP(sport=53, dport=41000), payload=b'answer')
        r = self.run_mesh({'ext': [query], 'underlay': [answer]})
        inner = r.out['underlay'][0][VXLAN].payload
        self.assertEqual((inner[IP].dst, inner[UDP].dport, bytes(inner[UDP].payload)), (TASK_IP, 53, b'question'))
        self.assertTrue(checksums_valid(inner))
        back = r.out['ext'][0]
        self.assertEqual((back[IP].src, back[UDP].sport, back[IP].dst, back[UDP].dport),
                         (EXT.address, 5353, CLIENT_IP, 41000))
        self.assertEqual(bytes(back[UDP].payload), b'answer')
        self.assertTrue(checksums_valid(back))

    def test_unresolved_node_is_asked_by_arp(self):
        r = self.run_mesh({'ext': [syn()]}, node_mac=False)
        arps = [p for p in r.out['underlay'] if p.haslayer('ARP')]
        self.assertGreaterEqual(len(arps), 1, r.log)
        self.assertEqual(len(arps), len(r.out['underlay']), 'nothing but ARP before the node answers')
        a = arps[0]['ARP']
        self.assertEqual((arps[0][Ether].dst, a.op, a.hwsrc, a.psrc, a.pdst),
                         ('ff:ff:ff:ff:ff:ff', 1, UNDERLAY.mac, UNDERLAY.address, NODE_IP))
        self.assertGreaterEqual(r.metrics.get('meshgate_arp_requests_sent_total', 0), 1)

    def test_what_does_not_belong_is_dropped(self):
        inputs = {
            'ext': [
                client_packet(TCP(sport=40001, dport=8000, flags='A')),   # no connection, not a SYN
                client_packet(TCP(sport=40002, dport=9999, flags='S')),   # nobody publishes 9999
                syn(sport=40006),
                client_packet(TCP(sport=40004, dport=8000, flags='S'), ttl=1),  # TTL expires here
            ],
            'underlay': [
                from_task(TCP(sport=80, dport=40006, flags='SA'), vni=4097),   # wrong VNI
                from_task(TCP(sport=80, dport=1, flags='SA')),                  # unknown flow
                Ether(bytes(from_task(TCP(sport=80, dport=40006, flags='SA')))[:60]),  # truncated
                from_task(TCP(sport=80, dport=40006, flags='SA'), node_ip='192.168.50.99'),  # no node
            ],
        }
        r = self.run_mesh(inputs)
        drops = r.metrics.nonzero_drops()
        self.assertEqual(drops.get('no_connection'), 2.0, r.metrics.text)
        self.assertEqual(drops.get('no_service'), 1.0, r.metrics.text)
        self.assertEqual(drops.get('unknown_vni'), 1.0, r.metrics.text)
        self.assertEqual(drops.get('unknown_vtep'), 1.0, r.metrics.text)  # the SYN-ACK was not let in
        self.assertEqual(drops.get('ttl_exceeded'), 1.0, r.metrics.text)
        self.assertEqual(drops.get('malformed'), 1.0, r.metrics.text)
        # the TTL 1 SYN gets ICMP time exceeded from the published address
        icmp = [p for p in r.out['ext'] if p.haslayer('ICMP')]
        self.assertEqual(len(icmp), 1, r.log)
        self.assertEqual((icmp[0][IP].src, icmp[0][IP].dst, icmp[0]['ICMP'].type), (EXT.address, CLIENT_IP, 11))
        # only the good SYN went to the node
        self.assertEqual(len(r.out['underlay']), 1)


    def test_replies_leave_by_the_port_the_client_came_in_on(self):
        # Two uplinks, each with its router; an off-link client arrives through the second: its
        # answer must leave there too, from the address it used (upstream anti-spoofing filters
        # drop it anywhere else).
        ext = harness.Port('ext', 'external', EXT.address, 24, EXT.mac, 'gateway = "203.0.113.1"\n')
        ext2 = harness.Port('ext2', 'external', '198.18.0.10', 24, '02:00:00:00:00:30',
                            'gateway = "198.18.0.1"\n')
        routers = ('\n[[neighbor]]\naddress = "203.0.113.1"\nmac = "02:00:00:00:00:01"\n'
                   '\n[[neighbor]]\naddress = "198.18.0.1"\nmac = "02:00:00:00:00:02"\n')
        client = Ether(src='02:00:00:00:00:02', dst=ext2.mac) / IP(src='100.64.0.7', dst=ext2.address) / \
            TCP(sport=40010, dport=8000, flags='S', seq=7)
        reply = from_task(TCP(sport=80, dport=40010, flags='SA', seq=9, ack=8))
        r = harness.run_pcap(self.workdir, {'ext2': [client], 'underlay': [reply]},
                             extra_config=config() + routers, ports=(ext, ext2, UNDERLAY))  # polled in this order
        self.assertEqual(r.out['ext'], [], r.log)
        self.assertEqual(len(r.out['ext2']), 1, r.log)
        f = r.out['ext2'][0]
        self.assertEqual((f[Ether].src, f[Ether].dst), (ext2.mac, '02:00:00:00:00:02'))
        self.assertEqual((f[IP].src, f[IP].dst, f[TCP].sport, f[TCP].dport),
                         (ext2.address, '100.64.0.7', 8000, 40010))
        self.assertEqual(r.metrics.nonzero_drops(), {}, r.metrics.text)

    def test_persistence_keeps_a_client_on_its_task(self):
        two_tasks = config().replace('scheduler = "rr"', 'scheduler = "rr"\npersistence_timeout = 60') + \
            '  [[service.task]]\n  address = "10.255.0.6"\n  node = "node-1"\n'
        other = Ether(src='02:00:00:00:00:bb', dst=EXT.mac) / IP(src='203.0.113.3', dst=EXT.address) / \
            TCP(sport=40100, dport=8000, flags='S')
        # rr alone would alternate 5, 6, 5, 6: affinity keeps 203.0.113.2 on its first task
        inputs = {'ext': [syn(40001), syn(40002), other, syn(40003)]}
        r = harness.run_pcap(self.workdir, inputs, extra_config=two_tasks + NEIGHBOR_3)
        tasks = [f[VXLAN].payload[IP].dst for f in r.out['underlay']]
        self.assertEqual(len(tasks), 4, r.log)
        self.assertEqual(tasks[0], tasks[1])
        self.assertEqual(tasks[0], tasks[3])
        self.assertNotEqual(tasks[2], tasks[0])

    def test_every_packet_of_a_flow_goes_to_one_task(self):
        two_tasks = config() + '  [[service.task]]\n  address = "10.255.0.6"\n  node = "node-1"\n'
        flow_a = [syn(40004)] + [client_packet(TCP(sport=40004, dport=8000, flags='A', seq=1001 + i))
                                 for i in range(5)]
        flow_b = [syn(40002)] + [client_packet(TCP(sport=40002, dport=8000, flags='PA', seq=1001 + i))
                                 for i in range(5)]
        inputs = {'ext': [flow_a[0], flow_b[0]] + [p for pair in zip(flow_a[1:], flow_b[1:]) for p in pair]}
        r = harness.run_pcap(self.workdir, inputs, extra_config=two_tasks)
        by_port = {}
        for f in r.out['underlay']:
            inner = f[VXLAN].payload
            by_port.setdefault(inner[TCP].sport, set()).add(inner[IP].dst)
        self.assertEqual(sorted(by_port), [40002, 40004], r.log)
        self.assertEqual([len(v) for v in by_port.values()], [1, 1])       # one task per flow
        self.assertNotEqual(by_port[40004], by_port[40002])                 # rr: two tasks
        self.assertEqual(len(r.out['underlay']), 12)

    def test_icmp_error_from_client_side_reaches_task(self):
        query = client_packet(UDP(sport=41000, dport=5353), payload=b'question')
        answer = from_task(UDP(sport=53, dport=41000), payload=b'answer')
        # The client's host says the answer's port is unreachable, quoting the answer it got.
        got = IP(src=EXT.address, dst=CLIENT_IP, ttl=63) / UDP(sport=5353, dport=41000) / Raw(b'answer')
        error = (Ether(src=CLIENT_MAC, dst=EXT.mac) / IP(src=CLIENT_IP, dst=EXT.address) /
                 ICMP(type=3, code=3) / Raw(bytes(got)[:28]))
        r = self.run_mesh({'ext': [query, error], 'underlay': [answer]})
        frames = [f[VXLAN].payload for f in r.out['underlay'] if f[VXLAN].payload.haslayer(ICMP)]
        self.assertEqual(len(frames), 1, r.log)
        inner = frames[0]
        self.assertEqual((inner[Ether].dst, inner[IP].src, inner[IP].dst, inner[ICMP].type),
                         (TASK_MAC, OVERLAY_IP, TASK_IP, 3))
        self.assertEqual((inner[IPerror].src, inner[IPerror].dst, inner[UDPerror].sport, inner[UDPerror].dport),
                         (TASK_IP, OVERLAY_IP, 53, 41000))
        self.assertEqual(r.metrics.get('meshgate_icmp_errors_translated_total', 0), 1)

    def test_icmp_error_from_task_reaches_client(self):
        query = client_packet(UDP(sport=41000, dport=5353), payload=b'question')
        # What the task's kernel says about the datagram it got: port unreachable, quoting it.
        sent = IP(src=OVERLAY_IP, dst=TASK_IP, ttl=63) / UDP(sport=41000, dport=53) / Raw(b'question')
        error = (Ether(src=NODE_MAC, dst=UNDERLAY.mac) / IP(src=NODE_IP, dst=UNDERLAY.address) /
                 UDP(sport=50000, dport=4789) / VXLAN(flags=0x08, vni=4096) /
                 Ether(src=TASK_MAC, dst=OVERLAY_MAC) / IP(src=TASK_IP, dst=OVERLAY_IP) /
                 ICMP(type=3, code=3) / Raw(bytes(sent)[:28]))
        r = self.run_mesh({'ext': [query], 'underlay': [error]})
        self.assertEqual(len(r.out['ext']), 1, r.log)
        f = r.out['ext'][0]
        self.assertEqual((f[IP].src, f[IP].dst, f[ICMP].type, f[ICMP].code), (EXT.address, CLIENT_IP, 3, 3))
        quoted = f[IPerror]
        self.assertEqual((quoted.src, quoted.dst, f[UDPerror].sport, f[UDPerror].dport),
                         (CLIENT_IP, EXT.address, 41000, 5353))
        # checksums: outer IP, ICMP and quoted IP equal a fresh computation by scapy
        fresh = IP(bytes(f[IP]))
        del fresh.chksum
        del fresh[ICMP].chksum
        del fresh[IPerror].chksum
        fresh = IP(bytes(fresh))
        self.assertEqual((f[IP].chksum, f[ICMP].chksum, f[IPerror].chksum),
                         (fresh.chksum, fresh[ICMP].chksum, fresh[IPerror].chksum))
        self.assertEqual(r.metrics.get('meshgate_icmp_errors_translated_total', 0), 1)

    def test_df_packet_too_big_gets_frag_needed(self):
        big = client_packet(UDP(sport=41001, dport=5353), payload=b'x' * 1460)
        big[IP].flags = 'DF'
        small_df = client_packet(UDP(sport=41002, dport=5353), payload=b'y' * 100)
        r = self.run_mesh({'ext': [big, small_df]})
        icmp = [p for p in r.out['ext'] if p.haslayer(ICMP)]
        self.assertEqual(len(icmp), 1, r.log)
        e = icmp[0]
        self.assertEqual((e[IP].src, e[IP].dst, e[ICMP].type, e[ICMP].code, e[ICMP].nexthopmtu),
                         (EXT.address, CLIENT_IP, 3, 4, 1450))
        self.assertEqual(r.metrics.nonzero_drops(), {'mtu': 1.0}, r.metrics.text)
        self.assertEqual(len(r.out['underlay']), 1)   # the small one went through

    def test_big_packet_without_df_is_fragmented(self):
        big = client_packet(UDP(sport=41004, dport=5353), payload=bytes(range(256)) * 6)
        big[IP].flags = 0
        r = self.run_mesh({'ext': [big]})
        frames = r.out['underlay']
        self.assertGreaterEqual(len(frames), 2, r.log)
        pieces = []
        for f in frames:
            self.assertLessEqual(len(f[IP]), 1500)          # outer packet fits the underlay MTU
            inner = f[VXLAN].payload[IP]
            self.assertEqual((inner.src, inner.dst), (OVERLAY_IP, TASK_IP))
            pieces.append((inner.frag * 8, bytes(inner.payload)))
        data = b''.join(p for _, p in sorted(pieces))
        udp = UDP(data)
        self.assertEqual((udp.sport, udp.dport), (41004, 53))
        self.assertEqual(bytes(udp.payload), bytes(range(256)) * 6)

    def _answer_fragments(self, payload, ip_id, mtu=1450, drop_index=None):
        """A task's UDP answer to 41006 as its kernel sends it: fragments of at most MTU bytes."""
        whole = IP(src=TASK_IP, dst=OVERLAY_IP, ttl=64, id=ip_id, flags=0) / UDP(sport=53, dport=41006) / Raw(payload)
        pieces = fragment(whole, fragsize=mtu - 20)
        if drop_index is not None:
            del pieces[drop_index]
        return [Ether(src=NODE_MAC, dst=UNDERLAY.mac) / IP(src=NODE_IP, dst=UNDERLAY.address) /
                UDP(sport=50000, dport=4789) / VXLAN(flags=0x08, vni=4096) /
                Ether(src=TASK_MAC, dst=OVERLAY_MAC) / p for p in pieces]

    def test_fragmented_answer_from_task_reaches_client(self):
        # An EDNS answer bigger than the overlay MTU: the task's kernel fragments it, meshgate
        # reassembles before the reverse lookup, NATs it, and fragments it again for the client's
        # 1500-byte link; one with a fragment missing is held, then dropped, and counted.
        query = client_packet(UDP(sport=41006, dport=5353), payload=b'q')
        answer = bytes(range(256)) * 12  # 3072 bytes: three fragments on the overlay
        frames = self._answer_fragments(answer, 0x1234) + self._answer_fragments(answer, 0x1235, drop_index=1)
        r = self.run_mesh({'ext': [query], 'underlay': frames})
        out = r.out['ext']
        self.assertGreaterEqual(len(out), 3, r.log)
        pieces = []
        for f in out:
            ip = f[IP]
            self.assertLessEqual(ip.len, 1500)
            self.assertEqual((f[Ether].src, f[Ether].dst, ip.src, ip.dst), (EXT.mac, CLIENT_MAC, EXT.address, CLIENT_IP))
            clone = IP(bytes(ip))
            del clone.chksum
            self.assertEqual(ip.chksum, IP(bytes(clone)).chksum)
            pieces.append((ip.frag * 8, bytes(ip.payload)))
        data = b''.join(p for _, p in sorted(pieces))
        udp = UDP(data)
        self.assertEqual((udp.sport, udp.dport, len(udp.payload)), (5353, 41006, len(answer)))
        self.assertEqual(bytes(udp.payload), answer)
        # the checksum the task computed, NATed incrementally, holds for the whole datagram
        rebuilt = IP(src=EXT.address, dst=CLIENT_IP) / UDP(sport=5353, dport=41006) / Raw(answer)
        self.assertEqual(udp.chksum, UDP(bytes(rebuilt[UDP])).chksum)
        m = r.metrics
        self.assertEqual(m.get('meshgate_datagrams_reassembled_total', 0), 1, m.text)
        self.assertEqual(m.nonzero_drops(), {}, m.text)  # the incomplete one is still held at the end


if __name__ == '__main__':
    harness.main()
