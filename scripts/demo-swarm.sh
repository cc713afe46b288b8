#!/usr/bin/env bash
# meshgate following a real Docker swarm on this one machine (docs/swarm.md): install, build,
# then
#
#   client ns 203.0.113.2 -- mgdemo-ex -- meshgate -- mgdemo-ul -- node ns 192.168.77.1:
#        its own dockerd, a one-node swarm, ingress re-created with --ip-range 10.0.0.0/25,
#        the service "web" (3 busybox httpd tasks, --publish 8000:80), the node piece
#
# meshgate's file has its two ports, [overlay] address = 10.0.0.200/24 and [swarm] only: the
# services, tasks, node and VNI come from the Engine API. `docker service scale web=5` and the
# gateway follows. Run again to start afresh; `scripts/demo-swarm.sh --stop` removes it all.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

STATE=/run/meshgate-swarm-demo.json
CONFIG=/run/meshgate-swarm-demo.toml
PIDFILE=/run/meshgate-swarm-demo.pid
LOG=/var/log/meshgate-swarm-demo.log
LAB="/usr/bin/python3 $MESHGATE_ROOT/scripts/swarm_lab.py"
PREFIX=meshgate-swarm-demo
CTL="$BUILD_DIR/control/meshgatectl --file-prefix $PREFIX"

stop() {
    stop_gateway "$PIDFILE"
    $LAB down --state "$STATE"
}

stop
if [ "${1:-}" = "--stop" ]; then
    echo "demo-swarm: stopped"
    exit 0
fi

echo "demo-swarm: starting dockerd, the swarm, the service web and the node piece"
info=$($LAB up --state "$STATE" --name mgdemo --client --service web --node-piece)
field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <<<"$info"; }
DOCKER_HOST=$(field docker_host)
CLIENT_NS=$(field client_ns)

cat >"$CONFIG" <<TOML
# Written by scripts/demo-swarm.sh: everything but the ports comes from the swarm.
[dpdk]
lcores = "0-1"
memory_mb = 256
file_prefix = "$PREFIX"

[[port]]
name = "ext"
device = "net_af_packet0,iface=$(field external_if)"
role = "external"
address = "203.0.113.10/24"

[[port]]
name = "underlay"
device = "net_af_packet1,iface=$(field underlay_if)"
role = "underlay"
address = "$(field gateway_vtep)/24"

[overlay]
address = "$(field gateway_overlay)/24"

[swarm]
endpoint = "$DOCKER_HOST"
network = "ingress"

[limits]
connections = 65536

[stats]
listen = "127.0.0.1:9092"
TOML

"$BUILD_DIR/control/meshgate" --config "$CONFIG" --check
setsid "$BUILD_DIR/control/meshgate" --config "$CONFIG" </dev/null >"$LOG" 2>&1 &
echo $! > "$PIDFILE"

echo "demo-swarm: the mesh answers (each task with its container id):"
answered=0
for _ in $(seq 60); do
    if ip netns exec "$CLIENT_NS" curl -s --max-time 2 http://203.0.113.10:8000/ >/dev/null; then
        answered=1
        break
    fi
    sleep 0.5
done
if [ "$answered" -ne 1 ]; then
    echo "demo-swarm: no answer from 203.0.113.10:8000, see $LOG" >&2
    exit 1
fi
for _ in 1 2 3 4 5 6; do
    echo "  $(ip netns exec "$CLIENT_NS" curl -s --max-time 2 http://203.0.113.10:8000/)"
done
$CTL services
$CTL swarm

cat <<MSG

meshgate is running (pid $(cat "$PIDFILE"), log $LOG), configured by $CONFIG, following the
swarm at $DOCKER_HOST. Try:
  ip netns exec $CLIENT_NS curl http://203.0.113.10:8000/
  /usr/bin/docker -H $DOCKER_HOST service scale web=5        # then: $CTL services
  /usr/bin/docker -H $DOCKER_HOST service update --publish-add 8080:80 web
  $CTL swarm
  curl -s http://127.0.0.1:9092/metrics | grep -E 'meshgate_(swarm|service_info|task_info)'
Stop it and remove the swarm:
  scripts/demo-swarm.sh --stop
MSG
