#!/usr/bin/python3
"""Throughput ratio by DESIGN.md's method: meshgate and an io-forward loop (perf/io_forward, what
testpmd --forward-mode=io does) on the same vdevs in one run, one worker lcore, 64-byte frames.

Both directions of FLOWS established connections replay forever from memory
(net_pcap infinite_rx=1): client -> published port on the external port, the tasks' VXLAN replies
on the underlay port; output goes to /dev/null through the same PMD.
    perf/throughput.py BUILD_DIR [FLOWS] [SECONDS]"""

import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'integration'))
import harness  # noqa: E402
from scapy.all import IP, TCP, UDP, VXLAN, Ether  # noqa: E402

EXT_MAC, UND_MAC, NODE_MAC = '02:00:00:00:00:10', '02:00:00:00:00:20', '02:00:00:00:01:11'
TASKS = ['10.255.0.5', '10.255.0.6', '10.255.0.7']


def client(i):
    return f'198.18.{(i >> 8) & 0xff}.{i & 0xff}', 1024 + (i >> 16)


def make_pcaps(workdir, flows):
    fwd, rev = [], []
    for i in range(flows):
        ip, port = client(i)
        base = Ether(src='02:00:00:00:00:aa', dst=EXT_MAC) / IP(src=ip, dst='203.0.113.10')
        fwd.append(base / TCP(sport=port, dport=8000, flags='S'))
    for i in range(flows):
        ip, port = client(i)
        base = Ether(src='02:00:00:00:00:aa', dst=EXT_MAC) / IP(src=ip, dst='203.0.113.10')
        fwd.append(base / TCP(sport=port, dport=8000, flags='A'))
        # rr over 3 tasks in SYN order; one worker keeps the client's port as SNAT port
        inner = (Ether(src='02:42:0a:ff:00:05', dst='02:42:0a:ff:00:02') /
                 IP(src=TASKS[i % 3], dst='10.255.0.2') / TCP(sport=80, dport=port, flags='A'))
        rev.append(Ether(src=NODE_MAC, dst=UND_MAC) / IP(src='192.168.50.11', dst='192.168.50.1') /
                   UDP(sport=50000, dport=4789) / VXLAN(flags=0x08, vni=4096) / inner)
    paths = os.path.join(workdir, 'fwd.pcap'), os.path.join(workdir, 'rev.pcap')
    harness.write_pcap(paths[0], fwd)
    harness.write_pcap(paths[1], rev)
    return paths


def devices(fwd, rev):
    return [f'net_pcap0,rx_pcap={fwd},infinite_rx=1,tx_pcap=/dev/null',
            f'net_pcap1,rx_pcap={rev},infinite_rx=1,tx_pcap=/dev/null']


def run_meshgate(build, workdir, fwd, rev, seconds):
    prefix, listen = harness.unique('mgperf'), f'127.0.0.1:{harness.free_tcp_port()}'
    ext, und = devices(fwd, rev)
    config = harness.config_toml(prefix, [
        harness.port_toml('ext', ext, 'external', '203.0.113.10/24', EXT_MAC),
        harness.port_toml('underlay', und, 'underlay', '192.168.50.1/24', UND_MAC)], listen, extra=f'''
[[neighbor]]
address = "203.0.113.1"
mac = "02:00:00:00:00:01"
[[node]]
name = "node-1"
address = "192.168.50.11"
mac = "{NODE_MAC}"
[[service]]
name = "bench"
scheduler = "rr"
  [[service.port]]
  published = 8000
  target = 80
''' + ''.join(f'  [[service.task]]\n  address = "{t}"\n  node = "node-1"\n' for t in TASKS))
    # clients are off-link (198.18.0.0/15): replies go to the external router
    config = config.replace('address = "203.0.113.10/24"', 'address = "203.0.113.10/24"\ngateway = "203.0.113.1"')
    harness.MESHGATE_BIN = os.path.join(build, 'control', 'meshgate')
    with harness.Meshgate(workdir, config, prefix, listen, log_level='warn') as mg:
        mg.wait_ready()
        time.sleep(3)   # warm-up: connections created, caches hot

        def tx(m):
            return sum(m.get('meshgate_port_packets_total', 0, port=p, direction='tx') for p in ('ext', 'underlay'))
        m0, t0 = mg.metrics(), time.monotonic()
        time.sleep(seconds)
        m1, t1 = mg.metrics(), time.monotonic()
        drops = m1.nonzero_drops()
        mg.stop()
    return (tx(m1) - tx(m0)) / (t1 - t0) / 1e6, drops


def run_io_forward(build, fwd, rev, seconds):
    ext, und = devices(fwd, rev)
    out = subprocess.run([os.path.join(build, 'perf', 'io_forward'), str(seconds), '-l', '1', '--no-pci',
                          '-m', '256', f'--file-prefix={harness.unique("mgio")}', '--log-level=warning',
                          '--vdev', ext, '--vdev', und], capture_output=True, text=True, check=True)
    return float(out.stdout.split(':')[-1].split()[0])


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else 'build'
    flows = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    harness.ensure_hugepages()
    with tempfile.TemporaryDirectory() as workdir:
        fwd, rev = make_pcaps(workdir, flows)
        io = run_io_forward(build, fwd, rev, seconds)
        mesh, drops = run_meshgate(build, workdir, fwd, rev, seconds)
    print(f'flows {flows}: io_forward {io:.3f} Mpps, meshgate {mesh:.3f} Mpps, ratio {mesh / io:.3f}; '
          f'meshgate drops {drops}')


if __name__ == '__main__':
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
