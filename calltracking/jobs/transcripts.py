"""The ``transcripts`` job: recorded calls transcribed in worker processes at low CPU priority.

Which calls (:func:`calltracking.transcripts.backlog.pending_query`): those whose recording
was converted (``recording_info`` ``ok``) and that have no transcript yet, or whose last
attempt failed fewer than ``[transcripts] max_attempts`` times; newest recordings wait behind
older ones. The backlog (:func:`calltracking.transcripts.backlog.backlog`) is their number,
shown on the jobs page and exported in ``/metrics``.

How: each call's file is split into sides (:mod:`calltracking.transcripts.audio`) and
transcribed by the configured backend in a pool of ``[transcripts] workers`` processes started
with ``spawn`` and niced to ``[transcripts] nice`` (19: the lowest priority), so the FastAGI
server, the AMI listener and the web UI keep their CPU; nothing here runs on the call path.
A run takes at most :data:`BATCH_PER_WORKER` calls per worker. A success stores the phrases
and applies the keyword lists (:mod:`calltracking.transcripts.keywords`) in one transaction; a
failure stores its reason and counts the attempt (:mod:`calltracking.transcripts.store`).
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import tempfile
import threading
from pathlib import Path

from calltracking.db import session_scope
from calltracking.jobs.recording_files import inside
from calltracking.models import Call, RecordingInfo, utcnow
from calltracking.transcripts import keywords, store
from calltracking.transcripts.backlog import backlog, pending_query  # noqa: F401  (backlog: re-exported)
from calltracking.transcripts.audio import side_files
from calltracking.transcripts.backends import TranscriptError, backend_problem, kill_running, make_backend

#: calls per run and worker: a run stays near the job's interval (a 3-minute call is about 15 CPU-s
#: with pocketsphinx, bench/transcribe.py) instead of holding a backlog's worth of work
BATCH_PER_WORKER = 3

_pool_lock = threading.Lock()
_pool: dict = {}
_stopping = threading.Event()     # set by shutdown_pool(terminate=True): results are dropped
_worker_backend: dict = {}


# ------------------------------------------------------------ the workers
def _terminated(signum, frame) -> None:
    """A worker told to stop kills the ``command`` program it runs (its own session) and exits."""
    kill_running()
    os._exit(128 + signum)


def _init_worker(nice: int) -> None:
    """Lower this worker process's CPU priority (it only ever goes down): ``os.nice(nice)``, and
    with ``nice`` 19 also Linux's ``SCHED_IDLE`` policy, under which the worker runs only on a
    core nothing else wants and is preempted at once when the FastAGI server wakes up (with two
    workers at nice 19 alone on a shared 2-core machine the FastAGI p99 went from 4-6 ms to
    12-90 ms: bench/transcribe.py, docs/performance.md)."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        os.nice(nice)
    except OSError:
        pass
    if nice >= 19 and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass


def transcribe_files(cfg, files: list[str]) -> tuple[str, list[tuple[str, float, float, str]]]:
    """In a worker: (backend name, [(side, start, end, text)]) for a recording. The backend is
    made once per worker process. Raises :class:`TranscriptError` (a message for the call)."""
    key = (cfg.backend, cfg.command, cfg.timeout, cfg.model_dir, cfg.language)
    backend = _worker_backend.get(key)
    if backend is None:
        backend = make_backend(cfg)
        if backend is None:
            raise TranscriptError("[transcripts] backend is none")
        _worker_backend.clear()
        _worker_backend[key] = backend
    out = []
    with tempfile.TemporaryDirectory(prefix="ct-transcribe-") as tmp:
        try:
            parts = side_files([Path(f) for f in files], Path(tmp))
        except Exception as e:   # pydub/ffmpeg: the message names the file
            raise TranscriptError(f"cannot read the recording: {e}") from None
        for side, wav in parts:
            for p in backend.transcribe(str(wav)):
                out.append((side, p.start, p.end, p.text))
    return backend.name, out


def _run(cfg, files):
    """What a pool worker runs: never raises, so one call's failure never breaks the pool."""
    try:
        return True, transcribe_files(cfg, files)
    except TranscriptError as e:
        return False, str(e)
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"


