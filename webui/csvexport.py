"""The CSV files of the web UI (the journal, the reports) as the user's spreadsheet opens them.

- a UTF-8 BOM first (:data:`BOM`): Excel then reads the file as UTF-8, Cyrillic intact;
- headers in the user's language (the journal's English header: the field names of ``calls list``
  and the API, which scripts read);
- in Russian, ``;`` between cells and ``,`` before decimals (what a Russian Excel expects);
  in English ``,`` and ``.``; numbers are never grouped;
- the journal's times in the call's project time zone, to the second (``2026-12-03 14:05:09``),
  plus the start as ISO 8601 UTC (``started_at_utc``) for joining with other systems;
- a report's rows, then what its page shows under the table (:func:`report_footer`): the totals
  row, and when the page compares with the previous period, that period's totals, the change and
  the change in percent, each figure under its column.

Every cell still goes through :func:`calltracking.csvsafe.writer` (formulas made inert).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import gettext as _, lazy_gettext as _l

from calltracking import csvsafe
from calltracking.calls import export as call_export

from webui.display import locale_name, zone

BOM = "\ufeff"
#: the journal CSV: the fields of ``calls list`` (times local), then the call card's own
JOURNAL_FIELDS = call_export.FIELDS + ("time_zone", "started_at_utc", "tags", "value", "comment", "reason")
LOCAL_TIMES = ("started_at", "queued_at", "answered_at", "ended_at")
JOURNAL_TITLES = {
    "pbx_id": _l("PBX"), "linkedid": _l("Linkedid"), "project": _l("Project"), "did": _l("Number dialed"),
    "caller": _l("Caller"), "caller_name": _l("Caller name"),
    "forwarded_from": _l("Forwarded from"), "source": _l("Source"), "campaign": _l("Campaign"),
    "attribution": _l("Method"), "queue": _l("Queue"), "started_at": _l("Started"), "queued_at": _l("Queued"),
    "answered_at": _l("Answered"), "ended_at": _l("Ended"), "wait_seconds": _l("Wait, s"),
    "queue_wait_seconds": _l("Queue wait, s"), "talk_seconds": _l("Talk, s"), "hold_seconds": _l("Hold, s"),
    "status": _l("Status"), "missed_reason": _l("Missed reason"), "operator": _l("Operator"),
    "first_call": _l("First call"), "time_to_call_seconds": _l("Time to call, s"), "recording": _l("Recording"),
    "is_target": _l("Target call"),
    "time_zone": _l("Time zone"), "started_at_utc": _l("Started, UTC"), "tags": _l("Tags"), "value": _l("Value"),
    "comment": _l("Comment"), "reason": _l("Reason"),
}


def delimiter() -> str:
    return ";" if locale_name() == "ru" else ","


def writer(buf, **kw):
    """:func:`calltracking.csvsafe.writer` with the user's delimiter."""
    return csvsafe.writer(buf, delimiter=delimiter(), **kw)


def number(v):
    """A cell: numbers with the user's decimal separator, no grouping; others as they are."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float, Decimal)):
        return str(v).replace(".", ",") if locale_name() == "ru" else str(v)
    return v


def titles(columns, table: dict, english_keys: bool = False) -> list:
    """The header row: ``table``'s titles in the user's language; ``english_keys``: in English,
    the field names themselves (the journal CSV: the fields of ``calls list`` and the API)."""
    if english_keys and locale_name() == "en":
        return list(columns)
    return [str(table.get(c, c)) for c in columns]


def _local(v: dt.datetime | None, tz) -> str | None:
    if v is None:
        return None
    if v.tzinfo is None:
        v = v.replace(tzinfo=dt.timezone.utc)
    return v.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def journal_row(call) -> list:
    """One call of the journal CSV, in :data:`JOURNAL_FIELDS` order."""
    d = call_export.call_to_dict(call, with_legs=False)
    tz_name = call.project.timezone if call.project is not None else None
    tz = zone(tz_name)
    for k in LOCAL_TIMES:
        d[k] = _local(getattr(call, k), tz)
    d["time_zone"] = tz.key
    started = call.started_at
    if started is not None:
        started = (started if started.tzinfo else started.replace(tzinfo=dt.timezone.utc))
        d["started_at_utc"] = started.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()
    d["tags"] = " ".join(sorted(t.name for t in call.tags))
    d["value"] = call.value
    d["comment"], d["reason"] = call.comment, call.closed_reason
    return [number(d.get(k)) for k in JOURNAL_FIELDS]


def report_footer(columns, cmp: dict) -> list[list]:
    """The rows a report CSV adds under its table, as the page shows them (``cmp``: the page's
    ``totals``, ``previous``, ``change`` and ``prev_range``): "Total"; with the comparison
    "Previous period <first> – <last>", "Change" (Δ) and "Change, %". Each row's label stands in
    the first column the page shows (not ``key``), every figure under its own column, formatted
    as the rows (:func:`number`); no figure: an empty cell."""
    total = cmp.get("totals")
    if not total:
        return []
    at = next((i for i, c in enumerate(columns) if c != "key"), 0)

    def row(label, values):
        out = [number(v) for v in values]
        out[at] = label
        return out

    rows = [row(_("Total"), total)]
    if cmp.get("previous") is not None and cmp.get("change") is not None:
        first, last = cmp["prev_range"]
        rows.append(row(f"{_('Previous period')} {first.isoformat()} – {last.isoformat()}", cmp["previous"]))
        rows.append(row(_("Change"), [None if d is None else d[0] for d in cmp["change"]]))
        rows.append(row(_("Change, %"), [None if d is None else d[1] for d in cmp["change"]]))
    return rows
