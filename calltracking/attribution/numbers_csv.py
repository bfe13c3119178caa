"""All-or-nothing CSV import and export of tracking numbers.

Columns (header row required, order free, names case-insensitive):
``number`` (required), ``project`` (required unless given on the command
line), ``source``, ``campaign``, ``pool``, ``description``,
``callerid_prefix`` (yes/no), ``record`` (yes/no). A row maps the number
statically to ``source`` (and optional ``campaign``) or makes it a member of
``pool``. Missing sources, campaigns and pools are created. Every bad row is
reported with its line number and reason, and then nothing is imported.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Callable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking import csvsafe, phone
from calltracking.models import Campaign, NumberPool, Project, Source, TrackingNumber

COLUMNS = ("number", "project", "source", "campaign", "pool", "description", "callerid_prefix", "record")
MAX_FIELD = 1000


@dataclass
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportFailed(ValueError):
    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__(f"{len(errors)} bad row(s); nothing was imported")


@dataclass
class ImportResult:
    imported: int = 0
    created: dict = field(default_factory=lambda: {"sources": 0, "campaigns": 0, "pools": 0})


def _yesno(v: str, default: bool) -> bool:
    s = (v or "").strip().lower()
    if s == "":
        return default
    if s in ("yes", "y", "true", "1", "да"):
        return True
    if s in ("no", "n", "false", "0", "нет"):
        return False
    raise ValueError(f"expected yes/no, got {v!r}")


def read_rows(text: str, columns, required, aliases: dict | None = None):
    """Read a CSV file's header and rows (comma, semicolon or tab separated; BOM allowed).

    Returns ``(header, rows)``; ``rows`` yields ``(line number, {column: value})``, or
    ``{"__error__": reason}`` for a row with the wrong number of fields. A bad header
    (unknown, missing required or repeated columns) raises :class:`ImportFailed` at once.
    """
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFailed([RowError(1, "the file is empty (a header row is required)")]) from None
    aliases = aliases or {}
    header = [aliases.get(h, h) for h in (h.strip().lower().lstrip("\ufeff") for h in header)]
    problems = []
    unknown = [h for h in header if h not in columns]
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
    problems += [f"column {c!r} is required" for c in required if c not in header]
    problems += [f"column {h!r} appears twice" for h in sorted({h for h in header if header.count(h) > 1})]
    if problems:
        raise ImportFailed([RowError(1, "; ".join(problems) + f" (known: {', '.join(columns)})")])

    def rows():
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield reader.line_num, {"__error__": f"expected {len(header)} fields, got {len(values)}"}
                continue
            yield reader.line_num, {h: v.strip() for h, v in zip(header, values)}

    return header, rows()


def import_numbers(session: Session, text: str, region: str = "RU", default_project: str | None = None,
                   progress: Optional[Callable[[int], None]] = None) -> ImportResult:
    """Validate every row, then import all of them in the caller's transaction, or none."""
    _, rows = read_rows(text, COLUMNS, ("number",))
    errors: list[RowError] = []
    projects = {p.key: p for p in session.scalars(select(Project))}
    seen: dict[str, int] = {}
    valid: list[tuple[int, dict, str]] = []
    count = 0
    for line, row in rows:
        count += 1
        if progress and count % 500 == 0:
            progress(500)
        if "__error__" in row:
            errors.append(RowError(line, row["__error__"]))
            continue
        too_long = [k for k, v in row.items() if len(v) > MAX_FIELD]
        if too_long:
            errors.append(RowError(line, f"field {too_long[0]!r} is longer than {MAX_FIELD} characters"))
            continue
        try:
            e164 = phone.normalize(row.get("number", ""), region)
        except phone.InvalidNumber as e:
            errors.append(RowError(line, str(e)))
            continue
        key = row.get("project") or default_project
        if not key:
            errors.append(RowError(line, "no project (add a 'project' column or use --project)"))
            continue
        if key not in projects:
            errors.append(RowError(line, f"project {key!r} does not exist"))
            continue
        if row.get("campaign") and not row.get("source"):
            errors.append(RowError(line, f"number {e164}: a campaign needs a source"))
            continue
        if not row.get("source") and not row.get("pool"):
            errors.append(RowError(line, f"number {e164}: give a 'source' (static) or a 'pool' (dynamic)"))
            continue
        try:
            row["callerid_prefix"] = _yesno(row.get("callerid_prefix", ""), True)
            row["record"] = _yesno(row.get("record", ""), True)
        except ValueError as e:
            errors.append(RowError(line, str(e)))
            continue
        if e164 in seen:
            errors.append(RowError(line, f"number {e164} appears twice (first on line {seen[e164]})"))
            continue
        seen[e164] = line
        valid.append((line, row, e164))

    if seen:
        taken = set()
        numbers = list(seen)
        for i in range(0, len(numbers), 500):
            chunk = numbers[i:i + 500]
            taken.update(session.scalars(select(TrackingNumber.number).where(
                TrackingNumber.number.in_(chunk), TrackingNumber.active.is_(True))))
        for line, row, e164 in valid:
            if e164 in taken:
                errors.append(RowError(line, f"number {e164} is already mapped; remove it first"))
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportFailed(errors)

    result = ImportResult()
    sources: dict[tuple[int, str], Source] = {}
    campaigns: dict[tuple[int, str], Campaign] = {}
    pools: dict[tuple[int, str], NumberPool] = {}
    for s in session.scalars(select(Source)):
        sources[(s.project_id, s.name)] = s
    for c in session.scalars(select(Campaign)):
        campaigns[(c.source_id, c.name)] = c
    for p in session.scalars(select(NumberPool)):
        pools[(p.project_id, p.name)] = p

    for _line, row, e164 in valid:
        project = projects[row.get("project") or default_project]
        source = campaign = pool = None
        if row.get("source"):
            source = sources.get((project.id, row["source"]))
            if source is None:
                source = Source(project_id=project.id, name=row["source"], channel="other",
                                short_label=row["source"])
                session.add(source)
                session.flush()
                sources[(project.id, source.name)] = source
                result.created["sources"] += 1
        if row.get("campaign"):
            campaign = campaigns.get((source.id, row["campaign"]))
            if campaign is None:
                campaign = Campaign(project_id=project.id, source_id=source.id, name=row["campaign"])
                session.add(campaign)
                session.flush()
                campaigns[(source.id, campaign.name)] = campaign
                result.created["campaigns"] += 1
        if row.get("pool"):
            pool = pools.get((project.id, row["pool"]))
            if pool is None:
                pool = NumberPool(project_id=project.id, name=row["pool"],
                                  source_id=source.id if source else None)
                session.add(pool)
                session.flush()
                pools[(project.id, pool.name)] = pool
                result.created["pools"] += 1
        session.add(TrackingNumber(
            project_id=project.id, number=e164, kind="pool" if pool else "static",
            source_id=source.id if source else None, campaign_id=campaign.id if campaign else None,
            pool_id=pool.id if pool else None, description=row.get("description", ""),
            callerid_prefix=row["callerid_prefix"], record=row["record"]))
        result.imported += 1
    session.flush()
    if progress:
        progress(count % 500)
    return result


def export_numbers(session: Session, project: str | None = None) -> str:
    out = io.StringIO()
    w = csvsafe.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    stmt = select(TrackingNumber).where(TrackingNumber.active.is_(True)).order_by(TrackingNumber.number)
    for tn in session.scalars(stmt):
        if project and tn.project.key != project:
            continue
        w.writerow([tn.number, tn.project.key, tn.source.name if tn.source else "",
                    tn.campaign.name if tn.campaign else "", tn.pool.name if tn.pool else "",
                    tn.description, "yes" if tn.callerid_prefix else "no", "yes" if tn.record else "no"])
    return out.getvalue()
