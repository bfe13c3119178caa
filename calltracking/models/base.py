"""What every model shares: the declarative ``Base``, UTC datetimes, money and durations.

Conventions: every time is stored in UTC (``UTCDateTime`` refuses naive datetimes on write and
returns aware ones on read); money is ``Numeric`` and read as ``Decimal``; durations are seconds
as ``Numeric(12, 3)``; phone numbers are E.164 strings (see :mod:`calltracking.phone`).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, MetaData, Numeric
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

#: constraint and index names, so migrations can name what they drop
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC; naive input is an error."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        tz = value.tzinfo
        if tz is dt.timezone.utc:           # the usual case: no conversion to make
            return value.replace(tzinfo=None)
        if tz is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


def utcnow() -> dt.datetime:
    """Now, as an aware UTC datetime (the default of every ``*_at`` column)."""
    return dt.datetime.now(dt.timezone.utc)


#: a duration of one call, in seconds to the millisecond
Seconds = Numeric(12, 3, asdecimal=True)
#: an amount of one call or one day's spend
Money = Numeric(14, 2, asdecimal=True)
#: durations and amounts summed over many calls (the report rollups)
SecondsSum = Numeric(18, 3, asdecimal=True)
MoneySum = Numeric(18, 2, asdecimal=True)


class Base(DeclarativeBase):
    """The one declarative base: ``Base.metadata`` is what the migrations are compared with."""

    metadata = MetaData(naming_convention=NAMING)
