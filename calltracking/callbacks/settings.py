"""A project's callback settings: the defaults, reading them and the rules of a valid value."""
from __future__ import annotations

import re
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.callbacks import intake, schedule
from calltracking.models import CallbackSettings

#: the values of a project without a settings row (callbacks off)
DEFAULTS = dict(enabled=False, schedule="", retries=2, retry_delay_seconds=120, cooldown_seconds=900,
                max_calls_per_hour=20, allowed_regions="", outbound_context="from-internal",
                widget_delay_seconds=None, queue="")

#: (minimum, maximum) of each number; the maxima keep a typo from making the PBX call for hours
LIMITS = dict(retries=(0, 5), retry_delay_seconds=(30, 86400), cooldown_seconds=(60, 7 * 86400),
              max_calls_per_hour=(1, 1000), widget_delay_seconds=(0, 3600))

_CONTEXT = re.compile(r"^[A-Za-z0-9_\-]{1,80}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_\-.]{0,80}$")


class SettingsError(ValueError):
    """A value a user typed is not valid: ``field`` names it, the message says why (English)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def get(session: Session, project_id: int) -> Optional[CallbackSettings]:
    """The project's settings row, or None (callbacks off)."""
    return session.scalars(select(CallbackSettings).where(CallbackSettings.project_id == project_id)).first()


def get_or_default(session: Session, project_id: int) -> CallbackSettings:
    """The settings row, or an unsaved one with :data:`DEFAULTS` (for forms)."""
    return get(session, project_id) or CallbackSettings(project_id=project_id, **DEFAULTS)


def regions(row: CallbackSettings, default_region: str) -> frozenset:
    """The regions a number may belong to: the listed ones, else ``default_region`` alone."""
    return intake.parse_regions(row.allowed_regions) or frozenset({default_region.upper()})


def validate(values: dict) -> dict:
    """Checked and converted settings (``values`` as typed: strings, or already typed values);
    :class:`SettingsError` names the first wrong field."""
    out = dict(DEFAULTS)
    out["enabled"] = values.get("enabled") in (True, "1", "on", "yes", "true")
    for key, (lo, hi) in LIMITS.items():
        raw = values.get(key, out[key])
        if key == "widget_delay_seconds" and (raw is None or str(raw).strip() == ""):
            out[key] = None
            continue
        try:
            n = int(str(raw).strip())
        except ValueError:
            raise SettingsError(key, "expected a whole number") from None
        if not lo <= n <= hi:
            raise SettingsError(key, f"must be between {lo} and {hi}")
        out[key] = n
    text = str(values.get("schedule") or "").strip()
    try:
        schedule.parse(text)
    except schedule.ScheduleError as e:
        raise SettingsError("schedule", str(e)) from None
    out["schedule"] = text
    raw_regions = str(values.get("allowed_regions") or "")
    parsed = intake.parse_regions(raw_regions)
    if raw_regions.strip() and not parsed:
        raise SettingsError("allowed_regions", "expected two-letter regions such as RU,KZ")
    out["allowed_regions"] = ",".join(sorted(parsed))
    ctx = str(values.get("outbound_context") or "").strip()
    if not _CONTEXT.match(ctx):
        raise SettingsError("outbound_context", "a dialplan context name (letters, digits, - and _)")
    out["outbound_context"] = ctx
    queue = str(values.get("queue") or "").strip()
    if not _QUEUE.match(queue):
        raise SettingsError("queue", "a queue name (letters, digits, -, _ and .)")
    out["queue"] = queue
    return out


def save(session: Session, project_id: int, values: dict) -> CallbackSettings:
    """Validate ``values`` (:func:`validate`) and store them as the project's settings."""
    clean = validate(values)
    row = get(session, project_id)
    if row is None:
        row = CallbackSettings(project_id=project_id)
        session.add(row)
    for k, v in clean.items():
        setattr(row, k, v)
    session.flush()
    return row
