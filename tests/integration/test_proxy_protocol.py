#!/usr/bin/python3
"""The PROXY protocol ([[service]] proxy_protocol = "v1" | "v2") end to end, with real kernel TCP
on both sides: the client's namespace, meshgate on af_packet ports, one node with kernel VXLAN
and one task namespace (10.255.0.5) where the servers run (scripts/mesh_lab.py builds them).
meshgate full-NATs (the task sees 10.255.0.2 as the source): the header it sends first on each
new connection is the only way a task learns the client.

  (1) a strict parser (PP_SERVER, read byte for byte) sees a v1 line and a v2 block naming the
      client's address and port as the client's socket has them and the published address and
      port it connected to; a service without the key sends no header;
  (2) nginx (`listen ... proxy_protocol`) answers $proxy_protocol_addr:$proxy_protocol_port
      with the client's address and port, for v1 and v2;
  (3) a server that speaks first gets the header within 1 s of the handshake while the client
      sends nothing, and the client its greeting within 2 s;
  (4) 8 MiB each way at once, checksummed on both ends, the client's first segment full-sized;
      again with nftables dropping ~2% of TCP segments at each end's input and output (both
      directions lose ~4%): the data arrives intact, and every ACK number and SACK edge the
      client gets from the gateway lies within what the client sent (a dumpcap capture in the
      client's namespace);
  (5) a header segment lost on its way to the task (dropped once by nftables) is sent again:
      a silent client still gets the server's greeting, an echo still works;
  (6) a reload to proxy_protocol = "off" keeps open connections intact (their shift stays) and
      gives new ones no header; a reload back to "v2" leaves the connections opened without a
      header as they are and gives new ones the header;
  (7) `meshgate --check` rejects proxy_protocol = "v3", a non-string, and the key on a UDP
      service, with FILE:LINE:COL; "off", "v1", "v2" pass.

Figures (times, retransmissions, SACK blocks, segments dropped) are printed as `measured:`.
"""

import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time

import harness
import mesh_lab
from harness import EXT, UNDERLAY

CLIENT_IP = '203.0.113.2'
NODE = 'node-1'
TASK = '10.255.0.5'
SNAT = mesh_lab.OVERLAY_IP          # what the task sees as the source: meshgate's overlay address
SIGNATURE = b'\r\n\r\n\x00\r\nQUIT\n'

ECHO_PORT, GREET_PORT, BULK_PORT, NGINX_PORT = 9001, 9003, 9004, 8080
# service name -> (published port, target port on the task)
SERVICES = {
    'echo-off': (8000, ECHO_PORT),
    'echo-v1': (8001, ECHO_PORT),
    'echo-v2': (8002, ECHO_PORT),
    'nginx-v1': (8101, NGINX_PORT),
    'nginx-v2': (8102, NGINX_PORT),
    'greet-v1': (8301, GREET_PORT),
    'greet-v2': (8302, GREET_PORT),
    'bulk-v1': (8401, BULK_PORT),
    'bulk-v2': (8402, BULK_PORT),
}
BULK = 8 << 20          # bytes each way
# How soon after the client's connect() returns the header is at the task, and the task's
# greeting at the client (a sanitizer build's worker is MESHGATE_TIME_SCALE times slower).
HEADER_WITHIN, GREETING_WITHIN = 1.0 * harness.TIME_SCALE, 2.0 * harness.TIME_SCALE
LOSS = 2                # percent of TCP segments each nft chain drops (input and output, both ends)


def note(text):
    print(f'\n  measured: {text}', file=sys.stderr, flush=True)


def published(service):
    return SERVICES[service][0]


def proxy_line(version):
    """The service's proxy_protocol line (none for the default)."""
    return f'proxy_protocol = "{version}"\n' if version else ''


def services_toml(versions):
    """Every service of SERVICES on the one task; VERSIONS maps a name to its proxy_protocol
    ("off", "v1", "v2"; absent: the key is not written). The -vN services default to vN."""
    text = ''
    for name, (pub, target) in SERVICES.items():
        default = name.rsplit('-', 1)[1] if name.rsplit('-', 1)[1] in ('v1', 'v2') else None
        text += (f'[[service]]\nname = "{name}"\nscheduler = "rr"\n'
                 + proxy_line(versions.get(name, default)) +
                 f'  [[service.port]]\n  protocol = "tcp"\n  published = {pub}\n'
                 f'  target = {target}\n'
                 f'  [[service.task]]\n  address = "{TASK}"\n  node = "{NODE}"\n\n')
    return text


# --- the task's servers --------------------------------------------------------------------------

