#!/bin/bash
# Established-path throughput of several builds side by side on this machine:
#   perf/compare_pipeline.sh ROUNDS BUILD/perf/pipeline_bench...
# runs BM_forward and BM_reverse at 4k and 1M flows of each binary in turn, ROUNDS times, on
# CPU 1, and prints each one's best and median round (packets per second and TSC cycles per
# packet). On a shared machine the best round is the least disturbed one.
set -euo pipefail
rounds=$1
shift
filter='BM_(forward|reverse)/(flows:)?(4096|1048576)(/kernel:0/sync:0/proxy:0)?$'
for _ in $(seq "$rounds"); do
    for bench in "$@"; do
        taskset -c 1 "$bench" --benchmark_min_time=0.3 --benchmark_filter="$filter" 2>/dev/null |
            grep -E '^BM_' | sed -E "s|^|$bench |"
    done
done | python3 -c '
import collections, re, statistics, sys
rate, cycles = collections.defaultdict(list), collections.defaultdict(list)
for line in sys.stdin:
    bench, name = line.split()[:2]
    name = re.sub(r"flows:|/kernel:0/sync:0/proxy:0", "", name)
    rate[(name, bench)].append(float(re.search(r"items_per_second=([0-9.]+)M", line).group(1)))
    cycles[(name, bench)].append(float(re.search(r"cycles/packet=([0-9.]+)", line).group(1)))
for key in sorted(rate):
    r, c = rate[key], cycles[key]
    print(f"{key[0]:20s} {key[1]:48s} Mpps best {max(r):6.2f} median {statistics.median(r):6.2f}"
          f"  cycles/packet best {min(c):6.1f} median {statistics.median(c):6.1f}  rounds {len(r)}")
'
