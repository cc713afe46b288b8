#!/usr/bin/python3
"""Reloads through the real binary while long-lived TCP connections flow, with real peers in
network namespaces (scripts/mesh_lab.py: two nodes with kernel VXLAN, three tasks):

- 100 reloads alternating two configurations that keep the services: every connection stays;
- removing the first of three services, reordering, adding, re-weighting and changing the
  schedulers of the others: every open connection keeps answering from the same task;
- a removed task's connections answer during removed_task_grace and end after it, no other
  (GRACE is long enough that the asks within it are made within it on a busy machine; the end
  after it is waited for, the sweep being the worker's);
- lc keeps counting each task's connections after reloads that moved the tasks around;
- meshgate_active_connections never exceeds the connections opened and is 0 once all closed.
"""

import os
import signal
import subprocess
import time

import harness
import mesh_lab
from harness import EXT, UNDERLAY

GRACE = 10  # removed_task_grace in these tests
MESHGATECTL = os.environ.get('MESHGATECTL_BIN') or os.path.join(
    os.path.dirname(harness.MESHGATE_BIN), 'meshgatectl')
T5, T6, T7 = '10.255.0.5', '10.255.0.6', '10.255.0.7'
NODE_OF = dict(mesh_lab.TASKS)


def service(name, port, tasks, scheduler='rr', weights=None):
    """A [[service]] publishing tcp PORT (target 8000, where the servers listen)."""
    text = (f'[[service]]\nname = "{name}"\nscheduler = "{scheduler}"\n'
            f'  [[service.port]]\n  published = {port}\n  target = 8000\n')
    for t in tasks:
        text += (f'  [[service.task]]\n  address = "{t}"\n  node = "{NODE_OF[t]}"\n'
                 f'  weight = {(weights or {}).get(t, 1)}\n')
    return text + '\n'


def ended_drops(m):
    """Packets of ended connections: task_gone while the entry is there; once the worker's sweep
    has taken it out, no_connection, or no_service when its port is no longer published."""
    return sum(m.get('meshgate_drops_total', 0, reason=r)
               for r in ('task_gone', 'no_connection', 'no_service'))


