"""The real CLI against the test database."""
import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest

from calltracking.db import make_engine, make_sessionmaker
from calltracking.models import Call, CallLeg

UTC = dt.timezone.utc


@pytest.fixture
def acme(run_cli):
    run_cli("projects", "add", "acme", "--timezone", "Europe/Moscow", "--default-queue", "sales")
    run_cli("sources", "add", "acme", "Google Ads", "--channel", "ads", "--label", "GA")
    return "acme"


def test_entities_add_list_remove(run_cli, acme):
    run_cli("campaigns", "add", "acme", "Google Ads", "brand", "--utm-campaign", "brand_ru")
    run_cli("numbers", "add", "acme", "8 (495) 000-10-01", "--source", "Google Ads", "--campaign", "brand")
    run_cli("numbers", "add", "acme", "+7 495 000-20-01", "--pool", "site")
    run_cli("operators", "add", "Anna", "Local/101@operators", "--queues", "sales")
    nums = json.loads(run_cli("numbers", "list", "--format", "json").stdout)
    assert [(n["number"], n["kind"], n["source"], n["campaign"], n["pool"]) for n in nums] == [
        ("+74950001001", "static", "Google Ads", "brand", None),
        ("+74950002001", "pool", None, None, "site")]
    res = run_cli("numbers", "add", "acme", "74950001001", "--source", "Google Ads", ok=False)
    assert res.exit_code == 1 and "+74950001001 is already mapped" in res.output
    res = run_cli("numbers", "add", "acme", "12", "--source", "Google Ads", ok=False)
    assert res.exit_code == 1 and "invalid phone number '12'" in res.output
    run_cli("numbers", "remove", "84950001001")
    assert len(json.loads(run_cli("numbers", "list", "--format", "json").stdout)) == 1
    assert len(json.loads(run_cli("numbers", "list", "--all", "--format", "json").stdout)) == 2
    ops = json.loads(run_cli("operators", "list", "--format", "json").stdout)
    assert ops[0]["member_name"] == "Anna"
    run_cli("operators", "remove", "Local/101@operators")
    assert json.loads(run_cli("operators", "list", "--format", "json").stdout) == []
    res = run_cli("projects", "add", "acme", ok=False)
    assert res.exit_code == 1 and "already exists" in res.output
    table = run_cli("sources", "list", "acme").stdout
    assert "Google Ads" in table and "ads" in table


def test_users_add_roles(run_cli, monkeypatch):
    run_cli("users", "add", "boss", "--role", "admin", "--password", "correct horse")
    monkeypatch.setenv("CALLTRACKING_PASSWORD", "another secret")
    run_cli("users", "add", "sveta", "--role", "supervisor", "--language", "ru")
    res = run_cli("users", "add", "x", "--role", "root", "--password", "12345678", ok=False)
    assert res.exit_code == 2 and "root" in res.output
    res = run_cli("users", "add", "y", "--role", "admin", "--password", "short", ok=False)
    assert res.exit_code == 1 and "at least 8" in res.output
    users = json.loads(run_cli("users", "list", "--format", "json").stdout)
    assert [(u["username"], u["role"], u["language"]) for u in users] == [
        ("boss", "admin", "en"), ("sveta", "supervisor", "ru")]


def test_numbers_import_ok(run_cli, acme, tmp_path):
    f = tmp_path / "n.csv"
    f.write_text("number;project;source;campaign;pool;description\n"
                 "8 (495) 000-10-01;acme;Google Ads;brand;;main site\n"
                 "+7 495 000-10-02;acme;Billboard;;;\n"
                 "\n"
                 "74950002001;acme;;;website;\n", encoding="utf-8")
    res = run_cli("numbers", "import", str(f))
    assert "imported 3 number(s)" in res.stdout and "1 campaigns" in res.stdout
    nums = {n["number"]: n for n in json.loads(run_cli("numbers", "list", "--format", "json").stdout)}
    assert nums["+74950001001"]["campaign"] == "brand"
    assert nums["+74950001002"]["source"] == "Billboard"
    assert nums["+74950002001"]["pool"] == "website"
    exported = run_cli("numbers", "export", "acme").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {r["number"] for r in rows} == set(nums)


