#!/usr/bin/python3
"""Runs one libFuzzer target for a while on its seeds, as a test: exit status 0 only if it ran
and found nothing (no crash, sanitizer report, leak, timeout or out-of-memory).

  run_fuzz.py [--seconds N] [--generate SCRIPT] [--warm-seeds] FUZZER WORKDIR [SEED_DIR...]

WORKDIR/corpus is where libFuzzer keeps what it finds (emptied first: each run starts from the
seeds), WORKDIR/seeds receives generated seeds (--generate runs SCRIPT WORKDIR/seeds; with
--warm-seeds the fuzzer writes there the seeds it makes itself, MESHGATE_FUZZ_SEED_DIR), and
a crashing input is kept as WORKDIR/crash-*, leak-*, timeout-* or oom-*.
"""
import argparse
import os
import shutil
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=int, default=30)
    ap.add_argument('--generate')
    ap.add_argument('--warm-seeds', action='store_true')
    ap.add_argument('fuzzer')
    ap.add_argument('workdir')
    ap.add_argument('seed_dirs', nargs='*')
    a = ap.parse_args()

    corpus = os.path.join(a.workdir, 'corpus')
    seeds = os.path.join(a.workdir, 'seeds')
    for d in (corpus, seeds):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    env = dict(os.environ)
    if a.generate:
        subprocess.run([sys.executable, a.generate, seeds], check=True)
    if a.warm_seeds:
        env['MESHGATE_FUZZ_SEED_DIR'] = seeds
    cmd = [a.fuzzer, f'-max_total_time={a.seconds}', '-timeout=10', '-rss_limit_mb=4096',
           '-print_final_stats=1', f'-artifact_prefix={a.workdir}/', corpus, seeds] + a.seed_dirs
    print(' '.join(cmd), flush=True)
    rc = subprocess.run(cmd, env=env).returncode
    if rc != 0:
        print(f'run_fuzz: {os.path.basename(a.fuzzer)} exited with {rc}', file=sys.stderr)
    return rc


if __name__ == '__main__':
    sys.exit(main())
