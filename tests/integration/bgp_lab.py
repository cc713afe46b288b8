#!/usr/bin/python3
"""Gateways behind an ECMP router, with real BGP daemons, in network namespaces (issue 15).

  router      namespace R: a bridge `seg` holding the router's address on the gateways' segment
              (default 10.77.0.1/24), a veth `cl` to the client, IP forwarding, L4 multipath
              hashing (fib_multipath_hash_policy=1), FRR (zebra + bgpd [+ bfdd]) accepting eBGP
              from any address of the segment (`bgp listen range`), maximum-paths 8, plain
              multipath kernel routes (`no zebra nexthop kernel enable`)
  client      namespace with eth0 198.51.100.2/24, default route through the router
  gateway     namespace with eth0 on the segment (a veth whose other end is in the router's
              bridge). Either a plain kernel gateway (add_kernel_gateway: the address on eth0,
              VIPs as /32 on lo, its own FRR or BIRD announcing them) or, for meshgate's tests,
              just the link (add_gateway_link): meshgate takes eth0 with net_af_packet,
              kernel_blind() hides eth0 from the kernel, meshgate's TAP (kernel_interface)
              carries the address, and start_frr/start_bird run the gateway's daemon there.

Each FRR instance has its own pathspace (-N NAME: /var/run/frr/NAME, /etc/frr/NAME), so that
vtysh -N NAME reaches it and nothing meets the system's FRR, if one runs. Daemons run in the
foreground as our children (no -d), so a test's Popen objects, and harness._on_sigterm's
cleanup after meson's timeout, know them. BgpLab.destroy() kills them and removes their
namespaces, interfaces and directories, even half-built.

`python3 tests/integration/bgp_lab.py --selftest` runs test_bgp_lab.py's checks.
"""

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402  (adds scripts/ to sys.path)
import mesh_lab  # noqa: E402

FRR_LIB = '/usr/lib/frr'
FRR_RUN = '/var/run/frr'
FRR_ETC = '/etc/frr'
BIRD = shutil.which('bird') or '/usr/sbin/bird'
BIRDC = shutil.which('birdc') or '/usr/sbin/birdc'

ROUTER_ASN = 65000
GATEWAY_ASN = 65001
SEGMENT = '10.77.0.1/24'          # the router's address on the gateways' segment
CLIENT_SIDE = '198.51.100.1/24'   # the router's address towards the client
CLIENT = '198.51.100.2/24'
VIP_RANGE = '10.99.0.0/24'        # the published addresses: only /32s in it are announced
BFD_TIMERS = (300, 300, 3)        # receive ms, transmit ms, multiplier


def have_frr():
    return all(os.access(os.path.join(FRR_LIB, d), os.X_OK) for d in ('zebra', 'bgpd'))


def have_bird():
    return os.access(BIRD, os.X_OK) and os.access(BIRDC, os.X_OK)


# --- configuration text ---------------------------------------------------------------------

def _bfd_profile(timers):
    rx, tx, mult = timers
    return (f'bfd\n profile fast\n  receive-interval {rx}\n  transmit-interval {tx}\n'
            f'  detect-multiplier {mult}\n!\n')


def router_frr_config(router_id, listen_range, asn=ROUTER_ASN, bfd=False, timers=BFD_TIMERS,
                      hostname='router'):
    """The ECMP router: eBGP from any address of LISTEN_RANGE (peer-group GW, any AS), up to 8
    equal paths installed as one multipath kernel route. Without kernel nexthop groups: FRR
    8.4's router that loses a next hop and gets it back keeps one in the kernel while its RIB
    has two; plain multipath routes do not. multipath-relax: gateways may use different ASes."""
    return (f'frr version 8.4\nfrr defaults datacenter\nhostname {hostname}\n'
            f'no zebra nexthop kernel enable\n!\n'
            + (_bfd_profile(timers) if bfd else '') +
            f'router bgp {asn}\n'
            f' bgp router-id {router_id}\n'
            f' no bgp ebgp-requires-policy\n'
            f' bgp bestpath as-path multipath-relax\n'
            f' neighbor GW peer-group\n'
            f' neighbor GW remote-as external\n'
            + (' neighbor GW bfd profile fast\n' if bfd else '') +
            f' bgp listen range {listen_range} peer-group GW\n'
            f' address-family ipv4 unicast\n'
            f'  maximum-paths 8\n'
            f' exit-address-family\n'
            f'!\n')