def test_numbers_import_bad_rows_nothing_imported(run_cli, acme, tmp_path):
    run_cli("numbers", "add", "acme", "74950009999", "--source", "Google Ads")
    f = tmp_path / "bad.csv"
    f.write_text("number,project,source,campaign\n"
                 "74950001001,acme,Google Ads,\n"        # line 2: fine
                 "garbage,acme,Google Ads,\n"            # line 3: invalid number
                 "74950001003,nope,Google Ads,\n"        # line 4: unknown project
                 "74950001001,acme,Google Ads,\n"        # line 5: duplicate of line 2
                 "74950009999,acme,Google Ads,\n"        # line 6: already mapped
                 "74950001004,acme,,brand\n"             # line 7: campaign without source
                 "74950001005,acme\n")                   # line 8: wrong field count
    res = run_cli("numbers", "import", str(f), ok=False)
    assert res.exit_code == 1
    err = res.stderr
    assert "line 2:" not in err
    assert "line 3: invalid phone number 'garbage'" in err
    assert "line 4: project 'nope' does not exist" in err
    assert "line 5: number +74950001001 appears twice (first on line 2)" in err
    assert "line 6: number +74950009999 is already mapped" in err
    assert "line 7: " in err and "campaign needs a source" in err
    assert "line 8: expected 4 fields, got 2" in err
    assert "6 bad row(s); nothing was imported" in err
    nums = json.loads(run_cli("numbers", "list", "--format", "json").stdout)
    assert [n["number"] for n in nums] == ["+74950009999"]
    srcs = json.loads(run_cli("sources", "list", "--format", "json").stdout)
    assert [s["name"] for s in srcs] == ["Google Ads"]


@pytest.mark.parametrize("content,fragment", [
    ("", "empty"),
    ("phone,project\n74950001001,acme\n", "unknown column(s) 'phone'"),
    (b"number,project,source\n\xff\xfe,acme,x\n", "not UTF-8"),
])
def test_numbers_import_bad_files(run_cli, acme, tmp_path, content, fragment):
    f = tmp_path / "x.csv"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    res = run_cli("numbers", "import", str(f), ok=False)
    assert res.exit_code == 1 and fragment in res.output


def test_numbers_import_large_file_progress(run_cli, acme, tmp_path):
    f = tmp_path / "big.csv"
    lines = ["number,project,source"] + [f"7495{100000 + i:07d},acme,Site {i % 7}" for i in range(2500)]
    f.write_text("\n".join(lines) + "\n")
    res = run_cli("numbers", "import", str(f))
    assert "imported 2500 number(s)" in res.stdout
    assert "checking and importing" in res.stderr
    assert len(json.loads(run_cli("numbers", "list", "--format", "json").stdout)) == 2500


def _seed_calls(db_url):
    eng = make_engine(db_url)
    S = make_sessionmaker(eng)
    with S() as s:
        t0 = dt.datetime(2026, 11, 22, 23, 59, 30, 701262, tzinfo=UTC)   # 02:59 on 23 Nov in Moscow
        c = Call(pbx_id="pbx1", linkedid="1795391970.0", did="+74950001001", caller_number="+79161110001",
                 caller_name='<script>alert(1)</script>', attribution="static", queue="sales",
                 started_at=t0, queued_at=t0 + dt.timedelta(seconds=0.024),
                 answered_at=t0 + dt.timedelta(seconds=2.026), ended_at=t0 + dt.timedelta(seconds=7.043),
                 wait_seconds=Decimal("2.026"), queue_wait_seconds=Decimal("2.002"),
                 talk_seconds=Decimal("5.015"), hold_seconds=Decimal("0.002"), status="answered",
                 operator_name="Anna", first_call=True)
        c.legs.append(CallLeg(uniqueid="1795391970.3", operator_name="Anna", queue="sales",
                              rung_at=t0, answered_at=t0 + dt.timedelta(seconds=2), outcome="answered"))
        s.add(c)
        s.add(Call(pbx_id="pbx1", linkedid="1795391983.4", did="+74950001002", caller_number="+79161110002",
                   started_at=t0 + dt.timedelta(days=2), ended_at=t0 + dt.timedelta(days=2, seconds=4),
                   wait_seconds=Decimal("4.002"), status="missed", missed_reason="abandoned"))
        s.commit()
    eng.dispose()


