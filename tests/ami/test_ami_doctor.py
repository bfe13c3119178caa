"""`calltracking doctor` against a real AMI server: login, event classes, timestamps, clock skew."""
from amipaths import FIXTURES, event_count
from amiserver import load


def doctor(run_cli, port, secret="ctsecret"):
    res = run_cli("--set", f"ami.port={port}", "--set", f"ami.secret={secret}", "--set",
                  "ami.username=calltracking", "doctor", ok=False)
    return {line.split(":", 1)[0][5:]: line[:4] for line in res.output.splitlines()
            if line[:4] in ("OK  ", "WARN", "FAIL")}, res.output


def test_doctor_after_the_listener_ran(tracked, asterisk, listener, run_cli):
    frames = load(FIXTURES / "answered_queue.ami")
    asterisk.add(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(event_count(frames))
    lst.stop()
    marks, out = doctor(run_cli, asterisk.port)
    assert marks["ami login"] == "OK  ", out
    assert marks["ami events"] == "OK  ", out
    assert marks["ami timestampevents"] == "OK  ", out
    assert marks["ami clock skew"] == "OK  ", out


def test_doctor_reports_refused_login_and_skew(asterisk, run_cli):
    marks, out = doctor(run_cli, asterisk.port, secret="wrong")
    assert marks["ami login"] == "FAIL" and "login refused" in out and "manager_calltracking.conf" in out
    asterisk.clock_offset = 30.0
    marks, out = doctor(run_cli, asterisk.port)
    assert marks["ami login"] == "OK  "
    assert marks["ami clock skew"] == "FAIL" and "+30." in out
    assert marks["ami events"] == "WARN"                  # idle PBX, listener never ran
    assert marks["ami timestampevents"] == "WARN" and "timestampevents = yes" in out


def test_doctor_no_asterisk(run_cli):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    marks, out = doctor(run_cli, port)
    assert marks["ami login"] == "FAIL" and "cannot connect" in out