PP_SERVER = textwrap.dedent('''\
    # A task server behind a PROXY-protocol gateway: ADDRESS PORT MODE [DOWNLOAD_BYTES].
    # Each connection's PROXY header is read byte for byte (never a byte past it) and parsed
    # strictly: v1 when the first byte is "P", v2 when it is CR, no header otherwise. Then by MODE:
    #   echo   a JSON line (the parse), then every byte read comes back, the ones read while
    #          looking for a header first
    #   greet  at once a JSON line (the parse, and whether any byte followed the header), nothing
    #          read after the header; closes when the peer does
    #   bulk   sends DOWNLOAD_BYTES random bytes while reading to the end, then a JSON line (the
    #          parse, length and sha256 of each direction) and closes
    # A header that does not parse gets a JSON line with "error" and the connection is closed.
    import hashlib, json, os, re, socket, struct, sys, threading, time, traceback
    address, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    download = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    SIG = b'\\r\\n\\r\\n\\x00\\r\\nQUIT\\n'
    OCTET = rb'(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
    IP = OCTET + rb'(?:\\.' + OCTET + rb'){3}'
    PORT = rb'(?:0|[1-9][0-9]{0,4})'
    V1 = re.compile(rb'PROXY TCP4 (' + IP + rb') (' + IP + rb') (' + PORT + rb') (' + PORT +
                    rb')\\r\\n\\Z')

    class Bad(Exception):
        pass

    def exactly(c, n):
        data = b''
        while len(data) < n:
            chunk = c.recv(n - len(data))
            if not chunk:
                raise Bad('closed after %d of %d bytes' % (len(data), n))
            data += chunk
        return data

    def read_header(c, got):
        """Fills GOT with the parse; returns the bytes read that are no header."""
        first = exactly(c, 1)
        got['t_first'] = time.monotonic()
        if first == b'P':
            line = first
            while not line.endswith(b'\\n'):
                if len(line) >= 107:
                    got['raw'] = line.hex()
                    raise Bad('v1 line longer than 107 bytes')
                line += exactly(c, 1)
            got.update(version=1, raw=line.hex())
            m = V1.match(line)
            if not m:
                raise Bad('v1 line does not parse: %r' % line)
            src, dst, sport, dport = m.groups()
            if int(sport) > 65535 or int(dport) > 65535:
                raise Bad('v1 port out of range: %r' % line)
            got.update(command='PROXY', family='TCP4', src=src.decode(), dst=dst.decode(),
                       sport=int(sport), dport=int(dport))
        elif first == b'\\r':
            head = first + exactly(c, 15)
            got['raw'] = head.hex()
            if head[:12] != SIG:
                raise Bad('not the v2 signature: %r' % head[:12])
            ver_cmd, fam, length = head[12], head[13], struct.unpack('!H', head[14:16])[0]
            body = exactly(c, length)
            got.update(version=ver_cmd >> 4,
                       command={0: 'LOCAL', 1: 'PROXY'}.get(ver_cmd & 15, ver_cmd & 15),
                       family=fam >> 4, transport=fam & 15, length=length, raw=(head + body).hex())
            if ver_cmd != 0x21:
                raise Bad('version/command byte 0x%02x, not 0x21' % ver_cmd)
            if fam != 0x11:
                raise Bad('family/transport byte 0x%02x, not 0x11 (TCP over IPv4)' % fam)
            if length < 12:
                raise Bad('length %d < 12 for AF_INET' % length)
            src, dst, sport, dport = struct.unpack('!4s4sHH', body[:12])
            got.update(src=socket.inet_ntoa(src), dst=socket.inet_ntoa(dst), sport=sport,
                       dport=dport)
            tlvs, i = [], 12
            while i < length:
                if length - i < 3:
                    raise Bad('a TLV header cut short: %d bytes left' % (length - i))
                kind, n = body[i], struct.unpack('!H', body[i + 1:i + 3])[0]
                if i + 3 + n > length:
                    raise Bad('TLV 0x%02x of %d bytes overruns the length' % (kind, n))
                tlvs.append([kind, body[i + 3:i + 3 + n].hex()])
                i += 3 + n
            got['tlvs'] = tlvs
        else:
            got['version'] = None
            return first
        return b''

    def serve(c, peer):
        got = {'peer': list(peer), 'sock': list(c.getsockname()), 't_accept': time.monotonic(),
               'error': None}
        try:
            rest = read_header(c, got)
        except Bad as e:
            got['error'] = str(e)
            c.sendall(json.dumps(got).encode() + b'\\n')
            return
        got['t_header'] = time.monotonic()
        if mode == 'echo':
            c.sendall(json.dumps(got).encode() + b'\\n' + rest)
            while True:
                data = c.recv(1 << 16)
                if not data:
                    break
                c.sendall(data)
        elif mode == 'greet':
            c.settimeout(0)     # (a socket with a timeout would wait for one)
            try:
                got['pending'] = len(c.recv(1 << 16, socket.MSG_PEEK))
            except BlockingIOError:
                got['pending'] = 0
            c.settimeout(120)
            got['pending'] += len(rest)
            c.sendall(json.dumps(got).encode() + b'\\n')
            while c.recv(1 << 16):
                pass
        elif mode == 'bulk':
            up = hashlib.sha256(rest)
            got['up_len'] = len(rest)
            def reader():
                while True:
                    data = c.recv(1 << 16)
                    if not data:
                        break
                    up.update(data)
                    got['up_len'] += len(data)
            t = threading.Thread(target=reader)
            t.start()
            down, sent = hashlib.sha256(), 0
            while sent < download:
                chunk = os.urandom(min(1 << 20, download - sent))
                down.update(chunk)
                c.sendall(chunk)
                sent += len(chunk)
            t.join()
            got.update(up_sha=up.hexdigest(), down_len=sent, down_sha=down.hexdigest())
            c.sendall(json.dumps(got).encode() + b'\\n')

    def handle(c, peer):
        try:
            with c:
                c.settimeout(120)
                serve(c, peer)
        except Exception:
            traceback.print_exc()
            sys.stderr.flush()

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(64)
    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()
    ''')

NGINX_CONF = '''\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    default_type text/plain;
    server {{
        listen {address}:{port} proxy_protocol;
        location = / {{ return 200 "$proxy_protocol_addr:$proxy_protocol_port\\n"; }}
        location = /server {{
            return 200 "$proxy_protocol_server_addr:$proxy_protocol_server_port\\n";
        }}
        location = /peer {{ return 200 "$remote_addr\\n"; }}
    }}
}}
'''

