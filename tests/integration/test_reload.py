#!/usr/bin/python3
"""Reloads through the real binary (net_null ports): a valid file is applied, by SIGHUP or by
writing it (the file watcher); a file with errors is rejected with FILE:LINE:COL messages while
the gateway keeps running on its old configuration. Whatever --check refuses, a reload refuses
too, and the gateway stays up: a node no underlay port reaches, more services, tasks or memory
than the tables hold, keys that need a restart. Live settings ([stats] listen) apply."""

import os
import re
import signal
import socket
import subprocess
import time

import harness

ERROR_LINE = re.compile(r'^(?P<file>[^:\s]+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$', re.M)

NODE = '[[node]]\nname = "node-1"\naddress = "192.168.50.11"\n'


def ports():
    return [harness.port_toml('ext', 'net_null0,no-rx=1', 'external', '203.0.113.10/24',
                              '02:00:00:00:00:10'),
            harness.port_toml('underlay', 'net_null1,no-rx=1', 'underlay', '192.168.50.1/24',
                              '02:00:00:00:00:20')]


def service(name, port, tasks=('10.255.0.5',)):
    text = f'[[service]]\nname = "{name}"\n  [[service.port]]\n  published = {port}\n'
    for t in tasks:
        text += f'  [[service.task]]\n  address = "{t}"\n  node = "node-1"\n'
    return text


def many_services(n):
    return ''.join(service(f's{i}', 1 + i) for i in range(n))


