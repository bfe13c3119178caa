"""Conversation measures: interruptions and time to first operator word, from generated two-sided
audio (tones and silence at known times), stored per call and averaged per operator."""
from __future__ import annotations

import datetime as dt
import functools
import json
from decimal import Decimal
from pathlib import Path

import pytest
from pydub import AudioSegment
from sqlalchemy import text

from calltracking.jobs import conversation, recording_audio, recordings
from calltracking.jobs.recording_audio import SEEK_MS
from calltracking.models import Call, RecordingInfo, utcnow
from support.audio import speech_track
from support.config import make_config

RATE = 8000
# (start_ms, end_ms) of speech on each side of a 12 s call
CALLER = [(0, 2000), (3000, 5000), (8000, 8300), (9000, 11000)]
OPERATOR = [(1200, 2600), (4000, 7000), (7600, 10000)]
# the operator starts at 1.2 s over the caller (0.8 s together) and at 4.0 s (1.0 s together): 2;
# the caller's 0.3 s "uh-huh" at 8.0 s is under the threshold; at 9.0 s 1.0 s together: 1
RESOLUTION = SEEK_MS / 1000 + 0.01


track = functools.partial(speech_track, total_ms=12000, rate=RATE)


def legs(directory: Path, name: str, caller=CALLER, operator=OPERATOR) -> list[Path]:
    files = [directory / f"{name}-in.wav", directory / f"{name}-out.wav"]
    track(caller).export(str(files[0]), format="wav")
    track(operator, freq=660).export(str(files[1]), format="wav")
    return files


# ------------------------------------------------------------------ the rules
def test_interruption_rule_on_ranges():
    f = conversation.interruptions
    assert f(OPERATOR, CALLER) == 2 and f(CALLER, OPERATOR) == 1
    # the threshold: speaking together exactly INTERRUPT_MIN_MS counts, 1 ms less does not
    m = conversation.INTERRUPT_MIN_MS
    assert f([(1000, 1000 + m)], [(0, 5000)]) == 1
    assert f([(1000, 999 + m)], [(0, 5000)]) == 0
    assert f([(1000, 9000)], [(0, 1000 + m)]) == 1          # the other side stops: together until then
    assert f([(1000, 9000)], [(0, 999 + m)]) == 0
    assert f([(0, 3000)], [(0, 3000)]) == 0                  # both start at once: nobody interrupted
    assert f([(3000, 4000)], [(0, 3000)]) == 0               # starts as the other stops: a turn
    assert f([(500, 4000)], [(0, 3000), (3500, 9000)]) == 1  # one range interrupts at most once
    assert f([], CALLER) == 0 and f(CALLER, []) == 0


def test_first_word_rule():
    assert conversation.first_word(OPERATOR) == 1.2
    assert conversation.first_word([(3000, 4000), (500, 900)]) == 0.5
    assert conversation.first_word([]) is None


# ------------------------------------------------------------ generated audio
def test_measures_of_generated_two_sided_audio(tmp_path):
    _audio, a = recording_audio.analyze(legs(tmp_path, "c"))
    assert (a.operator_interruptions, a.caller_interruptions) == (2, 1)
    assert a.first_operator_word == pytest.approx(1.2, abs=RESOLUTION)
    assert a.caller_talk == pytest.approx(6.3, abs=4 * RESOLUTION)
    assert a.operator_talk == pytest.approx(6.8, abs=3 * RESOLUTION)
    assert a.talk_ratio == pytest.approx(6.8 / 13.1, abs=0.005)
    assert a.longest_silence == pytest.approx(0.6, abs=RESOLUTION)    # 7.0-7.6 (2.6-3.0 is shorter)
    # a stereo file (caller left, operator right) gives the same
    stereo = AudioSegment.from_mono_audiosegments(track(CALLER), track(OPERATOR, freq=660))
    stereo.export(str(tmp_path / "s.wav"), format="wav")
    _audio, b = recording_audio.analyze([tmp_path / "s.wav"])
    assert (b.operator_interruptions, b.caller_interruptions, b.first_operator_word) == \
        (a.operator_interruptions, a.caller_interruptions, a.first_operator_word)


def test_operator_silent_and_mono(tmp_path):
    _audio, a = recording_audio.analyze(legs(tmp_path, "q", operator=[]))
    assert a.first_operator_word is None and a.operator_talk == 0
    assert (a.operator_interruptions, a.caller_interruptions) == (0, 0)
    track(CALLER).overlay(track(OPERATOR, freq=660)).export(str(tmp_path / "m.wav"), format="wav")
    _audio, m = recording_audio.analyze([tmp_path / "m.wav"])
    assert m.channels == 1
    assert (m.operator_interruptions, m.caller_interruptions, m.first_operator_word) == (None, None, None)


def test_cli_analyze_prints_the_measures(tmp_path, run_cli):
    files = legs(tmp_path, "cli")
    out = json.loads(run_cli("recordings", "analyze", *map(str, files)).output)
    assert (out["operator_interruptions"], out["caller_interruptions"]) == (2, 1)
    assert out["first_operator_word"] == pytest.approx(1.2, abs=RESOLUTION)


