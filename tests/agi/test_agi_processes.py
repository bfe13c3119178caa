"""`calltracking agi --processes 2`: two server processes on one port (SO_REUSEPORT), a dead
one restarted, SIGTERM stops both (real processes and sockets, both databases)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

from calltracking.db import session_scope
from calltracking.models import Call

from support.config import spool_dir
from support.fastagi_client import call, headers
from support.net import free_port, listeners

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def _wait(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_two_processes_share_the_port(db_url, data, session_factory):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
    env.update(CALLTRACKING_DATABASE_URL=db_url, CALLTRACKING_AGI_LISTEN=f"127.0.0.1:{port}",
               CALLTRACKING_AGI_TIMEOUT_MS="3000", CALLTRACKING_AGI_WRITE_WAIT_MS="3000",
               CALLTRACKING_AGI_PROCESSES="2", CALLTRACKING_GENERAL_DEFAULT_QUEUE="general-q",
               CALLTRACKING_AGI_SPOOL_DIR=spool_dir())
    proc = subprocess.Popen([sys.executable, "-c", "from calltracking.cli import main; main(['agi'])"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        line = b""
        while b"(budget" not in line:                      # after the server's own log line
            line = proc.stderr.readline()
            assert line, "the server did not start"
        assert b"2 processes" in line
        assert _wait(lambda: listeners(port) == 2), "the second process never listened"
        with ThreadPoolExecutor(8) as ex:
            results = list(ex.map(lambda i: call(port, headers(args=("74950001001", f"p.{i}"))).vars,
                                  range(60)))
        assert all(v["CT_STATUS"] == "ok" and v["CT_SOURCE"] == "Google Ads" for v in results)
        with session_scope(session_factory) as s:
            assert s.scalar(select(func.count()).select_from(Call)) == 60

        kids = _children(proc.pid)
        assert len(kids) == 1
        os.kill(kids[0], signal.SIGKILL)                     # the parent starts another one
        assert _wait(lambda: _children(proc.pid) and _children(proc.pid) != kids
                     and listeners(port) == 2)
        assert call(port, headers(args=("74950001001", "p.after"))).vars["CT_STATUS"] == "ok"

        kids = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert _wait(lambda: not any(os.path.exists(f"/proc/{k}") and
                                     open(f"/proc/{k}/stat").read().split()[2] != "Z" for k in kids))
        assert listeners(port) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
