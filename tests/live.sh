#!/usr/bin/env bash
# The live suite: a real Asterisk 22 driven through AMI Originate, `calltracking run` recording
# what happens, every record compared with Asterisk's own queue_log, CDR and AMI stream.
# Runs on SQLite, then on a throw-away PostgreSQL cluster, like tests/run.sh (run that first: it
# creates .venv). Finds Asterisk through ASTERISK_PREFIX (default /opt/asterisk); without one it
# says so and exits 0, unless CALLTRACKING_LIVE_REQUIRED=1 (CI sets it when it installed one).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${ASTERISK_PREFIX:-/opt/asterisk}
if [ ! -x "$prefix/sbin/asterisk" ]; then
    echo "live suite did not run: no Asterisk at $prefix/sbin/asterisk (set ASTERISK_PREFIX)" >&2
    [ "${CALLTRACKING_LIVE_REQUIRED:-0}" = "1" ] && exit 1
    exit 0
fi
[ -x .venv/bin/python ] || { echo "run ./tests/run.sh first (it creates .venv)" >&2; exit 1; }
export ASTERISK_PREFIX="$prefix"
run() {
    local rc=0
    .venv/bin/python -m pytest -m live "$@" || rc=$?
    if [ $rc -eq 5 ]; then echo "pytest ran no live tests: failing" >&2; return 1; fi
    return $rc
}
echo "=== live suite on SQLite ($("$prefix/sbin/asterisk" -V)) ==="
CALLTRACKING_TEST_DB=sqlite run -q tests/live "$@"
echo "=== live suite on PostgreSQL ==="
CALLTRACKING_TEST_DB=postgresql run -q tests/live "$@"
