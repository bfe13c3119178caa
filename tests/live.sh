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
# A prebuilt Asterisk compiled for instructions this CPU lacks (AVX-512 on a CPU without it) dies
# with SIGILL (exit 132) at its first start: nothing can be proven live on such a machine. Say so
# loudly; it is the machine, not a failing test, so it does not fail the run.
rc=0
"$prefix/sbin/asterisk" -C /nonexistent/asterisk.conf -rx 'core show version' >/dev/null 2>&1 || rc=$?
if [ $rc -eq 132 ]; then
    echo "==================================================================================" >&2
    echo "LIVE SUITE NOT RUN: $prefix/sbin/asterisk dies with an illegal instruction on this CPU" >&2
    echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), AVX-512: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no))." >&2
    echo "The binary was built for instructions this CPU lacks; rebuild Asterisk here to run it." >&2
    echo "==================================================================================" >&2
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