class ReloadFlowsTest(harness.WorkdirTestCase):

    def setUp(self):
        super().setUp()
        self.lab = mesh_lab.Lab(harness.unique)
        self.addCleanup(self.lab.destroy)
        self.ext_if = self.lab.add_client('203.0.113.2/24')
        self.und_if = self.lab.add_underlay()
        self.lab.start_servers(self.workdir)
        self.prefix = harness.unique('mgf')
        self.listen = f'127.0.0.1:{harness.free_tcp_port()}'
        self.ports = [harness.port_toml(EXT.name, harness.af_packet(0, self.ext_if),
                                        EXT.role, EXT.cidr, EXT.mac),
                      harness.port_toml(UNDERLAY.name, harness.af_packet(1, self.und_if),
                                        UNDERLAY.role, UNDERLAY.cidr, UNDERLAY.mac)]
        self.opened = 0
        self.streams = []

    def config(self, services):
        extra = ''.join(f'[[node]]\nname = "{n}"\naddress = "{a}"\n\n'
                        for n, a in mesh_lab.NODES.items())
        # Closed connections leave the table within seconds; removed tasks end after GRACE.
        extra += (f'[timeouts]\ntcp_fin = 3\ntcp_close = 3\nremoved_task_grace = {GRACE}\n\n'
                  '[reload]\nwatch = false\n\n')
        return harness.config_toml(self.prefix, self.ports, self.listen, extra=extra + services)

    def start(self, services):
        self.mg = harness.Meshgate(self.workdir, self.config(services), self.prefix, self.listen)
        self.addCleanup(self.mg.cleanup)
        self.mg.start()
        harness.check_port_macs(self.mg.wait_ready(), (EXT, UNDERLAY), self.mg.log)
        self.reloads = 0

    def reload(self, services):
        with open(self.mg.config_path, 'w') as f:
            f.write(self.config(services))
        self.reloads += 1
        self.reloaded = time.monotonic()
        os.kill(self.mg.proc.pid, signal.SIGHUP)
        m = self.mg.wait_for(lambda m: m.get('meshgate_config_reloads_total', 0, result='ok')
                             + m.get('meshgate_config_reloads_total', 0, result='error')
                             >= self.reloads, f'reload {self.reloads}', timeout=60)
        self.assertEqual(m.get('meshgate_config_reloads_total', 0, result='error'), 0,
                         self.mg.log()[-3000:])
        self.check_active_counts()
        return m

    def open(self, port):
        s = mesh_lab.Stream(self.lab, self.lab.client, EXT.address, port, self.workdir)
        s.task = s.ask('hello', timeout=30)
        self.assertIsNotNone(s.task, f'no answer on a new connection to {port}\n{self.diag()}')
        self.opened += 1
        self.streams.append(s)
        self.check_active_counts()
        return s

    def check_active_counts(self):
        """No task's count wraps, and they add up to no more than the connections opened."""
        m = self.mg.metrics()
        counts = [v for (n, _), v in m.samples.items() if n == 'meshgate_active_connections']
        self.assertTrue(all(0 <= v < 2 ** 31 for v in counts), counts)
        self.assertLessEqual(sum(counts), self.opened, m.text)

    def active_of(self, m, svc, task):
        return m.get('meshgate_active_connections', None, service=svc, task=task)

    def diag(self):
        try:
            text = self.mg.metrics().text
        except OSError:
            text = '(no metrics)'
        return f'{text}\nlog:\n{self.mg.log()[-4000:]}'

    def assert_same_tasks(self, streams, word):
        for s in streams:
            self.assertEqual(s.ask(word, timeout=30), s.task,
                             f'{word}: a connection lost its task\n{self.diag()}')

    def assert_ended_after_grace(self, streams):
        """Once GRACE has passed since the last reload, each of STREAMS stops answering (the
        worker's sweep ends them: it is waited for, 60 s at most)."""
        time.sleep(max(0.0, self.reloaded + GRACE - time.monotonic()))
        for s in streams:
            deadline = time.monotonic() + 60
            while s.ask('after-grace', timeout=3) is not None:
                self.assertLess(time.monotonic(), deadline,
                                f'a connection of a removed task outlived its grace\n{self.diag()}')
                time.sleep(0.5)

    def close_all_and_drain(self):
        for s in self.streams:
            s.close()
        self.streams = []
        m = self.mg.wait_for(
            lambda m: sum(v for (n, _), v in m.samples.items()
                          if n == 'meshgate_active_connections') == 0 and
            m.get('meshgate_connection_table_entries') == 0,
            'every connection gone from the table', timeout=60)
        self.assertEqual(m.get('meshgate_drops_total', 0, reason='malformed'), 0)

    # --- the tests -------------------------------------------------------------------------

    def test_services_removed_reordered_added_reweighted(self):
        alpha, beta, gamma = (service('alpha', 8000, [T5, T6]), service('beta', 8001, [T6, T7]),
                              service('gamma', 8002, [T5, T7]))
        self.start(alpha + beta + gamma)
        a = [self.open(8000), self.open(8000)]
        b = [self.open(8001), self.open(8001)]
        c = [self.open(8002), self.open(8002)]
        self.assertEqual({s.task for s in a}, {f'task-{T5}', f'task-{T6}'})  # rr

        # Remove the first service: the others' connections stay with their tasks; alpha's go
        # on for the grace, then end.
        self.reload(beta + gamma)
        self.assert_same_tasks(a, 'within-grace')
        self.assert_same_tasks(b + c, 'after-remove')
        self.assert_ended_after_grace(a)
        m = self.mg.wait_for(lambda m: self.active_of(m, 'alpha', T5) is None,
                             'alpha no longer exported', timeout=60)
        self.assertGreater(ended_drops(m), 0, m.text)
        self.assert_same_tasks(b + c, 'after-grace')

        # Reorder, add a service in front, re-weight one task, change a scheduler.
        delta = service('delta', 8003, [T7, T5], scheduler='maglev')
        self.reload(delta + service('gamma', 8002, [T7, T5], scheduler='wlc') +
                    service('beta', 8001, [T7, T6], weights={T6: 3}))
        self.assert_same_tasks(b + c, 'after-reorder')
        d = self.open(8003)
        self.assertIn(d.task, {f'task-{T5}', f'task-{T7}'})
        m = self.mg.metrics()
        for svc, streams in (('beta', b), ('gamma', c)):
            for t in {s.task[len('task-'):] for s in streams}:
                want = sum(1 for s in streams if s.task == f'task-{t}')
                self.assertEqual(self.active_of(m, svc, t), want, f'{svc}/{t}\n{m.text}')
        self.close_all_and_drain()
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_removed_task_ends_its_connections_and_no_other(self):
        self.start(service('web', 8000, [T5, T6, T7]))
        streams = [self.open(8000) for _ in range(3)]
        self.assertEqual({s.task for s in streams}, {f'task-{t}' for t in (T5, T6, T7)})
        gone = next(s for s in streams if s.task == f'task-{T6}')
        kept = [s for s in streams if s is not gone]

        m = self.reload(service('web', 8000, [T5, T7]))
        self.assertEqual(self.active_of(m, 'web', T6), 1, 'the removed task is still counted')
        self.assertEqual(gone.ask('within-grace', timeout=30), gone.task)
        # New connections avoid it at once.
        for _ in range(4):
            self.assertIn(self.open(8000).task, {f'task-{T5}', f'task-{T7}'})
        self.assert_ended_after_grace([gone])
        self.assert_same_tasks(kept + self.streams[3:], 'others-unharmed')
        m = self.mg.wait_for(lambda m: self.active_of(m, 'web', T6) is None,
                             'the removed task no longer exported', timeout=60)
        self.assertGreater(ended_drops(m), 0, m.text)
        self.streams.remove(gone)
        gone.close()
        self.close_all_and_drain()
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_a_hundred_reloads_keep_established_connections_on_their_tasks(self):
        a = service('alpha', 8000, [T5, T6, T7]) + service('beta', 8001, [T6, T7], 'lc')
        b = (service('gamma', 8002, [T5]) + service('beta', 8001, [T7, T6], 'wlc', {T6: 4}) +
             service('alpha', 8000, [T7, T5, T6], 'maglev'))
        self.start(a)
        streams = [self.open(8000) for _ in range(3)] + [self.open(8001) for _ in range(2)]
        for i in range(100):
            with open(self.mg.config_path, 'w') as f:
                f.write(self.config(b if i % 2 == 0 else a))
            ctl = subprocess.run([MESHGATECTL, '--file-prefix', self.prefix, 'reload'],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 timeout=60)
            self.assertEqual(ctl.returncode, 0, ctl.stdout)
            if i % 10 == 9:
                self.assert_same_tasks(streams, f'reload-{i + 1}')
        m = self.mg.metrics()
        self.assertEqual(m.get('meshgate_config_generation'), 101)
        self.assertEqual(m.get('meshgate_config_reloads_total', 0, result='error'), 0)
        self.close_all_and_drain()
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_least_connections_counts_follow_tasks_across_reloads(self):
        self.start(service('lc', 8000, [T5, T6, T7], scheduler='lc'))
        for _ in range(6):
            self.open(8000)
        per_task = lambda: {t: sum(1 for s in self.streams if s.task == f'task-{t}')
                            for t in (T5, T6, T7)}
        self.assertEqual(per_task(), {T5: 2, T6: 2, T7: 2})

        # Move the tasks around and back: each keeps its own count.
        self.reload(service('lc', 8000, [T7, T5, T6], scheduler='lc'))
        self.reload(service('other', 8001, [T6]) + service('lc', 8000, [T6, T7, T5], scheduler='lc'))
        m = self.mg.metrics()
        for t in (T5, T6, T7):
            self.assertEqual(self.active_of(m, 'lc', t), 2, m.text)
        # Close T5's two: lc must now send the next two to T5 alone.
        for s in [s for s in self.streams if s.task == f'task-{T5}']:
            self.streams.remove(s)
            s.close()
        self.mg.wait_for(lambda m: self.active_of(m, 'lc', T5) == 0, 'T5 idle', timeout=60)
        self.assertEqual({self.open(8000).task, self.open(8000).task}, {f'task-{T5}'})
        self.assertEqual(per_task(), {T5: 2, T6: 2, T7: 2})
        self.close_all_and_drain()
        self.assertEqual(self.mg.stop(), 0, self.mg.log())


if __name__ == '__main__':
    harness.main()
