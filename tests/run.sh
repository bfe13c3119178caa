#!/usr/bin/env bash
# Run the whole test suite on SQLite, then on a throw-away PostgreSQL cluster.
# Installs what the tests need: Debian packages (chromium, ffmpeg, espeak-ng, PostgreSQL server)
# when missing, and the project with its test extras into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing Debian packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

# pytest exit code 5 means "no tests ran": that is a failure here.
run() {
    local rc=0
    .venv/bin/python -m pytest "$@" || rc=$?
    if [ $rc -eq 5 ]; then echo "pytest ran no tests: failing" >&2; return 1; fi
    return $rc
}

# The live suite (a real Asterisk) runs apart: tests/live.sh.
echo "=== tests on SQLite ==="
CALLTRACKING_TEST_DB=sqlite run -q -m "not live" "$@"
echo "=== tests on PostgreSQL ==="
CALLTRACKING_TEST_DB=postgresql run -q -m "not live" "$@"
