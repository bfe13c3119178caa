"""The ``route`` hook: attribute an incoming call, choose its queue, record the call.

``AGI(agi://.../route,${EXTEN},${CHANNEL(linkedid)})``: the DID's mapping comes from the
catalogue (:mod:`calltracking.attribution.catalogue`), the attribution from
:func:`calltracking.attribution.fast.attribute_number`, first or repeat caller from
:func:`calltracking.attribution.fast.first_call` (both read as steps in :func:`route_steps`),
the queue from the project's routing rules (:mod:`calltracking.attribution.routing`), which may
look at the number that forwarded the call (``agi_rdnis``, kept on the row as
``forwarded_from``); a call forwarded from one of the project's own static tracking numbers is
attributed by that number (:func:`calltracking.attribution.fast.forwarded_mapping`). The call
is recorded when the matching rule says so, else when its number records and the call is
attributed. With ``[agi] callerid_prefix`` (and the number's ``callerid_prefix``) an attributed
call's ``CALLERID(name)`` gets the source's short label in front. ``CT_WHISPER`` names the
operator's whisper file when it exists (:func:`calltracking.whisper.rules.lookup`).
"""
from __future__ import annotations

from typing import Optional

from calltracking.attribution import routing
from calltracking.attribution.fast import attribute_steps, first_call_steps, forwarded_mapping
from calltracking.attribution.lookup import time_to_call
from calltracking.attribution.rawsql import Reads, Sync, run_reads
from calltracking.enums import AttributionKind
from calltracking.hooks import call_row, inputs
from calltracking.hooks.answer import Answer, call_id, prefixed_name
from calltracking.hooks.env import Budget, HookEnv, write_in_budget
from calltracking.whisper.rules import lookup as whisper_file

#: What a later ``route`` of the same call replaces (the AMI listener may have created the row).
ROUTE_OVERWRITE = ("source_id", "campaign_id", "session_id", "routing_rule_id", "attribution",
                   "attribution_confidence", "candidate_count", "queue", "target", "first_call",
                   "time_to_call_seconds", "record", "project_id", "tracking_number_id",
                   "forwarded_from")


def route(env: HookEnv, did: str, linkedid: str, caller: str = "", caller_name: str = "",
          budget: Optional[Budget] = None, write: bool = True, rdnis: str = "") -> dict[str, str]:
    """Attribute the call, pick its queue, record it; returns the CT_* variables.

    ``write=False`` computes the answer without creating the call (dry run). The FastAGI
    server calls :func:`plan_route` and writes the row through its writer thread instead.
    """
    out, values = plan_route(env, did, linkedid, caller, caller_name, rdnis)
    if write and values["linkedid"]:
        write_in_budget(env.session_factory, budget,
                        lambda s: call_row.upsert(s, values, overwrite=ROUTE_OVERWRITE))
    return out


def plan_route(env: HookEnv, did: str, linkedid: str, caller: str = "",
               caller_name: str = "", rdnis: str = "") -> tuple[dict[str, str], dict]:
    """The reads and decisions of :func:`route`: ``(CT_* variables, the call row to upsert)``.
    ``rdnis``: the forwarding number as Asterisk gives it (``agi_rdnis``), cleaned here."""
    answer, values = route_answer(env, did, linkedid, caller, caller_name, rdnis)
    return answer.variables(), values


def plan_route_steps(env: HookEnv, did: str, linkedid: str, caller: str = "",
                     caller_name: str = "", rdnis: str = "") -> Reads:
    """:func:`plan_route` as steps (:data:`~calltracking.attribution.rawsql.Reads`): the FastAGI
    server runs them on its event loop's PostgreSQL connections."""
    answer, values = yield from route_steps(env, did, linkedid, caller, caller_name, rdnis)
    return answer.variables(), values


def route_answer(env: HookEnv, did: str, linkedid: str, caller: str,
                 raw_name: str, rdnis: str = "") -> tuple[Answer, dict]:
    """:func:`plan_route` with the :class:`Answer` itself (``lookup`` answers a part of it)."""
    return env.read(lambda conn: run_reads(conn, route_steps(env, did, linkedid, caller,
                                                             raw_name, rdnis)))


