"""Automatic sources, source aliases, and merging and renaming sources.

Which source a visit gets (:func:`calltracking.dni.assign.source_for`), in this order:

1. the campaign whose ``utm_campaign`` the visit carries → that campaign's source;
2. the active source whose name or short label is the visit's ``utm_source`` (case-insensitive);
3. an alias (table ``source_aliases``): the visit's lower-case (``utm_source``, ``utm_medium``),
   else (``utm_source``, ``*``) → the source it points to;
4. otherwise, when the visit is *tagged* (:func:`visit_key`), an **automatic source** named
   ``<utm_source> / <utm_medium>`` (``(none)`` for an empty medium), created once per project
   with its alias (:func:`resolve`). Untagged visits (a referrer only, or direct) get no source:
   a source per referring host would grow without bound from what any client may send.

A visit is tagged when it has ``utm_source``; without one, a ``gclid`` counts as
``google / cpc`` and a ``yclid`` as ``yandex / cpc`` (the click ids Google Ads and Yandex Direct
add by themselves). Values are lower-cased, so ``Yandex`` and ``yandex`` are one source. A
project gets at most :data:`MAX_AUTO` automatic sources: the tags come from anyone's browser.

The automatic source's channel is guessed from the medium (:data:`CHANNEL_BY_MEDIUM`):

=====================================================================  ==========
medium                                                                 channel
=====================================================================  ==========
cpc, ppc, cpm, cpv, cpa, paid, paidsearch, paid_search, display,       ads
banner, retargeting, remarketing, affiliate
organic                                                                search
social, sm, smm, social-network, social_network, paid_social           social
email, e-mail, e_mail, newsletter, mail                                email
referral, link                                                         referral
(none), none, direct                                                   direct
anything else                                                          other
=====================================================================  ==========

``paid_social`` is social (the network matters more than the payment).

An admin then renames the automatic source (:func:`rename`: the old name becomes an alias, so
``utm_source=<old name>`` still arrives) or merges it into another (:func:`merge`: its calls,
visits, campaigns, numbers, pools, promo codes, routing rules, spend and aliases move, the
source is deleted and the name and label of a configured one become aliases of the target). A later visit with the
same tags finds the alias (step 3) and goes to the renamed or merged source.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from calltracking import settings_rules as rules
from calltracking.settings_rules import ServiceError
from calltracking.enums import SourceChannel
from calltracking.models import (
    AdSpend, Call, Campaign, NumberPool, PromoCode, RoutingRule, Source, SourceAlias, TrackingNumber,
    VisitorSession, utcnow,
)

MAX_AUTO = 200
ANY_MEDIUM = "*"
NO_MEDIUM = "(none)"
NAME_MAX = 200

CHANNEL_BY_MEDIUM = {
    **dict.fromkeys(("cpc", "ppc", "cpm", "cpv", "cpa", "paid", "paidsearch", "paid_search", "display",
                     "banner", "retargeting", "remarketing", "affiliate"), SourceChannel.ADS),
    "organic": SourceChannel.SEARCH,
    **dict.fromkeys(("social", "sm", "smm", "social-network", "social_network", "paid_social"),
                    SourceChannel.SOCIAL),
    **dict.fromkeys(("email", "e-mail", "e_mail", "newsletter", "mail"), SourceChannel.EMAIL),
    **dict.fromkeys(("referral", "link"), SourceChannel.REFERRAL),
    **dict.fromkeys((NO_MEDIUM, "none", "direct"), SourceChannel.DIRECT),
}

SA, SRC = SourceAlias.__table__, Source.__table__


class SourceError(ServiceError):
    """A merge or rename that the rules refuse (the message says why)."""


def channel_for(medium: str) -> str:
    """The channel of an automatic source from its medium (the table of the module doc)."""
    return CHANNEL_BY_MEDIUM.get((medium or NO_MEDIUM).strip().lower(), SourceChannel.OTHER).value


def visit_key(fields: dict) -> Optional[tuple]:
    """The (utm_source, utm_medium) of a tagged visit, lower case (the module doc), else None."""
    src = (fields.get("utm_source") or "").strip().lower()
    if src:
        return src[:NAME_MAX], ((fields.get("utm_medium") or "").strip().lower() or NO_MEDIUM)[:NAME_MAX]
    if fields.get("gclid"):
        return "google", "cpc"
    if fields.get("yclid"):
        return "yandex", "cpc"
    return None


def auto_name(key: tuple) -> str:
    """An automatic source's name: ``<utm_source> / <utm_medium>``."""
    src, medium = key
    return f"{src[:NAME_MAX // 2 - 2]} / {medium[:NAME_MAX // 2 - 2]}"


def alias_for(aliases: dict, key: tuple) -> Optional[int]:
    """The source an alias map (:func:`load_aliases`) gives the visit's key: exact, then any medium."""
    return aliases.get(key) or aliases.get((key[0], ANY_MEDIUM))


def load_aliases(conn: Connection, project_id: int) -> dict:
    """(utm_source, utm_medium) → source id, every alias of the project."""
    return {(r.utm_source, r.utm_medium): r.source_id
            for r in conn.execute(select(SA.c.utm_source, SA.c.utm_medium, SA.c.source_id)
                                  .where(SA.c.project_id == project_id))}


def _insert(conn: Connection, table):
    mod = postgresql if conn.dialect.name == "postgresql" else sqlite
    return mod.insert(table)


