"""The ``recordings`` job: each new recording found, measured, converted and recorded, crash-safe.

For every answered or missed call that ended ``SETTLE`` ago or more and has a recording
(``Call.recording_file``, or ``record`` set), the job finds the original file(s)
(:mod:`calltracking.jobs.recording_files`), measures them
(:mod:`calltracking.jobs.recording_audio`), converts them to ``[recordings] format`` (mp3, or
ogg = Opus; wav = keep) next to the original, under the original's whole name with only its
audio extension replaced (``e2e-1796302442.89.wav`` -> ``e2e-1796302442.89.mp3``), and stores
the result in ``recording_info`` and ``Call.recording_seconds``. A recording not found or not
readable is looked for again every ``RETRY_AFTER``, ``MAX_ATTEMPTS`` times in all.

The order of the steps makes every interruption harmless: convert into ``<converted name>.part``
(locked, flushed to disk) -> rename it to the converted name -> commit the row (marked
:data:`ORIGINALS_PENDING`) -> delete the originals -> clear the mark. The original is only
deleted once the row saying where its converted file is has been committed; a run interrupted
at any step is finished by the next one (a ``.part`` is rewritten, a converted file without its
row is written again and committed, a committed row whose originals remain gets them deleted).
Two processes never convert the same call at once (the ``.part`` lock; a row committed by the
other run meanwhile makes this one's result ``busy``, nothing written).

Retention (the ``retention`` job): :mod:`calltracking.jobs.recording_retention`.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Optional

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from calltracking.db import make_sessionmaker, session_scope, writer
from calltracking.jobs.recording_audio import Analysis, RecordingError, analyze
from calltracking.jobs.recording_files import converted_name, inside, locate, mix_beside, split_ext
from calltracking.models import Call, RecordingInfo, utcnow

log = logging.getLogger(__name__)

SETTLE = dt.timedelta(seconds=10)        # MixMonitor closes the file after the hangup
RETRY_AFTER = dt.timedelta(minutes=5)    # missing/unreadable files are looked for again
MAX_ATTEMPTS = 6
EXPORT = {"mp3": {"format": "mp3", "bitrate": {1: "32k", 2: "48k"}},
          "ogg": {"format": "ogg", "codec": "libopus", "bitrate": {1: "24k", 2: "32k"},
                  "parameters": ["-compression_level", "5"]},
          "wav": {"format": "wav"}}
# ``recording_info.error`` of a committed row whose originals are still to be deleted
ORIGINALS_PENDING = "converted; the original(s) are being deleted"


class Busy(Exception):
    """Another process is converting this call right now (its ``.part`` file is locked)."""


# ------------------------------------------------------------ writing a file
def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (the row naming the file is committed next)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system without directory fsync: the rename is as durable as it gets
        pass
    finally:
        os.close(fd)


def convert(audio, target: Path, fmt: str) -> Path:
    """Write ``audio`` as ``target`` so that ``target`` is always either absent or complete.

    The audio goes into ``<target>.part`` in the same directory, locked with ``flock`` so two
    runs never write the same file (the second gets :class:`Busy`), is flushed to disk, and
    is renamed to ``target`` (atomic; an existing ``target`` is replaced). A ``.part`` left
    by an interrupted run is truncated and written again; one that cannot be written is
    removed and the failure is a :class:`RecordingError`.
    """
    spec = EXPORT[fmt]
    kwargs = {"format": spec["format"]}
    if "bitrate" in spec:
        kwargs["bitrate"] = spec["bitrate"].get(audio.channels, "48k")
    for k in ("codec", "parameters"):
        if k in spec:
            kwargs[k] = spec[k]
    tmp = target.with_name(target.name + ".part")
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise RecordingError(f"cannot write {tmp}: {e.strerror}") from None
    with os.fdopen(fd, "r+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"{tmp} is being written by another process") from None
        try:
            # the lock holder before us may have renamed or removed the file we opened
            if not os.path.samestat(os.fstat(f.fileno()), os.stat(tmp)):
                raise FileNotFoundError
        except FileNotFoundError:
            raise Busy(f"{tmp} was just finished by another process") from None
        try:
            f.truncate(0)
            audio.export(f, **kwargs)
            f.flush()
            os.fsync(f.fileno())
            if os.fstat(f.fileno()).st_size == 0:
                raise RecordingError(f"conversion produced an empty file {target}")
            os.replace(tmp, target)
        except Exception as e:
            tmp.unlink(missing_ok=True)
            if isinstance(e, RecordingError):
                raise
            raise RecordingError(f"cannot write {target}: {type(e).__name__}: {e}") from None
    _fsync_dir(target.parent)
    return target


# ------------------------------------------------------------------ the steps
def _d(v: Optional[float]) -> Optional[Decimal]:
    return None if v is None else Decimal(str(round(v, 3)))


@dataclass
class Conversion:
    """One call's recording on its way to ``recording_info`` (see :func:`process_call`)."""

    call_id: int
    attempts_seen: Optional[int]  # the row's attempts when read (None: no row): another run's commit changes it
    files: list[Path] = field(default_factory=list)
    beside: list[Path] = field(default_factory=list)  # a mix recorded with the legs: deleted with them
    status: str = "missing"
    error: str = ""
    out: Optional[Path] = None
    analysis: Optional[Analysis] = None


