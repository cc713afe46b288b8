#!/usr/bin/python3
"""End to end through the routing mesh with real kernel peers in network namespaces.

  [ns client] veth 203.0.113.2/24 <-> root veth (net_af_packet0) meshgate ext 203.0.113.10/24
                                       root veth (net_af_packet1) meshgate underlay 192.168.50.1/24
                                           |
  [ns underlay] bridge: the root veth's twin + one veth per node
                                           |
  [ns node-N] eth0 192.168.50.1N/24, vxlan0 (VNI 4096, UDP 4789, nolearning) in bridge br0,
              static fdb 02:42:0a:ff:00:02 -> 192.168.50.1 (as Docker's peerAdd)
  [ns task]   eth0 10.255.0.X/16, MAC 02:42:0a:ff:00:0X, veth into the node's br0, MTU 1450,
              static neighbor 10.255.0.2 -> 02:42:0a:ff:00:02; an HTTP server on 8000 answering
              "task-10.255.0.X" and a UDP echo server on 9000.

The client's curl to 203.0.113.10:8000 must reach every task (rr), UDP must echo, and a 200 MB
download must arrive intact; each node's kernel VXLAN device is the independent oracle. A second
test opens 1000 short connections (200 at a time), all of which must be answered, then drains one
task by a SIGHUP reload (weight 0): new connections avoid it, an open one to it keeps working.
"""

import hashlib
import os
import signal
import sys
import textwrap
import time

import harness
import mesh_lab
from harness import EXT, UNDERLAY
from mesh_lab import NODES, TASKS

CLIENT_IP = '203.0.113.2'
BIG_SIZE = 200 * 1024 * 1024
MANY = 1000
MANY_CONCURRENT = 200

UDP_CLIENT = textwrap.dedent('''\
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    for attempt in range(6):
        s.sendto(sys.argv[2].encode(), (sys.argv[1], 9000))
        try:
            data, peer = s.recvfrom(65535)
        except socket.timeout:
            continue
        print(peer[0], peer[1], data.decode())
        sys.exit(0)
    sys.exit('no UDP answer')
    ''')


MANY_CLIENT = textwrap.dedent('''\
    # N connections, C at a time, each GET / to the end; prints successes, seconds, first errors.
    import collections, socket, sys, time
    from concurrent.futures import ThreadPoolExecutor
    host, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    def one(i):
        try:
            s = socket.create_connection((host, 8000), timeout=20)
            with s:
                s.sendall(b'GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n')
                data = b''
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            head, _, body = data.partition(b'\\r\\n\\r\\n')
            if not head.startswith((b'HTTP/1.0 200 ', b'HTTP/1.1 200 ')) or not body.startswith(b'task-10.255.0.'):
                return 'bad answer %r' % data[:80], None
            return None, body.strip().decode()
        except Exception as e:
            return '%s: %s' % (type(e).__name__, e), None

    start = time.monotonic()
    with ThreadPoolExecutor(c) as pool:
        results = list(pool.map(one, range(n)))
    elapsed = time.monotonic() - start
    ok = [t for e, t in results if e is None]
    errors = collections.Counter(e for e, t in results if e is not None)
    print(len(ok), '%.2f' % elapsed, dict(collections.Counter(ok)), dict(errors.most_common(5)))
    ''')


