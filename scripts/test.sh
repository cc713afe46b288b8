#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install, build, and run every test (unit, pcap
# golden, end-to-end in network namespaces), then the unit and integration tests and the fuzz
# targets again in a clang build under ASan and UBSan (build-sanitize/). Exits non-zero on any
# failure or when either run ran no test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

# Counts one run from meson's own log, so a run that executed nothing cannot pass: fails if
# no test passed or one failed.
count_results() {
    local passed failed skipped
    read -r passed failed skipped < <(/usr/bin/python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)["result"]
        key = "OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"
        counts[key] += 1
except FileNotFoundError:
    pass
print(counts["OK"], counts["FAIL"], counts["SKIP"])
PY
    )
    echo "tests ($2): $passed passed, $failed failed, $skipped skipped"
    if [ "$passed" -eq 0 ]; then
        echo "test: no test ran ($2)" >&2
        return 1
    fi
    [ "$failed" -eq 0 ]
}

status=0
meson test -C "$BUILD_DIR" --print-errorlogs --num-processes 2 "$@" || status=$?
count_results "$BUILD_DIR" normal || status=1

# The same code again under AddressSanitizer and UBSan (clang), with the fuzz targets: unit
# tests, the integration suite once (not its 2-worker copy) and each fuzzer for 30 s on its
# seeds. Any report aborts the program, so the test that ran it fails. MESHGATE_SANITIZE=0
# skips this part.
if [ "${MESHGATE_SANITIZE:-1}" != 0 ]; then
    SAN_BUILD_DIR=${SAN_BUILD_DIR:-$MESHGATE_ROOT/build-sanitize}
    san_start=$SECONDS
    # A unity build (4 files per compiler run): the control plane's files share heavy headers
    # (toml11, spdlog, nlohmann-json), and it compiles in 242 s instead of 303 here. Only this
    # build: the release build compiles each file alone, so a missing include still fails there.
    if [ ! -f "$SAN_BUILD_DIR/build.ninja" ]; then
        CC=clang-14 CXX=clang++-14 meson setup "$SAN_BUILD_DIR" "$MESHGATE_ROOT" \
            --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
            -Dfuzz=true -Dbenchmarks=false --unity on
    fi
    ninja -C "$SAN_BUILD_DIR" -j2
    export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
    export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
    export LSAN_OPTIONS=suppressions=$MESHGATE_ROOT/scripts/lsan.supp:print_suppressions=0
    # ASan, UBSan and the fuzzers' coverage hooks make the gateway ~10 times slower: the flood
    # tests send that much slower (no test asserts a speed) and compare no memory there.
    export MESHGATE_TIME_SCALE=10
    meson test -C "$SAN_BUILD_DIR" --print-errorlogs --num-processes 2 --no-suite integration-2w \
        --no-suite release-only \
        "$@" || status=$?
    count_results "$SAN_BUILD_DIR" sanitizers || status=1
    echo "sanitizer build and tests: $((SECONDS - san_start)) s"
fi
exit "$status"
