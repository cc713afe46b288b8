#!/usr/bin/python3
"""How much of the workers' time a reload of 1000 services x 10 tasks takes, seen from outside:
dpdk-flowgen (net_memif) sends UDP through meshgate to a task and back at a steady rate and
measures each round trip, once without reloads and once while the configuration is reloaded
every second, each reload changing every service (every Maglev table rebuilt). A reload that
held a worker up would show in the worst round trip; parse, compile and swap times come from
meshgate's log.

  perf/reload_latency.py BUILD_DIR [SECONDS] [RATE]
"""

import os
import re
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tests', 'integration'))
import harness  # noqa: E402


def config(prefix, listen, sockets, weight_base, services=1000, tasks=10):
    ports, peers = harness.flowgen_ports(sockets)
    extra = (peers + '[reload]\nwatch = false\n'
             '[[service]]\nname = "probe"\n  [[service.port]]\n  protocol = "udp"\n'
             '  published = 9000\n  [[service.task]]\n  address = "10.1.0.5"\n  node = "n1"\n')
    address = 0x0a020000
    for s in range(services):
        extra += (f'[[service]]\nname = "svc-{s}"\nscheduler = "maglev"\n'
                  f'  [[service.port]]\n  published = {10000 + s}\n')
        for k in range(tasks):
            a = address + s * tasks + k
            extra += (f'  [[service.task]]\n  address = "10.{a >> 16 & 255}.{a >> 8 & 255}.'
                      f'{a & 255}"\n  node = "n1"\n  weight = {1 + (k + weight_base) % 3}\n')
    text = harness.config_toml(prefix, ports, listen, extra=extra)
    return text.replace('[overlay]\nvni = 4096\naddress = "10.255.0.2/16"',
                        '[overlay]\nvni = 4096\naddress = "10.0.0.2/8"')


def run(seconds, rate, reload_every):
    work = tempfile.mkdtemp(prefix='mg-reload-latency-')
    gen = harness.Flowgen(work, rate, rate * seconds)
    prefix, listen = harness.unique('mglm'), f'127.0.0.1:{harness.free_tcp_port()}'
    sockets = gen.sockets
    texts = [config(prefix, listen, sockets, b) for b in (0, 1)]
    mg = harness.Meshgate(work, texts[0], prefix, listen, log_level='info')
    mg.start()
    try:
        mg.wait_ready(120)
        reloads = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(reload_every or 0.2)
            if reload_every and time.monotonic() - started < seconds - 1:
                reloads += 1
                with open(mg.config_path, 'w') as f:
                    f.write(texts[reloads % 2])
                os.kill(mg.proc.pid, signal.SIGHUP)
        result = gen.result()
        timings = re.findall(r'parse ([\d.]+) ms, compile ([\d.]+) ms, swap ([\d.]+) ms',
                             mg.log())
        drops = mg.metrics().nonzero_drops()
    finally:
        mg.stop()  # first: flowgen keeps its memif ports until the gateway is gone
        mg.cleanup()
        gen.stop()
    return result, [tuple(map(float, t)) for t in timings], drops


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else 'build')
    harness.MESHGATE_BIN = os.path.join(build, 'control', 'meshgate')
    harness.FLOWGEN = os.path.join(build, 'perf', 'dpdk-flowgen')
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    rate = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    for label, every in (('no reloads', 0), ('a reload every second', 1.0)):
        result, timings, drops = run(seconds, rate, every)
        print(f'{label}: sent {result["sent"]}, answered {result["replies"]}, round trip p50 '
              f'{result["rtt_us_p50"]:.0f} us, p99 {result["rtt_us_p99"]:.0f} us, worst '
              f'{result["rtt_us_max"]:.0f} us; drops {drops or "none"}')
        if timings:
            med = lambda i: sorted(t[i] for t in timings)[len(timings) // 2]
            print(f'  {len(timings)} reloads: parse {med(0):.0f} ms, compile {med(1):.0f} ms, '
                  f'swap {med(2):.2f} ms (medians)')


if __name__ == '__main__':
    main()
