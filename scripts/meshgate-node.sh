#!/bin/sh
# meshgate-node.sh: the node piece of meshgate, run on every swarm node.
#
# A swarm node sends ingress-overlay traffic only to the peers it learnt from gossip (Docker's
# peerAdd puts a neighbor entry IP -> MAC and an FDB entry MAC -> VTEP on the overlay's vxlan0).
# The gateway is no swarm member, so this loop makes those two entries for it, every INTERVAL
# seconds, in the ingress network's namespace <exec-root>/netns/1-<first 10 chars of its id>.
# Docker recreates that namespace (dockerd restart, the network's last endpoint leaving and
# coming back), which drops the entries: each pass checks and re-adds them. It logs one line
# when it (re)adds them or when the namespace comes or goes, nothing otherwise.
#
# Environment:
#   GATEWAY_ADDRESS   the gateway's address on the ingress network ([overlay] address), required
#   GATEWAY_VTEP      the gateway's VXLAN tunnel endpoint (its underlay port address), required
#   NETWORK_ID        the ingress network's id (docker network inspect -f '{{.Id}}' ingress), required
#   GATEWAY_MAC       the gateway's MAC inside the tunnel, default 02:42 + GATEWAY_ADDRESS (Docker's rule)
#   DOCKER_EXEC_ROOT  dockerd's --exec-root, default /var/run/docker
#   VXLAN_DEVICE      the device in that namespace, default vxlan0 (the network's first subnet)
#   INTERVAL          seconds between passes, default 2
#   ONCE              if set, one pass, exit 0 when the entries are there, 1 otherwise
#
# Needs iproute2 (ip, bridge) and nsenter (util-linux), root (CAP_NET_ADMIN + CAP_SYS_ADMIN).
# scripts/deploy-node-piece.sh runs it on every node of a swarm as a global service.

set -u

log() { echo "meshgate-node: $*"; }

if [ -z "${GATEWAY_ADDRESS:-}" ] || [ -z "${GATEWAY_VTEP:-}" ] || [ -z "${NETWORK_ID:-}" ]; then
    log "GATEWAY_ADDRESS, GATEWAY_VTEP and NETWORK_ID must be set" >&2
    exit 2
fi
EXEC_ROOT=${DOCKER_EXEC_ROOT:-/var/run/docker}
DEV=${VXLAN_DEVICE:-vxlan0}
INTERVAL=${INTERVAL:-2}

if [ -z "${GATEWAY_MAC:-}" ]; then
    old_ifs=$IFS; IFS=.
    # shellcheck disable=SC2086
    set -- $GATEWAY_ADDRESS
    IFS=$old_ifs
    if [ $# -ne 4 ]; then
        log "GATEWAY_ADDRESS is not an IPv4 address: $GATEWAY_ADDRESS" >&2
        exit 2
    fi
    GATEWAY_MAC=$(printf '02:42:%02x:%02x:%02x:%02x' "$1" "$2" "$3" "$4")
fi
GATEWAY_MAC=$(echo "$GATEWAY_MAC" | tr 'A-F' 'a-f')

NS="$EXEC_ROOT/netns/1-$(printf '%.10s' "$NETWORK_ID")"

in_ns() { nsenter --net="$NS" "$@"; }

# Both entries there, as peerAdd would have made them?
present() {
    in_ns ip neigh show "$GATEWAY_ADDRESS" dev "$DEV" 2>/dev/null \
        | grep -i "lladdr $GATEWAY_MAC" | grep -q PERMANENT || return 1
    in_ns bridge fdb show dev "$DEV" 2>/dev/null \
        | grep -qi "^$GATEWAY_MAC dst $GATEWAY_VTEP .*self permanent"
}

add() {
    in_ns ip neigh replace "$GATEWAY_ADDRESS" lladdr "$GATEWAY_MAC" dev "$DEV" nud permanent &&
    in_ns bridge fdb replace "$GATEWAY_MAC" dev "$DEV" dst "$GATEWAY_VTEP" self permanent
}

# One pass; prints a line when the state changes. $state: absent | unusable | present | failing
state=start
pass() {
    if [ ! -e "$NS" ]; then
        # no namespace yet: Docker makes it with the node's first task
        [ "$state" != absent ] && log "waiting for $NS: not there"
        state=absent
        return 1
    fi
    if ! err=$(in_ns ip link show "$DEV" 2>&1 >/dev/null); then
        case $err in
        *"Invalid argument"*)
            # The file is there but no namespace is mounted on it in our view: Docker mounted it
            # after this container took its copy of the host's mounts (the bind of / is private
            # where the host's / is), or it is a stale file. A new container sees what is
            # mounted now: exit, the swarm starts us again (--restart-condition any).
            if [ -z "${ONCE:-}" ]; then
                log "$NS is no namespace in this container's view: restarting to see the host's mounts"
                exit 3
            fi ;;
        esac
        # no $DEV yet, or no right to setns (Docker's seccomp profile wants CAP_SYS_ADMIN for
        # it: Operation not permitted)
        [ "$state" != unusable ] && log "waiting for $NS ($DEV): $err"
        state=unusable
        return 1
    fi
    present && { state=present; return 0; }
    if err=$(add 2>&1) && present; then
        log "added $GATEWAY_ADDRESS lladdr $GATEWAY_MAC and fdb $GATEWAY_MAC dst $GATEWAY_VTEP on $DEV in $NS"
        state=present
        return 0
    fi
    if [ "$state" != failing ]; then
        log "could not add the entries in $NS: $err"
    fi
    state=failing
    return 1
}

if [ -n "${ONCE:-}" ]; then
    pass
    exit $?
fi

log "gateway $GATEWAY_ADDRESS ($GATEWAY_MAC) behind $GATEWAY_VTEP; watching $NS every ${INTERVAL}s"
trap 'exit 0' INT TERM
while :; do
    pass
    sleep "$INTERVAL" &
    wait $!
done
