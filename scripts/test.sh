#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install, build, and run every test (unit, pcap
# golden, end-to-end in network namespaces). Exits non-zero on any failure or when no test ran.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

status=0
meson test -C "$BUILD_DIR" --print-errorlogs --num-processes 2 "$@" || status=$?

# Count from meson's own log, so a run that executed nothing cannot pass.
read -r passed failed skipped < <(/usr/bin/python3 - "$BUILD_DIR/meson-logs/testlog.json" <<'PY'
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
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$passed" -eq 0 ]; then
    echo "test: no test ran" >&2
    exit 1
fi
if [ "$failed" -ne 0 ] && [ "$status" -eq 0 ]; then status=1; fi
exit "$status"