def test_calls_list_formats_and_range(run_cli, db_url):
    _seed_calls(db_url)
    out = json.loads(run_cli("calls", "list", "--format", "json").stdout)
    assert [c["linkedid"] for c in out] == ["1795391970.0", "1795391983.4"]
    a = out[0]
    assert a["started_at"] == "2026-11-22T23:59:30.701262+00:00"
    assert a["wait_seconds"] == 2.026 and a["talk_seconds"] == 5.015 and a["status"] == "answered"
    assert a["legs"][0]["operator"] == "Anna" and a["legs"][0]["outcome"] == "answered"
    assert out[1]["missed_reason"] == "abandoned"
    # --from/--to are dates in the time zone given: the first call is on 23 Nov in Moscow
    msk = json.loads(run_cli("calls", "list", "--from", "2026-11-23", "--to", "2026-11-23",
                             "--tz", "Europe/Moscow", "--format", "json").stdout)
    assert [c["linkedid"] for c in msk] == ["1795391970.0"]
    utc = json.loads(run_cli("calls", "list", "--from", "2026-11-23", "--to", "2026-11-23",
                             "--tz", "UTC", "--format", "json").stdout)
    assert utc == []
    rows = list(csv.DictReader(io.StringIO(run_cli("calls", "list", "--format", "csv").stdout)))
    assert rows[0]["caller_name"] == "<script>alert(1)</script>" and rows[1]["status"] == "missed"
    table = run_cli("calls", "list").stdout
    assert "1795391983.4" in table and "abandoned" in table
    res = run_cli("calls", "list", "--from", "yesterday", ok=False)
    assert res.exit_code == 1 and "invalid date 'yesterday'" in res.output


def test_db_current_and_doctor(run_cli, db_factory, monkeypatch):
    out = run_cli("db", "current").stdout
    assert "database: " in out
    res = run_cli("doctor", ok=False)
    assert "schema at head" in res.stdout
    # an empty database: doctor fails with the fix, db upgrade fixes it
    empty = db_factory.empty()
    monkeypatch.setenv("CALLTRACKING_DATABASE_URL", empty)
    res = run_cli("doctor", ok=False)
    assert res.exit_code == 1 and "run `calltracking db upgrade`" in res.stdout
    run_cli("db", "upgrade")
    run_cli("db", "downgrade")
    res = run_cli("db", "current", ok=False)
    assert res.exit_code == 1
    run_cli("db", "upgrade")
    run_cli("db", "current")


def test_config_error_exit_code(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "c.ini"
    bad.write_text("[agi]\ntimeout_ms = soon\n")
    p = subprocess.run([sys.executable, "-m", "calltracking", "--config", str(bad), "projects", "list"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert f"{bad}: [agi] timeout_ms: expected an integer, got 'soon'" in p.stderr


def test_help_loads_the_commands_not_the_services():
    """`calltracking --help` imports no command module, so not the web UI, the AGI and AMI
    servers, Alembic or the user-agent matcher either (tests/test_cli_startup.py: what each
    command imports)."""
    import subprocess
    import sys

    code = ("import sys, calltracking.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('webui', 'agi', 'ami_listener', 'alembic', 'flask') or m == 'calltracking.dni.useragent'))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "calltracking", "--help"], capture_output=True, text=True,
                               check=True).stdout
    assert all(f"\n  {name} " in help_text for name in ("agi", "pools", "projects", "run", "web", "doctor", "spend"))
