"""`calltracking doctor` check of transcripts: the configured backend can start (package,
program, model directory) and the backlog with the failures."""
from __future__ import annotations

from calltracking.config import ConfigError
from calltracking.db import session_scope
from calltracking.doctor import FAIL, INFO, OK, WARN, Result, check
from calltracking.transcripts.backends import backend_problem
from calltracking.transcripts.backlog import figures


@check("transcripts")
def _doctor_transcripts(ctx):
    try:
        cfg = ctx.config.transcripts
    except ConfigError:
        return []
    if cfg.backend == "none":
        return [Result(INFO, "transcripts", "off ([transcripts] backend = none)")]
    problem = backend_problem(cfg)
    if problem:
        return [Result(FAIL, "transcripts", f"backend {cfg.backend}: {problem}",
                       "install what is named, or set [transcripts] backend = none")]
    out = [Result(OK, "transcripts", f"backend {cfg.backend} is ready")]
    try:
        factory = ctx.sessionmaker
    except ConfigError:
        return out
    with session_scope(factory) as s:
        fig = figures(s, cfg)
    detail = (f"{fig['backlog']} recorded call(s) waiting, {fig['statuses']['ok']} transcribed, "
              f"{fig['statuses']['failed']} failed for good")
    status = WARN if fig["statuses"]["failed"] else OK
    out.append(Result(status, "transcripts backlog", detail,
                      "see the failed calls' errors on their call cards; `calltracking jobs run transcripts` "
                      "runs the job once in the foreground"))
    return out
