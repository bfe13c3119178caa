"""What the report pages add around a report: date presets, the previous period,
the totals row and its change against the previous period, and the chart's broken
axis when one bar dominates. Pure functions over :class:`~calltracking.reports.queries.Report`
rows (no database)."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from calltracking.reports.rollup import month_start

PRESETS = ("today", "yesterday", "7d", "30d", "this_month", "last_month")
SUMMED = ("calls", "answered", "missed", "first", "repeat", "deals", "value", "spend", "taken",
          "missed_rung", "offered", "targets", "requests", "calls_made", "reached")
# averages: (sum column behind it, weight column, else weight column)
AVERAGES = {"avg_wait": ("calls", "taken"), "avg_talk": ("answered", "taken")}
RATIOS = {"cost_per_call": ("spend", "calls"), "cost_per_deal": ("spend", "deals"),
          "cost_per_target": ("spend", "targets")}
SHARES = {"first_share": ("first", "repeat")}      # percent of first among first + repeat
NO_TOTALS = ("heatmap", "missed_heatmap", "concurrency")
DOMINANT_RATIO = 3


def preset_range(name: str, today: dt.date) -> Optional[tuple[dt.date, dt.date]]:
    """(first, last local day) of a named period ending with ``today``; None if unknown."""
    one = dt.timedelta(days=1)
    if name == "today":
        return today, today
    if name == "yesterday":
        return today - one, today - one
    if name == "7d":
        return today - dt.timedelta(days=6), today
    if name == "30d":
        return today - dt.timedelta(days=29), today
    if name == "this_month":
        return month_start(today), today
    if name == "last_month":
        last = month_start(today) - one
        return month_start(last), last
    return None


def preset_of(date_from: dt.date, date_to: dt.date, today: dt.date) -> Optional[str]:
    """The preset a range is (for the active button), or None."""
    return next((p for p in PRESETS if preset_range(p, today) == (date_from, date_to)), None)


def previous_period(date_from: dt.date, date_to: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length just before (a whole calendar month: the month before)."""
    one = dt.timedelta(days=1)
    if date_from.day == 1 and (date_to + one).day == 1:
        months_back = (date_to.year - date_from.year) * 12 + date_to.month - date_from.month + 1
        y, m = divmod(date_from.year * 12 + date_from.month - 1 - months_back, 12)
        return dt.date(y, m + 1, 1), date_from - one
    days = (date_to - date_from).days + 1
    return date_from - dt.timedelta(days=days), date_from - one


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def totals(name: str, columns: list[str], rows: list[list]) -> Optional[list]:
    """The totals row of a table report, aligned with ``columns`` (None where a total means
    nothing: names, days, peaks); None for reports that have no totals. Averages are
    weighted by the calls behind them, cost per call/deal recomputed from the sums."""
    if name in NO_TOTALS:
        return None
    if "kind" in columns:                  # devices: each call counted once per kind
        k = columns.index("kind")
        rows = [r for r in rows if r[k] == "device"]
    idx = {c: i for i, c in enumerate(columns)}
    # column by column (2,000 keyword rows: 3 ms instead of 14 ms row by row)
    col = dict(zip(columns, map(list, zip(*rows)))) if rows else {c: [] for c in columns}
    out: dict[str, Optional[float]] = {}
    for c in columns:
        if c in SUMMED:
            vals = [v for v in col[c] if v is not None]
            if all(type(v) is int for v in vals):
                out[c] = sum(vals)
            else:
                out[c] = round(sum(map(_num, vals)), 2)
    for c, (first, second) in AVERAGES.items():
        if c not in idx:
            continue
        w = first if first in idx else second
        if w not in idx:
            out[c] = None
            continue
        pairs = [(_num(v), _num(x)) for v, x in zip(col[c], col[w]) if v is not None]
        den = sum(x for _, x in pairs)
        out[c] = round(sum(v * x for v, x in pairs) / den, 1) if den else None
    for c, (a, b) in RATIOS.items():
        if c in idx:
            given = [v for v in col[a] if v is not None] if a in idx else []
            out[c] = round(sum(map(_num, given)) / out[b], 2) if given and out.get(b) else None
    for c, (a, b) in SHARES.items():
        if c in idx and a in out and b in out:
            out[c] = round(100.0 * out[a] / (out[a] + out[b]), 1) if out[a] + out[b] else None
    return [out.get(c) for c in columns]


def change(current: Optional[list], previous: Optional[list]) -> Optional[list]:
    """Per column of the totals row: (Δ, % or None) against the previous period; None where
    either side has no figure (or there are no totals)."""
    if current is None or previous is None:
        return None
    out = []
    for a, b in zip(current, previous):
        if a is None or b is None:
            out.append(None)
            continue
        delta = round(_num(a) - _num(b), 2)
        if isinstance(a, int) and isinstance(b, int):
            delta = int(delta)
        out.append((delta, round(100.0 * delta / _num(b), 1) if _num(b) else None))
    return out


def cap_dominant(totals_: list) -> dict:
    """A broken value axis when one bar is more than DOMINANT_RATIO times the next: the
    axis stops a little above the second bar, the big bar is drawn cut at the top and
    its label carries its real total (``clipped``: {bar index: total}). A log scale would
    misrepresent the stacked answered/missed parts; leaving the bar out would hide it."""
    ranked = sorted(((v or 0, i) for i, v in enumerate(totals_)), reverse=True)
    if len(ranked) < 2 or ranked[1][0] <= 0 or ranked[0][0] <= DOMINANT_RATIO * ranked[1][0]:
        return {}
    big, i = ranked[0]
    return {"y_max": int(ranked[1][0] * 1.25) + 1, "clipped": {str(i): big}}
