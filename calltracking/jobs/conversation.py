"""Conversation measures from the two sides of a recording: pure functions over speech ranges.

A side's *speech ranges* are ``[start_ms, end_ms)`` from the start of the recording (see
:func:`calltracking.jobs.recording_audio.speech_ranges`: detection resolution ``SEEK_MS``,
pauses under ``SPEECH_GAP_MS`` belong to the range). MixMonitor records with its ``b`` option,
so the recording starts when the caller is bridged with the operator: the answer.

* **interruption** of side A by side B: B starts a speech range while A is already speaking
  (A's range began strictly before), and both speak together for at least
  :data:`INTERRUPT_MIN_MS` from B's start. A simultaneous start is no interruption; a
  backchannel shorter than the threshold ("uh-huh" over the other side) is none either. Each
  range of B interrupts at most once.
* **time to first operator word**: seconds from the start of the recording (the answer) to the
  start of the operator's first speech range; None when the operator never spoke.
* **talk share** and **longest silence**: :mod:`calltracking.jobs.recording_audio`.
"""
from __future__ import annotations

import bisect
from typing import Optional

INTERRUPT_MIN_MS = 600      # speaking together at least this long after the start is an interruption

Ranges = list[tuple[int, int]]


def interruptions(by: Ranges, of: Ranges, min_overlap_ms: int = INTERRUPT_MIN_MS) -> int:
    """How many times the side with speech ``by`` interrupted the side with speech ``of``
    (``of``: non-overlapping ranges, as :func:`~calltracking.jobs.recording_audio.speech_ranges`
    gives them). O(n log m): the one range of ``of`` that can be under way is found by bisection."""
    of = sorted(of)
    starts = [a for a, _b in of]
    count = 0
    for start, end in by:
        i = bisect.bisect_left(starts, start) - 1       # the last range of ``of`` begun before
        if i >= 0 and start < of[i][1] and min(end, of[i][1]) - start >= min_overlap_ms:
            count += 1
    return count


def first_word(ranges: Ranges) -> Optional[float]:
    """Seconds from the start of the recording to the first speech of this side (None: silent)."""
    return min(a for a, _b in ranges) / 1000.0 if ranges else None


MEASURES = ("duration_seconds", "channels", "caller_talk_seconds", "operator_talk_seconds", "talk_ratio",
            "longest_silence_seconds", "first_operator_word_seconds", "operator_interruptions",
            "caller_interruptions")


def as_json(info) -> Optional[dict]:
    """A call's measures (its ``recording_info`` row) as JSON values, None until measured.
    A mono mix gives null for every measure that needs the two sides."""
    if info is None or info.status != "ok":
        return None
    out = {}
    for k in MEASURES:
        v = getattr(info, k)
        out[k] = v if v is None or isinstance(v, int) else float(v)
    return out
