#!/usr/bin/python3
"""Faults through the real binary, with the generator (perf/flowgen.cpp) over net_memif: the
node's side stops reading for a while (a TX queue that stops draining), and a node is removed
by a reload while its task serves flows. Each has a counted, bounded effect, and the gateway
carries on by itself once the cause is gone. What is asserted holds however much CPU the
generator and the worker get: a generator short of it leaves meshgate's TX rings full now and
then beside the stall (more tx_full), and more in flight when the node goes."""

import os
import subprocess
import time

import harness

MESHGATECTL = os.environ.get('MESHGATECTL_BIN') or os.path.join(
    os.path.dirname(harness.MESHGATE_BIN), 'meshgatectl')
RATE = 10000
RING = 1024  # slots of a net_memif ring (rsize 10, the default), per queue and direction


def dns(tasks):
    text = '[[service]]\nname = "dns"\nscheduler = "rr"\n' \
           '  [[service.port]]\n  protocol = "udp"\n  published = 9000\n'
    for address, node in tasks:
        text += f'  [[service.task]]\n  address = "{address}"\n  node = "{node}"\n'
    return text


class FaultTest(harness.WorkdirTestCase):

    def start(self, gen, extra):
        prefix, listen = harness.unique('mgq'), f'127.0.0.1:{harness.free_tcp_port()}'
        ports, peers = harness.flowgen_ports(gen.sockets)
        self.config = lambda more: harness.config_toml(prefix, ports, listen, extra=peers + more)
        mg = harness.Meshgate(self.workdir, self.config(extra), prefix, listen, log_level='info')
        self.addCleanup(mg.cleanup)
        mg.start()
        mg.wait_ready()
        self.prefix = prefix
        return mg

    def generator(self, count, **kw):
        if not os.access(harness.FLOWGEN, os.X_OK):
            self.fail(f'the generator is not built: {harness.FLOWGEN}')
        gen = harness.Flowgen(self.workdir, RATE, count, flows=500, **kw)
        self.addCleanup(gen.stop)  # after the gateway's
        return gen

    def test_tx_queue_that_stops_draining(self):
        # The node's side reads nothing for 1.5 s of a 6 s run: the underlay's TX ring fills,
        # what does not fit is dropped as tx_full and counted one for one; then it drains again.
        count = RATE * 6
        gen = self.generator(count, extra=('--stall', '2:1.5'))
        mg = self.start(gen, '[reload]\nwatch = false\n' + dns([('10.255.0.5', 'n1')]))
        # (tx_full, packets sent on the underlay) as the run goes
        samples = []
        while True:
            try:
                m = mg.metrics()
                samples.append((m.get('meshgate_drops_total', 0, reason='tx_full'),
                                m.get('meshgate_port_packets_total', 0, port='underlay',
                                      direction='tx')))
            except OSError:
                pass
            try:
                result = gen.result(timeout=0.2)
                break
            except AssertionError:
                if gen.proc.poll() is not None or len(samples) > 3000:
                    raise
        m = mg.wait_settled()
        drops = m.nonzero_drops()
        samples.append((drops.get('tx_full', 0),
                        m.get('meshgate_port_packets_total', 0, port='underlay', direction='tx')))
        print(f'\n  stall: {result}\n  drops {drops}', flush=True)
        self.assertEqual(set(drops), {'tx_full'}, m.text)
        self.assertEqual(result['sent'] + result['refused'], count, result)
        self.assertGreater(result['sent'] - result['at_tasks'], 0, result)
        # Every loss counted: requests toward the node, and answers toward the clients (when
        # the generator did not drain that ring either).
        lost = result['sent'] - result['replies'] - result['reply_refused']
        self.assertEqual(lost, drops['tx_full'], (result, drops))
        self.assertLessEqual(result['replies'] + result['reply_refused'], result['at_tasks'], result)
        # It drained again: after the first loss, the underlay sent more with no new loss.
        first = next(i for i, (tx_full, _) in enumerate(samples) if tx_full)
        self.assertTrue(any(b[1] > a[1] and b[0] == a[0]
                            for a, b in zip(samples[first:], samples[first + 1:])), samples)
        self.assertEqual(mg.stop(), 0, mg.log())

    def test_node_removed_while_traffic_flows(self):
        # Two nodes, a task on each; a reload removes node n2 and its task (no grace): its flows
        # lose what was in flight and move to the other task, the others lose nothing.
        count = RATE * 6
        gen = self.generator(count)
        n2 = f'[[node]]\nname = "n2"\naddress = "192.168.50.12"\nmac = "{harness.FLOWGEN_NODE_MAC}"\n'
        both = dns([('10.255.0.5', 'n1'), ('10.255.0.6', 'n2')])
        grace = '[reload]\nwatch = false\n[timeouts]\nremoved_task_grace = 0\n'
        mg = self.start(gen, grace + n2 + both)
        mg.wait_for(lambda m: m.get('meshgate_backend_packets_total', 0, service='dns', task='10.255.0.6',
                                    direction='in') > RATE, 'traffic on both tasks', timeout=60)
        with open(mg.config_path, 'w') as f:
            f.write(self.config(grace + dns([('10.255.0.5', 'n1')])))
        p = subprocess.run([MESHGATECTL, '--file-prefix', self.prefix, 'reload'], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        result = gen.result()
        m = mg.wait_settled()
        print(f'\n  node removed: {result}\n  drops {m.nonzero_drops()}', flush=True)
        drops = m.nonzero_drops()
        # its answers in flight come from a node that is gone (unknown_vtep), or for a
        # connection that is (no_connection); and a generator short of CPU leaves meshgate's TX
        # rings full now and then (tx_full)
        self.assertLessEqual(set(drops), {'task_gone', 'no_connection', 'unknown_vtep', 'tx_full'},
                             m.text)
        self.assertLessEqual(drops.get('task_gone', 0), 250, m.text)  # one per flow it had, at most
        # At most what the rings between them held (how much depends on how far behind the
        # generator was): requests toward n2's task in the node side's ring, its answers in
        # the ring back, a burst in the hands of each.
        in_flight = drops.get('no_connection', 0) + drops.get('unknown_vtep', 0)
        self.assertLessEqual(in_flight, harness.WORKERS * (2 * RING + 64), m.text)
        self.assertEqual(result['sent'] + result['refused'], count, result)
        # every request sent was answered, or dropped and counted: for its task gone, its answer
        # in flight, or a full TX ring (no tx_full: the first two are all, each where it is)
        tx_full = drops.get('tx_full', 0)
        self.assertEqual(result['replies'] + result['reply_refused'],
                         result['sent'] - drops.get('task_gone', 0) - in_flight - tx_full, result)
        self.assertLessEqual(result['at_tasks'], result['sent'] - drops.get('task_gone', 0), result)
        if not tx_full:
            self.assertEqual(result['at_tasks'], result['sent'] - drops.get('task_gone', 0), result)
        self.assertEqual(m.get('meshgate_active_connections', 0, service='dns', task='10.255.0.6'), 0, m.text)
        self.assertEqual(mg.stop(), 0, mg.log())


if __name__ == '__main__':
    harness.main()