def prepare(config, session_factory: sessionmaker, call_id: int) -> Optional[Conversion]:
    """Step 1: read the call and find its original file(s). Nothing is written. None: no such call."""
    with session_scope(session_factory) as s:
        call = s.get(Call, call_id)
        if call is None:
            return None
        info = s.get(RecordingInfo, call_id)
        conv = Conversion(call_id, info.attempts if info is not None else None)
    conv.files = locate(config.recordings.dir, call)
    conv.beside = mix_beside(config.recordings.dir, conv.files)
    if not conv.files:
        conv.error = f"no recording found in {config.recordings.dir}"
    return conv


def store(config, conv: Conversion) -> Conversion:
    """Step 2: measure the originals and write the converted file (temporary name, then an
    atomic rename: see :func:`convert`). The originals stay. Raises :class:`Busy`."""
    if not conv.files:
        return conv
    fmt = config.recordings.format
    files = conv.files
    try:
        audio, conv.analysis = analyze(files)
        target = converted_name(files, fmt)
        if (fmt == "wav" and len(files) == 1) or files == [target]:
            conv.out = files[0]  # kept as it is (or converted already, its originals gone)
        else:
            conv.out = convert(audio, target, fmt)
    except RecordingError as e:
        conv.status, conv.error = "error", str(e)
        return conv
    conv.status, conv.error = "ok", ""
    return conv


def record(write_factory: sessionmaker, conv: Conversion, now: dt.datetime) -> str:
    """Step 3: commit the result. An ``ok`` row whose originals are still on disk is marked
    :data:`ORIGINALS_PENDING` until :func:`finish` deleted them. Returns the status recorded,
    or ``"busy"`` when another run recorded this call since :func:`prepare` (nothing written)."""
    try:
        with session_scope(write_factory) as s:
            info = s.get(RecordingInfo, conv.call_id, with_for_update=True)
            if (info.attempts if info is not None else None) != conv.attempts_seen:
                return "busy"
            if info is None:
                info = RecordingInfo(call_id=conv.call_id, status="missing", file="", format="",
                                     source_files="", error="", attempts=0)
                s.add(info)
            info.attempts = (conv.attempts_seen or 0) + 1
            info.processed_at = now
            info.status, info.error = conv.status, conv.error
            if conv.status != "ok":
                return conv.status
            out, a = conv.out, conv.analysis
            info.file = str(out)
            info.format = (split_ext(out.name)[1] or out.suffix).lstrip(".").lower()[:5]
            info.source_files = json.dumps([str(f) for f in conv.files + conv.beside])
            info.duration_seconds, info.channels = _d(a.duration), a.channels
            info.caller_talk_seconds, info.operator_talk_seconds = _d(a.caller_talk), _d(a.operator_talk)
            info.talk_ratio = _d(a.talk_ratio)
            info.longest_silence_seconds = _d(a.longest_silence)
            info.operator_interruptions, info.caller_interruptions = a.operator_interruptions, a.caller_interruptions
            info.first_operator_word_seconds = _d(a.first_operator_word)
            if any(f != out for f in conv.files + conv.beside):
                info.error = ORIGINALS_PENDING
            call = s.get(Call, conv.call_id)
            call.recording_seconds = _d(a.duration)
            if not call.recording_file:
                call.recording_file = str(conv.files[0])
    except IntegrityError:  # another run inserted this call's row first
        return "busy"
    return conv.status


