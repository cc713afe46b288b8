#!/usr/bin/python3
"""Zero loss under reload. A DPDK generator of our own (perf/flowgen.cpp) on the other side of
two net_memif ports plays 1000 UDP clients sending to a published port at a steady rate, and the
swarm node whose tasks answer each datagram. Meanwhile meshgate is reloaded 100 times, through
meshgatectl, alternating two configurations that keep the service and its tasks. Every datagram
sent must reach a task and every answer must come back: the counters of both sides are equal,
and meshgate dropped nothing. But for what does not depend on meshgate: datagrams the generator
could not hand to the full ring toward it (refused: printed), and, when the generator is short
of CPU to drain the rings toward it, what meshgate counts as tx_full, one for one."""

import os
import subprocess
import time

import harness

MESHGATECTL = os.environ.get('MESHGATECTL_BIN') or os.path.join(
    os.path.dirname(harness.MESHGATE_BIN), 'meshgatectl')
RATE, COUNT, RELOADS = 10000, 100000, 100


def config(prefix, listen, sockets, variant):
    ports, peers = harness.flowgen_ports(sockets)
    extra = peers + '[reload]\nwatch = false\n'
    if variant == 0:
        extra += ('[[service]]\nname = "dns"\nscheduler = "rr"\n'
                  '  [[service.port]]\n  protocol = "udp"\n  published = 9000\n')
        weights = (1, 1, 1)
    else:  # another service in front, another scheduler, other weights: the same tasks
        extra += ('[[service]]\nname = "web"\n  [[service.port]]\n  published = 80\n'
                  '  [[service.task]]\n  address = "10.255.0.9"\n  node = "n1"\n'
                  '[[service]]\nname = "dns"\nscheduler = "wrr"\n'
                  '  [[service.port]]\n  protocol = "udp"\n  published = 9000\n')
        weights = (5, 1, 2)
    for i, w in enumerate(weights):
        extra += f'  [[service.task]]\n  address = "10.255.0.{5 + i}"\n  node = "n1"\n  weight = {w}\n'
    return harness.config_toml(prefix, ports, listen, extra=extra)


class ZeroLossTest(harness.WorkdirTestCase):

    def test_no_packet_lost_over_100_reloads(self):
        if not os.access(harness.FLOWGEN, os.X_OK):
            self.fail(f'the generator is not built: {harness.FLOWGEN}')
        gen = harness.Flowgen(self.workdir, RATE, COUNT)
        self.addCleanup(gen.stop)  # after the gateway's (cleanups run last added first)
        prefix, listen = harness.unique('mgz'), f'127.0.0.1:{harness.free_tcp_port()}'
        texts = [config(prefix, listen, gen.sockets, v) for v in (0, 1)]
        mg = harness.Meshgate(self.workdir, texts[0], prefix, listen, log_level='info')
        self.addCleanup(mg.cleanup)
        mg.start()
        mg.wait_ready()
        mg.wait_for(lambda m: m.get('meshgate_port_packets_total', 0, port='ext',
                                    direction='rx') > 0, 'traffic', timeout=30)
        took = []
        for i in range(RELOADS):
            with open(mg.config_path, 'w') as f:
                f.write(texts[(i + 1) % 2])
            t0 = time.monotonic()
            p = subprocess.run([MESHGATECTL, '--file-prefix', prefix, 'reload'],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=60)
            took.append(time.monotonic() - t0)
            self.assertEqual(p.returncode, 0, p.stdout)
        print(f'\n  {RELOADS} reloads, {sum(took) / len(took) * 1000:.1f} ms each on average',
              flush=True)
        result = gen.result()
        print(f'  flowgen: {result}', flush=True)
        m = mg.wait_settled()
        self.assertEqual(m.get('meshgate_config_reloads_total', 0, result='ok'), RELOADS)
        # A datagram or reply the generator could not hand to a full ring was never sent (the 2
        # cores are shared: a worker can be preempted long enough to fill the 1024-slot ring;
        # how often is the machine's, printed).
        print(f'  the full rings refused {result["refused"]} datagrams and '
              f'{result["reply_refused"]} replies of {COUNT}', flush=True)
        self.assertEqual(result['sent'] + result['refused'], COUNT, result)
        self.assertGreater(result['sent'], 0, result)
        self.assertLessEqual(result['at_tasks'], result['sent'], result)
        self.assertLessEqual(result['replies'] + result['reply_refused'], result['at_tasks'], result)
        # Nothing lost but what meshgate's full TX rings refused, one for one (none: the
        # counters of both sides are equal).
        drops = m.nonzero_drops()
        self.assertLessEqual(set(drops), {'tx_full'}, m.text)
        self.assertEqual(result['sent'] - result['replies'] - result['reply_refused'],
                         drops.get('tx_full', 0), (result, drops))
        self.assertEqual(mg.stop(), 0, mg.log())
        self.assertEqual(gen.proc.wait(30), 0, gen.errors())  # its links went down with us


if __name__ == '__main__':
    harness.main()
