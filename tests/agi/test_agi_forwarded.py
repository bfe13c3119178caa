"""Forwarded calls: the forwarding number (``agi_rdnis``) kept on the call and matched by a rule."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking import hooks, phone
from calltracking.attribution import lookup, routing
from calltracking.db import session_scope
from calltracking.hooks import inputs
from calltracking.models import Call, Project, RoutingRule, Source
from support.fastagi_client import call, headers

OWN = "+74957770000"            # the company's published number, forwarded to a tracking number


def _row(session_factory, linkedid):
    with session_scope(session_factory) as s:
        return s.execute(select(Call.forwarded_from, Call.routing_rule_id, Call.queue)
                         .where(Call.linkedid == linkedid)).one()


@pytest.fixture
def own_rule(data, session_factory):
    with session_scope(session_factory) as s:
        r = svc.add_rule(s, s.get(Project, data["project"]), "own number", priority=5,
                         forwarded_from="8 (495) 777-00-00", queue="own-q", region="RU")
        return r.id


def test_forwarded_call_over_fastagi_keeps_the_number_and_takes_the_rule(agi, data, session_factory, own_rule):
    v = call(agi.port, headers(args=("74950001001", "f.1"), agi_rdnis="84957770000")).vars
    assert v["CT_QUEUE"] == "own-q"
    assert tuple(_row(session_factory, "f.1")) == (OWN, own_rule, "own-q")
    # dialled directly: Asterisk sends "unknown"; another forwarding number: no match
    for lid, rdnis, kept in (("f.2", "unknown", ""), ("f.3", "+7 495 111-22-33", "+74951112233")):
        v = call(agi.port, headers(args=("74950001001", lid), agi_rdnis=rdnis)).vars
        assert v["CT_QUEUE"] == "sales", rdnis
        assert tuple(_row(session_factory, lid)) == (kept, None, "sales"), rdnis


@pytest.mark.parametrize("rdnis, kept", [
    ("<script>alert(1)</script>", "1"),                 # only its digits
    ("anonymous", ""), ("Restricted", ""), ("", ""), ("abc;DROP TABLE calls", ""),
    ("9" * 4000, "9" * 32),     # very long (a header line stays under MAX_LINE): at most 32 digits
    ("\u202e+7 495 777 00 00", OWN),                    # a direction mark around a real number
])
def test_hostile_rdnis_is_cleaned_and_the_call_still_routed(agi, data, session_factory, own_rule, rdnis, kept):
    lid = f"h.{abs(hash(rdnis)) % 10**9}"
    res = call(agi.port, headers(args=("74950001001", lid), agi_rdnis=rdnis))
    assert res.vars["CT_QUEUE"] == ("own-q" if kept == OWN else "sales")
    assert _row(session_factory, lid).forwarded_from == kept


def test_the_listener_row_first_then_route_keeps_forwarded_from(agi, data, session_factory, own_rule):
    """The AMI listener may create the row before the hook: the hook's value is kept."""
    with session_scope(session_factory) as s:
        s.add(Call(pbx_id="pbx1", linkedid="f.9", project_id=data["project"], caller_number="+79161234567",
                   started_at=dt.datetime.now(dt.timezone.utc)))
    call(agi.port, headers(args=("74950001001", "f.9"), agi_rdnis=OWN))
    assert _row(session_factory, "f.9").forwarded_from == OWN


def test_forwarding_rule_agrees_with_the_orm_path(config, data, session_factory, clock):
    """The hook (catalogue snapshot) and the ORM path (RoutingRule rows, the same cleaned
    forwarding number) choose the same rule for every forwarding number and DID."""
    with session_scope(session_factory) as s:
        p = s.get(Project, data["project"])
        svc.add_rule(s, p, "own", priority=10, forwarded_from=OWN, queue="own-q")
        svc.add_rule(s, p, "own google", priority=5, forwarded_from="+74951112233",
                     source=s.get(Source, data["google"]), queue="other-q", weekdays="67")
    env = hooks.HookEnv(config, session_factory, clock=clock)
    chosen = set()
    for when in (dt.datetime(2026, 3, 4, 9, 30), dt.datetime(2026, 3, 7, 10, 0)):      # Wed, Sat
        clock.now = when.replace(tzinfo=dt.timezone.utc)
        for did in ("74950001001", "74950001002", "74950002001"):
            for rdnis in (OWN, "84957770000", "+74951112233", "unknown", "", "garbage", "1" * 300,
                          "84950001002", "+74950002001"):       # own static (Billboard), pool
                answer, row = hooks.plan_route(env, did, "o.1", "", "", rdnis)
                with session_scope(session_factory) as s:
                    att = lookup.attribute(s, did, clock.now, "RU", inputs.forwarded_from(rdnis, "RU"))
                    rules = [routing.Rule.from_row(r) for r in s.scalars(
                        select(RoutingRule).where(RoutingRule.project_id == att.project.id))]
                    ref = routing.choose(rules, routing.CallFacts.of(
                        routing.local_now(clock.now, att.project.timezone), att.source_id, att.campaign_id,
                        att.visitor_session, inputs.forwarded_from(rdnis, "RU")))
                where = f"{did} {rdnis!r} {when}"
                assert row["routing_rule_id"] == (ref.id if ref else None), where
                assert row["forwarded_from"] == inputs.forwarded_from(rdnis, "RU"), where
                assert answer["CT_QUEUE"] == routing.queue_for(ref, "sales"), where
                assert (row["source_id"], row["tracking_number_id"]) == (
                    att.source_id, att.tracking_number.id if att.tracking_number else None), where
                assert row["did"] == att.did, where
                chosen.add(ref.name if ref else None)
    assert chosen == {"own", "own google", None}


