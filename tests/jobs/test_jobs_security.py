"""Attacks through the background jobs, with real HTTP servers on loopback and real files.

Webhook targets on loopback/private addresses (also reached by a redirect or a host name),
error bodies echoed into the dead-letter list, replayable signatures; recording paths from
AMI that point outside ``[recordings] dir`` (converted, then deleted; purged)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import re
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from calltracking.jobs import outbox, recording_retention, recordings, rules, transport
from calltracking.models import Call, Delivery, NotificationRule, RecordingInfo, utcnow
from support.config import make_config

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-hmac-key"


def add_rule(session_factory, project, **kw):
    kw.setdefault("event", "call_finished")
    with session_factory() as s:
        r = NotificationRule(project_id=project["id"], enabled=True, **kw)
        s.add(r)
        s.commit()
        return r.id


def _delivery(session_factory) -> Delivery:
    with session_factory() as s:
        return s.scalars(select(Delivery).order_by(Delivery.id.desc())).first()


# ------------------------------------------------------------------ private targets
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "0.0.0.0", "127.1", "[::ffff:127.0.0.1]"])
def test_webhook_to_a_loopback_target_is_refused(host, session_factory, project, add_call,
                                                 http_server):
    cfg = make_config()                       # allow_private_targets off: the default
    add_rule(session_factory, project, channel="crm", target=f"http://{host}:{http_server.port}/crm",
             secret=SECRET)
    add_call("answered")
    now = utcnow()
    assert rules.enqueue_finished(cfg, session_factory, now) == 1
    assert outbox.deliver_due(cfg, session_factory, now) == (0, 1, 0)
    assert http_server.requests == []         # nothing reached the internal server
    d = _delivery(session_factory)
    assert "not a public address" in d.last_error and "allow_private_targets" in d.last_error
    # the operator's choice: allowed
    allowed = make_config(notify__allow_private_targets="yes")
    if host not in ("[::1]", "[::ffff:127.0.0.1]", "0.0.0.0"):   # the sink listens on 127.0.0.1 only
        assert outbox.deliver_due(allowed, session_factory, d.next_attempt_at) == (1, 0, 0)
        assert len(http_server.requests) == 1


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "fc00::1", "fe80::1", "224.0.0.1", "::ffff:10.0.0.1"])
def test_private_link_local_and_metadata_addresses_are_not_public(address):
    assert not transport.public_address(ipaddress.ip_address(address))


def test_public_addresses_pass():
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        assert transport.public_address(ipaddress.ip_address(address))


@pytest.fixture
def inner_server():
    """A second server, on 127.0.0.2: the 'internal service' a redirect tries to reach."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"secret")

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1], hits
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_redirect_to_a_refused_address_is_not_followed(http_server, inner_server):
    """127.0.0.1 stands for an allowed (public) target; it redirects to 127.0.0.2 (refused)."""
    port, hits = inner_server
    http_server.codes.put(302)
    http_server.location = f"http://127.0.0.2:{port}/admin"
    only_first = lambda ip: ip == ipaddress.ip_address("127.0.0.1")  # noqa: E731
    with pytest.raises(transport.DeliveryError, match="127.0.0.2.*not a public address"):
        transport.send_http({"method": "GET", "url": http_server.url + "/hook"}, allowed=only_first)
    assert len(http_server.requests) == 1 and hits == []
    # the same redirect with both allowed is followed: the refusal above was the guard's
    http_server.codes.put(302)
    assert transport.send_http({"method": "GET", "url": http_server.url + "/hook"},
                                  allowed=lambda ip: True) == 200
    assert hits == ["/admin"]


