#!/usr/bin/python3
"""Zero loss under reload. A DPDK generator of our own (perf/flowgen.cpp) on the other side of
two net_memif ports plays 1000 UDP clients sending to a published port at a steady rate, and the
swarm node whose tasks answer each datagram. Meanwhile meshgate is reloaded 100 times, through
meshgatectl, alternating two configurations that keep the service and its tasks. Every datagram
sent must reach a task and every answer must come back: the counters of both sides are equal,
and meshgate dropped nothing."""

import json
import os
import subprocess
import time

import harness

FLOWGEN = os.environ.get('MESHGATE_FLOWGEN') or os.path.join(
    os.path.dirname(os.path.dirname(harness.MESHGATE_BIN)), 'perf', 'dpdk-flowgen')
MESHGATECTL = os.environ.get('MESHGATECTL_BIN') or os.path.join(
    os.path.dirname(harness.MESHGATE_BIN), 'meshgatectl')

CLIENT_MAC, NODE_MAC = '02:00:00:00:aa:01', '02:00:00:00:aa:02'
EXT_MAC, UNDERLAY_MAC = '02:00:00:00:00:10', '02:00:00:00:00:20'
RATE, COUNT, RELOADS = 10000, 100000, 100


def config(prefix, listen, sockets, variant):
    ports = [harness.port_toml('ext', f'net_memif0,role=client,socket={sockets[0]}', 'external',
                               '203.0.113.10/24', EXT_MAC, 'gateway = "203.0.113.1"\n'),
             harness.port_toml('underlay', f'net_memif1,role=client,socket={sockets[1]}',
                               'underlay', '192.168.50.1/24', UNDERLAY_MAC)]
    extra = (f'[[neighbor]]\naddress = "203.0.113.1"\nmac = "{CLIENT_MAC}"\n'
             f'[[node]]\nname = "n1"\naddress = "192.168.50.11"\nmac = "{NODE_MAC}"\n'
             '[reload]\nwatch = false\n')
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


def read(path):
    with open(path) as f:
        return f.read()


class ZeroLossTest(harness.WorkdirTestCase):

    def test_no_packet_lost_over_100_reloads(self):
        if not os.access(FLOWGEN, os.X_OK):
            self.fail(f'the generator is not built: {FLOWGEN}')
        gen_prefix, prefix = harness.unique('mgg'), harness.unique('mgz')
        listen = f'127.0.0.1:{harness.free_tcp_port()}'
        sockets = [os.path.join(self.workdir, 'clients.sock'), os.path.join(self.workdir, 'nodes.sock')]
        harness.ensure_hugepages()
        gen_out = open(os.path.join(self.workdir, 'flowgen.out'), 'w')
        gen_err = open(os.path.join(self.workdir, 'flowgen.err'), 'w', buffering=1)
        self.addCleanup(gen_out.close)
        self.addCleanup(gen_err.close)
        # lcore 0: the gateway's control thread sleeps there, its worker polls on 1
        gen = subprocess.Popen(
            [FLOWGEN, '-l', '0', '--file-prefix', gen_prefix, '-m', '128', '--no-pci',
             f'--vdev=net_memif0,role=server,socket={sockets[0]},mac={CLIENT_MAC}',
             f'--vdev=net_memif1,role=server,socket={sockets[1]},mac={NODE_MAC}',
             '--log-level=pmd.net.memif:error', '--',
             '--client-mac', CLIENT_MAC, '--gateway-mac', EXT_MAC, '--node-mac', NODE_MAC,
             '--published', '203.0.113.10:9000', '--clients', '198.51.100.1/250', '--flows',
             '1000', '--rate', str(RATE), '--count', str(COUNT), '--reply', '--linger', '2'],
            stdout=gen_out, stderr=gen_err, start_new_session=True)

        def stop_gen():  # after the gateway (cleanups run last added first)
            if gen.poll() is None:
                gen.terminate()
                try:
                    gen.wait(10)
                except subprocess.TimeoutExpired:
                    gen.kill()
                    gen.wait()
            subprocess.run(['rm', '-rf', f'/var/run/dpdk/{gen_prefix}'])
        self.addCleanup(stop_gen)
        deadline = time.monotonic() + 30
        while 'waiting for their links' not in read(gen_err.name):  # memif servers listen
            self.assertIsNone(gen.poll(), read(gen_err.name))
            self.assertLess(time.monotonic(), deadline, 'the generator did not start its ports')
            time.sleep(0.1)

        texts = [config(prefix, listen, sockets, v) for v in (0, 1)]
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
        deadline = time.monotonic() + 120
        while not read(gen_out.name).strip():  # it reports, then waits for the gateway to go
            self.assertIsNone(gen.poll(), read(gen_err.name))
            self.assertLess(time.monotonic(), deadline, 'the generator did not finish')
            time.sleep(0.2)
        result = json.loads(read(gen_out.name).strip().splitlines()[-1])
        print(f'  flowgen: {result}', flush=True)
        m = mg.wait_settled()
        self.assertEqual(m.get('meshgate_config_reloads_total', 0, result='ok'), RELOADS)
        self.assertEqual(result['refused'], 0, result)
        self.assertEqual(result['sent'], COUNT, result)
        self.assertEqual(result['at_tasks'], result['sent'], result)
        self.assertEqual(result['replies'], result['sent'], result)
        self.assertEqual(m.nonzero_drops(), {}, m.text)
        self.assertEqual(mg.stop(), 0, mg.log())
        self.assertEqual(gen.wait(30), 0, read(gen_err.name))  # its links went down with us


if __name__ == '__main__':
    harness.main()
