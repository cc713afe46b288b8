#!/bin/sh
# deploy-node-piece.sh: runs scripts/meshgate-node.sh on every node of a swarm, with one command.
#
#   deploy-node-piece.sh [options] GATEWAY_ADDRESS GATEWAY_VTEP
#
#   GATEWAY_ADDRESS   the gateway's address on the ingress network (meshgate's [overlay] address,
#                     without the prefix length)
#   GATEWAY_VTEP      the gateway's VXLAN tunnel endpoint (its underlay port's address)
#   --mac MAC         the gateway's MAC in the tunnel (default 02:42 + GATEWAY_ADDRESS)
#   --network NAME    the ingress network (default ingress)
#   --exec-root DIR   the nodes' dockerd --exec-root (default /var/run/docker)
#   --image IMAGE     an image with /bin/sh and chroot, present on every node (default
#                     meshgate/busybox:1, see scripts/swarm_lab.py; busybox or alpine work)
#   --name NAME       the service's name (default meshgate-node)
#   --remove          remove the service and exit
#
# It creates (or re-creates) a global service in the host's network namespace that chroots into
# the node's root file system (bind-mounted at /host) and runs the script's text with the node's
# own sh, nsenter, ip and bridge. Run it again after the ingress network was re-created: its id
# changes. Talks to the swarm with `docker` ($DOCKER, default docker on PATH; DOCKER_HOST etc.
# are honoured). Needs a manager and a Docker API >= 1.41 (dockerd 20.10) for --cap-add.

set -eu

DOCKER=${DOCKER:-docker}
MAC='' NETWORK=ingress EXEC_ROOT=/var/run/docker IMAGE=meshgate/busybox:1 NAME=meshgate-node
REMOVE=

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --mac) MAC=$2; shift 2 ;;
        --network) NETWORK=$2; shift 2 ;;
        --exec-root) EXEC_ROOT=$2; shift 2 ;;
        --image) IMAGE=$2; shift 2 ;;
        --name) NAME=$2; shift 2 ;;
        --remove) REMOVE=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done

if $DOCKER service inspect "$NAME" >/dev/null 2>&1; then
    $DOCKER service rm "$NAME" >/dev/null
fi
[ -n "$REMOVE" ] && exit 0
[ $# -eq 2 ] || usage
GATEWAY_ADDRESS=${1%/*} GATEWAY_VTEP=$2

SCRIPT=$(dirname "$0")/meshgate-node.sh
[ -r "$SCRIPT" ] || { echo "cannot read $SCRIPT" >&2; exit 1; }
NETWORK_ID=$($DOCKER network inspect -f '{{.Id}}' "$NETWORK")

# The service's command is the script's text (the nodes do not have the file); sh -c's $0 names
# it in ps. SYS_ADMIN: setns(CLONE_NEWNET) (Docker's seccomp profile allows setns only with it);
# NET_ADMIN: the neighbor and FDB entries; SYS_CHROOT is in the default set.
$DOCKER service create --detach --quiet --name "$NAME" --mode global \
    --network host --cap-add NET_ADMIN --cap-add SYS_ADMIN \
    --mount type=bind,src=/,dst=/host \
    --env GATEWAY_ADDRESS="$GATEWAY_ADDRESS" --env GATEWAY_VTEP="$GATEWAY_VTEP" \
    --env GATEWAY_MAC="$MAC" --env NETWORK_ID="$NETWORK_ID" --env DOCKER_EXEC_ROOT="$EXEC_ROOT" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --restart-condition any --restart-delay 2s \
    --log-driver json-file --log-opt max-size=1m \
    "$IMAGE" chroot /host /bin/sh -c "$(cat "$SCRIPT")" meshgate-node
