"""meshgate following a real one-node Docker swarm (Debian's docker.io, its own dockerd).

scripts/swarm_lab.py builds the node (a namespace with its dockerd, the swarm, an ingress
network whose --ip-range leaves the gateway's 10.0.0.200 out), a client namespace, and the
veths meshgate's ports open; the node piece (scripts/deploy-node-piece.sh) gives the node the
gateway's overlay neighbor. meshgate's file has ports, [overlay] address and [swarm] only:
services, tasks, nodes and the VNI come from the Engine API. Every answer is a real busybox
httpd (or nc echo) in a real task container; the client is the kernel's TCP.

Docker is slow on a busy machine (a --publish-add replaces every task), and so is everything
else: each wait here is for an event (tasks running, meshgate serving them, answers from each
task, N more echoes), with a generous deadline that only tells a hang; how long Docker and
meshgate took is printed, never asserted.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Meshgate, af_packet, ensure_hugepages, free_tcp_port, lcores, unique  # noqa: E402

import swarm_lab  # noqa: E402  (harness put scripts/ on the path)

GATEWAY = '203.0.113.10'
MESHGATECTL = os.environ.get('MESHGATECTL_BIN') or os.path.join(
    harness.SOURCE_ROOT, 'build', 'control', 'meshgatectl')
ECHO = ['nc', '-ll', '-p', '80', '-e', '/bin/cat']  # busybox: one cat per connection

# In the client namespace: requests over new connections until stdin closes, one JSON line
# each: {"t": when it began (CLOCK_MONOTONIC, the test's clock too), "ok": bool, "who": the
# answering task's hostname | "error": why}. 30 s without an answer is a failed request.
REQUEST_LOOP = r'''
import json, socket, sys, threading, time
host, port = sys.argv[1], int(sys.argv[2])
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
while not done.is_set():
    t = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=30) as s:
            s.settimeout(30)
            s.sendall(b'GET / HTTP/1.0\r\n\r\n')
            data = b''
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b'\r\n\r\n')
        ok = head.startswith(b'HTTP/1.') and b' 200 ' in head.split(b'\r\n')[0]
        out = {'t': t, 'ok': ok, 'who': body.decode().strip()} if ok else \
              {'t': t, 'ok': False, 'error': head[:60].decode(errors='replace')}
    except OSError as e:
        out = {'t': t, 'ok': False, 'error': repr(e)}
    print(json.dumps(out), flush=True)
    time.sleep(0.02)
'''

# In the client namespace: one connection held open, a line every 100 ms echoed back, until
# stdin closes; prints {"open": true}, {"echoed": n} after each echo, and {"sent": n,
# "echoed": m, "error": ...} at the end. 30 s without the echo is an error.
HELD_CONNECTION = r'''
import json, socket, sys, threading, time
host, port = sys.argv[1], int(sys.argv[2])
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
sent = echoed = 0
error = ''
try:
    s = socket.create_connection((host, port), timeout=30)
    s.settimeout(30)
    f = s.makefile('rb')
    print(json.dumps({'open': True}), flush=True)
    while not done.is_set():
        sent += 1
        s.sendall(b'%d\n' % sent)
        if f.readline() != b'%d\n' % sent:
            error = 'no echo of %d' % sent
            break
        echoed += 1
        print(json.dumps({'echoed': echoed}), flush=True)
        time.sleep(0.1)
except OSError as e:
    error = repr(e)
print(json.dumps({'sent': sent, 'echoed': echoed, 'error': error}), flush=True)
'''


# In the client namespace: single SYNs (scapy: never sent again, as the kernel would after a
# second) to HOST:PORT, one after another until one is answered by anything but a RST (for 120
# s at most); a JSON line each: {"t": when it left, "answer": "rst" | "synack" | null}. A SYN
# the gateway dropped stays unanswered, however slow the machine: null after 30 s.
SYN_PROBE = r'''
import json, random, sys, time
from scapy.all import IP, TCP, L3RawSocket, conf, sr1
conf.verb = 0
conf.L3socket = L3RawSocket  # the kernel's route and neighbor entry, not scapy's own ARP
host, port = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 120
while True:
    t = time.monotonic()
    syn = IP(dst=host) / TCP(sport=random.randint(20000, 60000), dport=port, flags='S',
                             seq=random.randint(0, 2**31))
    reply = sr1(syn, timeout=30)
    flags = str(reply[TCP].flags) if reply is not None and reply.haslayer(TCP) else ''
    answer = 'synack' if 'S' in flags and 'A' in flags else 'rst' if 'R' in flags else None
    print(json.dumps({'t': t, 'answer': answer}), flush=True)
    if answer != 'rst' or time.monotonic() > deadline:
        break
    time.sleep(0.05)
'''


class ClientProcess:
    """A python script in the client namespace; stop() closes its stdin and returns its JSON
    lines."""

    def __init__(self, lab, workdir, name, script, port):
        path = os.path.join(workdir, name + '.py')
        with open(path, 'w') as f:
            f.write(script)
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', lab.client_ns, '/usr/bin/python3', path,
                                      GATEWAY, str(port)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({'ok': False, 'error': line.strip()})

    def wait_for(self, predicate, what, timeout=60):
        """Waits until predicate(the lines so far) holds."""
        deadline = time.monotonic() + timeout
        while not predicate(list(self.lines)):
            if self.proc.poll() is not None:
                self._reader.join(10)  # its last lines
                if predicate(list(self.lines)):
                    return
                raise AssertionError(f'{what}: it exited; last lines {self.lines[-5:]}')
            if time.monotonic() > deadline:
                raise AssertionError(f'{what}: not after {timeout} s; last lines {self.lines[-5:]}')
            time.sleep(0.1)

    def echoed(self):
        """HELD_CONNECTION's lines echoed so far."""
        return max([line.get('echoed', 0) for line in self.lines] + [0])

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(60)
        self._reader.join(10)
        return self.lines


