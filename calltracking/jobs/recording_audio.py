"""What is measured in a recording: duration, each side's talk time, talk ratio, longest silence,
interruptions and time to first operator word (the rules: :mod:`calltracking.jobs.conversation`).

Sides: a *stereo* file is read as caller on the left channel and operator on the right; a
pair of files (``-in``/``-out``, see :mod:`calltracking.jobs.recording_files`) as caller and
operator, padded to the same length. A mono mix has no sides.

* *talk* of a side: the total length of its speech ranges — pydub's silence detection on the
  side downmixed to mono at 16 kHz at most: louder than ``SILENCE_DBFS``, pauses shorter than
  ``SPEECH_GAP_MS`` counted as talk, ``SEEK_MS`` resolution;
* *talk ratio*: the operator's share of the talk, operator / (caller + operator);
* *longest silence*: the longest time inside the conversation (between the first and last
  speech) when neither side spoke; for a mono mix, between speech on the mix.

A mono mix gives the duration and the longest silence only. Reading needs ffmpeg for every
format but WAV (pydub).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calltracking.jobs import conversation
from calltracking.models import Call, RecordingInfo

SILENCE_DBFS = -45.0        # quieter than this is silence
SPEECH_GAP_MS = 500         # pauses shorter than this are part of the talk
SEEK_MS = 10                # resolution of the silence detection


class RecordingError(Exception):
    """A recording cannot be read or written (the message says which file and why)."""


@dataclass
class Analysis:
    """The measures of one recording, in seconds (talk, interruptions, first word: None for a mono mix)."""

    duration: float
    channels: int
    caller_talk: Optional[float] = None
    operator_talk: Optional[float] = None
    longest_silence: Optional[float] = None
    operator_interruptions: Optional[int] = None
    caller_interruptions: Optional[int] = None
    first_operator_word: Optional[float] = None

    @property
    def talk_ratio(self) -> Optional[float]:
        """The operator's share of the talk, operator / (caller + operator), 3 decimals."""
        if self.caller_talk is None or self.operator_talk is None:
            return None
        total = self.caller_talk + self.operator_talk
        return round(self.operator_talk / total, 3) if total else None


# ----------------------------------------------------------------- measuring
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
    """(the audio for playback, its measures) of a call's original file(s)."""
    audio, caller, operator = sides(files)
    result = Analysis(duration=round(len(audio) / 1000.0, 3), channels=audio.channels)
    if caller is not None:
        c, o = speech_ranges(caller), speech_ranges(operator)
        result.caller_talk = sum(b - a for a, b in c) / 1000.0
        result.operator_talk = sum(b - a for a, b in o) / 1000.0
        result.longest_silence = longest_gap(c + o)
        result.operator_interruptions = conversation.interruptions(o, c)
        result.caller_interruptions = conversation.interruptions(c, o)
        result.first_operator_word = conversation.first_word(o)
    else:
        result.longest_silence = longest_gap(speech_ranges(audio))
    return audio, result


# ------------------------------------------------------------------ reports
def operator_talk_stats(session: Session, project_id: int, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Per operator, over the two-sided recordings of calls started in [start, end): calls
    measured, average talk share, average and worst longest silence, the operator's
    interruptions per call (average of ``operator_interruptions``), average time to first
    operator word (over the calls where the operator spoke), talk totals. Plain SQL averages."""
    ri = RecordingInfo
    rows = session.execute(
        select(Call.operator_name, func.count(ri.call_id), func.avg(ri.talk_ratio),
               func.avg(ri.longest_silence_seconds), func.max(ri.longest_silence_seconds),
               func.sum(ri.operator_talk_seconds), func.sum(ri.caller_talk_seconds),
               func.avg(ri.operator_interruptions), func.avg(ri.first_operator_word_seconds))
        .join(ri, ri.call_id == Call.id)
        .where(Call.project_id == project_id, Call.started_at >= start, Call.started_at < end,
               ri.talk_ratio.is_not(None))
        .group_by(Call.operator_name).order_by(Call.operator_name)).all()

    def f(v):
        return float(v) if v is not None else None
    return [{"operator": name or "", "calls": n, "talk_ratio": f(r), "avg_longest_silence": f(s),
             "max_longest_silence": f(m), "operator_talk_seconds": float(o or 0),
             "caller_talk_seconds": float(c or 0), "interruptions_per_call": f(i), "avg_first_word": f(w)}
            for name, n, r, s, m, o, c, i, w in rows]
