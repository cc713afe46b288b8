#!/usr/bin/python3
"""pcap golden tests of the gateway's own protocols: ARP, ICMP echo, and what it drops.

Each test writes input frames with scapy, runs meshgate on two net_pcap ports (ext, underlay),
and checks every output frame field by field and the exported counters."""

import random

from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6EchoRequest, IPv6, Raw
from scapy.utils import checksum

import harness
from harness import EXT, UNDERLAY

CLIENT_MAC = '02:00:00:00:00:aa'
CLIENT_IP = '203.0.113.2'
NODE_MAC = '02:00:00:00:01:11'
NODE_IP = '192.168.50.11'
BROADCAST = 'ff:ff:ff:ff:ff:ff'


def arp_request(src_mac, src_ip, target_ip, dst_mac=BROADCAST):
    return Ether(src=src_mac, dst=dst_mac) / ARP(
        op=1, hwsrc=src_mac, psrc=src_ip, hwdst='00:00:00:00:00:00', pdst=target_ip)


def echo_request(port, src_mac=CLIENT_MAC, src_ip=CLIENT_IP, ident=0x1234, seq=1, payload=b'',
                 ttl=64, dst_ip=None):
    return (Ether(src=src_mac, dst=port.mac) /
            IP(src=src_ip, dst=dst_ip or port.address, ttl=ttl, id=0x4000 + seq) /
            ICMP(type=8, code=0, id=ident, seq=seq) / Raw(payload))


def echo_requests_many(port, src_mac, src_ip):
    """Echo requests of several sizes, with payload patterns like ping's."""
    sizes = [0, 1, 56, 57, 1000, 1472]
    return [echo_request(port, src_mac, src_ip, ident=0x1000 + i, seq=i + 1,
                         payload=bytes((i * 7 + k) & 0xff for k in range(n)))
            for i, n in enumerate(sizes)]