class SwarmTest(unittest.TestCase):
    """One swarm, one gateway for the whole class; each test makes and removes its services.
    The tests run in name order (the dockerd restart last)."""

    @classmethod
    def setUpClass(cls):
        harness.require_binary()
        if not (os.access(swarm_lab.DOCKERD, os.X_OK) and os.path.exists(swarm_lab.BUSYBOX)):
            raise AssertionError('docker.io and busybox-static are needed: scripts/setup.sh '
                                 'installs them')
        ensure_hugepages()
        cls.workdir = f'/tmp/meshgate-swarm-{os.getpid()}'
        os.makedirs(cls.workdir, exist_ok=True)
        cls.lab = swarm_lab.SwarmLab(unique('ms', 10), workdir=os.path.join(cls.workdir, 'lab'),
                                     tls_api='192.168.88.1/30')
        cls.lab.up()
        try:
            cls.lab.add_client()
            cls.lab.deploy_node_piece()
            cls.prefix = unique('mgsw')
            cls.listen = f'127.0.0.1:{free_tcp_port()}'
            config = cls.config(cls.prefix, cls.listen, af_packet(0, cls.lab.external_if),
                                af_packet(1, cls.lab.underlay_if),
                                f'endpoint = "{cls.lab.host}"\nnetwork = "ingress"\n')
            cls.gw = Meshgate(cls.workdir, config, cls.prefix, cls.listen)
            cls.gw.start()
            cls.gw.wait_ready()
            cls.gw.wait_for(lambda m: m.get('meshgate_swarm_connected') == 1, 'the swarm sync')
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        gw = getattr(cls, 'gw', None)
        if gw is not None:
            gw.stop()
            gw.cleanup()
        cls.lab.destroy()
        if not os.environ.get('MESHGATE_KEEP'):
            shutil.rmtree(cls.workdir, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------

    @classmethod
    def config(cls, prefix, listen, external, underlay, swarm):
        """Ports, [overlay] address (no vni: the swarm's), [swarm] with the lines SWARM."""
        return '\n'.join([
            f'[dpdk]\nlcores = "{lcores()}"\nmemory_mb = 256\nfile_prefix = "{prefix}"\n',
            f'[[port]]\nname = "ext"\ndevice = "{external}"\nrole = "external"\n'
            f'address = "{GATEWAY}/24"\n',
            f'[[port]]\nname = "underlay"\ndevice = "{underlay}"\nrole = "underlay"\n'
            f'address = "{cls.lab.gateway_vtep}/{cls.lab.prefixlen}"\n',
            f'[overlay]\naddress = "{cls.lab.gateway_overlay}/24"\n',
            f'[swarm]\n{swarm}',
            '[limits]\nconnections = 65536\n',
            f'[stats]\nlisten = "{listen}"\n',
        ])

    def serving(self, service, m=None):
        """The addresses meshgate serves SERVICE with (weight > 0)."""
        m = m or self.gw.metrics()
        return {ls['task'] for ls in m.labels_of('meshgate_task_info')
                if ls['service'] == service and ls['state'] == 'serving'
                and m.get('meshgate_task_weight', service=service, task=ls['task'])}

    def wait_following(self, service, count, timeout=60):
        """Waits until Docker runs COUNT tasks of SERVICE and meshgate serves exactly those;
        returns (tasks, seconds from Docker having them to meshgate having them)."""
        tasks = self.lab.wait_tasks(service, count, timeout)
        docker_at = time.monotonic()
        want = {t['address'] for t in tasks}
        self.gw.wait_for(lambda m: self.serving(service, m) == want,
                         f'{service} served by {sorted(want)}', timeout=timeout)
        lag = time.monotonic() - docker_at
        # The ingress namespace, where the node piece puts the gateway's entries, may come only
        # with the node's first task on it: the replies need them.
        self.lab.wait_gateway_entries(timeout)
        return tasks, lag

    def curl(self, port, timeout=30):
        p = self.lab.client(['curl', '-s', '-m', str(timeout), f'http://{GATEWAY}:{port}/'],
                            check=False, timeout=timeout + 5)
        return p.returncode, p.stdout.strip()

    def answers(self, port, count):
        return [self.curl(port) for _ in range(count)]

    def remove(self, *services):
        for s in services:
            self.lab.remove_service(s)

    def ctl(self, *args):
        return harness.run([MESHGATECTL, '--file-prefix', self.prefix, *args])

    # --- tests ---------------------------------------------------------------------------

    def test_1_every_task_answers_the_published_port(self):
        self.lab.create_service('web1', published=8000, replicas=3)
        self.addCleanup(self.remove, 'web1')
        tasks, lag = self.wait_following('web1', 3)
        m = self.gw.metrics()
        self.assertEqual(m.get('meshgate_service_info', service='web1'), 1)
        self.assertEqual(m.get('meshgate_service_info', service='web1', origin='swarm'), 1)
        # The swarm's VNI, not the default 4096 the file did not set: every answer proves it.
        got = self.answers(8000, 45)
        self.assertTrue(all(rc == 0 for rc, _ in got), got)
        self.assertEqual({who for _, who in got}, {t['hostname'] for t in tasks})
        self.assertNotEqual(self.lab.vni(), 4096)
        ctl = self.ctl('swarm').stdout
        self.assertIn('swarm sync: connected', ctl)
        self.assertIn('events        followed', ctl)
        services = json.loads(self.ctl('services', '--json').stdout)
        web = [s for s in services['services'] if s['name'] == 'web1'][0]
        self.assertEqual(web['origin'], 'swarm')
        self.assertEqual({t['address'] for t in web['tasks']}, {t['address'] for t in tasks})
        # A label picks the scheduler, as [[service]] scheduler would: rr takes the tasks in turn.
        self.lab.docker('service', 'update', '-d', '--label-add', 'com.meshgate.scheduler=rr', 'web1')

        def scheduler():
            doc = json.loads(self.ctl('services', '--json').stdout)
            return [s['scheduler'] for s in doc['services'] if s['name'] == 'web1']

        deadline = time.monotonic() + 60
        while scheduler() != ['rr']:
            self.assertLess(time.monotonic(), deadline, f'web1 scheduler {scheduler()}')
            time.sleep(0.2)
        tasks, _ = self.wait_following('web1', 3)
        turns = [who for _, who in self.answers(8000, 30)]
        self.assertEqual(sorted(turns.count(t['hostname']) for t in tasks), [10, 10, 10], turns)
        print(f'\n  web1: 45/45 answered by {len(tasks)} tasks, followed {lag:.2f} s after Docker; '
              'with com.meshgate.scheduler=rr 10 each of 30')

    def test_2_scale_up_and_down_is_followed_without_a_failed_request(self):
        self.lab.create_service('web2', published=8001, replicas=3)
        self.addCleanup(self.remove, 'web2')
        self.wait_following('web2', 3)
        loop = ClientProcess(self.lab, self.workdir, 'loop2', REQUEST_LOOP, 8001)
        try:
            loop.wait_for(lambda lines: len(lines) >= 10, 'requests before the scaling')
            self.lab.scale('web2', 5)
            up, up_lag = self.wait_following('web2', 5)
            # the new tasks take requests
            hosts = {t['hostname'] for t in up}
            loop.wait_for(lambda lines: hosts <= {r.get('who') for r in lines},
                          f'answers from each of {sorted(hosts)}')
            self.lab.scale('web2', 2)
            down, down_lag = self.wait_following('web2', 2)
            followed = time.monotonic()
            loop.wait_for(lambda lines: sum(r.get('t', 0) > followed for r in lines) >= 20,
                          'requests after the scaling down')
        finally:
            results = loop.stop()
        failed = [r for r in results if not r['ok']]
        self.assertEqual(failed, [], f'{len(failed)} of {len(results)} failed')
        # once meshgate serves the 2 tasks, new connections go to them alone
        after = {r['who'] for r in results if r['t'] > followed}
        self.assertTrue(after <= {t['hostname'] for t in down}, (after, down))
        print(f'\n  web2: {len(results)} requests, 0 failed; 3->5 followed {up_lag:.2f} s, '
              f'5->2 {down_lag:.2f} s after Docker')

    def test_3_a_published_port_added_goes_from_refused_to_answered(self):
        """Not a SYN is dropped on the way: a port nothing publishes answers RST (so a client
        tries again at once, not after a second of SYN timeout), and from when meshgate follows
        the new port, SYN-ACK."""
        self.lab.create_service('web3', published=8002, replicas=2)
        self.addCleanup(self.remove, 'web3')
        self.wait_following('web3', 2)
        probe = ClientProcess(self.lab, self.workdir, 'probe3', SYN_PROBE, 8082)
        try:
            probe.wait_for(lambda lines: any(p.get('answer') == 'rst' for p in lines),
                           'a port nothing publishes refused (RST)', timeout=120)
            self.lab.publish_add('web3', 8082, 80)
            added = time.monotonic()
            probe.wait_for(lambda lines: [p['answer'] for p in lines if 'answer' in p][-1] != 'rst',
                           'an answer to 8082', timeout=180)
        finally:
            probes = [p for p in probe.stop() if 'answer' in p]
        answers = [p['answer'] for p in probes]
        self.assertEqual(answers[-1], 'synack', answers)
        self.assertTrue(all(a == 'rst' for a in answers[:-1]), answers)
        lag = probes[-1]['t'] - added
        refused = sum(p['t'] > added for p in probes[:-1])
        rc, who = self.curl(8082)
        self.assertEqual(rc, 0, f'8082 answered a SYN, not the request: curl {rc}')
        self.assertTrue(who)
        # Docker replaces every task for the new port; meshgate follows the new addresses.
        self.lab.wait_update('web3')
        tasks, _ = self.wait_following('web3', 2)
        got = self.answers(8082, 20) + self.answers(8002, 20)
        self.assertTrue(all(rc == 0 for rc, _ in got), got)
        self.assertEqual({who for _, who in got}, {t['hostname'] for t in tasks})
        print(f'\n  web3: 8082 answered a SYN {lag:.2f} s after --publish-add returned '
              f'({refused} refused since)')

    def test_4_a_removed_service_stops_while_the_others_connections_flow(self):
        self.lab.create_service('web4', published=8003, replicas=2)
        self.lab.create_service('echo4', published=8103, replicas=1, command=ECHO)
        self.addCleanup(self.remove, 'web4', 'echo4')
        self.wait_following('web4', 2)
        self.wait_following('echo4', 1)
        held = ClientProcess(self.lab, self.workdir, 'held4', HELD_CONNECTION, 8103)
        try:
            self.gw.wait_for(lambda m: m.get('meshgate_active_connections', service='echo4'),
                             'the held connection', timeout=60)
            self.assertEqual(self.curl(8003)[0], 0)
            self.lab.remove_service('web4')
            removed = time.monotonic()
            # It answers until meshgate follows the removal (a request to a task Docker already
            # stopped may time out meanwhile), then its port is refused (RST).
            while (rc := self.curl(8003, timeout=10)[0]) != 7:
                self.assertLess(time.monotonic() - removed, 60, f'web4 not refused: curl {rc}')
                time.sleep(0.1)
            stopped = time.monotonic() - removed
            self.assertEqual(self.curl(8003)[0], 7, 'refused once removed')
            # and the other's connection goes on after
            echoed = held.echoed()
            held.wait_for(lambda _: held.echoed() >= echoed + 10, 'echo4 after web4 went')
        finally:
            lines = held.stop()
        self.assertEqual(lines[0], {'open': True}, lines)
        end = lines[-1]
        self.assertEqual(end['error'], '', end)
        self.assertGreaterEqual(end['echoed'], echoed + 10, end)
        m = self.gw.metrics()
        self.assertIsNone(m.get('meshgate_service_info', service='web4'))
        print(f'\n  web4 stopped answering {stopped:.2f} s after `service rm`; echo4\'s connection '
              f'went on: {end["echoed"]} of {end["sent"]} lines echoed')

    def test_5_the_tcp_endpoint_with_tls(self):
        """A second gateway (on net_null ports: only its tables are looked at) follows the same
        swarm over tcp://...:2376 with a client certificate; one trusting another CA does not."""
        self.lab.create_service('web5', published=8005, replicas=2)
        self.addCleanup(self.remove, 'web5')
        want = {t['address'] for t in self.lab.wait_tasks('web5', 2)}
        tls = (f'endpoint = "{self.lab.tls_endpoint}"\n'
               f'tls_cert = "{self.lab.tls_file("cert.pem")}"\n'
               f'tls_key = "{self.lab.tls_file("key.pem")}"\n')
        for name, ca, follows in (('tls-ok', 'ca.pem', True), ('tls-other-ca', 'other-ca.pem', False)):
            workdir = os.path.join(self.workdir, name)
            os.makedirs(workdir, exist_ok=True)
            prefix, listen = unique('mgtl'), f'127.0.0.1:{free_tcp_port()}'
            config = self.config(prefix, listen, 'net_null0', 'net_null1',
                                 tls + f'tls_ca = "{self.lab.tls_file(ca)}"\n')
            with Meshgate(workdir, config, prefix, listen) as gw:
                gw.wait_ready()
                if follows:
                    m = gw.wait_for(lambda m: m.get('meshgate_swarm_connected') == 1 and
                                    self.serving('web5', m) == want, f'web5 over TLS ({want})',
                                    timeout=60)
                    self.assertEqual(m.get('meshgate_service_info', service='web5', origin='swarm'), 1)
                else:
                    m = gw.wait_for(lambda m: m.get('meshgate_swarm_read_errors_total', 0) >= 2,
                                    'reads refused', timeout=60)
                    self.assertEqual(m.get('meshgate_swarm_connected'), 0)
                    self.assertIsNone(m.get('meshgate_service_info', service='web5'))
                    self.assertRegex(gw.log(), r'swarm tcp://.*(certificate|SSL)')
                self.assertEqual(gw.stop(), 0)

    def test_6_file_services_beside_the_swarms(self):
        """A [[service]] and a [[node]] in the file next to [swarm]: a reload adds them, keeps
        the swarm's services, and the swarm's node at the file node's address goes by its name."""
        self.lab.create_service('web6', published=8006, replicas=1)
        self.addCleanup(self.remove, 'web6')
        (task,), _ = self.wait_following('web6', 1)
        with open(self.gw.config_path) as f:
            original = f.read()
        pinned = (f'[[node]]\nname = "pinned-node"\naddress = "{self.lab.advertise}"\n\n'
                  '[[service]]\nname = "pinned"\n  [[service.port]]\n  protocol = "tcp"\n'
                  '  published = 8606\n  target = 80\n'
                  f'  [[service.task]]\n  address = "{task["address"]}"\n  node = "pinned-node"\n')

        def reload(text):
            with open(self.gw.config_path, 'w') as f:
                f.write(text)
            self.assertIn('reloaded', self.ctl('reload').stdout)

        self.addCleanup(reload, original)
        reload(original + '\n' + pinned)
        m = self.gw.metrics()
        self.assertEqual(m.get('meshgate_service_info', service='pinned', origin='file'), 1)
        self.assertEqual(m.get('meshgate_service_info', service='web6', origin='swarm'), 1)
        self.assertEqual(m.get('meshgate_task_info', service='web6', task=task['address'],
                               node='pinned-node', origin='swarm'), 1)
        self.assertEqual(self.curl(8606), (0, task['hostname']))
        self.assertEqual(self.curl(8006), (0, task['hostname']))
        reload(original)
        m = self.gw.metrics()
        self.assertIsNone(m.get('meshgate_service_info', service='pinned'))
        self.assertEqual(m.get('meshgate_service_info', service='web6', origin='swarm'), 1)
        self.assertEqual(self.curl(8006), (0, task['hostname']))

    def test_7_a_changed_swarm_key_keeps_the_swarms_services(self):
        """Changing a [swarm] key (poll_interval_ms) starts the sync again; until the new sync has
        read the swarm, the gateway keeps serving what the old one read: a held connection goes
        on (with removed_task_grace = 0, a task taken away would end it at once) and the service
        is there right after the reload."""
        self.lab.create_service('echo7', published=8107, replicas=1, command=ECHO)
        self.addCleanup(self.remove, 'echo7')
        self.wait_following('echo7', 1)
        with open(self.gw.config_path) as f:
            original = f.read()

        def reload(text):
            with open(self.gw.config_path, 'w') as f:
                f.write(text)
            self.assertIn('reloaded', self.ctl('reload').stdout)

        self.addCleanup(reload, original)
        held = ClientProcess(self.lab, self.workdir, 'held7', HELD_CONNECTION, 8107)
        try:
            self.gw.wait_for(lambda m: m.get('meshgate_active_connections', service='echo7'),
                             'the held connection', timeout=30)
            restarted = time.time()
            reload(original.replace('[swarm]\n', '[swarm]\npoll_interval_ms = 500\n') +
                   '\n[timeouts]\nremoved_task_grace = 0\n')
            m = self.gw.metrics()
            self.assertEqual(m.get('meshgate_service_info', service='echo7', origin='swarm'), 1,
                             'the swarm\'s service left with the old sync')
            self.gw.wait_for(lambda m: m.get('meshgate_swarm_last_resync_timestamp_seconds', 0)
                             >= restarted, 'the new sync\'s first read', timeout=60)
            echoed = held.echoed()
            held.wait_for(lambda _: held.echoed() >= echoed + 10, 'echo7 after the new sync read')
            self.assertEqual(self.serving('echo7'), {t['address'] for t in self.lab.tasks('echo7')})
        finally:
            lines = held.stop()
        end = lines[-1]
        self.assertEqual(end['error'], '', f'the held connection broke: {end}')
        self.assertGreaterEqual(end['echoed'], echoed + 10, end)

    def test_9_dockerd_gone_and_back(self):
        """The manager crashes (SIGKILL: the tasks' containers go on): established connections
        and new ones are served from the last tables while the sync retries; when dockerd is
        back it replaces the tasks (swarm mode has no live-restore) and meshgate follows."""
        self.lab.create_service('web9', published=8009, replicas=2)
        self.lab.create_service('echo9', published=8109, replicas=1, command=ECHO)
        self.addCleanup(self.remove, 'web9', 'echo9')
        before, _ = self.wait_following('web9', 2)
        self.wait_following('echo9', 1)
        held = ClientProcess(self.lab, self.workdir, 'held9', HELD_CONNECTION, 8109)
        try:
            self.gw.wait_for(lambda m: m.get('meshgate_active_connections', service='echo9'),
                             'the held connection', timeout=60)
            errors_before = self.gw.metrics().get('meshgate_swarm_read_errors_total')
            self.lab.crash_dockerd()
            m = self.gw.wait_for(lambda m: m.get('meshgate_swarm_connected') == 0,
                                 'the sync to notice', timeout=60)
            self.assertGreater(m.get('meshgate_swarm_read_errors_total'), errors_before)
            time.sleep(3)  # retrying with back-off meanwhile
            during = self.answers(8009, 10)
            self.assertTrue(all(rc == 0 for rc, _ in during), during)
            self.assertEqual(self.serving('web9'), {t['address'] for t in before})
            self.assertIn('swarm sync: disconnected', self.ctl('swarm').stdout)
            echoed = held.echoed()
            held.wait_for(lambda _: held.echoed() >= echoed + 10, 'echo9 while dockerd is away')
        finally:
            lines = held.stop()
        end = lines[-1]
        self.assertEqual(end['error'], '', f'the held connection broke while dockerd was away: {end}')
        self.assertGreaterEqual(end['echoed'], echoed + 10, end)

        self.lab.start_dockerd()
        self.lab.wait_swarm_active()
        self.gw.wait_for(lambda m: m.get('meshgate_swarm_connected') == 1, 'the sync to recover',
                         timeout=60)
        after, _ = self.wait_following('web9', 2, timeout=90)
        got = self.answers(8009, 30)
        self.assertTrue(all(rc == 0 for rc, _ in got), got)
        self.assertEqual({who for _, who in got}, {t['hostname'] for t in after})
        self.assertIn('swarm sync: connected', self.ctl('swarm').stdout)
        print(f'\n  dockerd away: held connection {end["echoed"]} lines echoed, 10/10 new '
              f'requests answered; back: tasks {sorted(t["address"] for t in after)} served')


if __name__ == '__main__':
    harness.main()
