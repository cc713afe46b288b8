#!/usr/bin/python3
"""The swarm side of the routing mesh, in network namespaces, with kernel peers only:

  underlay    a bridge joining the gateway's underlay port and one veth per node
  node-N      eth0 on the underlay, vxlan0 (VNI 4096, UDP 4789, nolearning) in bridge br0 with
              Docker's peerAdd entry for the gateway: fdb OVERLAY_MAC -> the gateway's VTEP
  task        eth0 on the overlay (MTU 1450, MAC 02:42 + address) in its node's br0, a static
              neighbor for the gateway's overlay address, an HTTP server on 8000 answering its
              name ("/" ), a long-lived echo ("/lines") and a download ("/big"), UDP echo on 9000,
              and on 8001 an HTTP server behind a PROXY protocol header (v1 or v2) that answers
              who the header says the client is
  client      (optional) a namespace whose eth0 faces the gateway's external port

The end-to-end tests build it with unique names and tear it down; scripts/demo.sh runs
`mesh_lab.py up` and `mesh_lab.py down`, which keep what they made in a state file.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

VNI = 4096
VXLAN_PORT = 4789
OVERLAY_IP = '10.255.0.2'
OVERLAY_MAC = '02:42:0a:ff:00:02'
GATEWAY_VTEP = '192.168.50.1'
NODES = {'node-1': '192.168.50.11', 'node-2': '192.168.50.12'}
TASKS = [('10.255.0.5', 'node-1'), ('10.255.0.6', 'node-1'), ('10.255.0.7', 'node-2')]

SERVER = textwrap.dedent('''\
    import http.server, os, socket, sys, threading
    address, name, big, ready = sys.argv[1], sys.argv[2].encode(), sys.argv[3], sys.argv[4]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        def do_GET(self):
            if self.path == '/big' and big:
                size = os.path.getsize(big)
                self.send_response(200)
                self.send_header('Content-Length', str(size))
                self.send_header('X-Task', address)
                self.end_headers()
                with open(big, 'rb') as f:
                    while True:
                        chunk = f.read(1 << 16)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                return
            if self.path == '/lines':
                # a long-lived connection: every line the client sends comes back with our name
                self.send_response(200)
                self.send_header('X-Task', address)
                self.end_headers()
                self.wfile.flush()
                while True:
                    line = self.rfile.readline()
                    if not line:
                        break
                    self.wfile.write(name + b' ' + line)
                    self.wfile.flush()
                self.close_connection = True
                return
            body = name + b'\\n'
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.send_header('Connection', 'close')
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass

    def udp_echo():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((address, 9000))
        while True:
            data, peer = s.recvfrom(65535)
            if data.startswith(b'big:'):  # an answer of N bytes: bigger than the overlay MTU
                data = b'x' * min(int(data[4:] or 0), 60000)
            s.sendto(name + b' ' + data, peer)

    def proxy_header(f):
        """The client the PROXY header at the start of F names: (address, port, version)."""
        first = f.read(5)
        if first == b'PROXY':
            fields = (first + f.readline()).decode().split()
            return fields[2], int(fields[4]), 'v1'
        rest = f.read(11)
        if first + rest[:7] != b'\\r\\n\\r\\n\\x00\\r\\nQUIT\\n' or rest[7] != 0x21 or rest[8] != 0x11:
            raise ValueError('no PROXY header')
        block = f.read(int.from_bytes(rest[9:11], 'big'))
        return socket.inet_ntoa(block[0:4]), int.from_bytes(block[8:10], 'big'), 'v2'

    def behind_proxy(conn, peer):
        with conn, conn.makefile('rb') as f:
            try:
                client, port, version = proxy_header(f)
            except (ValueError, IndexError):
                conn.sendall(b'HTTP/1.1 400 Bad Request\\r\\nConnection: close\\r\\n\\r\\n')
                return
            while f.readline() not in (b'\\r\\n', b''):
                pass
            body = (name + f'; you are {client}:{port} (PROXY {version} header; the '
                    f'connection came from {peer[0]}:{peer[1]})\\n'.encode())
            conn.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: ' + str(len(body)).encode()
                         + b'\\r\\nConnection: close\\r\\n\\r\\n' + body)

    def proxy_server():
        s = socket.create_server((address, 8001), backlog=1024)
        while True:
            conn, peer = s.accept()
            threading.Thread(target=behind_proxy, args=(conn, peer), daemon=True).start()

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 1024
        daemon_threads = True

    http_server = Server((address, 8000), Handler)
    threading.Thread(target=udp_echo, daemon=True).start()
    threading.Thread(target=proxy_server, daemon=True).start()
    open(ready, 'w').close()
    http_server.serve_forever()
    ''')


LINE_CLIENT = textwrap.dedent('''\
    # One long-lived connection to /lines; each stdin line is sent, each answer line printed.
    import socket, sys
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
    s.sendall(b'GET /lines HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
    f = s.makefile('rb')
    status = f.readline()
    assert status.startswith(b'HTTP/1.') and b' 200 ' in status, status
    while f.readline() not in (b'\\r\\n', b''):
        pass
    print('ready', flush=True)
    for line in sys.stdin:
        s.sendall(line.encode())
        answer = f.readline()
        if not answer:
            sys.exit('connection closed')
        print(answer.decode().rstrip(), flush=True)
    ''')


class Stream:
    """A long-lived TCP connection from a namespace to HOST:PORT (an HTTP /lines echo): ask()
    sends a line and returns the answer, None when none comes within the timeout."""

    def __init__(self, lab, ns, host, port, workdir, ready_timeout=20):
        script = os.path.join(workdir, 'mesh_lab_line_client.py')
        if not os.path.exists(script):
            with open(script, 'w') as f:
                f.write(LINE_CLIENT)
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', ns, '/usr/bin/python3', script, host,
                                      str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, bufsize=0, start_new_session=True)
        lab.procs.append(self.proc)
        lab.pids.append(self.proc.pid)
        self.buf = b''
        first = self._line(ready_timeout)
        if first != 'ready':
            raise RuntimeError(f'stream to {host}:{port} did not open: {first!r}')
        self.task = None

    def _line(self, timeout):
        import select
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return line.decode().strip()

    def ask(self, word, timeout=10):
        """The answering task's name (task-ADDRESS), None without an answer in time."""
        try:
            self.proc.stdin.write(word.encode() + b'\n')
        except OSError:
            return None
        line = self._line(timeout)
        if line is None or not line.endswith(' ' + word):
            return None
        return line[:-len(word) - 1]

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def task_mac(ip):
    return '02:42:' + ':'.join(f'{int(b):02x}' for b in ip.split('.'))


