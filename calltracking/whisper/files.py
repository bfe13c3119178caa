"""The whisper files a configuration needs, made in ``[asterisk] whisper_dir``.

:func:`plan` reads the settings: for every active source of a project whose whisper is on
(and not turned off for the source), the source's file and, when the text names the
campaign, one file per active campaign; a source with an uploaded recording gets that
recording as its one file. :func:`sync` makes the missing or changed files and removes the
files nothing needs any more (only names :func:`~.rules.file_name` makes; uploads and other
files stay). What a file was made from is kept beside it (``<name>.key``, a digest of the
text and voice, or of the upload), so an unchanged file is never made again. It runs when
the settings change, from ``calltracking whisper sync`` and as the scheduler's ``whisper``
job; never during a call.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.models import Campaign, Project, Source, WhisperProject, WhisperSource
from calltracking.models.whisper import DEFAULT_TEMPLATE
from calltracking.whisper import audio, rules

log = logging.getLogger(__name__)

#: Uploaded recordings, converted, as ``upload-s<source id>.wav``.
UPLOAD_PREFIX = "upload-"


@dataclass(frozen=True)
class Spec:
    """What one whisper file is made from: spoken text and voice, or an uploaded file."""

    name: str
    text: str = ""
    voice: str = ""
    upload: str = ""

    def key(self, directory: Path) -> str:
        """A digest of what the file is made from (an upload: its content)."""
        if self.upload:
            try:
                digest = hashlib.sha256((directory / self.upload).read_bytes()).hexdigest()
            except OSError:
                digest = "missing"
            return f"upload:{digest}"
        return "speech:" + hashlib.sha256(json.dumps([self.text, self.voice]).encode()).hexdigest()


@dataclass
class SyncResult:
    """What :func:`sync` did: names made, kept as they were, removed; errors by name."""

    made: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"made {len(self.made)}, kept {len(self.kept)}, removed {len(self.removed)}, "
                f"errors {len(self.errors)}")


def upload_name(source_id: int) -> str:
    """Where a source's uploaded recording is kept, converted (in the whisper directory)."""
    return f"{UPLOAD_PREFIX}s{source_id}{rules.EXT}"


def source_text(project: Project, settings: Optional[WhisperProject], source: Source,
                own: Optional[WhisperSource], campaign: Optional[Campaign]) -> str:
    """The text spoken for a call from ``source`` (and ``campaign``)."""
    template = (own.text if own is not None and own.text else None) or \
        (settings.template if settings is not None and settings.template else DEFAULT_TEMPLATE)
    return rules.render(template, source=source.name, campaign=campaign.name if campaign else "",
                        label=source.short_label, project=project.name)


def plan(session: Session) -> dict[str, Spec]:
    """``{file name: Spec}``: every whisper file the settings need."""
    q = select(Project, WhisperProject).join(WhisperProject, WhisperProject.project_id == Project.id)
    out: dict[str, Spec] = {}
    for project, settings in session.execute(q.where(WhisperProject.enabled.is_(True))).all():
        rows = session.execute(
            select(Source, WhisperSource).outerjoin(WhisperSource, WhisperSource.source_id == Source.id)
            .where(Source.project_id == project.id, Source.active.is_(True))).all()
        campaigns: dict[int, list[Campaign]] = {}
        for c in session.scalars(select(Campaign).where(Campaign.project_id == project.id,
                                                        Campaign.active.is_(True))):
            campaigns.setdefault(c.source_id, []).append(c)
        for source, own in rows:
            if own is not None and not own.enabled:
                continue
            name = rules.file_name(source.id)
            if own is not None and own.upload:
                out[name] = Spec(name, upload=own.upload)
                continue
            text = source_text(project, settings, source, own, None)
            if text:
                out[name] = Spec(name, text=text, voice=settings.voice)
            template = (own.text if own is not None and own.text else "") or settings.template
            if rules.names_campaign(template or DEFAULT_TEMPLATE):
                for c in campaigns.get(source.id, []):
                    cname = rules.file_name(source.id, c.id)
                    ctext = source_text(project, settings, source, own, c)
                    if ctext:
                        out[cname] = Spec(cname, text=ctext, voice=settings.voice)
    return out


def make(spec: Spec, directory: Path) -> None:
    """Make one file (speech or the converted upload) and its ``.key``."""
    if spec.upload:
        seg = audio.read_wav(directory / spec.upload)
    else:
        seg = audio.synthesize(spec.text, spec.voice)
    audio.write(seg, directory / (spec.name + rules.EXT))
    _write_key(directory / (spec.name + ".key"), spec.key(directory))


def _write_key(path: Path, key: str) -> None:
    tmp = path.with_name(".tmp-" + path.name)
    tmp.write_text(key)
    os.chmod(tmp, audio.FILE_MODE)
    os.replace(tmp, path)


def sync(session: Session, directory: str | Path) -> SyncResult:
    """Make every file :func:`plan` needs that is missing or out of date; remove the whisper
    files nothing needs."""
    return apply(plan(session), directory)


def apply(wanted: dict[str, Spec], directory: str | Path) -> SyncResult:
    """:func:`sync` with the plan already read (no database needed while files are made)."""
    directory = Path(directory)
    result = SyncResult()
    if not wanted and not directory.is_dir():
        return result                       # no whisper anywhere: no directory needed
    directory.mkdir(mode=audio.DIR_MODE, parents=True, exist_ok=True)
    for name, spec in sorted(wanted.items()):
        wav, key = directory / (name + rules.EXT), directory / (name + ".key")
        try:
            if wav.is_file() and key.is_file() and key.read_text() == spec.key(directory):
                result.kept.append(name)
                continue
            make(spec, directory)
            result.made.append(name)
        except (audio.WhisperAudioError, OSError, ValueError) as e:
            result.errors[name] = str(e)
            log.warning("whisper %s: %s", name, e)
    for path in directory.iterdir():
        stem, ext = os.path.splitext(path.name)
        if ext in (rules.EXT, ".key") and rules.is_whisper_name(stem) and stem not in wanted:
            path.unlink(missing_ok=True)
            if ext == rules.EXT:
                result.removed.append(stem)
    return result


def save_upload(directory: str | Path, source_id: int, data: bytes) -> str:
    """Convert an uploaded recording and keep it as the source's upload; returns its name.
    Raises :class:`~.audio.WhisperAudioError` for a file that is not usable audio."""
    seg = audio.from_upload(data)
    name = upload_name(source_id)
    audio.write(seg, Path(directory) / name)
    return name


def remove_upload(directory: str | Path, source_id: int) -> None:
    """Delete a source's uploaded recording (its whisper file goes at the next sync)."""
    (Path(directory) / upload_name(source_id)).unlink(missing_ok=True)
