"""Reading the journal's filter form (query string) into a :class:`JournalFilter`."""
from __future__ import annotations

from sqlalchemy import select

from calltracking import entities
from calltracking.calls import saved_filters
from calltracking.calls.journal import JournalError, JournalFilter
from calltracking.models import Campaign, Operator, Project, Source, Tag

from webui import dateinput
from webui.context import config, current_user, db
from webui.display import default_tz

FILTER_KEYS = saved_filters.KEYS


def _int(args, key):
    v = (args.get(key) or "").strip()
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        raise JournalError(f"invalid {key} {v!r}") from None


def parse_filter(args) -> tuple[JournalFilter, str]:
    """Returns the filter and the time zone its dates were read in."""
    s = db()
    project_id = _int(args, "project")
    tz = default_tz()
    if project_id is not None:
        p = s.get(Project, project_id)
        if p is None:
            raise JournalError(f"unknown project id {project_id}")
        tz = p.timezone
    first = (args.get("first") or "").strip()
    if first not in ("", "first", "repeat"):
        raise JournalError(f"invalid first/repeat value {first!r}")
    target = (args.get("target") or "").strip()
    if target not in ("", "1", "0"):
        raise JournalError(f"invalid target value {target!r}: use 1 (target calls) or 0")
    try:               # dates typed in the user's language, or ISO (webui/dateinput.py)
        frm, to = dateinput.to_iso(args.get("from")), dateinput.to_iso(args.get("to"))
        start = entities.parse_when(frm, tz) if frm else None
        end = entities.parse_when(to, tz, end=True) if to else None
    except (entities.ServiceError, dateinput.DateInputError) as e:
        raise JournalError(str(e)) from None
    flt = JournalFilter(
        start=start, end=end, project_id=project_id,
        source_id=_int(args, "source"), campaign_id=_int(args, "campaign"),
        status=(args.get("status") or "").strip() or None,
        operator_id=_int(args, "operator"),
        first_call=None if not first else first == "first",
        target=None if not target else target == "1",
        tag=(args.get("tag") or "").strip() or None,
        caller=(args.get("caller") or "").strip() or None,
        name=(args.get("name") or "").strip() or None,
        text=(args.get("q") or "").strip()[:200] or None,
        region=config().general.default_region,
    )
    user = current_user()
    if user is not None:
        flt.viewer_role, flt.own_operator_id = user.role, user.operator_id
    return flt, tz


def filter_choices() -> dict:
    s = db()
    projects = list(s.scalars(select(Project).order_by(Project.name)))
    pname = {p.id: p.name for p in projects}
    sources = [(x.id, f"{pname.get(x.project_id, '?')} / {x.name}")
               for x in s.scalars(select(Source).order_by(Source.project_id, Source.name))]
    campaigns = [(c.id, f"{c.source.name} / {c.name}")
                 for c in s.scalars(select(Campaign).order_by(Campaign.source_id, Campaign.name))]
    operators = [(o.id, o.name) for o in s.scalars(select(Operator).order_by(Operator.name))]
    tags = sorted({t for t in s.scalars(select(Tag.name))})
    return {"projects": [(p.id, p.name) for p in projects], "sources": sources,
            "campaigns": campaigns, "operators": operators, "tags": tags}
