"""Shared helpers for meshgate's integration tests (pcap golden tests, CLI, kernel peers).

Run the tests with Debian's /usr/bin/python3 (it has scapy). Environment:
  MESHGATE_BIN          the meshgate executable (default: <repo>/build/control/meshgate)
  MESHGATE_SOURCE_ROOT  the repository root (default: two directories above this file)
  MESHGATE_KEEP         if set, keep each test's work directory (logs, pcaps, config)
  MESHGATE_WORKERS      worker lcores meshgate runs with (default 1); scripts/test.sh runs the
                        suite with 1 and with 2

The tests assert what holds however much CPU they get (the suite runs beside builds, fuzzers and
other tests on 2 shared cores): counts, what was lost and under which reason, bounds computed
from the time a run really took. They never assert a rate or a duration (benchmarks do, perf/);
their timeouts only tell a hang from an answer and are generous.
"""

import glob
import itertools
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get('MESHGATE_SOURCE_ROOT') or os.path.dirname(os.path.dirname(HERE))
# A sanitizer build (scripts/test.sh) is ~10 times slower: the floods are sent that much slower
# (so that they measure the same thing), and memory is not compared there.
TIME_SCALE = float(os.environ.get('MESHGATE_TIME_SCALE') or 1)
MESHGATE_BIN = os.environ.get('MESHGATE_BIN') or os.path.join(SOURCE_ROOT, 'build', 'control', 'meshgate')

sys.path.insert(0, os.path.join(SOURCE_ROOT, 'scripts'))  # mesh_lab

HUGEPAGES = 1024
HUGE_MOUNT = '/dev/hugepages'

_counter = itertools.count()


def unique(prefix, maxlen=15):
    """A name unique to this process and call, short enough for an interface name."""
    name = f'{prefix}{os.getpid() % 100000}x{next(_counter)}'
    assert len(name) <= maxlen, name
    return name


def free_tcp_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# --- workers and the devices that give each one a queue -----------------------------------

WORKERS = int(os.environ.get('MESHGATE_WORKERS', '1'))


def lcores():
    """[dpdk] lcores: the control thread on the first CPU, WORKERS workers on the others (with
    the LCORE@CPU form, workers share a CPU when there are fewer CPUs than lcores)."""
    if WORKERS == 1:
        return '0-1'
    cpus = sorted(os.sched_getaffinity(0))
    spare = cpus[1:] or cpus
    return ','.join([f'0@{cpus[0]}'] + [f'{i + 1}@{spare[i % len(spare)]}' for i in range(WORKERS)])


def most_admitted(per_second, seconds, burst=None):
    """The most a gateway-wide limit of PER_SECOND lets through in SECONDS: each worker admits
    its share (rounded up) a second and BURST at once (default: a second's worth, as the
    services' max_new_connections_per_second). SECONDS is the time a run really took, measured
    around it: a slow run cannot exceed the bound a limit that works keeps."""
    share = math.ceil(per_second / WORKERS)
    return WORKERS * ((share if burst is None else burst) + share * seconds + 1)


def af_packet(index, iface):
    """An af_packet port with a queue pair per worker: the kernel's fanout spreads flows over
    them by hash, as RSS would."""
    return f'net_af_packet{index},iface={iface}' + (f',qpairs={WORKERS}' if WORKERS > 1 else '')


def pcap_device(index, rx, tx):
    """A pcap port whose queue 0 replays RX and writes TX; the other workers get an empty input
    and their own output file (read back with read_pcap_queues), so a golden test stays one
    worker's run in order."""
    device = f'net_pcap{index},rx_pcap={rx},tx_pcap={tx}'
    for q in range(1, WORKERS):
        empty = f'{rx}.q{q}'
        write_pcap(empty, [])
        device += f',rx_pcap={empty},tx_pcap={tx}.q{q}'
    return device


def read_pcap_queues(tx):
    """What a pcap_device port sent on all its queues, in the order it was sent."""
    paths = [tx] + [f'{tx}.q{q}' for q in range(1, WORKERS)]
    frames = [(p.time, q, i, p) for q, path in enumerate(paths) for i, p in enumerate(read_pcap(path))]
    return [p for _, _, _, p in sorted(frames, key=lambda f: f[:3])]


