"""`calltracking doctor` check of the operator's whisper: when a project has it on, espeak-ng
is installed, ``[asterisk] whisper_dir`` can be written, and every file the settings need
exists (else ``calltracking whisper sync`` makes them)."""
from __future__ import annotations

import os
from pathlib import Path

from calltracking.config import ConfigError
from calltracking.db import session_scope
from calltracking.doctor import FAIL, OK, WARN, Result, check
from calltracking.whisper import audio, files, rules


@check("whisper")
def _doctor_whisper(ctx):
    try:
        cfg, factory = ctx.config, ctx.sessionmaker
    except ConfigError:
        return []
    with session_scope(factory) as s:
        wanted = files.plan(s)
    if not wanted:
        return [Result(OK, "whisper", "off (no project plays a whisper)")]
    directory = Path(cfg.asterisk.whisper_dir)
    out = []
    if any(not spec.upload for spec in wanted.values()) and not audio.espeak_path():
        out.append(Result(FAIL, "whisper", "espeak-ng not found: speech cannot be made",
                          "`apt-get install espeak-ng`, or upload a recording per source"))
    if directory.is_dir() and not os.access(directory, os.W_OK | os.X_OK):
        out.append(Result(FAIL, "whisper", f"cannot write to {directory}",
                          "re-run install.sh (the directory belongs to calltracking, group asterisk)"))
    missing = [n for n in wanted if not (directory / (n + rules.EXT)).is_file()]
    if missing:
        out.append(Result(WARN, "whisper", f"{len(missing)} of {len(wanted)} whisper file(s) missing "
                          f"in {directory} (e.g. {sorted(missing)[0]}): those calls get no whisper",
                          "run `calltracking whisper sync`"))
    return out or [Result(OK, "whisper", f"{len(wanted)} file(s) in {directory}")]
