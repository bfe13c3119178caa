"""Live: the operator's whisper on a real Asterisk 22 (docs/whisper.md).

Four calls at once into the include's ``calltracking-inbound``, each to its own operator
(ring 1-2 s, then talk a fixed time from the answer): one from a source with a whisper file
made by ``calltracking whisper sync`` (real espeak-ng) through ``Queue()``, the same through a
routing rule's ``Dial()`` target, one from a source without whisper, one whose file is deleted
after the route hook named it and before the operator answers. Witnesses: the AMI stream (``Newexten`` ``Playback`` on the operator's channel before
the caller's ``BridgeEnter``), queue_log and the CDR (support/live_verdict.py).
"""
from __future__ import annotations

import wave
from pathlib import Path

import pytest

from support.live_verdict import check, near, ts

pytestmark = pytest.mark.live

RING = {"112": 1, "113": 1, "114": 2, "115": 1}
TALK = {"112": 7, "113": 7, "114": 4, "115": 5}


def _seed(world) -> dict[str, int]:
    """A project of its own (its whisper is on), so the other live scenarios hear none."""
    from calltracking import entities as svc
    from calltracking.models import RoutingRule, Source
    from calltracking.whisper import settings

    with world.session() as s:
        p = svc.add_project(s, "whisper", timezone="Europe/Moscow", default_queue="sales")
        settings.set_project(s, p, enabled=True, template="{source}, {campaign}", voice="en")
        ids = {}
        for n, (name, queue) in enumerate([("Google Ads", "q_whisper"), ("Plain", "q_wplain"),
                                           ("Gone", "q_wgone")], start=1):
            src = svc.add_source(s, p, name, channel="ads")
            camp = svc.add_campaign(s, src, "brand")
            svc.add_number(s, p, f"7495000600{n}", source=src, campaign=camp, record=False)
            s.flush()
            s.add(RoutingRule(project_id=p.id, name=name, priority=n, source_id=src.id, queue=queue))
            ids[name] = (src.id, camp.id)
        desk = svc.add_source(s, p, "Desk", channel="other")
        svc.add_number(s, p, "74950006004", source=desk, record=False)
        s.flush()
        s.add(RoutingRule(project_id=p.id, name="desk", priority=9, source_id=desk.id,
                          target="Local/115@operators/n"))
        ids["Desk"] = (desk.id, None)
        settings.set_source(s, s.get(Source, ids["Plain"][0]), enabled=False)
    return ids


def _seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return w.getnframes() / 8000


@pytest.fixture(scope="module")
def whispered(world):
    w = world
    ids = _seed(w)
    out = w.cli("whisper", "sync").stdout
    assert "errors 0" in out, out
    files = {name: w.whisper_dir / (f"s{sid}-c{cid}.wav" if cid else f"s{sid}.wav")
             for name, (sid, cid) in ids.items()}
    assert files["Google Ads"].exists() and files["Gone"].exists() and not files["Plain"].exists()
    w.db_put(**{f"ring/{ext}": r for ext, r in RING.items()}, **{f"talk/{ext}": t for ext, t in TALK.items()})
    c = {"whisper": w.call("74950006001", "79160000601", tag="whisper", stay=30),
         "plain": w.call("74950006002", "79160000602", tag="plain", stay=30),
         "gone": w.call("74950006003", "79160000603", tag="gone", stay=30),
         "dial": w.call("74950006004", "79160000604", tag="dial", stay=30)}
    # the route hook named the file; it disappears before Oskar answers (he rings 2 s)
    ev = w.driver.wait_event(lambda e: e.get("Event") == "VarSet" and e.get("Variable") == "CT_WHISPER"
                             and e.get("Linkedid") == c["gone"].linkedid and e.get("Value"), timeout=10)
    assert ev["Value"] == str(files["Gone"].with_suffix("")), ev
    seconds = _seconds(files["Google Ads"])
    files["Gone"].unlink()
    w.wait_hungup(list(c.values()), timeout=60)
    return c, w.records(list(c.values())), files, seconds


def _playbacks(world, linkedid: str) -> list[dict]:
    return [e for e in world.events(linkedid, "Newexten") if e.get("Application") == "Playback"]