class E2EMeshTest(harness.WorkdirTestCase):

    def setUp(self):
        super().setUp()
        self.topo = mesh_lab.Lab(harness.unique)
        self.addCleanup(self.topo.destroy)
        self.ext_if = self.topo.add_client(f'{CLIENT_IP}/24')
        self.und_if = self.topo.add_underlay()
        self.client, self.nodes, self.tasks = self.topo.client, self.topo.nodes, self.topo.tasks
        self.big = os.path.join(self.workdir, 'big.bin')
        h = hashlib.sha256()
        with open(self.big, 'wb') as f:
            for _ in range(BIG_SIZE >> 20):
                chunk = os.urandom(1 << 20)
                h.update(chunk)
                f.write(chunk)
        self.big_sha = h.hexdigest()
        self.topo.start_servers(self.workdir, big=self.big)
        self.start_meshgate()

    def start_meshgate(self):
        prefix = harness.unique('mgt')
        listen = f'127.0.0.1:{harness.free_tcp_port()}'
        ports = [harness.port_toml(EXT.name, harness.af_packet(0, self.ext_if),
                                   EXT.role, EXT.cidr, EXT.mac),
                 harness.port_toml(UNDERLAY.name, harness.af_packet(1, self.und_if),
                                   UNDERLAY.role, UNDERLAY.cidr, UNDERLAY.mac)]
        self.prefix, self.listen, self.ports = prefix, listen, ports
        self.mg = harness.Meshgate(self.workdir, self.config_text(), prefix, listen)
        self.addCleanup(self.mg.cleanup)
        self.mg.start()
        self.before = self.mg.wait_ready()
        harness.check_port_macs(self.before, (EXT, UNDERLAY), self.mg.log)

    def config_text(self, weights=None, scheduler='rr'):
        """The config; weights maps a task address to its weight (default 1) in the tcp service."""
        weights = weights or {}
        extra = ''
        for name, addr in NODES.items():
            extra += f'[[node]]\nname = "{name}"\naddress = "{addr}"\n\n'
        tasks = ''.join(f'  [[service.task]]\n  address = "{ip}"\n  node = "{node}"\n' for ip, node in TASKS)
        weighted = ''.join(f'  [[service.task]]\n  address = "{ip}"\n  node = "{node}"\n'
                           f'  weight = {weights.get(ip, 1)}\n' for ip, node in TASKS)
        extra += (f'[[service]]\nname = "whoami"\nscheduler = "{scheduler}"\n'
                  '  [[service.port]]\n  protocol = "tcp"\n  published = 8000\n  target = 8000\n' + weighted + '\n')
        extra += ('[[service]]\nname = "echo"\nscheduler = "rr"\n'
                  '  [[service.port]]\n  protocol = "udp"\n  published = 9000\n  target = 9000\n' + tasks)
        return harness.config_toml(self.prefix, self.ports, self.listen, extra=extra)

    # --- helpers -------------------------------------------------------------------------------

    def diag(self):
        out = [f'metrics:\n{self.mg.metrics().text}' if self.mg.proc.poll() is None else '',
               f'log (tail):\n{self.mg.log()[-6000:]}']
        for name, ns in self.nodes.items():
            out.append(f'{name} fdb:\n' + self.topo.exec(ns, ['bridge', 'fdb', 'show', 'dev', 'vxlan0'],
                                                         check=False).stdout)
        return '\n'.join(out)

    def curl(self, path, extra=(), timeout=60):
        p = self.topo.exec(self.client, ['curl', '-s', '-S', '--max-time', '30', *extra,
                                         f'http://{EXT.address}:8000{path}'], check=False,
                           timeout=timeout)
        self.assertEqual(p.returncode, 0, f'curl {path}: {p.stdout}\n{self.diag()}')
        return p.stdout

    # --- the test ------------------------------------------------------------------------------

    def test_mesh_end_to_end(self):
        # (2) UDP first: it also makes meshgate resolve the nodes and the client
        script = os.path.join(self.workdir, 'udp_client.py')
        with open(script, 'w') as f:
            f.write(UDP_CLIENT)
        p = self.topo.exec(self.client, ['/usr/bin/python3', script, EXT.address, 'hello mesh'],
                           check=False, timeout=30)
        self.assertEqual(p.returncode, 0, f'UDP: {p.stdout}\n{self.diag()}')
        src, sport, answer = p.stdout.strip().split(' ', 2)
        self.assertEqual((src, sport), (EXT.address, '9000'), p.stdout)
        self.assertRegex(answer, r'^task-10\.255\.0\.[567] hello mesh$')

        # (1) nine sequential requests: rr gives each task exactly three
        answers = [self.curl('/').strip() for _ in range(9)]
        counts = {f'task-{ip}': answers.count(f'task-{ip}') for ip, _ in TASKS}
        self.assertEqual(counts, {f'task-{ip}': 3 for ip, _ in TASKS}, answers)

        # (3) 200 MB intact, however long it takes: only a transfer that stalls for 30 s fails
        out = os.path.join(self.workdir, 'download.bin')
        start = time.monotonic()
        self.curl('/big', extra=('-o', out, '--max-time', '0', '--speed-limit', '1',
                                 '--speed-time', '30'), timeout=None)
        elapsed = time.monotonic() - start
        print(f'\n  download: {BIG_SIZE >> 20} MB in {elapsed:.1f} s '
              f'({BIG_SIZE / elapsed / 1e6 * 8:.0f} Mbit/s)', file=sys.stderr)
        self.assertEqual(os.path.getsize(out), BIG_SIZE, self.diag())
        h = hashlib.sha256()
        with open(out, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        self.assertEqual(h.hexdigest(), self.big_sha)
        os.unlink(out)

        # (4) counters
        m = self.mg.wait_settled()
        for port in (EXT, UNDERLAY):
            for direction in ('rx', 'tx'):
                moved = (m.get('meshgate_port_packets_total', 0, port=port.name, direction=direction)
                         - self.before.get('meshgate_port_packets_total', 0, port=port.name, direction=direction))
                # the download alone is > 14000 data segments one way
                self.assertGreater(moved, 5000 if (port, direction) in ((EXT, 'tx'), (UNDERLAY, 'rx')) else 500,
                                   f'{port.name} {direction}\n{m.text}')
        self.assertEqual(m.get('meshgate_drops_total', 0, reason='malformed'), 0, m.text)
        rc = self.mg.stop()
        self.assertEqual(rc, 0, f'exit status after SIGTERM\n{self.mg.log()}')

    def test_link_down_and_up(self):
        # The underlay link goes away for a while (a cable pulled, a switch rebooting): what is
        # sent meanwhile is lost, nothing else; once it is back, requests are answered again
        # without a restart.
        self.assertRegex(self.curl('/').strip(), r'^task-10\.255\.0\.[567]$')
        self.topo.exec(None, ['ip', 'link', 'set', 'dev', self.und_if, 'down'])
        p = self.topo.exec(self.client, ['curl', '-s', '--max-time', '2',
                                         f'http://{EXT.address}:8000/'], check=False, timeout=30)
        self.assertNotEqual(p.returncode, 0, 'answered through a link that is down')
        time.sleep(1)
        self.topo.exec(None, ['ip', 'link', 'set', 'dev', self.und_if, 'up'])
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            p = self.topo.exec(self.client, ['curl', '-s', '--max-time', '10',
                                             f'http://{EXT.address}:8000/'], check=False, timeout=30)
            if p.returncode == 0:
                answer = p.stdout.strip()
                break
            time.sleep(0.5)
        self.assertIsNotNone(answer, f'no answer after the link came back\n{self.diag()}')
        self.assertRegex(answer, r'^task-10\.255\.0\.[567]$')
        self.assertIsNone(self.mg.proc.poll(), self.mg.log())
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_maglev_spreads_one_clients_connections(self):
        # Switch the tcp service to maglev by reload; it hashes the client's address AND port, so
        # one client's connections (new source ports) spread over every task.
        with open(self.mg.config_path, 'w') as f:
            f.write(self.config_text(scheduler='maglev'))
        os.kill(self.mg.proc.pid, signal.SIGHUP)
        self.mg.wait_for(lambda m: m.get('meshgate_config_reloads_total', 0, result='ok') == 1,
                         'reload to maglev', timeout=60)
        answers = [self.curl('/').strip() for _ in range(90)]
        counts = {f'task-{ip}': answers.count(f'task-{ip}') for ip, _ in TASKS}
        print(f'\n  maglev over 90 connections: {counts}', file=sys.stderr)
        self.assertEqual(sum(counts.values()), 90, answers)
        # Binomial(90, 1/3): fewer than 15 or more than 45 for a task has probability < 1e-3.
        for task, n in counts.items():
            self.assertTrue(15 <= n <= 45, f'{task}: {n} of 90\n{counts}')
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_many_connections_then_drain(self):
        # (1) MANY short connections, MANY_CONCURRENT at a time: every one answered
        script = os.path.join(self.workdir, 'many_client.py')
        with open(script, 'w') as f:
            f.write(MANY_CLIENT)
        p = self.topo.exec(self.client, ['/usr/bin/python3', script, EXT.address, str(MANY),
                                         str(MANY_CONCURRENT)], check=False, timeout=240)
        self.assertEqual(p.returncode, 0, f'{p.stdout}\n{p.stderr}\n{self.diag()}')
        # (how long they took is printed: each connection's own 20 s timeout tells a hang)
        print(f'\n  {MANY} connections ({MANY_CONCURRENT} concurrent): {p.stdout.strip()}', file=sys.stderr)
        ok = p.stdout.split()[0]
        self.assertEqual(int(ok), MANY, f'{p.stdout}\n{self.diag()}')

        # (2) one long-lived connection; it lands on some task X
        stream = mesh_lab.Stream(self.topo, self.client, EXT.address, 8000, self.workdir)
        first = stream.ask('before')
        self.assertRegex(first or '', r'^task-10\.255\.0\.[567]$', self.diag())
        x = first[len('task-'):]

        # drain X: weight 0, SIGHUP, reload ok
        with open(self.mg.config_path, 'w') as f:
            f.write(self.config_text({x: 0}))
        os.kill(self.mg.proc.pid, signal.SIGHUP)
        self.mg.wait_for(lambda m: m.get('meshgate_config_reloads_total', 0, result='ok') == 1,
                         'reload ok', timeout=60)
        answers = [self.curl('/').strip() for _ in range(9)]
        others = {f'task-{ip}' for ip, _ in TASKS if ip != x}
        self.assertTrue(set(answers) <= others, f'drained {x}, answers {answers}\n{self.diag()}')
        self.assertEqual(set(answers), others, answers)
        # the open connection still reaches X
        self.assertEqual(stream.ask('after'), f'task-{x}', self.diag())
        stream.close()
        self.assertEqual(stream.proc.returncode, 0)

        m = self.mg.wait_settled()
        self.assertEqual(m.get('meshgate_drops_total', 0, reason='malformed'), 0, m.text)
        rc = self.mg.stop()
        self.assertEqual(rc, 0, f'exit status after SIGTERM\n{self.mg.log()}')


if __name__ == '__main__':
    harness.main()
