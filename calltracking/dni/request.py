"""What the website snippet sends to the DNI endpoints and what it gets back.

A request is a JSON object: ``project`` (a project key), ``visitor_id`` (the id an earlier
answer gave; anything that is not a well-formed id counts as none), ``pool`` (a pool name)
and the visit's tags (:data:`FIELDS`). Unknown fields are ignored; control characters are
removed and every value is cut to its column's size, so a request never fails on its length.
A wrong type is a :class:`DniError` (HTTP 400); an unknown project :class:`UnknownProject`.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Optional

#: request field → maximum length (the column sizes)
FIELDS = {"ga_client_id": 64, "utm_source": 200, "utm_medium": 200, "utm_campaign": 200, "utm_term": 200,
          "utm_content": 200, "gclid": 200, "yclid": 200, "keyword": 200, "referrer": 1000, "landing_page": 1000}
#: a project key
PROJECT_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: a visitor id (the server's are ``v`` + 24 hex digits, signed ones longer)
VISITOR_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_CTRL_RX = re.compile(r"[\x00-\x1f\x7f]")


class DniError(ValueError):
    """A bad request: the message is safe to return to the client."""


class UnknownProject(DniError):
    pass


@dataclass
class AssignRequest:
    project: str
    visitor_id: str = ""
    pool: str = ""
    user_agent: str = ""
    ip: str = ""
    fields: dict = field(default_factory=dict)


@dataclass
class AssignResult:
    number: Optional[str]               # E.164 to show; None: keep the site's own number
    kind: str                           # pool | static | fallback | default | bot | refused | none
    visitor_id: str = ""
    session_id: Optional[int] = None
    pool_id: Optional[int] = None
    hold_seconds: int = 0               # how long the number stays without a heartbeat
    exhausted: bool = False
    promo: Optional[str] = None
    provisional: bool = False           # a new hold: a heartbeat within hold_seconds confirms it
    held: tuple = ()                    # heartbeat: ((pool id, hold seconds), …) of the live holds

    def as_json(self) -> dict:
        return {"number": self.number, "kind": self.kind, "visitor_id": self.visitor_id,
                "session": self.session_id, "hold_seconds": self.hold_seconds,
                "provisional": self.provisional, "exhausted": self.exhausted, "promo": self.promo}


def _clean(value, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DniError(f"field {name!r} must be a string")
    return _CTRL_RX.sub("", value).strip()[:limit]


def new_visitor_id() -> str:
    """An unsigned visitor id (scripts and the simulation; the public endpoints sign theirs)."""
    return "v" + random.SystemRandom().getrandbits(96).to_bytes(12, "big").hex()


def parse_request(data, user_agent: str = "", ip: str = "") -> AssignRequest:
    """Validate a JSON body from the snippet (see the module doc)."""
    if not isinstance(data, dict):
        raise DniError("expected a JSON object")
    key = data.get("project")
    if not isinstance(key, str) or not PROJECT_KEY.fullmatch(key):
        raise DniError("field 'project' must be a project key (1-64 letters, digits, '_', '-')")
    visitor = data.get("visitor_id")
    if visitor is not None and not isinstance(visitor, str):
        raise DniError("field 'visitor_id' must be a string")
    visitor = visitor if visitor and VISITOR_ID.fullmatch(visitor) else ""
    fields = {name: _clean(data.get(name), name, limit) for name, limit in FIELDS.items()}
    return AssignRequest(project=key, visitor_id=visitor, pool=_clean(data.get("pool"), "pool", 200),
                         user_agent=_clean(user_agent, "user_agent", 500), ip=(ip or "")[:45],
                         fields=fields)


def check_heartbeat(project, visitor_id) -> None:
    """A heartbeat names a project and the visitor id an assignment returned: else DniError."""
    if not isinstance(project, str) or not PROJECT_KEY.fullmatch(project):
        raise DniError("field 'project' must be a project key")
    if not isinstance(visitor_id, str) or not VISITOR_ID.fullmatch(visitor_id):
        raise DniError("field 'visitor_id' must be the visitor id returned by assign")
