"""Live: two-channel recordings on a real Asterisk 22 and the conversation measures (docs/dialplan.md,
docs/recordings-notifications-integrations.md "Conversation measures").

Two recorded calls at once through the include's ``calltracking-inbound`` and a routing rule's
``Dial()`` target ``Local/171@talkers/n``. From the answer, the operator's Local channel is
silent 1.5 s, then plays a 3 s 880 Hz tone; the caller's Local channel is silent 3.5 s, then plays
a 2 s 440 Hz tone (so the caller starts while the operator still speaks: one interruption of
1 s). The first call records both sides (the default): MixMonitor writes the mix and the legs
``-in``/``-out``; the second sets ``CALLTRACKING_RECORD_SIDES=no`` on its channel: the mix only.
The ``recordings`` job of ``calltracking run`` then pairs the legs, measures them and deletes
the originals.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from pydub import AudioSegment
from pydub.generators import Sine

from support.live_world import Placed
from support.polling import poll

pytestmark = pytest.mark.live

OPERATOR_PRE, OPERATOR_TONE, OPERATOR_POST = 1.5, 3.0, 3.0
CALLER_PRE, CALLER_TONE = 3.5, 2.0
TARGET = "Local/171@talkers/n"


def _tone(path: Path, hz: int, seconds: float) -> Path:
    Sine(hz).to_audio_segment(duration=int(seconds * 1000), volume=-12).set_frame_rate(8000) \
        .set_channels(1).set_sample_width(2).export(str(path), format="wav")
    return path.with_suffix("")


def _seed(world) -> None:
    from calltracking import entities as svc
    from calltracking.models import RoutingRule

    with world.session() as s:
        p = svc.add_project(s, "sides", timezone="Europe/Moscow", default_queue="sales")
        src = svc.add_source(s, p, "Sides", channel="other")
        svc.add_number(s, p, "74950007001", source=src, record=True)
        s.flush()
        s.add(RoutingRule(project_id=p.id, name="sides", priority=1, source_id=src.id,
                          target=TARGET, record=True))


def _place(world, tag: str, caller: str, tone: Path, *extra: str) -> Placed:
    tid = f"{tag}-{time.monotonic_ns()}"
    r = world.driver.action(
        "Originate", Channel="Local/74950007001@from-trunk", Context="caller", Exten="speak", Priority="1",
        CallerID=f'"Caller {caller[-4:]}" <{caller}>', Timeout="30000", Async="true",
        Variable=[f"CALLER_PRE={CALLER_PRE}", f"CALLER_FILE={tone}", "CALLER_STAY=30",
                  f"LIVE_TEST_ID={tid}", *extra])
    assert r.get("Response") == "Success", r
    ev = world.driver.wait_event(lambda e: e.get("Event") == "VarSet" and e.get("Variable") == "LIVE_TEST_ID"
                                 and e.get("Value") == tid, timeout=10)
    return Placed(tag=tag, did="74950007001", caller=caller, linkedid=ev["Linkedid"], placed_at=time.time())


def _files(world, linkedid: str) -> dict[str, Path]:
    """The call's files in the monitor directory, by suffix ('' = the mix, '-in', '-out', '.mp3')."""
    found = {}
    for p in world.ast.monitor_dir.rglob(f"live-{linkedid}*"):
        rest = p.name[len(f"live-{linkedid}"):]
        found[{".wav": "", "-in.wav": "-in", "-out.wav": "-out"}.get(rest, rest)] = p
    return found


def _info(world, linkedid: str):
    from calltracking.models import Call, RecordingInfo
    from sqlalchemy import select

    with world.session() as s:
        row = s.execute(select(RecordingInfo).join(Call, Call.id == RecordingInfo.call_id)
                        .where(Call.linkedid == linkedid)).scalar_one_or_none()
        if row is None or row.status != "ok":
            return None
        s.expunge(row)
        return row