def finish(write_factory: sessionmaker, call_id: int, directory: str) -> bool:
    """Step 4: delete the originals of a committed conversion and clear the mark. True when
    it did. The originals are kept when the converted file is not there (the row then goes
    back to ``error`` and the call is converted again), cannot be deleted or lie outside
    ``directory`` (the row says why)."""
    with session_scope(write_factory) as s:
        info = s.get(RecordingInfo, call_id, with_for_update=True)
        if info is None or info.status != "ok" or info.error != ORIGINALS_PENDING:
            return False
        out = Path(info.file)
        if not out.is_file():
            info.status = "error"
            info.error = f"the converted file {out} is gone; the original(s) are kept and converted again"
            log.warning("recording of call %s: %s", call_id, info.error)
            return False
        problems = []
        for name in json.loads(info.source_files or "[]"):
            f = Path(name)
            if f == out:
                continue
            if not inside(directory, f):
                problems.append(f"{f}: outside [recordings] dir, not deleted")
                continue
            try:
                f.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                problems.append(f"{f}: {e.strerror}")
        if problems:
            info.error = "converted, but the original stays: " + "; ".join(problems)
            log.warning("recording of call %s %s", call_id, info.error)
            return False
        info.error = ""
    return True


def process_call(config, session_factory: sessionmaker, call_id: int, now: dt.datetime | None = None,
                 write_factory: Optional[sessionmaker] = None) -> str:
    """Find, convert and measure one call's recording: :func:`prepare`, :func:`store`,
    :func:`record`, :func:`finish`. Returns the status (``ok``, ``missing``, ``error``;
    ``busy`` when another process is on it, nothing written; ``gone``: no such call).
    A database failure propagates and costs no recording: the originals are only deleted
    once the row naming the converted file is committed, and the next run starts again."""
    now = now or utcnow()
    write_factory = write_factory or _writer_factory(session_factory)
    conv = prepare(config, session_factory, call_id)
    if conv is None:
        return "gone"  # the call was deleted meanwhile
    try:
        store(config, conv)
    except Busy as e:
        log.info("recording of call %s: %s", call_id, e)
        return "busy"
    status = record(write_factory, conv, now)
    if status == "ok":
        finish(write_factory, call_id, config.recordings.dir)
    return status


def _writer_factory(session_factory: sessionmaker) -> sessionmaker:
    """Sessions whose SQLite transactions begin IMMEDIATE: the row is written after a long
    conversion, and a deferred transaction would fail at once if another process wrote meanwhile."""
    bind = session_factory.kw.get("bind")
    return make_sessionmaker(writer(bind)) if bind is not None else session_factory


def pending_calls(session: Session, now: dt.datetime, limit: int = 50) -> list[Call]:
    """Finished calls with a recording to process: those never processed (oldest first), then
    those missing or unreadable at least ``RETRY_AFTER`` ago, fewer than ``MAX_ATTEMPTS`` times."""
    settled = now - SETTLE
    base = select(Call).outerjoin(RecordingInfo, RecordingInfo.call_id == Call.id).where(
        Call.status.in_(("answered", "missed")), Call.ended_at <= settled,
        or_(Call.recording_file != "", Call.record.is_(True)))
    new = base.where(RecordingInfo.call_id.is_(None))
    retry = base.where(RecordingInfo.status.in_(("missing", "error")),
                       RecordingInfo.attempts < MAX_ATTEMPTS,
                       RecordingInfo.processed_at <= now - RETRY_AFTER)
    calls = list(session.scalars(new.order_by(Call.ended_at).limit(limit)))
    if len(calls) < limit:
        calls += list(session.scalars(retry.order_by(Call.ended_at).limit(limit - len(calls))))
    return calls


def originals_pending(session: Session, limit: int = 50) -> list[int]:
    """Calls whose conversion was committed but whose originals were not deleted yet."""
    # a scan of recording_info: 13-18 ms per run with 100 000 rows on SQLite (pending_calls: ~80 ms)
    return list(session.scalars(select(RecordingInfo.call_id).where(
        RecordingInfo.status == "ok", RecordingInfo.error == ORIGINALS_PENDING)
        .order_by(RecordingInfo.call_id).limit(limit)))


def process_pending(config, session_factory, now: dt.datetime | None = None, limit: int = 50) -> dict:
    """Finish what an interrupted run left (originals to delete: counted as ``cleaned``), then
    process the recordings of finished calls (a short transaction per call, none during the
    conversion). Returns the count per status."""
    now = now or utcnow()
    write_factory = _writer_factory(session_factory)
    stats: dict[str, int] = {}
    with session_scope(session_factory) as s:
        leftovers = originals_pending(s, limit)
    for cid in leftovers:
        if finish(write_factory, cid, config.recordings.dir):
            stats["cleaned"] = stats.get("cleaned", 0) + 1
    with session_scope(session_factory) as s:
        ids = [c.id for c in pending_calls(s, now, limit)]
    for cid in ids:
        status = process_call(config, session_factory, cid, now, write_factory)
        stats[status] = stats.get(status, 0) + 1
    return stats
