"""Live, last: ``ami rebuild`` re-derives every call of the session from the stored AMI events and
must give the same records the live listener wrote, call by call (restarts included)."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.live

FIELDS = ("did", "caller", "forwarded_from", "source", "campaign", "attribution", "queue", "started_at",
          "queued_at", "answered_at", "ended_at", "wait_seconds", "queue_wait_seconds", "talk_seconds", "hold_seconds",
          "status", "missed_reason", "operator", "first_call", "tags", "legs")


def snapshot(world) -> dict:
    rows = json.loads(world.cli("calls", "list", "--format", "json", "--limit", "100000",
                                "--from", "2000-01-01").stdout)
    return {r["linkedid"]: {k: r.get(k) for k in FIELDS} for r in rows}


def test_rebuild_gives_the_live_records(world):
    world.stop_run()
    try:
        live = snapshot(world)
        assert len(live) >= 10, "the live session recorded too few calls to compare"
        out = world.cli("ami", "rebuild", "--since", "2000-01-01").stdout
        assert "rebuilt" in out
        rebuilt = snapshot(world)
    finally:
        world.start_run()
    assert set(rebuilt) == set(live)
    diff = []
    for lid, rec in sorted(live.items()):
        for k in FIELDS:
            if rebuilt[lid][k] != rec[k]:
                diff.append(f"{lid} {k}: live {rec[k]!r}, rebuild {rebuilt[lid][k]!r}")
    assert not diff, "\n".join(diff)
