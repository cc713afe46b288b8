#!/usr/bin/python3
"""Throughput at many flows and the new-connection rate, with our generator over net_memif
(perf/flowgen.cpp), for what a replayed pcap cannot do: net_pcap's infinite_rx holds every
frame of its file in an mbuf, so a pcap of 1M flows does not fit the hugepages.

  dpdk-flowgen (lcore 0) --memif--> meshgate (worker on lcore 1) --memif--> dpdk-flowgen

Each run: flowgen sends COUNT datagrams as fast as the ring takes, from FLOWS UDP flows (a
client address and port each) to a published port; the first FLOWS make the connections (not
measured), the rest are established traffic. The ceiling is the same generator through
`dpdk-testpmd --forward-mode=io` over the same memif pair in the same run.

  --mode in      client -> task: the rate at the node side (VXLAN from meshgate; testpmd: the
                 frames as sent)
  --mode mixed   flowgen's node answers every datagram: meshgate does both directions; the rate
                 of answers back at the clients (testpmd: frames the node side bounced back)
  --mode new     every datagram a new flow (no ceiling run: it is the rate of new connections)

  perf/memif_throughput.py [--build DIR] [--flows N] [--passes P] [--mode in|mixed|new]
prints  mode=in flows=1048576 meshgate_mpps=... testpmd_io_mpps=... ratio=... generator_mpps=...
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'integration'))
import harness  # noqa: E402

TASKS = ['10.255.0.5', '10.255.0.6', '10.255.0.7']
SNAT = [f'10.255.1.{i}' for i in range(1, 17)]  # 17 addresses x 3 tasks x 64k ports: 3.3M


def clients_for(flows):
    """Client addresses for FLOWS flows of 64512 ports each, from 198.18.0.1."""
    return f'198.18.0.1/{max(1, -(-flows // 64512))}'


def meshgate_config(prefix, listen, sockets, connections):
    ports, peers = harness.flowgen_ports(sockets)
    extra = (peers + '[reload]\nwatch = false\n'
             '[[service]]\nname = "bench"\nscheduler = "rr"\n'
             '  [[service.port]]\n  protocol = "udp"\n  published = 9000\n' +
             ''.join(f'  [[service.task]]\n  address = "{t}"\n  node = "n1"\n' for t in TASKS))
    text = harness.config_toml(prefix, ports, listen, extra=extra, connections=connections)
    snat = ', '.join(f'"{a}"' for a in SNAT)
    text = text.replace('[overlay]\nvni = 4096\n', f'[overlay]\nvni = 4096\nsnat_addresses = [{snat}]\n')
    return text.replace('memory_mb = 256\n', 'memory_mb = 1536\n')


def flowgen(workdir, o, reply, extra):
    count = o.flows * (o.passes + 1)
    return harness.Flowgen(workdir, 0, count, flows=o.flows, reply=reply,
                           clients=clients_for(o.flows if o.mode != 'new' else count),
                           extra=['--measure-after', str(o.flows // 8 if o.mode == 'new' else o.flows)] + extra)


def run_meshgate(build, workdir, o):
    harness.MESHGATE_BIN = os.path.join(build, 'control', 'meshgate')
    extra = ['--new'] if o.mode == 'new' else []
    gen = flowgen(workdir, o, o.mode == 'mixed', extra)
    prefix, listen = harness.unique('mgmt'), f'127.0.0.1:{harness.free_tcp_port()}'
    connections = max(65536, 2 * o.flows * (o.passes + 1 if o.mode == 'new' else 1))
    config = meshgate_config(prefix, listen, gen.sockets, connections)
    try:
        with harness.Meshgate(workdir, config, prefix, listen, log_level='warn') as mg:
            mg.wait_ready(120)
            result = gen.result(timeout=600)
            m = mg.metrics()
            mg.stop()
    finally:
        gen.stop()
    return result, m.nonzero_drops()


def run_testpmd(workdir, o):
    gen = flowgen(workdir, o, o.mode == 'mixed', [])
    prefix = harness.unique('mgtp')
    args = ['dpdk-testpmd', '-l', '0-1', f'--file-prefix={prefix}', '--no-pci', '-m', '512',
            f'--vdev=net_memif0,role=client,socket={gen.sockets[0]}',
            f'--vdev=net_memif1,role=client,socket={gen.sockets[1]}',
            '--', '--forward-mode=io', '--nb-cores=1', '--auto-start', '--no-lsc-interrupt']
    log = open(os.path.join(workdir, 'testpmd.log'), 'w')
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        result = gen.result(timeout=600)
    finally:
        harness.stop_dpdk(p, prefix, signal.SIGINT)
        log.close()
        gen.stop()
    return result


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    a.add_argument('--build', default='build')
    a.add_argument('--flows', type=int, default=1 << 20)
    a.add_argument('--passes', type=int, default=10, help='established passes over the flows')
    a.add_argument('--mode', choices=['in', 'mixed', 'new'], default='in')
    o = a.parse_args()
    harness.FLOWGEN = os.path.join(o.build, 'perf', 'dpdk-flowgen')
    harness.ensure_hugepages()
    rate = 'back_mpps' if o.mode == 'mixed' else 'at_tasks_mpps'
    with tempfile.TemporaryDirectory() as workdir:
        mesh, drops = run_meshgate(o.build, workdir, o)
        if o.mode == 'new':
            print(f'mode=new connections_per_s={mesh[rate] * 1e6:.0f} '
                  f'generator_mpps={mesh["sent_mpps"]:.3f} drops={drops or "none"} '
                  f'flowgen={json.dumps(mesh)}')
            return
        io = run_testpmd(workdir, o)
    print(f'mode={o.mode} flows={o.flows} meshgate_mpps={mesh[rate]:.3f} '
          f'testpmd_io_mpps={io[rate]:.3f} ratio={mesh[rate] / io[rate] if io[rate] else 0:.3f} '
          f'generator_mpps={mesh["sent_mpps"]:.3f}/{io["sent_mpps"]:.3f} drops={drops or "none"}')


if __name__ == '__main__':
    main()
