#!/usr/bin/python3
"""The control surface of a running gateway with real traffic (scripts/mesh_lab.py): DPDK's own
dpdk-telemetry.py lists and runs the /meshgate/ commands; meshgatectl services, conns, stats and
reload print what is there (tables, and JSON that parses); dpdk-dumpcap captures from a port."""

import json
import os
import re
import shutil
import socket
import subprocess

from scapy.all import rdpcap

import harness
import mesh_lab
from harness import EXT, UNDERLAY

MESHGATECTL = os.environ.get('MESHGATECTL_BIN') or os.path.join(
    os.path.dirname(harness.MESHGATE_BIN), 'meshgatectl')
TELEMETRY = shutil.which('dpdk-telemetry.py') or '/usr/bin/dpdk-telemetry.py'
DUMPCAP = shutil.which('dpdk-dumpcap') or '/usr/bin/dpdk-dumpcap'


def service_toml(published, tasks):
    text = (f'[[service]]\nname = "whoami"\nscheduler = "rr"\n'
            f'  [[service.port]]\n  published = {published}\n  target = 8000\n')
    for ip, node in tasks:
        text += f'  [[service.task]]\n  address = "{ip}"\n  node = "{node}"\n'
    return text


class ControlCliTest(harness.WorkdirTestCase):

    def setUp(self):
        super().setUp()
        self.lab = mesh_lab.Lab(harness.unique)
        self.addCleanup(self.lab.destroy)
        ext_if = self.lab.add_client('203.0.113.2/24')
        und_if = self.lab.add_underlay()
        self.lab.start_servers(self.workdir)
        self.prefix = harness.unique('mgk')
        self.listen = f'127.0.0.1:{harness.free_tcp_port()}'
        self.ports = [harness.port_toml(EXT.name, harness.af_packet(0, ext_if), EXT.role,
                                        EXT.cidr, EXT.mac),
                      harness.port_toml(UNDERLAY.name, harness.af_packet(1, und_if),
                                        UNDERLAY.role, UNDERLAY.cidr, UNDERLAY.mac)]
        self.mg = harness.Meshgate(self.workdir, self.config(8000), self.prefix, self.listen)
        self.addCleanup(self.mg.cleanup)
        self.mg.start()
        self.mg.wait_ready()

    def config(self, published):
        nodes = ''.join(f'[[node]]\nname = "{n}"\naddress = "{a}"\n'
                        for n, a in mesh_lab.NODES.items())
        return harness.config_toml(self.prefix, self.ports, self.listen,
                                   extra=nodes + service_toml(published, mesh_lab.TASKS) +
                                   '[reload]\nwatch = false\n')

    def ctl(self, *args, check=True):
        p = subprocess.run([MESHGATECTL, '--file-prefix', self.prefix, *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        if check:
            self.assertEqual(p.returncode, 0, f'meshgatectl {args}: {p.stdout}\n{p.stderr}')
        return p

    def test_telemetry_and_meshgatectl(self):
        stream = mesh_lab.Stream(self.lab, self.lab.client, EXT.address, 8000, self.workdir)
        task = stream.ask('hello', timeout=30)
        self.assertIsNotNone(task)
        task_ip = task[len('task-'):]

        # dpdk-telemetry.py, DPDK's own client, knows and runs the commands.
        p = subprocess.run([TELEMETRY, '-f', self.prefix], input='/\n/meshgate/info\n',
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        replies = [json.loads(line) for line in p.stdout.splitlines() if line.startswith('{')]
        commands = next(r['/'] for r in replies if '/' in r)
        for c in ('/meshgate/info', '/meshgate/services', '/meshgate/tasks', '/meshgate/conns',
                  '/meshgate/reload', '/meshgate/drops', '/meshgate/ports'):
            self.assertIn(c, commands)
        info = next(r['/meshgate/info'] for r in replies if '/meshgate/info' in r)
        self.assertEqual((info['generation'], info['services'], info['tasks']), (1, 1, 3))
        self.assertEqual(info['connections'], 1)

        # services: a table for people, a document for scripts
        out = self.ctl('services').stdout
        self.assertRegex(out, r'whoami\s+rr\s+0\s+off\s+file\s+tcp 8000 -> 8000')
        for ip, node in mesh_lab.TASKS:
            active = 1 if ip == task_ip else 0
            self.assertRegex(out, rf'-> {ip}\s+{node}\s+1 serving\s+{active}\s', out)
        doc = json.loads(self.ctl('services', '--json').stdout)
        [svc] = doc['services']
        self.assertEqual(svc['name'], 'whoami')
        self.assertEqual({t['address']: t['active'] for t in svc['tasks']},
                         {ip: int(ip == task_ip) for ip, _ in mesh_lab.TASKS})

        # conns: ipvsadm -Lnc
        out = self.ctl('conns').stdout
        self.assertRegex(out, rf'TCP\s+\d\d:\d\d\s+ESTABLISHED\s+203\.0\.113\.2:\d+\s+'
                              rf'203\.0\.113\.10:8000\s+{task_ip}:8000\s+10\.255\.0\.2:\d+\s+whoami')
        conns = json.loads(self.ctl('conns', '--json', '--service', 'whoami').stdout)
        self.assertEqual(len(conns['connections']), 1)
        self.assertEqual(conns['connections'][0]['task'], f'{task_ip}:8000')
        self.assertEqual(json.loads(self.ctl('conns', '--json', '--service', 'other').stdout)
                         ['connections'], [])

        # stats
        out = self.ctl('stats').stdout
        self.assertRegex(out, r'ext\s+external\s+[1-9]\d*\s+[1-9]\d*')
        stats = json.loads(self.ctl('stats', '--json').stdout)
        self.assertEqual(stats['info']['generation'], 1)
        self.assertIn('no_service', stats['drops'])

        # reload: what changed, or the errors with their places and exit 1
        with open(self.mg.config_path, 'w') as f:
            f.write(self.config(8080))
        out = self.ctl('reload').stdout
        self.assertRegex(out, r'reloaded: generation 2: services \+0 -0 ~1')
        # the connection kept its task
        self.assertEqual(stream.ask('after-reload', timeout=30), task)
        with open(self.mg.config_path, 'w') as f:
            f.write(self.config(8080).replace('published = 8080', 'published = 0'))
        p = self.ctl('reload', check=False)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, re.escape(self.mg.config_path) + r':\d+:\d+: published 0 ')
        self.assertEqual(json.loads(self.ctl('stats', '--json').stdout)['info']['generation'], 2)
        stream.close()

        p = subprocess.run([MESHGATECTL, '--file-prefix', 'no-such-gateway', 'stats'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no gateway with file prefix 'no-such-gateway'", p.stderr)
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_hostile_telemetry_requests_are_answered_or_refused(self):
        # Anything a local client sends on the telemetry socket, meshgatectl's or not: odd
        # parameters, huge ones, binary, unknown commands. Each gets an answer (maybe null or an
        # error) and the gateway keeps serving.
        import random
        path = f'/var/run/dpdk/{self.prefix}/dpdk_telemetry.v2'
        commands = ['/meshgate/info', '/meshgate/ports', '/meshgate/drops', '/meshgate/events',
                    '/meshgate/services', '/meshgate/listeners', '/meshgate/tasks',
                    '/meshgate/conns', '/meshgate/reload', '/meshgate/nothing']
        rng = random.Random(7)
        params = ['', '-1', '0', '4294967296', '99999999999999999999', 'whoami', ',,,', '%s%n',
                  'x' * 200, '\x00\xff', 'web,1,2,3', ' 1', '1e9', 'nan']
        params += [''.join(chr(rng.randrange(1, 256)) for _ in range(rng.randrange(1, 60)))
                   for _ in range(60)]
        answered = 0
        for cmd in commands:
            for p in params:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.settimeout(10)
                s.connect(path)
                s.recv(16384)  # the greeting
                s.send((cmd + (',' + p if p else '')).encode('utf-8', 'surrogateescape')[:1023])
                reply = s.recv(1 << 20)
                s.close()
                answered += bool(reply)
                self.assertIsNone(self.mg.proc.poll(), f'{cmd},{p!r}:\n{self.mg.log()[-3000:]}')
        self.assertEqual(answered, len(commands) * len(params))
        self.assertEqual(self.ctl('services').returncode, 0)
        stream = mesh_lab.Stream(self.lab, self.lab.client, EXT.address, 8000, self.workdir)
        self.assertIsNotNone(stream.ask('still here', timeout=30))
        stream.close()

    def test_dumpcap_captures_a_running_port(self):
        pinger = subprocess.Popen(['ip', 'netns', 'exec', self.lab.client, 'ping', '-q', '-i',
                                   '0.2', EXT.address], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        self.lab.procs.append(pinger)
        self.lab.pids.append(pinger.pid)
        out = os.path.join(self.workdir, 'ext.pcap')
        p = subprocess.run([DUMPCAP, f'--file-prefix={self.prefix}', '-i', '0', '-P', '-c', '6',
                            '-w', out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + self.mg.log()[-3000:])
        frames = rdpcap(out)
        self.assertGreaterEqual(len(frames), 6, p.stdout)
        icmp = [f for f in frames if f.haslayer('ICMP')]
        self.assertTrue(any(f['IP'].src == '203.0.113.2' for f in icmp), p.stdout)
        self.assertTrue(any(f['IP'].src == EXT.address for f in icmp), 'no echo reply captured')
        self.assertIsNone(self.mg.proc.poll())
        self.assertEqual(self.mg.stop(), 0, self.mg.log())


if __name__ == '__main__':
    harness.main()
