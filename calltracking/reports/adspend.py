"""Ad spend: all-or-nothing CSV import per source/campaign/day (→ ``ad_spend``).

Columns (header row required, any order, case-insensitive; comma, semicolon
or tab separated): ``day`` (``YYYY-MM-DD`` or ``DD.MM.YYYY``; also ``date``),
``source`` (an existing source of the project), ``campaign`` (optional, an
existing campaign of that source), ``amount`` (``1234.50`` or ``1 234,50``; also
``cost``/``spend``), ``project`` (unless given for the whole file),
``currency`` (optional, default the project's). A row for a (project,
source, campaign, day) that already has spend replaces the amount, so a
corrected export can be imported again. Every bad row is reported with its
line number and reason, and then nothing is imported.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calltracking.models import AdSpend, Campaign, Project, Source
from calltracking.attribution.numbers_csv import ImportFailed, RowError, read_rows

ALIASES = {"date": "day", "cost": "amount", "spend": "amount", "sum": "amount"}
COLUMNS = ("day", "project", "source", "campaign", "amount", "currency")
MAX_AMOUNT = Decimal("999999999999.99")

__all__ = ["ImportFailed", "RowError", "SpendImportResult", "import_spend", "parse_amount", "parse_day",
           "spend_by_source"]


@dataclass
class SpendImportResult:
    created: int = 0
    updated: int = 0

    @property
    def rows(self) -> int:
        return self.created + self.updated


def parse_day(v: str) -> dt.date:
    s = (v or "").strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"invalid day {v!r}: use YYYY-MM-DD or DD.MM.YYYY")


def parse_amount(v: str) -> Decimal:
    s = re.sub(r"[\s\u00a0\u202f]", "", v or "")
    if "," in s and "." not in s:
        s = s.replace(",", ".")
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"invalid amount {v!r}: expected a number such as 1234.50") from None
    if not d.is_finite():
        raise ValueError(f"invalid amount {v!r}")
    if d < 0:
        raise ValueError(f"negative amount {v!r}")
    if d > MAX_AMOUNT:
        raise ValueError(f"amount {v!r} is too large")
    if d != d.quantize(Decimal("0.01")):
        raise ValueError(f"amount {v!r} has more than 2 decimal places")
    return d.quantize(Decimal("0.01"))


def import_spend(session: Session, text: str, default_project: str | None = None,
                 create_missing: bool = False) -> SpendImportResult:
    """Validate every row, then write all of them in the caller's transaction, or none."""
    projects = {p.key: p for p in session.scalars(select(Project))}
    sources = {(s.project_id, s.name.lower()): s for s in session.scalars(select(Source))}
    campaigns = {(c.source_id, c.name.lower()): c for c in session.scalars(select(Campaign))}
    errors: list[RowError] = []
    valid = []
    seen: dict[tuple, int] = {}
    _, rows = read_rows(text, COLUMNS, ("day", "source", "amount"), ALIASES)
    for line, row in rows:
        if "__error__" in row:
            errors.append(RowError(line, row["__error__"]))
            continue
        try:
            day = parse_day(row.get("day", ""))
            amount = parse_amount(row.get("amount", ""))
        except ValueError as e:
            errors.append(RowError(line, str(e)))
            continue
        key = row.get("project") or default_project
        if not key:
            errors.append(RowError(line, "no project (add a 'project' column or use --project)"))
            continue
        project = projects.get(key)
        if project is None:
            errors.append(RowError(line, f"project {key!r} does not exist"))
            continue
        sname, cname = row.get("source", ""), row.get("campaign", "")
        if not sname:
            errors.append(RowError(line, "source is empty"))
            continue
        if len(sname) > 200 or len(cname) > 200:
            errors.append(RowError(line, "source or campaign name longer than 200 characters"))
            continue
        currency = (row.get("currency") or project.currency).upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            errors.append(RowError(line, f"invalid currency {row.get('currency')!r}: use a 3-letter code"))
            continue
        source = sources.get((project.id, sname.lower()))
        if source is None and not create_missing:
            errors.append(RowError(line, f"source {sname!r} does not exist in project {key!r} "
                                         "(add it first, or use --create-missing)"))
            continue
        campaign = campaigns.get((source.id, cname.lower())) if (source and cname) else None
        if cname and campaign is None and not create_missing:
            errors.append(RowError(line, f"campaign {cname!r} of source {sname!r} does not exist "
                                         "(add it first, or use --create-missing)"))
            continue
        k = (project.id, sname.lower(), cname.lower(), day)
        if k in seen:
            errors.append(RowError(line, f"{sname}/{cname or '-'} on {day} appears twice "
                                         f"(first on line {seen[k]})"))
            continue
        seen[k] = line
        valid.append((project, sname, cname, day, amount, currency))
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportFailed(errors)

    result = SpendImportResult()
    for project, sname, cname, day, amount, currency in valid:
        source = sources.get((project.id, sname.lower()))
        if source is None:
            source = Source(project_id=project.id, name=sname, channel="ads", short_label=sname[:40])
            session.add(source)
            session.flush()
            sources[(project.id, sname.lower())] = source
        campaign = None
        if cname:
            campaign = campaigns.get((source.id, cname.lower()))
            if campaign is None:
                campaign = Campaign(project_id=project.id, source_id=source.id, name=cname)
                session.add(campaign)
                session.flush()
                campaigns[(source.id, cname.lower())] = campaign
        stmt = select(AdSpend).where(AdSpend.project_id == project.id, AdSpend.source_id == source.id,
                                     AdSpend.day == day,
                                     AdSpend.campaign_id.is_(None) if campaign is None
                                     else AdSpend.campaign_id == campaign.id)
        row = session.scalars(stmt).first()
        if row is None:
            session.add(AdSpend(project_id=project.id, source_id=source.id,
                                campaign_id=campaign.id if campaign else None, day=day, amount=amount,
                                currency=currency))
            result.created += 1
        else:
            row.amount, row.currency = amount, currency
            result.updated += 1
    session.flush()
    return result


def spend_by_source(session: Session, project_id: int, first: dt.date, last: dt.date,
                    by_campaign: bool = False) -> dict:
    """Spend between two local days (inclusive): {source_id: Decimal} or {(source_id, campaign_id): …}."""
    cols = [AdSpend.source_id] + ([AdSpend.campaign_id] if by_campaign else [])
    rows = session.execute(select(*cols, func.sum(AdSpend.amount))
                           .where(AdSpend.project_id == project_id, AdSpend.day >= first, AdSpend.day <= last)
                           .group_by(*cols)).all()
    return {(tuple(r[:-1]) if by_campaign else r[0]): Decimal(r[-1]) for r in rows}
