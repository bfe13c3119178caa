"""What the hooks answer: the channel variables, built in one place.

Every hook returns ``{variable: value}`` for the adapter to set on the channel, built by
:meth:`Answer.variables` from one :class:`Answer`; the variables each answer sets are
listed here once:

- ``route`` and ``lookup`` (and their defaults): :data:`CALL_VARIABLES`, plus
  ``CALLERID(name)`` when ``route`` prefixes the caller's name with the source's label;
- ``promo``: :data:`PROMO_VARIABLES` for a valid code (the call's new attribution and
  queue), only ``CT_PROMO`` and ``CT_STATUS`` otherwise;
- ``tag``: :data:`TAG_VARIABLES`.

``CT_STATUS`` is ``ok``, ``fallback`` (the defaults: the database was slow, locked or
down), ``unknown`` (``lookup`` of a call it does not know) or ``error`` (bad arguments).
:func:`defaults` is the safe answer, given without the database.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Optional

from sqlalchemy.orm import Session

from calltracking import phone
from calltracking.enums import AttributionKind
from calltracking.hooks.inputs import clean_linkedid
from calltracking.models import Campaign, Source

if TYPE_CHECKING:
    from calltracking.hooks.env import HookEnv

HOOKS = ("route", "promo", "tag", "lookup")

#: ``route``, ``lookup`` and their defaults, in the order they are set.
CALL_VARIABLES = ("CT_CALL_ID", "CT_PROJECT", "CT_SOURCE", "CT_CAMPAIGN", "CT_ATTRIBUTION", "CT_QUEUE",
                  "CT_TARGET", "CT_CALLER_TYPE", "CT_RECORD", "CT_CONFIDENCE", "CT_WHISPER", "CT_STATUS")
#: ``promo`` with a valid code.
PROMO_VARIABLES = ("CT_PROMO", "CT_CALL_ID", "CT_PROJECT", "CT_SOURCE", "CT_CAMPAIGN", "CT_ATTRIBUTION",
                   "CT_QUEUE", "CT_TARGET", "CT_CONFIDENCE", "CT_WHISPER", "CT_STATUS")
#: ``promo`` with an invalid code, or failed: nothing else changes.
PROMO_REJECTED = ("CT_PROMO", "CT_STATUS")
#: ``tag``.
TAG_VARIABLES = ("CT_TAG", "CT_STATUS")


@dataclass(frozen=True)
class Answer:
    """What a hook says about a call; each field is one channel variable."""

    status: str = "ok"                      # CT_STATUS: ok | fallback | unknown | error
    call_id: str = ""                       # CT_CALL_ID: <pbx_id>-<linkedid> (see call_id())
    project: str = ""                       # CT_PROJECT: the project's key
    source: str = ""                        # CT_SOURCE: the source's name
    campaign: str = ""                      # CT_CAMPAIGN: the campaign's name
    attribution: str = AttributionKind.NONE  # CT_ATTRIBUTION: static | dynamic | promo | none
    queue: str = ""                         # CT_QUEUE: the queue to put the call in
    target: str = ""                        # CT_TARGET: a Dial() target instead ('' none)
    first_call: Optional[bool] = None       # CT_CALLER_TYPE: first | repeat | '' (no number)
    record: bool = False                    # CT_RECORD: yes | no
    confidence: Optional[Decimal] = None    # CT_CONFIDENCE: 1.000, 0.500, ... ('' none)
    promo: str = ""                         # CT_PROMO: valid | invalid | error
    tag: str = ""                           # CT_TAG: the tag added ('' none)
    whisper: str = ""                       # CT_WHISPER: the whisper file, no extension ('' none)
    callerid_name: Optional[str] = None     # CALLERID(name), set only when not None

    def variables(self, names: tuple[str, ...] = CALL_VARIABLES) -> dict[str, str]:
        """``{variable: value}`` for ``names`` (and ``CALLERID(name)`` when set)."""
        out = {name: _VALUE[name](self) for name in names}
        if self.callerid_name is not None:
            out["CALLERID(name)"] = self.callerid_name
        return out


_VALUE = {
    "CT_STATUS": lambda a: a.status,
    "CT_CALL_ID": lambda a: a.call_id,
    "CT_PROJECT": lambda a: a.project,
    "CT_SOURCE": lambda a: a.source,
    "CT_CAMPAIGN": lambda a: a.campaign,
    "CT_ATTRIBUTION": lambda a: str(a.attribution),
    "CT_QUEUE": lambda a: a.queue,
    "CT_TARGET": lambda a: a.target,
    "CT_CALLER_TYPE": lambda a: "" if a.first_call is None else ("first" if a.first_call else "repeat"),
    "CT_RECORD": lambda a: "yes" if a.record else "no",
    "CT_CONFIDENCE": lambda a: "" if a.confidence is None else str(a.confidence),
    "CT_PROMO": lambda a: a.promo,
    "CT_TAG": lambda a: a.tag,
    "CT_WHISPER": lambda a: a.whisper,
}


def call_id(env: "HookEnv", linkedid: str) -> str:
    """``CT_CALL_ID``: ``<pbx_id>-<linkedid>``, known even when the database is not."""
    return f"{env.pbx_id}-{linkedid}" if linkedid else ""


def names(session: Session, source_id: Optional[int], campaign_id: Optional[int]) -> tuple[str, str]:
    """``CT_SOURCE`` and ``CT_CAMPAIGN``: the names of the source and campaign ('' for none)."""
    src = session.get(Source, source_id) if source_id else None
    camp = session.get(Campaign, campaign_id) if campaign_id else None
    return (src.name if src else ""), (camp.name if camp else "")


def prefixed_name(label: str, name: str) -> str:
    """``CALLERID(name)`` with the source's short label in front: ``[Google] Ivan``."""
    tag = f"[{label}]"
    if name.startswith(tag):
        return name
    return f"{tag} {name}".strip()[:200]


def fallback_queue(env: "HookEnv", did: str = "") -> str:
    """The queue without the database: the DID's project's default queue as last seen
    (remembered by ``route`` and at the server's start), else ``[general] default_queue``."""
    key = phone.try_normalize(did, env.region) or (did or "").strip()
    return env.cache.queue_for(key) or env.config.general.default_queue


def defaults(env: "HookEnv", hook: str = "route", did: str = "", linkedid: str = "",
             status: str = "fallback") -> dict[str, str]:
    """The safe answer: the fallback queue, no attribution, no recording. Never touches the DB."""
    if hook == "promo":
        return Answer(status=status, promo="error").variables(PROMO_REJECTED)
    if hook == "tag":
        return Answer(status=status).variables(TAG_VARIABLES)
    return Answer(status=status, call_id=call_id(env, clean_linkedid(linkedid)),
                  queue=fallback_queue(env, did)).variables()
