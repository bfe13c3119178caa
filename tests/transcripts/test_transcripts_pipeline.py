"""espeak-ng speech -> two-channel WAV -> pocketsphinx in the job's worker pool -> phrases on the
right side -> keyword tag, mention and greeting -> found by the journal's search (SQLite and
PostgreSQL); failures retried a bounded number of times; the backlog."""
from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal

import pytest
from sqlalchemy import select

from calltracking.calls.journal import JournalFilter, page
from calltracking.jobs import transcripts as job
from calltracking.models import (Call, KeywordList, KeywordMention, Project, RecordingInfo, Transcript,
                                 TranscriptPhrase, utcnow)
from calltracking.transcripts import keywords, store
from calltracking.transcripts.speech import write_dialogue
from support.config import make_config

#: lines pocketsphinx's US English model recognises from espeak-ng's voice at 16 kHz
DIALOGUE = [("operator", 0.5, "good morning this is the shop"),
            ("caller", 3.5, "the price is too high"),
            ("operator", 6.5, "the order is ready"),
            ("caller", 9.5, "i would like to order")]


@pytest.fixture
def recorded_call(session_factory, tmp_path):
    rec_dir = tmp_path / "monitor"
    rec_dir.mkdir()

    def make(lines=DIALOGUE, name="call"):
        path = write_dialogue(rec_dir / f"{name}.wav", lines)
        now = utcnow()
        with session_factory() as s:
            p = s.scalar(select(Project).where(Project.key == "acme"))
            if p is None:
                p = Project(key="acme", name="Acme", timezone="Europe/Moscow")
                s.add(p)
                s.flush()
            c = Call(pbx_id="pbx1", linkedid=f"1795391970.{name}", project_id=p.id, status="answered",
                     started_at=now - dt.timedelta(minutes=2), ended_at=now - dt.timedelta(minutes=1),
                     answered_at=now - dt.timedelta(seconds=100), recording_file=str(path))
            s.add(c)
            s.flush()
            s.add(RecordingInfo(call_id=c.id, status="ok", file=str(path), format="wav", source_files="[]",
                                error="", attempts=1, processed_at=now, channels=2,
                                duration_seconds=Decimal("12")))
            s.commit()
            return c.id, p.id

    make.dir = rec_dir
    return make


def _lists(session_factory, project_id):
    with session_factory() as s:
        s.add(KeywordList(project_id=project_id, name="Pricing", words="pric*\nдостав*", tag="price question"))
        s.add(KeywordList(project_id=project_id, name="Greeting", words="morning\ngood afternoon",
                          tag="", greeting=True))
        s.commit()


def test_speech_to_tags_and_search(session_factory, recorded_call, db_url):
    call_id, project_id = recorded_call()
    _lists(session_factory, project_id)
    cfg = make_config(db_url, transcripts__backend="pocketsphinx", recordings__dir=str(recorded_call.dir))
    with session_factory() as s:
        assert job.backlog(s, cfg.transcripts) == 1
    try:
        assert job.process_pending(cfg, session_factory) == {"ok": 1}
    finally:
        job.shutdown_pool()
    with session_factory() as s:
        t = s.get(Transcript, call_id)
        assert (t.status, t.backend, t.attempts, t.error) == ("ok", "pocketsphinx", 1, "")
        phrases = store.phrases_of(s, call_id)
        said = [(p.side, p.text) for p in phrases]
        assert ("caller", "the price is too high") in said
        assert any(side == "operator" and "order" in text for side, text in said)
        assert not any(side == "caller" and "good morning" in text for side, text in said)
        price = next(p for p in phrases if p.text == "the price is too high")
        assert 3.3 <= float(price.start_seconds) <= 3.8 and float(price.end_seconds) > 4.5
        mentions = s.scalars(select(KeywordMention).where(KeywordMention.call_id == call_id)).all()
        assert {(m.word, m.side) for m in mentions} >= {("pric*", "caller"), ("morning", "operator")}
        assert t.greeting_said is True
        call = s.get(Call, call_id)
        assert "price question" in {tag.name for tag in call.tags}
        assert job.backlog(s, cfg.transcripts) == 0
        found = page(s, JournalFilter(text="PRICE too"))
        assert [c.id for c in found.calls] == [call_id]
        assert page(s, JournalFilter(text="pri*")).calls[0].id == call_id
        assert page(s, JournalFilter(text="helicopter")).calls == []
        assert page(s, JournalFilter(text='"); DROP TABLE calls; --')).calls == []