# --- the client ----------------------------------------------------------------------------------

CLIENT = textwrap.dedent('''\
    # Runs in the client's namespace: one JSON command a line on stdin, one JSON answer a line on
    # stdout. Connections stay open between commands (by id).
    import hashlib, json, os, socket, sys, threading, time, traceback
    host = sys.argv[1]
    conns = {}

    def line_of(s):
        """Up to and with the first newline, byte for byte: nothing after it is consumed."""
        buf = b''
        while not buf.endswith(b'\\n'):
            c = s.recv(1)
            if not c:
                raise EOFError('closed after %r' % buf[:200])
            buf += c
        return buf

    def exactly(s, n):
        data = bytearray()
        while len(data) < n:
            chunk = s.recv(min(1 << 20, n - len(data)))
            if not chunk:
                break
            data += chunk
        return bytes(data)

    def exchange(s, data):
        """Sends DATA while reading as many bytes back; whether they are equal."""
        failed = []
        def send():
            try:
                s.sendall(data)
            except Exception as e:
                failed.append(repr(e))
        t = threading.Thread(target=send)
        t.start()
        back = exactly(s, len(data))
        t.join()
        return {'sent': len(data), 'back': len(back), 'intact': back == data, 'send_error': failed}

    def do(cmd):
        op = cmd['op']
        if op == 'open':
            s = socket.create_connection((host, cmd['port']), timeout=30)
            conns[cmd['id']] = s
            out = {'local': list(s.getsockname())}
            first = cmd.get('first', '').encode()
            s.sendall(first)
            out['report'] = json.loads(line_of(s))
            if first:
                out['first_back'] = exactly(s, len(first)).decode(errors='replace')
            return out
        if op == 'echo':
            return exchange(conns[cmd['id']], os.urandom(cmd['size']))
        if op == 'close':
            conns.pop(cmd['id']).close()
            return {}
        if op == 'greet':
            s = socket.create_connection((host, cmd['port']), timeout=cmd.get('wait', 10))
            connected = time.monotonic()
            with s:
                local = s.getsockname()
                report = json.loads(line_of(s))
                greeted = time.monotonic()
            return {'local': list(local), 'report': report, 'connected': connected,
                    'greeted': greeted}
        if op == 'bulk':
            up = os.urandom(cmd['up'])
            s = socket.create_connection((host, cmd['port']), timeout=60)
            start = time.monotonic()
            failed = []
            def send():
                try:
                    s.sendall(up)            # at once: the first segment is full-sized
                    s.shutdown(socket.SHUT_WR)
                except Exception as e:
                    failed.append(repr(e))
            t = threading.Thread(target=send)
            t.start()
            with s:
                local = s.getsockname()
                down, n = hashlib.sha256(), 0
                while n < cmd['down']:
                    chunk = s.recv(min(1 << 20, cmd['down'] - n))
                    if not chunk:
                        break
                    down.update(chunk)
                    n += len(chunk)
                rest = b''
                while True:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        break
                    rest += chunk
                t.join()
            return {'local': list(local), 'up_sha': hashlib.sha256(up).hexdigest(),
                    'down_len': n, 'down_sha': down.hexdigest(), 'send_error': failed,
                    'trailer': json.loads(rest) if rest.strip() else None,
                    'trailer_raw': rest[:300].decode(errors='replace'),
                    'seconds': time.monotonic() - start}
        raise ValueError('unknown op %r' % op)

    for text in sys.stdin:
        try:
            answer = do(json.loads(text))
        except Exception as e:
            answer = {'error': '%s: %s' % (type(e).__name__, e), 'trace': traceback.format_exc()}
        print(json.dumps(answer), flush=True)
    ''')


class Client:
    """The CLIENT driver in the client's namespace (a process of the lab: destroy() ends it)."""

    def __init__(self, lab, workdir):
        script = os.path.join(workdir, 'pp_client.py')
        with open(script, 'w') as f:
            f.write(CLIENT)
        self.err_path = os.path.join(workdir, 'pp_client.err')
        err = open(self.err_path, 'w')
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', lab.client, '/usr/bin/python3', script, EXT.address],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, bufsize=0,
            start_new_session=True)
        err.close()
        lab.procs.append(self.proc)
        lab.pids.append(self.proc.pid)
        self.buf = b''

    def call(self, timeout=60, **cmd):
        """Sends one command; its answer, or AssertionError if none comes within TIMEOUT."""
        self.proc.stdin.write(json.dumps(cmd).encode() + b'\n')
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise AssertionError(f'no answer to {cmd} within {timeout} s')
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                with open(self.err_path) as f:
                    raise AssertionError(f'the client exited on {cmd}: {f.read()}')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()     # it ends at the end of its input
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


# --- a capture in the client's namespace ---------------------------------------------------------

SYN, ACK = 0x02, 0x10


