"""Where a call's recording is: its file names, the finder, and what may be touched.

Where the file is (:func:`locate`): the AMI listener stores MixMonitor's file name in
``Call.recording_file`` (absolute, or relative to ``[recordings] dir``). When that file is not
there, the same name with another audio extension or as a split pair is tried; then (or when
the name is empty) the call id of the dialplan, ``CT_CALL_ID`` = ``<pbx_id>-<linkedid>`` (or the
bare linkedid), in ``dir`` and in its sub-directories one and three levels down
(``dir/YYYY/MM/DD``).

Separate legs: two files ``<name>-in.<ext>`` (MixMonitor ``r()``: what the caller says) and
``<name>-out.<ext>`` (``t()``: what the operator says) are the two sides of one call (also
``-caller``/``-operator``, ``-rx``/``-tx``, ``-r``/``-t``): :data:`SPLIT_SUFFIXES`. When the
named file is a mix with such a pair beside it (the include records ``NAME.wav`` plus
``NAME-in.wav``/``NAME-out.wav``, docs/dialplan.md), the pair is the recording and the mix is
a leftover original (:func:`mix_beside`), deleted with the legs once converted.

Names: only a known audio extension (:data:`AUDIO_EXT`) is an extension — the Linkedid's dot
is part of the name (:func:`split_ext`); a converted file is named after the whole original
name (:func:`converted_name`).

Containment: only files whose real path (symbolic links followed) lies under ``[recordings]
dir`` (:func:`inside`) are ever read, converted, served or deleted. A ``recording_file`` from
AMI that points elsewhere (``../``, an absolute path outside, a link out of the directory)
counts as missing.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

from sqlalchemy.orm.exc import DetachedInstanceError

from calltracking.models import Call

log = logging.getLogger(__name__)

AUDIO_EXT = (".wav", ".WAV", ".gsm", ".mp3", ".ogg", ".opus", ".flac")
SPLIT_SUFFIXES = (("-in", "-out"), ("-caller", "-operator"), ("-rx", "-tx"), ("-r", "-t"))
_AUDIO_EXT_LOWER = {e.lower() for e in AUDIO_EXT}


# ------------------------------------------------------------------- names
def _resolve(directory: str, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else Path(directory) / p


def inside(directory: str, path: Path | str) -> bool:
    """True when ``path``'s real path (links followed, ``..`` resolved) lies under ``directory``'s."""
    root = os.path.realpath(directory)
    real = os.path.realpath(path)
    return os.path.commonpath([root, real]) == root


def split_ext(name: str) -> tuple[str, str]:
    """(name without its audio extension, the extension): only a known audio extension is one,
    so ``e2e-1796302442.89.wav`` -> (``e2e-1796302442.89``, ``.wav``) and a name without one
    (``e2e-1796302442.89``) stays whole. ``Path.stem``/``with_suffix`` would cut the Linkedid."""
    dot = name.rfind(".")
    if dot > 0 and name[dot:].lower() in _AUDIO_EXT_LOWER:
        return name[:dot], name[dot:]
    return name, ""


def _split_partner(p: Path) -> Optional[tuple[Path, Path]]:
    base, ext = split_ext(p.name)
    for a, b in SPLIT_SUFFIXES:
        for mine, other, first in ((a, b, True), (b, a, False)):
            if base.endswith(mine):
                q = p.with_name(base[: -len(mine)] + other + ext)
                if q.is_file():
                    return (p, q) if first else (q, p)
    return None


def _pair_of(base: Path) -> Optional[tuple[Path, Path]]:
    """The split pair ``base-in/-out.<ext>`` (any of :data:`SPLIT_SUFFIXES`), or None."""
    for ext in AUDIO_EXT:
        for a, b in SPLIT_SUFFIXES:
            x, y = base.with_name(base.name + a + ext), base.with_name(base.name + b + ext)
            if x.is_file() and y.is_file():
                return x, y
    return None


def mix_beside(directory: str, files: list[Path]) -> list[Path]:
    """For a pair of legs ``NAME-in.<ext>``/``NAME-out.<ext>``: the mix ``NAME.<ext>`` recorded
    with them, when it exists under ``directory`` ([] otherwise, and for a single file)."""
    if len(files) != 2:
        return []
    mix = converted_name(files, split_ext(files[0].name)[1].lstrip(".") or "wav")
    return [mix] if mix.is_file() and inside(directory, mix) else []


def _by_stem(base: Path) -> list[Path]:
    """The split pair ``base-in/-out.<ext>``, else the file ``base.<audio ext>``."""
    pair = _pair_of(base)
    if pair:
        return list(pair)
    for ext in AUDIO_EXT:
        single = base.with_name(base.name + ext)
        if single.is_file():
            return [single]
    return []


def converted_name(files: list[Path], fmt: str) -> Path:
    """Where the converted file of ``files`` goes: next to the first one, named after the
    whole original name with only its audio extension replaced (a pair ``NAME-in``/``NAME-out``
    gives ``NAME``): ``e2e-1796302442.89.wav`` -> ``e2e-1796302442.89.mp3``, so calls whose
    Linkedids differ only after the dot never share a file."""
    p = files[0]
    base, _ext = split_ext(p.name)
    if len(files) == 2:
        for a, _b in SPLIT_SUFFIXES:
            if base.endswith(a):
                base = base[: -len(a)]
                break
    return p.with_name(f"{base}.{fmt}")


# ------------------------------------------------------------------ finder
def locate(directory: str, call: Call) -> list[Path]:
    """The original recording file(s) of a call: [], [mix or stereo] or [caller, operator].
    Files outside ``directory`` (see :func:`inside`) are never returned."""
    if call.recording_file:
        p = _resolve(directory, call.recording_file)
        if p.is_file():
            pair = _split_partner(p) or _pair_of(p.with_name(split_ext(p.name)[0]))
            found = list(pair) if pair else [p]
        else:
            found = _by_stem(p.with_name(split_ext(p.name)[0]))
        if found and all(inside(directory, f) for f in found):
            return found
        if found:
            log.warning("recording of call %s: %s is outside [recordings] dir %s; ignored",
                        call.id, call.recording_file, directory)
    root = Path(directory)
    names = [f"{call.pbx_id}-{call.linkedid}", call.linkedid] if call.linkedid else []
    for name in names:
        for sub in ("", "*", "*/*/*"):
            for d in (root.glob(sub) if sub else [root]):
                if d.is_dir():
                    found = _by_stem(d / name)
                    if found and all(inside(directory, f) for f in found):
                        return found
    return []


# ------------------------------------------------------------- for users
def recording_name(call: Call) -> str:
    """A call's recording as users are given it (the call card, ``calls list``, the API, the
    journal CSV): the converted file once the recordings job has made it (the originals are
    deleted then), until then the file Asterisk wrote (``Call.recording_file``); "" for none."""
    try:
        info = call.recording_info
    except DetachedInstanceError:  # loaded without its row and out of its session: not processed yet
        info = None
    return (info.file if info is not None and info.status == "ok" and info.file else "") \
        or call.recording_file or ""


def recording_state(call: Call, directory: str) -> tuple[str, Optional[Path]]:
    """("ok", path) for a playable file, else (none|pending|missing|error|purged, None)."""
    try:
        info = call.recording_info
    except DetachedInstanceError:  # loaded without its row and out of its session: not processed yet
        info = None
    if info is not None and info.status == "purged":
        return "purged", None
    candidates = []
    if info is not None and info.status == "ok" and info.file:
        candidates.append(_resolve(directory, info.file))
    elif call.recording_file:
        candidates.append(_resolve(directory, call.recording_file))
    if not candidates:
        if info is None:
            return ("pending" if call.record else "none"), None
        return ("error" if info.status == "error" else "missing"), None
    for p in candidates:
        if not inside(directory, p):
            return "missing", None  # outside the recordings directory: never served
        real = os.path.realpath(p)
        if os.path.isfile(real) and os.access(real, os.R_OK):
            return "ok", Path(real)
    return ("error" if info is not None and info.status == "error" else "missing"), None


def recording_path(call: Call, directory: str) -> Optional[Path]:
    """The playable file of a call, or None (missing, unreadable, purged, none)."""
    return recording_state(call, directory)[1]
