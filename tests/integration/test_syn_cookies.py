#!/usr/bin/python3
"""SYN cookies ([limits] syn_cookies = "always") end to end with real kernel TCP on both sides,
in test_proxy_protocol.py's lab (client namespace, meshgate on af_packet ports, a node with
kernel VXLAN, a task namespace): the gateway answers every SYN itself, keeps nothing, and opens
the connection to the task when the client's ACK proves the cookie; the task's ISN is
translated for the connection's life, beside the PROXY header's shift.

  (1) every test of test_proxy_protocol.py again, through cookies: a strict PROXY parser, nginx,
      a server that speaks first, 8 MiB each way checksummed with every ACK and SACK edge the
      client gets within what it sent (also under 4% loss each way), a lost header, a reload;
  (2) the client with timestamps, window scaling and SACK each off and on: 8 MiB each way intact;
  (3) the client's handshake ACK lost: its first data segment proves the cookie and opens the
      connection; the data arrives (sent again by the client); the gateway's SYN to the task
      lost: the client's data sent again is our SYN again, or, when the task speaks first and
      the client sends nothing, the gateway sends it again a second later;
  (4) forged ACKs (random numbers) are counted drops (`bad_cookie`) and make no connection; a
      SYN flood of 5000 SYNs makes no connection; a real client is served meanwhile.
"""

import json
import os
import struct
import subprocess
import sys
import textwrap
import time

import harness
import test_proxy_protocol as pp
from harness import EXT

COOKIES = 'syn_cookies = "always"\n'
MESHGATECTL = os.environ.get('MESHGATECTL_BIN') or os.path.join(
    os.path.dirname(harness.MESHGATE_BIN), 'meshgatectl')


def note(text):
    print(f'\n  measured: {text}', file=sys.stderr, flush=True)


class CookieProxyProtocolTest(pp.ProxyProtocolTest):
    """(1): test_proxy_protocol.py's tests, every connection opened by a cookie."""
    LIMITS = COOKIES

    def finish(self):
        m = self.mg.metrics()
        sent = m.get('meshgate_syn_cookies_sent_total', 0)
        accepted = m.get('meshgate_syn_cookies_accepted_total', 0)
        note(f'{sent:.0f} SYNs answered with a cookie, {accepted:.0f} cookies accepted, '
             f'{m.get("meshgate_cookie_segments_held_total", 0):.0f} client segments held until '
             f'the task answered, '
             f'{m.get("meshgate_drops_total", 0, reason="cookie_pending"):.0f} dropped meanwhile '
             f'(the client sends them again)')
        self.assertGreater(sent, 0, 'no SYN was answered with a cookie')
        self.assertGreater(accepted, 0, 'no cookie opened a connection')
        self.assertEqual(m.get('meshgate_drops_total', 0, reason='bad_cookie'), 0, m.text)
        super().finish()


# Frames a raw socket in the client's namespace sends: length-prefixed, from a file.
SENDER = textwrap.dedent('''\
    import socket, struct, sys, time
    iface, path = sys.argv[1], sys.argv[2]
    data = open(path, 'rb').read()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    i = n = 0
    while i < len(data):
        size = struct.unpack_from('!H', data, i)[0]
        try:
            s.send(data[i + 2:i + 2 + size])
            n += 1
        except OSError:
            pass
        i += 2 + size
        if n % 50 == 0:
            time.sleep(0.002)   # paced: the gateway's af_packet ring takes them all
    print(n)
    ''')


