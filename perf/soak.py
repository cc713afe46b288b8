#!/usr/bin/python3
"""Soak: mixed traffic through meshgate for --minutes (default 30) with a reload every 10 s, and
its resident memory, packet buffers in use, connections and neighbor entries sampled every 10 s.
They must end where they were once warmed up (--warmup seconds; TIME_WAIT connections need
tcp_fin = 120 s to reach their steady count) within 5%, and meshgate must not crash.

The swarm side is the end-to-end tests' (scripts/mesh_lab.py): two nodes with kernel VXLAN and
three tasks (HTTP on 8000, UDP echo on 9000) in network namespaces, a client namespace, meshgate
on af_packet ports between them. The client runs, at once:
  - a new TCP connection every 50 ms (GET /, closed by the server),
  - four long-lived TCP connections, a line every 100 ms each (/lines),
  - UDP queries every 50 ms, one in four asking for a 3000-byte answer: the task's kernel
    fragments it on the overlay, meshgate reassembles it and fragments it again for the client,
  - ping of the gateway's address every 200 ms.
Reloads alternate two weightings of the tasks. Run as root from the repository:
    perf/soak.py --minutes 30 [--out soak.json]
Prints a line per sample and a verdict; exits 1 when a figure drifted or meshgate died."""

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, '..', 'tests', 'integration'), os.path.join(HERE, '..', 'scripts')]
import harness  # noqa: E402
import mesh_lab  # noqa: E402
from harness import EXT, UNDERLAY  # noqa: E402

MESHGATECTL = os.path.join(os.path.dirname(harness.MESHGATE_BIN), 'meshgatectl')

CLIENT = textwrap.dedent('''\
    import json, socket, subprocess, sys, threading, time
    gw, seconds = sys.argv[1], float(sys.argv[2])
    stop = time.monotonic() + seconds
    counts = {k: 0 for k in ('tcp_ok', 'tcp_fail', 'line_ok', 'line_fail', 'udp_ok', 'udp_fail',
                             'udp_big_ok', 'udp_big_fail')}
    lock = threading.Lock()
    def count(k):
        with lock:
            counts[k] += 1
    def new_connections():
        while time.monotonic() < stop:
            try:
                s = socket.create_connection((gw, 8000), timeout=5)
                s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
                data = b''
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                count('tcp_ok' if b'task-' in data else 'tcp_fail')
            except OSError:
                count('tcp_fail')
            time.sleep(0.05)
    def lines():
        while time.monotonic() < stop:
            try:
                s = socket.create_connection((gw, 8000), timeout=5)
                s.sendall(b'GET /lines HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
                f = s.makefile('rb')
                while f.readline() not in (b'\\r\\n', b''):
                    pass
                while time.monotonic() < stop:
                    s.sendall(b'ping\\n')
                    count('line_ok' if f.readline().endswith(b' ping\\n') else 'line_fail')
                    time.sleep(0.1)
                s.close()
            except OSError:
                count('line_fail')
                time.sleep(1)
    def udp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1)
        n = 0
        while time.monotonic() < stop:
            n += 1
            big = n % 4 == 0
            query = b'big:3000' if big else b'q%d' % n
            want = (b'x' * 3000) if big else query
            try:
                s.sendto(query, (gw, 9000))
                data, _ = s.recvfrom(65535)
                ok = data.endswith(b' ' + want)
            except OSError:
                ok = False
            count(('udp_big_' if big else 'udp_') + ('ok' if ok else 'fail'))
            time.sleep(0.05)
    threads = [threading.Thread(target=new_connections)] + \\
              [threading.Thread(target=lines) for _ in range(4)] + [threading.Thread(target=udp)]
    ping = subprocess.Popen(['ping', '-q', '-i', '0.2', '-w', str(int(seconds)), gw],
                            stdout=subprocess.PIPE, text=True)
    for t in threads:
        t.start()
    while time.monotonic() < stop:
        time.sleep(10)
        with lock:
            print(json.dumps(counts), flush=True)
    for t in threads:
        t.join()
    out = ping.communicate()[0]
    with lock:
        counts['ping'] = out.strip().splitlines()[-2] if out.strip() else ''
        print(json.dumps(counts), flush=True)
    ''')


