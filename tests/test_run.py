"""`calltracking run`: every part answers; SIGTERM stops it cleanly and loses no queued event."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.models import Call
from support.ami_server import FakeAsterisk, load
from support.ami_streams import burst
from support.fastagi_client import call as agi_call, headers as agi_headers
from support.fixtures import FIXTURES, queue_members
from support.net import free_port, listeners

EXPECTED = {e["linkedid"]: e for e in json.loads((FIXTURES / "expected_calls.json").read_text())}
DIDS = ["74950001001", "74950001002", "74950001003", "74950001004", "74950001005", "74950001006",
        "74950001008", "74950001009", "74950001010", "74951110007"]


def poll(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def tracked(session_factory):
    with session_factory() as s, s.begin():
        p = svc.add_project(s, "acme", timezone="Europe/Moscow", default_queue="sales")
        src = svc.add_source(s, p, "Google Ads", channel="ads", short_label="GA")
        for did in DIDS:
            svc.add_number(s, p, did, source=src)
    return "acme"


@pytest.fixture
def asterisk():
    srv = FakeAsterisk(members=queue_members()).start()
    yield srv
    srv.stop()


class Run:
    """`python -m calltracking run` in a subprocess with its own config file."""

    def __init__(self, db_url: str, tmp: Path, ami_port: int, agi_processes: int = 1):
        self.agi_port, self.web_port = free_port(), free_port()
        self.ini = tmp / "config.ini"
        self.ini.write_text(f"""
