#!/usr/bin/python3
"""The command line contract: --version, --check on the example configs and on broken files."""

import os
import re
import subprocess

import harness

ERROR_LINE = re.compile(r'^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$')


def check(path, timeout=30):
    """meshgate --config PATH --check -> (exit status, stdout, stderr)."""
    p = subprocess.run([harness.MESHGATE_BIN, '--config', path, '--check'], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def errors_in(stderr, path):
    """The FILE:LINE:COL: message lines of stderr that name `path`, as (line, col, message)."""
    found = []
    for text in stderr.splitlines():
        m = ERROR_LINE.match(text.strip())
        if m and m.group('file') == path:
            found.append((int(m.group('line')), int(m.group('col')), m.group('msg')))
    return found


# Each line marked `# E:<a>|<b>...` must get an error at that line whose message mentions one of
# the words (the key or the bad value, case-insensitive).
SEMANTIC_ERRORS = '''\
[dpdk]
lcores = "0-1"
file_prefix = "mgt-check"

[[port]]
name = "ext"
device = "net_null0"
role = "sideways"                      # E:role|sideways
address = "203.0.113.300/24"           # E:address|203.0.113.300
mac = "02:00:00:00:00:1"               # E:mac|02:00:00:00:00:1

[[port]]
name = "ext"                           # E:name|ext|duplicate
device = "net_null1"
role = "underlay"
address = "192.168.50.1/24"

[overlay]
vni = 4096
address = "10.255.0.2/16"

[[node]]
name = "node-1"
address = "192.168.50.11"

[[service]]
name = "web"
  [[service.port]]
  protocol = "sctp"                    # E:protocol|sctp
  published = 8000
  target = 70000                       # E:target|70000
  [[service.task]]                     # T:
  address = "10.255.0.5"
  node = "nowhere"                     # T:nowhere
'''

SYNTAX_ERROR = '''\
[dpdk]
lcores = "0-1"
memory_mb = = 256
'''


class CliTest(harness.WorkdirTestCase):

    def write(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_version(self):
        p = subprocess.run([harness.MESHGATE_BIN, '--version'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(harness.SOURCE_ROOT, 'meson.build')) as f:
            version = re.search(r"version:\s*'([^']+)'", f.read()).group(1)
        self.assertIn(version, p.stdout, f'--version should print the project version {version}')

    def test_unknown_option_fails(self):
        p = subprocess.run([harness.MESHGATE_BIN, '--no-such-option'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(p.stderr.strip(), 'a usage message on stderr')

    def test_check_example_configs(self):
        for name in ('demo.toml', 'gateway-host.toml'):
            with self.subTest(config=name):
                path = os.path.join(harness.SOURCE_ROOT, 'config', name)
                self.assertTrue(os.path.exists(path), path)
                rc, out, err = check(path)
                self.assertEqual(rc, 0, f'{path}:\n{out}{err}')
                self.assertEqual(errors_in(err, path), [], err)

    def test_check_harness_config(self):
        """The config the pcap tests use is valid (so a failure there is not the config's fault)."""
        ports = [harness.port_toml(p.name, f'net_pcap{i},rx_pcap=/nonexistent/in.pcap,tx_pcap=/tmp/out.pcap',
                                   p.role, p.cidr, p.mac)
                 for i, p in enumerate((harness.EXT, harness.UNDERLAY))]
        path = self.write('harness.toml', harness.config_toml('mgt-check', ports, '127.0.0.1:9999'))
        rc, out, err = check(path)
        self.assertEqual(rc, 0, out + err)

    def test_check_syntax_error(self):
        path = self.write('syntax.toml', SYNTAX_ERROR)
        rc, out, err = check(path)
        self.assertEqual(rc, 1, out + err)
        errors = errors_in(err, path)
        self.assertTrue(errors, f'no FILE:LINE:COL: message line in stderr:\n{err}')
        self.assertEqual(errors[0][0], 3, err)
        self.assertGreaterEqual(errors[0][1], 1, err)

    def test_check_reports_every_error(self):
        path = self.write('semantic.toml', SEMANTIC_ERRORS)
        rc, out, err = check(path)
        self.assertEqual(rc, 1, out + err)
        errors = errors_in(err, path)
        self.assertTrue(errors, f'no FILE:LINE:COL: message line in stderr:\n{err}')
        for line, col, msg in errors:
            self.assertGreaterEqual(line, 1, err)
            self.assertGreaterEqual(col, 1, err)
            self.assertTrue(msg.strip(), err)
        lines = SEMANTIC_ERRORS.splitlines()
        task_start = next(i + 1 for i, t in enumerate(lines) if '# T:' in t)
        for number, text in enumerate(lines, start=1):
            if '# E:' in text:
                words = text.split('# E:')[1].split()[0].split('|')
                with self.subTest(line=number, words=words):
                    self.assertTrue(any(l == number and any(w.lower() in m.lower() for w in words)
                                        for l, _, m in errors),
                                    f'expected an error at line {number} mentioning one of {words}; '
                                    f'got:\n{err}')
            if '# T:nowhere' in text:
                with self.subTest(line=number, word='nowhere'):
                    self.assertTrue(any(task_start <= l <= number and 'nowhere' in m for l, _, m in errors),
                                    f'expected an error at lines {task_start}-{number} naming the unknown '
                                    f'node "nowhere"; got:\n{err}')

    def test_check_missing_file(self):
        path = os.path.join(self.workdir, 'does-not-exist.toml')
        rc, out, err = check(path)
        self.assertEqual(rc, 1, out + err)
        self.assertIn(path, err)


if __name__ == '__main__':
    harness.main()
