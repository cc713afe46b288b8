#!/usr/bin/python3
"""SIGHUP reload through the real binary: a valid file is applied, a file with errors is rejected
with FILE:LINE:COL messages while the gateway keeps running on its old configuration."""

import os
import signal

import harness


def config(prefix, listen, service_port):
    ports = [harness.port_toml('ext', 'net_null0', 'external', '203.0.113.10/24', '02:00:00:00:00:10'),
             harness.port_toml('underlay', 'net_null1', 'underlay', '192.168.50.1/24', '02:00:00:00:00:20')]
    service = (f'[[node]]\nname = "node-1"\naddress = "192.168.50.11"\n'
               f'[[service]]\nname = "web"\n  [[service.port]]\n  published = {service_port}\n'
               f'  [[service.task]]\n  address = "10.255.0.5"\n  node = "node-1"\n')
    return harness.config_toml(prefix, ports, listen, extra=service)


class ReloadTest(harness.WorkdirTestCase):

    def test_reload_applies_good_and_rejects_bad(self):
        prefix, listen = harness.unique('mgr'), f'127.0.0.1:{harness.free_tcp_port()}'
        with harness.Meshgate(self.workdir, config(prefix, listen, 8000), prefix, listen) as mg:
            mg.wait_ready()
            with open(mg.config_path, 'w') as f:
                f.write(config(prefix, listen, 8080))
            os.kill(mg.proc.pid, signal.SIGHUP)
            mg.wait_for(lambda m: m.get('meshgate_config_reloads_total', 0, result='ok') == 1,
                        'reload ok', timeout=10)

            with open(mg.config_path, 'w') as f:
                f.write(config(prefix, listen, 8080).replace('published = 8080', 'published = 70000'))
            os.kill(mg.proc.pid, signal.SIGHUP)
            m = mg.wait_for(lambda m: m.get('meshgate_config_reloads_total', 0, result='error') == 1,
                            'reload error', timeout=10)
            self.assertEqual(m.get('meshgate_config_reloads_total', 0, result='ok'), 1)
            log = mg.log()
            self.assertRegex(log, rf'{mg.config_path}:\d+:\d+: .*70000')
            self.assertIn('the running configuration stays', log)
            self.assertEqual(mg.stop(), 0, mg.log())


if __name__ == '__main__':
    harness.main()
