"""Web UI users and the audit log of their changes."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from calltracking.enums import Role, check_in
from calltracking.models.base import Base, UTCDateTime, utcnow

class User(Base):
    """A web UI login; ``role`` (a :class:`Role`) says what they may see. An operator user is
    linked to their ``operator_id``."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(check_in("role", Role), name="role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(12))
    language: Mapped[str] = mapped_column(String(5), default="en")
    operator_id: Mapped[Optional[int]] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    api_token_hash: Mapped[Optional[str]] = mapped_column(String(128), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: stored in the session cookie at login; logout and a password change increase it, which
    #: ends every session of the user made before
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AuditLog(Base):
    """Who changed what in the web UI or through the API, with a JSON snapshot in ``details``."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(100), default="")
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[Optional[str]] = mapped_column(String(40))
    details: Mapped[str] = mapped_column(Text, default="")


class SavedFilter(Base):
    """A journal filter a user saved under a name: ``query`` is the journal's query string
    (only its filter keys, :mod:`calltracking.calls.saved_filters`)."""

    __tablename__ = "saved_filters"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_saved_filters_user_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