def test_https_targets_go_through_the_same_check(tmp_path, monkeypatch):
    """A real TLS server on loopback: refused by default; allowed, the certificate is verified."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{srv.server_address[1]}/crm"
    req = {"method": "POST", "url": url, "body": "{}", "headers": {"Content-Type": "application/json"}}
    try:
        with pytest.raises(transport.DeliveryError, match="not a public address"):
            transport.send_http(req)
        with pytest.raises(transport.DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            transport.send_http(req, allowed=transport.allow_any)   # not a trusted certificate
        assert hits == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))                     # now it is
        assert transport.send_http(req, allowed=transport.allow_any) == 204
        assert hits == [b"{}"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_rule_form_refuses_a_private_target(db_url, session_factory, project):
    from calltracking import entities as svc
    from calltracking.config import load_config
    from webui import create_app

    with session_factory() as s:
        svc.add_user(s, "admin", "correct-horse-battery", "admin")
        s.commit()

    def client(allow):
        cfg = load_config("/nonexistent/calltracking.ini", require_file=False, env={
            "CALLTRACKING_DATABASE_URL": db_url, "CALLTRACKING_WEB_SECRET_KEY": "test-secret-key-0123456789abcdef",
            "CALLTRACKING_WEB_SECURE_COOKIES": "no", "CALLTRACKING_NOTIFY_ALLOW_PRIVATE_TARGETS": allow})
        app = create_app(cfg, session_factory, testing=True)
        app.config["WTF_CSRF_ENABLED"] = False
        c = app.test_client()
        assert c.post("/login", data={"username": "admin", "password": "correct-horse-battery"}).status_code == 302
        return c

    form = {"project": project["id"], "channel": "webhook", "event": "missed_call",
            "target": "http://169.254.169.254/latest/meta-data/"}
    r = client("no").post("/settings/integrations/rules", data=form)
    assert r.status_code == 400 and "allow_private_targets" in r.get_data(as_text=True)
    with session_factory() as s:
        assert s.scalars(select(NotificationRule)).first() is None
    assert client("yes").post("/settings/integrations/rules", data=form).status_code == 302


# ------------------------------------------------------------------ error bodies
def test_error_bodies_are_not_echoed(session_factory, project, add_call, http_server):
    cfg = make_config(notify__allow_private_targets="yes")
    add_rule(session_factory, project, channel="crm", target=http_server.url + "/crm", secret=SECRET)
    add_call("answered")
    http_server.always = 500
    http_server.body = b"root:x:0:0:root:/root:/bin/bash internal-token=hunter2"
    now = utcnow()
    rules.enqueue_finished(cfg, session_factory, now)
    outbox.deliver_due(cfg, session_factory, now)
    d = _delivery(session_factory)
    assert d.last_error == "HTTP 500 Internal Server Error" and d.last_http_status == 500
    assert "hunter2" not in d.last_error and "root:" not in d.last_error


# ------------------------------------------------------------------ signatures
SIGNATURE_DOC = ROOT / "docs" / "recordings-notifications-integrations.md"


def docs_verifier():
    """The verification snippet of the documentation, run as documented."""
    page = SIGNATURE_DOC.read_text(encoding="utf-8")
    m = re.search(r"```python\n(.*?def verify_signature.*?)```", page, re.S)
    assert m, f"{SIGNATURE_DOC.relative_to(ROOT)} has no verify_signature snippet"
    ns: dict = {}
    exec(textwrap.dedent(m.group(1)), ns)  # noqa: S102 - our own documentation
    return ns["verify_signature"]


def test_signature_has_a_timestamp_and_a_replay_is_refused(session_factory, project, add_call,
                                                            http_server):
    cfg = make_config(notify__allow_private_targets="yes")
    add_rule(session_factory, project, channel="crm", target=http_server.url + "/crm", secret=SECRET)
    add_call("answered")
    http_server.codes.put(500)
    now = utcnow()
    rules.enqueue_finished(cfg, session_factory, now)
    outbox.deliver_due(cfg, session_factory, now)
    time.sleep(1.1)                            # the retry is signed anew, one second later
    outbox.deliver_due(cfg, session_factory, now + dt.timedelta(seconds=30))
    first, second = http_server.requests
    verify = docs_verifier()
    heads = [r["headers"]["x-calltracking-signature"] for r in (first, second)]
    for h in heads:
        assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", h), h
    t1, t2 = (int(h.split(",")[0][2:]) for h in heads)
    assert t2 > t1 and abs(t2 - time.time()) < 60
    body = second["body"]
    expected = hmac.new(SECRET.encode(), f"{t2}.".encode() + body, hashlib.sha256).hexdigest()
    assert heads[1] == f"t={t2},v1={expected}"
    assert verify(SECRET, heads[1], body)
    assert not verify("other-secret", heads[1], body)
    assert not verify(SECRET, heads[1], body.replace(b"answered", b"missed"))
    # the attack: the captured request sent again ten minutes later
    assert not verify(SECRET, heads[1], body, now=t2 + 600)
    # a forged timestamp does not match the signature
    assert not verify(SECRET, heads[1].replace(f"t={t2}", f"t={t2 + 600}"), body, now=t2 + 600)
    assert not verify(SECRET, "sha256=" + expected, body)


def test_webhook_channel_signed_when_the_rule_has_a_secret(session_factory, project, add_call,
                                                            http_server):
    cfg = make_config(notify__allow_private_targets="yes")
    add_rule(session_factory, project, channel="webhook", event="missed_call", target=http_server.url + "/sms",
             body_template='{"text": "$caller"}', secret=SECRET)
    add_call("missed")
    now = utcnow()
    assert rules.enqueue_missed(cfg, session_factory, now) == 1
    assert outbox.deliver_due(cfg, session_factory, now) == (1, 0, 0)
    req = http_server.requests[-1]
    assert docs_verifier()(SECRET, req["headers"]["x-calltracking-signature"], req["body"])


# ------------------------------------------------------------------ recordings outside the directory
def _wav(path: Path, ms=1000) -> Path:
    from pydub.generators import Sine

    Sine(440, sample_rate=8000).to_audio_segment(ms, volume=-12).set_channels(1).export(str(path), format="wav")
    return path


@pytest.fixture
def outside(tmp_path):
    recdir = tmp_path / "monitor"
    recdir.mkdir()
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    return recdir, elsewhere


def test_recordings_outside_the_directory_are_neither_converted_nor_deleted(outside, session_factory,
                                                                            add_call):
    recdir, elsewhere = outside
    cfg = make_config(recordings__dir=recdir, recordings__format="mp3")
    victims = {"dotdot": _wav(elsewhere / "a.wav"), "absolute": _wav(elsewhere / "b.wav"),
               "symlink": _wav(elsewhere / "c.wav")}
    (recdir / "c.wav").symlink_to(victims["symlink"])
    names = {"dotdot": "../etc/a.wav", "absolute": str(victims["absolute"]), "symlink": "c.wav"}
    ids = {}
    for key, name in names.items():
        ids[key] = add_call("answered", recording_file=name, record=True)
    stats = recordings.process_pending(cfg, session_factory)
    assert stats == {"missing": 3}
    for key, victim in victims.items():
        assert victim.is_file(), key                                # not deleted after a conversion
    assert sorted(p.name for p in elsewhere.iterdir()) == ["a.wav", "b.wav", "c.wav"]  # nothing written there
    with session_factory() as s:
        for key, cid in ids.items():
            assert s.get(RecordingInfo, cid).status == "missing", key


def test_retention_never_deletes_outside_the_directory(outside, session_factory, add_call):
    recdir, elsewhere = outside
    cfg = make_config(recordings__dir=recdir, recordings__keep_days=1)
    old = utcnow() - dt.timedelta(days=10)
    victim = _wav(elsewhere / "passwd.wav")
    planted = _wav(elsewhere / "planted.wav")
    (recdir / "link.wav").symlink_to(victim)
    mine = _wav(recdir / "mine.wav")
    dotdot = add_call("answered", started=old, recording_file="../etc/passwd.wav")
    absolute = add_call("answered", started=old, recording_file=str(victim))
    link = add_call("answered", started=old, recording_file="link.wav")
    own = add_call("answered", started=old, recording_file=str(mine))
    # a row that names files outside the directory (written by an older version, or by hand)
    with session_factory() as s:
        s.add(RecordingInfo(call_id=own, status="ok", file=str(planted), format="wav",
                            source_files=json.dumps([str(victim)]), error="", attempts=1))
        s.commit()
    recording_retention.apply_retention(cfg, session_factory)
    assert victim.is_file() and planted.is_file()
    assert (recdir / "link.wav").is_symlink()                      # a link is not followed out
    assert not mine.exists()                                       # its own file is gone
    with session_factory() as s:
        assert s.get(RecordingInfo, own).status == "purged"
        for cid in (dotdot, absolute, link):
            assert s.get(Call, cid) is not None


def test_finish_never_deletes_outside_the_directory(outside, session_factory, add_call):
    """A committed conversion whose source list names a file outside the directory keeps it."""
    recdir, elsewhere = outside
    cfg = make_config(recordings__dir=recdir)
    out = _wav(recdir / "x.mp3")
    victim = _wav(elsewhere / "victim.wav")
    cid = add_call("answered", recording_file=str(out))
    with session_factory() as s:
        s.add(RecordingInfo(call_id=cid, status="ok", file=str(out), format="mp3",
                            source_files=json.dumps([str(victim)]), error=recordings.ORIGINALS_PENDING,
                            attempts=1))
        s.commit()
    recordings.process_pending(cfg, session_factory)
    assert victim.is_file()
    with session_factory() as s:
        assert "outside" in s.get(RecordingInfo, cid).error
