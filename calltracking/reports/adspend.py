"""Ad spend: all-or-nothing CSV import per source/campaign/day (→ ``ad_spend``).

Columns (header row required, any order, case-insensitive; comma, semicolon
or tab separated): ``day`` (``YYYY-MM-DD`` or ``DD.MM.YYYY``; also ``date``),
``source`` (an existing source of the project), ``campaign`` (optional, an
existing campaign of that source), ``amount`` (``1234.50`` or ``1 234,50``; also
``cost``/``spend``), ``project`` (unless given for the whole file),
``currency`` (optional, default the project's). A row for a (project,
source, campaign, day) that already has spend replaces the amount, so a
corrected export can be imported again. Every bad row is reported with its
line number and reason, and then nothing is imported. Each import is recorded as
one batch per project (:mod:`calltracking.reports.spend_imports`): the rows it
wrote or replaced point to it, so it can be deleted as a whole.

Source rows and campaign rows of the same day are never added on top of each
other: a source's spend on a day is its own row (no campaign) when there is one,
else the sum of its campaigns' rows of that day (:func:`source_spend`). So an
export of totals and a finer export per campaign can both be imported; the
campaigns report shows each campaign's own rows.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from calltracking import money
from calltracking.models import AdSpend, Campaign, Project, Source
from calltracking.attribution.numbers_csv import ImportFailed, RowError, read_rows
from calltracking.reports import spend_imports

ALIASES = {"date": "day", "cost": "amount", "spend": "amount", "sum": "amount"}
COLUMNS = ("day", "project", "source", "campaign", "amount", "currency")
MAX_AMOUNT = money.MAX_AMOUNT

__all__ = ["ImportFailed", "RowError", "SpendImportResult", "SpendFilter", "delete_spend", "import_spend",
           "list_spend", "parse_amount", "parse_day", "source_spend", "spend_by_source"]


@dataclass
class SpendImportResult:
    created: int = 0
    updated: int = 0
    imports: list = field(default_factory=list)     # the batches' ids, one per project


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


def parse_amount(v: str, locale: str = "en") -> Decimal:
    """An amount of the spend file: the one money rule, :func:`calltracking.money.parse_money`."""
    d = money.parse_money(v, locale)
    if d is None:
        raise ValueError(f"invalid amount {v!r}: expected a number such as 1234.50")
    return d


def import_spend(session: Session, text: str, default_project: str | None = None,
                 create_missing: bool = False, file_name: str = "", imported_by: str = "") -> SpendImportResult:
    """Validate every row, then write all of them in the caller's transaction, or none; the
    rows point to the import's batch of their project (``file_name``, ``imported_by``: who)."""
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
    batches = spend_imports.start_batches(session, [v[0].id for v in valid], file_name, imported_by)
    result.imports = [b.id for b in batches.values()]
    for project, sname, cname, day, amount, currency in valid:
        batch = batches[project.id]
        spend_imports.count_row(batch, amount, currency, first=batch.rows == 0)
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
                                currency=currency, import_id=batch.id))
            result.created += 1
        else:
            row.amount, row.currency, row.import_id = amount, currency, batch.id
            result.updated += 1
    session.flush()
    return result


def source_spend(session: Session, project_ids, first: dt.date, last: dt.date) -> dict[int, Decimal]:
    """Each source's spend between two local days (inclusive): per day its own row if present,
    else the sum of its campaigns' rows; then summed over the days."""
    own = func.sum(case((AdSpend.campaign_id.is_(None), AdSpend.amount), else_=None))
    camps = func.sum(case((AdSpend.campaign_id.is_not(None), AdSpend.amount), else_=None))
    rows = session.execute(select(AdSpend.source_id, AdSpend.day, own, camps)
                           .where(AdSpend.project_id.in_(list(project_ids)), AdSpend.day >= first,
                                  AdSpend.day <= last)
                           .group_by(AdSpend.source_id, AdSpend.day)).all()
    out: dict[int, Decimal] = {}
    for source_id, _day, own_amount, camp_amount in rows:
        amount = own_amount if own_amount is not None else camp_amount
        out[source_id] = out.get(source_id, Decimal(0)) + Decimal(amount or 0)
    return out


