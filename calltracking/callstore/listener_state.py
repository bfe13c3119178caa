"""What the AMI listener of one PBX saw (``ami_listener_state``): connection times, counters,
the event classes it received, clock skew; read by ``doctor`` and at a restart."""
from __future__ import annotations

import datetime as dt
import json
from typing import Optional

from sqlalchemy.orm import Session

from calltracking.callstore.rows import utc
from calltracking.models import AmiListenerState

#: Counters the listener reports as running totals (the row keeps the last total).
COUNTERS = ("events", "unknown_events", "malformed_frames", "without_timestamp")
#: Moments the listener reports (epoch seconds; a missing one keeps the stored value).
MOMENTS = ("connected_at", "disconnected_at", "last_event_at")


class ListenerState:
    """The ``ami_listener_state`` row of one PBX, read and written in the caller's session."""

    def __init__(self, pbx_id: str):
        self.pbx_id = pbx_id

    def write(self, s: Session, st: dict) -> None:
        """Merge a report into the row, in the caller's transaction: :data:`MOMENTS` and
        ``clock_skew_ms`` given (not None) replace the stored ones, :data:`COUNTERS` and
        ``stats`` given replace theirs, ``classes`` (class -> last seen) are merged in."""
        row = s.get(AmiListenerState, self.pbx_id)
        if row is None:
            row = AmiListenerState(pbx_id=self.pbx_id, events=0, unknown_events=0, malformed_frames=0,
                                   without_timestamp=0, classes="{}", stats="{}")
            s.add(row)
        for key in MOMENTS:
            if st.get(key) is not None:
                setattr(row, key, utc(st[key]))
        for key in COUNTERS:
            if key in st:
                setattr(row, key, int(st[key]))
        if st.get("clock_skew_ms") is not None:
            row.clock_skew_ms = int(st["clock_skew_ms"])
        if "classes" in st:
            merged = json.loads(row.classes or "{}")
            merged.update(st["classes"])
            row.classes = json.dumps(merged, sort_keys=True)
        if "stats" in st:
            row.stats = json.dumps(st["stats"], sort_keys=True)
        row.updated_at = dt.datetime.now(dt.timezone.utc)

    def read(self, s: Session) -> Optional[dict]:
        """The row as a dict (``classes`` and ``stats`` decoded); None before the first write."""
        row = s.get(AmiListenerState, self.pbx_id)
        if row is None:
            return None
        return {"connected_at": row.connected_at, "disconnected_at": row.disconnected_at,
                "last_event_at": row.last_event_at, "events": row.events,
                "unknown_events": row.unknown_events, "malformed_frames": row.malformed_frames,
                "without_timestamp": row.without_timestamp, "clock_skew_ms": row.clock_skew_ms,
                "classes": json.loads(row.classes or "{}"), "stats": json.loads(row.stats or "{}"),
                "updated_at": row.updated_at}

    def last_event_at(self, s: Session) -> Optional[float]:
        """Asterisk's time of the last event the listener stored (epoch seconds), or None."""
        row = s.get(AmiListenerState, self.pbx_id)
        at = row.last_event_at if row else None
        return at.timestamp() if at else None