def gateway_frr_config(router_id, router_address, vip_range=VIP_RANGE, interface=None,
                       asn=GATEWAY_ASN, router_asn=ROUTER_ASN, bfd=False, timers=BFD_TIMERS,
                       networks=(), hostname='gateway'):
    """A gateway host: announces the connected /32s in VIP_RANGE (on INTERFACE only, if given:
    meshgate's kernel_interface), never its segment's prefix, and takes no route from the
    router. NETWORKS: `network A/32` statements instead (announced while the /32 exists:
    import-check, on under `frr defaults datacenter`). Origin IGP whatever the source, as
    BIRD's and `network`'s routes have: the router's best path compares origin before it
    takes equal paths, so a redistributed route (origin incomplete) next to a BIRD gateway's
    would never be a second next hop."""
    text = (f'frr version 8.4\nfrr defaults datacenter\nhostname {hostname}\n!\n'
            + (_bfd_profile(timers) if bfd else '') +
            f'ip prefix-list VIPS seq 5 permit {vip_range} ge 32\n!\n'
            f'route-map VIPS permit 10\n match ip address prefix-list VIPS\n'
            + (f' match interface {interface}\n' if interface else '') +
            f'!\n'
            f'route-map VIPS-OUT permit 10\n match ip address prefix-list VIPS\n set origin igp\n!\n'
            f'route-map NONE deny 10\n!\n'
            f'router bgp {asn}\n'
            f' bgp router-id {router_id}\n'
            f' neighbor {router_address} remote-as {router_asn}\n'
            + (f' neighbor {router_address} bfd profile fast\n' if bfd else '') +
            f' address-family ipv4 unicast\n'
            + (''.join(f'  network {n}\n' for n in networks) if networks
               else '  redistribute connected route-map VIPS\n') +
            f'  neighbor {router_address} route-map NONE in\n'
            f'  neighbor {router_address} route-map VIPS-OUT out\n'
            f' exit-address-family\n'
            f'!\n')
    return text


def gateway_bird_config(router_id, router_address, vip_range=VIP_RANGE, interface='lo',
                        asn=GATEWAY_ASN, router_asn=ROUTER_ASN, bfd=False, timers=BFD_TIMERS):
    """The same gateway with BIRD 2: `protocol direct` on INTERFACE only, an export filter for
    the /32s in VIP_RANGE, nothing imported. FRR's datacenter timers (hold 9 s, keepalive 3 s,
    connect retry 10 s) instead of BIRD's defaults (240, 80, 120): the router only listens, so
    a gateway that lost its session comes back when it retries, and after an error (BFD down)
    BIRD waits `error wait time` (default 60 s) before it does."""
    rx, tx, mult = timers
    return (f'router id {router_id};\n'
            f'protocol device {{ scan time 10; }}\n'
            f'protocol direct vips {{\n  ipv4;\n  interface "{interface}";\n}}\n'
            f'filter vips_out {{\n  if net ~ [ {vip_range}{{32,32}} ] then accept;\n  reject;\n}}\n'
            + (f'protocol bfd {{\n  interface "*" {{\n    min rx interval {rx} ms;\n'
               f'    min tx interval {tx} ms;\n    multiplier {mult};\n  }};\n}}\n' if bfd else '') +
            f'protocol bgp uplink {{\n'
            f'  local as {asn};\n'
            f'  neighbor {router_address} as {router_asn};\n'
            f'  hold time 9;\n  keepalive time 3;\n  connect retry time 10;\n'
            f'  error wait time 5, 30;\n'
            + ('  bfd on;\n' if bfd else '') +
            f'  ipv4 {{ import none; export filter vips_out; }};\n'
            f'}}\n')


# --- daemons ---------------------------------------------------------------------------------


def tails(paths):
    """The last 6000 characters of each file of PATHS that exists, each under its name."""
    text = ''
    for path in paths:
        try:
            with open(path) as f:
                text += f'--- {path}\n' + f.read()[-6000:]
        except OSError:
            pass
    return text

