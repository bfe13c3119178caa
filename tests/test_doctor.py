"""`calltracking doctor` in one report: each broken setup is reported with its fix."""
from __future__ import annotations

import re

import pytest

from support.ami_server import FakeAsterisk


def lines(output: str) -> dict:
    """{check name: (status, detail, fix)} from doctor's text output."""
    out, last = {}, None
    for line in output.splitlines():
        m = re.match(r"^(OK|INFO|WARN|FAIL)\s+([^:]+): (.*)$", line)
        if m:
            last = m.group(2)
            out[last] = [m.group(1), m.group(3), ""]
        elif line.strip().startswith("fix:") and last:
            out[last][2] = line.split("fix:", 1)[1].strip()
    return out


@pytest.fixture
def ami():
    srv = FakeAsterisk(username="calltracking", secret="right-secret").start()
    yield srv
    srv.stop()


@pytest.fixture
def asterisk_etc(tmp_path):
    d = tmp_path / "asterisk"
    d.mkdir()
    (d / "extensions.conf").write_text("[general]\n#include extensions_calltracking.conf\n")
    (d / "extensions_calltracking.conf").write_text("[calltracking-inbound]\n")
    return d


def doctor(run_cli, monkeypatch, **env):
    for k, v in env.items():
        monkeypatch.setenv(f"CALLTRACKING_{k.upper()}", str(v))
    res = run_cli("doctor", ok=False)
    return res.exit_code, lines(res.stdout), res.stdout


def test_wrong_ami_secret_is_reported_with_fix(run_cli, monkeypatch, ami, asterisk_etc):
    code, got, out = doctor(run_cli, monkeypatch, ami_port=ami.port, ami_secret="wrong-secret",
                            ami_username="calltracking", asterisk_config_dir=asterisk_etc)
    assert code == 1
    status, detail, fix = got["ami login"]
    assert status == "FAIL", out
    assert "manager_calltracking.conf" in fix and "secret" in fix
    # the right secret passes the same check
    code, got, out = doctor(run_cli, monkeypatch, ami_secret="right-secret")
    assert got["ami login"][0] == "OK", out


def test_missing_dialplan_include_is_reported_with_fix(run_cli, monkeypatch, ami, asterisk_etc):
    (asterisk_etc / "extensions.conf").write_text("[general]\nstatic=yes\n")
    code, got, out = doctor(run_cli, monkeypatch, ami_port=ami.port, ami_secret="right-secret",
                            asterisk_config_dir=asterisk_etc)
    assert code == 1
    status, detail, fix = got["dialplan include"]
    assert status == "FAIL" and "does not include extensions_calltracking.conf" in detail
    assert "#include extensions_calltracking.conf" in fix and "dialplan reload" in fix


def test_database_behind_is_reported_with_fix(run_cli, monkeypatch, ami, asterisk_etc):
    run_cli("db", "downgrade")
    code, got, out = doctor(run_cli, monkeypatch, ami_port=ami.port, ami_secret="right-secret",
                            asterisk_config_dir=asterisk_etc)
    assert code == 1
    status, detail, fix = got["database schema"]
    assert status == "FAIL" and "the code needs" in detail
    assert fix == "run `calltracking db upgrade`"
    run_cli("db", "upgrade")
    code, got, out = doctor(run_cli, monkeypatch)
    assert got["database"][0] == "OK"


def test_missing_secrets_and_no_fastagi(run_cli, monkeypatch, asterisk_etc):
    code, got, out = doctor(run_cli, monkeypatch, asterisk_config_dir=asterisk_etc, agi_listen="127.0.0.1:1")
    assert code == 1
    assert got["web.secret_key"][0] == "WARN" and "generates one" in got["web.secret_key"][1]
    assert got["ami.secret"][0] == "WARN"
    assert got["fastagi"][0] == "FAIL" and "calltracking run" in got["fastagi"][2]
