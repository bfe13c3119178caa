"""The operator's whisper: its text, its audio (real espeak-ng and ffmpeg), its files, the CLI
and the scheduler job, on the database under test (SQLite or PostgreSQL)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.jobs import scheduler
from calltracking.models import Source, WhisperProject, WhisperSource
from calltracking.settings_rules import ServiceError
from calltracking.whisper import audio, files, rules, settings
from support.config import make_config


# ------------------------------------------------------------------------------- the text
@pytest.mark.parametrize("template, values, text", [
    ("{source}, {campaign}", dict(source="Google Ads", campaign="brand"), "Google Ads, brand"),
    ("{source}, {campaign}", dict(source="Google Ads", campaign=""), "Google Ads"),
    ("{source}, {campaign}", dict(source="", campaign="brand"), "brand"),
    ("{source}, {campaign}", dict(source="", campaign=""), ""),
    ("Call from {source}, campaign {campaign}.", dict(source="Yandex", campaign=""), "Call from Yandex."),
    ("{project}: {label} {campaign}", dict(project="Acme", label="GA", campaign="x"), "Acme: GA x"),
    ("Звонок: {source}", dict(source="Яндекс  Директ"), "Звонок: Яндекс Директ"),
    ("Sales line", dict(source="Google Ads"), "Sales line"),
])
def test_render(template, values, text):
    assert rules.render(template, **values) == text


@pytest.mark.parametrize("bad", ["{source", "{caller}", "{source!r}", "{source:>9}", "{0}", "x" * 201])
def test_check_template_refuses(bad):
    with pytest.raises(ValueError):
        rules.check_template(bad)


def test_check_template_accepts_and_strips():
    assert rules.check_template("  {source}, {campaign} ") == "{source}, {campaign}"
    assert rules.names_campaign("{source}, {campaign}") and not rules.names_campaign("{source}")


def test_lookup_prefers_the_campaign_file(tmp_path):
    assert rules.lookup(str(tmp_path), 3, 7) == ""
    (tmp_path / "s3.wav").write_bytes(b"x")
    assert rules.lookup(str(tmp_path), 3, 7) == str(tmp_path / "s3")
    (tmp_path / "s3-c7.wav").write_bytes(b"x")
    assert rules.lookup(str(tmp_path), 3, 7) == str(tmp_path / "s3-c7")
    assert rules.lookup(str(tmp_path), 3, None) == str(tmp_path / "s3")
    assert rules.lookup(str(tmp_path), None, 7) == ""
    assert rules.lookup(str(tmp_path / "missing"), 3, 7) == ""
    assert rules.lookup("", 3, 7) == ""


def test_lookup_lists_a_settled_directory_once_and_sees_each_change(tmp_path, monkeypatch):
    (tmp_path / "s3.wav").write_bytes(b"x")
    (tmp_path / "s3-c7.wav").mkdir()                 # not a file: never answered
    old = time.time() - 60
    os.utime(tmp_path, (old, old))                   # changed a minute ago: settled
    listed = []
    real = os.scandir
    monkeypatch.setattr(rules.os, "scandir", lambda d: listed.append(d) or real(d))
    for _ in range(3):
        assert rules.lookup(str(tmp_path), 3, 7) == str(tmp_path / "s3")
    assert len(listed) == 1
    (tmp_path / "s3.wav").unlink()                   # a change: listed again (not settled yet)
    assert rules.lookup(str(tmp_path), 3, 7) == ""
    (tmp_path / "s3.wav").write_bytes(b"x")
    assert rules.lookup(str(tmp_path), 3, None) == str(tmp_path / "s3")
    assert rules.lookup(str(tmp_path), 3, None) == str(tmp_path / "s3")
    assert len(listed) == 4                          # changed within the second: each time


# ------------------------------------------------------------------------------- the audio
def _wav(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


@pytest.mark.parametrize("text, voice", [("Google Ads, brand", "en"), ("Яндекс Директ, бренд", "ru")])
def test_espeak_makes_an_8khz_mono_file(tmp_path, text, voice):
    seg = audio.synthesize(text, voice)
    audio.write(seg, tmp_path / "out.wav")
    rate, channels, width, seconds = _wav(tmp_path / "out.wav")
    assert (rate, channels, width) == (8000, 1, 2)
    assert 0.8 < seconds < 5.0, seconds
    assert seg.dBFS > -40                   # speech, not silence
    assert stat.S_IMODE((tmp_path / "out.wav").stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]       # no temporary file left


def test_espeak_text_is_never_an_option(tmp_path):
    """A text that looks like espeak-ng options is spoken, not obeyed (it goes in on stdin)."""
    seg = audio.synthesize("-v xx --help -w /tmp/evil.wav", "en")
    assert seg.duration_seconds > 1.0 and not Path("/tmp/evil.wav").exists()
    with pytest.raises(ValueError):
        audio.synthesize("hello", "xx")


def _tone(tmp_path: Path, fmt: str, seconds: float) -> bytes:
    out = tmp_path / f"tone.{fmt}"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=440:sample_rate=44100:duration={seconds}", "-ac", "2", str(out)],
                   check=True)
    return out.read_bytes()


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "wav"])
def test_upload_is_converted(tmp_path, fmt):
    name = files.save_upload(tmp_path, 5, _tone(tmp_path, fmt, 2.0))
    assert name == "upload-s5.wav"
    rate, channels, width, seconds = _wav(tmp_path / name)
    assert (rate, channels, width) == (8000, 1, 2) and 1.9 < seconds < 2.2


@pytest.mark.parametrize("data, message", [(b"", "empty"), (b"<html>not audio</html>", "not an audio file")])
def test_upload_refuses_what_is_not_audio(tmp_path, data, message):
    with pytest.raises(audio.WhisperAudioError, match=message):
        files.save_upload(tmp_path, 5, data)
    assert not (tmp_path / "upload-s5.wav").exists()


def test_upload_refuses_a_long_recording(tmp_path):
    with pytest.raises(audio.WhisperAudioError, match="longer than 15 s"):
        files.save_upload(tmp_path, 5, _tone(tmp_path, "mp3", 20.0))


# ------------------------------------------------------------------------------- the files
@pytest.fixture
def project(session_factory):
    with session_scope(session_factory) as s:
        p = svc.add_project(s, "acme", "ACME")
        ads = svc.add_source(s, p, "Google Ads", channel="ads", short_label="GA")
        brand = svc.add_campaign(s, ads, "brand")
        off = svc.add_source(s, p, "Billboard", channel="offline")
        rec = svc.add_source(s, p, "Radio", channel="offline")
        s.flush()
        settings.set_project(s, p, enabled=True, voice="en")
        settings.set_source(s, off, enabled=False)
        return dict(project=p.id, ads=ads.id, brand=brand.id, off=off.id, rec=rec.id)


def _sync(session_factory, directory):
    with session_scope(session_factory) as s:
        return files.sync(s, directory)


def test_sync_makes_changes_and_removes_files(session_factory, project, tmp_path):
    d = tmp_path / "whisper"
    ads, brand, rec = project["ads"], project["brand"], project["rec"]
    with session_scope(session_factory) as s:
        settings.set_source(s, s.get(Source, rec), upload=files.save_upload(d, rec, _tone(tmp_path, "mp3", 1.0)))
    r = _sync(session_factory, d)
    assert sorted(r.made) == sorted([f"s{ads}", f"s{ads}-c{brand}", f"s{rec}"]) and not r.errors
    assert not (d / f"s{project['off']}.wav").exists()                  # turned off for the source
    assert 0.9 < _wav(d / f"s{rec}.wav")[3] < 1.1                       # the upload, not speech
    assert _wav(d / f"s{ads}-c{brand}.wav")[3] > _wav(d / f"s{ads}.wav")[3]   # "Google Ads, brand"
    assert stat.S_IMODE(d.stat().st_mode) == 0o750
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in d.iterdir())

    again = _sync(session_factory, d)
    assert again.made == [] and len(again.kept) == 3

    with session_scope(session_factory) as s:                         # a source's text changes
        settings.set_source(s, s.get(Source, ads), text="{label}")
    r = _sync(session_factory, d)
    assert r.made == [f"s{ads}"] and r.removed == [f"s{ads}-c{brand}"]   # no campaign in the text

    with session_scope(session_factory) as s:                         # the project's whisper off
        settings.set_project(s, s.get(Source, ads).project, enabled=False)
    r = _sync(session_factory, d)
    assert sorted(r.removed) == sorted([f"s{ads}", f"s{rec}"])
    assert sorted(p.name for p in d.iterdir()) == [f"upload-s{rec}.wav"]   # the upload is kept


def test_settings_refuse_bad_values(session_factory, project):
    with session_scope(session_factory) as s:
        p = s.get(Source, project["ads"]).project
        with pytest.raises(ServiceError, match="unknown field"):
            settings.set_project(s, p, template="{caller_number}")
        with pytest.raises(ServiceError, match="voice"):
            settings.set_project(s, p, voice="de")
        with pytest.raises(ServiceError, match="whisper text"):
            settings.set_source(s, s.get(Source, project["ads"]), text="{")


def test_scheduler_job_makes_the_files(session_factory, project, tmp_path):
    cfg = make_config(asterisk__whisper_dir=tmp_path / "w")
    ok, result = scheduler.JobRunner(cfg, session_factory).run_job("whisper", force=True)
    assert ok and result.startswith("made 3,"), result     # Google Ads, its campaign, Radio
    assert (tmp_path / "w" / f"s{project['ads']}.wav").exists()


def test_scheduler_job_without_whisper_makes_no_directory(session_factory, tmp_path):
    cfg = make_config(asterisk__whisper_dir=tmp_path / "w")
    ok, result = scheduler.JobRunner(cfg, session_factory).run_job("whisper", force=True)
    assert ok and result.startswith("made 0,") and not (tmp_path / "w").exists()


def test_cli(run_cli, session_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("CALLTRACKING_ASTERISK_WHISPER_DIR", str(tmp_path / "w"))
    run_cli("projects", "add", "acme")
    run_cli("sources", "add", "acme", "Google Ads")
    assert "made 0," in run_cli("whisper", "project", "acme", "--off").output
    res = run_cli("whisper", "project", "acme", "--on", "--template", "Звонок: {source}", "--voice", "ru")
    assert "made 1," in res.output
    bad = run_cli("whisper", "project", "acme", "--template", "{nope}", ok=False)
    assert bad.exit_code == 1 and "unknown field" in bad.output
    tone = tmp_path / "tone.ogg"
    tone.write_bytes(_tone(tmp_path, "ogg", 1.0))
    assert "made 1," in run_cli("whisper", "source", "acme", "Google Ads", "--upload", str(tone)).output
    with session_scope(session_factory) as s:
        sid = s.scalars(select(Source.id)).one()
    rows = json.loads(run_cli("whisper", "list", "--format", "json").output)
    assert rows[0]["upload"] == f"upload-s{sid}.wav" and rows[0]["project_on"] is True
    assert rows[0]["file"] == str(tmp_path / "w" / f"s{sid}")
    assert 0.9 < _wav(tmp_path / "w" / f"s{sid}.wav")[3] < 1.1         # the recording, not speech
    assert "made 1," in run_cli("whisper", "source", "acme", "Google Ads", "--no-upload").output
    rows = json.loads(run_cli("whisper", "list", "--format", "json").output)
    assert rows[0]["text"] == "Звонок: Google Ads" and rows[0]["upload"] == ""
    with session_scope(session_factory) as s:
        assert s.scalars(select(WhisperProject.voice)).one() == "ru"
        assert s.scalars(select(WhisperSource.upload)).one() == ""


def test_doctor_says_when_files_are_missing(run_cli, session_factory, project, tmp_path, monkeypatch):
    monkeypatch.setenv("CALLTRACKING_ASTERISK_WHISPER_DIR", str(tmp_path / "w"))
    out = run_cli("doctor", ok=False).output
    assert "WARN whisper: 3 of 3 whisper file(s) missing" in out and "calltracking whisper sync" in out
    run_cli("whisper", "sync")
    assert f"OK   whisper: 3 file(s) in {tmp_path / 'w'}" in run_cli("doctor", ok=False).output
    with session_scope(session_factory) as s:
        settings.set_project(s, s.get(Source, project["ads"]).project, enabled=False)
    assert "OK   whisper: off" in run_cli("doctor", ok=False).output
