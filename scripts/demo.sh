#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install, build, and leave meshgate running on
# virtual devices in front of a small swarm, so that `curl 203.0.113.10:8000` is answered by
# the tasks in turn:
#
#   host 203.0.113.1 -- mg-ext (TAP) -- meshgate -- mg-underlay (TAP) -- bridge
#        -- node-1, node-2: network namespaces with kernel VXLAN (VNI 4096) as Docker sets it up
#        -- three whoami tasks behind them (config/demo.toml)
#
# Run again to start afresh; `scripts/demo.sh --stop` stops the gateway and removes the
# namespaces.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

CONFIG=${CONFIG:-$MESHGATE_ROOT/config/demo.toml}
PIDFILE=/run/meshgate-demo.pid
LOG=/var/log/meshgate-demo.log
LAB="/usr/bin/python3 $MESHGATE_ROOT/scripts/mesh_lab.py"
CTL="$BUILD_DIR/control/meshgatectl --file-prefix meshgate-demo"

stop() {
    stop_gateway "$PIDFILE"
    $LAB down
}

stop
if [ "${1:-}" = "--stop" ]; then
    echo "demo: stopped"
    exit 0
fi

"$BUILD_DIR/control/meshgate" --config "$CONFIG" --check
setsid "$BUILD_DIR/control/meshgate" --config "$CONFIG" </dev/null >"$LOG" 2>&1 &
echo $! > "$PIDFILE"

# The TAP PMD creates the host side of each port.
for _ in $(seq 100); do ip link show mg-underlay >/dev/null 2>&1 && break; sleep 0.2; done
if ! ip link show mg-ext >/dev/null 2>&1; then
    echo "demo: meshgate did not come up, see $LOG:" >&2
    tail -20 "$LOG" >&2
    exit 1
fi
# The host is a client on the external link; the underlay TAP joins a bridge to the nodes.
# A TAP's host side starts with the gateway's own MAC: a bridge would take frames to that MAC
# for itself, so the host sides get MACs of their own.
sysctl -q -w net.ipv6.conf.mg-ext.disable_ipv6=1 net.ipv6.conf.mg-underlay.disable_ipv6=1 || true
ip link set mg-ext address 02:00:00:00:01:fe
ip link set mg-underlay address 02:00:00:00:02:fe
ip addr replace 203.0.113.1/24 dev mg-ext
ip link set mg-ext up
ip link set mg-underlay up
$LAB up --config "$CONFIG" --attach mg-underlay

echo "demo: the mesh answers:"
answered=0
for _ in $(seq 30); do
    if curl -s --max-time 2 http://203.0.113.10:8000/ >/dev/null; then answered=1; break; fi
    sleep 0.5
done
if [ "$answered" -ne 1 ]; then
    echo "demo: no answer from 203.0.113.10:8000, see $LOG" >&2
    exit 1
fi
for _ in 1 2 3; do echo "  $(curl -s --max-time 2 http://203.0.113.10:8000/)"; done
echo "demo: port 8001 gives the tasks a PROXY header, they know the client:"
echo "  $(curl -s --max-time 2 http://203.0.113.10:8001/)"
$CTL services

cat <<MSG

meshgate is running (pid $(cat "$PIDFILE"), log $LOG), configured by $CONFIG.
Try:
  curl http://203.0.113.10:8000/     # answered by the tasks in turn
  curl http://203.0.113.10:8001/     # the task says who you are: from a PROXY protocol header
  $CTL services
  $CTL conns
  $CTL stats
  curl -s http://127.0.0.1:9091/metrics
Change $CONFIG (weights, tasks, services): saving it reloads it, or
  $CTL reload
Capture the external port live:
  dpdk-dumpcap --file-prefix=meshgate-demo -i 0 -w /tmp/ext.pcapng
Stop it and remove the namespaces:
  scripts/demo.sh --stop
MSG