def run(cmd, check=True, timeout=60):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} exited {p.returncode}:\n{p.stdout}')
    return p


class Lab:
    """Namespaces, veths, bridges and servers; destroy() removes all it made, even half-built.
    `name(prefix)` gives each namespace or root-side interface its name."""

    def __init__(self, name, nodes=None, tasks=None, gateway_vtep=GATEWAY_VTEP,
                 overlay_ip=OVERLAY_IP, overlay_mac=OVERLAY_MAC, vni=VNI):
        self.name = name
        self.nodes_wanted = dict(nodes or NODES)
        self.tasks_wanted = list(tasks or TASKS)
        self.gateway_vtep, self.overlay_ip, self.overlay_mac, self.vni = (
            gateway_vtep, overlay_ip, overlay_mac, vni)
        self.namespaces, self.root_links, self.pids = [], [], []
        self.procs = []
        self.client = None
        self.nodes, self.tasks = {}, {}
        self.bridge_ns = None

    # --- building blocks -------------------------------------------------------------------

    def netns(self, prefix):
        ns = self.name(prefix)
        run(['ip', 'netns', 'add', ns])
        self.namespaces.append(ns)
        self.exec(ns, ['ip', 'link', 'set', 'lo', 'up'])
        self.exec(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1'])
        self.exec(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1'])
        return ns

    @staticmethod
    def exec(ns, cmd, check=True, timeout=60):
        if ns is None:
            return run(cmd, check=check, timeout=timeout)
        return run(['ip', 'netns', 'exec', ns, *cmd], check=check, timeout=timeout)

    def quiet(self, ns, iface):
        """No offloads (af_packet must see complete checksums and MTU-sized frames), no IPv6."""
        self.exec(ns, ['ethtool', '-K', iface, 'rx', 'off', 'tx', 'off', 'tso', 'off', 'gso', 'off'],
                  check=False)
        self.exec(ns, ['sysctl', '-q', '-w', f'net.ipv6.conf.{iface}.disable_ipv6=1'], check=False)

    def veth(self, a, a_ns, b, b_ns):
        """A veth pair; a None namespace means the root namespace."""
        cmd = ['ip', 'link', 'add', a]
        if a_ns:
            cmd += ['netns', a_ns]
        cmd += ['type', 'veth', 'peer', 'name', b]
        if b_ns:
            cmd += ['netns', b_ns]
        run(cmd)
        for ns, iface in ((a_ns, a), (b_ns, b)):
            if ns is None:
                self.root_links.append(iface)
                self.exec(None, ['sysctl', '-q', '-w', f'net.ipv4.conf.{iface}.forwarding=0'],
                          check=False)
            self.quiet(ns, iface)
            self.exec(ns, ['ip', 'link', 'set', iface, 'up'])

    def spawn(self, ns, cmd, log):
        p = subprocess.Popen(['ip', 'netns', 'exec', ns, *cmd], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        self.pids.append(p.pid)
        return p

    # --- the mesh --------------------------------------------------------------------------

    def add_client(self, address='203.0.113.2/24'):
        """A client namespace; returns the root-side veth for the gateway's external port."""
        self.client = self.netns('mgc')
        root_if = self.name('mge')
        self.veth(root_if, None, 'eth0', self.client)
        self.exec(self.client, ['ip', 'addr', 'add', address, 'dev', 'eth0'])
        return root_if

    def add_underlay(self, attach=None):
        """The underlay bridge. ATTACH is an existing root-namespace interface of the gateway (a
        TAP port): then the bridge is in the root namespace. Otherwise the bridge gets its own
        namespace, and the returned root-side veth is for the gateway's af_packet port."""
        if attach:
            self.bridge = self.name('mgb')
            run(['ip', 'link', 'add', self.bridge, 'type', 'bridge'])
            self.root_links.append(self.bridge)
            run(['ip', 'link', 'set', attach, 'master', self.bridge])
            run(['ip', 'link', 'set', self.bridge, 'up'])
            root_if = attach
        else:
            self.bridge_ns = self.netns('mgu')
            self.bridge = 'br0'
            self.exec(self.bridge_ns, ['ip', 'link', 'add', 'br0', 'type', 'bridge'])
            self.exec(self.bridge_ns, ['ip', 'link', 'set', 'br0', 'up'])
            root_if = self.name('mgv')
            self.veth(root_if, None, 'gw', self.bridge_ns)
            self.exec(self.bridge_ns, ['ip', 'link', 'set', 'gw', 'master', 'br0'])
        for i, (node, addr) in enumerate(self.nodes_wanted.items()):
            ns = self.netns('mgn')
            self.nodes[node] = ns
            side = self.name('mgp') if self.bridge_ns is None else f'n{i}'
            self.veth('eth0', ns, side, self.bridge_ns)
            self.exec(self.bridge_ns, ['ip', 'link', 'set', side, 'master', self.bridge])
            self.exec(ns, ['ip', 'addr', 'add', f'{addr}/24', 'dev', 'eth0'])
            self.exec(ns, ['ip', 'link', 'add', 'br0', 'type', 'bridge'])
            self.exec(ns, ['ip', 'link', 'set', 'br0', 'mtu', '1450'])
            self.exec(ns, ['ip', 'link', 'add', 'vxlan0', 'type', 'vxlan', 'id', str(self.vni), 'dstport',
                           str(VXLAN_PORT), 'local', addr, 'dev', 'eth0', 'nolearning'])
            self.quiet(ns, 'vxlan0')
            self.quiet(ns, 'br0')
            self.exec(ns, ['ip', 'link', 'set', 'vxlan0', 'master', 'br0'])
            self.exec(ns, ['ip', 'link', 'set', 'vxlan0', 'up'])
            self.exec(ns, ['ip', 'link', 'set', 'br0', 'up'])
            # Docker's peerAdd for the gateway: its overlay MAC lives behind its VTEP
            self.exec(ns, ['bridge', 'fdb', 'append', self.overlay_mac, 'dev', 'vxlan0', 'dst',
                           self.gateway_vtep, 'self', 'permanent'])
        for j, (ip, node) in enumerate(self.tasks_wanted):
            ns = self.netns('mgt')
            self.tasks[ip] = ns
            node_ns = self.nodes[node]
            self.veth('eth0', ns, f't{j}', node_ns)
            self.exec(node_ns, ['ip', 'link', 'set', f't{j}', 'mtu', '1450'])
            self.exec(node_ns, ['ip', 'link', 'set', f't{j}', 'master', 'br0'])
            self.exec(ns, ['ip', 'link', 'set', 'eth0', 'down'])
            self.exec(ns, ['ip', 'link', 'set', 'eth0', 'address', task_mac(ip), 'mtu', '1450'])
            self.exec(ns, ['ip', 'addr', 'add', f'{ip}/16', 'dev', 'eth0'])
            self.exec(ns, ['ip', 'link', 'set', 'eth0', 'up'])
            self.exec(ns, ['ip', 'neigh', 'add', self.overlay_ip, 'lladdr', self.overlay_mac,
                           'dev', 'eth0', 'nud', 'permanent'])
        return root_if

    def start_servers(self, workdir, names=None, big=''):
        """One server per task; NAMES maps a task address to what it answers (default
        task-ADDRESS). Waits until all listen."""
        script = os.path.join(workdir, 'mesh_lab_server.py')
        with open(script, 'w') as f:
            f.write(SERVER)
        readies = []
        for ip, ns in self.tasks.items():
            ready = os.path.join(workdir, f'ready-{ip}')
            if os.path.exists(ready):
                os.unlink(ready)
            readies.append(ready)
            log = open(os.path.join(workdir, f'server-{ip}.log'), 'w')
            name = (names or {}).get(ip, f'task-{ip}')
            self.spawn(ns, ['/usr/bin/python3', script, ip, name, big, ready], log)
            log.close()
        deadline = time.monotonic() + 15
        while not all(os.path.exists(r) for r in readies):
            if time.monotonic() > deadline:
                raise RuntimeError(f'servers not ready: {readies}')
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f'a server exited {p.returncode}; logs in {workdir}')
            time.sleep(0.1)

    def destroy(self):
        for pid in self.pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        for p in self.procs:
            p.wait()
        for ns in self.namespaces:
            subprocess.run(['ip', 'netns', 'del', ns], stderr=subprocess.DEVNULL)
        for iface in self.root_links:
            subprocess.run(['ip', 'link', 'del', iface], stderr=subprocess.DEVNULL)

    def state(self):
        return {'namespaces': self.namespaces, 'root_links': self.root_links, 'pids': self.pids}


# --- the demo's command line ---------------------------------------------------------------

def down(state_path):
    """Removes what an earlier `up` made (its state file says what)."""
    if not os.path.exists(state_path):
        return
    with open(state_path) as f:
        state = json.load(f)
    lab = Lab(None)
    lab.namespaces, lab.root_links, lab.pids = state['namespaces'], state['root_links'], state['pids']
    lab.destroy()
    os.unlink(state_path)


def from_config(path):
    """What the lab needs of a meshgate config file: its first service's name and tasks, its
    nodes, the gateway's VTEP (its underlay port) and overlay address and MAC, the VNI."""
    import tomllib
    with open(path, 'rb') as f:
        c = tomllib.load(f)
    service = c['service'][0]
    underlay = next(p for p in c['port'] if p.get('role', 'external') != 'external')
    overlay_ip = c['overlay']['address'].split('/')[0]
    return dict(service=service['name'],
                nodes={n['name']: n['address'] for n in c.get('node', [])},
                tasks=[(t['address'], t['node']) for t in service.get('task', [])],
                gateway_vtep=underlay['address'].split('/')[0], overlay_ip=overlay_ip,
                overlay_mac=c['overlay'].get('mac', task_mac(overlay_ip)),
                vni=c['overlay'].get('vni', VNI))


def up(state_path, attach, workdir, config):
    down(state_path)
    os.makedirs(workdir, exist_ok=True)
    counter = iter(range(1000))
    c = from_config(config)
    lab = Lab(lambda prefix: f'{prefix}demo{next(counter)}', c['nodes'], c['tasks'],
              c['gateway_vtep'], c['overlay_ip'], c['overlay_mac'], c['vni'])
    try:
        lab.add_underlay(attach=attach)
        names = {ip: f"I'm {c['service']}.{i + 1} on {node} ({ip})"
                 for i, (ip, node) in enumerate(c['tasks'])}
        lab.start_servers(workdir, names)
    except Exception:
        lab.destroy()
        raise
    with open(state_path, 'w') as f:
        json.dump(lab.state(), f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('command', choices=['up', 'down'])
    p.add_argument('--state', default='/run/meshgate-demo-lab.json')
    p.add_argument('--attach', default='mg-underlay', help="the gateway's underlay interface")
    p.add_argument('--workdir', default='/run/meshgate-demo-lab')
    p.add_argument('--config', help='a meshgate config: its [[node]]s and its first service\'s '
                   'tasks are built', required=False)
    a = p.parse_args()
    if a.command == 'up':
        if not a.config:
            p.error('up needs --config')
        up(a.state, a.attach, a.workdir, a.config)
    else:
        down(a.state)


if __name__ == '__main__':
    sys.exit(main())