def resolve(conn: Connection, project_id: int, key: tuple) -> Optional[int]:
    """The source of a tagged visit no source name matched: its alias, else a new automatic source
    (and alias). Concurrent first visits agree: both inserts are ``ON CONFLICT DO NOTHING`` on the
    unique keys, and the rows are read back. None past :data:`MAX_AUTO` automatic sources."""
    found = _alias(conn, project_id, key)
    if found is not None:
        return found
    name = auto_name(key)
    sid = conn.execute(select(SRC.c.id).where(SRC.c.project_id == project_id, SRC.c.name == name)).scalar()
    if sid is None:
        count = conn.execute(select(func.count()).select_from(SRC)
                             .where(SRC.c.project_id == project_id, SRC.c.auto.is_(True))).scalar()
        if count >= MAX_AUTO:
            return None
        conn.execute(_insert(conn, SRC).values(project_id=project_id, name=name, channel=channel_for(key[1]),
                                               short_label=key[0][:40], active=True, auto=True)
                     .on_conflict_do_nothing(index_elements=["project_id", "name"]))
        sid = conn.execute(select(SRC.c.id).where(SRC.c.project_id == project_id, SRC.c.name == name)).scalar_one()
    conn.execute(_insert(conn, SA).values(project_id=project_id, utm_source=key[0], utm_medium=key[1],
                                          source_id=sid)
                 .on_conflict_do_nothing(index_elements=["project_id", "utm_source", "utm_medium"]))
    return _alias(conn, project_id, key)


def _alias(conn: Connection, project_id: int, key: tuple) -> Optional[int]:
    rows = dict(conn.execute(select(SA.c.utm_medium, SA.c.source_id).where(
        SA.c.project_id == project_id, SA.c.utm_source == key[0], SA.c.utm_medium.in_((key[1], ANY_MEDIUM)))).all())
    return rows.get(key[1]) or rows.get(ANY_MEDIUM)


def _point(session: Session, project_id: int, utm_source: str, source_id: int) -> None:
    """Make ``utm_source`` (any medium) an alias of the source (replacing an older one)."""
    utm_source = (utm_source or "").strip().lower()[:NAME_MAX]
    if not utm_source:
        return
    session.execute(delete(SourceAlias).where(SourceAlias.project_id == project_id,
                                              SourceAlias.utm_source == utm_source,
                                              SourceAlias.utm_medium == ANY_MEDIUM))
    session.add(SourceAlias(project_id=project_id, utm_source=utm_source, utm_medium=ANY_MEDIUM,
                            source_id=source_id))


def rename(session: Session, source: Source, new_name: str) -> dict:
    """Rename ``source``; its old name becomes an alias (any medium), so visits tagged with it still
    arrive. Returns what the audit log records."""
    new_name = rules.name("source", new_name)
    if new_name == source.name:
        return {"from": source.name, "to": new_name}
    if session.scalar(select(Source.id).where(Source.project_id == source.project_id, Source.name == new_name)):
        raise SourceError(f"source {new_name!r} already exists: merge into it instead")
    old = source.name
    if not source.auto:
        _point(session, source.project_id, old, source.id)
    source.name = new_name
    session.flush()
    return {"from": old, "to": new_name}


def merge(session: Session, source: Source, into: Source) -> dict:
    """Move everything of ``source`` into ``into`` and delete ``source`` (the module doc). Spend of
    the same day is added up; a campaign whose name ``into`` already has is renamed
    ``<name> (<source name>)``. The moved calls' ``updated_at`` moves, so the report rollups
    recompute their days. Returns the counts for the audit log."""
    if source.id == into.id:
        raise SourceError("a source cannot be merged into itself")
    if source.project_id != into.project_id:
        raise SourceError("both sources must belong to the same project")
    a, b, now = source.id, into.id, utcnow()
    moved: dict = {"from": source.name, "into": into.name}
    taken = set(session.scalars(select(Campaign.name).where(Campaign.source_id == b)))
    for c in session.scalars(select(Campaign).where(Campaign.source_id == a)).all():
        if c.name in taken:
            c.name = f"{c.name} ({source.name})"[:NAME_MAX]
        c.source_id = b
    session.flush()
    for spend in session.scalars(select(AdSpend).where(AdSpend.source_id == a)).all():
        same = session.scalars(select(AdSpend).where(
            AdSpend.project_id == spend.project_id, AdSpend.source_id == b, AdSpend.day == spend.day,
            AdSpend.campaign_id.is_(None) if spend.campaign_id is None else AdSpend.campaign_id == spend.campaign_id
        )).first()
        if same is not None:
            same.amount += spend.amount
            session.delete(spend)
        else:
            spend.source_id = b
    session.flush()
    for name, model, extra in (("calls", Call, {"updated_at": now}), ("visits", VisitorSession, {}),
                               ("numbers", TrackingNumber, {}), ("pools", NumberPool, {}),
                               ("promo_codes", PromoCode, {}), ("routing_rules", RoutingRule, {})):
        res = session.execute(update(model).where(model.source_id == a).values(source_id=b, **extra)
                              .execution_options(synchronize_session=False))
        moved[name] = res.rowcount
    for alias in session.scalars(select(SourceAlias).where(SourceAlias.source_id == a)).all():
        alias.source_id = b
    session.flush()
    if not source.auto:                 # an automatic source's own aliases moved above
        for label in {source.name, source.short_label}:
            _point(session, source.project_id, label, b)
    session.delete(source)
    session.flush()
    session.expire_all()
    return moved
