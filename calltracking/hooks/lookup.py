"""The ``lookup`` hook (read-only): the variables of a call already routed, or of a DID.

``AGI(.../lookup,${CHANNEL(linkedid)}[,DID])``: a call the database knows answers with
what is stored on it (the queue: its queue, else its project's default queue); an unknown
call with a DID answers what ``route`` would (without the caller type and the caller-name
prefix, and without writing); without a DID it answers the defaults with
``CT_STATUS=unknown``.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from sqlalchemy import select

from calltracking.hooks.answer import Answer, call_id, defaults, names
from calltracking.hooks.env import Budget, HookEnv
from calltracking.hooks.inputs import clean_linkedid
from calltracking.hooks.route import route_answer
from calltracking.models import Call, Project
from calltracking.whisper.rules import lookup as whisper_file


def lookup(env: HookEnv, linkedid: str, did: str = "", budget: Optional[Budget] = None) -> dict[str, str]:
    """Read-only: the attribution variables of a call already routed (or of a DID)."""
    linkedid = clean_linkedid(linkedid)
    session = env.session_factory()
    try:
        call = session.scalars(select(Call).where(Call.pbx_id == env.pbx_id,
                                                  Call.linkedid == linkedid)).first() if linkedid else None
        if call is None:
            if did:
                answer, _ = route_answer(env, did, linkedid, "", "")
                return dataclasses.replace(answer, first_call=None, callerid_name=None).variables()
            return defaults(env, "route", did, linkedid, status="unknown")
        project = session.get(Project, call.project_id) if call.project_id else None
        source, campaign = names(session, call.source_id, call.campaign_id)
        return Answer(call_id=call_id(env, linkedid), project=project.key if project else "",
                      source=source, campaign=campaign, attribution=call.attribution,
                      queue=call.queue or env.default_queue(project), target=call.target,
                      first_call=call.first_call, record=bool(call.record),
                      confidence=call.attribution_confidence,
                      whisper=whisper_file(env.config.asterisk.whisper_dir, call.source_id,
                                           call.campaign_id)).variables()
    finally:
        session.close()
