"""`calltracking doctor` against a real Asterisk 22 installed as docs/install.md says.

A private Asterisk (``tests/support/asterisk.py``) per test, with ``manager.conf``
(``timestampevents = yes``) including the project's own ``dialplan/manager_calltracking.conf``
(secret filled in), a queue with one operator, and a ``driver`` AMI user (``originate``) that
places the calls; ``calltracking ami`` runs as a real process when a test needs the listener.
An idle PBX must not be reported as broken; a real misconfiguration must be.
"""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.ami_client import AmiClient
from support.asterisk import Asterisk, manager_conf, missing_reason
from support.net import free_port
from support.polling import poll

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
AMI_PORT, AGI_PORT = free_port(), free_port()   # free ports: another Asterisk may run beside
SECRET = "ct-" + secrets.token_hex(8)
DRIVER = "driver-" + secrets.token_hex(8)
USER_SHAPES = """
[tpl](!)
read = call,agent
[child](tpl)
secret = x
[overridden](tpl)
secret = x
read = cdr
[spaced]
secret = x
read = call, cdr ,agent
[upper]
secret = x
read = Call,CDR,Agent
[twice]
secret = x
read = call
[twice](+)
read = system
[noread]
secret = x
"""
EXTENSIONS = """[general]
static = yes
[from-trunk]
exten => _X.,1,Answer()
 same => n,Set(CT_PROBE=1)
 same => n,Queue(sales,,,,10)
 same => n,Hangup()
[operators]
exten => 101,1,Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait(1)
 same => n,Hangup()
[caller]
exten => stay,1,Wait(5)
 same => n,Hangup()
"""
QUEUES = """[general]
[sales]
strategy = linear
timeout = 5
member => Local/101@operators/n,0,Anna,Local/101@operators
"""


def start_pbx(run: Path, timestampevents: bool = True) -> Asterisk:
    users = {"driver": f"secret = {DRIVER}\ndeny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
                       "read = call,cdr\nwrite = originate",
             "sysonly": f"secret = {SECRET}\ndeny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
                        "read = system\nwrite = reporting"}
    manager = (manager_conf(AMI_PORT, users, timestampevents=timestampevents)
               + "\n#include manager_calltracking.conf\n#include manager_shapes.conf\n")
    ours = (ROOT / "dialplan" / "manager_calltracking.conf").read_text().replace("@AMI_SECRET@", SECRET)
    return Asterisk(run).start({"manager.conf": manager, "manager_calltracking.conf": ours,
                                "manager_shapes.conf": USER_SHAPES, "extensions.conf": EXTENSIONS,
                                "queues.conf": QUEUES})


@pytest.fixture
def pbx(tmp_path, monkeypatch, cli_env):
    reason = missing_reason()
    if reason:
        pytest.skip(f"doctor's live test did not run: {reason}")
    made = []

    def start(**kw):
        ast = start_pbx(tmp_path / f"ast{len(made)}", **kw)
        made.append(ast)
        for key, value in {"AMI_PORT": AMI_PORT, "AMI_SECRET": SECRET, "AMI_USERNAME": "calltracking",
                           "ASTERISK_CONFIG_DIR": ast.run / "etc", "AGI_LISTEN": f"127.0.0.1:{AGI_PORT}"}.items():
            monkeypatch.setenv(f"CALLTRACKING_{key}", str(value))
        return ast

    yield start
    for ast in made:
        ast.stop()


def doctor(run_cli, *args):
    """(exit code, {check: (status, detail)} of the AMI checks, whole output)."""
    res = run_cli(*args, "doctor", ok=False)
    marks = {}
    for line in res.output.splitlines():
        m = re.match(r"^(OK|INFO|WARN|FAIL)\s+(ami [^:]+): (.*)$", line)
        if m:
            marks[m.group(2)] = (m.group(1), m.group(3))
    return res.exit_code, marks, res.output


@contextmanager
def listener(session_factory):
    """`calltracking ami` as a process, as systemd runs it; yields a reader of its stored state."""
    from calltracking.callstore.store import CallStore

    proc = subprocess.Popen([sys.executable, "-m", "calltracking", "ami"], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    store = CallStore(session_factory, "pbx1")
    try:
        poll(lambda: (store.listener_state() or {}).get("connected_at"), 20, "the listener to log in")
        yield store.listener_state
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]