@pytest.fixture(scope="module")
def sides(world):
    w = world
    _seed(w)
    operator_tone = _tone(w.tmp / "operator-880.wav", 880, OPERATOR_TONE)
    caller_tone = _tone(w.tmp / "caller-440.wav", 440, CALLER_TONE)
    w.db_put(**{"speak/pre": OPERATOR_PRE, "speak/operator": str(operator_tone), "speak/post": OPERATOR_POST})
    both = _place(w, "sides", "79160000701", caller_tone)
    mix = _place(w, "mixonly", "79160000702", caller_tone, "CALLTRACKING_RECORD_SIDES=no")
    w.wait_hungup([both, mix], timeout=60)
    records = w.records([both, mix])
    # the recordings job waits 10 s after the end: the originals are all still there
    originals = {"both": _files(w, both.linkedid), "mix": _files(w, mix.linkedid)}
    legs = {k: AudioSegment.from_file(f) for k, f in originals["both"].items() if k in ("-in", "-out")}
    infos = poll(lambda: (lambda a, b: (a, b) if a and b else None)(_info(w, both.linkedid), _info(w, mix.linkedid)),
                 150, "the recordings job to measure both calls", interval=2)
    return both, mix, records, originals, infos, legs


def test_the_include_records_each_side_in_its_own_file(sides):
    from calltracking.jobs.recording_audio import speech_ranges

    both, mix, records, originals, _, legs = sides
    assert records[both.linkedid]["status"] == "answered", records[both.linkedid]
    assert set(originals["both"]) == {"", "-in", "-out"}, originals["both"]
    assert set(originals["mix"]) == {""}, originals["mix"]          # the switch: the mix only
    # r() holds what the caller said, t() what the operator said, each from the answer
    caller, operator = speech_ranges(legs["-in"]), speech_ranges(legs["-out"])
    assert len(caller) == 1 and len(operator) == 1, (caller, operator)
    assert abs(caller[0][0] / 1000 - CALLER_PRE) <= 0.5, caller
    assert abs((caller[0][1] - caller[0][0]) / 1000 - CALLER_TONE) <= 0.2, caller
    assert abs(operator[0][0] / 1000 - OPERATOR_PRE) <= 0.5, operator
    assert abs((operator[0][1] - operator[0][0]) / 1000 - OPERATOR_TONE) <= 0.2, operator


def test_the_job_pairs_the_legs_and_measures_each_side(world, sides):
    both, _, _, originals, (info, _), _ = sides
    assert info.channels == 2
    assert json.loads(info.source_files) == [str(originals["both"][k]) for k in ("-in", "-out", "")]
    assert float(info.caller_talk_seconds) == pytest.approx(CALLER_TONE, abs=0.2)
    assert float(info.operator_talk_seconds) == pytest.approx(OPERATOR_TONE, abs=0.2)
    assert float(info.talk_ratio) == pytest.approx(OPERATOR_TONE / (OPERATOR_TONE + CALLER_TONE), abs=0.03)
    assert float(info.first_operator_word_seconds) == pytest.approx(OPERATOR_PRE, abs=0.5)
    # the caller started 1 s before the operator stopped: one interruption, by the caller
    assert (info.caller_interruptions, info.operator_interruptions) == (1, 0)
    assert float(info.longest_silence_seconds) == pytest.approx(0.0, abs=0.1)
    # converted to one stereo file; the legs and the mix are gone
    now = _files(world, both.linkedid)
    assert set(now) == {".mp3"}, now
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=channels", "-of",
                          "default=nw=1:nk=1", str(now[".mp3"])], stdout=subprocess.PIPE, text=True, check=True)
    assert out.stdout.strip() == "2"


def test_a_mix_alone_has_no_sides(world, sides):
    _, mix, records, _, (_, info), _ = sides
    assert records[mix.linkedid]["status"] == "answered"
    assert info.channels == 1
    assert info.caller_talk_seconds is None and info.talk_ratio is None
    assert info.caller_interruptions is None and info.first_operator_word_seconds is None
    assert set(_files(world, mix.linkedid)) == {".mp3"}
