#!/usr/bin/python3
"""A real one-node Docker swarm for end-to-end tests of meshgate, beside anything else:

  [ns NAMEd]  (own_netns, the default) the node: its own dockerd (vfs, no iptables, no bridge),
              eth0 = ADVERTISE (192.168.77.1/24), `docker swarm init`, an ingress network
              re-created with an --ip-range that leaves the gateway's overlay address out of IPAM
  root        NAME-ul, the veth twin of the node's eth0, up without an address: meshgate's
              underlay port (net_af_packet); NAME-ex, the twin of the client's eth0: meshgate's
              external port (add_client)
  [ns NAMEc]  the client (add_client), eth0 203.0.113.2/24

With own_netns=False dockerd runs in the root namespace and NAME-ul's twin NAME-nd there holds
the node's address (a second swarm in the root namespace collides with this one's VXLAN sockets
when both use the same VNI, and shares docker_gwbridge: one lab at a time then).

Everything is named after NAME and lives under WORKDIR (data-root, exec-root, the socket, the
log). The image meshgate/busybox:1 is imported from busybox-static, no registry. Docker's own
routing mesh cannot serve the published ports here (the kernel has no IPVS); meshgate can, once
the node piece (scripts/deploy-node-piece.sh, deploy_node_piece()) has told the node where the
gateway's overlay address lives.

CLI: `swarm_lab.py up --state FILE [--name N] [--service web] ...` builds it and prints what a
meshgate config needs as JSON; `swarm_lab.py down --state FILE` removes it.
"""

import argparse
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

DOCKER = '/usr/bin/docker'     # Debian's docker.io client (20.10), not /usr/local/bin/docker
DOCKERD = '/usr/sbin/dockerd'
BUSYBOX = '/bin/busybox'       # busybox-static
IMAGE = 'meshgate/busybox:1'
APPLETS = ['sh', 'httpd', 'nc', 'sleep', 'hostname', 'cat', 'chroot', 'ls', 'echo', 'ip', 'ps',
           'wget', 'env', 'true', 'kill']
HERE = os.path.dirname(os.path.abspath(__file__))
# answers each request with its container's hostname (= the task's container id, 12 chars)
WEB_COMMAND = ['/bin/sh', '-c', 'hostname > /index.html; exec httpd -f -p 80 -h /']


def run(cmd, check=True, timeout=120, input=None, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, input=input, env=env)
    if check and p.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} exited {p.returncode}:\n{p.stdout}')
    return p