# --- environment ---------------------------------------------------------------------------

def ensure_hugepages(count=HUGEPAGES):
    """Idempotent: at least `count` 2 MB pages reserved and hugetlbfs mounted at /dev/hugepages."""
    with open('/proc/sys/vm/nr_hugepages') as f:
        have = int(f.read())
    if have < count:
        with open('/proc/sys/vm/nr_hugepages', 'w') as f:
            f.write(str(count))
    with open('/proc/mounts') as f:
        mounted = any(line.split()[1] == HUGE_MOUNT and line.split()[2] == 'hugetlbfs' for line in f)
    if not mounted:
        os.makedirs(HUGE_MOUNT, exist_ok=True)
        subprocess.run(['mount', '-t', 'hugetlbfs', 'nodev', HUGE_MOUNT], check=True)


def own_network_namespace():
    """Moves this process, and what it starts from then on, into a new network namespace with
    lo up: the interfaces meshgate makes there (kernel_interface TAPs), their addresses and
    routes stay out of the host's. The namespace goes with the last process in it. Call it
    before starting a thread (it moves the calling thread only)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), 'unshare(CLONE_NEWNET)')
    run(['ip', 'link', 'set', 'lo', 'up'])


def require_binary():
    if not os.access(MESHGATE_BIN, os.X_OK):
        raise unittest.SkipTest(f'meshgate binary not found: {MESHGATE_BIN} (set MESHGATE_BIN)')


def run(cmd, check=True, **kw):
    """subprocess.run with text output captured; raises with the output on failure."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} exited {p.returncode}:\n{p.stdout}')
    return p


# --- pcap ------------------------------------------------------------------------------------

def write_pcap(path, packets):
    """Writes Ethernet frames (scapy packets or bytes); an empty list gives just the header."""
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i, p in enumerate(packets):
            data = bytes(p)
            f.write(struct.pack('<IIII', 1_000_000 + i, 0, len(data), len(data)))
            f.write(data)


def read_pcap(path):
    """The frames of a pcap as scapy Ether packets ([] for a missing or header-only file)."""
    from scapy.all import Ether, rdpcap
    if not os.path.exists(path) or os.path.getsize(path) <= 24:
        return []
    frames = []
    for p in rdpcap(path):
        frame = Ether(bytes(p))
        frame.time = p.time
        frames.append(frame)
    return frames


# --- metrics ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """Parsed Prometheus text: samples[(name, frozenset(labels))] = value."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        for line in text.splitlines():
            if not line.strip() or line.startswith('#'):
                continue
            m = _SAMPLE.match(line.strip())
            if not m:
                raise ValueError(f'bad metrics line: {line!r}')
            labels = frozenset(_LABEL.findall(m.group(2) or ''))
            self.samples[(m.group(1), labels)] = float(m.group(3))

    def get(self, name, default=None, **labels):
        """The value of the one sample of `name` whose labels include `labels`."""
        found = [v for (n, ls), v in self.samples.items()
                 if n == name and set(labels.items()) <= set(ls)]
        if not found:
            return default
        if len(found) > 1:
            raise KeyError(f'{name}{labels} matches {len(found)} samples')
        return found[0]

    def labels_of(self, name):
        return [dict(ls) for (n, ls) in self.samples if n == name]

    def drops(self):
        """{reason: count} of meshgate_drops_total."""
        return {dict(ls)['reason']: v for (n, ls), v in self.samples.items()
                if n == 'meshgate_drops_total'}

    def nonzero_drops(self):
        return {r: v for r, v in self.drops().items() if v}


def scrape(listen, timeout=30.0):
    with urllib.request.urlopen(f'http://{listen}/metrics', timeout=timeout) as r:
        return Metrics(r.read().decode())


# --- configuration ---------------------------------------------------------------------------

def port_toml(name, device, role, address, mac, extra=''):
    return (f'[[port]]\nname = "{name}"\ndevice = "{device}"\nrole = "{role}"\n'
            f'address = "{address}"\nmac = "{mac}"\n{extra}')