def spend_by_source(session: Session, project_id: int, first: dt.date, last: dt.date,
                    by_campaign: bool = False) -> dict:
    """Spend between two local days (inclusive): {source_id: Decimal} (the rule of
    :func:`source_spend`) or {(source_id, campaign_id): …} (each campaign's own rows)."""
    if not by_campaign:
        return source_spend(session, [project_id], first, last)
    rows = session.execute(select(AdSpend.source_id, AdSpend.campaign_id, func.sum(AdSpend.amount))
                           .where(AdSpend.project_id == project_id, AdSpend.day >= first, AdSpend.day <= last,
                                  AdSpend.campaign_id.is_not(None))
                           .group_by(AdSpend.source_id, AdSpend.campaign_id)).all()
    return {(r[0], r[1]): Decimal(r[2]) for r in rows}


@dataclass
class SpendFilter:
    """Which imported rows to list or delete; None means any."""
    project_id: int | None = None
    source_id: int | None = None
    first: dt.date | None = None
    last: dt.date | None = None

    def where(self, stmt):
        if self.project_id is not None:
            stmt = stmt.where(AdSpend.project_id == self.project_id)
        if self.source_id is not None:
            stmt = stmt.where(AdSpend.source_id == self.source_id)
        if self.first is not None:
            stmt = stmt.where(AdSpend.day >= self.first)
        if self.last is not None:
            stmt = stmt.where(AdSpend.day <= self.last)
        return stmt


@dataclass
class SpendRow:
    id: int
    day: dt.date
    project: str
    source: str
    campaign: str
    amount: Decimal
    currency: str


def list_spend(session: Session, flt: SpendFilter, limit: int = 500) -> tuple[list[SpendRow], int, dict]:
    """The newest ``limit`` rows of the filter, how many rows match, and their totals per currency
    (under the rule of :func:`source_spend`: a campaign row of a day that has its source's own
    row is shown but not counted)."""
    stmt = flt.where(select(AdSpend, Project.name, Source.name, Campaign.name)
                     .join(Project, Project.id == AdSpend.project_id)
                     .join(Source, Source.id == AdSpend.source_id)
                     .outerjoin(Campaign, Campaign.id == AdSpend.campaign_id))
    rows = [SpendRow(a.id, a.day, pname, sname, cname or "", a.amount, a.currency)
            for a, pname, sname, cname in session.execute(
                stmt.order_by(AdSpend.day.desc(), Project.name, Source.name, AdSpend.campaign_id.is_not(None),
                              Campaign.name).limit(limit))]
    count = session.scalar(flt.where(select(func.count(AdSpend.id)))) or 0
    own_days = {(s, d) for s, d in session.execute(
        flt.where(select(AdSpend.source_id, AdSpend.day).where(AdSpend.campaign_id.is_(None))))}
    totals: dict[str, Decimal] = {}
    for source_id, campaign_id, day, amount, currency in session.execute(flt.where(select(
            AdSpend.source_id, AdSpend.campaign_id, AdSpend.day, AdSpend.amount, AdSpend.currency))):
        if campaign_id is not None and (source_id, day) in own_days:
            continue
        totals[currency] = totals.get(currency, Decimal(0)) + Decimal(amount)
    return rows, count, totals


def delete_spend(session: Session, flt: SpendFilter | None = None, row_id: int | None = None) -> int:
    """Delete one row (``row_id``) or every row of the filter; returns how many went."""
    if row_id is not None:
        row = session.get(AdSpend, row_id)
        if row is None:
            return 0
        session.delete(row)
        session.flush()
        return 1
    if flt is None or flt.project_id is None:
        raise ValueError("choose a project to delete its imported spend")
    ids = list(session.scalars(flt.where(select(AdSpend.id))))
    if ids:
        session.execute(delete(AdSpend).where(AdSpend.id.in_(ids)))
    session.flush()
    return len(ids)
