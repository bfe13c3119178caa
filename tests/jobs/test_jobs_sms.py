"""SMS alerts: the length rules (GSM-7, UCS-2), the recipients, each gateway's request shape
against a fake gateway on loopback (real HTTP), and delivery through the outbox with retries,
dead letters and one delivery per number."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from sqlalchemy import select

from calltracking.jobs import outbox, rules, transport
from calltracking.jobs.scheduler import JobRunner
from calltracking.models import Delivery, NotificationRule, utcnow
from calltracking.sms import encoding, numbers, providers
from support.config import make_config
from support.sms_gateway import Gateway

SECRET = "s3cr3t-token-never-logged"


@pytest.fixture
def gateway():
    with Gateway().running() as gw:
        yield gw


def sms_config(gateway, provider="http", **kw):
    settings = {"notify__allow_private_targets": "yes", "notify__sms_provider": provider,
                "notify__sms_url": gateway.url + ("/send" if provider == "http" else ""), **kw}
    return make_config(**settings)


def add_rule(session_factory, project, target="+79990000001", event="missed_call", **kw):
    with session_factory() as s:
        r = NotificationRule(project_id=project["id"], channel="sms", event=event, target=target,
                             enabled=True, **kw)
        s.add(r)
        s.commit()
        return r.id


def deliveries(session_factory):
    with session_factory() as s:
        return [(d.target, d.status, d.attempts, d.last_error, json.loads(d.payload))
                for d in s.scalars(select(Delivery).order_by(Delivery.id))]


# ------------------------------------------------------------------ length rules
@pytest.mark.parametrize("text, enc, units, parts", [
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),                 # 153 + 8
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("{" * 80, "GSM-7", 160, 1),                  # extension characters take two septets
    ("€" * 81, "GSM-7", 162, 2),
    ("Ж" * 70, "UCS-2", 70, 1),                   # Cyrillic: UCS-2
    ("Ж" * 71, "UCS-2", 71, 2),                   # 67 + 4
    ("Ж" * 134, "UCS-2", 134, 2),
    ("Ж" * 135, "UCS-2", 135, 3),
    ("a" * 150 + "ж", "UCS-2", 151, 3),           # one Cyrillic letter turns the whole text into UCS-2
    ("😀" * 35, "UCS-2", 70, 1),                  # outside the BMP: two code units
])
def test_encoding_and_parts(text, enc, units, parts):
    length = encoding.length(text)
    assert (length.encoding, length.units, length.parts) == (enc, units, parts)
    assert "".join(encoding.split(text)) == text
    assert len(encoding.split(text)) == parts


def test_cyrillic_split_in_parts_of_67():
    text = "Пропущенный звонок от клиента из рекламы, перезвоните как можно скорее, пожалуйста!"
    assert len(text) == 83
    assert [len(p) for p in encoding.split(text)] == [67, 16]


def test_a_part_never_splits_an_escape_or_a_surrogate_pair():
    gsm = "a" * 152 + "{" + "b" * 10       # the { would straddle septets 153/154
    assert [len(p) for p in encoding.split(gsm)] == [152, 11]
    assert encoding.split(gsm)[1].startswith("{")
    emoji = "ж" * 66 + "😀" + "ж" * 10     # the emoji would straddle units 67/68
    assert encoding.split(emoji)[1].startswith("😀")


def test_fit_trims_to_max_parts_with_the_ellipsis_of_the_encoding():
    ru = "Пропущен звонок " * 20
    fitted = encoding.fit(ru, 2)
    assert fitted.endswith("…") and not fitted.endswith(" …")
    assert encoding.length(fitted) == encoding.Length("UCS-2", 134, 2)  # 2 × 67, full
    assert ru.startswith(fitted[:-1])
    en = "Missed call " * 40
    fitted = encoding.fit(en, 1)
    assert fitted.endswith("...") and encoding.length(fitted).encoding == "GSM-7"  # "…" would make it UCS-2
    assert encoding.length(fitted).units <= 160 and encoding.length(fitted).parts == 1
    assert encoding.fit("short", 1) == "short"


# ------------------------------------------------------------------ recipients
def test_recipients_are_normalised_to_e164():
    assert numbers.recipients("8 (999) 123-45-67; +7 999 765 43 21\n8-999-123-45-67") == \
        ["+79991234567", "+79997654321"]
    assert numbers.recipients("(202) 555-0143", "US") == ["+12025550143"]


@pytest.mark.parametrize("target, said", [
    ("12345", "invalid phone number '12345'"),
    ("+7 999 123-45-67, hello", "invalid phone number 'hello'"),
    (" ; ", "no phone number given"),
])
def test_bad_numbers_are_refused(target, said):
    with pytest.raises(ValueError, match=said):
        numbers.recipients(target)
    with pytest.raises(rules.RuleRefused) as refused:
        rules.check_rule("sms", "missed_call", target)
    assert refused.value.code == ("target" if not target.strip() else "phone")


def test_check_rule_returns_the_numbers_and_limits_the_events():
    assert rules.check_rule("sms", "missed_call", "8 999 123 45 67,+79997654321") == "+79991234567, +79997654321"
    assert rules.check_rule("sms", "digest_daily", "+79991234567") == "+79991234567"
    with pytest.raises(rules.RuleRefused) as refused:
        rules.check_rule("sms", "call_finished", "+79991234567")
    assert refused.value.code == "sms-event"


# ------------------------------------------------------------- request shapes
HOSTILE = 'Ivan & "Co" <b>=+%20 \\ {text}'


def test_generic_gateway_form_body_and_auth_header(gateway):
    cfg = sms_config(gateway, notify__sms_body="phone={to_digits}&message={text}&sender={from}&key=1",
                     notify__sms_from="ACME", notify__sms_auth_header=f"Authorization: Bearer {SECRET}")
    status = providers.send(cfg, {"to": "+79991234567", "text": HOSTILE}, transport.allow_any)
    assert status == 200
    [req] = gateway.requests
    assert req["method"] == "POST" and req["path"] == "/send"
    assert req["headers"]["authorization"] == f"Bearer {SECRET}"
    assert req["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert req["form"] == {"phone": "79991234567", "message": HOSTILE, "sender": "ACME", "key": "1"}


def test_generic_gateway_json_body_and_get_url(gateway):
    cfg = sms_config(gateway, notify__sms_content_type="json",
                     notify__sms_body='{"messages": [{"to": "{to}", "body": "{text}"}]}')
    providers.send(cfg, {"to": "+79991234567", "text": HOSTILE + "\nстрока"}, transport.allow_any)
    assert gateway.requests[0]["json"] == {"messages": [{"to": "+79991234567", "body": HOSTILE + "\nстрока"}]}
    cfg = make_config(notify__allow_private_targets="yes", notify__sms_provider="http", notify__sms_method="get",
                      notify__sms_url=gateway.url + "/get?to={to}&text={text}")
    providers.send(cfg, {"to": "+79991234567", "text": HOSTILE}, transport.allow_any)
    assert gateway.requests[1]["method"] == "GET"
    assert gateway.requests[1]["query"] == {"to": "+79991234567", "text": HOSTILE}


def test_generic_gateway_ok_regex(gateway):
    cfg = sms_config(gateway, notify__sms_ok_regex=r"^ACCEPTED")
    with pytest.raises(transport.DeliveryError, match="does not match"):
        providers.send(cfg, {"to": "+79991234567", "text": "x"}, transport.allow_any)   # answers "OK"


def test_twilio_request_shape_and_error(gateway):
    sid = "AC" + "0" * 32
    cfg = sms_config(gateway, "twilio", notify__sms_account=sid, notify__sms_token=SECRET,
                     notify__sms_from="+15005550006")
    assert providers.send(cfg, {"to": "+79991234567", "text": "Пропущен звонок"}, transport.allow_any) == 201
    [req] = gateway.requests
    assert req["path"] == f"/2010-04-01/Accounts/{sid}/Messages.json" and req["method"] == "POST"
    import base64
    assert req["headers"]["authorization"] == "Basic " + base64.b64encode(f"{sid}:{SECRET}".encode()).decode()
    assert req["form"] == {"To": "+79991234567", "From": "+15005550006", "Body": "Пропущен звонок"}
    cfg = sms_config(gateway, "twilio", notify__sms_account=sid, notify__sms_token=SECRET,
                     notify__sms_from="MG" + "a" * 32)
    gateway.refuse.add("+79990000000")
    with pytest.raises(transport.DeliveryError) as e:
        providers.send(cfg, {"to": "+79990000000", "text": "x"}, transport.allow_any)
    assert str(e.value).startswith("HTTP 400 Bad Request: twilio 21211: The 'To' number")
    assert gateway.requests[1]["form"]["MessagingServiceSid"] == "MG" + "a" * 32
    assert SECRET not in str(e.value)


def test_smsru_request_shape_and_errors(gateway):
    cfg = sms_config(gateway, "smsru", notify__sms_token="smsru-api-id", notify__sms_from="ACME")
    providers.send(cfg, {"to": "+79991234567", "text": "Привет"}, transport.allow_any)
    [req] = gateway.requests
    assert req["path"] == "/sms/send" and req["query"] == {}        # the api_id is not in the URL
    assert req["form"] == {"api_id": "smsru-api-id", "to": "79991234567", "msg": "Привет", "json": "1",
                           "from": "ACME"}
    gateway.refuse.add("+79990000000")
    with pytest.raises(transport.DeliveryError, match="smsru 207: На этот номер нельзя"):
        providers.send(cfg, {"to": "+79990000000", "text": "x"}, transport.allow_any)
    bad = sms_config(gateway, "smsru", notify__sms_token="wrong")
    with pytest.raises(transport.DeliveryError, match="smsru 200: Неправильный api_id"):
        providers.send(bad, {"to": "+79991234567", "text": "x"}, transport.allow_any)


def test_smsc_request_shape_and_errors(gateway):
    cfg = sms_config(gateway, "smsc", notify__sms_account="acme", notify__sms_token=SECRET, notify__sms_from="ACME")
    providers.send(cfg, {"to": "+79991234567", "text": "Привет"}, transport.allow_any)
    assert gateway.requests[0]["path"] == "/sys/send.php"
    assert gateway.requests[0]["form"] == {"login": "acme", "psw": SECRET, "phones": "+79991234567",
                                           "mes": "Привет", "sender": "ACME", "fmt": "3", "charset": "utf-8"}
    key_only = sms_config(gateway, "smsc", notify__sms_token="api-key-1")
    providers.send(key_only, {"to": "+79991234567", "text": "x"}, transport.allow_any)
    assert gateway.requests[1]["form"]["apikey"] == "api-key-1" and "login" not in gateway.requests[1]["form"]
    gateway.refuse.add("+79990000000")
    with pytest.raises(transport.DeliveryError, match="smsc 7: invalid number"):
        providers.send(cfg, {"to": "+79990000000", "text": "x"}, transport.allow_any)


def test_no_provider_is_a_clear_error():
    with pytest.raises(transport.DeliveryError, match="sms_provider is not set"):
        providers.send(make_config(), {"to": "+79991234567", "text": "x"}, transport.allow_any)


def test_secrets_are_hidden_in_the_configuration():
    cfg = make_config(notify__sms_provider="twilio", notify__sms_token=SECRET,
                      notify__sms_auth_header=f"X-Key: {SECRET}")
    assert SECRET not in json.dumps(cfg.as_dict())


# ----------------------------------------------------------- through the outbox
def test_missed_call_sms_in_russian_one_delivery_per_number(session_factory, project, add_call, gateway, caplog):
    cfg = sms_config(gateway, "smsru", notify__sms_token="smsru-api-id", general__language="ru")
    add_rule(session_factory, project, target="+79990000001, +79990000002")
    started = dt.datetime(2026, 3, 2, 9, 5, tzinfo=dt.timezone.utc)
    add_call("missed", started=started, ended_at=utcnow() - dt.timedelta(minutes=1))
    caplog.set_level(logging.DEBUG)
    ok, result = JobRunner(cfg, session_factory).run_job("notifications", force=True)
    assert ok and "sent 2" in result, result
    texts = {r["form"]["to"]: r["form"]["msg"] for r in gateway.requests}
    # Moscow time (UTC+3), the caller, the name and the source; the link fits in the parts
    expected = "Пропущен звонок: +74951234567 Ivan, Google Ads, 02.03 12:05"
    assert set(texts) == {"79990000001", "79990000002"}
    assert all(t.startswith(expected) for t in texts.values()), texts
    assert texts["79990000001"].startswith(f"{expected} https://ct.example.org/calls/")
    rows = deliveries(session_factory)
    assert [(r[0], r[1], r[4]["encoding"]) for r in rows] == [("+79990000001", "sent", "UCS-2"),
                                                              ("+79990000002", "sent", "UCS-2")]
    assert "smsru-api-id" not in json.dumps([r[4] for r in rows]) and "smsru-api-id" not in caplog.text
    assert "79990000001" not in caplog.text  # numbers are masked in the log
    # the next run queues nothing more for the same call
    assert JobRunner(cfg, session_factory).run_job("notifications", force=True)[1].startswith("queued 0")


def test_rule_template_and_trimming(session_factory, project, add_call, gateway):
    cfg = sms_config(gateway, notify__sms_max_parts="1")
    add_rule(session_factory, project, body_template="$caller ($source): " + "x" * 300)
    add_call("missed")
    JobRunner(cfg, session_factory).run_job("notifications", force=True)
    text = gateway.requests[0]["form"]["text"]
    assert text.startswith("+74951234567 (Google Ads): xxx") and text.endswith("...")
    assert encoding.length(text).parts == 1 and encoding.length(text).units == 160


def test_retries_on_5xx_and_timeout_then_sent_once(session_factory, project, add_call, gateway, monkeypatch):
    monkeypatch.setattr(transport, "HTTP_TIMEOUT", 0.5)
    cfg = sms_config(gateway, "twilio", notify__sms_account="AC" + "1" * 32, notify__sms_token=SECRET,
                     notify__sms_from="+15005550006")
    add_rule(session_factory, project)
    add_call("missed")
    gateway.script = [("status", 503), ("hang", 1.5)]
    t0 = utcnow()
    rules.enqueue_missed(cfg, session_factory, now=t0)
    assert outbox.deliver_due(cfg, session_factory, now=t0) == (0, 1, 0)
    [(_, status, attempts, error, _)] = deliveries(session_factory)
    assert (status, attempts, error) == ("pending", 1, "HTTP 503 Service Unavailable")
    assert "internal secret detail" not in error
    t1 = t0 + dt.timedelta(seconds=outbox.backoff(1))
    assert outbox.deliver_due(cfg, session_factory, now=t1) == (0, 1, 0)
    [(_, status, attempts, error, _)] = deliveries(session_factory)
    assert status == "pending" and attempts == 2 and "timed out" in error
    t2 = t1 + dt.timedelta(seconds=outbox.backoff(2))
    assert outbox.deliver_due(cfg, session_factory, now=t2) == (1, 0, 0)
    assert deliveries(session_factory)[0][1:3] == ("sent", 3)
    # an acknowledged delivery is never sent again: not by the job, not by a retry by hand
    n = len(gateway.requests)
    assert outbox.deliver_due(cfg, session_factory, now=t2 + dt.timedelta(hours=2)) == (0, 0, 0)
    with session_factory() as s:
        d_id = s.scalars(select(Delivery.id)).one()
        with pytest.raises(ValueError, match="already sent"):
            outbox.requeue(s, d_id)
    assert outbox.deliver_one(cfg, session_factory, d_id) is True
    assert len(gateway.requests) == n == 3


def test_dead_letter_after_the_limit_and_an_acknowledged_number_is_not_sent_twice(
        session_factory, project, add_call, gateway):
    cfg = sms_config(gateway, "smsc", notify__sms_account="acme", notify__sms_token=SECRET)
    add_rule(session_factory, project, target="+79990000001, +79990000000")
    gateway.refuse.add("+79990000000")
    add_call("missed")
    now = utcnow()
    rules.enqueue_missed(cfg, session_factory, now=now)
    for _ in range(outbox.MAX_ATTEMPTS):
        outbox.deliver_due(cfg, session_factory, now=now)
        now += dt.timedelta(seconds=outbox.RETRY_MAX)
    rows = {r[0]: r for r in deliveries(session_factory)}
    assert rows["+79990000001"][1:3] == ("sent", 1)
    assert rows["+79990000000"][1:4] == ("dead", outbox.MAX_ATTEMPTS, "smsc 7: invalid number")
    assert len(gateway.sent_to("+79990000001")) == 1
    assert len(gateway.sent_to("+79990000000")) == outbox.MAX_ATTEMPTS
    with session_factory() as s:
        assert [d.target for d in outbox.dead_letters(s)] == ["+79990000000"]


def test_sms_digest(session_factory, project, add_call, gateway):
    cfg = sms_config(gateway)
    add_rule(session_factory, project, event="digest_daily")
    day = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
    add_call("missed", started=day)
    add_call("answered", started=day + dt.timedelta(hours=1), caller="+74957654321")
    now = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.timezone.utc)   # 09:00 in Moscow
    assert rules.enqueue_digests(cfg, session_factory, now=now) == 1
    assert rules.enqueue_digests(cfg, session_factory, now=now + dt.timedelta(minutes=5)) == 0
    outbox.deliver_due(cfg, session_factory, now=now)
    text = gateway.requests[0]["form"]["text"]
    assert text == "Daily call digest, Acme & Co, 2026-03-02: calls 2, answered 1, missed 1; callbacks pending 1"
    assert encoding.length(text).encoding == "GSM-7"


def test_send_test_goes_to_every_number(session_factory, project, gateway):
    cfg = sms_config(gateway, "smsc", notify__sms_account="acme", notify__sms_token=SECRET)
    rule_id = add_rule(session_factory, project, target="+79990000001, +79990000000")
    gateway.refuse.add("+79990000000")
    ok, message = rules.send_test(cfg, session_factory, rule_id)
    assert not ok and message == "+79990000000: smsc 7: invalid number"
    assert len(gateway.requests) == 2


def test_doctor_fails_sms_rules_without_a_provider(session_factory, project):
    from types import SimpleNamespace

    from calltracking.jobs.doctor import _doctor_deliveries

    add_rule(session_factory, project)
    said = _doctor_deliveries(SimpleNamespace(config=make_config(), sessionmaker=session_factory))
    assert [(r.status, r.detail) for r in said if r.name == "notify"] == [
        ("fail", "1 SMS rule(s) but [notify] sms_provider is empty")]
    said = _doctor_deliveries(SimpleNamespace(config=make_config(notify__sms_provider="smsru"),
                                              sessionmaker=session_factory))
    assert [r for r in said if r.name == "notify"] == []


def test_migration_0016_channel_constraints_up_and_down(db_factory):
    import sqlalchemy as sa

    from calltracking import migrate
    from calltracking.db import make_engine, make_sessionmaker
    from calltracking.models import Project

    url = db_factory.empty()
    migrate.upgrade(url)
    engine = make_engine(url)
    insert = sa.text("INSERT INTO notification_rules (project_id, name, channel, event, target, body_template, "
                     "secret, enabled) VALUES (:p, '', :c, 'missed_call', '+79991234567', '', '', :t)")
    try:
        with make_sessionmaker(engine)() as s:
            p = Project(key="acme", name="Acme", timezone="UTC")
            s.add(p)
            s.flush()
            s.add(NotificationRule(project_id=p.id, channel="sms", event="missed_call", target="+79991234567"))
            s.add(Delivery(channel="sms", event="missed_call", project_id=p.id, payload="{}"))
            s.commit()
            pid = p.id
        for channel in ("fax", "smss"):
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
                c.execute(insert, {"p": pid, "c": channel, "t": True})
        migrate.downgrade(url, "0015")
        with engine.begin() as c:     # the SMS rows are gone, and the old constraint is back
            assert c.execute(sa.text("SELECT count(*) FROM notification_rules")).scalar() == 0
            assert c.execute(sa.text("SELECT count(*) FROM deliveries")).scalar() == 0
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
            c.execute(insert, {"p": pid, "c": "sms", "t": True})
        migrate.upgrade(url)
        with engine.begin() as c:
            c.execute(insert, {"p": pid, "c": "sms", "t": True})
    finally:
        engine.dispose()


def test_a_redirect_is_not_followed_with_the_credentials(gateway):
    with Gateway().running() as elsewhere:
        cfg = sms_config(gateway, notify__sms_auth_header=f"Authorization: Bearer {SECRET}")
        gateway.script = [("redirect", 302, elsewhere.url + "/steal")]
        with pytest.raises(transport.DeliveryError, match="HTTP 302 Found"):
            providers.send(cfg, {"to": "+79991234567", "text": "x"}, transport.allow_any)
        assert elsewhere.requests == [] and len(gateway.requests) == 1
        # a webhook still follows it (transport.send_http): the fake does redirect
        gateway.script = [("redirect", 302, elsewhere.url + "/moved")]
        assert transport.send_http({"method": "POST", "url": gateway.url + "/hook", "body": "{}"},
                                   transport.allow_any) == 200
        assert [r["path"] for r in elsewhere.requests] == ["/moved"]


def test_missed_call_text_in_english_for_a_withheld_number(session_factory, project, add_call, gateway):
    cfg = sms_config(gateway, web__public_url="")
    add_rule(session_factory, project)
    add_call("missed", caller="", name="", started=dt.datetime(2026, 3, 2, 21, 30, tzinfo=dt.timezone.utc),
             ended_at=utcnow() - dt.timedelta(minutes=1))
    JobRunner(cfg, session_factory).run_job("notifications", force=True)
    # 21:30 UTC is 00:30 the next day in Moscow
    assert gateway.requests[0]["form"]["text"] == "Missed call: number withheld, Google Ads, Mar 03 00:30"