def overlay_mac(ip):
    """Docker's rule for a MAC on an overlay: 02:42 + the 4 address bytes."""
    return '02:42:' + ':'.join(f'{int(b):02x}' for b in ip.split('.'))


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__('localhost', timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class SwarmLab:
    """A dockerd of its own, a one-node swarm, the veths meshgate needs. Build with up();
    destroy() removes everything, even half-built; state()/from_state() let another process
    (the CLI's `down`) do it."""

    def __init__(self, name, workdir=None, subnet='192.168.77.0/24', ingress_subnet='10.0.0.0/24',
                 ingress_ip_range='10.0.0.0/25', ingress_gateway='10.0.0.1',
                 gateway_overlay='10.0.0.200', vni=None, own_netns=True, tls_api=None):
        assert len(name) <= 10, 'NAME-ul must fit in an interface name'
        self.params = dict(subnet=subnet, ingress_subnet=ingress_subnet,
                           ingress_ip_range=ingress_ip_range, ingress_gateway=ingress_gateway,
                           gateway_overlay=gateway_overlay, vni=vni, own_netns=own_netns)
        self.name = name
        self.workdir = workdir or f'/tmp/swarm-lab-{name}'
        net = ipaddress.ip_network(subnet)
        self.prefixlen = net.prefixlen
        self.advertise = str(net.network_address + 1)    # the node's address (its VTEP)
        self.gateway_vtep = str(net.network_address + 2)  # for meshgate's underlay port
        self.ingress_subnet, self.ingress_ip_range = ingress_subnet, ingress_ip_range
        self.ingress_gateway = ingress_gateway
        self.gateway_overlay = gateway_overlay
        self.gateway_overlay_prefixlen = ipaddress.ip_network(ingress_subnet).prefixlen
        self.vni_wanted = vni
        self.own_netns = own_netns
        self.node_ns = f'{name}d' if own_netns else None
        self.underlay_if = f'{name}-ul'
        self.node_if = 'eth0' if own_netns else f'{name}-nd'
        self.client_ns = None
        self.external_if = None
        self.namespaces, self.root_links = [], []
        self.dockerd = None        # Popen of our dockerd (None after a from_state())
        self.dockerd_pid = None
        self.services = []
        # TLS_API = 'A.B.C.D/30': a second veth (NAME-mg in root, mg0 in the node with the
        # first address) on which dockerd also answers tcp://FIRST:2376 with --tlsverify
        self.tls_api = tls_api
        assert not tls_api or own_netns, 'the TCP API is on a veth into the node namespace'

    # --- paths -----------------------------------------------------------------------------

    @property
    def socket(self):
        return os.path.join(self.workdir, 'docker.sock')

    @property
    def host(self):
        return 'unix://' + self.socket

    @property
    def exec_root(self):
        return os.path.join(self.workdir, 'exec')

    @property
    def data_root(self):
        return os.path.join(self.workdir, 'data')

    @property
    def log_path(self):
        return os.path.join(self.workdir, 'dockerd.log')

    # --- commands --------------------------------------------------------------------------

    def docker(self, *args, check=True, timeout=120, input=None):
        return run([DOCKER, '-H', self.host, *args], check=check, timeout=timeout, input=input)

    def api(self, path, query=None, method='GET', body=None):
        """The Engine API over the socket: the decoded JSON answer (None when empty)."""
        if query:
            path += '?' + urllib.parse.urlencode(
                {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in query.items()})
        c = _UnixHTTPConnection(self.socket)
        try:
            headers = {'Content-Type': 'application/json'} if body is not None else {}
            c.request(method, '/v1.41' + path,
                      body=json.dumps(body) if body is not None else None, headers=headers)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        if r.status >= 300:
            raise RuntimeError(f'{method} {path}: {r.status} {data.decode(errors="replace")}')
        return json.loads(data) if data else None

    def node_exec(self, cmd, check=True):
        """A command in the node's network namespace (where dockerd runs)."""
        if self.node_ns:
            cmd = ['ip', 'netns', 'exec', self.node_ns, *cmd]
        return run(cmd, check=check)

    def in_ingress(self, cmd, check=True):
        """A command in the ingress network's namespace (vxlan0, br0), e.g. ['ip', 'neigh']."""
        return run(['nsenter', f'--net={self.ingress_namespace()}', *cmd], check=check)

    # --- building --------------------------------------------------------------------------

    def _netns(self, ns):
        run(['ip', 'netns', 'add', ns])
        self.namespaces.append(ns)
        run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
        for key in ('all', 'default'):
            run(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w',
                 f'net.ipv6.conf.{key}.disable_ipv6=1'], check=False)

    @staticmethod
    def _quiet(ns, iface):
        """No offloads on a veth facing an af_packet port (complete checksums, MTU-sized
        frames), no IPv6, up."""
        pre = ['ip', 'netns', 'exec', ns] if ns else []
        run(pre + ['ethtool', '-K', iface, 'rx', 'off', 'tx', 'off', 'tso', 'off', 'gso', 'off'],
            check=False)
        run(pre + ['sysctl', '-q', '-w', f'net.ipv6.conf.{iface}.disable_ipv6=1'], check=False)
        run(pre + ['ip', 'link', 'set', iface, 'up'])

    def _veth(self, a, b, b_ns):
        """Veth A in the root namespace, its twin B in B_NS (None: root)."""
        cmd = ['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]
        if b_ns:
            cmd += ['netns', b_ns]
        run(cmd)
        self.root_links.append(a)
        self._quiet(None, a)
        self._quiet(b_ns, b)

    def up(self, image=True):
        """The node, its dockerd, the swarm, the re-created ingress network, the image."""
        try:
            os.makedirs(self.workdir, exist_ok=True)
            if self.own_netns:
                self._netns(self.node_ns)
            self._veth(self.underlay_if, self.node_if, self.node_ns)
            self.node_exec(['ip', 'addr', 'add', f'{self.advertise}/{self.prefixlen}',
                            'dev', self.node_if])
            if self.tls_api:
                self._tls_setup()
            self.start_dockerd()
            self.docker('swarm', 'init', '--advertise-addr', self.advertise)
            self.recreate_ingress()
            if image:
                self.import_image()
        except Exception:
            self.destroy()
            raise
        return self

    # --- the TCP API with TLS (tls_api) ----------------------------------------------------

    @property
    def tls_dir(self):
        return os.path.join(self.workdir, 'tls')

    @property
    def tls_endpoint(self):
        """tcp://ADDRESS:2376, where dockerd checks client certificates against ca.pem."""
        return f'tcp://{ipaddress.ip_interface(self.tls_api).ip}:2376'

    def tls_file(self, name):
        """ca.pem, cert.pem, key.pem (the client's), other-ca.pem (a CA that signed nothing)."""
        return os.path.join(self.tls_dir, name)

    def _tls_setup(self):
        """The management veth, and a CA that signs the daemon's certificate (for its address)
        and a client's, as Docker's "Protect the Docker daemon socket" page makes them."""
        server = ipaddress.ip_interface(self.tls_api)
        client = ipaddress.ip_interface(f'{server.ip + 1}/{server.network.prefixlen}')
        self._veth(f'{self.name}-mg', 'mg0', self.node_ns)
        self.node_exec(['ip', 'addr', 'add', str(server), 'dev', 'mg0'])
        run(['ip', 'addr', 'add', str(client), 'dev', f'{self.name}-mg'])
        os.makedirs(self.tls_dir, exist_ok=True)
        d = self.tls_dir
        ssl = ['openssl']
        for ca in ('ca', 'other-ca'):
            run(ssl + ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                       '-subj', f'/CN=meshgate test {ca}', '-keyout', f'{d}/{ca}-key.pem',
                       '-out', f'{d}/{ca}.pem'])
        for who, ext in (('server', f'subjectAltName=IP:{server.ip}\nextendedKeyUsage=serverAuth'),
                         ('client', 'extendedKeyUsage=clientAuth')):
            run(ssl + ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', f'/CN={who}',
                       '-keyout', f'{d}/{who}-key.pem', '-out', f'{d}/{who}.csr'])
            with open(f'{d}/{who}.ext', 'w') as f:
                f.write(ext + '\n')
            run(ssl + ['x509', '-req', '-days', '2', '-in', f'{d}/{who}.csr', '-CA', f'{d}/ca.pem',
                       '-CAkey', f'{d}/ca-key.pem', '-CAcreateserial', '-extfile', f'{d}/{who}.ext',
                       '-out', f'{d}/{who}-cert.pem'])
        shutil.copy(f'{d}/client-cert.pem', f'{d}/cert.pem')
        shutil.copy(f'{d}/client-key.pem', f'{d}/key.pem')

    def dockerd_command(self):
        cmd = [DOCKERD, '--iptables=false', '--ip-masq=false', '--bridge=none',
               '--storage-driver=vfs', '--data-root', self.data_root, '--exec-root', self.exec_root,
               '-H', self.host, '--pidfile', os.path.join(self.workdir, 'docker.pid')]
        if self.tls_api:
            d = self.tls_dir
            cmd += ['-H', self.tls_endpoint, '--tlsverify', '--tlscacert', f'{d}/ca.pem',
                    '--tlscert', f'{d}/server-cert.pem', '--tlskey', f'{d}/server-key.pem']
        if self.node_ns:
            # nsenter, not `ip netns exec`: the latter gives dockerd a mount namespace of its own
            # and its netns bind mounts under exec-root would be invisible from here
            cmd = ['nsenter', f'--net=/run/netns/{self.node_ns}', '--', *cmd]
        return cmd

    def start_dockerd(self, timeout=60):
        log = open(self.log_path, 'a')
        self.dockerd = subprocess.Popen(self.dockerd_command(), stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        self.dockerd_pid = self.dockerd.pid  # nsenter execs dockerd: the same pid
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.dockerd.poll() is not None:
                raise RuntimeError(f'dockerd exited {self.dockerd.returncode}:\n{self.log()}')
            if time.monotonic() > deadline:
                raise RuntimeError(f'dockerd not answering after {timeout} s:\n{self.log()}')
            time.sleep(0.2)

    def _answers(self):
        """Does dockerd answer `docker info`? (A dockerd restoring after a crash holds the
        request until it is done.)"""
        try:
            return self.docker('info', check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def log(self, tail=40):
        try:
            with open(self.log_path, errors='replace') as f:
                return ''.join(f.readlines()[-tail:])
        except OSError:
            return ''

    def stop_dockerd(self, timeout=30):
        """SIGTERM, wait (dockerd stops its containers: up to their stop grace period), then
        SIGKILL; then whatever of its containerd and shims is left (by pid, found under our
        exec-root)."""
        pid = self.dockerd_pid
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pid = None
        deadline = time.monotonic() + timeout
        while pid and _alive(pid, self.dockerd):
            if time.monotonic() > deadline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    break
            time.sleep(0.1)
        if self.dockerd:
            self.dockerd.wait()
        self.dockerd, self.dockerd_pid = None, None
        for leftover in self._our_processes():
            try:
                os.kill(leftover, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _our_processes(self):
        """Pids of processes started for our dockerd: containerd and its shims, which name our
        exec-root (unique to this lab) on their command line."""
        mine = []
        needle = (self.exec_root + '/').encode()
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open(f'/proc/{entry}/cmdline', 'rb') as f:
                    argv = f.read().split(b'\0')
            except OSError:
                continue
            if os.path.basename(argv[0]).startswith(b'containerd') and needle in b' '.join(argv):
                mine.append(int(entry))
        return mine

    def crash_dockerd(self):
        """SIGKILL dockerd alone, as a crash would: its containerd and the tasks' shims go on,
        and so do the tasks, until a new dockerd restores (and, without live-restore, which
        swarm mode refuses, replaces) them."""
        if self.dockerd_pid:
            try:
                os.kill(self.dockerd_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.dockerd:
            self.dockerd.wait()
        self.dockerd, self.dockerd_pid = None, None

    def restart(self, timeout=60):
        """Stops dockerd and starts it again on the same directories; returns when the swarm
        is active again (tasks come back after, see wait_tasks)."""
        self.stop_dockerd()
        self.start_dockerd()
        self.wait_swarm_active(timeout)

    def wait_swarm_active(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            info = self.docker('info', '-f', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}',
                               check=False)
            if info.returncode == 0 and info.stdout.split()[:2] == ['active', 'true']:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f'swarm not active after {timeout} s: {info.stdout}')
            time.sleep(0.2)

    def recreate_ingress(self, timeout=30):
        """`docker network rm ingress` (it asks), wait until it is gone (creating it again
        before fails with 'already exists'), create it with our subnet and ip range."""
        self.docker('network', 'rm', 'ingress', input='y\n')
        deadline = time.monotonic() + timeout
        while 'ingress' in self.docker('network', 'ls', '--format', '{{.Name}}').stdout.split():
            if time.monotonic() > deadline:
                raise RuntimeError('the ingress network is not going away')
            time.sleep(0.2)
        cmd = ['network', 'create', '--driver', 'overlay', '--ingress',
               '--subnet', self.ingress_subnet, '--ip-range', self.ingress_ip_range,
               '--gateway', self.ingress_gateway]
        if self.vni_wanted:
            cmd += ['--opt', f'com.docker.network.driver.overlay.vxlanid_list={self.vni_wanted}']
        self.docker(*cmd, 'ingress')

    def import_image(self):
        """IMAGE from busybox-static: /bin/busybox and a symlink per applet."""
        tmp = tempfile.mkdtemp(dir=self.workdir)
        try:
            os.makedirs(os.path.join(tmp, 'root', 'bin'))
            os.makedirs(os.path.join(tmp, 'root', 'tmp'))
            shutil.copy(BUSYBOX, os.path.join(tmp, 'root', 'bin', 'busybox'))
            for applet in APPLETS:
                os.symlink('busybox', os.path.join(tmp, 'root', 'bin', applet))
            tar = os.path.join(tmp, 'image.tar')
            run(['tar', '-C', os.path.join(tmp, 'root'), '-cf', tar, '.'])
            self.docker('import', tar, IMAGE)
        finally:
            shutil.rmtree(tmp)

    def add_client(self, address='203.0.113.2/24'):
        """A client namespace; returns the root-side veth for meshgate's external port."""
        self.client_ns = f'{self.name}c'
        self._netns(self.client_ns)
        self.external_if = f'{self.name}-ex'
        self._veth(self.external_if, 'eth0', self.client_ns)
        run(['ip', '-n', self.client_ns, 'addr', 'add', address, 'dev', 'eth0'])
        return self.external_if

    def client(self, cmd, check=True, timeout=60):
        return run(['ip', 'netns', 'exec', self.client_ns, *cmd], check=check, timeout=timeout)

    # --- the ingress network ---------------------------------------------------------------

    def ingress(self):
        return self.api('/networks/ingress')

    def network_id(self):
        return self.ingress()['Id']

    def vni(self):
        """The VNI Docker gave the ingress network."""
        opts = self.ingress().get('Options') or {}
        return int(opts['com.docker.network.driver.overlay.vxlanid_list'].split(',')[0])

    def ingress_namespace(self):
        """Where the ingress network's vxlan0 and br0 live (once a task or the ingress
        sandbox joined it on this node)."""
        return os.path.join(self.exec_root, 'netns', '1-' + self.network_id()[:10])

    def node_id(self):
        return self.docker('info', '-f', '{{.Swarm.NodeID}}').stdout.strip()

    # --- services --------------------------------------------------------------------------

    def create_service(self, name, published=8000, target=80, replicas=3, command=None,
                       protocol='tcp', extra=()):
        """A replicated service (default: the busybox httpd answering its container id)
        publishing PUBLISHED -> TARGET on the ingress network; returns at once (wait_tasks)."""
        publish = f'published={published},target={target},protocol={protocol}'
        self.docker('service', 'create', '-d', '--quiet', '--no-resolve-image', '--name', name,
                    '--publish', publish, '--replicas', str(replicas),
                    '--stop-grace-period', '1s', *extra, IMAGE, *(command or WEB_COMMAND))
        self.services.append(name)

    def scale(self, name, replicas):
        self.docker('service', 'scale', '-d', f'{name}={replicas}')

    def publish_add(self, name, published, target, protocol='tcp'):
        self.docker('service', 'update', '-d', '--publish-add',
                    f'published={published},target={target},protocol={protocol}', name)

    def wait_update(self, name, timeout=60):
        """Waits until the last `service update` of NAME (publish_add, an image...) completed;
        the tasks it replaced have new addresses."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.api(f'/services/{name}').get('UpdateStatus') or {}
            if status.get('State') in (None, 'completed'):
                return
            if status.get('State') in ('paused', 'rollback_completed', 'rollback_paused'):
                raise RuntimeError(f'{name}: update {status}')
            if time.monotonic() > deadline:
                raise RuntimeError(f'{name}: update not done after {timeout} s: {status}')
            time.sleep(0.3)

    def remove_service(self, name):
        self.docker('service', 'rm', name, check=False)
        if name in self.services:
            self.services.remove(name)

    def tasks(self, service):
        """The running tasks of SERVICE: [{id, slot, container, hostname, address, node}] with
        the task's ingress address (no prefix) and its container's hostname (what the default
        command answers), sorted by slot."""
        network = self.network_id()
        out = []
        for t in self.api('/tasks', {'filters': {'service': [service],
                                                 'desired-state': ['running']}}):
            if t['Status']['State'] != 'running':
                continue
            address = None
            for a in t.get('NetworksAttachments') or []:
                if a['Network']['ID'] == network and a.get('Addresses'):
                    address = a['Addresses'][0].split('/')[0]
            container = t['Status'].get('ContainerStatus', {}).get('ContainerID', '')
            out.append(dict(id=t['ID'], slot=t.get('Slot'), container=container,
                            hostname=container[:12], address=address, node=t['NodeID']))
        return sorted(out, key=lambda t: (t['slot'] or 0, t['id']))

    def wait_tasks(self, service, count, timeout=60):
        """Waits until SERVICE has exactly COUNT running tasks with an ingress address."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.tasks(service)
            if len(tasks) == count and all(t['address'] for t in tasks):
                return tasks
            if time.monotonic() > deadline:
                raise RuntimeError(f'{service}: {len(tasks)} running tasks, not {count}, after '
                                   f'{timeout} s:\n'
                                   + self.docker('service', 'ps', '--no-trunc', service,
                                                 check=False).stdout)
            time.sleep(0.3)

    # --- the node piece and meshgate -------------------------------------------------------

    def deploy_node_piece(self, name='meshgate-node', gateway_address=None, gateway_vtep=None,
                          mac=None):
        """scripts/deploy-node-piece.sh against this swarm (our exec-root)."""
        cmd = [os.path.join(HERE, 'deploy-node-piece.sh'), '--name', name,
               '--exec-root', self.exec_root]
        if mac:
            cmd += ['--mac', mac]
        cmd += [gateway_address or self.gateway_overlay, gateway_vtep or self.gateway_vtep]
        env = dict(os.environ, DOCKER=DOCKER, DOCKER_HOST=self.host)
        run(cmd, env=env)
        self.services.append(name)

    def gateway_entries(self, mac=None):
        """Are the node piece's neighbor and FDB entries for the gateway in the ingress
        namespace? (False when the namespace is not there.)"""
        mac = (mac or overlay_mac(self.gateway_overlay)).lower()
        try:
            neigh = self.in_ingress(['ip', 'neigh', 'show', self.gateway_overlay, 'dev', 'vxlan0'],
                                    check=False).stdout.lower()
            fdb = self.in_ingress(['bridge', 'fdb', 'show', 'dev', 'vxlan0'], check=False).stdout
        except (RuntimeError, KeyError):
            return False
        return (f'lladdr {mac}' in neigh and 'permanent' in neigh and
                any(line.startswith(f'{mac} dst {self.gateway_vtep} ') and 'self permanent' in line
                    for line in fdb.lower().splitlines()))

    def wait_gateway_entries(self, timeout=30):
        deadline = time.monotonic() + timeout
        while not self.gateway_entries():
            if time.monotonic() > deadline:
                raise RuntimeError(f'no gateway entries in {self.ingress_namespace()} after '
                                   f'{timeout} s')
            time.sleep(0.2)
        return time.monotonic()

    def meshgate_config(self, services, file_prefix, stats_listen, external_device,
                        external_address='203.0.113.10/24', underlay_device=None,
                        lcores='0-1', memory_mb=256, connections=65536, scheduler='rr'):
        """A static meshgate config for this swarm: SERVICES maps a service name to
        [(protocol, published, target)]; its tasks are today's running ones."""
        node = self.node_id()
        underlay_device = underlay_device or f'net_af_packet1,iface={self.underlay_if}'
        lines = [
            '[dpdk]', f'lcores = "{lcores}"', f'memory_mb = {memory_mb}',
            f'file_prefix = "{file_prefix}"', '',
            '[[port]]', 'name = "ext"', f'device = "{external_device}"', 'role = "external"',
            f'address = "{external_address}"', '',
            '[[port]]', 'name = "underlay"', f'device = "{underlay_device}"', 'role = "underlay"',
            f'address = "{self.gateway_vtep}/{self.prefixlen}"', '',
            '[overlay]', f'vni = {self.vni()}',
            f'address = "{self.gateway_overlay}/{self.gateway_overlay_prefixlen}"', '',
            '[[node]]', f'name = "{node}"', f'address = "{self.advertise}"', '',
            '[limits]', f'connections = {connections}', '',
        ]
        for service, ports in services.items():
            lines += ['[[service]]', f'name = "{service}"', f'scheduler = "{scheduler}"']
            for protocol, published, target in ports:
                lines += ['  [[service.port]]', f'  protocol = "{protocol}"',
                          f'  published = {published}', f'  target = {target}']
            for t in self.tasks(service):
                lines += ['  [[service.task]]', f'  address = "{t["address"]}"',
                          f'  node = "{node}"']
            lines.append('')
        lines += ['[stats]', f'listen = "{stats_listen}"', '']
        return '\n'.join(lines)

    # --- teardown --------------------------------------------------------------------------

    def destroy(self):
        """Leaves the swarm, stops dockerd, unmounts and removes WORKDIR, deletes the
        namespaces and veths. Safe on a half-built lab and twice."""
        if self.dockerd_pid and _alive(self.dockerd_pid, self.dockerd):
            for service in list(self.services):
                self.docker('service', 'rm', service, check=False, timeout=30)
            self.docker('swarm', 'leave', '--force', check=False, timeout=60)
        self.stop_dockerd()
        self._unmount_all()
        if os.path.isdir(self.workdir):
            subprocess.run(['rm', '-rf', '--one-file-system', self.workdir], check=False)
        for ns in self.namespaces:
            subprocess.run(['ip', 'netns', 'del', ns], stderr=subprocess.DEVNULL)
        for iface in self.root_links:
            subprocess.run(['ip', 'link', 'del', iface], stderr=subprocess.DEVNULL)
        self.namespaces, self.root_links = [], []

    def _unmount_all(self):
        prefix = os.path.realpath(self.workdir) + '/'
        with open('/proc/self/mountinfo') as f:
            points = [line.split()[4] for line in f]
        for point in reversed(points):
            if (point + '/').startswith(prefix):
                subprocess.run(['umount', '-l', point], stderr=subprocess.DEVNULL)

    def state(self):
        return dict(name=self.name, workdir=self.workdir, params=self.params,
                    namespaces=self.namespaces, root_links=self.root_links,
                    dockerd_pid=self.dockerd_pid, services=self.services,
                    client_ns=self.client_ns, external_if=self.external_if)

    @classmethod
    def from_state(cls, state):
        """The lab a state() describes, e.g. to destroy() it from another process."""
        lab = cls(state['name'], state['workdir'], **state['params'])
        lab.namespaces, lab.root_links = state['namespaces'], state['root_links']
        lab.dockerd_pid, lab.services = state['dockerd_pid'], state['services']
        lab.client_ns, lab.external_if = state['client_ns'], state['external_if']
        return lab

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()


def _alive(pid, popen=None):
    if popen is not None:
        return popen.poll() is None
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ')[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


# --- the command line ----------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('command', choices=['up', 'down'])
    p.add_argument('--state', default='/run/meshgate-swarm-lab.json')
    p.add_argument('--name', default='mgswarm')
    p.add_argument('--workdir')
    p.add_argument('--subnet', default='192.168.77.0/24', help='the underlay: node .1, gateway .2')
    p.add_argument('--ingress-subnet', default='10.0.0.0/24')
    p.add_argument('--ingress-ip-range', default='10.0.0.0/25')
    p.add_argument('--ingress-gateway', default='10.0.0.1')
    p.add_argument('--gateway-overlay', default='10.0.0.200')
    p.add_argument('--vni', type=int, help="the ingress network's VNI (default: Docker's choice)")
    p.add_argument('--root-netns', action='store_true', help='run dockerd in the root namespace')
    p.add_argument('--client', action='store_true', help='add a client namespace')
    p.add_argument('--service', help='create this service (busybox httpd, 8000 -> 80)')
    p.add_argument('--replicas', type=int, default=3)
    p.add_argument('--node-piece', action='store_true', help='deploy scripts/deploy-node-piece.sh')
    a = p.parse_args()
    if a.command == 'down':
        if os.path.exists(a.state):
            with open(a.state) as f:
                SwarmLab.from_state(json.load(f)).destroy()
            os.unlink(a.state)
        return 0
    if os.path.exists(a.state):
        p.error(f'{a.state} exists: run down first')
    lab = SwarmLab(a.name, a.workdir, a.subnet, a.ingress_subnet, a.ingress_ip_range,
                   a.ingress_gateway, a.gateway_overlay, a.vni, own_netns=not a.root_netns)
    lab.up()
    try:
        if a.client:
            lab.add_client()
        if a.service:
            lab.create_service(a.service, replicas=a.replicas)
            lab.wait_tasks(a.service, a.replicas)
        if a.node_piece:
            lab.deploy_node_piece()
            lab.wait_gateway_entries()
    except Exception:
        lab.destroy()
        raise
    with open(a.state, 'w') as f:
        json.dump(lab.state(), f)
    # the dockerd outlives us: the state file has its pid
    info = dict(docker_host=lab.host, exec_root=lab.exec_root, underlay_if=lab.underlay_if,
                external_if=lab.external_if, client_ns=lab.client_ns, node=lab.node_id(),
                node_address=lab.advertise, gateway_vtep=lab.gateway_vtep,
                gateway_overlay=lab.gateway_overlay, vni=lab.vni(), network_id=lab.network_id(),
                ingress_namespace=lab.ingress_namespace(),
                tasks=lab.tasks(a.service) if a.service else [])
    print(json.dumps(info, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
