"""The demo's transcripts: a handful of recorded calls with generated English speech,
transcribed by pocketsphinx, with the keyword lists' tags, mentions and the greeting; and the
``transcripts`` commands."""
from __future__ import annotations

import time

from sqlalchemy import select

from calltracking.demo import analyse_recordings, seed
from calltracking.models import Call, KeywordList, KeywordMention, RecordingInfo, Transcript
from calltracking.transcripts.demo import seed_transcripts, speak_recordings
from support.config import make_config


def test_demo_transcripts(db_url, session_factory, tmp_path, run_cli, monkeypatch):
    rec = tmp_path / "rec"
    cfg = make_config(db_url, recordings__dir=str(rec), recordings__format="wav")
    with session_factory() as s:
        seed(s, days=3, per_day=60, recordings_dir=str(rec))
        s.commit()
    spoken = speak_recordings(session_factory)
    assert len(spoken) == 4
    assert analyse_recordings(cfg, session_factory) >= 4
    t0 = time.monotonic()
    said = seed_transcripts(cfg, session_factory, spoken)
    took = time.monotonic() - t0
    assert said["error"] == "" and said["calls"] == 4
    print(f"demo transcripts: 4 calls in {took:.1f} s")
    with session_factory() as s:
        rows = s.scalars(select(Transcript)).all()
        assert [r.status for r in rows] == ["ok"] * 4
        assert {kl.name for kl in s.scalars(select(KeywordList))} == {"Pricing", "Delivery", "Orders", "Greeting"}
        lists = {m.list_id for m in s.scalars(select(KeywordMention))}
        assert len(lists) >= 3
        tagged = {t.name for c in s.scalars(select(Call).where(Call.id.in_([r.call_id for r in rows])))
                  for t in c.tags}
        assert {"price question", "deal"} <= tagged
        assert any(r.greeting_said for r in rows)
        infos = s.scalars(select(RecordingInfo).where(RecordingInfo.call_id.in_(spoken))).all()
        assert all(float(i.duration_seconds) > 8 and i.caller_talk_seconds > 1 for i in infos)  # speech, measured
    out = run_cli("transcripts", "status").output
    assert "ok: 4" in out and "backend: none" in out
    assert "4 call(s) done" in run_cli("transcripts", "reapply", "demo").output
    one = rows[0].call_id
    assert "backend is none" in run_cli("transcripts", "call", str(one), ok=False).output
    monkeypatch.setenv("CALLTRACKING_TRANSCRIPTS_BACKEND", "pocketsphinx")
    monkeypatch.setenv("CALLTRACKING_RECORDINGS_DIR", str(rec))
    out = run_cli("transcripts", "call", str(one)).output
    assert f"call {one}: transcribed by pocketsphinx, " in out and " 0 phrase(s)" not in out
    assert "has no converted recording" in run_cli("transcripts", "call", "999999", ok=False).output


def test_doctor_names_what_the_backend_misses(run_cli, monkeypatch, tmp_path):
    missing = tmp_path / "models" / "small"
    monkeypatch.setenv("CALLTRACKING_TRANSCRIPTS_BACKEND", "faster-whisper")
    monkeypatch.setenv("CALLTRACKING_TRANSCRIPTS_MODEL_DIR", str(missing))
    out = run_cli("doctor", ok=False).output
    assert f"FAIL transcripts: backend faster-whisper: the faster-whisper model directory {missing} does not exist" in out
    monkeypatch.setenv("CALLTRACKING_TRANSCRIPTS_BACKEND", "pocketsphinx")
    out = run_cli("doctor", ok=False).output
    assert "transcripts: backend pocketsphinx is ready" in out
    assert "transcripts backlog: 0 recorded call(s) waiting, 0 transcribed, 0 failed for good" in out
    assert "Traceback" not in out
