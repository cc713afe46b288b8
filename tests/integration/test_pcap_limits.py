#!/usr/bin/python3
"""pcap tests of what a hostile client cannot make the gateway do: ICMP errors only toward
addresses that can take one, and no more than [limits] icmp_errors_per_second allows; no
connection for a packet that is dropped anyway; new connections over a service's or a client
address's rate refused and counted, while others keep connecting."""

import math

from scapy.all import ICMP, IP, TCP, VXLAN, Ether

import harness
from harness import EXT
from test_pcap_mesh import CLIENT_IP, CLIENT_MAC, NEIGHBOR_3, client_packet, config, syn


def ttl1_syn(src, sport):
    return Ether(src=CLIENT_MAC, dst=EXT.mac) / IP(src=src, dst=EXT.address, ttl=1) / \
        TCP(sport=sport, dport=8000, flags='S')


def share(rate):
    """Each worker enforces its share of a gateway-wide rate; every frame of a pcap test reaches
    worker 0."""
    return math.ceil(rate / harness.WORKERS)


class LimitsPcapTest(harness.WorkdirTestCase):

    def test_icmp_errors_only_toward_unicast_sources(self):
        bad = ['0.0.0.0', '203.0.113.255', '224.0.0.5', '255.255.255.255', '127.0.0.1', '240.0.0.1']
        frames = [ttl1_syn(src, 40010 + 2 * i) for i, src in enumerate(bad)] + [ttl1_syn(CLIENT_IP, 40002)]
        r = harness.run_pcap(self.workdir, {'ext': frames}, extra_config=config())
        icmp = [p for p in r.out['ext'] if p.haslayer(ICMP)]
        self.assertEqual([(p[IP].dst, p[ICMP].type) for p in icmp], [(CLIENT_IP, 11)], r.log)
        m = r.metrics
        self.assertEqual(m.get('meshgate_icmp_errors_suppressed_total', 0), len(bad), m.text)
        self.assertEqual(m.nonzero_drops(), {'ttl_exceeded': len(frames)}, m.text)
        # a SYN that dies here opens nothing: no connection, no packet toward the task
        self.assertEqual(m.get('meshgate_connections_total', 0, service='whoami'), 0, m.text)
        self.assertEqual(m.get('meshgate_connection_table_entries', 0), 0, m.text)
        self.assertEqual(r.out['underlay'], [])

    def test_icmp_errors_are_rate_limited(self):
        frames = [ttl1_syn(CLIENT_IP, 20000 + 2 * i) for i in range(80)]
        r = harness.run_pcap(self.workdir, {'ext': frames}, extra_config=config(),
                             limits='icmp_errors_per_second = 1\n')
        icmp = [p for p in r.out['ext'] if p.haslayer(ICMP)]
        # a burst of 50, then one a second: the 80 frames arrive within one or two of the
        # worker's polls, but it may be preempted between them for any time r.seconds holds
        self.assertGreaterEqual(len(icmp), 50, r.log)
        self.assertLessEqual(len(icmp), 50 + share(1) * r.seconds, r.log)
        m = r.metrics
        self.assertEqual(m.get('meshgate_icmp_errors_sent_total', 0), len(icmp), m.text)
        self.assertEqual(m.get('meshgate_icmp_errors_rate_limited_total', 0), 80 - len(icmp), m.text)

    def test_service_rate_refuses_new_connections_only(self):
        limited = config().replace('scheduler = "rr"', 'scheduler = "rr"\nmax_new_connections_per_second = 4')
        frames = [syn(41000 + 2 * i) for i in range(10)]
        # an open connection's packets are never refused: the first SYN's flow goes on
        frames += [client_packet(TCP(sport=41000, dport=8000, flags='A', seq=1001 + i)) for i in range(5)]
        r = harness.run_pcap(self.workdir, {'ext': frames}, extra_config=limited)
        admitted = share(4)  # a second's worth at once
        m = r.metrics
        self.assertEqual(m.get('meshgate_connections_total', 0, service='whoami'), admitted, m.text)
        self.assertEqual(m.nonzero_drops(), {'service_rate': 10 - admitted}, m.text)
        self.assertEqual(len(r.out['underlay']), admitted + 5, r.log)

    def test_source_rate_leaves_other_clients_alone(self):
        frames = [syn(42000 + 2 * i) for i in range(8)]
        other = [Ether(src='02:00:00:00:00:bb', dst=EXT.mac) / IP(src='203.0.113.3', dst=EXT.address) /
                 TCP(sport=43000 + 2 * i, dport=8000, flags='S') for i in range(2)]
        r = harness.run_pcap(self.workdir, {'ext': frames + other}, extra_config=config() + NEIGHBOR_3,
                             limits='new_connections_per_source = 3\n')
        admitted = share(3)
        m = r.metrics
        self.assertEqual(m.get('meshgate_connections_total', 0, service='whoami'), admitted + 2, m.text)
        self.assertEqual(m.nonzero_drops(), {'source_rate': 8 - admitted}, m.text)
        clients = sorted(f[VXLAN].payload[TCP].sport for f in r.out['underlay'])
        self.assertEqual(clients[-2:], [43000, 43002], r.log)

    def test_one_task_out_of_snat_ports_leaves_the_others_alone(self):
        # 64 SNAT ports toward each task (snat_ports): 100 SYNs from one client to whoami's one
        # task use them up; a SYN to another service's task still goes through.
        other = config() + ('\n[[service]]\nname = "other"\n  [[service.port]]\n  published = 8080\n'
                            '  target = 80\n  [[service.task]]\n  address = "10.255.0.9"\n'
                            '  node = "node-1"\n')
        frames = [syn(30000 + 2 * i) for i in range(100)]
        frames.append(client_packet(TCP(sport=30000, dport=8080, flags='S')))
        # Without SYN cookies: under pressure (the default) the first refusal would have the
        # worker answer the rest with cookies, and refuse them at their ACK (none comes here).
        r = harness.run_pcap(self.workdir, {'ext': frames}, extra_config=other,
                             overlay='snat_ports = "20000-20063"\n', limits='syn_cookies = "off"\n')
        m = r.metrics
        opened = m.get('meshgate_connections_total', 0, service='whoami')
        self.assertLessEqual(opened, 64 // harness.WORKERS, m.text)  # worker 0's share of them
        drops = m.nonzero_drops()
        # refused when the ports were gone, or once the burst's probe budget was spent on them
        self.assertLessEqual(set(drops), {'snat_exhausted', 'snat_probe_budget'}, m.text)
        self.assertGreater(drops.get('snat_exhausted', 0), 0, m.text)
        self.assertEqual(sum(drops.values()), 100 - opened, m.text)
        self.assertEqual(m.get('meshgate_connections_total', 0, service='other'), 1, m.text)
        to_other = [f for f in r.out['underlay'] if f[VXLAN].payload[IP].dst == '10.255.0.9']
        self.assertEqual(len(to_other), 1, r.log)
        sport = to_other[0][VXLAN].payload[TCP].sport
        self.assertTrue(20000 <= sport <= 20063, sport)  # its own SNAT ports toward its task

    def test_next_hop_that_never_answers_arp(self):
        # The node has no static MAC and never answers: 16 packets wait for it (one dead host
        # cannot take the whole wait queue), the rest are dropped at once; the waiting ones go
        # after 3 s; ARP is asked once a second, not once a packet.
        frames = [syn(44000 + 2 * i) for i in range(20)]
        r = harness.run_pcap(self.workdir, {'ext': frames}, extra_config=config(node_mac=False),
                             until=lambda m: m.get('meshgate_drops_total', 0, reason='no_neighbor') >= 20)
        m = r.metrics
        self.assertEqual(m.nonzero_drops(), {'no_neighbor': 20}, m.text)
        arps = [p for p in r.out['underlay'] if p.haslayer('ARP')]
        self.assertEqual(len(arps), len(r.out['underlay']), r.log)  # nothing else left
        self.assertGreaterEqual(len(arps), 3, r.log)
        self.assertLessEqual(len(arps), 6, r.log)
        self.assertEqual(m.get('meshgate_arp_requests_sent_total', 0), len(arps), m.text)

    def test_unpublished_tcp_port_answers_reset(self):
        # As a Linux host would: a client retries at once when the port is published, instead of
        # after a second of SYN timeout. Never a RST for a RST; at most tcp_resets_per_second.
        opts = [('MSS', 1460), ('WScale', 7)]
        frames = [client_packet(TCP(sport=40020, dport=9999, flags='S', seq=1000, options=opts)),
                  client_packet(TCP(sport=40022, dport=9999, flags='A', seq=5, ack=777), payload=b'data'),
                  client_packet(TCP(sport=40024, dport=9999, flags='R', seq=9))]
        frames += [client_packet(TCP(sport=41000 + 2 * i, dport=9998, flags='S')) for i in range(60)]
        r = harness.run_pcap(self.workdir, {'ext': frames}, extra_config=config(),
                             limits='tcp_resets_per_second = 1\n')
        resets = [f for f in r.out['ext'] if f.haslayer(TCP)]
        # a burst of 50, then one a second (of the time the run took: the worker may be
        # preempted between its polls)
        self.assertGreaterEqual(len(resets), 50, r.log)
        self.assertLessEqual(len(resets), 50 + share(1) * r.seconds, r.log)
        syn_rst, ack_rst = resets[0], resets[1]
        self.assertEqual((syn_rst[IP].src, syn_rst[IP].dst, syn_rst[IP].ttl), (EXT.address, CLIENT_IP, 64))
        t = syn_rst[TCP]
        self.assertEqual((t.sport, t.dport, t.flags, t.seq, t.ack), (9999, 40020, 'RA', 0, 1001))
        t = ack_rst[TCP]
        self.assertEqual((t.sport, t.dport, t.flags, t.seq), (9999, 40022, 'R', 777))
        for f in (syn_rst, ack_rst):
            self.assertEqual(len(f[TCP].payload), 0)
            clone = IP(bytes(f[IP]))
            del clone.chksum
            del clone[TCP].chksum
            rebuilt = IP(bytes(clone))
            self.assertEqual((f[IP].chksum, f[TCP].chksum), (rebuilt.chksum, rebuilt[TCP].chksum))
        m = r.metrics
        self.assertEqual(m.get('meshgate_tcp_resets_sent_total', 0), len(resets), m.text)
        self.assertEqual(m.get('meshgate_tcp_resets_rate_limited_total', 0), 62 - len(resets), m.text)
        self.assertEqual(m.nonzero_drops(), {'no_service': 63}, m.text)

    def test_unpublished_tcp_port_is_silent_when_told(self):
        r = harness.run_pcap(self.workdir, {'ext': [client_packet(TCP(sport=40030, dport=9999, flags='S'))]},
                             extra_config=config(), limits='reset_unpublished = false\n')
        self.assertEqual(r.out['ext'], [], r.log)
        self.assertEqual(r.metrics.nonzero_drops(), {'no_service': 1}, r.metrics.text)


if __name__ == '__main__':
    harness.main()
