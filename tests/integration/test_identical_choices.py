#!/usr/bin/python3
"""Issue 15, "N gateways, one answer": gateways with the same configuration send a new flow to
the same task, however their files order services, tasks and nodes, and however they reached
that configuration by reloads. Maglev's table is a function of the tasks' identities (their
addresses) and weights, hashed with fixed seeds (dataplane/flow_hash.h), so it must not depend on
config order, on task ids (which follow each gateway's history) or on the process.

Each gateway gets the same 10,000 TCP SYNs (distinct client address/port pairs, half to each of
two Maglev services on three nodes); the VXLAN frames it sends are decapsulated with scapy and
each flow (told by its sequence number, the one field full NAT leaves alone) mapped to the task
and node it went to. The maps must be complete and equal.

- test_config_order_does_not_matter: two processes on net_pcap ports (lossless, replayed at
  start), one file in FINAL's order, the other with services, tasks and nodes reversed.
- test_reloads_in_different_orders_agree: the pcap PMD replays its file at start, before any
  reload could happen, so flows after reloads come over af_packet on veth pairs: the test writes
  the SYNs into one veth and reads the tunnel frames from the other with raw sockets, a batch at
  a time (at most BATCH frames in flight, well within af_packet's 512-frame ring and the
  kernel's 1000-frame backlog). Gateway A starts on X and is reloaded (SIGHUP) to Y, then to
  FINAL; gateway B starts on Z and is reloaded (meshgatectl reload) to FINAL written in another
  order. A third, fresh one on FINAL shuffled (pcap) must agree with both.
"""

import os
import random
import signal
import socket
import subprocess
import sys
import time

from scapy.all import IP, TCP, VXLAN, Ether

import harness
from harness import EXT, UNDERLAY

MESHGATECTL = os.environ.get('MESHGATECTL_BIN') or os.path.join(
    os.path.dirname(harness.MESHGATE_BIN), 'meshgatectl')

FLOWS = 10_000
BATCH = 200
ROUTER_IP, ROUTER_MAC = '203.0.113.1', '02:00:00:00:00:01'
# The clients are off-link, behind the external port's router.
EXT_GW = harness.Port('ext', 'external', EXT.address, EXT.prefixlen, EXT.mac,
                      f'gateway = "{ROUTER_IP}"\n')
NODES = {'node-1': ('192.168.50.11', '02:00:00:00:01:11'),
         'node-2': ('192.168.50.12', '02:00:00:00:01:12'),
         'node-3': ('192.168.50.13', '02:00:00:00:01:13')}
WEB, API = 8000, 8001
TARGET = 80

# A configuration as data: nodes by name, services as (name, published port, tasks), tasks as
# (address, node, weight). render() writes it in the order given.
FINAL = {
    'nodes': ['node-1', 'node-2', 'node-3'],
    'services': [
        ('web', WEB, [('10.255.0.11', 'node-1', 1), ('10.255.0.12', 'node-2', 1),
                      ('10.255.0.13', 'node-3', 2), ('10.255.0.14', 'node-1', 1),
                      ('10.255.0.15', 'node-2', 1)]),
        # .24 is drained (weight 0): it must get no new flow anywhere.
        ('api', API, [('10.255.0.21', 'node-3', 1), ('10.255.0.22', 'node-1', 1),
                      ('10.255.0.23', 'node-2', 3), ('10.255.0.24', 'node-3', 0)]),
    ],
}
SERVING = {a for _, _, tasks in FINAL['services'] for a, _, w in tasks if w > 0}


def reversed_order(config):
    return {'nodes': config['nodes'][::-1],
            'services': [(n, p, tasks[::-1]) for n, p, tasks in config['services'][::-1]]}


def shuffled(config, seed):
    rng = random.Random(seed)
    services = [(n, p, rng.sample(tasks, len(tasks))) for n, p, tasks in config['services']]
    return {'nodes': rng.sample(config['nodes'], len(config['nodes'])),
            'services': rng.sample(services, len(services))}


def content(config):
    """What a configuration says, without its order."""
    return (frozenset(config['nodes']),
            frozenset((n, p, frozenset(tasks)) for n, p, tasks in config['services']))