def route_steps(env: HookEnv, did: str, linkedid: str, caller: str,
                raw_name: str, rdnis: str = "") -> Reads:
    """:func:`route_answer` as steps: the number's mapping from the catalogue's snapshot, then
    the attribution's and the caller's one statement each, then the decisions."""
    now = env.clock()
    linkedid = inputs.clean_linkedid(linkedid)
    number = inputs.caller_number(caller, env.region)
    name = inputs.caller_name(raw_name)
    forwarded = inputs.forwarded_from(rdnis, env.region)
    e164, did_text = inputs.dialled(did, env.region)

    cat, info = yield from _mapping(env, e164, did_text)
    if forwarded.startswith("+"):        # forwarded from one of the project's own numbers?
        cat, info = forwarded_mapping(cat, info, *(yield from _mapping(env, forwarded, forwarded)))
    dialect = env.dialect
    att = yield from attribute_steps(dialect, info, now)
    first = yield from first_call_steps(dialect, env.pbx_id, info.project.id if info.project else None,
                                        number, now, env.first_call_window(info.project), linkedid)
    project, vs = info.project, att.session
    rule = None
    if project is not None:
        rule = routing.choose(cat.rules.get(project.id, []), routing.CallFacts.of(
            routing.local_now(now, project.timezone), att.source_id, att.campaign_id, vs, forwarded),
            ordered=True)
    default_queue = env.default_queue(project)
    queue = routing.queue_for(rule, default_queue)
    target = rule.target if rule else ""
    record = routing.records(rule, info.active and info.record, att.kind != AttributionKind.NONE)
    source_name, label, campaign_name = cat.names(att.source_id, att.campaign_id)
    values = dict(
        pbx_id=env.pbx_id, linkedid=linkedid, project_id=project.id if project else None,
        tracking_number_id=info.tn_id, did=did_text, caller_number=number, caller_name=name,
        forwarded_from=forwarded,
        source_id=att.source_id, campaign_id=att.campaign_id, session_id=vs.id if vs else None,
        routing_rule_id=rule.id if rule else None, attribution=att.kind,
        attribution_confidence=att.confidence, candidate_count=att.candidates,
        queue=queue[:80], target=target[:200], started_at=now, first_call=first,
        time_to_call_seconds=time_to_call(vs.first_seen, now) if vs is not None else None,
        record=record, via_agi=True, updated_at=now,
    )
    env.cache.remember_queue(did_text, default_queue)
    prefix = (env.config.agi.callerid_prefix and label and att.kind != AttributionKind.NONE
              and info.callerid_prefix)
    answer = Answer(call_id=call_id(env, linkedid), project=project.key if project else "",
                    source=source_name, campaign=campaign_name, attribution=att.kind, queue=queue,
                    target=target, first_call=first, record=record, confidence=att.confidence,
                    whisper=whisper_file(env.config.asterisk.whisper_dir, att.source_id, att.campaign_id),
                    callerid_name=prefixed_name(label, name) if prefix else None)
    return answer, values


def _mapping(env: HookEnv, e164, did: str) -> Reads:
    """``(catalogue, NumberInfo)`` of a DID: from the snapshot, else read (a :class:`Sync` step)."""
    found = env.cache.known(env.session_factory, e164, did)
    if found is None:
        found = yield Sync(lambda conn: env.cache.number(conn, env.session_factory, e164, did))
    return found


def preload_fallback_queues(env: HookEnv) -> int:
    """Warm up: read the catalogue and remember every active DID's default queue (the
    fallback queue while the database is down). Returns the number of DIDs read."""
    session = env.session_factory()
    try:
        cat = env.cache.catalogue(session.connection(), env.session_factory)
    finally:
        session.close()
    for number, info in cat.numbers.items():
        if info.active:
            env.cache.remember_queue(number, env.default_queue(info.project))
    return len(cat.numbers)
