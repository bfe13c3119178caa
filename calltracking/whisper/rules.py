"""What the operator hears: the text of a whisper and the name of its file.

The text is the source's own text when it has one, else the project's template; both may use
``{source}``, ``{campaign}``, ``{label}`` (the source's short label) and ``{project}``. A field
with no value is left out together with the separator before it: ``"{source}, {campaign}"``
for a call without a campaign says ``"Google Ads"``.

A source's whisper file is ``s<source id>``, a campaign's ``s<source id>-c<campaign id>``
(``.wav`` in ``[asterisk] whisper_dir``); the campaign's file exists only when the text names
the campaign. The ``route`` hook answers the campaign's file, else the source's, else nothing.
"""
from __future__ import annotations

import os
import re
import string
import time
from typing import Optional

FIELDS = ("source", "campaign", "label", "project")
#: Longest text: a whisper is heard while the caller waits (espeak-ng speaks ~12 characters a second).
MAX_TEXT = 200
EXT = ".wav"
_SEPARATORS = " ,;:.-–—/|"
_NAME = re.compile(r"^s(\d+)(?:-c(\d+))?$")


def check_template(text: str) -> str:
    """A valid template or source text: at most :data:`MAX_TEXT` characters, only the fields
    of :data:`FIELDS` in braces. Returns it stripped; raises ``ValueError`` saying what is wrong."""
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"at most {MAX_TEXT} characters")
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as e:
        raise ValueError(f"unbalanced braces: {e}") from None
    for _, field, spec, conv in parsed:
        if field is None:
            continue
        if field not in FIELDS or spec or conv:
            raise ValueError(f"unknown field {{{field}}}; use {', '.join('{' + f + '}' for f in FIELDS)}")
    return text


def render(template: str, **values: str) -> str:
    """The spoken text: the template with its fields filled in; an empty field drops the
    separator before it (or after it, when it comes first)."""
    parts: list[str] = []
    pending = ""
    for literal, field, _, _ in string.Formatter().parse(template):
        pending += literal
        if field is None:
            continue
        value = " ".join(str(values.get(field) or "").split())
        if value:
            parts.append(pending if parts else pending.lstrip(_SEPARATORS))
            parts.append(value)
            pending = ""
        else:
            pending = pending if not parts else ""
    parts.append(pending if parts else pending.lstrip(_SEPARATORS))
    text = "".join(parts).strip()
    return text.rstrip(_SEPARATORS.replace(".", "")).strip() if text.strip(_SEPARATORS) else ""


def names_campaign(template: str) -> bool:
    """Whether the text changes with the campaign (one file per campaign is needed)."""
    return any(field == "campaign" for _, field, _, _ in string.Formatter().parse(template))


def file_name(source_id: int, campaign_id: Optional[int] = None) -> str:
    """The file of a source (``s12``) or of one of its campaigns (``s12-c7``), no extension."""
    return f"s{source_id}" if campaign_id is None else f"s{source_id}-c{campaign_id}"


def is_whisper_name(stem: str) -> bool:
    """Whether a file stem in the whisper directory is one :func:`file_name` makes."""
    return bool(_NAME.match(stem))


def lookup(directory: str, source_id: Optional[int], campaign_id: Optional[int]) -> str:
    """``CT_WHISPER``: the path without extension (as ``Playback()`` wants it) of the campaign's
    file, else the source's; '' when neither exists (no whisper). Never an exception."""
    if not directory or not source_id:
        return ""
    files = _files(directory)
    names = [file_name(source_id, campaign_id)] if campaign_id else []
    names.append(file_name(source_id))
    for name in names:
        if name + EXT in files:
            return os.path.join(directory, name)
    return ""


#: A directory changed this recently (ns) is listed again at each lookup: a second change
#: within the file system's clock tick would leave its modification time as it was.
_SETTLED_NS = 1_000_000_000
_listed: dict[str, tuple[int, frozenset[str]]] = {}


def _files(directory: str) -> frozenset[str]:
    """The regular files in ``directory`` (none when it cannot be read), listed again only when
    its modification time changed (a file added, removed or renamed). One ``stat()`` a call
    instead of one per candidate file: those were 3 % of the FastAGI event loop's time at
    saturation."""
    try:
        mtime = os.stat(directory).st_mtime_ns
        seen = _listed.get(directory)
        if seen is not None and seen[0] == mtime:
            return seen[1]
        with os.scandir(directory) as entries:
            names = frozenset(e.name for e in entries if e.is_file())
    except (OSError, ValueError):
        return frozenset()
    if time.time_ns() - mtime > _SETTLED_NS:
        if len(_listed) > 64:
            _listed.clear()
        _listed[directory] = (mtime, names)
    return names
