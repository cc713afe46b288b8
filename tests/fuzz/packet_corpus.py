#!/usr/bin/python3
"""Seed corpus of tests/fuzz/packet_fuzz: one file per frame kind the data path handles, in the
fuzz target's input format (a record per frame: ctl byte = port | 0x80 to end the burst,
2-byte big-endian length, the frame). Addresses are those of tests/fuzz/packet_fuzz.toml.
Seeds that need a warm connection's SNAT port are written by packet_fuzz itself
(MESHGATE_FUZZ_SEED_DIR).

  packet_corpus.py OUTDIR
"""
import os
import struct
import sys

from scapy.all import ARP, ICMP, IP, TCP, UDP, VXLAN, Dot1Q, Ether, IPv6, Raw, fragment

EXT, UND, BOTH = 0, 1, 2
PORT_MAC = {EXT: '02:00:00:00:00:10', UND: '02:00:00:00:00:20', BOTH: '02:00:00:00:00:30'}
PORT_IP = {EXT: '203.0.113.10', UND: '192.168.50.1', BOTH: '198.51.100.1'}
ROUTER_MAC = '02:00:00:00:00:01'  # ext's gateway 203.0.113.1
NODE1 = ('192.168.50.11', '02:00:00:00:01:11', UND)
NODE2 = ('192.168.50.12', '02:00:00:00:01:12', UND)  # no static MAC: resolved with ARP
NODE3 = ('198.51.100.11', '02:00:00:00:01:33', BOTH)
OVERLAY_IP, OVERLAY_MAC = '10.255.0.2', '02:42:0a:ff:00:02'


def task_mac(ip):
    return '02:42:' + ':'.join('%02x' % int(b) for b in ip.split('.'))


def client(port, l4, src='198.18.0.9', dst=None, **ip):
    mac = ROUTER_MAC if port == EXT else '02:00:00:00:00:55'
    return Ether(src=mac, dst=PORT_MAC[port]) / IP(src=src, dst=dst or PORT_IP[port], **ip) / l4


def vxlan(node, inner, vni=4096, src=None, dport=4789):
    ip, mac, port = node
    return (Ether(src=mac, dst=PORT_MAC[port]) / IP(src=src or ip, dst=PORT_IP[port]) /
            UDP(sport=49152, dport=dport, chksum=0) / VXLAN(vni=vni, flags=0x08) / inner)


def task_reply(task, l4, dst=OVERLAY_IP):
    return Ether(src=task_mac(task), dst=OVERLAY_MAC) / IP(src=task, dst=dst) / l4


