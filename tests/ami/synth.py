"""Synthetic AMI streams built from the recordings: many copies of the recorded calls with
distinct Uniqueids/Linkedids/bridges/channel names, time-shifted and interleaved like
concurrent calls. Used by the 10k-event burst test and bench/ami_ingest.py."""
from __future__ import annotations

import heapq
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
REC = HERE.parents[0] / "fixtures" / "asterisk-22"
SCENARIOS = ("answered_queue", "abandoned_queue", "ring_no_answer_then_answered", "agi_down_default_queue",
             "direct_dial_no_queue", "two_concurrent")

_UID = re.compile(rb"(?<![\d.])(1795\d{6})\.(\d{1,5})(?!\d)")
_TS = re.compile(rb"Timestamp: (\d+\.\d+)")
_UUID = re.compile(rb"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-)[0-9a-f]{12}")
_CHAN = re.compile(rb"-([0-9a-f]{8})(?=[;\r])")


def _template(name: str):
    from amipaths import as_registered
    from amiserver import load

    frames = [f for f in load(REC / f"{name}.ami") if f.startswith(b"Event: ") and b"Timestamp: " in f]
    expected = [as_registered(e) for e in json.loads((REC / "expected_calls.json").read_text())
                if e["scenario"] == name]
    return frames, expected


def _copy(frames, k: int, offset: float):
    def uid(m):
        return b"%s.%d" % (m.group(1), int(m.group(2)) + k * 1000)

    def ts(m):
        return b"Timestamp: %.6f" % (float(m.group(1)) + offset)

    out = []
    for f in frames:
        f = _UID.sub(uid, f)
        f = _TS.sub(ts, f)
        f = _UUID.sub(lambda m: m.group(1) + b"%012x" % k, f)
        f = _CHAN.sub(lambda m: b"-%08x" % (int(m.group(1), 16) + k * 0x100), f)
        out.append((float(_TS.search(f).group(1)), k, f))
    return out


def _shift_expected(exp: dict, k: int, offset: float) -> dict:
    e = dict(exp)
    a, b = e["linkedid"].split(".")
    e["linkedid"] = f"{a}.{int(b) + k * 1000}"
    for key in ("started_at", "queued_at", "answered_at", "ended_at"):
        if key in e:
            e[key] = e[key] + offset
    return e


def burst(min_events: int, spacing: float = 0.05):
    """(frames, {linkedid: expected record}) with at least ``min_events`` events."""
    templates = [_template(n) for n in SCENARIOS]
    base = min(float(_TS.search(t[0][0]).group(1)) for t in templates)
    streams, expected, total, k = [], {}, 0, 0
    while total < min_events:
        frames, exps = templates[k % len(templates)]
        first = float(_TS.search(frames[0]).group(1))
        offset = (base - first) + k * spacing        # copies start `spacing` seconds apart
        streams.append(_copy(frames, k + 1, offset))
        for e in exps:
            se = _shift_expected(e, k + 1, offset)
            expected[se["linkedid"]] = se
        total += sum(1 for f in frames if b"ActionID: " not in f)
        k += 1
    merged = [f for _, _, f in heapq.merge(*streams)]
    return merged, expected