def config_toml(file_prefix, ports, stats_listen, overlay_address='10.255.0.2/16', extra='',
                connections=65536, limits='', overlay=''):
    """A complete config: [dpdk], the given [[port]] blocks, [overlay] and [limits] (with the
    lines in `overlay` and `limits`), [stats], then `extra`. 256 MiB of DPDK memory holds the pools and 64k
    connections (--check says so)."""
    return '\n'.join([
        f'[dpdk]\nlcores = "{lcores()}"\nmemory_mb = 256\n'
        f'file_prefix = "{file_prefix}"\n',
        *ports,
        f'[overlay]\nvni = 4096\naddress = "{overlay_address}"\n{overlay}',
        f'[limits]\nconnections = {connections}\n{limits}',
        f'[stats]\nlisten = "{stats_listen}"\n',
        extra,
    ])


# --- the process -----------------------------------------------------------------------------

class Meshgate:
    """One meshgate process on a config. Use as a context manager: it is always killed."""

    def __init__(self, workdir, config_text, file_prefix, stats_listen, log_level='debug'):
        self.workdir = workdir
        self.file_prefix = file_prefix
        self.listen = stats_listen
        self.config_path = os.path.join(workdir, 'meshgate.toml')
        self.log_path = os.path.join(workdir, 'meshgate.log')
        with open(self.config_path, 'w') as f:
            f.write(config_text)
        self.log_level = log_level
        self.proc = None
        self.returncode = None

    def start(self):
        ensure_hugepages()
        self._log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(
            [MESHGATE_BIN, '--config', self.config_path, '--log-level', self.log_level],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def metrics(self):
        return scrape(self.listen)

    def wait_ready(self, timeout=30):
        """Waits until /metrics answers with the gateway's own metrics (the endpoint listens
        before the first configuration is published: until then it serves only the exporter's
        own); fails with the log if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f'meshgate exited {self.proc.returncode} before serving metrics:\n'
                                     + self.log())
            try:
                m = self.metrics()
                if m.get('meshgate_config_generation') is not None:
                    return m
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f'no /metrics on {self.listen} after {timeout} s:\n' + self.log())

    def wait_for(self, predicate, what, timeout=30):
        """Polls /metrics until predicate(metrics) is true; returns those metrics."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f'meshgate exited {self.proc.returncode} while waiting for {what}:\n'
                                     + self.log())
            try:
                last = self.metrics()
                if predicate(last):
                    return last
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f'timeout ({timeout} s) waiting for {what}; last metrics:\n'
                             f'{last.text if last else "(none)"}\nlog:\n{self.log()}')

    def wait_settled(self, interval=0.3, timeout=30):
        """Waits until two scrapes `interval` apart are equal: the worker is idle."""
        deadline = time.monotonic() + timeout
        prev = self.metrics()
        while time.monotonic() < deadline:
            time.sleep(interval)
            cur = self.metrics()
            if _traffic(cur) == _traffic(prev):
                return cur
            prev = cur
        raise AssertionError('metrics never settled:\n' + prev.text)

    def stop(self, timeout=60):
        """SIGTERM and wait for the exit status (SIGKILL after `timeout`)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f'meshgate did not exit {timeout} s after SIGTERM:\n' + self.log())
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def cleanup(self):
        self.kill()
        if getattr(self, '_log', None):
            self._log.close()
        # What DPDK leaves behind when a process is killed: hugepage files and its runtime dir.
        for f in glob.glob(os.path.join(HUGE_MOUNT, f'{self.file_prefix}map_*')):
            try:
                os.unlink(f)
            except OSError:
                pass
        shutil.rmtree(f'/var/run/dpdk/{self.file_prefix}', ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False


def _traffic(m):
    return {k: v for k, v in m.samples.items()
            if k[0].startswith('meshgate_port_') or k[0].startswith('meshgate_drops')
            or k[0].endswith('_sent_total') or k[0].endswith('_learned_total')}


class WorkdirTestCase(unittest.TestCase):
    """A fresh work directory per test, removed afterwards unless the test failed or MESHGATE_KEEP."""
    needs_meshgate = True  # a test of the lab alone sets False

    def setUp(self):
        if self.needs_meshgate:
            require_binary()
        self.workdir = tempfile.mkdtemp(prefix=f'mgt-{self._testMethodName}-')
        self.addCleanup(self._remove_workdir)

    def _remove_workdir(self):
        result = getattr(getattr(self, '_outcome', None), 'result', None)
        failed = result is None or any(t is self for t, _ in result.failures + result.errors)
        if failed or os.environ.get('MESHGATE_KEEP'):
            print(f'\n  (work directory kept: {self.workdir})', file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


# --- the two-port pcap topology ---------------------------------------------------------------

class Port:
    def __init__(self, name, role, address, prefixlen, mac, extra=''):
        self.name, self.role, self.address, self.prefixlen, self.mac = name, role, address, prefixlen, mac
        self.extra = extra  # more [[port]] keys, e.g. 'gateway = "..."\n'

    @property
    def cidr(self):
        return f'{self.address}/{self.prefixlen}'


EXT = Port('ext', 'external', '203.0.113.10', 24, '02:00:00:00:00:10')
UNDERLAY = Port('underlay', 'underlay', '192.168.50.1', 24, '02:00:00:00:00:20')


def check_port_macs(metrics, ports, log):
    """Every expectation on output frames rests on the configured port MACs: fail at once, with
    the cause, if meshgate runs its ports with other ones."""
    have = {ls.get('port'): ls.get('mac', '').lower() for ls in metrics.labels_of('meshgate_port_info')}
    want = {p.name: p.mac for p in ports}
    if {name: have.get(name) for name in want} != want:
        raise AssertionError(f'meshgate_port_info MACs {have} are not the configured {want}; '
                             f'log:\n{log()}')


class PcapResult:
    def __init__(self, outputs, metrics, log, returncode, seconds):
        self.out = outputs            # {port name: [Ether, ...]} what meshgate sent
        self.metrics = metrics        # the last scrape before SIGTERM
        self.log = log
        self.returncode = returncode
        self.seconds = seconds        # from meshgate's start to that scrape: it did all within


def run_pcap(workdir, inputs, timeout=60, extra_config='', limits='', ports=None, overlay='',
             until=None):
    """Runs meshgate with `ports` (EXT and UNDERLAY unless given) on net_pcap ports.

    `inputs` maps a port name to the frames it receives. Waits until each port's rx counter equals
    its input count, then until `until(metrics)` (for what happens on timers: ARP retries,
    expiry) if given, and the counters stop moving, stops meshgate with SIGTERM, and returns what
    it sent on each port."""
    prefix = unique('mgt')
    listen = f'127.0.0.1:{free_tcp_port()}'
    topology = ports or (EXT, UNDERLAY)
    blocks, paths = [], {}
    for i, port in enumerate(topology):
        rx = os.path.join(workdir, f'{port.name}_in.pcap')
        tx = os.path.join(workdir, f'{port.name}_out.pcap')
        write_pcap(rx, inputs.get(port.name, []))
        paths[port.name] = tx
        blocks.append(port_toml(port.name, pcap_device(i, rx, tx), port.role, port.cidr, port.mac,
                                port.extra))
    config = config_toml(prefix, blocks, listen, extra=extra_config, limits=limits, overlay=overlay)
    want = {name: len(inputs.get(name, [])) for name in paths}

    def all_received(m):
        return all(m.get('meshgate_port_packets_total', 0, port=name, direction='rx') == n
                   for name, n in want.items())

    started = time.monotonic()
    with Meshgate(workdir, config, prefix, listen) as mg:
        check_port_macs(mg.wait_ready(timeout), topology, mg.log)
        mg.wait_for(all_received, f'rx counters {want}', timeout)
        if until:
            mg.wait_for(until, 'the awaited counters', timeout)
        metrics = mg.wait_settled()
        seconds = time.monotonic() - started
        rc = mg.stop()
        log = mg.log()
    if rc != 0:
        raise AssertionError(f'meshgate exited {rc} after SIGTERM:\n{log}')
    return PcapResult({name: read_pcap_queues(p) for name, p in paths.items()}, metrics, log, rc,
                      seconds)


# --- dpdk-flowgen over net_memif: clients on one side, the swarm node on the other ---------

FLOWGEN = os.environ.get('MESHGATE_FLOWGEN') or os.path.join(
    os.path.dirname(os.path.dirname(MESHGATE_BIN)), 'perf', 'dpdk-flowgen')
FLOWGEN_CLIENT_MAC, FLOWGEN_NODE_MAC = '02:00:00:00:aa:01', '02:00:00:00:aa:02'
FLOWGEN_EXT_MAC, FLOWGEN_UNDERLAY_MAC = '02:00:00:00:00:10', '02:00:00:00:00:20'


def flowgen_ports(sockets, ext_prefixlen=24):
    """meshgate's two memif ports facing flowgen, and its router and node by static entries:
    clients are off-link (198.51.100.0/24, through 203.0.113.1), the node is 192.168.50.11."""
    ports = [port_toml('ext', f'net_memif0,role=client,socket={sockets[0]}', 'external',
                       f'203.0.113.10/{ext_prefixlen}', FLOWGEN_EXT_MAC, 'gateway = "203.0.113.1"\n'),
             port_toml('underlay', f'net_memif1,role=client,socket={sockets[1]}', 'underlay',
                       '192.168.50.1/24', FLOWGEN_UNDERLAY_MAC)]
    peers = (f'[[neighbor]]\naddress = "203.0.113.1"\nmac = "{FLOWGEN_CLIENT_MAC}"\n'
             f'[[node]]\nname = "n1"\naddress = "192.168.50.11"\nmac = "{FLOWGEN_NODE_MAC}"\n')
    return ports, peers


class Flowgen:
    """dpdk-flowgen on lcore 0 (the gateway's control thread sleeps there, its worker polls on
    1): UDP to 203.0.113.10:9000 from FLOWS flows of CLIENTS (first address/count) at RATE
    (0: as fast as the ring takes), COUNT datagrams, each answered by the node side if REPLY.
    It reports once it has sent them all and received nothing for LINGER seconds (a worker
    short of CPU may still hold answers that long: 2 s, 5 under sanitizers, whose worker is
    ten times slower; every flood and fault test waits that long once). Stop the gateway first:
    flowgen keeps its memif ports until it has gone."""

    def __init__(self, workdir, rate, count, flows=1000, reply=True, clients='198.51.100.1/250',
                 extra=(), linger=2 if TIME_SCALE == 1 else 5):
        self.prefix = unique('mgg')
        self.sockets = [os.path.join(workdir, 'clients.sock'), os.path.join(workdir, 'nodes.sock')]
        ensure_hugepages()
        self.out_path = os.path.join(workdir, 'flowgen.out')
        self.err_path = os.path.join(workdir, 'flowgen.err')
        self._out, self._err = open(self.out_path, 'w'), open(self.err_path, 'w', buffering=1)
        self.proc = subprocess.Popen(
            [FLOWGEN, '-l', '0', '--file-prefix', self.prefix, '-m', '256', '--no-pci',
             f'--vdev=net_memif0,role=server,socket={self.sockets[0]},mac={FLOWGEN_CLIENT_MAC}',
             f'--vdev=net_memif1,role=server,socket={self.sockets[1]},mac={FLOWGEN_NODE_MAC}',
             '--log-level=pmd.net.memif:error', '--', '--client-mac', FLOWGEN_CLIENT_MAC,
             '--gateway-mac', FLOWGEN_EXT_MAC, '--node-mac', FLOWGEN_NODE_MAC, '--published',
             '203.0.113.10:9000', '--clients', clients, '--flows', str(flows),
             '--rate', str(rate), '--count', str(count), '--linger', str(linger),
             '--queues', str(WORKERS)] + (['--reply'] if reply else []) + list(extra),
            stdout=self._out, stderr=self._err, start_new_session=True)
        self._wait_for(lambda: 'waiting for their links' in self.errors(), 30,
                       'the generator did not start its ports')

    def errors(self):
        with open(self.err_path) as f:
            return f.read()

    def _wait_for(self, done, timeout, what):
        deadline = time.monotonic() + timeout
        while not done():
            if self.proc.poll() is not None:
                raise AssertionError(f'flowgen exited {self.proc.returncode}:\n{self.errors()}')
            if time.monotonic() > deadline:
                raise AssertionError(what)
            time.sleep(0.1)

    def result(self, timeout=120):
        """What it sent and got back, once it has sent everything and the answers stopped."""
        def text():
            with open(self.out_path) as f:
                return f.read().strip()
        self._wait_for(text, timeout, 'the generator did not finish')
        import json
        return json.loads(text().splitlines()[-1])

    def stop(self):
        stop_dpdk(self.proc, self.prefix, signal.SIGTERM, 10)
        self._out.close()
        self._err.close()


def rss_kib(pid, kind='VmRSS'):
    """A process's resident memory in KiB: all of it (VmRSS), or its part KIND of
    /proc/PID/status: RssAnon (the heap, what a leak grows), RssFile (code), RssShmem (shared
    memory: the net_memif rings, touched page by page as they fill)."""
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(kind + ':'):
                return int(line.split()[1])
    return 0


def stop_dpdk(proc, prefix, sig=signal.SIGTERM, timeout=20):
    """Stops a DPDK process we started (SIG, then SIGKILL after TIMEOUT) and removes its EAL
    runtime directory."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(f'/var/run/dpdk/{prefix}', ignore_errors=True)