def test_the_operator_hears_the_whisper_before_the_bridge(world, whispered):
    calls, _, files, seconds = whispered
    lid = calls["whisper"].linkedid
    played = _playbacks(world, lid)
    assert [e["AppData"].split(",")[0] for e in played] == [str(files["Google Ads"].with_suffix(""))]
    assert played[0]["Channel"].startswith("Local/112@operators-") and played[0]["Channel"].endswith(";1")
    caller_enter = [e for e in world.events(lid, "BridgeEnter") if "@from-trunk-" in e["Channel"]]
    assert caller_enter, "the caller was never bridged"
    # the operator answered, heard the whole file, and only then was the caller connected
    gap = float(caller_enter[0]["Timestamp"]) - float(played[0]["Timestamp"])
    assert seconds - 0.3 <= gap <= seconds + 1.0, (gap, seconds)
    assert 1.0 <= seconds <= 4.0, seconds


def test_the_caller_hears_nothing(world, whispered):
    calls, *_ = whispered
    for tag in calls:
        played = _playbacks(world, calls[tag].linkedid)
        assert not [e for e in played if "@from-trunk-" in e["Channel"]], played


def test_no_whisper_without_a_file_and_the_call_connects(world, whispered):
    calls, records, *_ = whispered
    for tag, ext, name in (("plain", "113", "Nadia"), ("gone", "114", "Oskar")):
        assert _playbacks(world, calls[tag].linkedid) == [], tag
        bad = check(world, calls[tag], records.get(calls[tag].linkedid), status="answered", operator=name,
                    queue={"plain": "q_wplain", "gone": "q_wgone"}[tag], legs=[(name, TALK[ext])],
                    talk=TALK[ext], wait=RING[ext])
        assert not bad, "\n".join(bad)
    plain = [e["Value"] for e in world.events(calls["plain"].linkedid, "VarSet")
             if e.get("Variable") == "CT_WHISPER"]
    assert plain and set(plain) == {""}, plain          # reset by calltracking-route, then the hook's ''
    assert len(plain) >= 2, plain


def test_the_whisper_is_wait_not_talk(world, whispered):
    """The caller waits while the operator listens: the record's talk time is the bridged
    conversation only, its wait ends at the bridge; both agree with queue_log and the CDR."""
    calls, records, _, seconds = whispered
    rec, plain = records[calls["whisper"].linkedid], records[calls["plain"].linkedid]
    bad = check(world, calls["whisper"], rec, status="answered", operator="Mila", queue="q_whisper",
                source="Google Ads", talk=TALK["112"] - seconds, wait=RING["112"] + seconds)
    assert not bad, "\n".join(bad)
    # against the call without whisper (same ring and answer-to-hang-up times)
    assert near(float(rec["talk_seconds"]) + seconds, float(plain["talk_seconds"]), 1.0), (rec, plain)
    assert near(float(rec["wait_seconds"]) - seconds, float(plain["wait_seconds"]), 1.0), (rec, plain)
    lid = calls["whisper"].linkedid
    enter = [e for e in world.events(lid, "BridgeEnter") if "@from-trunk-" in e["Channel"]][0]
    assert near(ts(rec["answered_at"]), float(enter["Timestamp"]), 1.0), (rec["answered_at"], enter)


def test_a_dial_target_plays_the_whisper_too(world, whispered):
    """``Dial(${CT_TARGET},60,U(calltracking-whisper))``: the called channel hears it first."""
    calls, records, files, _ = whispered
    lid = calls["dial"].linkedid
    played = _playbacks(world, lid)
    assert [e["AppData"].split(",")[0] for e in played] == [str(files["Desk"].with_suffix(""))]
    assert played[0]["Channel"].startswith("Local/115@operators-") and played[0]["Channel"].endswith(";1")
    caller_enter = [e for e in world.events(lid, "BridgeEnter") if "@from-trunk-" in e["Channel"]]
    assert caller_enter and float(caller_enter[0]["Timestamp"]) > float(played[0]["Timestamp"]) + 0.5
    rec = records.get(lid)
    assert rec and rec["status"] == "answered" and rec["operator"] == "Pyotr", rec