class Frr:
    """One FRR instance in namespace NS: zebra, bgpd and, if BFD, bfdd, each reading CONFIG
    (written to /etc/frr/NAME/frr.conf with a log file line added), in the foreground."""

    def __init__(self, ns, name, config, workdir, bfd=False):
        self.ns, self.name, self.config, self.workdir, self.bfd = ns, name, config, workdir, bfd
        self.run_dir = os.path.join(FRR_RUN, name)
        self.etc_dir = os.path.join(FRR_ETC, name)
        self.conf = os.path.join(self.etc_dir, 'frr.conf')
        self.log_path = os.path.join(self.run_dir, 'frr.log')
        self.procs = {}

    def start(self, timeout=30):
        for d in (self.run_dir, self.etc_dir):
            os.makedirs(d, exist_ok=True)
            shutil.chown(d, 'frr', 'frr')
        with open(self.conf, 'w') as f:
            f.write(f'log file {self.log_path}\n' + self.config)
        shutil.chown(self.conf, 'frr', 'frr')
        # vtysh -N NAME reads /etc/frr/NAME/vtysh.conf if there is one; an empty one is quiet
        open(os.path.join(self.etc_dir, 'vtysh.conf'), 'a').close()
        daemons = ['zebra', 'bgpd'] + (['bfdd'] if self.bfd else [])
        for d in daemons:
            out = open(os.path.join(self.workdir, f'{self.name}-{d}.out'), 'w')
            cmd = ['ip', 'netns', 'exec', self.ns, os.path.join(FRR_LIB, d), '-N', self.name,
                   '-f', self.conf, '-i', os.path.join(self.run_dir, f'{d}.pid'),
                   '--vty_socket', self.run_dir]
            if d == 'zebra':
                cmd += ['-s', '90000000']
            self.procs[d] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            out.close()
            if d == 'zebra':   # bgpd and bfdd talk to zebra's zserv.api
                self._wait(lambda: os.path.exists(os.path.join(self.run_dir, 'zserv.api')),
                           timeout, 'zebra did not open zserv.api')
        self._wait(lambda: all(os.path.exists(os.path.join(self.run_dir, f'{d}.vty'))
                               for d in daemons), timeout, 'the daemons did not open their vty')
        return self

    def _wait(self, done, timeout, what):
        deadline = time.monotonic() + timeout
        while not done():
            for d, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f'FRR {self.name}: {d} exited {p.returncode}:\n{self.log()}')
            if time.monotonic() > deadline:
                raise RuntimeError(f'FRR {self.name}: {what}:\n{self.log()}')
            time.sleep(0.05)

    def log(self):
        return tails([self.log_path] + [os.path.join(self.workdir, f'{self.name}-{d}.out')
                                        for d in self.procs])

    def vtysh(self, *commands, check=True):
        cmd = ['vtysh', '-N', self.name]
        for c in commands:
            cmd += ['-c', c]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        if check and p.returncode != 0:
            raise RuntimeError(f'{" ".join(cmd)} exited {p.returncode}:\n{p.stdout}')
        return p.stdout

    def vtysh_json(self, command):
        return json.loads(self.vtysh(command))

    def running_config(self):
        return self.vtysh('show running-config')

    def bgp_peers(self):
        """{peer address: state} ('Established', 'Active', ...) of the default instance."""
        try:
            data = self.vtysh_json('show bgp ipv4 unicast summary json')
        except (RuntimeError, ValueError):
            return {}
        return {peer: v.get('state') for peer, v in data.get('peers', {}).items()}

    def bfd_peers(self):
        """{peer address: status} ('up', 'down', ...)."""
        try:
            return {p['peer']: p['status'] for p in self.vtysh_json('show bfd peers json')}
        except (RuntimeError, ValueError):
            return {}

    def wait_established(self, count=1, timeout=60):
        """Waits until COUNT BGP sessions are Established; returns the seconds it took."""
        started = time.monotonic()
        self._wait(lambda: sum(s == 'Established' for s in self.bgp_peers().values()) >= count,
                   timeout, f'{count} sessions not established: {self.bgp_peers()}')
        return time.monotonic() - started

    def running(self):
        return bool(self.procs) and all(p.poll() is None for p in self.procs.values())

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """SIGTERM (bgpd then sends a NOTIFICATION: its peers withdraw at once) or SIGKILL (a
        crash: its peers wait for the hold time, or for BFD). Waits until they exit."""
        for d in reversed(list(self.procs)):
            p = self.procs[d]
            if p.poll() is None:
                p.send_signal(sig)
        for p in self.procs.values():
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def cleanup(self):
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.etc_dir, ignore_errors=True)