def config_text(prefix, ports, listen, weights):
    extra = ''.join(f'[[node]]\nname = "{n}"\naddress = "{a}"\n\n' for n, a in mesh_lab.NODES.items())
    extra += '[reload]\nwatch = false\n'
    extra += '[[service]]\nname = "whoami"\nscheduler = "wrr"\n  [[service.port]]\n  published = 8000\n'
    for (ip, node), w in zip(mesh_lab.TASKS, weights):
        extra += f'  [[service.task]]\n  address = "{ip}"\n  node = "{node}"\n  weight = {w}\n'
    extra += '[[service]]\nname = "echo"\n  [[service.port]]\n  protocol = "udp"\n  published = 9000\n'
    for ip, node in mesh_lab.TASKS:
        extra += f'  [[service.task]]\n  address = "{ip}"\n  node = "{node}"\n'
    return harness.config_toml(prefix, ports, listen, extra=extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--minutes', type=float, default=30)
    ap.add_argument('--warmup', type=float, default=180)
    ap.add_argument('--out', default='')
    args = ap.parse_args()
    seconds = args.minutes * 60
    workdir = harness.tempfile.mkdtemp(prefix='meshgate-soak-') if hasattr(harness, 'tempfile') \
        else __import__('tempfile').mkdtemp(prefix='meshgate-soak-')
    lab = mesh_lab.Lab(harness.unique)
    mg = None
    try:
        ext_if = lab.add_client('203.0.113.2/24')
        und_if = lab.add_underlay()
        lab.start_servers(workdir)
        prefix, listen = harness.unique('mgs'), f'127.0.0.1:{harness.free_tcp_port()}'
        ports = [harness.port_toml(EXT.name, harness.af_packet(0, ext_if), EXT.role, EXT.cidr, EXT.mac),
                 harness.port_toml(UNDERLAY.name, harness.af_packet(1, und_if), UNDERLAY.role,
                                   UNDERLAY.cidr, UNDERLAY.mac)]
        texts = [config_text(prefix, ports, listen, w) for w in ((1, 1, 1), (3, 1, 2))]
        mg = harness.Meshgate(workdir, texts[0], prefix, listen, log_level='info')
        mg.start()
        mg.wait_ready()
        script = os.path.join(workdir, 'soak_client.py')
        with open(script, 'w') as f:
            f.write(CLIENT)
        client = subprocess.Popen(['ip', 'netns', 'exec', lab.client, '/usr/bin/python3', script,
                                   EXT.address, str(seconds)], stdout=subprocess.PIPE, text=True)
        start, samples, reloads, failed_reloads, last = time.monotonic(), [], 0, 0, {}
        import threading
        client_lines = []
        threading.Thread(target=lambda: [client_lines.append(line) for line in client.stdout],
                         daemon=True).start()
        while client.poll() is None and time.monotonic() - start < seconds + 60:
            time.sleep(10)
            if mg.proc.poll() is not None:
                print(f'meshgate exited {mg.proc.returncode}', flush=True)
                break
            with open(mg.config_path, 'w') as f:
                f.write(texts[(reloads + 1) % 2])
            p = subprocess.run([MESHGATECTL, '--file-prefix', prefix, 'reload'], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60)
            reloads += 1
            failed_reloads += p.returncode != 0
            m = mg.metrics()
            s = {'t': round(time.monotonic() - start), 'rss_kib': harness.rss_kib(mg.proc.pid),
                 'pool_in_use': m.get('meshgate_packet_pool_in_use', 0, socket='0'),
                 'connections': m.get('meshgate_connection_table_entries', 0),
                 'neighbors': m.get('meshgate_neighbor_entries', 0), 'reloads': reloads,
                 'drops': m.nonzero_drops()}
            if client_lines:
                s['client'] = json.loads(client_lines[-1])
            samples.append(s)
            print(json.dumps(s), flush=True)
        client.wait(timeout=120)
        alive = mg.proc.poll() is None
        final = json.loads(client_lines[-1]) if client_lines else {}
        warm = [s for s in samples if s['t'] >= args.warmup] or samples
        first, end = warm[0], warm[-1]

        def drift(key):
            a, b = first[key], end[key]
            return 0.0 if a == b else (b - a) / max(a, 1)
        figures = {k: {'start': first[k], 'end': end[k], 'max': max(s[k] for s in warm),
                       'drift': round(drift(k), 4)} for k in ('rss_kib', 'pool_in_use', 'connections')}
        verdict = alive and failed_reloads == 0 and all(abs(f['drift']) <= 0.05 or
                                                       abs(f['end'] - f['start']) <= 64
                                                       for f in figures.values())
        summary = {'minutes': args.minutes, 'reloads': reloads, 'failed_reloads': failed_reloads,
                   'alive': alive, 'figures': figures, 'client': final,
                   'drops': end.get('drops', {}), 'ok': verdict}
        print(json.dumps(summary, indent=1), flush=True)
        if args.out:
            with open(args.out, 'w') as f:
                json.dump({'summary': summary, 'samples': samples}, f, indent=1)
        if mg.stop() != 0:
            verdict = False
        return 0 if verdict else 1
    finally:
        if mg is not None:
            mg.cleanup()
        lab.destroy()


if __name__ == '__main__':
    sys.exit(main())