def tcp_segments(path):
    """The TCP/IPv4 segments of a classic pcap of Ethernet frames, as dicts: src, dst
    ((address, port)), seq, ack, flags, len (payload bytes), options (option bytes), sack
    ([(left, right)]), mss (the option's value, or None)."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 24:
        return []
    endian = '<' if struct.unpack_from('<I', data)[0] in (0xa1b2c3d4, 0xa1b23c4d) else '>'
    if struct.unpack_from(endian + 'I', data, 20)[0] != 1:
        raise ValueError(f'{path}: not Ethernet')
    out, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack_from(endian + 'I', data, off + 8)[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 34 or frame[12:14] != b'\x08\x00':
            continue
        ip = frame[14:]
        ihl, total = (ip[0] & 15) * 4, struct.unpack_from('!H', ip, 2)[0]
        if ip[9] != 6:
            continue
        tcp = ip[ihl:]
        sport, dport, seq, ack = struct.unpack_from('!HHII', tcp)
        doff, flags = (tcp[12] >> 4) * 4, tcp[13]
        sack, mss, opts, i = [], None, tcp[20:doff], 0
        while i < len(opts):
            kind = opts[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= len(opts) or opts[i + 1] < 2:
                break
            n = opts[i + 1]
            if kind == 2 and n == 4:
                mss = struct.unpack_from('!H', opts, i + 2)[0]
            if kind == 5:
                body = opts[i + 2:i + n]
                sack += [struct.unpack_from('!II', body, j) for j in range(0, len(body) - 7, 8)]
            i += n
        out.append({'src': (socket.inet_ntoa(ip[12:16]), sport),
                    'dst': (socket.inet_ntoa(ip[16:20]), dport), 'seq': seq, 'ack': ack,
                    'flags': flags, 'len': total - ihl - doff, 'options': doff - 20, 'sack': sack,
                    'mss': mss})
    return out


def within(value, base, span):
    """base <= value <= base + span in 32-bit sequence space."""
    return (value - base) % (1 << 32) <= span


# --- the tests -----------------------------------------------------------------------------------

class ProxyLab(harness.WorkdirTestCase):
    """The lab, meshgate and the client driver, and the checks the tests share."""
    LIMITS = ''     # [limits] lines: test_syn_cookies.py runs these tests through SYN cookies

    def setUp(self):
        super().setUp()
        self.lab = mesh_lab.Lab(harness.unique, nodes={NODE: mesh_lab.NODES[NODE]},
                                tasks=[(TASK, NODE)])
        self.addCleanup(self.lab.destroy)
        self.ext_if = self.lab.add_client(f'{CLIENT_IP}/24')
        self.und_if = self.lab.add_underlay()
        self.task_ns = self.lab.tasks[TASK]
        self.server_logs = []
        self.prefix = harness.unique('mgp')
        self.listen = f'127.0.0.1:{harness.free_tcp_port()}'
        self.ports = [harness.port_toml(EXT.name, harness.af_packet(0, self.ext_if),
                                        EXT.role, EXT.cidr, EXT.mac),
                      harness.port_toml(UNDERLAY.name, harness.af_packet(1, self.und_if),
                                        UNDERLAY.role, UNDERLAY.cidr, UNDERLAY.mac)]
        self.mg = harness.Meshgate(self.workdir, self.config({}), self.prefix, self.listen)
        self.addCleanup(self.mg.cleanup)
        self.mg.start()
        harness.check_port_macs(self.mg.wait_ready(), (EXT, UNDERLAY), self.mg.log)
        self.client = Client(self.lab, self.workdir)
        self.addCleanup(self.client.close)

    def config(self, versions):
        extra = (f'[[node]]\nname = "{NODE}"\naddress = "{mesh_lab.NODES[NODE]}"\n\n'
                 '[reload]\nwatch = false\n\n' + services_toml(versions))
        return harness.config_toml(self.prefix, self.ports, self.listen, extra=extra,
                                   limits=self.LIMITS)

    # --- helpers -----------------------------------------------------------------------------

    def diag(self):
        out = []
        if self.mg.proc.poll() is None:
            try:
                m = self.mg.metrics()
                out.append('metrics (drops, ports):\n' + '\n'.join(
                    line for line in m.text.splitlines()
                    if line.startswith(('meshgate_drops_total', 'meshgate_port_packets'))
                    and not line.rstrip().endswith(' 0')))
            except OSError:
                out.append('(no metrics)')
        out.append(f'meshgate log (tail):\n{self.mg.log()[-4000:]}')
        for path in self.server_logs:
            with open(path, errors='replace') as f:
                text = f.read()
            if text:
                out.append(f'{os.path.basename(path)}:\n{text[-3000:]}')
        return '\n'.join(out)

    def wait_listening(self, port, proc, what):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail(f'{what} exited {proc.returncode}\n{self.diag()}')
            ss = self.lab.exec(self.task_ns, ['ss', '-Hltn', f'sport = :{port}'], check=False)
            if ss.stdout.strip():
                return
            time.sleep(0.1)
        self.fail(f'{what} does not listen on {TASK}:{port}\n{self.diag()}')

    def start_server(self, mode, port, *args):
        script = os.path.join(self.workdir, 'pp_server.py')
        with open(script, 'w') as f:
            f.write(PP_SERVER)
        log_path = os.path.join(self.workdir, f'pp_server-{mode}.log')
        self.server_logs.append(log_path)
        log = open(log_path, 'w')
        p = self.lab.spawn(self.task_ns, ['/usr/bin/python3', script, TASK, str(port), mode,
                                          *map(str, args)], log)
        log.close()
        self.wait_listening(port, p, f'the {mode} server')

    def reload(self, versions, count):
        with open(self.mg.config_path, 'w') as f:
            f.write(self.config(versions))
        os.kill(self.mg.proc.pid, signal.SIGHUP)
        m = self.mg.wait_for(lambda m: m.get('meshgate_config_reloads_total', 0, result='ok')
                             + m.get('meshgate_config_reloads_total', 0, result='error') >= count,
                             f'reload {count}', timeout=60)
        self.assertEqual(m.get('meshgate_config_reloads_total', 0, result='error'), 0,
                         self.mg.log()[-3000:])

    def call(self, timeout=60, **cmd):
        answer = self.client.call(timeout=timeout, **cmd)
        self.assertNotIn('error', answer, f'{cmd}: {answer}\n{self.diag()}')
        return answer

    def assert_header(self, report, version, local, service):
        """REPORT (a PP_SERVER parse) is a VERSION header from LOCAL (the client's socket) to the
        published address and port of SERVICE, through the gateway's SNAT."""
        pub = published(service)
        what = f'{service}: {report}\n{self.diag()}'
        self.assertIsNone(report['error'], what)
        self.assertEqual(report['peer'][0], SNAT, what)       # full NAT: the header is all it has
        self.assertEqual(report['version'], version, what)
        self.assertEqual(report['command'], 'PROXY', what)
        self.assertEqual((report['src'], report['sport']), tuple(local), what)
        self.assertEqual((report['dst'], report['dport']), (EXT.address, pub), what)
        raw = bytes.fromhex(report['raw'])
        if version == 1:
            self.assertEqual(report['family'], 'TCP4', what)
            self.assertEqual(raw, f'PROXY TCP4 {local[0]} {EXT.address} {local[1]} {pub}\r\n'
                             .encode(), what)
        else:
            self.assertEqual(raw[:12], SIGNATURE, what)
            self.assertEqual(raw[12:14], b'\x21\x11', what)
            self.assertGreaterEqual(report['length'], 12, what)
            self.assertEqual(len(raw), 16 + report['length'], what)
            self.assertEqual(raw[16:28], socket.inet_aton(local[0]) + socket.inet_aton(EXT.address)
                             + struct.pack('!HH', local[1], pub), what)

    def capture(self, port):
        """dumpcap on the client's eth0 (headers of TCP to/from PORT), once it captures: its
        process, file and log for stop_capture()."""
        path = os.path.join(self.workdir, f'client-{port}.pcap')
        log_path = os.path.join(self.workdir, f'dumpcap-{port}.log')
        log = open(log_path, 'w')
        p = self.lab.spawn(self.lab.client, ['dumpcap', '-i', 'eth0', '-P', '-s', '128', '-f',
                                             f'tcp port {port}', '-w', path], log)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            with open(log_path) as f:
                text = f.read()
            if 'Capturing on' in text:
                return p, path, log_path
            if p.poll() is not None or time.monotonic() > deadline:
                self.fail(f'dumpcap did not start: {text}')
            time.sleep(0.1)

    def stop_capture(self, cap):
        p, path, log_path = cap
        time.sleep(0.3)   # the last segments (the FINs' ACKs) into the file
        p.send_signal(signal.SIGINT)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        with open(log_path) as f:
            log = f.read()
        return tcp_segments(path), log

    def bulk(self, service, cap):
        """BULK bytes each way on one connection to SERVICE with a capture running; checks the
        data and the capture, returns figures."""
        pub = published(service)
        r = self.call(timeout=300, op='bulk', port=pub, up=BULK, down=BULK)
        segments, cap_log = self.stop_capture(cap)
        what = f'{service}: {json.dumps(r)[:2000]}\n{self.diag()}'
        self.assertEqual(r['send_error'], [], what)
        trailer = r['trailer']
        self.assertIsNotNone(trailer, what)
        self.assert_header(trailer, int(service[-1]), r['local'], service)
        self.assertEqual(trailer['up_len'], BULK, what)
        self.assertEqual(trailer['up_sha'], r['up_sha'], what)
        self.assertEqual(r['down_len'], BULK, what)
        self.assertEqual(r['down_sha'], trailer['down_sha'], what)

        client, gateway = (CLIENT_IP, r['local'][1]), (EXT.address, pub)
        mine = [s for s in segments if {s['src'], s['dst']} == {client, gateway}]
        syns = [s for s in mine if s['src'] == client and s['flags'] & (SYN | ACK) == SYN]
        self.assertTrue(syns, f'no SYN of {client} in the capture ({len(segments)} segments)\n'
                              f'{cap_log}')
        base = (syns[0]['seq'] + 1) % (1 << 32)
        synacks = [s for s in mine if s['src'] == gateway and s['flags'] & (SYN | ACK) == SYN | ACK]
        sent = [s for s in mine if s['src'] == client and s['len'] > 0]
        self.assertTrue(sent, cap_log)
        # What a segment fills of the MSS: Linux sizes payload and options together, so one
        # that carries SACK blocks (the client saw the download's losses) has that much less data.
        filled = lambda s: s['len'] + s['options']  # noqa: E731
        full, mss = max(filled(s) for s in sent), max(s['len'] for s in sent)
        # The premise: the client's first data segment is as large as any it sent. However the
        # gateway puts the header ahead of it (a segment of its own, or in front of it under a
        # smaller MSS it announced to the client), the stream must stay whole. (The first
        # captured: a segment dropped at the client's output is not.)
        first = [s for s in sent if s['seq'] == base]
        self.assertTrue(first, f'no segment from ISN+1 = {base}\n{cap_log}')
        self.assertEqual(filled(first[0]), full, f'the first data segment: {first[0]}, the '
                         f'largest: {full} bytes of payload and options')
        span = BULK + 1                                          # + its FIN
        seen, retransmits = set(), 0
        for s in sent:
            retransmits += s['seq'] in seen
            seen.add(s['seq'])
        bad, acks, blocks = [], 0, 0
        for s in mine:
            if s['src'] != gateway:
                continue
            if s['flags'] & ACK:
                acks += 1
                if not within(s['ack'], base, span):
                    bad.append(('ack', s['ack'], s))
            for left, right in s['sack']:
                blocks += 1
                for edge in (left, right):
                    if not within(edge, base, span):
                        bad.append(('sack', edge, s))
        relative = [(k, (e - base) % (1 << 32)) for k, e, _ in bad[:10]]
        self.assertEqual(bad[:10], [], f'{len(bad)} ACK/SACK edges outside [ISN+1 = {base}, '
                         f'ISN+1+{span}] (relative to ISN+1: {relative})\n{cap_log}\n{self.diag()}')
        # And the last ACK is the client's FIN's: not a byte short (the client got the server's
        # FIN before it returned, and the capture saw it come in).
        last = max((s['ack'] - base) % (1 << 32) for s in mine
                   if s['src'] == gateway and s['flags'] & ACK)
        self.assertEqual(last, span, f'the highest ACK the client got is ISN+1+{last}, not its '
                         f'FIN\'s ISN+1+{span}\n{cap_log}\n{self.diag()}')
        return {'seconds': r['seconds'], 'mss': mss, 'retransmits': retransmits, 'acks': acks,
                'sack_blocks': blocks, 'captured': len(mine),
                'announced': synacks[0]['mss'] if synacks else None}

    def add_loss(self, ns, percent):
        """Drops PERCENT of the TCP segments NS receives and of those it sends."""
        self.lab.exec(ns, ['nft', 'add table inet loss'])
        for chain, hook in (('in', 'input'), ('out', 'output')):
            self.lab.exec(ns, ['nft', f'add chain inet loss {chain} '
                                      f'{{ type filter hook {hook} priority 0; }}'])
            self.lab.exec(ns, ['nft', f'add rule inet loss {chain} meta l4proto tcp '
                                      f'numgen random mod 100 < {percent} counter drop'])

    def dropped(self, ns, table):
        """{chain: packets its counters dropped} of TABLE in NS."""
        text = self.lab.exec(ns, ['nft', 'list', 'table', 'inet', table]).stdout
        out, chain = {}, None
        for line in text.splitlines():
            m = re.match(r'\s*chain (\S+) \{', line)
            if m:
                chain = m.group(1)
            m = re.search(r'counter packets (\d+)', line)
            if m:
                out[chain] = out.get(chain, 0) + int(m.group(1))
        return out

    def finish(self):
        m = self.mg.metrics()
        self.assertEqual(m.get('meshgate_drops_total', 0, reason='malformed'), 0, m.text)
        self.assertEqual(self.mg.stop(), 0, self.mg.log())


class ProxyProtocolTest(ProxyLab):

    # --- (1) a strict parser -----------------------------------------------------------------

    def test_strict_parser_sees_the_client(self):
        self.start_server('echo', ECHO_PORT)
        for service, version in (('echo-v1', 1), ('echo-v2', 2)):
            for i in range(3):
                r = self.call(op='open', id=f'{service}-{i}', port=published(service),
                              first=f'hello {i}\n')
                self.assert_header(r['report'], version, r['local'], service)
                self.assertEqual(r['first_back'], f'hello {i}\n', f'{r}\n{self.diag()}')
                e = self.call(op='echo', id=f'{service}-{i}', size=65536)
                self.assertTrue(e['intact'], f'{service}: {e}\n{self.diag()}')
                self.call(op='close', id=f'{service}-{i}')
            raw = bytes.fromhex(r['report']['raw'])
            note(f'{service}: the task read {raw!r}' if version == 1 else
                 f'{service}: the task read {raw.hex()} (TLVs: {r["report"]["tlvs"]})')
        # Without the key, no header: the task reads the client's bytes first.
        r = self.call(op='open', id='off', port=published('echo-off'), first='hello off\n')
        self.assertIsNone(r['report']['error'], r)
        self.assertIsNone(r['report']['version'], f'a header without proxy_protocol: {r}')
        self.assertEqual(r['first_back'], 'hello off\n', r)
        self.call(op='close', id='off')
        self.finish()

    # --- (2) nginx ---------------------------------------------------------------------------

    def test_nginx_sees_the_client(self):
        d = os.path.join(self.workdir, 'nginx')
        os.makedirs(d)
        conf = os.path.join(d, 'nginx.conf')
        with open(conf, 'w') as f:
            f.write(NGINX_CONF.format(dir=d, address=TASK, port=NGINX_PORT))
        error_log = os.path.join(d, 'error.log')
        self.server_logs += [error_log, os.path.join(d, 'stderr.log')]
        log = open(os.path.join(d, 'stderr.log'), 'w')
        p = self.lab.spawn(self.task_ns, ['/usr/sbin/nginx', '-p', d + '/', '-c', conf, '-e',
                                          error_log, '-g', 'daemon off;'], log)
        log.close()
        self.wait_listening(NGINX_PORT, p, 'nginx')
        for service in ('nginx-v1', 'nginx-v2'):
            pub = published(service)
            url = f'http://{EXT.address}:{pub}'
            # Two requests on one connection: both see the same header.
            c = self.lab.exec(self.lab.client, [
                'curl', '-sS', '--max-time', '20', '-w', 'local=%{local_ip}:%{local_port}\n',
                f'{url}/', f'{url}/server', f'{url}/peer'], check=False, timeout=60)
            self.assertEqual(c.returncode, 0, f'{service}: curl: {c.stdout}\n{self.diag()}')
            lines = c.stdout.splitlines()
            self.assertEqual(len(lines), 6, f'{service}: {c.stdout}\n{self.diag()}')
            local = lines[1][len('local='):]
            self.assertEqual(lines[3::2], [lines[1]] * 2, f'not one connection: {c.stdout}')
            self.assertRegex(local, rf'^{re.escape(CLIENT_IP)}:\d+$', c.stdout)
            note(f'{service}: nginx answered {lines[0]!r} to the client {local}')
            self.assertEqual(lines[0], local,
                             f'{service}: $proxy_protocol_addr:port\n{self.diag()}')
            self.assertEqual(lines[2], f'{EXT.address}:{pub}', f'{service}: server addr:port')
            self.assertEqual(lines[4], SNAT, f'{service}: $remote_addr')
        with open(error_log) as f:
            errors = [line for line in f if 'broken header' in line or '[error]' in line]
        self.assertEqual(errors, [], 'nginx logged errors')
        self.finish()

    # --- (3) a server that speaks first ------------------------------------------------------

    def test_header_arrives_before_the_client_sends(self):
        self.start_server('greet', GREET_PORT)
        delays, greetings = [], []
        for service, version in (('greet-v1', 1), ('greet-v2', 2)):
            for i in range(3):
                r = self.call(timeout=30, op='greet', port=published(service), wait=10)
                self.assert_header(r['report'], version, r['local'], service)
                self.assertEqual(r['report']['pending'], 0, f'bytes after the header: {r}')
                delay = r['report']['t_header'] - r['connected']
                greeting = r['greeted'] - r['connected']
                delays.append(delay)
                greetings.append(greeting)
                self.assertLess(delay, HEADER_WITHIN, f'{service}: the header came {delay:.3f} s '
                                f'after the handshake\n{self.diag()}')
                self.assertLess(greeting, GREETING_WITHIN, f'{service}: the greeting came '
                                f'{greeting:.3f} s after the handshake\n{self.diag()}')
        note(f'header at the task {min(delays) * 1000:.1f}..{max(delays) * 1000:.1f} ms after the '
             f'client\'s connect() returned, greeting at the client '
             f'{min(greetings) * 1000:.1f}..{max(greetings) * 1000:.1f} ms '
             f'({len(delays)} connections)')
        self.finish()

    # --- (4) bulk, without and with loss ----------------------------------------------------------

    def test_bulk_both_ways_intact(self):
        self.start_server('bulk', BULK_PORT, BULK)
        for service in ('bulk-v1', 'bulk-v2'):
            f = self.bulk(service, self.capture(published(service)))
            note(f'{service}: {BULK >> 20} MiB each way in {f["seconds"]:.2f} s, the client\'s '
                 f'segments up to {f["mss"]} bytes (MSS {f["announced"]} in the SYN-ACK), '
                 f'{f["acks"]} ACKs from the gateway checked, {f["sack_blocks"]} SACK blocks, '
                 f'{f["retransmits"]} client retransmissions')
        self.finish()

    def test_bulk_both_ways_intact_under_loss(self):
        self.start_server('bulk', BULK_PORT, BULK)
        for ns in (self.lab.client, self.task_ns):
            self.add_loss(ns, LOSS)
        total_blocks = 0
        for service in ('bulk-v1', 'bulk-v2'):
            f = self.bulk(service, self.capture(published(service)))
            total_blocks += f['sack_blocks']
            note(f'{service} with {LOSS}% dropped at each end\'s input and output: '
                 f'{BULK >> 20} MiB each way in {f["seconds"]:.2f} s, the client\'s segments '
                 f'up to {f["mss"]} bytes (MSS {f["announced"]} in the SYN-ACK), '
                 f'{f["retransmits"]} client retransmissions, {f["acks"]} ACKs and '
                 f'{f["sack_blocks"]} SACK blocks from the gateway checked')
        dropped = {'client': self.dropped(self.lab.client, 'loss'),
                   'task': self.dropped(self.task_ns, 'loss')}
        note(f'nft dropped: {dropped}')
        for side, chains in dropped.items():
            for chain in ('in', 'out'):
                self.assertGreater(chains.get(chain, 0), 0, f'{side} {chain}: no loss: {dropped}')
        # The check of the SACK edges is no vacuous one: the task's SACKs reached the client.
        self.assertGreater(total_blocks, 0, 'no SACK block from the gateway under loss')
        self.finish()

    # --- (5) a lost header ---------------------------------------------------------------------

    def test_a_lost_header_is_sent_again(self):
        self.start_server('greet', GREET_PORT)
        self.start_server('echo', ECHO_PORT)
        self.call(op='open', id='warm', port=published('echo-off'), first='x\n')  # ARP
        # The first segment to each server whose payload starts as a header is dropped, once.
        self.lab.exec(self.task_ns, ['nft', 'add table inet once'])
        self.lab.exec(self.task_ns, ['nft', 'add chain inet once in '
                                            '{ type filter hook input priority 0; }'])
        starts = {'v1': '@ih,0,40 0x' + b'PROXY'.hex(), 'v2': '@ih,0,96 0x' + SIGNATURE.hex()}
        for version, match in starts.items():
            for port in (GREET_PORT, ECHO_PORT):
                self.lab.exec(self.task_ns, ['nft', f'add rule inet once in tcp dport {port} '
                                                    f'{match} limit rate 1/hour burst 1 packets '
                                                    f'counter drop'])
        figures = []
        for version in ('v1', 'v2'):
            service = f'greet-{version}'
            r = self.call(timeout=60, op='greet', port=published(service), wait=30)
            self.assert_header(r['report'], int(version[1]), r['local'], service)
            self.assertEqual(r['report']['pending'], 0, r)
            figures.append(f'{service} {r["greeted"] - r["connected"]:.2f} s')
            service = f'echo-{version}'
            r = self.call(timeout=60, op='open', id=service, port=published(service),
                          first='after a loss\n')
            self.assert_header(r['report'], int(version[1]), r['local'], service)
            self.assertEqual(r['first_back'], 'after a loss\n', r)
            e = self.call(op='echo', id=service, size=1 << 20)
            self.assertTrue(e['intact'], f'{service}: {e}\n{self.diag()}')
            self.call(op='close', id=service)
        text = self.lab.exec(self.task_ns, ['nft', 'list', 'table', 'inet', 'once']).stdout
        counts = [int(n) for n in re.findall(r'counter packets (\d+)', text)]
        note(f'header dropped once per connection {counts}; greeting after {", ".join(figures)}')
        self.assertEqual(counts, [1, 1, 1, 1], f'not one header dropped per rule:\n{text}')
        self.finish()

    # --- (6) reload ----------------------------------------------------------------------------

    def test_reload_turns_it_off_and_on_for_new_connections_only(self):
        self.start_server('echo', ECHO_PORT)
        a = self.call(op='open', id='a', port=published('echo-v1'), first='a\n')
        self.assert_header(a['report'], 1, a['local'], 'echo-v1')
        self.assertTrue(self.call(op='echo', id='a', size=1000)['intact'])

        self.reload({'echo-v1': 'off'}, 1)
        for size in (1, 1000, 1 << 20, 100):
            e = self.call(op='echo', id='a', size=size)
            self.assertTrue(e['intact'], f'the open connection after the reload to off: {e}\n'
                                         f'{self.diag()}')
        b = self.call(op='open', id='b', port=published('echo-v1'), first='b first\n')
        self.assertIsNone(b['report']['error'], b)
        self.assertIsNone(b['report']['version'], f'a header after the reload to off: {b}')
        self.assertEqual(b['first_back'], 'b first\n', b)
        self.assertTrue(self.call(op='echo', id='b', size=1 << 20)['intact'], self.diag())

        self.reload({'echo-v1': 'v2'}, 2)
        for conn in ('a', 'b'):
            for size in (1 << 20, 10):
                e = self.call(op='echo', id=conn, size=size)
                self.assertTrue(e['intact'], f'{conn} after the reload to v2: {e}\n{self.diag()}')
        c = self.call(op='open', id='c', port=published('echo-v1'), first='c\n')
        self.assert_header(c['report'], 2, c['local'], 'echo-v1')
        self.assertTrue(self.call(op='echo', id='c', size=1 << 20)['intact'], self.diag())
        for conn in ('a', 'b', 'c'):
            self.call(op='close', id=conn)
        self.finish()


# --- (7) --check ---------------------------------------------------------------------------------

ERROR_LINE = re.compile(r'^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$', re.M)


class ProxyProtocolCheckTest(harness.WorkdirTestCase):

    def text(self, value, protocol='tcp'):
        ports = [harness.port_toml('ext', 'net_null0,no-rx=1', 'external', '203.0.113.10/24',
                                   '02:00:00:00:00:10'),
                 harness.port_toml('underlay', 'net_null1,no-rx=1', 'underlay', '192.168.50.1/24',
                                   '02:00:00:00:00:20')]
        extra = (f'[[node]]\nname = "{NODE}"\naddress = "192.168.50.11"\n\n'
                 f'[[service]]\nname = "web"\nproxy_protocol = {value}\n'
                 f'  [[service.port]]\n  protocol = "{protocol}"\n  published = 8000\n'
                 f'  [[service.task]]\n  address = "{TASK}"\n  node = "{NODE}"\n')
        return harness.config_toml(harness.unique('mgk'), ports, '127.0.0.1:1', extra=extra)

    def check(self, text, name):
        path = os.path.join(self.workdir, name)
        with open(path, 'w') as f:
            f.write(text)
        p = subprocess.run([harness.MESHGATE_BIN, '--config', path, '--check'],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        return path, p

    def test_check_rejects_bad_values_with_their_place(self):
        for value in ('"off"', '"v1"', '"v2"'):
            path, p = self.check(self.text(value), 'good.toml')
            self.assertEqual(p.returncode, 0, f'proxy_protocol = {value}: {p.stdout}{p.stderr}')
        for name, value, protocol in (('v3', '"v3"', 'tcp'), ('bool', 'true', 'tcp'),
                                      ('udp', '"v1"', 'udp')):
            with self.subTest(name):
                text = self.text(value, protocol)
                lines = text.splitlines()
                key = 1 + next(i for i, line in enumerate(lines)
                               if line.startswith('proxy_protocol'))
                proto = 1 + next(i for i, line in enumerate(lines) if 'protocol = "' in line
                                 and not line.startswith('proxy_protocol'))
                path, p = self.check(text, f'{name}.toml')
                self.assertNotEqual(p.returncode, 0, f'{name} accepted:\n{text}')
                mine = [m for m in ERROR_LINE.finditer(p.stderr) if m['file'] == path]
                found = [(int(m['line']), m['msg']) for m in mine]
                where = [f'{m["line"]}:{m["col"]}: {m["msg"]}' for m in mine]
                places = {key} if protocol == 'tcp' else {key, proto}
                self.assertTrue(any(line in places and 'proxy_protocol' in msg
                                    for line, msg in found),
                                f'{name}: no {path}:{sorted(places)}:COL naming '
                                f'proxy_protocol in:\n{p.stderr}')
                note(f'--check {name} (the key on line {key}): {where}')


if __name__ == '__main__':
    harness.main()