def seeds():
    s = {}
    syn = TCP(sport=40100, dport=8000, flags='S', seq=1)
    # Clients on the external port, and on the port that is both.
    s['tcp-syn'] = [(EXT, client(EXT, syn))]
    s['tcp-ack'] = [(EXT, client(EXT, TCP(sport=40100, dport=8000, flags='A', seq=2, ack=1)))]
    s['tcp-fin'] = [(EXT, client(EXT, TCP(sport=40100, dport=8000, flags='FA')))]
    s['tcp-rst'] = [(EXT, client(EXT, TCP(sport=40100, dport=8000, flags='R')))]
    s['tcp-syn-data'] = [(EXT, client(EXT, syn / Raw(b'GET / HTTP/1.0\r\n\r\n')))]
    s['tcp-options'] = [(EXT, client(EXT, TCP(sport=40101, dport=8000, flags='S',
                                              options=[('MSS', 1460), ('WScale', 7), ('SAckOK', b''),
                                                       ('Timestamp', (1, 0))])))]
    s['tcp-syn-both'] = [(BOTH, client(BOTH, TCP(sport=41100, dport=443, flags='S'),
                                       src='198.51.100.50'))]
    s['tcp-syn-on-link'] = [(EXT, client(EXT, syn, src='203.0.113.77'))]
    s['tcp-syn-unknown-neighbor'] = [(BOTH, client(BOTH, TCP(sport=41101, dport=443, flags='S'),
                                                   src='198.51.100.99'))]
    s['tcp-syn-burst'] = [(EXT, client(EXT, TCP(sport=42000 + i, dport=8000, flags='S'),
                                       src='198.18.1.%d' % i)) for i in range(40)]
    s['tcp-handshake-mixed'] = [(EXT | 0x80, client(EXT, syn)),
                                (UND | 0x80, vxlan(NODE1, task_reply('10.255.0.5', TCP(
                                    sport=80, dport=1024, flags='SA')))),
                                (EXT, client(EXT, TCP(sport=40100, dport=8000, flags='A')))]
    s['udp'] = [(EXT, client(EXT, UDP(sport=5300, dport=53) / Raw(b'q' * 20)))]
    s['udp-both'] = [(BOTH, client(BOTH, UDP(sport=5301, dport=443) / Raw(b'q' * 20),
                                   src='198.51.100.50'))]
    s['udp-no-checksum'] = [(EXT, client(EXT, UDP(sport=5302, dport=53, chksum=0) / Raw(b'x')))]
    s['udp-big-df'] = [(EXT, client(EXT, UDP(sport=5303, dport=53) / Raw(b'b' * 1472), flags='DF'))]
    s['udp-big'] = [(EXT, client(EXT, UDP(sport=5304, dport=53) / Raw(b'b' * 1472)))]
    s['tcp-big-df'] = [(EXT, client(EXT, TCP(sport=40102, dport=8000, flags='PA') / Raw(b'd' * 1460),
                                    flags='DF'))]
    s['tcp-ttl-1'] = [(EXT, client(EXT, syn, ttl=1))]
    s['no-service'] = [(EXT, client(EXT, TCP(sport=40103, dport=8001, flags='S')))]
    s['no-backend'] = [(EXT, client(EXT, TCP(sport=40104, dport=9000, flags='S')))]
    s['udp-to-tcp-port'] = [(EXT, client(EXT, UDP(sport=5305, dport=8000)))]
    s['not-local-ip'] = [(EXT, client(EXT, syn, dst='203.0.113.99'))]
    s['not-local-mac'] = [(EXT, Ether(src=ROUTER_MAC, dst='02:00:00:00:00:99') / IP(
        src='198.18.0.9', dst=PORT_IP[EXT]) / syn)]
    s['sctp'] = [(EXT, client(EXT, Raw(b'\0' * 12), proto=132))]
    # The gateway's own addresses.
    s['icmp-echo-ext'] = [(EXT, client(EXT, ICMP(type=8, id=1, seq=1) / Raw(b'ping' * 8)))]
    s['icmp-echo-und'] = [(UND, Ether(src=NODE1[1], dst=PORT_MAC[UND]) / IP(
        src=NODE1[0], dst=PORT_IP[UND]) / ICMP(type=8, id=2, seq=1))]
    s['icmp-echo-both'] = [(BOTH, client(BOTH, ICMP(type=8), src='198.51.100.50'))]
    s['icmp-echo-broadcast'] = [(EXT, Ether(src=ROUTER_MAC, dst='ff:ff:ff:ff:ff:ff') / IP(
        src='198.18.0.9', dst=PORT_IP[EXT]) / ICMP(type=8))]
    s['icmp-other-type'] = [(EXT, client(EXT, ICMP(type=13)))]
    s['icmp-error-from-client'] = [(EXT, client(EXT, ICMP(type=3, code=3) / IP(
        src=PORT_IP[EXT], dst='198.18.0.9') / UDP(sport=53, dport=5300)))]
    # ARP.
    s['arp-request'] = [(EXT, Ether(src=ROUTER_MAC, dst='ff:ff:ff:ff:ff:ff') / ARP(
        op=1, hwsrc=ROUTER_MAC, psrc='203.0.113.1', pdst=PORT_IP[EXT]))]
    s['arp-request-other'] = [(EXT, Ether(src=ROUTER_MAC, dst='ff:ff:ff:ff:ff:ff') / ARP(
        op=1, hwsrc=ROUTER_MAC, psrc='203.0.113.1', pdst='203.0.113.55'))]
    s['arp-reply-node2'] = [(UND, Ether(src=NODE2[1], dst=PORT_MAC[UND]) / ARP(
        op=2, hwsrc=NODE2[1], psrc=NODE2[0], hwdst=PORT_MAC[UND], pdst=PORT_IP[UND]))]
    s['arp-gratuitous'] = [(BOTH, Ether(src='02:00:00:00:00:66', dst='ff:ff:ff:ff:ff:ff') / ARP(
        op=2, hwsrc='02:00:00:00:00:66', psrc='198.51.100.66', pdst='198.51.100.66'))]
    s['syn-to-node2-then-arp'] = [
        (EXT | 0x80, client(EXT, TCP(sport=40105, dport=8000, flags='S'))),
        (UND, Ether(src=NODE2[1], dst=PORT_MAC[UND]) / ARP(
            op=2, hwsrc=NODE2[1], psrc=NODE2[0], hwdst=PORT_MAC[UND], pdst=PORT_IP[UND]))]
    s['arp-truncated'] = [(EXT, Ether(src=ROUTER_MAC, dst='ff:ff:ff:ff:ff:ff', type=0x0806) /
                           Raw(bytes(ARP(op=1, psrc='203.0.113.1', pdst=PORT_IP[EXT]))[:20]))]
    # VXLAN from the nodes: task replies (to SNAT ports no connection has), tunnel ARP and ICMP.
    for name, node, task in (('node1', NODE1, '10.255.0.5'), ('node3', NODE3, '10.255.0.9'),
                             ('node2', NODE2, '10.255.0.6')):
        s['vxlan-tcp-reply-' + name] = [(node[2], vxlan(node, task_reply(task, TCP(
            sport=80, dport=1024, flags='SA'))))]
        s['vxlan-udp-reply-' + name] = [(node[2], vxlan(node, task_reply(task, UDP(
            sport=5353, dport=1025) / Raw(b'a' * 30))))]
    s['tunnel-arp-request'] = [(UND, vxlan(NODE1, Ether(src=task_mac('10.255.0.5'),
                                                        dst='ff:ff:ff:ff:ff:ff') / ARP(
        op=1, hwsrc=task_mac('10.255.0.5'), psrc='10.255.0.5', pdst=OVERLAY_IP)))]
    s['tunnel-arp-reply'] = [(UND, vxlan(NODE1, Ether(src=task_mac('10.255.0.5'),
                                                      dst=OVERLAY_MAC) / ARP(
        op=2, hwsrc=task_mac('10.255.0.5'), psrc='10.255.0.5', hwdst=OVERLAY_MAC,
        pdst=OVERLAY_IP)))]
    s['tunnel-icmp-echo'] = [(UND, vxlan(NODE1, task_reply('10.255.0.5', ICMP(type=8))))]
    s['tunnel-icmp-frag-needed'] = [(UND, vxlan(NODE1, task_reply('10.255.0.5', ICMP(
        type=3, code=4, nexthopmtu=1400) / IP(src=OVERLAY_IP, dst='10.255.0.5') / TCP(
        sport=1024, dport=80))))]
    s['tunnel-icmp-unreachable-udp'] = [(UND, vxlan(NODE1, task_reply('10.255.0.8', ICMP(
        type=3, code=3) / IP(src=OVERLAY_IP, dst='10.255.0.8') / UDP(sport=1025, dport=5353))))]
    s['tunnel-icmp-time-exceeded'] = [(BOTH, vxlan(NODE3, task_reply('10.255.0.9', ICMP(
        type=11) / IP(src=OVERLAY_IP, dst='10.255.0.9') / UDP(sport=1026, dport=5353))))]
    s['tunnel-icmp-truncated-inner'] = [(UND, vxlan(NODE1, task_reply('10.255.0.5', ICMP(
        type=3, code=4) / Raw(bytes(IP(src=OVERLAY_IP, dst='10.255.0.5'))[:12]))))]
    s['vxlan-wrong-vni'] = [(UND, vxlan(NODE1, task_reply('10.255.0.5', TCP(sport=80, dport=1024)),
                                        vni=4097))]
    s['vxlan-unknown-vtep'] = [(UND, vxlan(NODE1, task_reply('10.255.0.5', TCP(sport=80, dport=1024)),
                                           src='192.168.50.99'))]
    s['vxlan-no-i-flag'] = [(UND, Ether(src=NODE1[1], dst=PORT_MAC[UND]) / IP(
        src=NODE1[0], dst=PORT_IP[UND]) / UDP(sport=49152, dport=4789) / VXLAN(vni=4096, flags=0) /
        task_reply('10.255.0.5', TCP(sport=80, dport=1024)))]
    s['vxlan-on-external'] = [(EXT, Ether(src=ROUTER_MAC, dst=PORT_MAC[EXT]) / IP(
        src=NODE1[0], dst=PORT_IP[EXT]) / UDP(sport=49152, dport=4789) / VXLAN(vni=4096) /
        task_reply('10.255.0.5', TCP(sport=80, dport=1024)))]
    s['vxlan-inner-truncated'] = [(UND, vxlan(NODE1, Raw(b'\x02\x42\x0a\xff\x00\x02' * 2)))]
    s['vxlan-inner-ipv6'] = [(UND, vxlan(NODE1, Ether(src=task_mac('10.255.0.5'), dst=OVERLAY_MAC) /
                                         IPv6() / UDP()))]
    s['vxlan-inner-not-gateway'] = [(UND, vxlan(NODE1, task_reply('10.255.0.5', UDP(
        sport=5353, dport=1025), dst='10.255.0.77')))]
    s['vxlan-inner-fragment'] = [(UND, vxlan(NODE1, f)) for f in fragment(
        task_reply('10.255.0.5', UDP(sport=5353, dport=1025) / Raw(b'f' * 1200)), fragsize=600)]
    # Fragments, malformed and other frames.
    s['fragments'] = [(EXT, f) for f in fragment(client(EXT, UDP(sport=5306, dport=53) /
                                                        Raw(b'f' * 1000)), fragsize=400)]
    s['fragment-tcp-first'] = [(EXT, client(EXT, syn / Raw(b'x' * 40), flags='MF'))]
    s['fragment-offset'] = [(EXT, client(EXT, Raw(b'y' * 40), frag=100, proto=6))]
    outer = bytes(vxlan(NODE1, task_reply('10.255.0.5', UDP(sport=5353, dport=1025) / Raw(b'o' * 800))))
    s['vxlan-outer-fragments'] = [(UND, f) for f in fragment(Ether(outer), fragsize=400)]
    good = bytes(client(EXT, TCP(sport=40106, dport=8000, flags='S')))
    s['truncated-eth'] = [(EXT, Raw(good[:10]))]
    s['truncated-ip'] = [(EXT, Raw(good[:14 + 12]))]
    s['truncated-tcp'] = [(EXT, Raw(good[:14 + 20 + 8]))]
    s['ip-total-length-long'] = [(EXT, client(EXT, TCP(sport=40107, dport=8000, flags='S'), len=900))]
    s['ip-total-length-short'] = [(EXT, client(EXT, TCP(sport=40107, dport=8000, flags='S'), len=24))]
    s['ip-bad-checksum'] = [(EXT, client(EXT, TCP(sport=40108, dport=8000, flags='S'), chksum=0x1234))]
    s['ip-options'] = [(EXT, client(EXT, TCP(sport=40109, dport=8000, flags='S'), ihl=7,
                                    options=[b'\x01' * 8]))]
    s['ip-bad-ihl'] = [(EXT, client(EXT, TCP(sport=40110, dport=8000, flags='S'), ihl=15))]
    s['ip-version-6-in-4'] = [(EXT, client(EXT, TCP(sport=40111, dport=8000), version=6))]
    s['tcp-data-offset-long'] = [(EXT, client(EXT, TCP(sport=40112, dport=8000, flags='S', dataofs=15)))]
    s['tcp-bad-checksum'] = [(EXT, client(EXT, TCP(sport=40113, dport=8000, flags='S', chksum=1)))]
    s['udp-length-long'] = [(EXT, client(EXT, UDP(sport=5307, dport=53, len=500) / Raw(b'z' * 8)))]
    s['ipv6'] = [(EXT, Ether(src=ROUTER_MAC, dst=PORT_MAC[EXT]) / IPv6() / TCP(dport=8000))]
    s['vlan'] = [(EXT, Ether(src=ROUTER_MAC, dst=PORT_MAC[EXT]) / Dot1Q(vlan=5) /
                  IP(src='198.18.0.9', dst=PORT_IP[EXT]) / syn)]
    s['lldp'] = [(EXT, Ether(src=ROUTER_MAC, dst='01:80:c2:00:00:0e', type=0x88cc) / Raw(b'\0' * 40))]
    s['runt'] = [(EXT, Raw(b'\0'))]
    s['empty'] = [(EXT, Raw(b''))]
    s['jumbo'] = [(EXT, client(EXT, UDP(sport=5308, dport=53) / Raw(b'j' * 2000)))]
    s['every-port-burst'] = [(p, f) for p, f in s['tcp-syn'] + s['vxlan-tcp-reply-node1'] +
                             s['tcp-syn-both'] + s['icmp-echo-und']]
    return s


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, records in seeds().items():
        with open(os.path.join(out, name), 'wb') as f:
            for ctl, frame in records:
                data = bytes(frame)
                f.write(struct.pack('>BH', ctl, len(data)) + data)


if __name__ == '__main__':
    main()
