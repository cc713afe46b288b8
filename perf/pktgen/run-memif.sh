#!/bin/bash
# Pktgen-DPDK against meshgate over two net_memif pairs on one host.
#   perf/pktgen/run-memif.sh PKTGEN SCRIPT.lua [MESHGATE]
# Pktgen owns the memif sockets (servers), meshgate connects to them (clients);
# each gets one lcore to poll on besides its main lcore. Knobs of the Lua
# scripts (PG_RATE, PG_SECONDS, ...) pass through the environment.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pktgen=${1:?path to the pktgen binary}
script=$(realpath "${2:?a Lua script, e.g. perf/pktgen/range.lua}")
meshgate=${3:-$here/../../build/control/meshgate}
run=/tmp/meshgate-pktgen
mkdir -p "$run" /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
(($(cat /proc/sys/vm/nr_hugepages) >= 1024)) || echo 1024 >/proc/sys/vm/nr_hugepages
rm -f "$run"/*.sock

# Pktgen 23.03 wants a terminal; `script` gives it one and keeps its output.
script -qfec "$pktgen -l 0-1 --file-prefix pg -m 1024 --no-pci \
    --vdev net_memif0,role=server,socket=$run/clients.sock,mac=02:00:00:00:01:00 \
    --vdev net_memif1,role=server,socket=$run/nodes.sock,mac=02:00:00:00:01:01 \
    -- -P -m '1.[0-1]' -f $script" "$run/pktgen.out" >/dev/null &
pg=$!
for _ in $(seq 50); do [[ -S $run/nodes.sock ]] && break; sleep 0.2; done

sed "s|/tmp/pg/|$run/|" "$here/meshgate-memif.toml" >"$run/meshgate.toml"
"$meshgate" --config "$run/meshgate.toml" >"$run/meshgate.out" 2>&1 &
mg=$!
wait $pg || true
# stop meshgate before the memif servers go (a client whose peer unmaps can fault)
kill -INT $mg; wait $mg || true
grep -aE '^(links|sending|  t=|RESULT|  meshgate_)' "$run/pktgen.out" | tr -d '\r'
echo "logs: $run/pktgen.out $run/meshgate.out"
