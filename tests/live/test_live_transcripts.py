"""Live: a call recorded by a real Asterisk 22 (the include's MixMonitor, both sides) with
espeak-ng speech on each side, converted by the ``recordings`` job of ``calltracking run``, then
transcribed by pocketsphinx: every phrase lands on the side that spoke it, at the time it was
spoken (docs/transcripts.md "Caller and operator").

The operator's Local channel is silent 1 s after the answer, then says one sentence; the caller's
channel is silent 5 s, then says another. Asterisk plays and records them at 8 kHz, where
pocketsphinx's English model hears few words right, so the test checks sides and times, not words.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.live_world import Placed
from support.polling import poll

pytestmark = pytest.mark.live

OPERATOR_PRE, OPERATOR_POST = 1.0, 4.0
CALLER_PRE = 5.0
DID = "74950007002"
TARGET = "Local/172@talkers/n"


def _speech(path: Path, text: str) -> Path:
    from calltracking.transcripts.speech import say

    say(text, rate=8000).set_sample_width(2).export(str(path), format="wav")
    return path.with_suffix("")


def _seed(world) -> None:
    from calltracking import entities as svc
    from calltracking.models import RoutingRule

    with world.session() as s:
        p = svc.add_project(s, "spoken", timezone="Europe/Moscow", default_queue="sales")
        src = svc.add_source(s, p, "Spoken", channel="other")
        svc.add_number(s, p, DID, source=src, record=True)
        s.flush()
        s.add(RoutingRule(project_id=p.id, name="spoken", priority=1, source_id=src.id, target=TARGET,
                          record=True))


def _recorded(world, linkedid: str):
    from sqlalchemy import select

    from calltracking.models import Call, RecordingInfo

    with world.session() as s:
        row = s.execute(select(RecordingInfo.call_id, RecordingInfo.file, RecordingInfo.status)
                        .join(Call, Call.id == RecordingInfo.call_id).where(Call.linkedid == linkedid)).first()
        return (row.call_id, row.file) if row is not None and row.status == "ok" else None


def test_phrases_land_on_the_side_that_spoke(world):
    from calltracking.db import make_engine, make_sessionmaker, writer
    from calltracking.jobs.transcripts import transcribe_call_now
    from calltracking.models import Transcript
    from calltracking.transcripts.store import phrases_of
    from support.config import make_config

    w = world
    _seed(w)
    operator = _speech(w.tmp / "operator-speech.wav", "good morning this is the shop")
    caller = _speech(w.tmp / "caller-speech.wav", "the price is too high for me")
    w.db_put(**{"speak/pre": OPERATOR_PRE, "speak/operator": str(operator), "speak/post": OPERATOR_POST})
    tid = f"spoken-{time.monotonic_ns()}"
    r = w.driver.action(
        "Originate", Channel=f"Local/{DID}@from-trunk", Context="caller", Exten="speak", Priority="1",
        CallerID='"Caller 0703" <79160000703>', Timeout="30000", Async="true",
        Variable=[f"CALLER_PRE={CALLER_PRE}", f"CALLER_FILE={caller}", "CALLER_STAY=30", f"LIVE_TEST_ID={tid}"])
    assert r.get("Response") == "Success", r
    ev = w.driver.wait_event(lambda e: e.get("Event") == "VarSet" and e.get("Variable") == "LIVE_TEST_ID"
                             and e.get("Value") == tid, timeout=10)
    placed = Placed(tag="spoken", did=DID, caller="79160000703", linkedid=ev["Linkedid"], placed_at=time.time())
    w.wait_hungup([placed], timeout=60)
    assert w.records([placed])[placed.linkedid]["status"] == "answered"
    call_id, file = poll(lambda: _recorded(w, placed.linkedid), 150, "the recordings job to convert the call",
                         interval=2)
    cfg = make_config(w.db_url, transcripts__backend="pocketsphinx", recordings__dir=str(w.ast.monitor_dir))
    eng = make_engine(w.db_url)
    try:
        factory = make_sessionmaker(writer(eng))
        assert transcribe_call_now(cfg, factory, call_id, [file])
        with make_sessionmaker(eng)() as s:
            t = s.get(Transcript, call_id)
            phrases = [(p.side, float(p.start_seconds), float(p.end_seconds), p.text) for p in phrases_of(s, call_id)]
    finally:
        eng.dispose()
    assert (t.status, t.backend) == ("ok", "pocketsphinx"), t.error
    sides = {side for side, *_ in phrases}
    assert sides == {"caller", "operator"}, phrases
    for side, start, end, _text in phrases:
        if side == "operator":   # said from 1 s after the answer, about 2 s long
            assert OPERATOR_PRE - 0.6 <= start and end <= OPERATOR_PRE + 4.0, phrases
        else:                    # said from 5 s, never before: the operator's words are not on its channel
            assert CALLER_PRE - 0.6 <= start <= CALLER_PRE + 1.0 and end <= CALLER_PRE + 4.5, phrases