class GatewayPcapTest(harness.WorkdirTestCase):

    # --- assertions ------------------------------------------------------------------------

    def assert_counter(self, m, name, value, **labels):
        self.assertEqual(m.get(name, 0, **labels), value, f'{name}{labels}\n{m.text}')

    def assert_drops(self, m, expected):
        """Exactly these drop reasons are non-zero, with these counts."""
        self.assertEqual(m.nonzero_drops(), {k: float(v) for k, v in expected.items()}, m.text)

    def assert_port_traffic(self, result, inputs):
        """rx/tx packet and byte counters match the input pcaps and the output pcaps exactly."""
        m = result.metrics
        for port in (EXT, UNDERLAY):
            sent = inputs.get(port.name, [])
            out = result.out[port.name]
            self.assert_counter(m, 'meshgate_port_packets_total', len(sent), port=port.name, direction='rx')
            self.assert_counter(m, 'meshgate_port_bytes_total', sum(len(bytes(p)) for p in sent),
                                port=port.name, direction='rx')
            self.assert_counter(m, 'meshgate_port_packets_total', len(out), port=port.name, direction='tx')
            self.assert_counter(m, 'meshgate_port_bytes_total', sum(len(bytes(p)) for p in out),
                                port=port.name, direction='tx')

    def assert_arp_reply(self, reply, port, request):
        request = Ether(bytes(request))   # as it was on the wire, every field filled in
        self.assertIn(Ether, reply)
        self.assertEqual(reply[Ether].src, port.mac)
        self.assertEqual(reply[Ether].dst, request[Ether].src)
        self.assertEqual(reply[Ether].type, 0x0806)
        self.assertIn(ARP, reply, reply.show(dump=True))
        arp = reply[ARP]
        self.assertEqual((arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op), (1, 0x0800, 6, 4, 2))
        self.assertEqual(arp.hwsrc, port.mac)
        self.assertEqual(arp.psrc, port.address)
        self.assertEqual(arp.hwdst, request[ARP].hwsrc)
        self.assertEqual(arp.pdst, request[ARP].psrc)
        self.assertIn(len(bytes(reply)), (42, 60), 'ARP reply frame length')

    def assert_echo_reply(self, reply, port, request):
        request = Ether(bytes(request))
        desc = reply.show(dump=True)
        self.assertEqual(reply[Ether].src, port.mac, desc)
        self.assertEqual(reply[Ether].dst, request[Ether].src, desc)
        self.assertEqual(reply[Ether].type, 0x0800, desc)
        self.assertIn(IP, reply, desc)
        ip, req_ip = reply[IP], request[IP]
        self.assertEqual((ip.version, ip.ihl), (4, 5), desc)
        self.assertEqual(ip.src, req_ip.dst, desc)
        self.assertEqual(ip.dst, req_ip.src, desc)
        self.assertEqual(ip.ttl, 64, desc)
        self.assertEqual(ip.proto, 1, desc)
        self.assertEqual(ip.frag, 0, desc)
        self.assertEqual(ip.len, req_ip.len, desc)
        raw_ip = bytes(ip)
        self.assertEqual(checksum(raw_ip[:20]), 0, 'IPv4 header checksum\n' + desc)
        frame = bytes(reply)
        self.assertGreaterEqual(len(frame), 14 + ip.len, desc)
        self.assertLessEqual(len(frame), max(60, len(bytes(request))), desc)
        icmp_bytes = raw_ip[20:ip.len]
        self.assertEqual(checksum(icmp_bytes), 0, 'ICMP checksum\n' + desc)
        icmp = ICMP(icmp_bytes)
        self.assertEqual((icmp.type, icmp.code), (0, 0), desc)
        self.assertEqual((icmp.id, icmp.seq), (request[ICMP].id, request[ICMP].seq), desc)
        self.assertEqual(icmp_bytes[8:], bytes(req_ip)[20 + 8:req_ip.len], 'echo payload')

    def assert_info(self, m):
        for port in (EXT, UNDERLAY):
            info = [ls for ls in m.labels_of('meshgate_port_info') if ls.get('port') == port.name]
            self.assertEqual(len(info), 1, m.text)
            self.assertEqual(info[0].get('mac'), port.mac, m.text)
            self.assertEqual(m.get('meshgate_port_info', port=port.name), 1, m.text)

    # --- tests -----------------------------------------------------------------------------

    def test_arp_request_for_port_addresses(self):
        ext_reqs = [arp_request(CLIENT_MAC, CLIENT_IP, EXT.address),
                    # a refresh, unicast to the port MAC as the kernel sends it
                    arp_request(CLIENT_MAC, CLIENT_IP, EXT.address, dst_mac=EXT.mac),
                    arp_request('02:00:00:00:00:ab', '203.0.113.3', EXT.address)]
        und_reqs = [arp_request(NODE_MAC, NODE_IP, UNDERLAY.address)]
        inputs = {'ext': ext_reqs, 'underlay': und_reqs}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(len(r.out['ext']), len(ext_reqs), [p.summary() for p in r.out['ext']])
        self.assertEqual(len(r.out['underlay']), len(und_reqs))
        for reply, req in zip(r.out['ext'], ext_reqs):
            self.assert_arp_reply(reply, EXT, req)
        for reply, req in zip(r.out['underlay'], und_reqs):
            self.assert_arp_reply(reply, UNDERLAY, req)
        m = r.metrics
        self.assert_port_traffic(r, inputs)
        self.assert_counter(m, 'meshgate_arp_replies_sent_total', 4)
        self.assertGreaterEqual(m.get('meshgate_arp_learned_total', 0), 3, m.text)  # 3 requesters
        self.assert_counter(m, 'meshgate_arp_requests_sent_total', 0)
        self.assert_drops(m, {})
        self.assert_info(m)

    def test_arp_request_for_foreign_address(self):
        inputs = {'ext': [arp_request(CLIENT_MAC, CLIENT_IP, '203.0.113.99'),
                          arp_request(CLIENT_MAC, CLIENT_IP, '203.0.113.1')],
                  'underlay': [arp_request(NODE_MAC, NODE_IP, '192.168.50.12')]}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(r.out, {'ext': [], 'underlay': []})
        self.assert_port_traffic(r, inputs)
        self.assert_counter(r.metrics, 'meshgate_arp_replies_sent_total', 0)
        self.assert_drops(r.metrics, {'not_local': 3})

    def test_arp_probe_for_port_address(self):
        """RFC 5227 probe (sender 0.0.0.0, as `arping -D` and DHCP clients send): Linux answers it,
        so a host checking for a duplicate of the gateway's address finds it."""
        probe = arp_request(CLIENT_MAC, '0.0.0.0', EXT.address)
        inputs = {'ext': [probe]}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(len(r.out['ext']), 1, [p.summary() for p in r.out['ext']])
        self.assert_arp_reply(r.out['ext'][0], EXT, probe)   # pdst 0.0.0.0, hwdst the prober
        self.assert_counter(r.metrics, 'meshgate_arp_replies_sent_total', 1)
        self.assert_counter(r.metrics, 'meshgate_arp_learned_total', 0)   # nothing to learn from 0.0.0.0
        self.assert_drops(r.metrics, {})

    def test_icmp_echo(self):
        """Echo requests from hosts the gateway never heard ARP from: the reply goes back to the
        requester's MAC (MACs swapped), without an ARP round trip."""
        ext_reqs = echo_requests_many(EXT, CLIENT_MAC, CLIENT_IP)
        # padded to the 60-byte Ethernet minimum: the padding is not part of the ICMP message
        ext_reqs.append(Ether(bytes(echo_request(EXT, seq=99, payload=b'ab')) + b'\0' * 16))
        # a request with TTL 1 still reaches the gateway itself
        ext_reqs.append(echo_request(EXT, seq=100, ttl=1, payload=b'ttl-one'))
        und_reqs = echo_requests_many(UNDERLAY, NODE_MAC, NODE_IP)
        inputs = {'ext': ext_reqs, 'underlay': und_reqs}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(len(r.out['ext']), len(ext_reqs), [p.summary() for p in r.out['ext']])
        self.assertEqual(len(r.out['underlay']), len(und_reqs), [p.summary() for p in r.out['underlay']])
        for reply, req in zip(r.out['ext'], ext_reqs):
            self.assert_echo_reply(reply, EXT, req)
        for reply, req in zip(r.out['underlay'], und_reqs):
            self.assert_echo_reply(reply, UNDERLAY, req)
        self.assert_port_traffic(r, inputs)
        self.assert_counter(r.metrics, 'meshgate_icmp_echo_replies_sent_total', len(ext_reqs) + len(und_reqs))
        self.assert_counter(r.metrics, 'meshgate_arp_requests_sent_total', 0)
        self.assert_drops(r.metrics, {})

    def test_icmp_echo_from_known_neighbor(self):
        """The usual order on a real link: the host ARPs for the gateway, then pings it."""
        arp = arp_request(CLIENT_MAC, CLIENT_IP, EXT.address)
        pings = echo_requests_many(EXT, CLIENT_MAC, CLIENT_IP)
        inputs = {'ext': [arp] + pings}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(len(r.out['ext']), 1 + len(pings), [p.summary() for p in r.out['ext']])
        self.assert_arp_reply(r.out['ext'][0], EXT, arp)
        for reply, req in zip(r.out['ext'][1:], pings):
            self.assert_echo_reply(reply, EXT, req)
        self.assert_port_traffic(r, inputs)
        self.assert_counter(r.metrics, 'meshgate_icmp_echo_replies_sent_total', len(pings))
        self.assert_counter(r.metrics, 'meshgate_arp_requests_sent_total', 0)
        self.assert_drops(r.metrics, {})

    def test_malformed(self):
        to_gw = Ether(src=CLIENT_MAC, dst=EXT.mac)
        ip = IP(src=CLIENT_IP, dst=EXT.address)
        good_ping = echo_request(EXT, seq=7, payload=b'still alive')
        bad_csum = to_gw / IP(bytes(ip / ICMP(seq=2)))
        bad_csum[IP].chksum ^= 0x5555
        good = bytes(to_gw / ip / ICMP())
        version6 = good[:14] + b'\x65' + good[15:]
        frames = [
            ('13-byte frame', bytes(to_gw)[:13]),
            ('IPv4 header cut short', bytes(to_gw / ip / ICMP())[:14 + 12]),
            ('total length larger than the frame', to_gw / IP(src=CLIENT_IP, dst=EXT.address, len=200) / ICMP()),
            ('ihl < 5', to_gw / IP(src=CLIENT_IP, dst=EXT.address, ihl=4) / ICMP()),
            ('bad IPv4 header checksum', bad_csum),
            ('ICMP shorter than 8 bytes', to_gw / IP(src=CLIENT_IP, dst=EXT.address, proto=1) / Raw(b'\x08\x00\xf7\xff')),
            ('IP version 6 in an IPv4 ethertype', version6),
            ('ARP cut short', bytes(arp_request(CLIENT_MAC, CLIENT_IP, EXT.address))[:14 + 20]),
        ]
        arp = arp_request(CLIENT_MAC, CLIENT_IP, EXT.address)
        inputs = {'ext': [arp] + [f for _, f in frames] + [good_ping]}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(len(r.out['ext']), 2, [p.summary() for p in r.out['ext']])
        self.assert_arp_reply(r.out['ext'][0], EXT, arp)
        self.assert_echo_reply(r.out['ext'][1], EXT, good_ping)
        self.assertEqual(r.out['underlay'], [])
        self.assert_port_traffic(r, inputs)
        self.assert_drops(r.metrics, {'malformed': len(frames)})
        self.assert_counter(r.metrics, 'meshgate_icmp_echo_replies_sent_total', 1)
        self.assert_counter(r.metrics, 'meshgate_arp_replies_sent_total', 1)

    def test_other_ethertypes(self):
        frames = [
            Ether(src=CLIENT_MAC, dst=EXT.mac) / IPv6(src='2001:db8::2', dst='2001:db8::10') / ICMPv6EchoRequest(),
            Ether(src=CLIENT_MAC, dst=EXT.mac) / Dot1Q(vlan=10) / IP(src=CLIENT_IP, dst=EXT.address) / ICMP(),
            Ether(src=CLIENT_MAC, dst=EXT.mac, type=0x8035) / Raw(b'\0' * 46),  # RARP
            Ether(src=CLIENT_MAC, dst=BROADCAST, type=0x88b5) / Raw(b'\0' * 46),  # local experimental
        ]
        inputs = {'ext': frames, 'underlay': [Ether(src=NODE_MAC, dst=UNDERLAY.mac) /
                                              IPv6(src='2001:db8::11', dst='2001:db8::1') / UDP()]}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(r.out, {'ext': [], 'underlay': []})
        self.assert_port_traffic(r, inputs)
        self.assert_drops(r.metrics, {'ethertype': len(frames) + 1})

    def test_multicast_other_ethertypes(self):
        """What every Linux neighbor sends on its own: IPv6 neighbor discovery/MLD to 33:33:..., LLDP
        to 01:80:c2:00:00:0e. IPv6 and other ethertypes count as `ethertype`, whatever the group."""
        frames = [
            Ether(src=CLIENT_MAC, dst='33:33:00:00:00:01') / IPv6(src='fe80::2', dst='ff02::1') / ICMPv6EchoRequest(),
            Ether(src=CLIENT_MAC, dst='33:33:00:00:00:02') / IPv6(src='fe80::2', dst='ff02::2') / Raw(b'\x85\0\0\0\0\0\0\0'),
            Ether(src=CLIENT_MAC, dst='01:80:c2:00:00:0e', type=0x88cc) / Raw(b'\x02\x07\x04' + b'\0' * 40),  # LLDP
        ]
        inputs = {'ext': frames}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(r.out, {'ext': [], 'underlay': []})
        self.assert_port_traffic(r, inputs)
        self.assert_drops(r.metrics, {'ethertype': len(frames)})

    def test_not_local(self):
        frames = [
            echo_request(EXT, dst_ip='203.0.113.99'),
            Ether(src=CLIENT_MAC, dst=EXT.mac) / IP(src=CLIENT_IP, dst='198.51.100.7') / UDP(sport=1234, dport=53),
            Ether(src=CLIENT_MAC, dst=EXT.mac) / IP(src=CLIENT_IP, dst='203.0.113.11') / TCP(sport=1234, dport=8000),
        ]
        inputs = {'ext': frames}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(r.out, {'ext': [], 'underlay': []})
        self.assert_port_traffic(r, inputs)
        self.assert_drops(r.metrics, {'not_local': len(frames)})

    def test_frame_for_another_mac(self):
        """A unicast frame for another host's MAC (seen in promiscuous mode) is not ours."""
        inputs = {'ext': [Ether(src=CLIENT_MAC, dst='02:00:00:00:00:99') /
                          IP(src=CLIENT_IP, dst=EXT.address) / ICMP(id=1, seq=1)]}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertEqual(r.out, {'ext': [], 'underlay': []})
        self.assert_drops(r.metrics, {'not_local': 1})
        self.assert_counter(r.metrics, 'meshgate_icmp_echo_replies_sent_total', 0)

    def test_no_service_and_unsupported_protocol(self):
        to_gw = Ether(src=CLIENT_MAC, dst=EXT.mac) / IP(src=CLIENT_IP, dst=EXT.address)
        unpublished = [
            to_gw / UDP(sport=40000, dport=9999) / Raw(b'hello'),
            to_gw / TCP(sport=40001, dport=80, flags='S', seq=1000),
            to_gw / TCP(sport=40002, dport=8000, flags='S', seq=2000),
        ]
        other_proto = [Ether(src=CLIENT_MAC, dst=EXT.mac) /
                       IP(src=CLIENT_IP, dst=EXT.address, proto=47) / Raw(b'\0' * 24)]  # GRE
        inputs = {'ext': unpublished + other_proto}
        # Silent, as told: the RSTs that are the default have their own test (test_pcap_limits).
        r = harness.run_pcap(self.workdir, inputs, limits='reset_unpublished = false\n')
        self.assertEqual(r.out, {'ext': [], 'underlay': []})
        self.assert_port_traffic(r, inputs)
        self.assert_drops(r.metrics, {'no_service': len(unpublished), 'unsupported_protocol': 1})

    def test_random_garbage_then_ping(self):
        rng = random.Random(20261125)
        garbage = []
        for _ in range(400):
            n = rng.choice([rng.randint(1, 64), rng.randint(1, 1514)])
            garbage.append(bytes(rng.getrandbits(8) for _ in range(n)))
        # garbage that looks more like our traffic: right MAC and ethertype, random rest
        for _ in range(200):
            head = bytes(Ether(src=CLIENT_MAC, dst=EXT.mac, type=rng.choice([0x0800, 0x0806])))
            garbage.append(head + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 80))))
        # and IPv4 headers with valid checksums to the gateway, random protocol, length and body
        for _ in range(100):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 60)))
            pkt = (Ether(src=CLIENT_MAC, dst=EXT.mac) /
                   IP(src=CLIENT_IP, dst=EXT.address, proto=rng.choice([1, 6, 17, rng.randint(0, 255)]),
                      len=rng.randint(20, 120)) / Raw(body))
            garbage.append(bytes(pkt))
        ping = echo_request(EXT, seq=4242, payload=b'after the garbage')
        arp = arp_request(CLIENT_MAC, CLIENT_IP, EXT.address)
        inputs = {'ext': [arp] + garbage + [ping], 'underlay': garbage[:300]}
        r = harness.run_pcap(self.workdir, inputs)
        self.assertGreaterEqual(len(r.out['ext']), 2)
        self.assert_arp_reply(r.out['ext'][0], EXT, arp)
        self.assert_echo_reply(r.out['ext'][-1], EXT, ping)
        self.assertGreaterEqual(r.metrics.get('meshgate_icmp_echo_replies_sent_total', 0), 1)
        self.assert_port_traffic(r, inputs)
        # every frame that got no answer was counted under some drop reason
        total_in = len(inputs['ext']) + len(inputs['underlay'])
        total_out = len(r.out['ext']) + len(r.out['underlay'])
        self.assertEqual(sum(r.metrics.drops().values()), total_in - total_out,
                         f'drops {r.metrics.nonzero_drops()}, out {[p.summary() for p in r.out["ext"]]}')


if __name__ == '__main__':
    harness.main()
