"""Recordings: a stereo WAV made here is converted, measured and purged by retention."""
from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path

import pytest
from pydub import AudioSegment

from calltracking.calls import export
from calltracking.jobs import recording_audio, recording_files, recording_retention, recordings
from calltracking.models import Call, Project, RecordingInfo, utcnow
from support.audio import speech_track
from support.config import make_config

RATE = 8000
# (start_ms, end_ms) of speech on each side of a 10 s call
CALLER = [(0, 2000), (8000, 9000)]          # 3.0 s
OPERATOR = [(2500, 6000), (9500, 10000)]    # 4.0 s
# neither speaks: 2.0-2.5, 6.0-8.0 (the longest: 2.0 s), 9.0-9.5


track = functools.partial(speech_track, total_ms=10000, rate=RATE)


def stereo_wav(path: Path) -> Path:
    stereo = AudioSegment.from_mono_audiosegments(track(CALLER), track(OPERATOR, freq=660))
    stereo.export(str(path), format="wav")
    return path


def test_analysis_of_generated_stereo(tmp_path):
    wav = stereo_wav(tmp_path / "x.wav")
    _audio, a = recording_audio.analyze([wav])
    assert a.channels == 2
    assert a.duration == pytest.approx(10.0, abs=0.02)
    assert a.caller_talk == pytest.approx(3.0, abs=0.05)
    assert a.operator_talk == pytest.approx(4.0, abs=0.05)
    assert a.talk_ratio == pytest.approx(4 / 7, abs=0.01)
    assert a.longest_silence == pytest.approx(2.0, abs=0.05)


def test_two_files_and_mono(tmp_path):
    track(CALLER).export(str(tmp_path / "c-in.wav"), format="wav")
    track(OPERATOR, freq=660).export(str(tmp_path / "c-out.wav"), format="wav")
    _audio, a = recording_audio.analyze([tmp_path / "c-in.wav", tmp_path / "c-out.wav"])
    assert (a.caller_talk, a.operator_talk) == (pytest.approx(3.0, abs=0.05), pytest.approx(4.0, abs=0.05))
    assert a.longest_silence == pytest.approx(2.0, abs=0.05)
    mono = track(CALLER).overlay(track(OPERATOR, freq=660))
    mono.export(str(tmp_path / "m.wav"), format="wav")
    _audio, m = recording_audio.analyze([tmp_path / "m.wav"])
    assert m.channels == 1 and m.caller_talk is None and m.talk_ratio is None
    assert m.longest_silence == pytest.approx(2.0, abs=0.05)