def test_rule_forwarded_from_is_normalised_and_checked(data, session_factory):
    with session_scope(session_factory) as s:
        p = s.get(Project, data["project"])
        r = svc.add_rule(s, p, "fwd", forwarded_from=" 8 495 777-00-00 ", queue="q")
        assert r.forwarded_from == OWN
        svc.update_rule(s, r, name="fwd", priority=None, source=None, campaign=None, keyword_regex="",
                        utm_regex="", time_from=None, time_to=None, weekdays="1234567", queue="q", target="",
                        record=None, enabled=True, forwarded_from="")
        assert r.forwarded_from == ""
        with pytest.raises(phone.InvalidNumber):
            svc.add_rule(s, p, "bad", forwarded_from="12", queue="q")


def test_dialled_directly_never_matches_a_forwarding_rule():
    now = dt.datetime(2026, 3, 4, 12, tzinfo=dt.timezone.utc)
    rule = routing.Rule(id=1, forwarded_from=OWN, queue="q")
    assert routing.rule_matches(rule, routing.CallFacts.of(now, forwarded_from=OWN))
    assert not routing.rule_matches(rule, routing.CallFacts.of(now))
    assert not routing.rule_matches(rule, routing.CallFacts.of(now, forwarded_from="+74951112233"))
    assert routing.rule_matches(routing.Rule(id=2, queue="q"), routing.CallFacts.of(now, forwarded_from=OWN))


def test_a_valid_promo_code_routes_again_with_the_forwarding_number(agi, data, session_factory):
    """The code's source and the call's forwarding number: a rule needing both matches."""
    with session_scope(session_factory) as s:
        p = s.get(Project, data["project"])
        svc.add_rule(s, p, "billboard forwarded", priority=1, source=s.get(Source, data["billboard"]),
                     forwarded_from=OWN, queue="bill-fwd")
    call(agi.port, headers(args=("74950001001", "p.1"), agi_rdnis=OWN))
    call(agi.port, headers(args=("74950001001", "p.2")))
    assert call(agi.port, headers("promo", args=("p.1", "4242"))).vars["CT_QUEUE"] == "bill-fwd"
    assert call(agi.port, headers("promo", args=("p.2", "4242"))).vars["CT_QUEUE"] == "sales"
    assert tuple(_row(session_factory, "p.1")) == (OWN, _rule_id(session_factory, "billboard forwarded"),
                                                   "bill-fwd")


def _rule_id(session_factory, name):
    with session_scope(session_factory) as s:
        return s.scalars(select(RoutingRule.id).where(RoutingRule.name == name)).one()


def test_forwarded_from_an_own_static_number_is_attributed_by_it(agi, data, session_factory):
    """The company forwards its published number (a static tracking number with its source) to a
    tracking number: the call takes the published number's source, campaign and tracking number;
    the dialled number stays the call's DID. A pool number or a retired one forwarding: the DID's."""
    from calltracking.models import TrackingNumber

    with session_scope(session_factory) as s:
        tn = {t.number: t.id for t in s.scalars(select(TrackingNumber))}
        s.add(TrackingNumber(project_id=data["project"], number="+74957770001", source_id=data["site"],
                             active=False))
    cases = [   # linkedid, forwarding number, (source, campaign, tracking number, attribution)
        ("p.1", "84950001002", (data["billboard"], None, tn["+74950001002"], "static")),
        ("p.2", "+74950002001", (data["google"], data["brand"], tn["+74950001001"], "static")),  # pool
        ("p.3", "+74957770001", (data["google"], data["brand"], tn["+74950001001"], "static")),  # retired
        ("p.4", "+74951112233", (data["google"], data["brand"], tn["+74950001001"], "static")),  # unknown
    ]
    for lid, rdnis, want in cases:
        v = call(agi.port, headers(args=("74950001001", lid), agi_rdnis=rdnis)).vars
        assert v["CT_STATUS"] == "ok", rdnis
        with session_scope(session_factory) as s:
            row = s.execute(select(Call.source_id, Call.campaign_id, Call.tracking_number_id, Call.attribution,
                                   Call.did).where(Call.linkedid == lid)).one()
        assert tuple(row[:4]) == want, rdnis
        assert row.did == "+74950001001"
    assert v["CT_SOURCE"] == "Google Ads"
    v = call(agi.port, headers(args=("74950001001", "p.5"), agi_rdnis="84950001002")).vars
    assert v["CT_SOURCE"] == "Billboard"