def pool(cfg) -> cf.ProcessPoolExecutor:
    """The worker pool of this process (made on first use, remade when its size or niceness changes)."""
    key = (cfg.workers, cfg.nice)
    with _pool_lock:
        ex = _pool.get(key)
        if ex is None:
            for old in _pool.values():
                old.shutdown(wait=False, cancel_futures=True)
            _pool.clear()
            ex = cf.ProcessPoolExecutor(max_workers=cfg.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(cfg.nice,))
            _pool[key] = ex
            _stopping.clear()
        return ex


def shutdown_pool(terminate: bool = False) -> None:
    """Stop the worker pool: after the calls being transcribed (``terminate`` False), or at once
    (True: the service is stopping): the workers are killed, and the calls they held are left
    untouched (no attempt counted) for the next run to take again."""
    with _pool_lock:
        pools = list(_pool.values())
        _pool.clear()
        if terminate:
            _stopping.set()
    for ex in pools:
        workers = list((getattr(ex, "_processes", None) or {}).values())   # 3.11: no public terminate()
        ex.shutdown(wait=not terminate, cancel_futures=True)
        if terminate:
            for w in workers:
                w.terminate()
            for w in workers:
                w.join(10)


# ------------------------------------------------------------------ the job
def process_pending(config, session_factory, limit: int | None = None) -> dict:
    """Transcribe up to ``limit`` waiting calls (default :data:`BATCH_PER_WORKER` per worker);
    returns the count per result (ok, error). A backend that cannot start (package, program or
    model directory missing) raises :class:`TranscriptError` before any call is touched."""
    cfg = config.transcripts
    if cfg.backend == "none":
        return {}
    limit = limit or BATCH_PER_WORKER * cfg.workers
    problem = backend_problem(cfg)
    if problem:   # the job fails (job_status, doctor); the calls keep their attempts
        raise TranscriptError(f"backend {cfg.backend}: {problem}")
    with session_scope(session_factory) as s:
        rows = s.execute(pending_query(cfg).order_by(RecordingInfo.processed_at, Call.id).limit(limit)).all()
    stats: dict[str, int] = {}
    jobs = {}
    ex = pool(cfg)
    for call_id, file in rows:
        started = utcnow()
        if not inside(config.recordings.dir, file) or not os.path.isfile(file):
            _finish(config, session_factory, call_id, started, (False, f"the recording {file} is missing"), stats)
            continue
        jobs[ex.submit(_run, cfg, [file])] = (call_id, started)
    for fut in cf.as_completed(jobs):
        call_id, started = jobs[fut]
        if _stopping.is_set():
            stats["left"] = stats.get("left", 0) + 1
            continue     # the service stops: the call is taken again by the next run
        try:
            result = fut.result()
        except Exception as e:   # the worker died (killed, out of memory): the pool is remade next run
            result = (False, f"the worker process failed: {type(e).__name__}: {e}")
            shutdown_pool()
        _finish(config, session_factory, call_id, started, result, stats)
    return stats


def _finish(config, session_factory, call_id, started, result, stats) -> None:
    cfg = config.transcripts
    ok, value = result
    with session_scope(session_factory) as s:
        if s.get(Call, call_id) is None:
            return   # deleted meanwhile
        if ok:
            backend, phrases = value
            store.save(s, call_id, backend, phrases, started, utcnow())
            keywords.apply(s, call_id, cfg.greeting_seconds)
        else:
            store.fail(s, call_id, cfg.backend, value, cfg.max_attempts, started, utcnow())
    key = "ok" if ok else "error"
    stats[key] = stats.get(key, 0) + 1


def transcribe_call_now(config, session_factory, call_id: int, files: list[str]) -> bool:
    """Transcribe one call in this process (the CLI, the demo, tests): True when stored."""
    started = utcnow()
    stats: dict[str, int] = {}
    _finish(config, session_factory, call_id, started, _run(config.transcripts, files), stats)
    return bool(stats.get("ok"))
