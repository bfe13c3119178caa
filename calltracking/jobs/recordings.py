"""Call recordings: find, convert, measure, expire.

Where the file is: the AMI listener stores MixMonitor's file name in
``Call.recording_file`` (absolute, or relative to ``[recordings] dir``). When
it is empty the file is looked up by the call id of the dialplan,
``CT_CALL_ID`` = ``<pbx_id>-<linkedid>`` (or the bare linkedid), in ``dir``
and in date sub-directories (``dir/YYYY/MM/DD``).

Separate legs: a *stereo* file is read as caller on the left channel and
operator on the right; two files ``<name>-in.<ext>`` (MixMonitor ``r()``: what
the caller says) and ``<name>-out.<ext>`` (``t()``: what the operator says)
are read as the two sides (also ``-caller``/``-operator``, ``-rx``/``-tx``).
Then each side's talk time comes from pydub's silence detection, the *talk
ratio* is the operator's share of the talk (operator / (caller + operator)),
and the *longest silence* is the longest time inside the conversation when
neither side spoke. A mono mix gives the duration and the longest silence.

The scheduler's ``recordings`` job converts each new recording to
``[recordings] format`` (mp3, or ogg = Opus; wav = keep) next to the original,
under the original's whole name with only its audio extension replaced
(``e2e-1796302442.89.wav`` -> ``e2e-1796302442.89.mp3``: the Linkedid's dot is
part of the name, never an extension), and stores the result in
``recording_info`` and ``Call.recording_seconds``. The order of the steps
makes every interruption harmless: convert into ``<converted name>.part``
(locked, flushed to disk) -> rename it to the converted name -> commit the row
(marked "originals to delete") -> delete the originals -> clear the mark. The
original is only deleted once the row saying where its converted file is has
been committed; a run interrupted at any step is finished by the next one (a
``.part`` is rewritten, a converted file without its row is written again and
committed, a committed row whose originals remain gets them deleted). The
``retention`` job deletes the files of calls older than ``keep_days`` (per
project: ``recording_policies``, else ``[recordings] keep_days``; 0 = keep)
and marks them ``purged``; the calls stay.

Containment: only files whose real path (symbolic links followed) lies under ``[recordings]
dir`` are ever read, converted, served or deleted. A ``recording_file`` from AMI that points
elsewhere (``../``, an absolute path outside, a link out of the directory) counts as missing.
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
from calltracking.models import Call, Project, RecordingInfo, RecordingPolicy, utcnow

log = logging.getLogger(__name__)

AUDIO_EXT = (".wav", ".WAV", ".gsm", ".mp3", ".ogg", ".opus", ".flac")
SPLIT_SUFFIXES = (("-in", "-out"), ("-caller", "-operator"), ("-rx", "-tx"), ("-r", "-t"))
SILENCE_DBFS = -45.0        # quieter than this is silence
SPEECH_GAP_MS = 500         # pauses shorter than this are part of the talk
SEEK_MS = 10                # resolution of the silence detection
SETTLE = dt.timedelta(seconds=10)        # MixMonitor closes the file after the hangup
RETRY_AFTER = dt.timedelta(minutes=5)    # missing/unreadable files are looked for again
MAX_ATTEMPTS = 6
EXPORT = {"mp3": {"format": "mp3", "bitrate": {1: "32k", 2: "48k"}},
          "ogg": {"format": "ogg", "codec": "libopus", "bitrate": {1: "24k", 2: "32k"},
                  "parameters": ["-compression_level", "5"]},
          "wav": {"format": "wav"}}
# ``recording_info.error`` of a committed row whose originals are still to be deleted
ORIGINALS_PENDING = "converted; the original(s) are being deleted"


class RecordingError(Exception):
    pass


class Busy(Exception):
    """Another process is converting this call right now (its ``.part`` file is locked)."""


@dataclass
class Analysis:
    duration: float
    channels: int
    caller_talk: Optional[float] = None
    operator_talk: Optional[float] = None
    longest_silence: Optional[float] = None

    @property
    def talk_ratio(self) -> Optional[float]:
        if self.caller_talk is None or self.operator_talk is None:
            return None
        total = self.caller_talk + self.operator_talk
        return round(self.operator_talk / total, 3) if total else None


# ------------------------------------------------------------------- locate
def _resolve(directory: str, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else Path(directory) / p


def inside(directory: str, path: Path | str) -> bool:
    """True when ``path``'s real path (links followed, ``..`` resolved) lies under ``directory``'s."""
    root = os.path.realpath(directory)
    real = os.path.realpath(path)
    return os.path.commonpath([root, real]) == root


_AUDIO_EXT_LOWER = {e.lower() for e in AUDIO_EXT}


def split_ext(name: str) -> tuple[str, str]:
    """(name without its audio extension, the extension): only a known audio extension is one,
    so ``e2e-1796302442.89.wav`` -> (``e2e-1796302442.89``, ``.wav``) and a name without one
    (``e2e-1796302442.89``) stays whole. ``Path.stem``/``with_suffix`` would cut the Linkedid."""
    dot = name.rfind(".")
    if dot > 0 and name[dot:].lower() in _AUDIO_EXT_LOWER:
        return name[:dot], name[dot:]
    return name, ""


def _split_partner(p: Path) -> Optional[tuple[Path, Path]]:
    base, ext = split_ext(p.name)
    for a, b in SPLIT_SUFFIXES:
        for mine, other, first in ((a, b, True), (b, a, False)):
            if base.endswith(mine):
                q = p.with_name(base[: -len(mine)] + other + ext)
                if q.is_file():
                    return (p, q) if first else (q, p)
    return None


def _by_stem(base: Path) -> list[Path]:
    """Files named ``base.<audio ext>`` or the split pair ``base-in/-out.<ext>``."""
    for ext in AUDIO_EXT:
        for a, b in SPLIT_SUFFIXES:
            x, y = base.with_name(base.name + a + ext), base.with_name(base.name + b + ext)
            if x.is_file() and y.is_file():
                return [x, y]
        single = base.with_name(base.name + ext)
        if single.is_file():
            return [single]
    return []


def locate(directory: str, call: Call) -> list[Path]:
    """The original recording file(s) of a call: [], [mix or stereo] or [caller, operator].
    Files outside ``directory`` (see :func:`inside`) are never returned."""
    if call.recording_file:
        p = _resolve(directory, call.recording_file)
        if p.is_file():
            pair = _split_partner(p)
            found = list(pair) if pair else [p]
        else:
            found = _by_stem(p.with_name(split_ext(p.name)[0]))
        if found and all(inside(directory, f) for f in found):
            return found
        if found:
            log.warning("recording of call %s: %s is outside [recordings] dir %s; ignored",
                        call.id, call.recording_file, directory)
    root = Path(directory)
    names = [f"{call.pbx_id}-{call.linkedid}", call.linkedid] if call.linkedid else []
    for name in names:
        for sub in ("", "*", "*/*/*"):
            for d in (root.glob(sub) if sub else [root]):
                if d.is_dir():
                    found = _by_stem(d / name)
                    if found and all(inside(directory, f) for f in found):
                        return found
    return []


# ------------------------------------------------------------------ analysis
def _load(path: Path):
    from pydub import AudioSegment

    try:
        return AudioSegment.from_file(str(path))
    except Exception as e:  # pydub raises CouldntDecodeError, IndexError, OSError…
        raise RecordingError(f"cannot read {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def speech_ranges(seg) -> list[tuple[int, int]]:
    """[start_ms, end_ms) ranges where someone speaks on this (mono) segment."""
    from pydub.silence import detect_nonsilent

    if len(seg) == 0:
        return []
    seg = seg.set_channels(1)
    if seg.frame_rate > 16000:
        seg = seg.set_frame_rate(16000)
    return [(a, b) for a, b in detect_nonsilent(seg, min_silence_len=SPEECH_GAP_MS,
                                                silence_thresh=SILENCE_DBFS, seek_step=SEEK_MS)]


def longest_gap(ranges: list[tuple[int, int]]) -> float:
    """Longest time between speech (inside the conversation), in seconds."""
    merged: list[list[int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    gaps = [merged[i + 1][0] - merged[i][1] for i in range(len(merged) - 1)]
    return max(gaps, default=0) / 1000.0


def sides(files: list[Path]):
    """(audio for playback, caller side or None, operator side or None)."""
    from pydub import AudioSegment

    if len(files) == 2:
        caller, operator = (_load(f).set_channels(1) for f in files)
        rate = max(caller.frame_rate, operator.frame_rate)
        caller, operator = caller.set_frame_rate(rate), operator.set_frame_rate(rate)
        width = max(caller.sample_width, operator.sample_width)
        caller, operator = caller.set_sample_width(width), operator.set_sample_width(width)
        n = max(len(caller), len(operator))
        caller += AudioSegment.silent(n - len(caller), rate).set_sample_width(width)
        operator += AudioSegment.silent(n - len(operator), rate).set_sample_width(width)
        caller, operator = caller[:n], operator[:n]
        frames = min(int(caller.frame_count()), int(operator.frame_count()))
        caller = caller.get_sample_slice(0, frames)
        operator = operator.get_sample_slice(0, frames)
        return AudioSegment.from_mono_audiosegments(caller, operator), caller, operator
    audio = _load(files[0])
    if audio.channels == 2:
        left, right = audio.split_to_mono()
        return audio, left, right
    return audio, None, None


def analyze(files: list[Path]) -> tuple[object, Analysis]:
    audio, caller, operator = sides(files)
    result = Analysis(duration=round(len(audio) / 1000.0, 3), channels=audio.channels)
    if caller is not None:
        c, o = speech_ranges(caller), speech_ranges(operator)
        result.caller_talk = sum(b - a for a, b in c) / 1000.0
        result.operator_talk = sum(b - a for a, b in o) / 1000.0
        result.longest_silence = longest_gap(c + o)
    else:
        result.longest_silence = longest_gap(speech_ranges(audio))
    return audio, result


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


def converted_name(files: list[Path], fmt: str) -> Path:
    """Where the converted file of ``files`` goes: next to the first one, named after the
    whole original name with only its audio extension replaced (a pair ``NAME-in``/``NAME-out``
    gives ``NAME``): ``e2e-1796302442.89.wav`` -> ``e2e-1796302442.89.mp3``, so calls whose
    Linkedids differ only after the dot never share a file."""
    p = files[0]
    base, _ext = split_ext(p.name)
    if len(files) == 2:
        for a, _b in SPLIT_SUFFIXES:
            if base.endswith(a):
                base = base[: -len(a)]
                break
    return p.with_name(f"{base}.{fmt}")


# ------------------------------------------------------------------ the job
def _d(v: Optional[float]) -> Optional[Decimal]:
    return None if v is None else Decimal(str(round(v, 3)))


@dataclass
class Conversion:
    """One call's recording on its way to ``recording_info`` (see :func:`process_call`)."""

    call_id: int
    attempts_seen: Optional[int]  # the row's attempts when read (None: no row): another run's commit changes it
    files: list[Path] = field(default_factory=list)
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
            info.source_files = json.dumps([str(f) for f in conv.files])
            info.duration_seconds, info.channels = _d(a.duration), a.channels
            info.caller_talk_seconds, info.operator_talk_seconds = _d(a.caller_talk), _d(a.operator_talk)
            info.talk_ratio = _d(a.talk_ratio)
            info.longest_silence_seconds = _d(a.longest_silence)
            if any(f != out for f in conv.files):
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