def many_tasks(n):
    """N tasks in services of 1000, written as inline tables to stay under the 1 MiB limit."""
    addresses = [f'10.255.{1 + i // 250}.{1 + i % 250}' for i in range(n)]  # up to 63750
    text = ''
    for k in range((n + 999) // 1000):
        text += (f'[[service]]\nname = "s{k}"\nport = [{{published = {1 + k}}}]\ntask = [\n' +
                 ''.join(f'{{address = "{a}", node = "node-1"}},\n'
                         for a in addresses[k * 1000:(k + 1) * 1000]) + ']\n')
    return text


class ReloadTest(harness.WorkdirTestCase):

    def setUp(self):
        super().setUp()
        self.prefix = harness.unique('mgr')
        self.listen = f'127.0.0.1:{harness.free_tcp_port()}'

    def config(self, extra, listen=None, reload_watch=False, connections=65536):
        reload = f'[reload]\nwatch = {"true" if reload_watch else "false"}\ndebounce_ms = 300\n'
        return harness.config_toml(self.prefix, ports(), listen or self.listen,
                                   extra=NODE + extra + reload, connections=connections)

    def start(self, extra, **kw):
        self.mg = harness.Meshgate(self.workdir, self.config(extra, **kw), self.prefix,
                                   self.listen)
        self.addCleanup(self.mg.cleanup)
        self.mg.start()
        return self.mg.wait_ready()

    def write(self, text):
        with open(self.mg.config_path, 'w') as f:
            f.write(text)

    def sighup_and_wait(self, result, count):
        os.kill(self.mg.proc.pid, signal.SIGHUP)
        return self.mg.wait_for(lambda m: m.get('meshgate_config_reloads_total', 0, result=result)
                                == count, f'reload {result} {count}', timeout=120)

    def check(self, text):
        path = os.path.join(self.workdir, 'candidate.toml')
        with open(path, 'w') as f:
            f.write(text)
        p = subprocess.run([harness.MESHGATE_BIN, '--config', path, '--check'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        return p.returncode, [(m['file'], m['msg']) for m in ERROR_LINE.finditer(p.stderr)], path

    def test_reload_applies_good_and_rejects_bad(self):
        self.start(service('web', 8000))
        self.write(self.config(service('web', 8080)))
        m = self.sighup_and_wait('ok', 1)
        self.assertEqual(m.get('meshgate_config_generation'), 2)

        self.write(self.config(service('web', 8080)).replace('published = 8080',
                                                             'published = 70000'))
        m = self.sighup_and_wait('error', 1)
        self.assertEqual(m.get('meshgate_config_reloads_total', 0, result='ok'), 1)
        self.assertEqual(m.get('meshgate_config_generation'), 2)
        log = self.mg.log()
        self.assertRegex(log, rf'{self.mg.config_path}:\d+:\d+: .*70000')
        self.assertIn('the running configuration stays', log)
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_what_check_refuses_a_reload_refuses_and_the_gateway_stays(self):
        cases = {
            'node no underlay port reaches': (
                service('web', 8000) + '[[node]]\nname = "n1"\naddress = "203.0.113.77"\n',
                'node address 203.0.113.77 is reached by no underlay port'),
            '1025 services': (many_services(1025), 'too many services: at most 1024'),
            '16385 tasks': (many_tasks(16385), 'too many tasks: at most 16384 in all services'),
            # (the default 1M connections fit in 256 MiB since the table's own key index: 195)
            'memory for 4M connections': (
                service('web', 8000), '4194304 connections with'),
        }
        self.start(service('web', 8000))
        errors = 0
        for name, (extra, message) in cases.items():
            with self.subTest(name):
                text = self.config(extra, connections=4194304) if name.startswith('memory') \
                    else self.config(extra)
                rc, found, path = self.check(text)
                self.assertEqual(rc, 1, found)
                self.assertTrue(any(f == path and message in msg for f, msg in found),
                                f'{message!r} not in {found}')
                self.write(text)
                errors += 1
                m = self.sighup_and_wait('error', errors)
                self.assertEqual(m.get('meshgate_config_generation'), 1)
                self.assertIsNone(self.mg.proc.poll(), 'the gateway exited')
                self.assertRegex(self.mg.log(), re.escape(self.mg.config_path) +
                                 r':\d+:\d+: ' + re.escape(message))
        # And what it accepts, it still takes.
        self.write(self.config(service('web', 8001)))
        self.sighup_and_wait('ok', 1)
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_keys_that_need_a_restart_are_named(self):
        self.start(service('web', 8000))
        text = self.config(service('web', 8000), connections=32768).replace(
            f'lcores = "{harness.lcores()}"',
            f'lcores = "{harness.lcores()}"\nextra_args = ["--log-level=lib.eal:notice"]')
        self.write(text)
        self.sighup_and_wait('error', 1)
        log = self.mg.log()
        self.assertRegex(log, r':\d+:1: \[dpdk\] extra_args: a restart is needed to change it')
        self.assertRegex(log, r':\d+:\d+: \[limits\] connections 65536 -> 32768: a restart is '
                              r'needed to change it')
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_writing_the_file_reloads_it(self):
        self.start(service('web', 8000), reload_watch=True)
        self.write(self.config(service('web', 8001), reload_watch=True))
        m = self.mg.wait_for(lambda m: m.get('meshgate_config_generation') == 2,
                             'reload by the file watcher', timeout=60)
        self.assertEqual(m.get('meshgate_config_reloads_total', 0, result='ok'), 1)
        self.assertIn('(file changed)', self.mg.log())
        # The same content written again is no change to act on.
        self.write(self.config(service('web', 8001), reload_watch=True))
        time.sleep(1.5)
        self.assertEqual(self.mg.metrics().get('meshgate_config_generation'), 2)
        self.assertEqual(self.mg.stop(), 0, self.mg.log())

    def test_stats_listen_moves_live_and_a_busy_address_is_refused(self):
        self.start(service('web', 8000))
        new = f'127.0.0.1:{harness.free_tcp_port()}'
        self.write(self.config(service('web', 8000), listen=new))
        os.kill(self.mg.proc.pid, signal.SIGHUP)
        # The new address listens from the reload's preparation on, before the reload is
        # committed: wait for it to serve the reloaded generation.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if harness.scrape(new).get('meshgate_config_generation') == 2:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            self.fail(f'no metrics of generation 2 on {new}\n{self.mg.log()}')
        with self.assertRaises(OSError):
            harness.scrape(self.listen)
        self.mg.listen = new

        with socket.socket() as busy:
            busy.bind(('127.0.0.1', 0))
            busy.listen()
            taken = f'127.0.0.1:{busy.getsockname()[1]}'
            self.write(self.config(service('web', 8000), listen=taken))
            m = self.sighup_and_wait('error', 1)
            self.assertEqual(m.get('meshgate_config_generation'), 2)
            self.assertRegex(self.mg.log(), rf':\d+:\d+: \[stats\] listen {taken}: cannot listen')
        self.assertEqual(self.mg.stop(), 0, self.mg.log())


if __name__ == '__main__':
    harness.main()