class SynCookieTest(pp.ProxyLab):
    LIMITS = COOKIES

    def sysctl(self, **values):
        for key, value in values.items():
            self.lab.exec(self.lab.client, ['sysctl', '-qw', f'net.ipv4.{key}={value}'])

    def send_frames(self, frames):
        """FRAMES (bytes) sent from the client's eth0; how many went out."""
        path = os.path.join(self.workdir, 'frames.bin')
        with open(path, 'wb') as f:
            for frame in frames:
                f.write(struct.pack('!H', len(frame)) + frame)
        script = os.path.join(self.workdir, 'sender.py')
        with open(script, 'w') as f:
            f.write(SENDER)
        r = self.lab.exec(self.lab.client, ['/usr/bin/python3', script, 'eth0', path])
        return int(r.stdout.strip())

    def client_mac(self):
        return self.lab.exec(self.lab.client, ['cat', '/sys/class/net/eth0/address']).stdout.strip()

    # --- (2) the client's options ----------------------------------------------------------

    def test_client_options_each_way(self):
        self.start_server('bulk', pp.BULK_PORT, pp.BULK)
        for ts, ws, sack in ((0, 0, 0), (1, 1, 1), (1, 0, 1), (0, 1, 0)):
            self.sysctl(tcp_timestamps=ts, tcp_window_scaling=ws, tcp_sack=sack)
            f = self.bulk('bulk-v2', self.capture(pp.published('bulk-v2')))
            note(f'timestamps {ts}, window scaling {ws}, SACK {sack}: {pp.BULK >> 20} MiB each '
                 f'way in {f["seconds"]:.2f} s, MSS {f["announced"]} in the cookie\'s SYN-ACK, '
                 f'{f["retransmits"]} client retransmissions')
        self.finish()

    # --- (3) a lost handshake ACK ----------------------------------------------------------

    def test_lost_handshake_ack_the_data_opens_it(self):
        self.start_server('echo', pp.ECHO_PORT)
        pub = pp.published('echo-v1')
        # Without timestamps a bare ACK is 40 bytes: the handshake's, dropped at the client's
        # output (later bare ACKs too, until the rule goes: the echo still reaches the client).
        self.sysctl(tcp_timestamps=0)
        self.lab.exec(self.lab.client, ['nft', 'add table inet lossy'])
        self.lab.exec(self.lab.client, ['nft', 'add chain inet lossy out '
                                        '{ type filter hook output priority 0; }'])
        self.lab.exec(self.lab.client, ['nft', f'add rule inet lossy out tcp dport {pub} '
                                        'ip length 40 tcp flags == ack counter drop'])
        before = self.mg.metrics()
        started = time.monotonic()
        r = self.call(op='open', id=1, port=pub, first='hello cookie\n')
        seconds = time.monotonic() - started
        self.lab.exec(self.lab.client, ['nft', 'delete table inet lossy'])
        self.assert_header(r['report'], 1, r['local'], 'echo-v1')
        self.assertEqual(r['first_back'], 'hello cookie\n')
        after = self.mg.metrics()
        self.assertGreater(after.get('meshgate_syn_cookies_accepted_total', 0),
                           before.get('meshgate_syn_cookies_accepted_total', 0))
        # Its data went to the task as soon as the task answered, from a copy the worker held:
        # not from the client's retransmission.
        held = 'meshgate_cookie_segments_held_total'
        self.assertEqual(after.get(held, 0) - before.get(held, 0), 1)
        self.echo_intact_then_close(1)
        note(f'handshake ACK dropped: the data segment opened the connection, its data held for '
             f'the task; echo back after {seconds:.2f} s (the task\'s own Nagle wait: the '
             f'client\'s bare ACKs are dropped too)')
        self.finish()

    def echo_intact_then_close(self, conn):
        """100 kB echoed intact on the client's connection CONN, then closed."""
        echo = self.call(op='echo', id=conn, size=100000)
        self.assertTrue(echo['intact'], echo)
        self.call(op='close', id=conn)

    def drop_first_syn_at_task(self, port):
        """The first SYN the task gets on PORT (the gateway's, made of the client's ACK) is
        dropped; returns a check, to call after, that one was."""
        self.lab.exec(self.task_ns, ['nft', 'add table inet once'])
        self.lab.exec(self.task_ns, ['nft', 'add chain inet once in '
                                            '{ type filter hook input priority 0; }'])
        self.lab.exec(self.task_ns, ['nft', f'add rule inet once in tcp dport {port} '
                                            'tcp flags & (syn | ack) == syn '
                                            'limit rate 1/hour burst 1 packets counter drop'])

        def check():
            text = self.lab.exec(self.task_ns, ['nft', 'list', 'table', 'inet', 'once']).stdout
            self.lab.exec(self.task_ns, ['nft', 'delete table inet once'])
            self.assertIn('counter packets 1 ', text, f'no SYN to the task was dropped:\n{text}')
        return check

    def test_lost_syn_to_the_task_the_client_sends_it_again(self):
        self.start_server('echo', pp.ECHO_PORT)
        pub = pp.published('echo-v2')
        self.call(op='open', id='warm', port=pp.published('echo-off'), first='x\n')  # ARP
        dropped_one = self.drop_first_syn_at_task(pp.ECHO_PORT)
        before = self.mg.metrics()
        started = time.monotonic()
        r = self.call(timeout=60, op='open', id=1, port=pub, first='hello again\n')
        seconds = time.monotonic() - started
        dropped_one()
        self.assert_header(r['report'], 2, r['local'], 'echo-v2')
        self.assertEqual(r['first_back'], 'hello again\n', r)
        after = self.mg.metrics()
        self.assertEqual(after.get('meshgate_syn_cookies_accepted_total', 0) -
                         before.get('meshgate_syn_cookies_accepted_total', 0), 1)
        self.echo_intact_then_close(1)
        note(f'our SYN to the task dropped: the client\'s data sent again made it again, echo '
             f'back after {seconds:.2f} s')
        self.finish()

    def test_lost_syn_to_a_server_that_speaks_first_goes_again(self):
        self.start_server('greet', pp.GREET_PORT)
        self.start_server('echo', pp.ECHO_PORT)
        self.call(op='open', id='warm', port=pp.published('echo-off'), first='x\n')  # ARP
        # The client sends nothing after its ACK: only the gateway can send the SYN again.
        dropped_one = self.drop_first_syn_at_task(pp.GREET_PORT)
        before = self.mg.metrics()
        r = self.call(timeout=60, op='greet', port=pp.published('greet-v2'), wait=30)
        dropped_one()
        self.assert_header(r['report'], 2, r['local'], 'greet-v2')
        after = self.mg.metrics()
        resent = (after.get('meshgate_cookie_syns_resent_total', 0) -
                  before.get('meshgate_cookie_syns_resent_total', 0))
        self.assertEqual(resent, 1, after.text)
        note(f'our SYN to a server that speaks first dropped: sent again by the gateway, the '
             f'greeting at the client {r["greeted"] - r["connected"]:.2f} s after connect()')
        self.finish()

    # --- (4) forged ACKs and a SYN flood ----------------------------------------------------

    def test_forged_acks_and_a_syn_flood_leave_no_state(self):
        from scapy.all import IP, TCP, Ether
        import random
        self.start_server('echo', pp.ECHO_PORT)
        rnd = random.Random(18)
        pub = pp.published('echo-off')
        mac = self.client_mac()
        forged = [bytes(Ether(src=mac, dst=EXT.mac) /
                        IP(src=pp.CLIENT_IP, dst=EXT.address) /
                        TCP(sport=20000 + i, dport=pub, flags='A', seq=rnd.randrange(1 << 32),
                            ack=rnd.randrange(1 << 32), window=502))
                  for i in range(1000)]
        syns = [bytes(Ether(src=mac, dst=EXT.mac) /
                      IP(src=pp.CLIENT_IP, dst=EXT.address) /
                      TCP(sport=1024 + rnd.randrange(60000), dport=pub, flags='S',
                          seq=rnd.randrange(1 << 32), window=64240,
                          options=[('MSS', 1460), ('SAckOK', b''), ('WScale', 7)]))
                for _ in range(5000)]
        before = self.mg.metrics()
        sent_forged = self.send_frames(forged)
        sent_syns = self.send_frames(syns)
        # A real client meanwhile, and after.
        r = self.call(op='open', id=1, port=pub, first='still served\n')
        self.assertEqual(r['first_back'], 'still served\n')
        # meshgatectl conns says how it was opened, and by how much the task's numbers move.
        ctl = subprocess.run([MESHGATECTL, '--file-prefix', self.prefix, 'conns', '--json'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        [conn] = json.loads(ctl.stdout)['connections']
        self.assertEqual(conn['opened_by'], 'cookie', conn)
        self.assertEqual(conn['client'], f'{pp.CLIENT_IP}:{r["local"][1]}', conn)

        # Until the counters stop moving (frames the af_packet ring or a slow worker lost never
        # count), then most of what was sent must have been seen, as what it is.
        def counts(m):
            return (m.get('meshgate_drops_total', 0, reason='bad_cookie')
                    - before.get('meshgate_drops_total', 0, reason='bad_cookie'),
                    m.get('meshgate_syn_cookies_sent_total', 0)
                    - before.get('meshgate_syn_cookies_sent_total', 0))
        last, m = None, self.mg.metrics()
        while counts(m) != last:
            last = counts(m)
            time.sleep(1)
            m = self.mg.metrics()
        bad, cookies = last
        self.assertGreaterEqual(bad, sent_forged / 2, m.text)
        self.assertLessEqual(bad, sent_forged, m.text)
        self.assertGreaterEqual(cookies, sent_syns / 2, m.text)
        # The one real connection is all the table holds.
        self.assertEqual(m.get('meshgate_connection_table_entries', -1), 1, m.text)
        note(f'{sent_forged} forged ACKs: {bad:.0f} dropped as bad_cookie; {sent_syns} SYNs: '
             f'{cookies:.0f} answered with cookies; 1 connection in the table (the real '
             f'client\'s)')
        self.call(op='close', id=1)
        self.finish()


if __name__ == '__main__':
    harness.main()
