"""`calltracking doctor` against a real AMI server: login, the user's read classes, event classes,
timestamps, clock skew; an idle PBX is never reported as broken."""
import re
import threading
from pathlib import Path

import pytest

from support.ami_server import event_count, load
from support.fixtures import FIXTURES

DIALPLAN = Path(__file__).resolve().parents[2] / "dialplan"


def doctor(run_cli, port, secret="ctsecret", config_dir="/nonexistent/asterisk", username="calltracking"):
    """{check: status} of the AMI checks and the whole output."""
    res = run_cli("--set", f"ami.port={port}", "--set", f"ami.secret={secret}", "--set",
                  f"ami.username={username}", "--set", f"asterisk.config_dir={config_dir}", "doctor", ok=False)
    marks = {line.split(":", 1)[0][5:]: line[:4] for line in res.output.splitlines()
             if line[:4] in ("OK  ", "INFO", "WARN", "FAIL")}
    return marks, res.output


def detail(out: str, name: str) -> str:
    return next(line[5:] for line in out.splitlines() if line[5:].startswith(name + ":"))


def ami_marks(marks: dict) -> dict:
    return {k: v for k, v in marks.items() if k.startswith("ami ")}


def asterisk_etc(root: Path, read="call,cdr,agent,user,dialplan", timestampevents="yes",
                 cdr_manager="yes") -> Path:
    """Asterisk's configuration directory as install.sh leaves it: manager.conf including the
    project's manager_calltracking.conf with the secret filled in."""
    root.mkdir(exist_ok=True)
    (root / "manager.conf").write_text(f"[general]\nenabled = yes\nport = 5038\nbindaddr = 127.0.0.1\n"
                                       f"timestampevents = {timestampevents}\n\n#include manager_calltracking.conf\n")
    user = (DIALPLAN / "manager_calltracking.conf").read_text().replace("@AMI_SECRET@", "ctsecret")
    (root / "manager_calltracking.conf").write_text(re.sub(r"(?m)^read = .*$", f"read = {read}", user))
    (root / "cdr_manager.conf").write_text(f"[general]\nenabled = {cdr_manager}\n")
    return root


def strip(frames, pattern: bytes):
    return [re.sub(pattern, b"", f) for f in frames]


def without(frames, needle: bytes):
    return [f for f in frames if needle not in f]