# --- SIGTERM: meson's timeout ------------------------------------------------------------------

class Terminated(Exception):
    """The run was told to stop (SIGTERM): the test at hand fails with this, then its cleanups and
    its class's run as after any failure, and no other test starts."""


_results = []


class _Runner(unittest.TextTestRunner):
    def _makeResult(self):
        result = super()._makeResult()
        _results.append(result)
        return result


def _running(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(') ', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def _adopt(popens):
    """After the fork below, the processes the tests started are no children of ours: their
    Popen objects learn whether they still run from /proc (their exit status went to the parent
    that is gone; it reads as -SIGKILL)."""
    internal_poll, wait = subprocess.Popen._internal_poll, subprocess.Popen._wait

    def _internal_poll(self, *args, **kwargs):
        if self.pid not in popens:
            return internal_poll(self, *args, **kwargs)
        if self.returncode is None and not _running(self.pid):
            self.returncode = -signal.SIGKILL
        return self.returncode

    def _wait(self, timeout):
        if self.pid not in popens:
            return wait(self, timeout)
        end = None if timeout is None else time.monotonic() + timeout
        while _internal_poll(self) is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.05)
        return self.returncode

    subprocess.Popen._internal_poll, subprocess.Popen._wait = _internal_poll, _wait


def _on_sigterm(signum, frame):
    """meson's timeout sends SIGTERM to the test's process group, and SIGKILL 0.5 s later: too
    soon to stop meshgate, dockerd and the rest and to delete namespaces. The cleanups run in a
    child of a session of its own, which that SIGKILL does not reach; the parent exits at once."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import gc
    popens = {p.pid for p in gc.get_objects()
              if isinstance(p, subprocess.Popen) and p.returncode is None}
    log = os.path.join(tempfile.gettempdir(), f'meshgate-test-terminated-{os.getpid()}.log')
    print(f'\nSIGTERM: the cleanups go on in the background; their output: {log}', file=sys.stderr,
          flush=True)
    if os.fork() != 0:
        os._exit(128 + signum)
    os.setsid()
    signal.signal(signal.SIGTERM, lambda *_: None)  # not SIG_IGN: what it starts must not inherit it
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    _adopt(popens)
    for result in _results:
        result.stop()
    raise Terminated('SIGTERM (a timeout?): stopped, cleaning up')


def main():
    """unittest main with a summary line; exit status 1 on any failure. A SIGTERM fails the test
    at hand and ends the run, once the cleanups have run (see _on_sigterm)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    result = unittest.main(exit=False, verbosity=2, testRunner=_Runner).result
    ran = result.testsRun
    bad = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    print(f'\nSUMMARY: {ran} run, {ran - bad - skipped} passed, {bad} failed, {skipped} skipped',
          file=sys.stderr)
    sys.exit(0 if result.wasSuccessful() and ran > skipped else 1)
