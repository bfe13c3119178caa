"""Promo codes shown by the website snippet (semi-automatic tracking).

A pool's ``promo_mode`` says when the snippet shows a code: ``off`` (never),
``exhausted`` (only when the pool has no free number: the visitor sees the
fallback number and a code to type in the IVR or tell the operator), or
``always``. The code is the visitor's source code when one is configured
(a :class:`PromoCode` with ``source_id`` and no session), otherwise a code
issued for this visitor session (6 digits, unique in the project, valid for
``SESSION_CODE_DAYS``). The AGI ``promo`` hook and the call card look codes up
in the same table.
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Optional

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from calltracking.models import PromoCode

PROMO_MODES = ("off", "exhausted", "always")
SESSION_CODE_DAYS = 7
CODE_DIGITS = 6

_T = PromoCode.__table__


def wanted(mode: str, exhausted: bool) -> bool:
    return mode == "always" or (mode == "exhausted" and exhausted)


def _valid(now: dt.datetime):
    c = _T.c
    return and_(c.active.is_(True),
                or_(c.valid_from.is_(None), c.valid_from <= now),
                or_(c.valid_to.is_(None), c.valid_to >= now))


def code_for_session(conn: Connection, project_id: int, session_id: int,
                     source_id: Optional[int], now: dt.datetime) -> Optional[str]:
    """The code to show this session: its source's code, else its own (issued once)."""
    c = _T.c
    code = conn.execute(select(c.code).where(c.project_id == project_id, c.session_id == session_id,
                                             _valid(now)).limit(1)).scalar()
    if code:
        return code
    if source_id is not None:
        code = conn.execute(select(c.code).where(c.project_id == project_id, c.source_id == source_id,
                                                 c.session_id.is_(None), _valid(now))
                            .order_by(c.id).limit(1)).scalar()
        if code:
            return code
    for _ in range(8):
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        if code[0] == "0":
            continue
        try:
            with conn.begin_nested():
                conn.execute(insert(_T).values(
                    project_id=project_id, code=code, source_id=source_id, session_id=session_id,
                    active=True, valid_from=now, valid_to=now + dt.timedelta(days=SESSION_CODE_DAYS)))
            return code
        except IntegrityError:
            continue      # the code is taken in this project: draw another
    return None
