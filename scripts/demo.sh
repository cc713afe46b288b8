#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install, build, and leave meshgate running on
# virtual devices (config/demo.toml: TAP ports mg-ext and mg-underlay), reachable from the host.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

CONFIG=${CONFIG:-$MESHGATE_ROOT/config/demo.toml}
PIDFILE=/run/meshgate-demo.pid
LOG=/var/log/meshgate-demo.log

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "demo: stopping the running demo gateway (pid $(cat "$PIDFILE"))"
    kill "$(cat "$PIDFILE")"
    for _ in $(seq 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
fi

"$BUILD_DIR/control/meshgate" --config "$CONFIG" --check
setsid "$BUILD_DIR/control/meshgate" --config "$CONFIG" </dev/null >"$LOG" 2>&1 &
echo $! > "$PIDFILE"

# The TAP PMD creates the host side of each port; give the host an address on each link.
for _ in $(seq 100); do ip link show mg-underlay >/dev/null 2>&1 && break; sleep 0.2; done
if ! ip link show mg-ext >/dev/null 2>&1; then
    echo "demo: meshgate did not come up, see $LOG:" >&2
    tail -20 "$LOG" >&2
    exit 1
fi
ip addr replace 203.0.113.1/24 dev mg-ext
ip link set mg-ext up
ip addr replace 192.168.50.254/24 dev mg-underlay
ip link set mg-underlay up

ping -c 2 -W 2 203.0.113.10
cat <<MSG

meshgate is running (pid $(cat "$PIDFILE"), log $LOG), configured by $CONFIG.
  ping 203.0.113.10                      # the external port
  arping -I mg-ext -c 3 203.0.113.10
  curl -s http://127.0.0.1:9091/metrics  # counters
  kill -HUP \$(cat $PIDFILE)              # reload the config
  kill \$(cat $PIDFILE)                   # stop
MSG
