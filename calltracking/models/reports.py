"""Report tables: ad spend, and the rollups that :func:`calltracking.reports.rollup.refresh_rollups`
keeps up to date from the calls, so a report over months reads a few rows per day."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from calltracking.models.base import Base, Money, MoneySum, SecondsSum, UTCDateTime, utcnow

class AdSpendImport(Base):
    """One ad-spend CSV file imported into one project (the web upload or ``spend import``): who,
    when, how many rows and what they added up to then. The rows it wrote or replaced point to
    it (``ad_spend.import_id``), so deleting it removes exactly them; a row replaced by a later
    import belongs to the later one."""

    __tablename__ = "ad_spend_imports"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(255), default="")
    #: the web user's name, or ``cli:<system user>``
    imported_by: Mapped[str] = mapped_column(String(100), default="")
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[Decimal] = mapped_column(MoneySum, default=0)
    #: the rows' currency; NULL when the file mixed several (the total then means nothing)
    currency: Mapped[Optional[str]] = mapped_column(String(3))


class AdSpend(Base):
    """What one day of a source (or of one of its campaigns) cost; the reports' cost per call.
    ``import_id``: the CSV import that wrote it (NULL for rows added otherwise)."""

    __tablename__ = "ad_spend"
    __table_args__ = (
        UniqueConstraint("project_id", "source_id", "campaign_id", "day", name="uq_ad_spend_key"),
        CheckConstraint("amount >= 0", name="amount_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    import_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ad_spend_imports.id", ondelete="CASCADE"),
                                                     index=True)


class ReportDaily(Base):
    """Finished calls of one project and local day, split along one dimension.

    ``dim`` is a :class:`ReportDimension`; ``key`` is the id (as text), the keyword,
    the device name or the bucket label ("" when unknown). The same dimensions
    with the ``@m`` suffix hold whole months (``day`` = the 1st), summed from
    the daily rows, and with ``@y`` whole calendar years (``day`` = 1 January), summed
    from the monthly rows, so long ranges read few rows.
    """

    __tablename__ = "report_daily"
    __table_args__ = {"sqlite_with_rowid": False}   # rows clustered by the primary key
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            primary_key=True)
    dim: Mapped[str] = mapped_column(String(12), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    first_calls: Mapped[int] = mapped_column(Integer, default=0)
    repeat_calls: Mapped[int] = mapped_column(Integer, default=0)
    wait_sum: Mapped[Decimal] = mapped_column(SecondsSum, default=0)
    talk_sum: Mapped[Decimal] = mapped_column(SecondsSum, default=0)
    deals: Mapped[int] = mapped_column(Integer, default=0)
    value_sum: Mapped[Decimal] = mapped_column(MoneySum, default=0)
    missed_rung: Mapped[int] = mapped_column(Integer, default=0)
    #: target calls (``calls.is_target``)
    targets: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ReportHourly(Base):
    """Finished calls and peak concurrency of one project and local hour."""

    __tablename__ = "report_hourly"
    __table_args__ = {"sqlite_with_rowid": False}
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    weekday: Mapped[int] = mapped_column(Integer)  # ISO: 1 = Monday … 7 = Sunday
    calls: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    peak_concurrent: Mapped[int] = mapped_column(Integer, default=0)


class ReportRollupState(Base):
    """One row: calls updated after ``watermark`` are not yet in the rollups."""

    __tablename__ = "report_rollup_state"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    watermark: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
