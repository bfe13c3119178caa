"""The restart recordings (``tests/ami/fixtures/restarts/``, made by ``tests/ami/live_restarts.py``).

:class:`Recording` reads one scenario: the raw AMI stream with its markers, the queue_log and
CDR lines Asterisk wrote meanwhile, and what the live listener recorded. :meth:`Recording.expected`
interprets the whole stream without interruption: the records a listener that never stopped
gives, against which a restarted one is compared (:meth:`Recording.differences`: same status,
reason, operator and legs; every time within 1 s). :class:`RecordedAsterisk` serves the stream
like :class:`support.ami_server.FakeAsterisk` and answers a listener's sync with what Asterisk answered
at that moment of the recording (Ping's clock, QueueStatus, CoreShowChannels).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from pathlib import Path
from typing import Optional

from calltracking.interpret import Interpreter
from support.ami_server import FakeAsterisk, headers, split_frames

#: Largest difference allowed between a restarted listener's times and the uninterrupted ones.
TOLERANCE = 1.0


def epoch(iso: Optional[str]) -> Optional[float]:
    return dt.datetime.fromisoformat(iso).timestamp() if iso else None


class Sync:
    """What Asterisk answered the recorder's sync ``h6-sync-<n>-*`` (as a listener logging in then)."""

    def __init__(self, n: int):
        self.n = n
        self.at: Optional[float] = None     # the Ping answer's Timestamp
        self.position = 0                   # script frames before it
        self.queues: list[bytes] = []
        self.channels: list[bytes] = []


class Recording:
    def __init__(self, base: Path, raw: bytes, queue_log: str, cdr: str, meta: dict):
        self.base, self.queue_log, self.cdr, self.meta = base, queue_log, cdr, meta
        self.frames: list[bytes] = []       # the events to serve, in order
        self.marks: dict[str, tuple[int, float]] = {}    # name -> (script position, Asterisk time)
        self.syncs: dict[int, Sync] = {}
        self.caller_side: dict[str, set] = {}
        for frame in split_frames(raw):
            if frame.startswith(b"Asterisk Call Manager/"):
                continue            # a new session (Asterisk restarted): the banner and the login answer
            h = headers(frame)
            aid = h.get("ActionID", "")
            if aid.startswith("h6-mark-") and "Response" in h:
                self.marks[aid[len("h6-mark-"):]] = (len(self.frames), float(h["Timestamp"]))
            elif aid.startswith("h6-sync-"):
                n = int(aid.split("-")[2])
                s = self.syncs.setdefault(n, Sync(n))
                if aid.endswith("-ping") and "Timestamp" in h:
                    s.at, s.position = float(h["Timestamp"]), len(self.frames)
                elif aid.endswith("-queues") and "Event" in h:
                    s.queues.append(frame)
                elif aid.endswith("-channels") and h.get("Event") == "CoreShowChannel":
                    s.channels.append(frame)
            elif "Event" in h and not aid:
                self.frames.append(frame)

    @classmethod
    def load(cls, base) -> "Recording":
        base = Path(base)
        read = lambda ext: base.with_name(base.name + ext).read_text() if base.with_name(base.name + ext).exists() else ""
        meta = json.loads(read(".json") or "{}")
        return cls(base, base.with_name(base.name + ".ami").read_bytes(), read(".queue_log"), read(".cdr.csv"), meta)

    # ------------------------------------------------------------------ truth
    def events(self):
        for frame in self.frames:
            h = headers(frame)
            yield h, float(h.get("Timestamp") or 0)

    def expected(self) -> dict:
        """{linkedid: record} of every inbound call, the stream interpreted without a gap."""
        it = Interpreter()
        for h, ts in self.events():
            it.feed(h, ts)
        calls = {lid: call for lid, call in it.calls.items() if call.inbound and call.queued_at is not None}
        self.caller_side = {lid: set(call.caller_side) for lid, call in calls.items()}
        return {lid: call.record() for lid, call in calls.items()}

    def queue_log_lines(self, until: Optional[float] = None) -> str:
        """The queue_log lines written up to Asterisk time ``until`` (all by default)."""
        out = []
        for line in self.queue_log.splitlines():
            head = line.split("|", 1)[0]
            if head.isdigit() and (until is None or int(head) <= until):
                out.append(line + "\n")
        return "".join(out)

    def queue_log_truth(self, exp: dict) -> str:
        """Asterisk's own figures for a call: queue_log's hold and talk seconds (whole seconds)."""
        side = self.caller_side.get(exp["linkedid"], set())
        parts = []
        for line in self.queue_log.splitlines():
            f = line.split("|")
            if len(f) > 5 and f[1] in side:
                if f[4] == "CONNECT":
                    parts.append(f"CONNECT@{f[0]} {f[3]} hold={f[5]}")
                elif f[4].startswith("COMPLETE"):
                    parts.append(f"{f[4]} talk={f[6]}")
                elif f[4] in ("ABANDON", "EXITWITHTIMEOUT"):
                    parts.append(f"{f[4]}@{f[0]}")
        return ", ".join(parts) or "-"

    def cdr_rows(self) -> list[list[str]]:
        return list(csv.reader(io.StringIO(self.cdr)))

    # ------------------------------------------------------------------ comparison
    @staticmethod
    def differences(got: dict, exp: dict, tolerance: float = TOLERANCE) -> list[str]:
        """What differs between a record of ``calls list`` (``got``) and an expected record:
        status, reason, operator and legs exactly, times and seconds within ``tolerance``."""
        out = []
        for k in ("status", "missed_reason"):
            if got[k] != exp[k]:
                out.append(f"{k} {got[k]!r} != {exp[k]!r}")
        if (got["operator"] or "") != (exp["operator_name"] or ""):
            out.append(f"operator {got['operator']!r} != {exp['operator_name']!r}")
        for k in ("started_at", "queued_at", "answered_at", "ended_at"):
            a, b = epoch(got[k]), exp[k]
            if (a is None) != (b is None) or (a is not None and abs(a - b) > tolerance):
                out.append(f"{k} {a} != {b}")
        for k in ("wait_seconds", "queue_wait_seconds", "talk_seconds", "hold_seconds"):
            a, b = got[k], exp[k]
            if (a is None) != (b is None) or (a is not None and abs(a - b) > tolerance):
                out.append(f"{k} {a} != {b}")
        mine = sorted((leg["operator"] or "", leg["kind"], leg["outcome"], epoch(leg["rung_at"]) or 0,
                       epoch(leg["answered_at"]), epoch(leg["ended_at"])) for leg in got["legs"])
        theirs = sorted((leg["operator_name"], leg["kind"], leg["outcome"], leg["rung_at"] or 0, leg["answered_at"],
                         leg["ended_at"]) for leg in exp["legs"])
        if [m[:3] for m in mine] != [t[:3] for t in theirs]:
            out.append(f"legs {[m[:3] for m in mine]} != {[t[:3] for t in theirs]}")
        else:
            for m, t in zip(mine, theirs):
                for a, b, what in zip(m[3:], t[3:], ("rung_at", "answered_at", "ended_at")):
                    if (a is None) != (b is None) or (a is not None and abs(a - b) > tolerance):
                        out.append(f"leg {m[0]} {what} {a} != {b}")
        return out