# ------------------------------------------------------------------ retention
def keep_days_by_project(config, session: Session) -> dict[Optional[int], int]:
    out: dict[Optional[int], int] = {None: config.recordings.keep_days}
    overrides = {p.project_id: p.keep_days for p in session.scalars(select(RecordingPolicy))}
    for pid in session.scalars(select(Project.id)):
        out[pid] = overrides.get(pid, config.recordings.keep_days)
    return out


def set_keep_days(session: Session, project: Project, days: Optional[int]) -> None:
    """Per-project retention; None = use ``[recordings] keep_days``."""
    row = session.get(RecordingPolicy, project.id)
    if days is None:
        if row is not None:
            session.delete(row)
        return
    if days < 0:
        raise ValueError("keep_days must be >= 0 (0 = keep forever)")
    if row is None:
        session.add(RecordingPolicy(project_id=project.id, keep_days=days))
    else:
        row.keep_days = days


def purge_call(config, session: Session, call: Call, now: dt.datetime) -> int:
    """Delete a call's recording files; the call stays, marked ``purged``. Returns files deleted.
    A file the row names outside ``[recordings] dir`` is left alone (and logged)."""
    directory = config.recordings.dir
    info = session.get(RecordingInfo, call.id)
    paths = set(locate(directory, call))
    if info is not None:
        named = [info.file] if info.file else []
        named += json.loads(info.source_files or "[]")
        for f in named:
            if inside(directory, f):
                paths.add(Path(f))
            else:
                log.warning("recording of call %s: %s is outside [recordings] dir %s; not deleted",
                            call.id, f, directory)
    else:
        info = RecordingInfo(call_id=call.id, status="purged", file="", format="", source_files="",
                             error="", attempts=0)
        session.add(info)
    deleted = 0
    errors = []
    for p in paths:
        try:
            p.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append(f"{p}: {e.strerror}")
    if errors:  # keep it visible and try again next time
        info.error = "cannot delete " + "; ".join(errors)
        return deleted
    info.status, info.file, info.purged_at, info.error = "purged", "", now, ""
    return deleted


