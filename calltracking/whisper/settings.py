"""Changing the whisper settings of a project or a source (the CLI and the web UI use these).

Every value is checked here (:func:`~.rules.check_template`, :class:`WhisperVoice`); a wrong
one raises :class:`~calltracking.settings_rules.ServiceError` with the reason. The files follow
the settings at the next :func:`~.files.sync`, which the callers run after the commit.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy.orm import Session

from calltracking.enums import WhisperVoice
from calltracking.models import Project, Source, WhisperProject, WhisperSource, utcnow
from calltracking.models.whisper import DEFAULT_TEMPLATE
from calltracking.settings_rules import ServiceError
from calltracking.whisper import rules


def project_settings(session: Session, project: Project) -> WhisperProject:
    """The project's whisper settings (off, default template, English when never set; not added)."""
    row = session.get(WhisperProject, project.id)
    return row or WhisperProject(project_id=project.id, enabled=False, template=DEFAULT_TEMPLATE,
                                 voice=WhisperVoice.EN)


def source_settings(session: Session, source: Source) -> WhisperSource:
    """The source's whisper settings (on, the project's text, no upload when never set; not added)."""
    row = session.get(WhisperSource, source.id)
    return row or WhisperSource(source_id=source.id, enabled=True, text="", upload="")


def _text(value: str, what: str) -> str:
    try:
        return rules.check_template(value)
    except ValueError as e:
        raise ServiceError(f"{what}: {e}") from None


def set_project(session: Session, project: Project, *, enabled: Optional[bool] = None,
                template: Optional[str] = None, voice: Optional[str] = None) -> WhisperProject:
    """Change what is given; an empty template is the default one."""
    row = project_settings(session, project)
    if enabled is not None:
        row.enabled = enabled
    if template is not None:
        row.template = _text(template, "whisper template") or DEFAULT_TEMPLATE
    if voice is not None:
        if voice not in set(WhisperVoice):
            raise ServiceError(f"whisper voice: expected one of {', '.join(WhisperVoice)}, got {voice!r}")
        row.voice = WhisperVoice(voice)
    row.updated_at = utcnow()
    session.add(row)
    return row


def set_source(session: Session, source: Source, *, enabled: Optional[bool] = None,
               text: Optional[str] = None, upload: Optional[str] = None) -> WhisperSource:
    """Change what is given: ``text`` '' = the project's template; ``upload`` '' = none."""
    row = source_settings(session, source)
    if enabled is not None:
        row.enabled = enabled
    if text is not None:
        row.text = _text(text, "whisper text")
    if upload is not None:
        row.upload = upload
    row.updated_at = utcnow()
    session.add(row)
    return row
