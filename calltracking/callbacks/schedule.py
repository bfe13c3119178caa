"""A project's weekly callback hours, in the project's time zone.

The text has one rule per line: days, then one or more ``HH:MM-HH:MM`` ranges separated by
commas, e.g. ``mon-fri 09:00-18:00`` and ``sat 10:00-13:00,14:00-16:00``. Days are ``mon``
… ``sun``, a range of them (``mon-fri``, ``fri-mon`` wraps) or a list (``mon,wed``). A range
ends before its end minute; ``00:00-24:00`` is the whole day; a range cannot cross midnight
(write two). Lines add up; an empty text means always open. Blank lines and ``#`` comments
are ignored.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class ScheduleError(ValueError):
    """The schedule text does not read (message says which line and why)."""


@dataclass(frozen=True)
class Schedule:
    """Open minutes per weekday (0 = Monday): ``(start, end)`` minutes of the day, end exclusive."""

    days: tuple[tuple[tuple[int, int], ...], ...]
    always: bool = False

    def open_at(self, local: dt.datetime) -> bool:
        if self.always:
            return True
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.days[local.weekday()])


def _days(spec: str, line_no: int) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        a, sep, b = part.partition("-")
        if a not in DAYS or (sep and b not in DAYS):
            raise ScheduleError(f"line {line_no}: unknown day {part!r} (use mon, tue, wed, thu, fri, sat, sun)")
        i = DAYS.index(a)
        j = DAYS.index(b) if sep else i
        while True:
            out.append(i)
            if i == j:
                break
            i = (i + 1) % 7
    return out


def _ranges(spec: str, line_no: int) -> list[tuple[int, int]]:
    out = []
    for part in spec.split(","):
        m = _RANGE.match(part.strip())
        if not m:
            raise ScheduleError(f"line {line_no}: {part!r} is not a time range like 09:00-18:00")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60 or end <= start:
            raise ScheduleError(f"line {line_no}: {part!r} must start before it ends, within one day")
        out.append((start, end))
    return out


def parse(text: str) -> Schedule:
    """The :class:`Schedule` of ``text`` (see the module docstring); :class:`ScheduleError`."""
    days: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    seen = False
    for n, raw in enumerate((text or "").splitlines(), 1):
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        spec, _, ranges = line.partition(" ")
        if not ranges.strip():
            raise ScheduleError(f"line {n}: expected days and hours, e.g. mon-fri 09:00-18:00")
        for d in _days(spec, n):
            days[d].extend(_ranges(ranges.replace(" ", ""), n))
        seen = True
    return Schedule(tuple(tuple(sorted(d)) for d in days), always=not seen)


def next_open(schedule: Schedule, now: dt.datetime, tz: str) -> dt.datetime | None:
    """The first minute at or after ``now`` (aware) when ``schedule`` is open, as UTC; ``now``
    itself when open; None when the schedule has no open minute at all. Local times are
    resolved in ``tz`` (a time a DST change skips opens at the first existing minute after)."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    if schedule.open_at(local):
        return now.astimezone(dt.timezone.utc)
    for offset in range(8):
        day = (local + dt.timedelta(days=offset)).date()
        for start, _end in schedule.days[day.weekday()]:
            wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=start)
            at = wall.replace(tzinfo=zone)
            # a wall time in a DST gap does not exist: the round trip through UTC moves it on
            at = at.astimezone(dt.timezone.utc).astimezone(zone)
            if at > local:
                return at.astimezone(dt.timezone.utc)
    return None
