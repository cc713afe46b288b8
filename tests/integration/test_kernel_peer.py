#!/usr/bin/python3
"""End to end with real kernel peers: meshgate on af_packet ports facing veth pairs whose other
ends live in network namespaces; the kernel's ping and arping there must get answers.

  [ns client] veth 203.0.113.2/24  <->  veth (net_af_packet0)  meshgate ext 203.0.113.10
  [ns node]   veth 192.168.50.11/24 <-> veth (net_af_packet1)  meshgate underlay 192.168.50.1
"""

import re
import subprocess
import sys

import harness
from harness import EXT, UNDERLAY, run


def quiet_sysctl(args):
    subprocess.run(['sysctl', '-q', '-w', *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Peer:
    """A namespace with one veth whose root-side twin is handed to meshgate's af_packet port."""

    def __init__(self, role, address, prefixlen):
        self.ns = harness.unique(f'mg{role}')
        self.root_if = harness.unique('mgr')   # faces meshgate (af_packet)
        self.ns_if = harness.unique('mgn')     # the kernel peer's interface
        self.address, self.prefixlen = address, prefixlen

    def create(self):
        run(['ip', 'netns', 'add', self.ns])
        run(['ip', 'link', 'add', self.root_if, 'type', 'veth', 'peer', 'name', self.ns_if, 'netns', self.ns])
        # no IPv6 chatter, and the root kernel must neither answer nor forward what it sees here
        quiet_sysctl([f'net.ipv6.conf.{self.root_if}.disable_ipv6=1'])
        quiet_sysctl([f'net.ipv4.conf.{self.root_if}.forwarding=0'])
        run(['ethtool', '-K', self.root_if, 'tx', 'off', 'tso', 'off', 'gso', 'off'])
        run(['ip', 'link', 'set', self.root_if, 'up'])
        self.exec(['sysctl', '-q', '-w', f'net.ipv6.conf.{self.ns_if}.disable_ipv6=1'])
        self.exec(['ethtool', '-K', self.ns_if, 'tx', 'off', 'tso', 'off', 'gso', 'off'])
        self.exec(['ip', 'link', 'set', 'lo', 'up'])
        self.exec(['ip', 'addr', 'add', f'{self.address}/{self.prefixlen}', 'dev', self.ns_if])
        self.exec(['ip', 'link', 'set', self.ns_if, 'up'])
        return self

    def exec(self, cmd, check=True, timeout=60):
        return run(['ip', 'netns', 'exec', self.ns, *cmd], check=check, timeout=timeout)

    def tcp_ext(self, name):
        """A TcpExt counter of the namespace's kernel (/proc/net/netstat is per namespace)."""
        lines = [line.split() for line in self.exec(['cat', '/proc/net/netstat']).stdout.splitlines()
                 if line.startswith('TcpExt:')]
        return int(dict(zip(lines[0], lines[1]))[name])

    def destroy(self):
        subprocess.run(['ip', 'netns', 'del', self.ns], stderr=subprocess.DEVNULL)
        subprocess.run(['ip', 'link', 'del', self.root_if], stderr=subprocess.DEVNULL)


class KernelPeerTest(harness.WorkdirTestCase):

    def setUp(self):
        super().setUp()
        self.client = Peer('c', '203.0.113.2', 24)
        self.addCleanup(self.client.destroy)
        self.client.create()
        self.node = Peer('n', '192.168.50.11', 24)
        self.addCleanup(self.node.destroy)
        self.node.create()
        prefix = harness.unique('mgt')
        listen = f'127.0.0.1:{harness.free_tcp_port()}'
        ports = [harness.port_toml(EXT.name, harness.af_packet(0, self.client.root_if),
                                   EXT.role, EXT.cidr, EXT.mac),
                 harness.port_toml(UNDERLAY.name, harness.af_packet(1, self.node.root_if),
                                   UNDERLAY.role, UNDERLAY.cidr, UNDERLAY.mac)]
        self.mg = harness.Meshgate(self.workdir, harness.config_toml(prefix, ports, listen), prefix, listen)
        self.addCleanup(self.mg.cleanup)
        self.mg.start()
        self.before = self.mg.wait_ready()

    def stop_cleanly(self):
        rc = self.mg.stop()
        self.assertEqual(rc, 0, f'exit status after SIGTERM\n{self.mg.log()}')

    def counter(self, m, name, **labels):
        return m.get(name, 0, **labels)

    def ping(self, peer, target, extra=()):
        p = peer.exec(['ping', '-n', '-c', '3', '-W', '2', *extra, target], check=False)
        self.assertEqual(p.returncode, 0, f'ping {target} from {peer.ns}:\n{p.stdout}\n{self.mg.log()}')
        replies = re.findall(rf'^\d+ bytes from {re.escape(target)}: icmp_seq=(\d+) ttl=(\d+)', p.stdout, re.M)
        self.assertEqual([seq for seq, _ in replies], ['1', '2', '3'], p.stdout)
        self.assertTrue(all(ttl == '64' for _, ttl in replies), p.stdout)
        self.assertIn('3 packets transmitted, 3 received, 0% packet loss', p.stdout)
        return p.stdout

    def arping(self, peer, target, mac):
        # (-w: it asks once a second until 3 replies came, or 30 s passed)
        p = peer.exec(['arping', '-c', '3', '-w', '30', '-I', peer.ns_if, target], check=False)
        self.assertEqual(p.returncode, 0, f'arping {target} from {peer.ns}:\n{p.stdout}\n{self.mg.log()}')
        replies = re.findall(r'^Unicast reply from (\S+) \[([0-9A-Fa-f:]+)\]', p.stdout, re.M)
        self.assertEqual(len(replies), 3, p.stdout)
        for ip, hw in replies:
            self.assertEqual((ip, hw.lower()), (target, mac), p.stdout)
        self.assertRegex(p.stdout, r'Received 3 response\(s\)')

    def neighbor_mac(self, peer, target):
        out = peer.exec(['ip', 'neigh', 'show', target, 'dev', peer.ns_if]).stdout
        m = re.search(r'lladdr (\S+)', out)
        return m.group(1) if m else None

    def test_ping_and_arping(self):
        for peer, port in ((self.client, EXT), (self.node, UNDERLAY)):
            with self.subTest(port=port.name):
                self.ping(peer, port.address)
                self.assertEqual(self.neighbor_mac(peer, port.address), port.mac)
                self.ping(peer, port.address, extra=('-s', '1400'))
                self.arping(peer, port.address, port.mac)
        m = self.mg.metrics()
        # each ping -c 3 twice per port; ARP: at least the kernel's first request + 3 arpings per port
        self.assertGreaterEqual(self.counter(m, 'meshgate_icmp_echo_replies_sent_total'), 12, m.text)
        self.assertGreaterEqual(self.counter(m, 'meshgate_arp_replies_sent_total'), 8, m.text)
        self.assertGreaterEqual(self.counter(m, 'meshgate_arp_learned_total'), 2, m.text)
        for port in (EXT, UNDERLAY):
            for direction in ('rx', 'tx'):
                self.assertGreaterEqual(
                    self.counter(m, 'meshgate_port_packets_total', port=port.name, direction=direction)
                    - self.counter(self.before, 'meshgate_port_packets_total', port=port.name, direction=direction),
                    10, f'{port.name} {direction}\n{m.text}')
                self.assertGreater(self.counter(m, 'meshgate_port_bytes_total', port=port.name, direction=direction),
                                   10 * 42, m.text)
        self.assertEqual(m.get('meshgate_drops_total', 0, reason='malformed'), 0, m.text)
        self.stop_cleanly()

    def test_echo_without_arp(self):
        """The peer knows the gateway's MAC statically and never ARPs: echo replies go back to the
        MAC that asked, so the ping works without the gateway resolving the peer."""
        self.client.exec(['ip', 'neigh', 'replace', EXT.address, 'lladdr', EXT.mac, 'nud', 'permanent',
                          'dev', self.client.ns_if])
        self.ping(self.client, EXT.address)
        m = self.mg.metrics()
        self.assertEqual(self.counter(m, 'meshgate_arp_requests_sent_total'), 0, m.text)
        self.assertEqual(self.counter(m, 'meshgate_icmp_echo_replies_sent_total'), 3, m.text)
        self.assertEqual(self.counter(m, 'meshgate_arp_replies_sent_total'), 0, m.text)
        self.assertEqual(m.get('meshgate_drops_total', 0, reason='no_neighbor'), 0, m.text)
        self.stop_cleanly()

    def test_foreign_address_and_unpublished_port(self):
        # ARP for an address nobody has: the kernel's arping must time out without an answer
        p = self.client.exec(['arping', '-c', '2', '-w', '3', '-I', self.client.ns_if, '203.0.113.99'], check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertNotIn('reply from', p.stdout)
        # UDP to the gateway on a port nobody publishes
        send = ('import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); '
                f's.sendto(b"x" * 10, ("{EXT.address}", 9999))')
        for _ in range(3):
            self.client.exec(['/usr/bin/python3', '-c', send])
        m = self.mg.wait_for(lambda m: m.get('meshgate_drops_total', 0, reason='no_service') >= 3,
                             'no_service >= 3', timeout=60)
        self.assertEqual(m.get('meshgate_drops_total', 0, reason='no_service'), 3, m.text)
        # TCP to it: the kernel's connect() is refused by our RST, no SYN timeout. Each SYN the
        # kernel sent (it sends one again after a second without an answer, as on a slow
        # machine) gets its own RST: none is dropped.
        retransmitted = self.client.tcp_ext('TCPSynRetrans')
        connect = ('import socket, time; t = time.monotonic()\n'
                   'try:\n'
                   f'    socket.create_connection(("{EXT.address}", 9999), timeout=30); print("connected")\n'
                   'except ConnectionRefusedError:\n'
                   '    print("refused %.3f" % (time.monotonic() - t))\n')
        p = self.client.exec(['/usr/bin/python3', '-c', connect], check=False)
        self.assertTrue(p.stdout.startswith('refused'), p.stdout)
        syns = 1 + self.client.tcp_ext('TCPSynRetrans') - retransmitted
        print(f'\n  connect() {p.stdout.strip()} s, {syns} SYN(s)', file=sys.stderr)
        m = self.mg.wait_settled()
        self.assertEqual(m.get('meshgate_tcp_resets_sent_total', 0), syns, m.text)
        self.assertGreaterEqual(m.get('meshgate_drops_total', 0, reason='not_local'), 2, m.text)
        self.assertGreaterEqual(m.get('meshgate_arp_replies_sent_total', 0), 1, m.text)  # the UDP sender's ARP
        self.stop_cleanly()


if __name__ == '__main__':
    harness.main()
