#!/usr/bin/python3
"""meshgate gateways in the BGP lab (bgp_lab.py), for test_exception_path.py and test_cluster.py.

  router      bgp_lab's router namespace: bridge `seg` 10.77.0.1/24, FRR (ECMP), client behind it
  gateway-N   a namespace of its own; meshgate runs in it (`ip netns exec`) with
                ext      net_af_packet on eth0 (a veth into the router's `seg`), 10.77.0.1N/24,
                         gateway 10.77.0.1, kernel_interface TAP (unique name): the TAP carries
                         the port's address in this namespace, and the VIP /32 while served
                underlay net_af_packet on ul0 (a veth into mesh_lab's underlay bridge),
                         192.168.50.N/24, VTEP; [overlay] address 10.255.0.(1+N)
              both veths are hidden from the namespace's kernel (bgp_lab.kernel_blind), as NICs
              bound to DPDK are; FRR (zebra + bgpd) in the same namespace announces the VIP
              /32s it finds on the TAP (gateway_frr_config(interface=TAP))
  nodes/tasks mesh_lab's underlay: two nodes with kernel VXLAN, three tasks (HTTP on 8000 with
              "/" and the "/lines" echo), each node with Docker's peerAdd fdb entry for EVERY
              gateway's overlay MAC -> that gateway's VTEP, each task with a static neighbor for
              every gateway's overlay address (each gateway SNATs to its own)

meshgate's /metrics listens on 127.0.0.1 inside its namespace: scrape() reads it from a thread
that entered the namespace (setns), so the harness's Meshgate helpers work unchanged.
"""

import ctypes
import os
import subprocess
import sys
import textwrap
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bgp_lab  # noqa: E402
import harness  # noqa: E402
import mesh_lab  # noqa: E402

MESHGATECTL = os.environ.get('MESHGATECTL_BIN') or os.path.join(
    os.path.dirname(harness.MESHGATE_BIN), 'meshgatectl')

VIP = '10.99.0.5'
WEB_PORT = 8000
_CLONE_NEWNET = 0x40000000


def in_netns(ns, fn):
    """FN() run in a thread that entered network namespace NS; its result (or exception)."""
    out = {}

    def body():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f'/var/run/netns/{ns}', os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f'setns {ns}')
            finally:
                os.close(fd)
            out['value'] = fn()
        except BaseException as e:  # noqa: B902 - handed to the caller
            out['error'] = e

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if 'error' in out:
        raise out['error']
    return out['value']