def emit_during_probe(asterisk, frames):
    """Send ``frames`` once doctor's probe has logged in (the probe listens for 2 s)."""
    asterisk.add(frames)
    logins = asterisk.logins

    def go():
        asterisk.wait_logins(logins + 1)
        asterisk.emit()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def listener_ran(listener, asterisk, frames=()):
    frames = list(frames)
    asterisk.add(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(event_count(frames))
    lst.stop()


def test_doctor_after_the_listener_ran(tracked, asterisk, listener, run_cli, tmp_path):
    listener_ran(listener, asterisk, load(FIXTURES / "answered_queue.ami"))
    marks, out = doctor(run_cli, asterisk.port, config_dir=asterisk_etc(tmp_path / "etc"))
    assert ami_marks(marks) == {"ami login": "OK  ", "ami user": "OK  ", "ami events": "OK  ",
                                "ami timestampevents": "OK  ", "ami clock skew": "OK  "}, out
    assert detail(out, "ami events").endswith("event classes arriving: call, agent, cdr, dialplan")
    assert "the latest call events the listener stored carry Asterisk's Timestamp" in out


def test_idle_pbx_with_the_listener_running_is_not_a_failure(asterisk, listener, run_cli, tmp_path,
                                                            session_factory):
    """The listener logs in, asks QueueStatus (one QueueMember answer per member, no Timestamp:
    answers are not stamped) and sees no call: nothing of this is a misconfiguration."""
    from calltracking.callstore.store import CallStore

    listener_ran(listener, asterisk)
    state = CallStore(session_factory, "pbx1").listener_state()
    assert state["events"] == state["without_timestamp"] > 0 and state["classes"] == {}   # the answers
    marks, out = doctor(run_cli, asterisk.port, config_dir=asterisk_etc(tmp_path / "etc"))
    assert ami_marks(marks) == {"ami login": "OK  ", "ami user": "OK  ", "ami events": "INFO",
                                "ami timestampevents": "INFO", "ami clock skew": "OK  "}, out
    assert detail(out, "ami events").startswith("ami events: no traffic yet: no call events during the 2 s probe, "
                                                "nor by the listener (last connected ")
    assert detail(out, "ami timestampevents") == (
        f"ami timestampevents: not checked: no call events yet ({tmp_path}/etc/manager.conf sets "
        "timestampevents = yes)")
    assert "read = call,cdr,agent,user,dialplan" in detail(out, "ami user")
    assert re.search(r"^\d+ checks, (\d+) failed$", out, re.M).group(1) == str(out.count("\nFAIL "))


def test_idle_pbx_without_readable_configuration_is_info(asterisk, run_cli):
    marks, out = doctor(run_cli, asterisk.port)
    assert ami_marks(marks) == {"ami login": "OK  ", "ami user": "INFO", "ami events": "INFO",
                                "ami timestampevents": "INFO", "ami clock skew": "OK  "}, out
    assert "read classes not checked: cannot read /nonexistent/asterisk/manager.conf" in out
    assert "the listener has recorded nothing yet" in out
    assert "not checked: no call events yet (cannot read /nonexistent/asterisk/manager.conf" in out


@pytest.mark.parametrize("read, status, lacks", [
    ("system", "FAIL", "cannot read call (channels"),
    ("call, cdr, agent, dialplan", "FAIL", "cannot read agent (queue events"),   # Asterisk reads "call" only
    ("call,agent,dialplan", "WARN", "cannot read cdr (the Cdr cross-check"),
    ("Call,CDR,Agent,Dialplan", "FAIL", "cannot read call"),                    # names are case-sensitive
])
def test_user_without_the_read_classes(asterisk, run_cli, tmp_path, read, status, lacks):
    marks, out = doctor(run_cli, asterisk.port, config_dir=asterisk_etc(tmp_path / "etc", read=read))
    assert marks["ami login"] == "OK  " and marks["ami user"] == status, out
    assert f"manager_calltracking.conf: read = {read}: {lacks}" in out
    assert "set `read = call,cdr,agent,user,dialplan` in that section of" in out
    if status == "FAIL":
        code = run_cli("--set", f"ami.port={asterisk.port}", "--set", "ami.secret=ctsecret", "--set",
                       f"asterisk.config_dir={tmp_path / 'etc'}", "doctor", ok=False).exit_code
        assert code == 1


def test_user_read_all_and_a_missing_section(asterisk, run_cli, tmp_path):
    etc = asterisk_etc(tmp_path / "etc", read="all")
    marks, out = doctor(run_cli, asterisk.port, config_dir=etc)
    assert marks["ami user"] == "OK  ", out
    (etc / "manager.conf").write_text("[general]\nenabled = yes\ntimestampevents = yes\n")
    marks, out = doctor(run_cli, asterisk.port, config_dir=etc)
    assert marks["ami user"] == "WARN" and "no [calltracking] section in " in out and "#include" in out


def test_timestampevents_off_on_an_idle_pbx_is_reported_from_manager_conf(asterisk, run_cli, tmp_path):
    marks, out = doctor(run_cli, asterisk.port, config_dir=asterisk_etc(tmp_path / "etc", timestampevents="no"))
    assert marks["ami timestampevents"] == "WARN", out
    assert "[general] does not set timestampevents = yes (no call events yet to confirm)" in out
    assert marks["ami events"] == "INFO"


def test_call_events_during_the_probe(asterisk, run_cli, tmp_path):
    etc = asterisk_etc(tmp_path / "etc")
    frames = load(FIXTURES / "answered_queue.ami")
    t = emit_during_probe(asterisk, frames)
    marks, out = doctor(run_cli, asterisk.port, config_dir=etc)
    t.join(5)
    calls = sum(b"\r\nLinkedid: " in f for f in frames)
    assert marks["ami timestampevents"] == "OK  ", out
    assert f"the {calls} call events of the probe carry Asterisk's Timestamp" in out
    assert marks["ami events"] == "OK  "
    assert detail(out, "ami events") == "ami events: event classes arriving: call, agent, cdr, dialplan"


def test_call_events_without_timestamp_during_the_probe(asterisk, run_cli, tmp_path):
    frames = strip(load(FIXTURES / "answered_queue.ami"), rb"Timestamp: [^\r]*\r\n")
    t = emit_during_probe(asterisk, frames)
    marks, out = doctor(run_cli, asterisk.port, config_dir=asterisk_etc(tmp_path / "etc"))
    t.join(5)
    calls = sum(b"\r\nLinkedid: " in f for f in frames)
    assert marks["ami timestampevents"] == "WARN", out
    assert f"{calls} of {calls} call events of the probe had no Timestamp" in out


def test_stored_call_events_without_timestamp(tracked, asterisk, listener, run_cli, tmp_path):
    listener_ran(listener, asterisk, strip(load(FIXTURES / "answered_queue.ami"), rb"Timestamp: [^\r]*\r\n"))
    marks, out = doctor(run_cli, asterisk.port, config_dir=asterisk_etc(tmp_path / "etc"))
    assert marks["ami timestampevents"] == "WARN", out
    assert re.search(r"(\d+) of the last \1 call events the listener stored had no Timestamp", out)


def test_timestampevents_switched_on_after_some_calls(tracked, asterisk, listener, run_cli, tmp_path):
    old = strip(load(FIXTURES / "answered_queue.ami"), rb"Timestamp: [^\r]*\r\n")
    listener_ran(listener, asterisk, old + load(FIXTURES / "abandoned_queue.ami")[:40])   # a call's start
    marks, out = doctor(run_cli, asterisk.port, config_dir=asterisk_etc(tmp_path / "etc"))
    assert marks["ami timestampevents"] == "OK  ", out
    m = re.search(r"carry Asterisk's Timestamp \((\d+) of the last (\d+) did not: switched on since\)", out)
    assert m and 0 < int(m.group(1)) < int(m.group(2)), out


def test_dialplan_events_without_call_events_fail(tracked, asterisk, listener, run_cli, tmp_path):
    """A user with read = dialplan (no call): the listener sees a call's VarSet and Newexten only."""
    frames = [f for f in load(FIXTURES / "answered_queue.ami") if b"Privilege: dialplan," in f]
    listener_ran(listener, asterisk, frames)
    marks, out = doctor(run_cli, asterisk.port)
    assert marks["ami events"] == "FAIL", out
    assert "the listener saw calls in the last 7 days (events of class dialplan) but no event of class call" in out


def test_dialplan_events_without_call_events_during_the_probe_warn(asterisk, run_cli):
    frames = [f for f in load(FIXTURES / "answered_queue.ami") if b"Privilege: dialplan," in f]
    t = emit_during_probe(asterisk, frames)
    marks, out = doctor(run_cli, asterisk.port)
    t.join(5)
    assert marks["ami events"] == "WARN", out
    assert "during the 2 s probe a call's events of class dialplan arrived but none of class call" in out


def test_calls_without_queue_events(tracked, asterisk, listener, run_cli, tmp_path):
    """Direct dials only: no agent event. Granted by read=: not seen yet (OK); read= unknown: WARN."""
    listener_ran(listener, asterisk, without(load(FIXTURES / "direct_dial_no_queue.ami"), b"Privilege: agent,"))
    marks, out = doctor(run_cli, asterisk.port, config_dir=asterisk_etc(tmp_path / "etc"))
    assert marks["ami events"] == "OK  ", out
    assert detail(out, "ami events") == ("ami events: event classes arriving: call, cdr, dialplan; none of "
                                         "agent (granted by read=; no such event yet)")
    marks, out = doctor(run_cli, asterisk.port)
    assert marks["ami events"] == "WARN", out
    assert "none of agent: queue events" in out


def test_calls_without_cdr_events_and_cdr_manager_off(tracked, asterisk, listener, run_cli, tmp_path):
    listener_ran(listener, asterisk, without(load(FIXTURES / "answered_queue.ami"), b"Event: Cdr\r\n"))
    etc = asterisk_etc(tmp_path / "etc", cdr_manager="no")
    marks, out = doctor(run_cli, asterisk.port, config_dir=etc)
    assert marks["ami events"] == "WARN", out
    assert f"none of cdr ({etc}/cdr_manager.conf does not enable it)" in out
    assert "module reload cdr_manager.so" in out


def test_doctor_reports_refused_login_and_skew(asterisk, run_cli):
    marks, out = doctor(run_cli, asterisk.port, secret="wrong")
    assert marks["ami login"] == "FAIL" and "login refused" in out and "manager_calltracking.conf" in out
    assert "ami events" not in marks and "ami timestampevents" not in marks
    asterisk.clock_offset = 30.0
    marks, out = doctor(run_cli, asterisk.port)
    assert marks["ami login"] == "OK  "
    assert marks["ami clock skew"] == "FAIL" and "+30." in out


def test_doctor_no_asterisk(run_cli):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    marks, out = doctor(run_cli, port)
    assert marks["ami login"] == "FAIL" and "cannot connect" in out
