"""The callback widget's tests: a site origin, callbacks turned on for a project, a closed schedule."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from calltracking.callbacks import settings as cb_settings
from calltracking.db import session_scope
from calltracking.dni import projects

SITE = "https://shop.example"


def enable_callbacks(factory, project_id: int, **values):
    """Turn callbacks on for the project (``values``: settings such as ``schedule``)."""
    with session_scope(factory) as s:
        cb_settings.save(s, project_id, {"enabled": True, "outbound_context": "from-internal", **values})
    projects.invalidate_cache()


def closed_until_tomorrow(tz: str = "Europe/Moscow"):
    """A schedule open only tomorrow 09:00-10:00 (project time) and that opening in UTC."""
    tomorrow = dt.datetime.now(ZoneInfo(tz)).date() + dt.timedelta(days=1)
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[tomorrow.weekday()]
    opening = dt.datetime.combine(tomorrow, dt.time(9), ZoneInfo(tz)).astimezone(dt.timezone.utc)
    return f"{day} 09:00-10:00", opening