class Bird:
    """One BIRD 2 instance in namespace NS with CONFIG, its control socket in WORKDIR."""

    def __init__(self, ns, name, config, workdir):
        self.ns, self.name, self.config = ns, name, config
        self.conf = os.path.join(workdir, f'{name}.conf')
        self.socket = os.path.join(workdir, f'{name}.ctl')
        self.out_path = os.path.join(workdir, f'{name}.out')
        self.proc = None

    def start(self, timeout=30):
        with open(self.conf, 'w') as f:
            f.write(f'log "{self.out_path}.log" all;\n' + self.config)
        out = open(self.out_path, 'w')
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', self.ns, BIRD, '-f', '-c', self.conf, '-s', self.socket,
             '-P', self.socket + '.pid'],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while self.birdc('show status', check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f'BIRD {self.name} did not start:\n{self.log()}')
            time.sleep(0.05)
        return self

    def log(self):
        return tails((self.out_path, self.out_path + '.log'))

    def birdc(self, command, check=True):
        p = subprocess.run([BIRDC, '-s', self.socket, command], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        if check and p.returncode != 0:
            raise RuntimeError(f'birdc {command} exited {p.returncode}:\n{p.stdout}')
        return p

    def protocols(self):
        """{protocol name: info} from `show protocols`: 'Established' for a BGP session up."""
        result = {}
        for line in self.birdc('show protocols', check=False).stdout.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0] not in ('BIRD', 'Name') and parts[3] in ('up', 'down', 'start'):
                result[parts[0]] = ' '.join(parts[5:]) or parts[3]
        return result

    def wait_established(self, protocol='uplink', timeout=60):
        started = time.monotonic()
        while self.protocols().get(protocol) != 'Established':
            if self.proc.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError(f'BIRD {self.name}: {protocol} not established: '
                                   f'{self.protocols()}\n{self.log()}')
            time.sleep(0.1)
        return time.monotonic() - started

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop(signal.SIGKILL)
        for path in (self.socket, self.socket + '.pid'):
            try:
                os.unlink(path)
            except OSError:
                pass


# --- kernel routes ---------------------------------------------------------------------------

def kernel_route(ns, prefix):
    """The kernel's route for PREFIX (exactly) in NS, as `ip -j route` gives it, or None."""
    out = mesh_lab.run(['ip', '-n', ns, '-j', 'route', 'show', 'exact', prefix]).stdout
    routes = json.loads(out or '[]')
    return routes[0] if routes else None


def next_hops(ns, prefix):
    """The sorted gateway addresses of NS's kernel route for PREFIX ([] if none)."""
    route = kernel_route(ns, prefix)
    if route is None:
        return []
    if 'nexthops' in route:
        return sorted(h['gateway'] for h in route['nexthops'] if 'gateway' in h)
    return [route['gateway']] if 'gateway' in route else []


def wait_next_hops(ns, prefix, want, timeout=30, interval=0.02):
    """Polls until NS's route for PREFIX has WANT next hops (a count, or the exact list of
    addresses); returns (next hops, seconds waited). Raises on timeout with what was there."""
    started = time.monotonic()
    while True:
        hops = next_hops(ns, prefix)
        if (len(hops) == want) if isinstance(want, int) else (hops == sorted(want)):
            return hops, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f'{ns}: route {prefix} has next hops {hops} after {timeout} s, '
                                 f'not {want}')
        time.sleep(interval)


# --- the lab ---------------------------------------------------------------------------------

