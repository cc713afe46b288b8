#!/usr/bin/python3
"""/metrics with real clients: a real Prometheus server (Debian's) scrapes meshgate every 2 s and
its HTTP API gives back the counters of the frames the test sent; promtool accepts the
exposition; slow and never-reading clients do not hold up other scrapes, reloads or the stop.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from scapy.all import ICMP, IP, Ether

import harness
from harness import EXT, UNDERLAY

PROMETHEUS = shutil.which('prometheus') or '/usr/bin/prometheus'
PROMTOOL = shutil.which('promtool') or '/usr/bin/promtool'
CLIENT_MAC = '02:00:00:00:00:99'
PINGS = 7


def pcap_ports(workdir, ext_frames):
    out = []
    for i, port in enumerate((EXT, UNDERLAY)):
        rx = os.path.join(workdir, f'{port.name}_in.pcap')
        harness.write_pcap(rx, ext_frames if port is EXT else [])
        tx = os.path.join(workdir, f'{port.name}_out.pcap')
        out.append(harness.port_toml(port.name, harness.pcap_device(i, rx, tx),
                                     port.role, port.cidr, port.mac))
    return out


def null_ports():
    return [harness.port_toml(EXT.name, 'net_null0,no-rx=1', EXT.role, EXT.cidr, EXT.mac),
            harness.port_toml(UNDERLAY.name, 'net_null1,no-rx=1', UNDERLAY.role, UNDERLAY.cidr,
                              UNDERLAY.mac)]


def many_tasks(n, per_service=64):
    """N tasks in services with long names: a /metrics body far bigger than what the socket
    buffers of a client that reads nothing take (tens of KiB)."""
    text = '[[node]]\nname = "node-1"\naddress = "192.168.50.11"\n'
    for i in range(n):
        if i % per_service == 0:
            name = f'service-{i // per_service:03}-'.ljust(63, 'x')
            text += (f'[[service]]\nname = "{name}"\n  [[service.port]]\n'
                     f'  published = {1000 + i // per_service}\n')
        text += (f'  [[service.task]]\n  address = "10.255.{1 + i // 250}.{1 + i % 250}"\n'
                 '  node = "node-1"\n')
    return text


class Prometheus:
    """A Prometheus server on loopback scraping TARGET every 2 s."""

    def __init__(self, workdir, target):
        self.port = harness.free_tcp_port()
        self.dir = os.path.join(workdir, 'prometheus')
        os.makedirs(self.dir)
        config = os.path.join(self.dir, 'prometheus.yml')
        with open(config, 'w') as f:
            f.write('global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n'
                    'scrape_configs:\n  - job_name: meshgate\n'
                    f'    static_configs:\n      - targets: ["{target}"]\n')
        self.log = open(os.path.join(self.dir, 'prometheus.log'), 'w')
        self.proc = subprocess.Popen(
            [PROMETHEUS, f'--config.file={config}', f'--storage.tsdb.path={self.dir}/data',
             f'--web.listen-address=127.0.0.1:{self.port}'],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def query(self, expr):
        url = (f'http://127.0.0.1:{self.port}/api/v1/query?' +
               urllib.parse.urlencode({'query': expr}))
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)['data']['result']

    def value(self, expr):
        """The value of EXPR's single series, None while Prometheus has none."""
        try:
            result = self.query(expr)
        except OSError:
            return None
        return float(result[0]['value'][1]) if len(result) == 1 else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class MetricsTest(harness.WorkdirTestCase):

    def start(self, ports, extra=''):
        self.prefix = harness.unique('mgm')
        self.listen = f'127.0.0.1:{harness.free_tcp_port()}'
        config = harness.config_toml(self.prefix, ports, self.listen,
                                     extra=extra + '[reload]\nwatch = false\n')
        self.mg = harness.Meshgate(self.workdir, config, self.prefix, self.listen,
                                   log_level='info')
        self.addCleanup(self.mg.cleanup)
        self.mg.start()
        return self.mg.wait_ready()

    def test_a_prometheus_server_reads_what_was_sent(self):
        pings = [Ether(src=CLIENT_MAC, dst=EXT.mac) /
                 IP(src='203.0.113.2', dst=EXT.address) / ICMP(id=1, seq=i) / (b'x' * 32)
                 for i in range(PINGS)]
        self.start(pcap_ports(self.workdir, pings))
        prometheus = Prometheus(self.workdir, self.listen)
        self.addCleanup(prometheus.stop)

        # Each value as soon as Prometheus has it: a scrape that timed out on a busy machine
        # (up 0, the series stale until the next) only delays it.
        def value(expr, want, timeout=60):
            deadline = time.monotonic() + timeout
            while True:
                got = prometheus.value(expr)
                if got == want or time.monotonic() > deadline:
                    return got
                if prometheus.proc.poll() is not None:
                    self.fail('prometheus exited:\n' + open(prometheus.log.name).read()[-3000:])
                time.sleep(0.5)

        for expr, want in (('meshgate_port_packets_total{port="ext",direction="rx"}', PINGS),
                           ('meshgate_icmp_echo_replies_sent_total', PINGS),
                           ('meshgate_port_packets_total{port="ext",direction="tx"}', PINGS),
                           ('up{job="meshgate"}', 1),
                           ('meshgate_config_generation', 1)):
            self.assertEqual(value(expr, want), want, expr)

        text = urllib.request.urlopen(f'http://{self.listen}/metrics', timeout=30).read()
        p = subprocess.run([PROMTOOL, 'check', 'metrics'], input=text, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout.decode())
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_slow_and_stuck_clients_hold_nothing_up(self):
        """Three clients ask for the whole body and never read it (the exporter lets each go
        after its request timeout: 5 s without progress); three send their request a byte
        every 0.1 s, then read the answer 4 KiB every 0.5 s: each of these holds an exporter
        thread for as long as it reads, minutes for a body of MiBs, however fast the machine
        is. Scrapes and a reload complete while they hold theirs: one that waited for a thread
        they hold would wait for ever, and the timeouts here only detect that hang. Then they
        stop reading too, and the stop completes. (How long each took is printed, not
        asserted: that is the machine's speed.)"""
        self.start(null_ports(), many_tasks(4096))
        body = urllib.request.urlopen(f'http://{self.listen}/metrics', timeout=60).read()
        self.assertGreater(len(body), 1 << 20, 'the body must pass the socket buffers')
        host, port = self.listen.split(':')
        stop, reading = threading.Event(), threading.Event()
        reading.set()
        read = {}  # a slow reader's port -> bytes of the answer read so far

        def exporter_side():
            """{client port: (TCP state, bytes queued)} of the exporter's connections."""
            ss = subprocess.run(['ss', '-tanH', f'( sport = :{port} )'], stdout=subprocess.PIPE,
                                text=True, timeout=60).stdout
            sides = {}
            for line in ss.splitlines():
                state, _, queued, _, peer = line.split()[:5]
                if state not in ('LISTEN', 'TIME-WAIT'):
                    sides[int(peer.rsplit(':', 1)[1])] = (state, int(queued))
            return sides

        def client(rcvbuf=4096):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before the handshake
            s.connect((host, int(port)))
            return s

        def slow(s):
            mine = s.getsockname()[1]
            for ch in b'GET /metrics HTTP/1.0\r\n\r\n':
                if stop.wait(0.1):
                    return
                s.send(bytes([ch]))
            while not stop.wait(0.5):
                if not reading.is_set():
                    continue
                data = s.recv(4096)
                if not data:
                    return
                read[mine] = read.get(mine, 0) + len(data)

        stuck = [client() for _ in range(3)]
        for s in stuck:  # ask for the whole body and never read it
            s.sendall(b'GET /metrics HTTP/1.0\r\n\r\n')
        readers = [client() for _ in range(3)]
        for s in readers:
            threading.Thread(target=slow, args=(s,), daemon=True).start()
        stuck_ports = [s.getsockname()[1] for s in stuck]
        slow_ports = [s.getsockname()[1] for s in readers]

        def wait_until(done, what, timeout=60):
            deadline = time.monotonic() + timeout
            while not done():
                self.assertLess(time.monotonic(), deadline, f'{what}: {exporter_side()}')
                time.sleep(0.1)

        def assert_slow_readers_held(when):
            # The exporter closes a connection once the answer is all in the socket: open, it
            # is still writing, from the thread the reader holds.
            sides = exporter_side()
            self.assertTrue(all(sides.get(p, ('gone',))[0] == 'ESTAB' for p in slow_ports),
                            f'{when}: a slow reader is no longer held (the body fits the socket '
                            f'buffers?): {sides}, read {read}')

        try:
            # The exporter writes to every one of them, and cannot put the whole body in the
            # sockets of those that do not read: they are stuck.
            wait_until(lambda: all(exporter_side().get(p, ('', 0))[1] > 0 for p in stuck_ports),
                       'the stuck clients get no answer')
            wait_until(lambda: all(read.get(p, 0) > 0 for p in slow_ports),
                       'the slow readers get no answer')
            assert_slow_readers_held('after their answers began')
            took = []
            for _ in range(3):
                t0 = time.monotonic()
                m = harness.scrape(self.listen, timeout=60)
                took.append(time.monotonic() - t0)
                assert_slow_readers_held('after a scrape')
            self.assertEqual(m.get('meshgate_config_generation'), 1)

            os.kill(self.mg.proc.pid, signal.SIGHUP)
            t0 = time.monotonic()
            self.mg.wait_for(lambda m: m.get('meshgate_config_generation') == 2, 'reload',
                             timeout=60)
            reload_took = time.monotonic() - t0
            assert_slow_readers_held('after the reload')
            # A client that reads nothing does not keep its thread: it is let go.
            wait_until(lambda: all(exporter_side().get(p, ('gone',))[0] != 'ESTAB'
                                   for p in stuck_ports), 'the stuck clients are never let go')
            assert_slow_readers_held('before the stop')
            # The stop, once they are stuck too. (One that kept reading would keep its thread,
            # and the stop would wait for it to have read the whole body.)
            reading.clear()
            t0 = time.monotonic()
            self.assertEqual(self.mg.stop(timeout=60), 0, self.mg.log())
            stop_took = time.monotonic() - t0
            print(f'\n  beside 3 slow readers holding their threads: scrapes took '
                  f'{", ".join(f"{t:.2f}" for t in took)} s, the reload {reload_took:.2f} s; '
                  f'the stop, once they stopped reading, {stop_took:.2f} s; they had read '
                  f'{sorted(read.values())} bytes of {len(body)}', flush=True)
        finally:
            stop.set()
            for s in stuck + readers:
                s.close()

if __name__ == '__main__':
    harness.main()