def place_call(did: str = "74950001001") -> None:
    """One inbound call through the queue; returns when Asterisk wrote its CDR."""
    with AmiClient(AMI_PORT, "driver", DRIVER) as drv:
        r = drv.action("Originate", Channel=f"Local/{did}@from-trunk", Context="caller", Exten="stay",
                       Priority="1", CallerID='"Live" <79001234567>', Async="true")
        assert r["Response"] == "Success", r
        drv.wait_event(lambda e: e.get("Event") == "Cdr", timeout=30)


def test_idle_pbx_then_a_call(pbx, run_cli, session_factory):
    pbx()
    code, marks, out = doctor(run_cli)
    assert {k: v[0] for k, v in marks.items()} == {"ami login": "OK", "ami user": "OK", "ami events": "INFO",
                                                   "ami timestampevents": "INFO", "ami clock skew": "OK"}, out
    assert marks["ami user"][1].endswith("manager_calltracking.conf: read = call,cdr,agent,user,dialplan")
    assert marks["ami events"][1].startswith("no traffic yet: no call events during the 2 s probe")
    assert "sets timestampevents = yes" in marks["ami timestampevents"][1]

    with listener(session_factory) as state:
        # At login the listener asks QueueStatus: the QueueMember answer carries no Timestamp.
        poll(lambda: state()["events"] > 0, 20, "the listener's first counted frames")
        assert state()["without_timestamp"] == state()["events"] and state()["classes"] == {}
        code, marks, out = doctor(run_cli)
        assert [k for k, v in marks.items() if v[0] in ("WARN", "FAIL")] == [], out
        assert "nor by the listener, connected since" in marks["ami events"][1]

        place_call()
        poll(lambda: state()["classes"].keys() >= {"call", "agent", "cdr", "dialplan"}, 20,
             "the listener to record the call's event classes")
        code, marks, out = doctor(run_cli)
        assert marks["ami events"] == ("OK", "event classes arriving: call, agent, cdr, dialplan"), out
        assert marks["ami timestampevents"] == (
            "OK", "the latest call events the listener stored carry Asterisk's Timestamp"), out


def test_a_user_that_reads_system_only_fails(pbx, run_cli):
    pbx()
    code, marks, out = doctor(run_cli, "--set", "ami.username=sysonly")
    assert code == 1
    assert marks["ami login"] == ("OK", f"logged in to 127.0.0.1:{AMI_PORT} as sysonly"), out
    status, detail = marks["ami user"]
    assert status == "FAIL" and detail.startswith("[sysonly] in ") and "read = system: cannot read call (" in detail
    assert "set `read = call,cdr,agent,user,dialplan` in that section of" in out


def test_timestampevents_off_warns_before_and_after_a_call(pbx, run_cli, session_factory):
    pbx(timestampevents=False)
    code, marks, out = doctor(run_cli)
    assert marks["ami timestampevents"][0] == "WARN", out
    assert "[general] does not set timestampevents = yes (no call events yet to confirm)" in out
    assert marks["ami events"][0] == "INFO"
    with listener(session_factory) as state:
        place_call()
        poll(lambda: "call" in state()["classes"], 20, "the listener to record the call")
    code, marks, out = doctor(run_cli)
    assert marks["ami timestampevents"][0] == "WARN", out
    assert re.match(r"(\d+) of the last \1 call events the listener stored had no Timestamp",
                    marks["ami timestampevents"][1])


def test_read_classes_are_read_as_asterisk_reads_them(pbx):
    """doctor's reading of manager.conf (includes, templates, ``(+)``, spaces, case, the last
    ``read``) gives the classes Asterisk itself shows in `manager show user`."""
    from ami_listener.asterisk_conf import read_asterisk_conf
    from ami_listener.doctor import REQUIRED, read_classes

    ast = pbx()
    conf = read_asterisk_conf(str(ast.run / "etc" / "manager.conf"))
    users = ["calltracking", "driver", "sysonly", "child", "overridden", "spaced", "upper", "twice", "noread"]
    for user in users:
        shown = re.search(r"read perm: (.*)", ast.cli(f"manager show user {user}")).group(1).strip()
        asterisk = set(shown.split(",")) & set(REQUIRED)
        ours = read_classes(conf.value(conf.find(user), "read")) & set(REQUIRED)
        assert ours == asterisk, (user, shown)
    assert conf.find("tpl") is None and "There is no manager called tpl" in ast.cli("manager show user tpl")