class RecordedAsterisk(FakeAsterisk):
    """:class:`FakeAsterisk` serving a recording; a sync is answered as Asterisk answered the
    recorder's sync ``use(n)`` (until then, from the server's own view, at the script's clock)."""

    def __init__(self, recording: Recording, **kw):
        self.recording = recording
        self.sync: Optional[Sync] = None
        super().__init__(**kw)
        self.add(recording.frames)

    @property
    def clock_offset(self) -> float:
        """Ping answers Asterisk's time of the recording (the chosen sync's, else the script's)."""
        at = self.sync.at if self.sync is not None else self.vclock
        return at - time.time()

    @clock_offset.setter
    def clock_offset(self, value) -> None:
        pass

    def use(self, n: int) -> None:
        self.sync = self.recording.syncs[n]

    def _answer(self, frames: list[bytes], idl: str) -> list[str]:
        out = []
        for f in frames:
            lines = [ln for ln in f.decode("utf-8", "replace").split("\r\n") if ln and not ln.startswith("ActionID: ")]
            out.append("\r\n".join(lines[:1] + [idl.rstrip("\r\n")] + lines[1:]) + "\r\n\r\n")
        return out

    def _channels(self, idl: str) -> bytes:
        if self.sync is None:
            return super()._channels(idl)
        out = [f"Response: Success\r\n{idl}EventList: start\r\nMessage: Channels will follow\r\n\r\n"]
        out += self._answer(self.sync.channels, idl)
        out.append(f"Event: CoreShowChannelsComplete\r\n{idl}EventList: Complete\r\n"
                   f"ListItems: {len(self.sync.channels)}\r\n\r\n")
        return "".join(out).encode()

    def _queues(self, idl: str) -> bytes:
        if self.sync is None:
            return super()._queues(idl)
        out = [f"Response: Success\r\n{idl}EventList: start\r\nMessage: Queue status will follow\r\n\r\n"]
        out += self._answer(self.sync.queues, idl)
        return "".join(out).encode()

    def emit_to(self, position: int) -> int:
        """Send the script up to ``position`` (a mark's or a sync's)."""
        return self.emit(max(0, position - self.cursor))

    def away(self, n: int) -> None:
        """The listener is away until sync ``n``: its connection is cut, the script runs on unheard
        to the sync, and the sync's answers are the ones given from then on (one loop step, see
        :meth:`FakeAsterisk.drop`)."""
        self.drop(skip_to=self.recording.syncs[n].position, then=lambda: self.use(n))