def test_unreadable_file_is_an_error_not_a_crash(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF garbage, not audio")
    with pytest.raises(recording_audio.RecordingError, match="cannot read"):
        recording_audio.analyze([bad])


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
def test_job_converts_measures_and_retention_purges(fmt, tmp_path, session_factory, add_call, project):
    recdir = tmp_path / "monitor"
    (recdir / "2026" / "11" / "30").mkdir(parents=True)
    cfg = make_config(recordings__dir=recdir, recordings__format=fmt, recordings__keep_days=30)
    old = utcnow() - dt.timedelta(days=40)
    # the listener linked this one; the other is found by CT_CALL_ID (<pbx_id>-<linkedid>) in a date folder
    linked = add_call("answered", started=old, seconds=60, record=True)
    with session_factory() as s:
        c = s.get(Call, linked)
        c.recording_file = str(stereo_wav(recdir / f"{c.pbx_id}-{c.linkedid}.wav"))
        s.commit()
    found = add_call("answered", seconds=60, record=True)
    with session_factory() as s:
        c = s.get(Call, found)
        stereo_wav(recdir / "2026" / "11" / "30" / f"{c.pbx_id}-{c.linkedid}.wav")
    missing = add_call("answered", seconds=60, record=True)
    not_recorded = add_call("missed", seconds=20)

    def exported(cid):      # `calls list`, the API and the journal CSV name this file
        with session_factory() as s:
            lid = s.get(Call, cid).linkedid
            return {d["linkedid"]: d["recording"] for d in
                    (export.call_to_dict(c, with_legs=False) for c in export.query_calls(s))}[lid]
    wav = exported(linked)
    assert wav.endswith(".wav") and Path(wav).is_file()             # Asterisk's, before conversion
    assert exported(found) is None

    stats = recordings.process_pending(cfg, session_factory)
    assert stats == {"ok": 2, "missing": 1}
    for cid in (linked, found):                                      # the converted file, not the
        assert exported(cid).endswith("." + fmt) and Path(exported(cid)).is_file()     # deleted WAV
    assert not Path(wav).exists()
    with session_factory() as s:
        for cid in (linked, found):
            info = s.get(RecordingInfo, cid)
            assert info.status == "ok" and info.format == fmt
            out = Path(info.file)
            assert out.suffix == "." + fmt and out.is_file()
            assert not any(Path(f).exists() for f in json.loads(info.source_files))  # WAV removed
            back = AudioSegment.from_file(str(out))
            assert back.channels == 2 and len(back) == pytest.approx(10000, abs=100)
            assert float(info.duration_seconds) == pytest.approx(10.0, abs=0.02)
            assert float(s.get(Call, cid).recording_seconds) == pytest.approx(10.0, abs=0.02)
            assert float(info.caller_talk_seconds) == pytest.approx(3.0, abs=0.05)
            assert float(info.operator_talk_seconds) == pytest.approx(4.0, abs=0.05)
            assert float(info.talk_ratio) == pytest.approx(0.571, abs=0.01)
            assert float(info.longest_silence_seconds) == pytest.approx(2.0, abs=0.05)
            call = s.get(Call, cid)
            assert recording_files.recording_path(call, str(recdir)) == out.resolve()
        assert s.get(RecordingInfo, missing).status == "missing"
        assert s.get(RecordingInfo, not_recorded) is None
        assert recording_files.recording_state(s.get(Call, missing), str(recdir)) == ("missing", None)
        assert recording_files.recording_state(s.get(Call, not_recorded), str(recdir)) == ("none", None)
    assert recordings.process_pending(cfg, session_factory) == {}  # nothing twice

    # per-project override: keep forever → nothing purged; back to the default (30 days) → old one purged
    with session_factory() as s:
        recording_retention.set_keep_days(s, s.get(Project, project["id"]), 0)
        s.commit()
    assert recording_retention.apply_retention(cfg, session_factory) == 0
    with session_factory() as s:
        recording_retention.set_keep_days(s, s.get(Project, project["id"]), None)
        s.commit()
    assert recording_retention.apply_retention(cfg, session_factory) == 1
    with session_factory() as s:
        info = s.get(RecordingInfo, linked)
        assert info.status == "purged" and info.purged_at is not None and info.file == ""
        call = s.get(Call, linked)
        assert call is not None and call.status == "answered"  # the call stays
        assert recording_files.recording_state(call, str(recdir)) == ("purged", None)
        assert s.get(RecordingInfo, found).status == "ok"  # recent: kept
        assert Path(s.get(RecordingInfo, found).file).is_file()
    assert not list(recdir.glob("*.*"))  # the old files are gone
    assert recording_retention.apply_retention(cfg, session_factory) == 0


def test_recording_path_refuses_files_outside_the_directory(tmp_path, session_factory, add_call):
    recdir = tmp_path / "monitor"
    recdir.mkdir()
    outside = stereo_wav(tmp_path / "secret.wav")
    cid = add_call("answered", recording_file=str(outside))
    with session_factory() as s:
        call = s.get(Call, cid)
        assert recording_files.recording_path(call, str(recdir)) is None
        call.recording_file = "../secret.wav"
        assert recording_files.recording_path(call, str(recdir)) is None
        call.recording_file = "gone.wav"
        assert recording_files.recording_state(call, str(recdir)) == ("missing", None)


def test_cli_analyze(tmp_path, run_cli):
    wav = stereo_wav(tmp_path / "a.wav")
    out = json.loads(run_cli("recordings", "analyze", str(wav)).output)
    assert out["talk_ratio"] == pytest.approx(0.571, abs=0.01)


def test_operator_aggregates(tmp_path, session_factory, add_call, project):
    recdir = tmp_path / "monitor"
    recdir.mkdir()
    cfg = make_config(recordings__dir=recdir, recordings__format="wav")
    ids = [add_call("answered", seconds=60, record=True) for _ in range(2)]
    with session_factory() as s:
        for cid in ids:
            c = s.get(Call, cid)
            c.recording_file = stereo_wav(recdir / f"{c.linkedid}.wav").name  # relative to dir
        s.commit()
    assert recordings.process_pending(cfg, session_factory) == {"ok": 2}
    with session_factory() as s:
        info = s.get(RecordingInfo, ids[0])
        assert info.format == "wav" and Path(info.file).is_file()  # wav: kept as it is
        stats = recording_audio.operator_talk_stats(s, project["id"], utcnow() - dt.timedelta(days=1), utcnow())
    assert len(stats) == 1 and stats[0]["operator"] == "Anna" and stats[0]["calls"] == 2
    assert stats[0]["talk_ratio"] == pytest.approx(0.571, abs=0.01)
    assert stats[0]["max_longest_silence"] == pytest.approx(2.0, abs=0.05)
    assert stats[0]["operator_talk_seconds"] == pytest.approx(8.0, abs=0.1)