# ---------------------------------------------------------- stored per call
@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_legs_beside_the_mix_are_the_recording(tmp_path, session_factory, add_call, fmt):
    """The include writes NAME.wav (the mix) and NAME-in.wav/NAME-out.wav: the job measures the
    legs, writes one stereo NAME.<fmt> and deletes the legs and the mix."""
    recdir = tmp_path / "monitor"
    day = recdir / "2026" / "12" / "04"
    day.mkdir(parents=True)
    cfg = make_config(recordings__dir=recdir, recordings__format=fmt)
    cid = add_call("answered", seconds=60, record=True)
    with session_factory() as s:
        c = s.get(Call, cid)
        name = f"{c.pbx_id}-{c.linkedid}"
        ins, out = legs(day, name)
        mix = day / f"{name}.wav"
        track(CALLER).overlay(track(OPERATOR, freq=660)).export(str(mix), format="wav")
        c.recording_file = str(mix)                  # MIXMONITOR_FILENAME: the mix
        s.commit()
    assert recordings.process_pending(cfg, session_factory) == {"ok": 1}
    with session_factory() as s:
        info = s.get(RecordingInfo, cid)
        assert info.channels == 2 and info.error == ""
        assert (info.operator_interruptions, info.caller_interruptions) == (2, 1)
        assert float(info.first_operator_word_seconds) == pytest.approx(1.2, abs=RESOLUTION)
        assert json.loads(info.source_files) == [str(ins), str(out), str(mix)]
        assert Path(info.file) == day / f"{name}.{fmt}"
    assert sorted(p.name for p in day.iterdir()) == [f"{name}.{fmt}"]
    assert AudioSegment.from_file(str(day / f"{name}.{fmt}")).channels == 2


def test_legs_without_a_recorded_name_are_found_by_call_id(tmp_path, session_factory, add_call):
    recdir = tmp_path / "monitor"
    day = recdir / "2026" / "12" / "04"
    day.mkdir(parents=True)
    cfg = make_config(recordings__dir=recdir, recordings__format="wav")
    cid = add_call("answered", seconds=60, record=True)
    with session_factory() as s:
        c = s.get(Call, cid)
        legs(day, f"{c.pbx_id}-{c.linkedid}")
    assert recordings.process_pending(cfg, session_factory) == {"ok": 1}
    with session_factory() as s:
        assert s.get(RecordingInfo, cid).caller_interruptions == 1


# ---------------------------------------------------------- per operator
def test_operator_averages_agree_with_plain_sql(session_factory, add_call, project):
    """Many calls, two operators, some measures missing: the report's averages are the SQL AVG
    over the calls measured."""
    ids = []
    for i in range(60):
        cid = add_call("answered", seconds=60 + i, operator_name=("Anna", "Boris")[i % 2])
        ids.append(cid)
    with session_factory() as s:
        for i, cid in enumerate(ids):
            s.add(RecordingInfo(
                call_id=cid, status="ok", channels=2, talk_ratio=Decimal(f"0.{(i * 37) % 900 + 100:03d}"),
                caller_talk_seconds=Decimal(10 + i), operator_talk_seconds=Decimal(20 + i % 7),
                longest_silence_seconds=Decimal(f"{(i * 13) % 50}.{i % 10}"),
                operator_interruptions=(i * 7) % 5, caller_interruptions=i % 3,
                first_operator_word_seconds=None if i % 9 == 0 else Decimal(f"{i % 6}.{(i * 3) % 1000:03d}")))
        s.commit()
        stats = recording_audio.operator_talk_stats(s, project["id"], utcnow() - dt.timedelta(days=1), utcnow())
        plain = s.execute(text(
            "SELECT c.operator_name, COUNT(*), AVG(r.talk_ratio), AVG(r.operator_interruptions),"
            " AVG(r.first_operator_word_seconds), AVG(r.longest_silence_seconds), MAX(r.longest_silence_seconds)"
            " FROM recording_info r JOIN calls c ON c.id = r.call_id GROUP BY c.operator_name"
            " ORDER BY c.operator_name")).all()
    assert [t["operator"] for t in stats] == ["Anna", "Boris"]
    for t, (name, n, ratio, interrupts, first, silence, worst) in zip(stats, plain):
        assert (t["operator"], t["calls"]) == (name, n) == (name, 30)
        assert t["talk_ratio"] == pytest.approx(float(ratio), abs=1e-9)
        assert t["interruptions_per_call"] == pytest.approx(float(interrupts), abs=1e-9)
        assert t["avg_first_word"] == pytest.approx(float(first), abs=1e-9)
        assert t["avg_longest_silence"] == pytest.approx(float(silence), abs=1e-9)
        assert t["max_longest_silence"] == pytest.approx(float(worst), abs=1e-9)
    # and by hand: Anna's calls are the even ones
    anna = [i for i in range(60) if i % 2 == 0]
    assert stats[0]["interruptions_per_call"] == pytest.approx(sum((i * 7) % 5 for i in anna) / 30)
