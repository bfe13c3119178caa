"""Live: 30 calls at once on two busy operators (some wait, some give up), and three recorded
calls in the same second, whose recordings must stay apart."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.live_verdict import check
from support.polling import poll

pytestmark = pytest.mark.live

PATIENT, IMPATIENT = 12, 18


@pytest.fixture(scope="module")
def load(world):
    w = world
    w.db_put(**{"ring/121": 1, "talk/121": 2, "ring/122": 1, "talk/122": 2,
                "ring/131": 1, "talk/131": 2, "ring/132": 1, "talk/132": 3, "ring/133": 1, "talk/133": 4})
    rec = [w.call(f"7495000400{i}", f"7916000020{i}", tag=f"recorded-{i}", stay=30) for i in (1, 2, 3)]
    busy = []
    for i in range(PATIENT + IMPATIENT):
        patient = i % 5 in (0, 2)            # 12 of 30, spread through the burst
        busy.append(w.call(f"749500030{i:02d}", f"791600003{i:02d}", tag=f"busy-{i}-{'p' if patient else 'i'}",
                           patience=60 if patient else 5, stay=30))
    w.wait_hungup(busy + rec, timeout=120)
    return busy, rec, w.records(busy + rec)


def test_thirty_calls_at_once_match_asterisk(load, world):
    busy, _, records = load
    bad = []
    answered = abandoned = 0
    for p in busy:
        g = world.ground(p.linkedid)
        connect = g.ql("CONNECT")
        expect = (dict(status="answered", operator=connect[0][3], queue="q_busy") if connect
                  else dict(status="missed", missed_reason="abandoned", queue="q_busy"))
        answered += bool(connect)
        abandoned += bool(g.ql("ABANDON"))
        bad += check(world, p, records.get(p.linkedid), source="Google Ads", attribution="static", **expect)
    assert not bad, "\n".join(bad)
    assert all(p.linkedid in records for p in busy)
    # the burst really had both shapes: callers who waited and callers who gave up
    assert answered >= PATIENT and abandoned >= 5, (answered, abandoned)


def test_recordings_in_the_same_second_stay_apart(load, world):
    _, rec, records = load
    for p in rec:
        bad = check(world, p, records.get(p.linkedid), status="answered", queue="q_rec", source="Radio")
        assert not bad, "\n".join(bad)

    def converted():        # [recordings] format = mp3: the converted file, its originals deleted
        r = world.records(rec, timeout=1)
        return r if all((r[p.linkedid]["recording"] or "").endswith(".mp3") for p in rec) else None
    records = poll(converted, 90, "the recordings job to convert the three recordings", interval=2)
    files = [records[p.linkedid]["recording"] for p in rec]
    assert len(set(files)) == 3, files
    for p in rec:
        path = Path(records[p.linkedid]["recording"])
        if not path.is_absolute():
            path = world.ast.monitor_dir / path
        assert path.exists(), path
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                              "default=nw=1:nk=1", str(path)], stdout=subprocess.PIPE, text=True, check=True)
        # MixMonitor's b option records only while bridged: the file lasts as long as the talk
        assert abs(float(out.stdout) - records[p.linkedid]["talk_seconds"]) <= 1.0, (p.tag, out.stdout)
    # the three calls began within one second: the names must not collide on the Linkedid's dot
    seconds = {p.linkedid.split(".")[0] for p in rec}
    assert len(seconds) <= 2