def test_russian_search_and_stems(session_factory, recorded_call):
    call_id, project_id = recorded_call([("caller", 0.2, "hello")], name="ru")
    _lists(session_factory, project_id)
    now = utcnow()
    with session_factory() as s:
        store.save(s, call_id, "command", [("caller", 0.5, 2.0, "Когда будет ДОСТАВКА заказа?"),
                                           ("operator", 2.5, 4.0, "Good afternoon, доставим завтра")], now, now)
        keywords.apply(s, call_id, greeting_seconds=10)
        s.commit()
    with session_factory() as s:
        assert [c.id for c in page(s, JournalFilter(text="доставка")).calls] == [call_id]
        assert [c.id for c in page(s, JournalFilter(text="достав*")).calls] == [call_id]
        assert page(s, JournalFilter(text="доставкой")).calls == []
        words = {(m.word, m.side) for m in s.scalars(select(KeywordMention))}
        assert words == {("достав*", "caller"), ("достав*", "operator"), ("good afternoon", "operator")}
        assert s.get(Transcript, call_id).greeting_said is True
        # edited again with the same text: the search index follows the update
        store.save(s, call_id, "command", [("mixed", 0.0, 1.0, "nothing about it")], now, now)
        keywords.apply(s, call_id, greeting_seconds=10)
        s.commit()
        assert page(s, JournalFilter(text="доставка")).calls == []
        assert s.get(Transcript, call_id).greeting_said is None   # mono: no operator side
        assert s.scalars(select(KeywordMention)).all() == []


def test_failures_are_recorded_and_retried_a_bounded_number_of_times(session_factory, recorded_call, db_url,
                                                                     tmp_path):
    call_id, _ = recorded_call([("caller", 0.2, "hello")], name="fail")
    script = tmp_path / "broken-engine"
    script.write_text(textwrap.dedent("""\
        #!/bin/sh
        echo "model file is corrupt" >&2
        exit 3
        """))
    script.chmod(0o755)
    cfg = make_config(db_url, transcripts__backend="command", transcripts__command=str(script),
                      transcripts__max_attempts="2", recordings__dir=str(recorded_call.dir))
    try:
        assert job.process_pending(cfg, session_factory) == {"error": 1}
        with session_factory() as s:
            t = s.get(Transcript, call_id)
            assert (t.status, t.attempts) == ("error", 1)
            assert "exited with status 3" in t.error and "model file is corrupt" in t.error
            assert job.backlog(s, cfg.transcripts) == 1
        assert job.process_pending(cfg, session_factory) == {"error": 1}
        assert job.process_pending(cfg, session_factory) == {}
    finally:
        job.shutdown_pool()
    with session_factory() as s:
        t = s.get(Transcript, call_id)
        assert (t.status, t.attempts) == ("failed", 2)
        assert job.backlog(s, cfg.transcripts) == 0
        assert s.scalars(select(TranscriptPhrase)).all() == []


def test_workers_run_at_the_lowest_cpu_priority(db_url):
    import os

    cfg = make_config(db_url, transcripts__backend="pocketsphinx", transcripts__workers="2").transcripts
    try:
        ex = job.pool(cfg)
        assert ex.submit(os.nice, 0).result(timeout=120) == 19
        assert ex.submit(os.sched_getscheduler, 0).result(timeout=120) == os.SCHED_IDLE
        assert ex.submit(os.getpid).result(timeout=120) != os.getpid()
    finally:
        job.shutdown_pool()
    assert os.nice(0) < 19 and os.sched_getscheduler(0) != os.SCHED_IDLE   # the service itself is untouched


