"""The keyword report: mentions per source and per operator, for one project and period.

A row counts, for one list and one source (or operator), the mentions and the distinct calls
they were said in, over the calls that started in ``[start, end)`` (UTC). A call without a
source or an operator is counted under the empty name.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from calltracking.models import Call, KeywordList, KeywordMention, Source

BY = ("source", "operator")


def mention_rows(session: Session, project_id: int, start: dt.datetime, end: dt.datetime,
                 by: str = "source") -> list[dict]:
    """``[{"name", "list", "mentions", "calls"}]`` ordered by name, then list."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    if by == "source":
        name = func.coalesce(Source.name, "")
        stmt = (select(name, KeywordList.name, func.count(KeywordMention.id), func.count(distinct(Call.id)))
                .select_from(KeywordMention).join(Call, Call.id == KeywordMention.call_id)
                .outerjoin(Source, Source.id == Call.source_id))
    else:
        name = Call.operator_name
        stmt = (select(name, KeywordList.name, func.count(KeywordMention.id), func.count(distinct(Call.id)))
                .select_from(KeywordMention).join(Call, Call.id == KeywordMention.call_id))
    stmt = (stmt.join(KeywordList, KeywordList.id == KeywordMention.list_id)
            .where(Call.project_id == project_id, Call.started_at >= start, Call.started_at < end)
            .group_by(name, KeywordList.name).order_by(name, KeywordList.name))
    return [{"name": n or "", "list": lst, "mentions": m, "calls": c} for n, lst, m, c in session.execute(stmt)]
