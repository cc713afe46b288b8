#!/usr/bin/python3
"""The exception path's own rate (issue 15): how many small UDP datagrams a worker hands to the
host's kernel through a port's kernel interface, counted where they arrive, in a socket.

meshgate (one worker) in a network namespace of this script's own, two ports:

  ext   net_pcap  external  203.0.113.10/24  kernel_interface (a TAP with the port's MAC and
                                             address); replays, from memory forever
                                             (infinite_rx=1), 64-byte UDP datagrams from
                                             203.0.113.50 to 203.0.113.10:9999, a port nothing
                                             publishes: each is the host's (to_kernel())
  und   net_null  underlay  192.168.50.1/24

A reader process in the namespace holds a UDP socket bound to 203.0.113.10:9999 (a receive
buffer of 32 MiB, SO_RCVBUFFORCE) and reads it as fast as it can. Over the window (after a
warm-up) the script takes the namespace's /proc/net/snmp: Udp InDatagrams (datagrams an
application read: the figure), RcvbufErrors (datagrams the kernel had but the socket's buffer
refused: the reader was slower), NoPorts; and meshgate's metrics: the port's RX,
meshgate_exception_packets_total{direction="to_kernel"} (what the TAP's queue took),
meshgate_exception_drops_total by reason (rate: over kernel_packets_per_second; full: the TAP's
queue, i.e. the kernel, did not keep up). One run per --limits value (default: 0 = unlimited,
then 20000, the default limit, to show that it holds).

  perf/kernel_rate.py [--build DIR] [--seconds S] [--limits 0,20000]
prints   kernel_packets_per_second=0 port_rx_pps=... to_kernel_pps=... socket_pps=...
         rcvbuf_errors_pps=... drops_rate_pps=... drops_full_pps=...
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'integration'))
import harness  # noqa: E402
from scapy.all import IP, UDP, Ether, Raw  # noqa: E402

PORT_MAC, UND_MAC, CLIENT_MAC = '02:00:00:00:00:10', '02:00:00:00:00:20', '02:00:00:00:00:aa'
ADDRESS, CLIENT, UDP_PORT = '203.0.113.10', '203.0.113.50', 9999
FRAMES = 1024  # in the pcap: infinite_rx keeps each in an mbuf of the pool

# The reader: a blocking recv_into loop (what it reads, /proc/net/snmp counts).
READER = f'''
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE: past net.core.rmem_max
s.bind(("{ADDRESS}", {UDP_PORT}))
print("bound", flush=True)
buf = bytearray(2048)
while True:
    s.recv_into(buf)
'''


def make_pcap(path):
    """64-byte frames (FCS included) to the port's MAC (the TAP's), UDP checksum valid, from
    FRAMES source ports of one on-link client."""
    frames = []
    for i in range(FRAMES):
        p = (Ether(src=CLIENT_MAC, dst=PORT_MAC) / IP(src=CLIENT, dst=ADDRESS) /
             UDP(sport=20000 + i, dport=UDP_PORT))
        frames.append(p / Raw(b'\0' * (60 - len(p))))
    harness.write_pcap(path, frames)


def udp_snmp():
    """The namespace's Udp counters from /proc/net/snmp."""
    with open('/proc/net/snmp') as f:
        rows = [line.split() for line in f if line.startswith('Udp:')]
    return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:])}


def run(build, workdir, pcap, limit, seconds):
    prefix, listen = harness.unique('mgkr'), f'127.0.0.1:{harness.free_tcp_port()}'
    kernel = harness.unique('mgk')
    ports = [harness.port_toml('ext', f'net_pcap0,rx_pcap={pcap},infinite_rx=1', 'external',
                               f'{ADDRESS}/24', PORT_MAC, f'kernel_interface = "{kernel}"\n'),
             harness.port_toml('und', 'net_null0,no-rx=1', 'underlay', '192.168.50.1/24', UND_MAC)]
    config = harness.config_toml(prefix, ports, listen, limits=f'kernel_packets_per_second = {limit}\n',
                                 extra='[reload]\nwatch = false\n')
    harness.MESHGATE_BIN = os.path.join(build, 'control', 'meshgate')
    with harness.Meshgate(workdir, config, prefix, listen, log_level='warn') as mg:
        mg.wait_ready(120)
        reader = subprocess.Popen([sys.executable, '-c', READER], stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        try:
            if reader.stdout.readline().strip() != 'bound':
                raise RuntimeError('the reader could not bind its socket')
            time.sleep(3)  # warm-up

            def counters(m, s):
                get = lambda name, **labels: m.get(name, 0, port='ext', **labels)
                return {'port_rx': get('meshgate_port_packets_total', direction='rx'),
                        'to_kernel': get('meshgate_exception_packets_total', direction='to_kernel'),
                        'drops_rate': get('meshgate_exception_drops_total', reason='rate'),
                        'drops_full': get('meshgate_exception_drops_total', reason='full'),
                        'socket': s['InDatagrams'], 'rcvbuf_errors': s['RcvbufErrors'],
                        'no_ports': s['NoPorts']}
            c0, t0 = counters(mg.metrics(), udp_snmp()), time.monotonic()
            time.sleep(seconds)
            c1, t1 = counters(mg.metrics(), udp_snmp()), time.monotonic()
        finally:
            os.kill(reader.pid, signal.SIGKILL)
            reader.wait()
        mg.stop()
    return {k: (c1[k] - c0[k]) / (t1 - t0) for k in c0}


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    a.add_argument('--build', default='build')
    a.add_argument('--seconds', type=float, default=10)
    a.add_argument('--limits', default='0,20000', help='kernel_packets_per_second of each run')
    o = a.parse_args()
    harness.own_network_namespace()
    harness.ensure_hugepages()
    with tempfile.TemporaryDirectory() as workdir:
        pcap = os.path.join(workdir, 'udp.pcap')
        make_pcap(pcap)
        for limit in (int(x) for x in o.limits.split(',')):
            r = run(o.build, workdir, pcap, limit, o.seconds)
            print(f'kernel_packets_per_second={limit} ' +
                  ' '.join(f'{k}_pps={v:.0f}' for k, v in r.items()), flush=True)


if __name__ == '__main__':
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
