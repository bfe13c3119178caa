"""Recordings are never overwritten and never lost.

Calls of the same second (Linkedids ``1796302442.89``, ``.93``, ``.95``) each keep their own
audio; a database that really fails (SQLite locked by another writer, a PostgreSQL table lock)
keeps the original; a run interrupted at each step of convert -> rename -> commit -> delete
is finished by the next run, without a "missing" call or a second file.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path

import pytest
from pydub import AudioSegment
from pydub.generators import Sine
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from calltracking.jobs import recording_audio, recording_files, recordings
from calltracking.db import make_engine, make_sessionmaker, writer
from calltracking.models import Call, RecordingInfo, utcnow
from support.config import make_config

RATE = 8000
SECOND = "1796302442"
# Linkedid suffix -> (tone Hz, length ms): every call of the same second sounds different
CALLS = {"89": (440, 1000), "93": (660, 2000), "95": (880, 3000)}


def tone(freq: int, ms: int) -> AudioSegment:
    return Sine(freq, sample_rate=RATE).to_audio_segment(ms, volume=-12).set_channels(1).set_sample_width(2)


def tone_hz(seg: AudioSegment) -> float:
    """Frequency of a pure tone from its zero crossings."""
    s = seg.set_channels(1).get_array_of_samples()
    crossings = sum(1 for a, b in zip(s, s[1:]) if (a < 0) != (b < 0))
    return crossings / 2 / (len(seg) / 1000)


def files_of(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.is_file()}


@pytest.fixture
def recdir(tmp_path):
    d = tmp_path / "monitor"
    d.mkdir()
    return d


@pytest.fixture
def e2e_call(add_call, session_factory):
    """A finished recorded call of PBX ``e2e`` whose MixMonitor WAV (``name`` in ``directory``)
    the listener linked (``linked``) or not (found by ``CT_CALL_ID``)."""

    def make(suffix: str, directory: Path, freq=440, ms=1000, linked=True, pair=False) -> int:
        linkedid = f"{SECOND}.{suffix}"
        base = directory / f"e2e-{linkedid}"
        if pair:
            tone(freq, ms).export(f"{base}-in.wav", format="wav")
            tone(freq * 2, ms).export(f"{base}-out.wav", format="wav")
        else:
            tone(freq, ms).export(f"{base}.wav", format="wav")
        return add_call("answered", seconds=60, record=True, pbx_id="e2e", linkedid=linkedid,
                        recording_file=f"{base}{'-in' if pair else ''}.wav" if linked else "")

    return make


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
def test_calls_of_the_same_second_keep_their_own_audio(fmt, recdir, session_factory, e2e_call):
    day = recdir / "2026" / "11" / "30"
    day.mkdir(parents=True)
    cfg = make_config(recordings__dir=recdir, recordings__format=fmt)
    ids = {sfx: e2e_call(sfx, day, freq, ms, linked=sfx != "93") for sfx, (freq, ms) in CALLS.items()}

    assert recordings.process_pending(cfg, session_factory) == {"ok": 3}
    assert files_of(day) == {f"e2e-{SECOND}.{sfx}.{fmt}" for sfx in CALLS}  # one each, no WAV, no .part
    with session_factory() as s:
        for sfx, (freq, ms) in CALLS.items():
            info = s.get(RecordingInfo, ids[sfx])
            assert (info.status, info.format, info.error) == ("ok", fmt, "")
            assert Path(info.file) == day / f"e2e-{SECOND}.{sfx}.{fmt}"
            back = AudioSegment.from_file(info.file)
            assert len(back) == pytest.approx(ms, abs=80)           # its own length …
            assert tone_hz(back) == pytest.approx(freq, rel=0.05)  # … and its own tone
            assert float(info.duration_seconds) == pytest.approx(ms / 1000, abs=0.01)
            assert recording_files.recording_state(s.get(Call, ids[sfx]), str(recdir)) == ("ok", Path(info.file))


def test_split_pairs_of_the_same_second_kept_as_wav(recdir, session_factory, e2e_call):
    cfg = make_config(recordings__dir=recdir, recordings__format="wav")
    ids = {sfx: e2e_call(sfx, recdir, freq, ms, pair=True) for sfx, (freq, ms) in CALLS.items()}
    assert recordings.process_pending(cfg, session_factory) == {"ok": 3}
    assert files_of(recdir) == {f"e2e-{SECOND}.{sfx}.wav" for sfx in CALLS}
    with session_factory() as s:
        for sfx, (freq, ms) in CALLS.items():
            info = s.get(RecordingInfo, ids[sfx])
            back = AudioSegment.from_file(info.file)
            assert back.channels == 2 and len(back) == pytest.approx(ms, abs=5)
            caller, operator = back.split_to_mono()
            assert tone_hz(caller) == pytest.approx(freq, rel=0.05)
            assert tone_hz(operator) == pytest.approx(2 * freq, rel=0.05)


def test_names_keep_the_whole_call_id():
    assert recording_files.split_ext(f"e2e-{SECOND}.89.wav") == (f"e2e-{SECOND}.89", ".wav")
    assert recording_files.split_ext(f"e2e-{SECOND}.89.WAV") == (f"e2e-{SECOND}.89", ".WAV")
    assert recording_files.split_ext(f"e2e-{SECOND}.89") == (f"e2e-{SECOND}.89", "")
    d = Path("/m")
    assert recording_files.converted_name([d / f"e2e-{SECOND}.89.wav"], "mp3") == d / f"e2e-{SECOND}.89.mp3"
    assert recording_files.converted_name([d / f"{SECOND}.95"], "ogg") == d / f"{SECOND}.95.ogg"
    assert recording_files.converted_name([d / f"e2e-{SECOND}.9-in.wav", d / f"e2e-{SECOND}.9-out.wav"],
                                     "mp3") == d / f"e2e-{SECOND}.9.mp3"


# ------------------------------------------------------------- the database fails
@pytest.fixture
def failing_db(db_url):
    """(job's session factory, lock): while ``lock`` is held, the job's write transactions
    fail for real: SQLite: another connection holds the write lock (the job waits 200 ms);
    PostgreSQL: another transaction holds ``LOCK TABLE recording_info IN SHARE MODE`` (reads
    go on, writes wait; the job's ``lock_timeout`` is 200 ms)."""
    postgresql = make_url(db_url).get_backend_name() == "postgresql"
    if postgresql:
        job_engine = create_engine(db_url, connect_args={"options": "-c lock_timeout=200"})
    else:
        job_engine = make_engine(db_url, busy_timeout_ms=200)
    holder = make_engine(db_url)

    class Lock:
        def __enter__(self):
            self.conn = (holder if postgresql else writer(holder)).connect()
            self.tx = self.conn.begin()
            if postgresql:
                self.conn.exec_driver_sql("LOCK TABLE recording_info IN SHARE MODE")
            else:
                self.conn.exec_driver_sql("UPDATE job_status SET runs = runs")  # BEGIN IMMEDIATE took the lock

        def __exit__(self, *exc):
            self.tx.rollback()
            self.conn.close()

    yield make_sessionmaker(job_engine), Lock()
    job_engine.dispose()
    holder.dispose()


def test_a_failing_commit_keeps_the_original_and_the_next_run_finishes(
        recdir, session_factory, e2e_call, failing_db):
    job_factory, lock = failing_db
    cfg = make_config(recordings__dir=recdir, recordings__format="mp3")
    cid = e2e_call("89", recdir, 440, 1500)
    wav = recdir / f"e2e-{SECOND}.89.wav"
    original = wav.read_bytes()

    with lock, pytest.raises(OperationalError, match="locked|lock timeout"):
        recordings.process_pending(cfg, job_factory)
    assert wav.read_bytes() == original  # the original is intact
    with session_factory() as s:
        assert s.get(RecordingInfo, cid) is None  # nothing committed: still pending, not "missing"

    assert recordings.process_pending(cfg, job_factory) == {"ok": 1}
    assert files_of(recdir) == {f"e2e-{SECOND}.89.mp3"}
    with session_factory() as s:
        info = s.get(RecordingInfo, cid)
        assert info.status == "ok" and info.attempts == 1 and info.error == ""
        assert len(AudioSegment.from_file(info.file)) == pytest.approx(1500, abs=80)


def test_a_failing_cleanup_commit_is_finished_by_the_next_run(
        recdir, session_factory, e2e_call, failing_db):
    job_factory, lock = failing_db
    cfg = make_config(recordings__dir=recdir, recordings__format="mp3")
    cid = e2e_call("93", recdir, 660, 1000)
    conv = recordings.store(cfg, recordings.prepare(cfg, job_factory, cid))
    assert recordings.record(job_factory, conv, utcnow()) == "ok"
    with lock, pytest.raises(OperationalError, match="locked|lock timeout"):
        recordings.finish(job_factory, cid, str(recdir))
    with session_factory() as s:  # the committed row plays meanwhile
        assert recording_files.recording_state(s.get(Call, cid), str(recdir))[0] == "ok"
        assert s.get(RecordingInfo, cid).error == recordings.ORIGINALS_PENDING

    assert recordings.process_pending(cfg, job_factory) == {"cleaned": 1}
    assert files_of(recdir) == {f"e2e-{SECOND}.93.mp3"}
    with session_factory() as s:
        assert s.get(RecordingInfo, cid).error == ""


# ------------------------------------------------------------- a crash at each step
def _half_written(conv, cfg, target: Path, complete: bool) -> None:
    """The ``.part`` a conversion leaves when it stops while (or after) writing it."""
    audio, _a = recording_audio.analyze(conv.files)
    scratch = target.with_name("scratch." + cfg.recordings.format)
    recordings.convert(audio, scratch, cfg.recordings.format)
    data = scratch.read_bytes()
    scratch.unlink()
    target.with_name(target.name + ".part").write_bytes(data if complete else data[: len(data) // 3])


STEPS = ["while converting", "after converting", "after the rename", "after the commit",
         "between two deletes"]


@pytest.mark.parametrize("step", STEPS)
def test_a_run_stopped_at_any_step_is_finished_by_the_next(step, recdir, session_factory, e2e_call):
    cfg = make_config(recordings__dir=recdir, recordings__format="mp3")
    cid = e2e_call("95", recdir, 880, 2000, pair=step == "between two deletes")
    target = recdir / f"e2e-{SECOND}.95.mp3"
    conv = recordings.prepare(cfg, session_factory, cid)
    if step in ("while converting", "after converting"):
        _half_written(conv, cfg, target, complete=step == "after converting")
        expected = {"ok": 1}
    else:
        recordings.store(cfg, conv)
        assert target.is_file() and not target.with_name(target.name + ".part").exists()
        expected = {"ok": 1}
        if step != "after the rename":
            write = make_sessionmaker(writer(session_factory.kw["bind"]))
            assert recordings.record(write, conv, utcnow()) == "ok"
            expected = {"cleaned": 1}
        if step == "between two deletes":
            conv.files[0].unlink()
    with session_factory() as s:  # meanwhile the call plays (its original, or the committed file)
        assert recording_files.recording_state(s.get(Call, cid), str(recdir))[0] == "ok"

    assert recordings.process_pending(cfg, session_factory) == expected
    assert files_of(recdir) == {target.name}  # one converted file; originals and .part gone
    with session_factory() as s:
        info = s.get(RecordingInfo, cid)
        assert (info.status, info.file, info.error, info.attempts) == ("ok", str(target), "", 1)
        back = AudioSegment.from_file(info.file)
        assert len(back) == pytest.approx(2000, abs=80) and tone_hz(back.split_to_mono()[0]) == \
            pytest.approx(880, rel=0.05)
    assert recordings.process_pending(cfg, session_factory) == {}


def test_a_converted_file_lost_before_the_cleanup_keeps_the_original(recdir, session_factory, e2e_call):
    cfg = make_config(recordings__dir=recdir, recordings__format="ogg")
    cid = e2e_call("89", recdir, 440, 1000)
    conv = recordings.store(cfg, recordings.prepare(cfg, session_factory, cid))
    write = make_sessionmaker(writer(session_factory.kw["bind"]))
    recordings.record(write, conv, utcnow() - dt.timedelta(hours=1))
    conv.out.unlink()  # gone before the originals were deleted

    assert recordings.process_pending(cfg, session_factory) == {"ok": 1}  # converted again at once
    assert files_of(recdir) == {f"e2e-{SECOND}.89.ogg"}
    with session_factory() as s:
        info = s.get(RecordingInfo, cid)
        assert info.status == "ok" and info.attempts == 2 and info.error == ""


def test_a_call_being_converted_by_another_process_is_left_to_it(recdir, session_factory, e2e_call):
    cfg = make_config(recordings__dir=recdir, recordings__format="mp3")
    cid = e2e_call("93", recdir, 660, 1000)
    part = recdir / f"e2e-{SECOND}.93.mp3.part"
    with open(part, "wb") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        assert recordings.process_pending(cfg, session_factory) == {"busy": 1}
        assert files_of(recdir) == {f"e2e-{SECOND}.93.wav", part.name}
    with session_factory() as s:
        assert s.get(RecordingInfo, cid) is None
    assert recordings.process_pending(cfg, session_factory) == {"ok": 1}
    assert files_of(recdir) == {f"e2e-{SECOND}.93.mp3"}


def test_a_result_older_than_another_runs_commit_is_dropped(recdir, session_factory, e2e_call):
    cfg = make_config(recordings__dir=recdir, recordings__format="mp3")
    cid = e2e_call("95", recdir, 880, 1000)
    late = recordings.store(cfg, recordings.prepare(cfg, session_factory, cid))
    assert recordings.process_pending(cfg, session_factory) == {"ok": 1}  # the other run
    late.status, late.error = "error", "cannot read (its original was deleted under it)"
    assert recordings.record(session_factory, late, utcnow()) == "busy"
    with session_factory() as s:
        assert s.get(RecordingInfo, cid).status == "ok"


def test_rows_under_the_old_shared_name_stay_readable(recdir, session_factory, e2e_call, add_call):
    """Before names kept the whole call id, calls of one second shared ``e2e-<second>.mp3``."""
    cfg = make_config(recordings__dir=recdir, recordings__format="mp3")
    shared = recdir / f"e2e-{SECOND}.mp3"
    tone(440, 1000).export(str(shared), format="mp3")
    old = []
    for sfx in ("89", "93"):
        cid = add_call("answered", seconds=60, record=True, pbx_id="e2e", linkedid=f"{SECOND}.{sfx}",
                       recording_file=str(recdir / f"e2e-{SECOND}.{sfx}.wav"))
        with session_factory() as s:
            s.add(RecordingInfo(call_id=cid, status="ok", file=str(shared), format="mp3", attempts=1, error="",
                                source_files=json.dumps([str(recdir / f"e2e-{SECOND}.{sfx}.wav")]),
                                processed_at=utcnow()))
            s.commit()
        old.append(cid)
    new = e2e_call("95", recdir, 880, 2000)
    before = shared.read_bytes()

    assert recordings.process_pending(cfg, session_factory) == {"ok": 1}
    assert shared.read_bytes() == before
    assert files_of(recdir) == {shared.name, f"e2e-{SECOND}.95.mp3"}
    with session_factory() as s:
        for cid in old:
            assert recording_files.recording_state(s.get(Call, cid), str(recdir)) == ("ok", shared.resolve())
        assert s.get(RecordingInfo, new).file == str(recdir / f"e2e-{SECOND}.95.mp3")


def test_permissions_of_the_converted_file_follow_the_umask(recdir, session_factory, e2e_call):
    cfg = make_config(recordings__dir=recdir, recordings__format="mp3")
    e2e_call("89", recdir)
    old = os.umask(0o002)
    try:
        assert recordings.process_pending(cfg, session_factory) == {"ok": 1}
    finally:
        os.umask(old)
    assert (recdir / f"e2e-{SECOND}.89.mp3").stat().st_mode & 0o777 == 0o664
