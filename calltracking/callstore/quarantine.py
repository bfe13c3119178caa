"""Bad AMI events: set aside or repaired, never blocking the writer; counted and logged once.

Before it is interpreted each event is checked (:mod:`calltracking.interpret.frames`): one with
a NUL byte, a value over ``MAX_VALUE`` characters or a ``Linkedid``/``Uniqueid`` longer than
the columns is set aside (:func:`refusal`); a ``Timestamp`` the stream's clock does not believe
is replaced by that clock (:class:`~calltracking.interpret.frames.StreamClock`); bytes that are
not UTF-8 stay U+FFFD. An event a handler fails on is set aside (:data:`HANDLER_ERROR`), and so
is one the database refuses (:data:`WRITE_FAILED`, found by :mod:`calltracking.callstore.ingest`).
Each one is logged once with its text (escaped, cut; at most :data:`LOG_BURST` lines a minute,
the rest counted) and counted by reason (``ami_listener_state.stats.quarantined``,
``calltracking_ami_events_quarantined_total``).
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Optional

from calltracking import metrics
from calltracking.interpret.frames import EARLIEST, ID_TOO_LONG, MAX_ID, TIMESTAMP, WINDOW, shown

log = logging.getLogger("calltracking.ami")

#: Reasons of the events set aside after the edge (the others are the frames module's).
WRITE_FAILED, HANDLER_ERROR = "write_failed", "handler_error"
#: Lines about bad events logged per minute, at most (a flood of them is counted, not logged).
LOG_BURST = 20


def refusal(ev: dict) -> Optional[str]:
    """Why an event is set aside unread (the reader's mark, or an id longer than the columns);
    None for an event to interpret."""
    reason = ev.get("_quarantine")
    if reason is None and (len(ev.get("Linkedid", "")) > MAX_ID or len(ev.get("Uniqueid", "")) > MAX_ID):
        reason = ID_TOO_LONG
    return reason


def sane(raw) -> Optional[float]:
    """A time the reconciliation may use: a finite number after 2000 and not a day ahead of ours."""
    try:
        ts = float(raw)
    except (TypeError, ValueError):
        return None
    return ts if EARLIEST <= ts <= time.time() + WINDOW else None


class Quarantine:
    """The bad events of one listener: ``counts`` by reason, and their log lines."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self._log_until, self._log_left, self._log_muted = 0.0, LOG_BURST, 0

    def set_aside(self, reason: str, ev: dict, kept: str = "", why: str = "") -> None:
        """Count a bad event by ``reason`` and log it once with its text (``kept``: what was
        done instead of skipping it; ``why``: the error it caused)."""
        self.counts[reason] += 1
        metrics.AMI_QUARANTINED.labels(reason).inc()
        now = time.monotonic()
        if now >= self._log_until:
            if self._log_muted:
                log.warning("%d more bad AMI event(s) counted but not logged in the last minute", self._log_muted)
            self._log_until, self._log_left, self._log_muted = now + 60.0, LOG_BURST, 0
        if self._log_left <= 0:
            self._log_muted += 1
            return
        self._log_left -= 1
        if kept:
            log.warning("AMI event with a bad value (%s) kept, %s: %s", reason, kept, shown(ev),
                        extra={"linkedid": ev.get("Linkedid", "")[:MAX_ID] or None})
        else:
            log.warning("AMI event set aside (%s%s): %s", reason, f": {why}" if why else "", shown(ev),
                        extra={"linkedid": ev.get("Linkedid", "")[:MAX_ID] or None})

    def vet_snapshot(self, snapshot: list[dict]) -> list[dict]:
        """The frames of a reconnect's snapshot without the bad ones; a ``CTSync`` time that is
        not a sane clock is dropped (the plan then uses the writer's clock)."""
        out = []
        for f in snapshot:
            reason = refusal(f)
            if reason is not None:
                self.set_aside(reason, f)
                continue
            if f.get("Event") == "CTSync":
                for key in ("Timestamp", "_lost"):
                    if f.get(key) is not None and sane(f[key]) is None:
                        f.pop(key)
            out.append(f)
        return out

    def vet_made(self, ev: dict, now: float) -> float:
        """An event the reconciliation wrote: its time (``now`` when it is not a sane one)."""
        raw = ev.get("Timestamp")
        if raw is None:
            return now
        ts = sane(raw)
        if ts is None:
            self.set_aside(TIMESTAMP, ev, f"Timestamp replaced by the writer's clock, {now:.6f}")
            ev["Timestamp"], ts = f"{now:.6f}", now
        return ts
