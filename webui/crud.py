"""A small declarative CRUD layer for the settings pages (fields, parsing, listing)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from calltracking import phone
from calltracking import entities

from webui.context import config
from webui.display import fmt_time


class FormError(ValueError):
    """Bad form input; ``errors`` maps a field name (or "") to messages."""

    def __init__(self, errors: dict):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))


@dataclass
class Field:
    name: str                       # model attribute
    label: Any
    kind: str = "text"              # text int bool select time date phone textarea password
    required: bool = False
    choices: Optional[Callable] = None   # (session) -> [(value, label)]
    help: Any = ""
    placeholder: str = ""
    on_create: bool = True
    on_edit: bool = True
    default: Any = None
    maxlen: int = 1000
    get: Optional[Callable] = None       # obj -> form value (when not the attribute itself)


@dataclass
class Entity:
    slug: str
    title: Any
    model: type
    fields: list
    columns: list                   # [(label, fn(obj) -> str)]
    create: Callable                # (session, values) -> obj
    update: Optional[Callable] = None   # (session, obj, values) -> None
    toggle: Optional[str] = None    # boolean attribute switched by the toggle button
    delete: bool = False
    order_by: Any = None
    query: Optional[Callable] = None    # (session, args) -> select statement
    extra_links: list = field(default_factory=list)

    def form_fields(self, editing: bool) -> list:
        return [f for f in self.fields if (f.on_edit if editing else f.on_create)]


def parse_value(f: Field, raw: Optional[str], choices: list | None = None):
    raw = "" if raw is None else str(raw)
    if f.kind == "bool":
        return raw in ("yes", "on", "1", "true")
    if f.kind != "password":
        raw = raw.strip()
    if raw == "":
        if f.required:
            raise ValueError("is required")
        if f.default is not None and f.kind != "password":
            return f.default() if callable(f.default) else f.default
        return "" if f.kind in ("text", "textarea") else None
    if len(raw) > f.maxlen:
        raise ValueError(f"is longer than {f.maxlen} characters")
    if f.kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
    if f.kind == "select":
        for value, _label in choices or []:
            if str(value) == raw:
                return value
        raise ValueError(f"invalid choice {raw!r}")
    if f.kind == "time":
        try:
            return dt.time.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"expected a time HH:MM, got {raw!r}") from None
    if f.kind == "date":
        try:
            return entities.parse_when(raw, config().general.timezone)
        except entities.ServiceError as e:
            raise ValueError(str(e)) from None
    if f.kind == "phone":
        try:
            return phone.normalize(raw, config().general.default_region)
        except phone.InvalidNumber as e:
            raise ValueError(str(e)) from None
    return raw


def parse_form(entity: Entity, session, form, editing: bool) -> dict:
    values, errors = {}, {}
    for f in entity.form_fields(editing):
        choices = f.choices(session) if f.choices else None
        try:
            values[f.name] = parse_value(f, form.get(f.name), choices)
        except ValueError as e:
            errors[f.name] = f"{f.label}: {e}"
    if errors:
        raise FormError(errors)
    return values


def display(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "✓" if v else "—"
    if isinstance(v, dt.time):
        return v.strftime("%H:%M")
    if isinstance(v, dt.datetime):
        return fmt_time(v, fmt="%Y-%m-%d %H:%M")
    return str(v)


def form_value(obj, f: Field):
    if obj is None:
        return f.default() if callable(f.default) else f.default
    if f.kind == "password":
        return ""
    v = f.get(obj) if f.get else getattr(obj, f.name, None)
    if f.kind == "time" and v is not None:
        return v.strftime("%H:%M")
    if f.kind == "date" and v is not None:
        return fmt_time(v, fmt="%Y-%m-%d")
    return v
