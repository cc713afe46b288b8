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
rm -f "$run"/*.sock "$run/done"
export PG_DONE=$run/done

# Pktgen 23.03 wants a terminal; `script` gives it one and keeps its output.
script -qfec "$pktgen -l 0-1 --file-prefix pg -m 1024 --huge-unlink --no-pci \
    --vdev net_memif0,role=server,socket=$run/clients.sock,mac=02:00:00:00:01:00 \
    --vdev net_memif1,role=server,socket=$run/nodes.sock,mac=02:00:00:00:01:01 \
    -- -P -m '1.[0-1]' -f $script" "$run/pktgen.out" >/dev/null &
pg=$!
for _ in $(seq 50); do [[ -S $run/nodes.sock ]] && break; sleep 0.2; done

sed "s|/tmp/pg/|$run/|" "$here/meshgate-memif.toml" >"$run/meshgate.toml"
"$meshgate" --config "$run/meshgate.toml" >"$run/meshgate.out" 2>&1 &
mg=$!
# the script creates $PG_DONE when it has printed all, and quits once it is gone.
# A Pktgen built without Lua (meson's enable_lua is false by default) says so and
# stays at its prompt for ever: stop it and say why.
nolua=
while kill -0 $pg 2>/dev/null && [[ ! -e $PG_DONE ]]; do
    if grep -aqE 'build with Lua enabled|Lua is not enabled' "$run/pktgen.out"; then
        nolua=1
        break
    fi
    sleep 0.5
done
# stop meshgate before the memif servers go (a client whose peer unmaps can fault);
# TERM, as INT: a background job ignores SIGINT until meshgate has set its handler
kill $mg 2>/dev/null || echo "run-memif.sh: meshgate had stopped before the script was done" >&2
wait $mg || true
if [[ $nolua ]]; then
    kill $pg; wait $pg || true
    echo "run-memif.sh: $pktgen was built without Lua and cannot run $script;" \
        "build it with 'meson setup -Denable_lua=true' (perf/pktgen/README.md)" >&2
    echo "logs: $run/pktgen.out $run/meshgate.out" >&2
    exit 1
fi
rm -f "$PG_DONE"
wait $pg || true
# the scripts' prints share lines with Pktgen's screen: a cursor move starts a line
tr -d '\r' <"$run/pktgen.out" | sed -E 's/\x1b\[[0-9;]*H/\n/g; s/\x1b(\[[0-9;?]*[A-Za-z]|[78])//g' |
    grep -aE '^(links|sending|  t=|RESULT|  meshgate_)' >"$run/result" || true
cat "$run/result"
echo "logs: $run/pktgen.out $run/meshgate.out"
grep -q '^RESULT' "$run/result"
