#!/usr/bin/python3
"""The BGP lab itself (bgp_lab.py), without meshgate: gateways announcing a VIP /32 become
next hops of one multipath route at the router, leave it when they withdraw, and the router's
L4 hashing spreads TCP connections over them; a BIRD gateway and BFD do the same; an nftables
netdev ingress drop hides a veth from the kernel but not from af_packet (how meshgate's tests
stand in for a NIC bound to DPDK). Prints the figures it measures (docs/cluster.md)."""

import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import bgp_lab
import harness

VIP = '10.99.0.5'


def note(text):
    print(f'\n  measured: {text}', file=sys.stderr, flush=True)


@unittest.skipUnless(bgp_lab.have_frr(), 'FRR is not installed (scripts/setup.sh installs it)')
class BgpLabTest(harness.WorkdirTestCase):
    needs_meshgate = False

    def setUp(self):
        super().setUp()
        self.lab = bgp_lab.BgpLab(harness.unique, self.workdir)
        self.addCleanup(self.lab.destroy)

    def test_1_frr_ecmp_withdraw_and_spread(self):
        lab = self.lab
        lab.add_router()
        g1, f1 = lab.add_kernel_gateway('10.77.0.11')
        g2, f2 = lab.add_kernel_gateway('10.77.0.12')
        lab.router_frr.wait_established(2)
        for g in (g1, g2):
            lab.add_vip(g, VIP)
        hops, seconds = lab.wait_next_hops(f'{VIP}/32', 2)
        self.assertEqual(hops, ['10.77.0.11', '10.77.0.12'])
        note(f'two next hops {seconds:.2f} s after the /32s were added (sessions up)')
        # the gateways' own segment is connected but not announced; nothing came back to them
        self.assertEqual(bgp_lab.kernel_route(lab.router, '10.77.0.0/24')['protocol'], 'kernel')
        self.assertIsNone(bgp_lab.kernel_route(g1, f'{VIP}/32'))   # on lo: local table only
        self.assertEqual(f1.vtysh_json('show ip route bgp json'), {})

        # L4 hashing at the router spreads connections from one client over both gateways
        for g, name in ((g1, 'g1'), (g2, 'g2')):
            bgp_lab.start_listener(lab, g, VIP, 8080, name)
        counts = bgp_lab.connect_many(lab.client, VIP, 8080, 40)
        self.assertEqual(sum(counts.values()), 40, counts)
        self.assertGreater(counts.get('g1', 0), 0, counts)
        self.assertGreater(counts.get('g2', 0), 0, counts)
        note(f'40 connections from one client: {counts}')

        # one gateway removes the address: the router keeps the other next hop only
        lab.del_vip(g1, VIP)
        hops, seconds = lab.wait_next_hops(f'{VIP}/32', ['10.77.0.12'])
        note(f'withdrawal seen at the router {seconds:.2f} s after `ip addr del`')
        self.assertEqual(bgp_lab.connect_many(lab.client, VIP, 8080, 10), {'g2': 10})
        # ... and adds it back: both again (the kernel nexthop-group trap, see router_frr_config)
        lab.add_vip(g1, VIP)
        hops, seconds = lab.wait_next_hops(f'{VIP}/32', 2)
        note(f're-announced next hop back {seconds:.2f} s after `ip addr add`')

        # a BGP daemon stopped with SIGTERM tells the router (NOTIFICATION): withdrawn at once
        started = time.monotonic()
        f2.stop(signal.SIGTERM)
        hops, seconds = lab.wait_next_hops(f'{VIP}/32', ['10.77.0.11'])
        note(f'next hop gone {time.monotonic() - started:.2f} s after SIGTERM to the '
             f'gateway\'s FRR')

    @unittest.skipUnless(bgp_lab.have_bird(), 'BIRD is not installed')
    def test_2_bird_gateway_and_bfd(self):
        lab = self.lab
        lab.add_router(bfd=True)
        g1, frr = lab.add_kernel_gateway('10.77.0.11', bfd=True)
        g2, bird = lab.add_kernel_gateway('10.77.0.12', daemon='bird', asn=65002, bfd=True)
        lab.router_frr.wait_established(2)
        bird.wait_established()
        for g in (g1, g2):
            lab.add_vip(g, VIP)
            lab.add_vip(g, '10.99.1.7')   # outside the VIP range: never announced
        hops, seconds = lab.wait_next_hops(f'{VIP}/32', 2)
        self.assertEqual(hops, ['10.77.0.11', '10.77.0.12'])
        self.assertIsNone(bgp_lab.kernel_route(lab.router, '10.99.1.7/32'))
        deadline = time.monotonic() + 30
        while sorted(lab.router_frr.bfd_peers().values()) != ['up', 'up']:
            self.assertLess(time.monotonic(), deadline, lab.router_frr.bfd_peers())
            time.sleep(0.1)

        # BIRD withdraws too when the address goes
        lab.del_vip(g2, VIP)
        hops, seconds = lab.wait_next_hops(f'{VIP}/32', ['10.77.0.11'])
        note(f'BIRD gateway: withdrawal seen at the router {seconds:.2f} s after `ip addr del`')
        lab.add_vip(g2, VIP)
        lab.wait_next_hops(f'{VIP}/32', 2)

        # a gateway that falls silent (no FIN, no NOTIFICATION: hold time 9 s under datacenter
        # defaults) is dropped by BFD after 3 x 300 ms
        started = time.monotonic()
        lab.cut(g2)
        hops, _ = lab.wait_next_hops(f'{VIP}/32', ['10.77.0.11'], timeout=15)
        seconds = time.monotonic() - started
        note(f'BFD (300 ms x 3): a silent gateway\'s next hop gone after {seconds:.2f} s')
        self.assertLess(seconds, 5, 'BFD did not act before the BGP hold time')
        lab.mend(g2)
        hops, seconds = lab.wait_next_hops(f'{VIP}/32', 2, timeout=60)
        note(f'back {seconds:.2f} s after the link came back')

        # a killed daemon: its TCP session closes, the router withdraws at once
        started = time.monotonic()
        bird.stop(signal.SIGKILL)
        lab.wait_next_hops(f'{VIP}/32', ['10.77.0.11'], timeout=15)
        note(f'BIRD killed: next hop gone after {time.monotonic() - started:.2f} s')

    def test_3_kernel_blind(self):
        """af_packet on a veth still receives what the netdev ingress drop keeps from the
        kernel: the address on it answers no ARP and no ping."""
        lab = self.lab
        lab.add_router(client=None)
        g = lab.add_gateway_link()
        lab.exec(g, ['ip', 'addr', 'add', '10.77.0.20/24', 'dev', 'eth0'])
        ping = ['ip', 'netns', 'exec', lab.router, 'ping', '-c', '1', '-W', '1', '10.77.0.20']
        self.assertEqual(harness.run(ping, check=False).returncode, 0)
        lab.exec(lab.router, ['ip', 'neigh', 'flush', 'all'])
        lab.kernel_blind(g, 'eth0')
        # an af_packet socket on eth0 inside the gateway namespace, as net_af_packet opens
        sniffer = subprocess.Popen(
            ['ip', 'netns', 'exec', g, '/usr/bin/python3', '-c', SNIFF, 'eth0'],
            stdout=subprocess.PIPE, text=True)
        self.addCleanup(sniffer.stdout.close)
        self.addCleanup(sniffer.wait)
        self.addCleanup(sniffer.kill)
        self.assertEqual(sniffer.stdout.readline().strip(), 'ready')
        self.assertNotEqual(harness.run(ping, check=False).returncode, 0,
                            'the kernel answered through the dropped interface')
        ready, _, _ = select.select([sniffer.stdout], [], [], 10)
        self.assertTrue(ready, 'af_packet saw nothing')
        self.assertIn('arp-request 10.77.0.20', sniffer.stdout.readline())
        stats = harness.run(['ip', '-n', g, '-j', '-s', 'link', 'show', 'eth0']).stdout
        self.assertIn('rx', stats)

    @unittest.skipUnless(bgp_lab.have_bird(), 'BIRD is not installed')
    def test_4_doc_snippets(self):
        """docs/cluster.md's FRR and BIRD configurations, as written there, load and work: the
        router gets the VIP from an FRR gateway (redistribute connected), a BIRD gateway and an
        FRR gateway with a `network` statement, with BFD up where configured."""
        with open(os.path.join(harness.SOURCE_ROOT, 'docs', 'cluster.md')) as f:
            doc = f.read()
        snippets = dict(re.findall(r'<!-- snippet: (\S+) -->\n```\n(.*?)```', doc, re.S))
        self.assertEqual(sorted(snippets), ['bird-gateway', 'frr-gateway', 'frr-gateway-network',
                                            'frr-router'])
        lab, vip = self.lab, '198.51.100.10'
        lab.add_router(segment='192.0.2.1/24', client=None, config=snippets['frr-router'],
                       bfd=True)
        running = lab.router_frr.running_config()
        for line in ('no zebra nexthop kernel enable', 'maximum-paths 8',
                     'bgp listen range 192.0.2.0/24 peer-group GATEWAYS'):
            self.assertIn(line, running)
        g1, _ = lab.add_kernel_gateway('192.0.2.11', iface='mg-kernel', vip_dev='mg-kernel',
                                       config=snippets['frr-gateway'], bfd=True)
        g2, _ = lab.add_kernel_gateway(
            '192.0.2.12', daemon='bird', iface='mg-kernel', vip_dev='mg-kernel',
            config=snippets['bird-gateway'].replace('192.0.2.11', '192.0.2.12'))
        g3, f3 = lab.add_kernel_gateway(
            '192.0.2.13', iface='mg-kernel', vip_dev='mg-kernel',
            config=snippets['frr-gateway-network'].replace('192.0.2.11', '192.0.2.13'))
        self.assertIn('network 198.51.100.10/32', f3.running_config())
        note(f'sessions up after {lab.router_frr.wait_established(3):.1f} s')
        lab.add_vip(g1, '198.51.100.99', dev='lo')        # not on mg-kernel: never announced
        for g in (g1, g2, g3):
            lab.add_vip(g, vip, dev='mg-kernel')
        hops, seconds = lab.wait_next_hops(f'{vip}/32', 3)
        note(f'three next hops after {seconds:.1f} s')
        self.assertEqual(hops, ['192.0.2.11', '192.0.2.12', '192.0.2.13'])
        self.assertIsNone(bgp_lab.kernel_route(lab.router, '198.51.100.99/32'))
        deadline = time.monotonic() + 30
        # (g3's snippet has no BFD: the router's session for it stays down, BGP runs anyway)
        while [lab.router_frr.bfd_peers().get(p) for p in ('192.0.2.11', '192.0.2.12')] != ['up', 'up']:
            self.assertLess(time.monotonic(), deadline, lab.router_frr.bfd_peers())
            time.sleep(0.1)
        lab.del_vip(g3, vip, dev='mg-kernel')              # import-check: gone with the route
        lab.wait_next_hops(f'{vip}/32', ['192.0.2.11', '192.0.2.12'])


SNIFF = r'''
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
print('ready', flush=True)
while True:
    f = s.recv(2048)
    if f[12:14] == b'\x08\x06' and f[20:22] == b'\x00\x01':
        print('arp-request ' + socket.inet_ntoa(f[38:42]), flush=True)
'''


if __name__ == '__main__':
    harness.main()
