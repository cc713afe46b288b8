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
        self.start(null_ports(), many_tasks(4096))
        body = urllib.request.urlopen(f'http://{self.listen}/metrics', timeout=10).read()
        self.assertGreater(len(body), 1 << 20, 'the body must pass the socket buffers')
        host, port = self.listen.split(':')
        stop = threading.Event()

        def dribble():  # a request one byte every 0.1 s
            with socket.create_connection((host, int(port))) as s:
                for ch in b'GET /metrics HTTP/1.0\r\n\r\n':
                    if stop.wait(0.1):
                        return
                    try:
                        s.send(bytes([ch]))
                    except OSError:
                        return
                stop.wait()

        stuck = []
        for _ in range(3):  # ask for the whole body and never read it
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
            s.connect((host, int(port)))
            s.sendall(b'GET /metrics HTTP/1.0\r\n\r\n')
            stuck.append(s)
        dribblers = [threading.Thread(target=dribble, daemon=True) for _ in range(3)]
        for t in dribblers:
            t.start()
        time.sleep(1)
        try:
            # The gateway's side of the stuck connections holds unsent data: it is really stuck.
            ss = subprocess.run(['ss', '-tnH', f'( sport = :{port} )'],
                                stdout=subprocess.PIPE, text=True).stdout
            queued = [int(line.split()[2]) for line in ss.splitlines() if line.strip()]
            self.assertGreaterEqual(sum(q > 0 for q in queued), 1, ss)
            for _ in range(3):
                t0 = time.monotonic()
                m = harness.scrape(self.listen, timeout=10)
                took = time.monotonic() - t0
                self.assertLess(took, 3 * harness.TIME_SCALE, f'a scrape took {took:.1f} s beside slow clients')
            self.assertEqual(m.get('meshgate_config_generation'), 1)

            os.kill(self.mg.proc.pid, signal.SIGHUP)
            t0 = time.monotonic()
            self.mg.wait_for(lambda m: m.get('meshgate_config_generation') == 2, 'reload',
                             timeout=10)
            took = time.monotonic() - t0
            print(f'\n  reload beside stuck clients answered in {took:.2f} s', flush=True)
            self.assertLess(took, 1.5 * harness.TIME_SCALE)
            t0 = time.monotonic()
            self.assertEqual(self.mg.stop(), 0, self.mg.log())
            self.assertLess(time.monotonic() - t0, 10 * harness.TIME_SCALE)
        finally:
            stop.set()
            for s in stuck:
                s.close()


if __name__ == '__main__':
    harness.main()
