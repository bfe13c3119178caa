"""The ``promo`` hook: a promo code the caller typed attributes the call to its source.

The code (digits and letters, at most 20) must be active and within its validity in the
call's project (or, for a call not routed yet, the only project); exactly one code must
match. A valid code re-attributes the call (``promo``, confidence 1) to the code's
source and campaign, and, for a code issued to one visitor session (the website snippet),
to that session; the queue is chosen again by the project's routing rules (with the number
that forwarded the call, as the ``route`` hook kept it). Codes are
issued by :mod:`calltracking.attribution.promo`.
"""
from __future__ import annotations

import re
from typing import Optional

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from calltracking.attribution import routing
from calltracking.attribution.lookup import CERTAIN, only_project, time_to_call
from calltracking.enums import AttributionKind
from calltracking.hooks import call_row
from calltracking.hooks.answer import PROMO_REJECTED, PROMO_VARIABLES, Answer, call_id, names
from calltracking.hooks.env import Budget, HookEnv, write_in_budget, write_wait
from calltracking.hooks.inputs import clean_linkedid
from calltracking.models import Call, Project, PromoCode, VisitorSession
from calltracking.whisper.rules import lookup as whisper_file

#: What a valid promo code replaces on the call.
PROMO_OVERWRITE = ("project_id", "source_id", "campaign_id", "promo_code_id", "session_id", "attribution",
                   "attribution_confidence", "candidate_count", "routing_rule_id", "queue", "target",
                   "time_to_call_seconds")

_NOT_CODE = re.compile(r"[^0-9A-Za-z]")


def promo(env: HookEnv, linkedid: str, code: str, budget: Optional[Budget] = None) -> dict[str, str]:
    """Check a promo code typed by the caller; a valid one attributes the call to its source.

    Returns ``CT_PROMO=valid`` with the new attribution and queue, or
    ``CT_PROMO=invalid`` (nothing else changes).
    """
    now = env.clock()
    linkedid = clean_linkedid(linkedid)
    code = _NOT_CODE.sub("", code or "")[:20]
    invalid = Answer(promo="invalid").variables(PROMO_REJECTED)
    if not code:
        return invalid
    session = env.session_factory()
    try:
        call = _call(env, session, linkedid)
        project = session.get(Project, call.project_id) if call and call.project_id else only_project(session)
        conds = [PromoCode.code == code, PromoCode.active.is_(True),
                 or_(PromoCode.valid_from.is_(None), PromoCode.valid_from <= now),
                 or_(PromoCode.valid_to.is_(None), PromoCode.valid_to >= now)]
        if project is not None:
            conds.append(PromoCode.project_id == project.id)
        pc = session.scalars(select(PromoCode).where(and_(*conds)).limit(2)).all()
        if len(pc) != 1:
            return invalid
        pc = pc[0]
        if project is None:
            project = session.get(Project, pc.project_id)
        vs = session.get(VisitorSession, pc.session_id) if pc.session_id else None
        tz = project.timezone if project else env.config.general.timezone
        rules = env.cache.catalogue(session.connection(), env.session_factory).rules.get(project.id, [])
        rule = routing.choose(rules, routing.CallFacts.of(routing.local_now(now, tz), pc.source_id,
                                                          pc.campaign_id, vs,
                                                          call.forwarded_from if call else ""))
        queue = routing.queue_for(rule, env.default_queue(project))
        target = rule.target if rule else ""
        source, campaign = names(session, pc.source_id, pc.campaign_id)
        values = dict(pbx_id=env.pbx_id, linkedid=linkedid, project_id=project.id,
                      source_id=pc.source_id, campaign_id=pc.campaign_id, promo_code_id=pc.id,
                      session_id=pc.session_id, attribution=AttributionKind.PROMO,
                      attribution_confidence=CERTAIN, candidate_count=None,
                      routing_rule_id=rule.id if rule else None, queue=queue[:80],
                      target=target[:200], started_at=now, via_agi=True, updated_at=now)
        if vs is not None:          # a code issued to one visitor session (website snippet)
            values["time_to_call_seconds"] = time_to_call(vs.first_seen, now)
        out = Answer(promo="valid", call_id=call_id(env, linkedid), project=project.key, source=source,
                     campaign=campaign, attribution=AttributionKind.PROMO, queue=queue, target=target,
                     confidence=CERTAIN,
                     whisper=whisper_file(env.config.asterisk.whisper_dir, pc.source_id, pc.campaign_id),
                     ).variables(PROMO_VARIABLES)
    finally:
        session.close()
    if linkedid:
        if env.writer is not None:      # FastAGI: the writer thread, retried until written
            env.writer.write(values, PROMO_OVERWRITE, wait=write_wait(env, budget),
                             unspooled_wait=write_wait(env, budget, spooled=False))
        else:
            write_in_budget(env.session_factory, budget,
                            lambda s: call_row.upsert(s, values, overwrite=PROMO_OVERWRITE))
    return out


def _call(env: HookEnv, session: Session, linkedid: str) -> Optional[Call]:
    if not linkedid:
        return None
    return session.scalars(select(Call).where(Call.pbx_id == env.pbx_id, Call.linkedid == linkedid)).first()