class BgpLab(mesh_lab.Lab):
    """The router, its client and the gateways' links; NAME(prefix) gives each namespace or
    instance its unique name (harness.unique). destroy() undoes everything, even half-built."""

    def __init__(self, name, workdir):
        super().__init__(name)
        self.workdir = workdir
        self.daemons = []
        self.router = self.router_frr = self.client = None
        self.router_address = None
        self.gateways = {}          # gateway namespace -> its address on the segment
        self.links = {}             # gateway namespace -> its port in the router's bridge
        self._links = 0

    def netns(self, prefix):
        ns = super().netns(prefix)
        self.exec(ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0'])
        return ns

    def add_router(self, segment=SEGMENT, client_side=CLIENT_SIDE, client=CLIENT, asn=ROUTER_ASN,
                   bfd=False, timers=BFD_TIMERS, l4_hash=True, config=None):
        """The router namespace (bridge `seg` for the gateways, veth `cl` to a client namespace
        unless CLIENT is None) and its FRR, with router_frr_config() or CONFIG (give BFD if it
        needs bfdd). Returns the router's namespace."""
        self.router = self.netns('bgr')
        r = self.router
        self.exec(r, ['ip', 'link', 'add', 'seg', 'type', 'bridge'])
        self.exec(r, ['ip', 'link', 'set', 'seg', 'up'])
        self.exec(r, ['ip', 'addr', 'add', segment, 'dev', 'seg'])
        self.exec(r, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
        if l4_hash:
            self.exec(r, ['sysctl', '-q', '-w', 'net.ipv4.fib_multipath_hash_policy=1'])
        if client:
            self.client = self.netns('bgc')
            self.veth('cl', r, 'eth0', self.client)
            self.exec(r, ['ip', 'addr', 'add', client_side, 'dev', 'cl'])
            self.exec(self.client, ['ip', 'addr', 'add', client, 'dev', 'eth0'])
            self.exec(self.client, ['ip', 'route', 'add', 'default', 'via',
                                    client_side.split('/')[0]])
        self.router_address = segment.split('/')[0]
        self.segment = segment
        net = ipaddress.ip_interface(segment).network
        self.router_frr = self.start_frr(
            r, config or router_frr_config(self.router_address, str(net), asn=asn, bfd=bfd,
                                           timers=timers), bfd=bfd)
        return r

    def add_gateway_link(self, iface='eth0'):
        """A gateway namespace whose IFACE is a veth into the router's segment bridge (no
        address: for meshgate's af_packet port, or add one yourself). Returns the namespace."""
        ns = self.netns('bgg')
        side = f'g{self._links}'
        self._links += 1
        self.veth(iface, ns, side, self.router)
        self.exec(self.router, ['ip', 'link', 'set', side, 'master', 'seg'])
        self.links[ns] = side
        return ns

    def cut(self, ns):
        """The gateway NS falls silent, as a host that hangs or loses power: its bridge port at
        the router goes down (nothing closes its TCP sessions: the router notices by BFD or
        the hold time). mend(NS) undoes it."""
        self.exec(self.router, ['ip', 'link', 'set', self.links[ns], 'down'])

    def mend(self, ns):
        self.exec(self.router, ['ip', 'link', 'set', self.links[ns], 'up'])

    def add_kernel_gateway(self, address, daemon='frr', vip_range=VIP_RANGE, asn=GATEWAY_ASN,
                           bfd=False, timers=BFD_TIMERS, networks=(), iface='eth0',
                           vip_dev='lo', config=None):
        """A gateway without meshgate: ADDRESS (e.g. '10.77.0.11') on IFACE, a default route
        via the router, its BGP daemon (DAEMON 'frr' or 'bird') announcing the /32s of VIP_RANGE
        put on VIP_DEV (add_vip), from gateway_frr_config()/gateway_bird_config() or CONFIG
        (for FRR give BFD if it needs bfdd). With IFACE = VIP_DEV = meshgate's kernel_interface
        name it looks as a meshgate gateway does from its namespace. Returns (namespace, the
        Frr or Bird instance)."""
        ns = self.add_gateway_link(iface)
        prefixlen = ipaddress.ip_interface(self.segment).network.prefixlen
        self.exec(ns, ['ip', 'addr', 'add', f'{address}/{prefixlen}', 'dev', iface])
        self.exec(ns, ['ip', 'route', 'add', 'default', 'via', self.router_address])
        self.gateways[ns] = address
        if daemon == 'frr':
            instance = self.start_frr(ns, config or gateway_frr_config(
                address, self.router_address, vip_range, interface=None if networks else vip_dev,
                asn=asn, bfd=bfd, timers=timers, networks=networks, hostname=ns), bfd=bfd)
        else:
            instance = self.start_bird(ns, config or gateway_bird_config(
                address, self.router_address, vip_range, interface=vip_dev, asn=asn, bfd=bfd,
                timers=timers))
        return ns, instance

    def start_frr(self, ns, config, bfd=False):
        """An FRR instance named after NS (zebra, bgpd, bfdd if BFD) with CONFIG."""
        instance = Frr(ns, self.name('bgf'), config, self.workdir, bfd=bfd)
        self.daemons.append(instance)
        return instance.start()

    def start_bird(self, ns, config):
        instance = Bird(ns, self.name('bgb'), config, self.workdir)
        self.daemons.append(instance)
        return instance.start()

    def kernel_blind(self, ns, iface):
        """An nftables netdev ingress chain dropping everything IFACE receives: af_packet (DPDK's
        net_af_packet) still gets its copy (packet taps come before the ingress hook), the
        kernel's ARP and IP stack do not, as for a NIC bound to DPDK."""
        table = self.name('mgdrop')
        self.exec(ns, ['nft', 'add', 'table', 'netdev', table])
        self.exec(ns, ['nft', 'add', 'chain', 'netdev', table, 'in',
                       f'{{ type filter hook ingress device "{iface}" priority 0; policy drop; }}'])
        return table

    @staticmethod
    def add_vip(ns, vip, dev='lo'):
        mesh_lab.run(['ip', '-n', ns, 'addr', 'add', f'{vip}/32', 'dev', dev])

    @staticmethod
    def del_vip(ns, vip, dev='lo'):
        mesh_lab.run(['ip', '-n', ns, 'addr', 'del', f'{vip}/32', 'dev', dev])

    def next_hops(self, prefix):
        return next_hops(self.router, prefix)

    def wait_next_hops(self, prefix, want, timeout=30):
        return wait_next_hops(self.router, prefix, want, timeout)

    def destroy(self):
        for d in self.daemons:
            d.cleanup()
        super().destroy()


# --- a TCP listener per gateway, to count which one a connection reached ------------------

LISTENER = '''
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(128)
open(sys.argv[4], 'w').close()
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[3].encode() + b'\\n')
    c.close()
'''


def start_listener(lab, ns, address, port, answer):
    """A TCP server in NS on ADDRESS:PORT that answers ANSWER and closes; waits until it listens."""
    script = os.path.join(lab.workdir, 'bgp_lab_listener.py')
    with open(script, 'w') as f:
        f.write(LISTENER)
    ready = os.path.join(lab.workdir, f'listener-{ns}-ready')
    log = open(os.path.join(lab.workdir, f'listener-{ns}.log'), 'w')
    p = lab.spawn(ns, ['/usr/bin/python3', script, address, str(port), answer, ready], log)
    log.close()
    deadline = time.monotonic() + 15
    while not os.path.exists(ready):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f'listener in {ns} did not start')
        time.sleep(0.05)
    return p


CONNECTOR = '''
import collections, json, socket, sys
counts = collections.Counter()
for i in range(int(sys.argv[3])):
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as c:
        counts[c.makefile().readline().strip()] += 1
print(json.dumps(counts))
'''


def connect_many(ns, address, port, count):
    """COUNT TCP connections from NS to ADDRESS:PORT, each from a new source port; returns
    {answer: connections}."""
    out = mesh_lab.run(['ip', 'netns', 'exec', ns, '/usr/bin/python3', '-c', CONNECTOR, address,
                        str(port), str(count)], timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


if __name__ == '__main__':
    if '--selftest' in sys.argv:
        sys.argv.remove('--selftest')
        import test_bgp_lab  # noqa: F401
        sys.argv[1:1] = ['test_bgp_lab']
        harness.main()
    else:
        print(__doc__)