def render(config):
    """[[neighbor]] for the router, [[node]]s with static MACs (no ARP on the underlay), Maglev
    [[service]]s, in CONFIG's order."""
    text = f'[[neighbor]]\naddress = "{ROUTER_IP}"\nmac = "{ROUTER_MAC}"\n\n'
    for n in config['nodes']:
        address, mac = NODES[n]
        text += f'[[node]]\nname = "{n}"\naddress = "{address}"\nmac = "{mac}"\n\n'
    for name, port, tasks in config['services']:
        text += (f'[[service]]\nname = "{name}"\nscheduler = "maglev"\n'
                 f'  [[service.port]]\n  protocol = "tcp"\n  published = {port}\n'
                 f'  target = {TARGET}\n')
        for address, node, weight in tasks:
            text += (f'  [[service.task]]\n  address = "{address}"\n  node = "{node}"\n'
                     f'  weight = {weight}\n')
        text += '\n'
    return text + '[reload]\nwatch = false\n'


def flow(i):
    """Flow I: 250 client addresses x 40 ports, alternately to web and api."""
    return (f'198.51.100.{1 + i % 250}', 20000 + i // 250, WEB if i % 2 == 0 else API)


_frames = []


def syn_frames():
    """The 10,000 SYNs as bytes, built once; the sequence number is the flow's index."""
    if not _frames:
        for i in range(FLOWS):
            client, port, published = flow(i)
            _frames.append(bytes(Ether(src=ROUTER_MAC, dst=EXT.mac) /
                                 IP(src=client, dst=EXT.address) /
                                 TCP(sport=port, dport=published, flags='S', seq=i)))
    return _frames


def decapsulate(frame, choices):
    """Adds what FRAME says about its flow to CHOICES {index: {(task, node address)}}; False for
    a frame that is not a tunnelled SYN."""
    if not frame.haslayer(VXLAN):
        return False
    inner = frame[VXLAN].payload
    if not inner.haslayer(TCP) or inner[TCP].flags != 'S' or inner[TCP].dport != TARGET:
        return False
    choices.setdefault(inner[TCP].seq, set()).add((inner[IP].dst, frame[IP].dst))
    return True


def as_map(choices):
    """{flow: (task, node address)}; fails on a flow that went to two places."""
    split = {flow(i): v for i, v in choices.items() if len(v) != 1}
    assert not split, f'flows sent to two places: {list(split.items())[:5]}'
    return {flow(i): next(iter(v)) for i, v in choices.items()}


class IdenticalChoicesTest(harness.WorkdirTestCase):

    def assert_complete(self, name, choices, log=''):
        """Every flow chose a serving task of its service, on that task's node, and every
        serving task got some."""
        m = as_map(choices)
        self.assertEqual(len(m), FLOWS, f'{name}: {FLOWS - len(m)} flows never came out\n{log}')
        node_of = {a: NODES[node][0] for _, _, tasks in FINAL['services'] for a, node, _ in tasks}
        tasks_of = {p: {a for a, _, w in tasks if w > 0} for _, p, tasks in FINAL['services']}
        for (client, port, published), (task, node) in m.items():
            self.assertIn(task, tasks_of[published], f'{name}: {client}:{port} -> {task}')
            self.assertEqual(node, node_of[task], f'{name}: {task} reached via {node}')
        self.assertEqual({t for t, _ in m.values()}, SERVING, name)
        return m

    def assert_same(self, maps):
        """All maps equal; on failure, how many flows differ and a few of them."""
        (first_name, first), *rest = maps.items()
        for name, m in rest:
            differ = [f for f in first if first[f] != m.get(f)]
            if differ:
                self.fail(f'{len(differ)} of {FLOWS} flows differ between {first_name} and '
                          f'{name}, e.g. ' +
                          ', '.join(f'{f}: {first[f]} vs {m.get(f)}' for f in differ[:5]))

    # --- pcap: a fresh gateway per configuration -----------------------------------------------

    def pcap_choices(self, name, config):
        workdir = os.path.join(self.workdir, name)
        os.mkdir(workdir)
        # The timeout only tells a hang: 10,000 SYNs through a worker short of CPU.
        r = harness.run_pcap(workdir, {'ext': syn_frames()}, timeout=600,
                             extra_config=render(config), ports=(EXT_GW, UNDERLAY))
        choices = {}
        other = [f for f in r.out['underlay'] if not decapsulate(f, choices)]
        self.assertEqual(other, [], f'{name}: frames that are no tunnelled SYN\n{r.log}')
        self.assertEqual(r.out['ext'], [], r.log)
        self.assertEqual(r.metrics.nonzero_drops(), {}, r.metrics.text)
        for service in ('web', 'api'):
            self.assertEqual(r.metrics.get('meshgate_connections_total', 0, service=service),
                             FLOWS / 2, r.metrics.text)
        return self.assert_complete(name, choices, r.log)

    def test_config_order_does_not_matter(self):
        b = reversed_order(FINAL)
        # Same content, another order: else this test would prove nothing.
        self.assertEqual(content(b), content(FINAL))
        self.assertNotEqual(render(b), render(FINAL))
        self.assert_same({'A (FINAL)': self.pcap_choices('a', FINAL),
                          'B (FINAL reversed)': self.pcap_choices('b', b)})

    # --- af_packet: reloads first, then the flows -----------------------------------------------

    def veth(self):
        """A veth pair in the root namespace, both ends silent (no address, no IPv6, no
        forwarding): meshgate's af_packet port takes the first, the test's raw socket the
        second. Returns both names."""
        mine, theirs = harness.unique('mgi'), harness.unique('mgj')
        harness.run(['ip', 'link', 'add', mine, 'type', 'veth', 'peer', 'name', theirs])
        self.addCleanup(subprocess.run, ['ip', 'link', 'del', mine], stderr=subprocess.DEVNULL)
        for iface in (mine, theirs):
            for key in ('net.ipv6.conf.{}.disable_ipv6=1', 'net.ipv4.conf.{}.forwarding=0'):
                subprocess.run(['sysctl', '-q', '-w', key.format(iface)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # af_packet must see complete checksums and unsegmented frames
            subprocess.run(['ethtool', '-K', iface, 'rx', 'off', 'tx', 'off', 'tso', 'off',
                            'gso', 'off'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            harness.run(['ip', 'link', 'set', iface, 'up'])
        return mine, theirs

    def start_on_veths(self, name, config):
        ext_mg, self.ext_test = self.veth()
        und_mg, self.und_test = self.veth()
        workdir = os.path.join(self.workdir, name)
        os.mkdir(workdir)
        prefix = harness.unique('mgi')
        listen = f'127.0.0.1:{harness.free_tcp_port()}'
        ports = [harness.port_toml(EXT_GW.name, harness.af_packet(0, ext_mg), EXT_GW.role,
                                   EXT_GW.cidr, EXT_GW.mac, EXT_GW.extra),
                 harness.port_toml(UNDERLAY.name, harness.af_packet(1, und_mg), UNDERLAY.role,
                                   UNDERLAY.cidr, UNDERLAY.mac)]
        text = lambda config: harness.config_toml(prefix, ports, listen, extra=render(config))
        mg = harness.Meshgate(workdir, text(config), prefix, listen)
        mg.text = text  # for the reloads
        self.addCleanup(mg.cleanup)
        mg.start()
        harness.check_port_macs(mg.wait_ready(), (EXT_GW, UNDERLAY), mg.log)
        mg.generation = 1
        return mg

    def reload(self, mg, config, by_ctl):
        """Writes CONFIG and reloads by meshgatectl or SIGHUP; waits until it is applied."""
        with open(mg.config_path, 'w') as f:
            f.write(mg.text(config))
        mg.generation += 1
        if by_ctl:
            ctl = subprocess.run([MESHGATECTL, '--file-prefix', mg.file_prefix, 'reload'],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 timeout=120)
            self.assertEqual(ctl.returncode, 0, ctl.stdout)
        else:
            os.kill(mg.proc.pid, signal.SIGHUP)
        m = mg.wait_for(lambda m: m.get('meshgate_config_reloads_total', 0, result='ok') +
                        m.get('meshgate_config_reloads_total', 0, result='error')
                        >= mg.generation - 1, f'reload to generation {mg.generation}', 120)
        self.assertEqual(m.get('meshgate_config_reloads_total', 0, result='error'), 0,
                         mg.log()[-3000:])
        self.assertEqual(m.get('meshgate_config_generation'), mg.generation)

    def feed(self, name, mg):
        """Sends the SYNs BATCH at a time into the external veth and reads the tunnel frames from
        the underlay one until the batch is out; a flow that did not come out within the hang
        timeout is sent again in a later round (a repeated SYN meets its connection, if it got
        one, and so its task)."""
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        tx.bind((self.ext_test, 0))
        rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
        rx.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: we are root
        rx.bind((self.und_test, 0))
        rx.settimeout(0.2)
        self.addCleanup(tx.close)
        self.addCleanup(rx.close)
        frames, choices, other, resent = syn_frames(), {}, 0, 0
        for round in range(3):
            missing = [i for i in range(FLOWS) if i not in choices]
            if not missing:
                break
            resent += len(missing) if round else 0
            for k in range(0, len(missing), BATCH):
                batch = missing[k:k + BATCH]
                for i in batch:
                    tx.send(frames[i])
                deadline = time.monotonic() + 60  # detects a hang only
                while any(i not in choices for i in batch) and time.monotonic() < deadline:
                    try:
                        data, address = rx.recvfrom(65535)
                    except socket.timeout:
                        self.assertIsNone(mg.proc.poll(), mg.log()[-3000:])
                        continue
                    if address[2] != socket.PACKET_OUTGOING and not decapsulate(Ether(data), choices):
                        other += 1
        m = mg.metrics()
        self.assertEqual(m.nonzero_drops(), {}, m.text)
        for service in ('web', 'api'):  # one connection per flow, resent or not
            self.assertEqual(m.get('meshgate_connections_total', 0, service=service), FLOWS / 2,
                             m.text)
        print(f'  {name}: {FLOWS} flows, {resent} sent again, {other} other frames',
              file=sys.stderr)
        return self.assert_complete(name, choices, mg.log()[-3000:])

    def run_on_veths(self, name, path, by_ctl):
        """A gateway that starts on PATH[0] and is reloaded through the rest; then the flows.
        One gateway at a time: two would share the machine's two CPUs for nothing."""
        mg = self.start_on_veths(name, path[0])
        for config in path[1:]:
            self.reload(mg, config, by_ctl)
        choices = self.feed(name, mg)
        self.assertEqual(mg.stop(), 0, mg.log())
        return choices

    def test_reloads_in_different_orders_agree(self):
        web, api = FINAL['services'][0][2], FINAL['services'][1][2]
        w = {a: (a, n, wt) for a, n, wt in web + api}
        extra = ('10.255.0.99', 'node-3', 1)  # a task neither keeps
        # A: three web tasks, an extra api task and a third service; then all tasks, every
        # weight 1 (.13 not yet 2, .24 not yet drained); then FINAL.
        x = {'nodes': ['node-1', 'node-2', 'node-3'],
             'services': [('old', 8002, [('10.255.0.31', 'node-1', 1)]),
                          ('web', WEB, [(a, n, 1) for a, n, _ in web[:3]]),
                          ('api', API, api[:2] + [extra])]}
        y = {'nodes': ['node-1', 'node-2', 'node-3'],
             'services': [('web', WEB, [(a, n, 1) for a, n, _ in web]),
                          ('api', API, [(a, n, 1) for a, n, _ in api])]}
        # B: api first, other tasks and weights (.23 at 5, .24 already drained, .12 missing,
        # the extra task in web), nodes in another order; then FINAL, shuffled.
        z = {'nodes': ['node-3', 'node-1', 'node-2'],
             'services': [('api', API, [w['10.255.0.24'], ('10.255.0.23', 'node-2', 5),
                                        w['10.255.0.22'], w['10.255.0.21']]),
                          ('web', WEB, [extra, w['10.255.0.15'], w['10.255.0.14'],
                                        ('10.255.0.13', 'node-3', 7), w['10.255.0.11']])]}
        final_b, final_c = shuffled(FINAL, 1), shuffled(FINAL, 2)
        for other in (final_b, final_c):
            self.assertEqual(content(other), content(FINAL))
            self.assertNotEqual(render(other), render(FINAL))
        self.assert_same({
            'A (X -> Y -> FINAL by SIGHUP)': self.run_on_veths('a', [x, y, FINAL], by_ctl=False),
            'B (Z -> FINAL shuffled by meshgatectl)': self.run_on_veths('b', [z, final_b],
                                                                       by_ctl=True),
            'C (FINAL shuffled, fresh, pcap)': self.pcap_choices('c', final_c),
        })


if __name__ == '__main__':
    harness.main()