def apply_retention(config, session_factory, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Purge the recordings older than each project's keep_days; returns calls purged."""
    now = now or utcnow()
    purged = 0
    with session_scope(session_factory) as s:
        policy = keep_days_by_project(config, s)
    for pid, days in policy.items():
        if not days:
            continue
        cutoff = now - dt.timedelta(days=days)
        with session_scope(session_factory) as s:
            stmt = (select(Call).outerjoin(RecordingInfo, RecordingInfo.call_id == Call.id)
                    .where(Call.started_at < cutoff,
                           Call.project_id.is_(None) if pid is None else Call.project_id == pid,
                           or_(RecordingInfo.call_id.is_(None), RecordingInfo.status != "purged"),
                           or_(Call.recording_file != "", RecordingInfo.call_id.is_not(None)))
                    .limit(limit))
            for call in s.scalars(stmt).all():
                purge_call(config, s, call, now)
                info = s.get(RecordingInfo, call.id)
                purged += info.status == "purged"
    return purged


# -------------------------------------------------------------- for the web UI
def recording_state(call: Call, directory: str) -> tuple[str, Optional[Path]]:
    """("ok", path) for a playable file, else (none|pending|missing|error|purged, None)."""
    try:
        info = call.recording_info
    except Exception:  # detached instance: treat as not processed yet
        info = None
    if info is not None and info.status == "purged":
        return "purged", None
    candidates = []
    if info is not None and info.status == "ok" and info.file:
        candidates.append(_resolve(directory, info.file))
    elif call.recording_file:
        candidates.append(_resolve(directory, call.recording_file))
    if not candidates:
        if info is None:
            return ("pending" if call.record else "none"), None
        return ("error" if info.status == "error" else "missing"), None
    for p in candidates:
        if not inside(directory, p):
            return "missing", None  # outside the recordings directory: never served
        real = os.path.realpath(p)
        if os.path.isfile(real) and os.access(real, os.R_OK):
            return "ok", Path(real)
    return ("error" if info is not None and info.status == "error" else "missing"), None


def recording_path(call: Call, directory: str) -> Optional[Path]:
    """The playable file of a call, or None (missing, unreadable, purged, none)."""
    return recording_state(call, directory)[1]


def operator_talk_stats(session: Session, project_id: int, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Per operator: calls measured, average talk ratio, average and worst longest silence."""
    from sqlalchemy import func

    rows = session.execute(
        select(Call.operator_name, func.count(RecordingInfo.call_id), func.avg(RecordingInfo.talk_ratio),
               func.avg(RecordingInfo.longest_silence_seconds), func.max(RecordingInfo.longest_silence_seconds),
               func.sum(RecordingInfo.operator_talk_seconds), func.sum(RecordingInfo.caller_talk_seconds))
        .join(RecordingInfo, RecordingInfo.call_id == Call.id)
        .where(Call.project_id == project_id, Call.started_at >= start, Call.started_at < end,
               RecordingInfo.talk_ratio.is_not(None))
        .group_by(Call.operator_name).order_by(Call.operator_name)).all()
    return [{"operator": name or "", "calls": n, "talk_ratio": float(r) if r is not None else None,
             "avg_longest_silence": float(s) if s is not None else None,
             "max_longest_silence": float(m) if m is not None else None,
             "operator_talk_seconds": float(o or 0), "caller_talk_seconds": float(c or 0)}
            for name, n, r, s, m, o, c in rows]