[general]
pbx_id = pbx1
default_region = RU
default_queue = sales
[database]
url = {db_url}
[ami]
port = {ami_port}
username = calltracking
secret = ctsecret
ping_interval = 1
reconnect_max = 1
[agi]
listen = 127.0.0.1:{self.agi_port}
timeout_ms = 3000
spool_dir = {tmp / "agi-spool"}
processes = {agi_processes}
[web]
listen = 127.0.0.1:{self.web_port}
secret_key = {"k" * 40}
secure_cookies = no
[recordings]
dir = {tmp}
""")
        self.log = tmp / "run.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
        self.proc = subprocess.Popen([sys.executable, "-m", "calltracking", "--config", str(self.ini), "run"],
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def web_status(self, path="/login") -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def terminate(self, timeout=15.0) -> float:
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        return time.monotonic() - t

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def run(db_url, tmp_path, asterisk):
    runs = []

    def start(**kwargs):
        r = Run(db_url, tmp_path, asterisk.port, **kwargs)
        runs.append(r)
        return r

    yield start
    for r in runs:
        r.kill()


def test_run_starts_every_part_and_stops_cleanly(run, asterisk, tracked, session_factory):
    r = run()
    poll(lambda: r.web_status() == 200, what=f"the web UI\n{r.output()}")
    asterisk.wait_logins(1, timeout=30)
    res = agi_call(r.agi_port, agi_headers("route", args=("74950001001", "1795391970.0")))
    assert res.vars["CT_SOURCE"] == "Google Ads" and res.vars["CT_ATTRIBUTION"] == "static"
    assert res.vars["CT_QUEUE"] == "sales"
    # the AMI listener turns the recorded call into its record
    asterisk.add(load(FIXTURES / "answered_queue.ami"))
    asterisk.emit()

    def answered():
        with session_factory() as s:
            c = s.scalars(select(Call).where(Call.linkedid == "1795391970.0")).first()
            return c is not None and c.status == "answered" and c.operator_name == "Anna"

    poll(answered, what="the answered call")
    with session_factory() as s:
        c = s.scalars(select(Call).where(Call.linkedid == "1795391970.0")).one()
        assert c.via_agi and c.source.name == "Google Ads"
        assert float(c.talk_seconds) == pytest.approx(EXPECTED["1795391970.0"]["talk_seconds"], abs=0.0011)
    # the scheduler holds the single-process lease
    from calltracking.models import SchedulerLease

    def leased():
        with session_factory() as s:
            return s.scalars(select(SchedulerLease)).first() is not None

    poll(leased, what="the scheduler lease")
    # /metrics of the running process: AGI answers, AMI events, database figures
    from prometheus_client.parser import text_string_to_metric_families
    from webui.auth import new_api_token

    from calltracking.db import writer

    # the running services commit all the time: a test transaction that reads and then writes
    # begins IMMEDIATE on SQLite, as the web UI's do (tests/test_db_writer.py)
    with session_factory(bind=writer(session_factory.kw["bind"])) as s, s.begin():
        token = new_api_token(svc.add_user(s, "metrics", "password1", "admin"))
    req = urllib.request.Request(f"http://127.0.0.1:{r.web_port}/metrics",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        fams = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
    agi_ok = [x.value for x in fams["calltracking_agi_requests"].samples
              if x.labels.get("hook") == "route" and x.labels.get("result") == "ok" and x.name.endswith("_total")]
    assert agi_ok == [1.0]
    assert [x.value for x in fams["calltracking_ami_connected"].samples] == [1.0]
    events = [f for f in load(FIXTURES / "answered_queue.ami") if f.startswith(b"Event: ")]
    got_events = [x.value for x in fams["calltracking_ami_events"].samples if x.name.endswith("_total")]
    # every replayed event, plus the few the server sends on login (FullyBooted, QueueStatus lists)
    assert len(events) <= got_events[0] <= len(events) + 20
    answered = [x.value for x in fams["calltracking_calls"].samples if x.labels.get("status") == "answered"]
    assert answered == [1.0]
    took = r.terminate()
    assert r.proc.returncode == 0, r.output()
    assert took < 6.0, f"stopping took {took:.1f}s"
    assert "stopped" in r.output()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", r.agi_port), timeout=1).close()


def _rx_queue(port: int) -> int:
    """Bytes received but not yet read by the socket bound to local ``port`` (Linux /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local = f[1]
        if int(local.split(":")[1], 16) == port:
            return int(f[4].split(":")[1], 16)
    return 0


def test_sigterm_during_burst_loses_no_queued_event(run, asterisk, tracked, session_factory):
    frames, expected = burst(10_000)
    r = run()
    asterisk.wait_logins(1, timeout=30)
    poll(lambda: "AMI connected" in r.output() or asterisk.logins >= 1, what="login")
    time.sleep(1.0)                      # the first reconciliation is applied
    asterisk.add(frames)
    asterisk.emit()                      # ~4.6 MB written to the listener's socket
    peer = asterisk.clients[0].get_extra_info("peername")[1]
    poll(lambda: _rx_queue(peer) == 0, timeout=30, what="the listener to read the whole burst")
    took = r.terminate(timeout=30)       # the writer still has a backlog: it must drain it
    assert r.proc.returncode == 0, r.output()
    assert took < 6.0, f"stopping took {took:.1f}s"
    with session_factory() as s:
        got = {c.linkedid: c for c in s.scalars(select(Call))}
    assert set(got) == set(expected)
    for lid, exp in expected.items():
        c = got[lid]
        assert (c.status, c.missed_reason) == (exp["status"], exp.get("missed_reason")), lid
        assert float(c.wait_seconds) == pytest.approx(exp["wait_seconds"], abs=0.0011), lid


def test_run_with_two_fastagi_processes(run, asterisk, tracked):
    r = run(agi_processes=2)
    poll(lambda: listeners(r.agi_port) == 2, what=f"two FastAGI listeners\n{r.output()}")
    for i in range(20):
        res = agi_call(r.agi_port, agi_headers("route", args=("74950001001", f"2p.{i}")))
        assert res.vars["CT_SOURCE"] == "Google Ads" and res.vars["CT_STATUS"] == "ok"
    assert r.terminate() < 10
    assert r.proc.returncode == 0
    poll(lambda: listeners(r.agi_port) == 0, timeout=10, what="the FastAGI processes to stop")