def test_sides_of_a_pair_and_of_a_mono_mix(tmp_path):
    import wave

    from calltracking.transcripts.audio import side_files
    from calltracking.transcripts.speech import say

    caller, operator = tmp_path / "rec-in.wav", tmp_path / "rec-out.wav"
    say("the price is too high", rate=8000).set_sample_width(2).export(str(caller), format="wav")
    (say("good morning", rate=8000).set_sample_width(2) * 2).export(str(operator), format="wav")
    work = tmp_path / "work"
    work.mkdir()
    parts = side_files([caller, operator], work)
    assert [side for side, _ in parts] == ["caller", "operator"]
    for _side, path in parts:
        with wave.open(str(path)) as w:
            assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 16000, 2)
    mono = tmp_path / "mix.wav"
    say("hello").set_sample_width(2).export(str(mono), format="wav")
    assert [side for side, _ in side_files([mono], work)] == ["mixed"]


def test_a_backend_that_cannot_start_fails_the_job_not_the_calls(session_factory, recorded_call, db_url,
                                                                 tmp_path):
    from calltracking.jobs.scheduler import JobRunner, default_jobs
    from calltracking.models import JobStatus

    call_id, _ = recorded_call([("caller", 0.2, "hello")], name="nomodel")
    missing = tmp_path / "no-model"
    cfg = make_config(db_url, transcripts__backend="faster-whisper", transcripts__model_dir=str(missing),
                      recordings__dir=str(recorded_call.dir))
    runner = JobRunner(cfg, session_factory, [j for j in default_jobs() if j.name == "transcripts"])
    ok, result = runner.run_job("transcripts", force=True)
    assert not ok and f"model directory {missing} does not exist" in result
    with session_factory() as s:
        assert s.get(Transcript, call_id) is None            # no attempt spent
        assert s.get(JobStatus, "transcripts").consecutive_failures == 1
        assert job.backlog(s, cfg.transcripts) == 1


def test_stopping_the_service_kills_the_workers_and_spends_no_attempt(session_factory, recorded_call, db_url,
                                                                      tmp_path):
    import threading
    import time

    from calltracking.jobs.scheduler import JobRunner

    call_id, _ = recorded_call([("caller", 0.2, "hello")], name="slow")
    script = tmp_path / "slow-engine"
    pidfile = tmp_path / "engine.pid"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 120\n")
    script.chmod(0o755)
    cfg = make_config(db_url, transcripts__backend="command", transcripts__command=str(script),
                      recordings__dir=str(recorded_call.dir))
    out = {}
    worker = threading.Thread(target=lambda: out.update(job.process_pending(cfg, session_factory)))
    worker.start()
    pids = poll_workers()
    from support.polling import poll

    engine = int(poll(lambda: pidfile.exists() and pidfile.read_text().strip(), 60, "the engine to start"))
    runner = JobRunner(cfg, session_factory, jobs=[])
    started = time.monotonic()
    runner.shutdown()
    worker.join(60)
    assert not worker.is_alive() and time.monotonic() - started < 30
    assert out == {"left": 1}
    for pid in pids + [engine]:
        assert not _alive(pid), pid       # the workers, and the program they ran
    with session_factory() as s:
        assert s.get(Transcript, call_id) is None
        assert job.backlog(s, cfg.transcripts) == 1


def poll_workers() -> list[int]:
    """The pids of the pool's worker processes once they run."""
    from support.polling import poll

    def found():
        pools = list(job._pool.values())
        procs = list((getattr(pools[0], "_processes", None) or {}).keys()) if pools else []
        return procs or None

    return poll(found, 60, "the transcripts pool to start its workers", interval=0.1)


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"