class NsMeshgate(harness.Meshgate):
    """harness.Meshgate run in network namespace NS."""

    def __init__(self, ns, *args, **kw):
        super().__init__(*args, **kw)
        self.ns = ns

    def start(self):
        harness.ensure_hugepages()
        self._log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', self.ns, harness.MESHGATE_BIN, '--config', self.config_path,
             '--log-level', self.log_level],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def metrics(self):
        return in_netns(self.ns, lambda: harness.scrape(self.listen, timeout=30))

    def ctl(self, *args, timeout=180):
        """meshgatectl --file-prefix P ARGS (its telemetry socket is a path: any namespace)."""
        return subprocess.run([MESHGATECTL, '--file-prefix', self.file_prefix, *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)


UDP_PORT = 9000  # mesh_lab's servers answer UDP there too (name + what was sent)


def services_toml(tasks, vip=VIP, weights=None, udp=False):
    """The published service: VIP:8000 -> the tasks' 8000 (maglev); WEIGHTS maps a task address
    to its weight (default 1); an empty TASKS list leaves the service without tasks."""
    weights = weights or {}
    text = ''.join(f'[[node]]\nname = "{name}"\naddress = "{addr}"\n\n'
                   for name, addr in mesh_lab.NODES.items())
    text += (f'[[service]]\nname = "web"\naddress = "{vip}"\n'
             f'  [[service.port]]\n  protocol = "tcp"\n  published = {WEB_PORT}\n'
             f'  target = {WEB_PORT}\n')
    if udp:
        text += (f'  [[service.port]]\n  protocol = "udp"\n  published = {UDP_PORT}\n'
                 f'  target = {UDP_PORT}\n')
    text += ''.join(f'  [[service.task]]\n  address = "{ip}"\n  node = "{node}"\n'
                    f'  weight = {weights.get(ip, 1)}\n' for ip, node in tasks)
    return text


class Gateway:
    """One gateway namespace with its meshgate (and FRR once start_frr is called)."""

    def __init__(self, cluster, index, ns, tap):
        self.cluster, self.index, self.ns, self.tap = cluster, index, ns, tap
        self.address = f'10.77.0.{10 + index}'
        self.ext_mac = f'02:00:00:00:0a:{10 + index:02x}'
        self.vtep = f'192.168.50.{index}'
        self.und_mac = f'02:00:00:00:0b:{10 + index:02x}'
        self.overlay_ip = f'10.255.0.{1 + index}'
        self.overlay_mac = mesh_lab.task_mac(self.overlay_ip)
        self.mg = self.frr = None
        self.config_extra = None
        self.peers = []  # the other gateways of its [cluster]; none: no [cluster]
        self.cluster_options = ''  # more lines of its [cluster] table

    def config_text(self, services, limits='', extra=''):
        ports = [harness.port_toml('ext', harness.af_packet(0, 'eth0'), 'external',
                                   f'{self.address}/24', self.ext_mac,
                                   f'gateway = "{self.cluster.lab.router_address}"\n'
                                   f'kernel_interface = "{self.tap}"\n'),
                 harness.port_toml('underlay', harness.af_packet(1, 'ul0'), 'underlay',
                                   f'{self.vtep}/24', self.und_mac,
                                   f'kernel_interface = "{self.tap}u"\n' if self.peers else '')]
        if self.peers:  # a [cluster] with the other gateways (issue 16)
            extra += f'\n[cluster]\nname = "gw{self.index}"\n{self.cluster_options}' + ''.join(
                f'  [[cluster.peer]]\n  name = "gw{p.index}"\n  address = "{p.vtep}"\n'
                for p in self.peers)
        return harness.config_toml(self.prefix, ports, self.listen,
                                   overlay_address=f'{self.overlay_ip}/16', limits=limits,
                                   extra=services + extra)

    def start_meshgate(self, services, limits='', extra=''):
        self.prefix = harness.unique('mgq')
        self.listen = f'127.0.0.1:{harness.free_tcp_port()}'
        self.limits, self.extra = limits, extra
        workdir = os.path.join(self.cluster.workdir, f'gw{self.index}')
        os.makedirs(workdir, exist_ok=True)
        self.mg = NsMeshgate(self.ns, workdir, self.config_text(services, limits, extra),
                             self.prefix, self.listen)
        self.cluster.cleanups.append(self.mg.cleanup)
        self.mg.start()
        return self.mg.wait_ready(60)

    def reload(self, services):
        """Writes the config with SERVICES and reloads by meshgatectl; returns its output."""
        with open(self.mg.config_path, 'w') as f:
            f.write(self.config_text(services, self.limits, self.extra))
        p = self.mg.ctl('reload')
        if p.returncode != 0:
            raise AssertionError(f'meshgatectl reload exited {p.returncode}:\n{p.stdout}\n'
                                 + self.mg.log()[-4000:])
        return p.stdout

    def start_frr(self, bfd=False):
        """FRR in the gateway's namespace, peering over the TAP (with BFD, through it too)."""
        self.frr = self.cluster.lab.start_frr(self.ns, bgp_lab.gateway_frr_config(
            self.address, self.cluster.lab.router_address, interface=self.tap, bfd=bfd,
            timers=self.cluster.bfd_timers, hostname=self.ns), bfd=bfd)
        return self.frr

    def addresses(self):
        """The IPv4 addresses (a/len) on the TAP in the gateway's namespace."""
        p = mesh_lab.run(['ip', '-n', self.ns, '-o', '-4', 'addr', 'show', 'dev', self.tap],
                         check=False)
        if p.returncode != 0:
            return []
        return [line.split()[3] for line in p.stdout.splitlines() if len(line.split()) > 3]

    def tap_exists(self):
        return mesh_lab.run(['ip', '-n', self.ns, 'link', 'show', 'dev', self.tap],
                            check=False).returncode == 0

    def exec(self, cmd, **kw):
        return mesh_lab.Lab.exec(self.ns, cmd, **kw)


class Cluster:
    """The router with its client, the swarm underlay with its tasks, and gateways."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.lab = bgp_lab.BgpLab(harness.unique, workdir)
        self.cleanups = []
        self.gateways = []
        self.bfd_timers = bgp_lab.BFD_TIMERS
        self._spare_underlay = None

    def build(self, gateways=1, bfd=False, bfd_timers=bgp_lab.BFD_TIMERS):
        lab = self.lab
        self.bfd_timers = bfd_timers
        lab.add_router(bfd=bfd, timers=bfd_timers)
        # the swarm: bridge namespace, nodes, tasks (fdb/neighbor for gateway 1 by mesh_lab)
        first = Gateway(self, 1, None, None)
        lab.gateway_vtep, lab.overlay_ip, lab.overlay_mac = (first.vtep, first.overlay_ip,
                                                             first.overlay_mac)
        self._spare_underlay = lab.add_underlay()   # a root-side veth into br0: gateway 1's
        lab.start_servers(self.workdir)
        for i in range(1, gateways + 1):
            self.add_gateway(i)
        return self

    def add_gateway(self, index):
        lab = self.lab
        ns = lab.add_gateway_link('eth0')
        gw = Gateway(self, index, ns, harness.unique('mgk'))
        if index == 1:
            # mesh_lab made the underlay veth in the root namespace: move it here as ul0
            root_if = self._spare_underlay
            mesh_lab.run(['ip', 'link', 'set', root_if, 'down'])
            mesh_lab.run(['ip', 'link', 'set', root_if, 'netns', ns])
            lab.exec(ns, ['ip', 'link', 'set', root_if, 'name', 'ul0'])
            lab.quiet(ns, 'ul0')
            lab.exec(ns, ['ip', 'link', 'set', 'ul0', 'up'])
        else:
            lab.veth('ul0', ns, f'gw{index}', lab.bridge_ns)
            lab.exec(lab.bridge_ns, ['ip', 'link', 'set', f'gw{index}', 'master', 'br0'])
            for node_ns in lab.nodes.values():
                lab.exec(node_ns, ['bridge', 'fdb', 'append', gw.overlay_mac, 'dev', 'vxlan0',
                                   'dst', gw.vtep, 'self', 'permanent'])
            for task_ns in lab.tasks.values():
                lab.exec(task_ns, ['ip', 'neigh', 'add', gw.overlay_ip, 'lladdr',
                                   gw.overlay_mac, 'dev', 'eth0', 'nud', 'permanent'])
        # as NICs bound to DPDK: only meshgate (af_packet) sees what arrives there
        lab.kernel_blind(ns, 'eth0')
        lab.kernel_blind(ns, 'ul0')
        self.gateways.append(gw)
        return gw

    def destroy(self):
        for c in reversed(self.cleanups):
            try:
                c()
            except Exception as e:  # noqa: BLE001 - every cleanup runs
                print(f'cleanup: {e}', file=sys.stderr)
        self.lab.destroy()

    def diag(self):
        out = [f'router route {VIP}: {bgp_lab.kernel_route(self.lab.router, VIP + "/32")}',
               f'router peers: {self.lab.router_frr.bgp_peers()}']
        for gw in self.gateways:
            out.append(f'--- gateway {gw.index} ({gw.ns}) TAP {gw.addresses()}')
            if gw.frr:
                out.append(f'peers {gw.frr.bgp_peers()}')
            if gw.mg and gw.mg.proc and gw.mg.proc.poll() is None:
                try:
                    m = gw.mg.metrics()
                    out.append('\n'.join(line for line in m.text.splitlines()
                                         if line.startswith(('meshgate_drops_total',
                                                             'meshgate_exception',
                                                             'meshgate_connections_total',
                                                             'meshgate_draining',
                                                             'meshgate_address_announced'))))
                except Exception as e:  # noqa: BLE001
                    out.append(f'(no metrics: {e})')
            if gw.mg:
                out.append('log tail:\n' + gw.mg.log()[-3000:])
        return '\n'.join(out)


# --- clients ---------------------------------------------------------------------------------

MANY_CLIENT = textwrap.dedent('''\
    # N connections, C at a time, each GET / to the end; prints a JSON line:
    # {"ok": n, "errors": {error: count}, "tasks": {task: count}}
    import collections, json, sys
    from concurrent.futures import ThreadPoolExecutor
    from http_get import get
    host, port, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    def one(i):
        try:
            status, body = get(host, port)
            if b' 200 ' not in status or not body.startswith(b'task-'):
                return 'bad answer %r' % (status + b' ' + body)[:80], None
            return None, body.strip().decode()
        except Exception as e:
            return '%s: %s' % (type(e).__name__, e), None

    with ThreadPoolExecutor(c) as pool:
        results = list(pool.map(one, range(n)))
    print(json.dumps({'ok': sum(e is None for e, _ in results),
                      'errors': collections.Counter(e for e, _ in results if e is not None),
                      'tasks': collections.Counter(t for e, t in results if e is None)}))
    ''')


def many(lab, ns, host, port, n, concurrent=20, timeout=300):
    """N HTTP GETs from NS to HOST:PORT, CONCURRENT at a time: {'ok', 'errors', 'tasks'}."""
    import json
    script = os.path.join(lab.workdir, 'gateway_lab_many.py')
    if not os.path.exists(script):
        with open(script, 'w') as f:
            f.write(f'import sys\nsys.path.insert(0, {HERE!r})\n' + MANY_CLIENT)
    p = mesh_lab.run(['ip', 'netns', 'exec', ns, '/usr/bin/python3', script, host, str(port),
                      str(n), str(concurrent)], timeout=timeout)
    return json.loads(p.stdout.strip().splitlines()[-1])


def wait(predicate, what, timeout, interval=0.1, diag=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timeout ({timeout} s) waiting for {what}'
                                 + (f'\n{diag()}' if diag else ''))
        time.sleep(interval)
