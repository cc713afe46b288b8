#!/usr/bin/python3
"""Throughput by the method docs/performance.md gives: meshgate, then the real `dpdk-testpmd --forward-mode=io`
(Debian's dpdk-dev), on the same virtual devices in one run, one worker lcore by default.

Four ports, so that every input replays a pcap from memory forever (net_pcap infinite_rx=1)
and every output is a sink (net_null no-rx=1), as the method asks:

  0 ext-in   net_pcap   external  203.0.113.10/24   clients -> 203.0.113.10:8000 (TCP ACKs)
  1 ext-out  net_null   external  198.51.100.1/24   replies to the clients (off-link, via .254)
  2 und-in   net_pcap   underlay  192.168.60.1/24   the tasks' VXLAN replies from node 192.168.50.11
  3 und-out  net_null   underlay  192.168.50.1/24   VXLAN to the node

testpmd io forwards 0 -> 1 and 2 -> 3: the same frames through the same PMDs, untouched.
Directions: `in` (client -> task: decided, NATed, encapsulated), `out` (task -> client:
decapsulated, reverse NAT), `mixed` (both at once). The connections exist before the window:
ext-in starts with one SYN per flow (and for `out` plays its file once only).

With --kernel-interface yes, ext-in has a kernel interface (a TAP: issue 15's exception path,
read from the worker's housekeeping); with `both`, meshgate runs without and with one
alternately, each run beside its own testpmd run, --rounds times, then the medians. Any kernel
interface puts the whole script (both variants) in a network namespace of its own.

  perf/throughput.py [--build DIR] [--flows N] [--size BYTES] [--direction in|out|mixed]
                     [--workers N] [--seconds S] [--kernel-interface no|yes|both] [--rounds N]
prints   direction=in flows=4096 ... meshgate_mpps=... testpmd_io_mpps=... ratio=... cycles_own=...
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'integration'))
import harness  # noqa: E402
from scapy.all import IP, TCP, UDP, VXLAN, Ether, Raw  # noqa: E402

EXT_MAC, EXT_OUT_MAC, UND_MAC, UND_OUT_MAC = ('02:00:00:00:00:10', '02:00:00:00:00:11',
                                              '02:00:00:00:00:20', '02:00:00:00:00:21')
NODE_MAC, ROUTER_MAC, CLIENT_MAC = '02:00:00:00:01:11', '02:00:00:00:00:01', '02:00:00:00:00:aa'
TASKS = ['10.255.0.5', '10.255.0.6', '10.255.0.7']
ACKS_PER_FLOW = 8


def client(i):
    """Flow i: its own address and a port no other flow of its task has (rr over 3 tasks and
    64000 ports: unique up to 192000 flows), so it keeps its port as SNAT port."""
    return f'198.18.{(i >> 8) & 0xff}.{i & 0xff}', 1024 + i % 64000


def pad(p, size):
    missing = size - 4 - len(p)  # size counts the FCS
    return p / Raw(b'\0' * missing) if missing > 0 else p


def make_pcaps(workdir, flows, size, direction):
    syn, ext, und = [], [], []
    for i in range(flows):
        ip, port = client(i)
        base = Ether(src=CLIENT_MAC, dst=EXT_MAC) / IP(src=ip, dst='203.0.113.10')
        syn.append(base / TCP(sport=port, dport=8000, flags='S'))
    for _ in range(ACKS_PER_FLOW):
        for i in range(flows):
            ip, port = client(i)
            base = Ether(src=CLIENT_MAC, dst=EXT_MAC) / IP(src=ip, dst='203.0.113.10')
            ext.append(pad(base / TCP(sport=port, dport=8000, flags='A'), size))
            # rr over the tasks in SYN order; one worker keeps the client's port as SNAT port
            inner = (Ether(src='02:42:0a:ff:00:05', dst='02:42:0a:ff:00:02') /
                     IP(src=TASKS[i % len(TASKS)], dst='10.255.0.2') /
                     TCP(sport=80, dport=port, flags='A'))
            und.append(pad(Ether(src=NODE_MAC, dst=UND_MAC) /
                           IP(src='192.168.50.11', dst='192.168.60.1') /
                           UDP(sport=50000 + i % 1000, dport=4789) / VXLAN(flags=0x08, vni=4096) /
                           inner, size + 50))
    paths = {name: os.path.join(workdir, f'{name}.pcap') for name in ('syn', 'ext', 'und', 'both')}
    harness.write_pcap(paths['syn'], syn)
    harness.write_pcap(paths['ext'], syn + ext)  # SYNs first, then every flow's ACKs
    harness.write_pcap(paths['und'], und)
    # the inputs per direction: (ext-in file, infinite?), (und-in file or None)
    if direction == 'in':
        return (paths['ext'], True), None
    if direction == 'out':
        return (paths['syn'], False), paths['und']
    return (paths['ext'], True), paths['und']


def devices(inputs):
    (ext_file, ext_loop), und_file = inputs
    ext = f'net_pcap0,rx_pcap={ext_file}' + (',infinite_rx=1' if ext_loop else '')
    und = f'net_pcap1,rx_pcap={und_file},infinite_rx=1' if und_file else 'net_null2,no-rx=1'
    return [ext, 'net_null0,no-rx=1', und, 'net_null1,no-rx=1']


def frames_in(inputs):
    (ext_file, _), und_file = inputs
    count = lambda p: len(harness.read_pcap(p)) if p else 0
    return count(ext_file) + count(und_file)


def run_meshgate(build, workdir, inputs, seconds, workers, mbufs, kernel_interface=None):
    prefix, listen = harness.unique('mgperf'), f'127.0.0.1:{harness.free_tcp_port()}'
    ext, ext_out, und, und_out = devices(inputs)
    kernel = f'kernel_interface = "{kernel_interface}"\n' if kernel_interface else ''
    ports = [harness.port_toml('ext', ext, 'external', '203.0.113.10/24', EXT_MAC, kernel),
             harness.port_toml('ext-out', ext_out, 'external', '198.51.100.1/24', EXT_OUT_MAC,
                               'gateway = "198.51.100.254"\n'),
             harness.port_toml('und', und, 'underlay', '192.168.60.1/24', UND_MAC),
             harness.port_toml('und-out', und_out, 'underlay', '192.168.50.1/24', UND_OUT_MAC)]
    extra = (f'[[neighbor]]\naddress = "198.51.100.254"\nmac = "{ROUTER_MAC}"\n'
             f'[[node]]\nname = "node-1"\naddress = "192.168.50.11"\nmac = "{NODE_MAC}"\n'
             '[[service]]\nname = "bench"\nscheduler = "rr"\n'
             '  [[service.port]]\n  published = 8000\n  target = 80\n' +
             ''.join(f'  [[service.task]]\n  address = "{t}"\n  node = "node-1"\n' for t in TASKS) +
             '[reload]\nwatch = false\n')
    config = harness.config_toml(prefix, ports, listen, extra=extra,
                                 connections=max(65536, 2 * len(TASKS) * 65536))
    lcores = ','.join(str(i) for i in range(workers + 1))
    config = config.replace('lcores = "0-1"\nmemory_mb = 256\n',
                            f'lcores = "{lcores}"\nmemory_mb = 1536\nmbufs = {mbufs}\n')
    harness.MESHGATE_BIN = os.path.join(build, 'control', 'meshgate')
    out = ('ext-out', 'und-out')
    with harness.Meshgate(workdir, config, prefix, listen, log_level='warn') as mg:
        mg.wait_ready(120)
        time.sleep(3)  # warm-up: connections made, caches hot

        def tx(m):
            return sum(m.get('meshgate_port_packets_total', 0, port=p, direction='tx') for p in out)
        m0, t0 = mg.metrics(), time.monotonic()
        time.sleep(seconds)
        m1, t1 = mg.metrics(), time.monotonic()
        drops = {r: v - m0.drops().get(r, 0) for r, v in m1.nonzero_drops().items()
                 if v - m0.drops().get(r, 0)}
        mg.stop()
    return (tx(m1) - tx(m0)) / (t1 - t0) / 1e6, drops


def run_testpmd(workdir, inputs, seconds, mbufs):
    """testpmd io on the same devices; the Tx-pps of ports 1 and 3, averaged over the window."""
    prefix = harness.unique('mgtp')
    args = ['dpdk-testpmd', '-l', '0-1', f'--file-prefix={prefix}', '--no-pci', '-m', '1536']
    for d in devices(inputs):
        args += ['--vdev', d]
    args += ['--', '--forward-mode=io', '--nb-cores=1', f'--total-num-mbufs={mbufs}',
             '--stats-period=1', '--auto-start', '--no-lsc-interrupt']
    log = open(os.path.join(workdir, 'testpmd.log'), 'w')
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    time.sleep(3 + seconds)
    harness.stop_dpdk(p, prefix, signal.SIGINT)
    log.close()
    text = open(log.name, errors='replace').read()
    # Each period prints the four ports in order; sum ports 1 and 3, skip the warm-up periods.
    tx = [int(v) for v in re.findall(r'Tx-pps:\s+(\d+)', text)]
    periods = [tx[i + 1] + tx[i + 3] for i in range(0, len(tx) - 3, 4)]
    window = periods[3:] or periods
    return sum(window) / len(window) / 1e6 if window else 0.0


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    a.add_argument('--build', default='build')
    a.add_argument('--flows', type=int, default=4096)
    a.add_argument('--size', type=int, default=64, help='frame size of the client side, FCS included')
    a.add_argument('--direction', choices=['in', 'out', 'mixed'], default='in')
    a.add_argument('--workers', type=int, default=1)
    a.add_argument('--seconds', type=float, default=10)
    a.add_argument('--kernel-interface', choices=['no', 'yes', 'both'], default='no',
                   help='a kernel interface on ext-in; both: without and with, alternately')
    a.add_argument('--rounds', type=int, default=1, help='runs of each variant')
    o = a.parse_args()
    variants = {'no': [False], 'yes': [True], 'both': [False, True]}[o.kernel_interface]
    if any(variants):
        harness.own_network_namespace()
    harness.ensure_hugepages()
    hz = tsc_hz()
    runs = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as workdir:
        inputs = make_pcaps(workdir, o.flows, o.size, o.direction)
        # net_pcap's infinite_rx keeps every frame of its file in an mbuf of the pool
        need = frames_in(inputs) + 65536
        mbufs = 1 << need.bit_length()
        for _ in range(o.rounds):
            for kernel in variants:
                mesh, drops = run_meshgate(o.build, workdir, inputs, o.seconds, o.workers,
                                           mbufs - 1, harness.unique('mgk') if kernel else None)
                io = run_testpmd(workdir, inputs, o.seconds, mbufs - 1)
                own = hz / (mesh * 1e6) - hz / (io * 1e6) if mesh and io else float('nan')
                runs[kernel].append((mesh, io, own))
                print(f'direction={o.direction} flows={o.flows} size={o.size} workers={o.workers} '
                      f'kernel_interface={"yes" if kernel else "no"} '
                      f'meshgate_mpps={mesh:.3f} testpmd_io_mpps={io:.3f} '
                      f'ratio={mesh / io if io else 0:.3f} cycles_own={own:.0f} '
                      f'drops={drops or "none"}', flush=True)
    if o.rounds > 1:
        for kernel, r in runs.items():
            mesh, io, own = (statistics.median(x) for x in zip(*r))
            print(f'median of {o.rounds}: kernel_interface={"yes" if kernel else "no"} '
                  f'meshgate_mpps={mesh:.3f} testpmd_io_mpps={io:.3f} ratio={mesh / io:.3f} '
                  f'cycles_own={own:.0f}')


def tsc_hz():
    """The TSC rate, for cycles: as DPDK's EAL reads it, from the kernel's log or cpuinfo."""
    try:
        text = subprocess.run(['dmesg'], stdout=subprocess.PIPE, text=True).stdout
        m = re.search(r'tsc: Refined TSC clocksource calibration: ([\d.]+) MHz', text) or \
            re.search(r'tsc: Detected ([\d.]+) MHz', text)
        if m:
            return float(m.group(1)) * 1e6
    except OSError:
        pass
    with open('/proc/cpuinfo') as f:
        return float(re.search(r'cpu MHz\s*:\s*([\d.]+)', f.read()).group(1)) * 1e6


if __name__ == '__main__':
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
