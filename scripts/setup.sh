#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages), prepares hugepages and builds meshgate into
# build/. Idempotent; run as root. Sourced by demo.sh and test.sh, or run alone.
set -euo pipefail

MESHGATE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$MESHGATE_ROOT/build}

packages=(
    # build
    g++ pkg-config cmake meson ninja-build
    # the sanitizer build and the fuzz targets (scripts/test.sh)
    clang-14 libfuzzer-14-dev
    libdpdk-dev dpdk dpdk-dev libtbb-dev libtoml11-dev libspdlog-dev prometheus-cpp-dev
    libcli11-dev nlohmann-json3-dev libcurl4-openssl-dev libgtest-dev libgmock-dev
    libbenchmark-dev libnl-route-3-dev libssl-dev
    # tests: packet oracle, namespaces, kernel peers
    python3 python3-scapy iproute2 ethtool iputils-ping iputils-arping tshark
    curl netcat-openbsd procps kmod prometheus
    # a real one-node swarm (tests/integration/test_swarm.py): its engine, and an image's binary
    docker.io busybox-static
    # gateways behind an ECMP router (tests/integration/bgp_lab.py): BGP daemons, and nft to
    # hide an af_packet port's veth from the kernel. On a machine with systemd, installing
    # them starts frr.service (zebra, staticd) and bird.service in the root namespace; they
    # are left alone: the tests run their own instances in their own namespaces, FRR with its
    # own pathspace (-N) and BIRD with its own control socket, which the system ones never meet.
    frr bird2 nftables
    # tasks that read the PROXY protocol header (tests/integration/test_proxy_protocol.py); on a
    # machine with systemd the package starts nginx.service on port 80, which the tests never use
    nginx-light
)

install_missing() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "setup: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

setup_hugepages() {
    local want=1024
    if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt "$want" ]; then
        echo "$want" > /proc/sys/vm/nr_hugepages || true
    fi
    if ! mountpoint -q /dev/hugepages; then
        mkdir -p /dev/hugepages
        mount -t hugetlbfs nodev /dev/hugepages
    fi
    echo "setup: $(cat /proc/sys/vm/nr_hugepages) hugepages of 2 MiB, hugetlbfs on /dev/hugepages"
}

build() {
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
        meson setup "$BUILD_DIR" "$MESHGATE_ROOT" --buildtype=release
    fi
    ninja -C "$BUILD_DIR"
}

# For the demos: stops the gateway whose pid PIDFILE holds (SIGTERM, up to 10 s), removes PIDFILE.
stop_gateway() {
    local pidfile=$1
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "$(basename "$0" .sh): stopping the gateway (pid $(cat "$pidfile"))"
        kill "$(cat "$pidfile")"
        for _ in $(seq 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (DPDK, hugepages and network namespaces need it)" >&2
    exit 1
fi
install_missing
setup_hugepages
build
