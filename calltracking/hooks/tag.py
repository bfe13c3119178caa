"""The ``tag`` hook: add a tag (``AGI(.../tag,${CHANNEL(linkedid)},callback)``) to the call.

The tag name is the argument with its whitespace collapsed, at most 100 characters; it is
created in the call's project (or, for a call not recorded yet, the only project) when
missing. A call no other hook and not the AMI listener created yet is created bare. With
several projects, a call not recorded yet is waited for up to
:data:`~calltracking.hooks.write_job.ROW_WAIT` seconds (its ``route`` may be in another
server process's spool, committed a few milliseconds later), then the tag fails.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.attribution.lookup import only_project
from calltracking.hooks import call_row
from calltracking.hooks.answer import TAG_VARIABLES, Answer, defaults
from calltracking.hooks.env import Budget, HookEnv, Unreachable, write_in_budget, write_wait
from calltracking.hooks.inputs import clean_linkedid
from calltracking.hooks.write_job import NotYetWritten
from calltracking.models import Call, Tag, call_tags

log = logging.getLogger("calltracking.hooks")


def _tag_work(env: HookEnv, linkedid: str, name: str, now) -> Callable[[Session], None]:
    """The transaction that adds the tag ``name`` to the call ``linkedid`` (both created
    when missing). Raises LookupError when there is no project to tag in."""

    def work(s: Session) -> None:
        call = s.scalars(select(Call).where(Call.pbx_id == env.pbx_id, Call.linkedid == linkedid)).first()
        project_id = call.project_id if call else None
        if project_id is None:
            only = only_project(s)
            project_id = only.id if only else None
        if project_id is None:
            if call is None:    # its route may be in another FastAGI process's spool
                raise NotYetWritten(f"call {linkedid}: not recorded yet, and no project to tag in")
            raise LookupError(f"call {linkedid}: no project to tag in")
        if call is None:
            call_row.upsert(s, dict(pbx_id=env.pbx_id, linkedid=linkedid, project_id=project_id,
                                    started_at=now, via_agi=True, updated_at=now), overwrite=())
            call_pk = s.scalars(select(Call.id).where(Call.pbx_id == env.pbx_id,
                                                      Call.linkedid == linkedid)).one()
        else:
            call_pk = call.id
        t = s.scalars(select(Tag).where(Tag.project_id == project_id, Tag.name == name)).first()
        if t is None:
            with s.begin_nested():
                s.add(Tag(project_id=project_id, name=name))
            t = s.scalars(select(Tag).where(Tag.project_id == project_id, Tag.name == name)).one()
        insert = call_row.insert(s.get_bind().dialect.name, call_tags)
        s.execute(insert.values(call_id=call_pk, tag_id=t.id).on_conflict_do_nothing())

    return work


class TagRequest:
    """One ``tag`` hook request: :meth:`run` is its database work, :meth:`fallback` the answer
    when the server answers without it (late, failed, too many waiting).

    FastAGI: the tag is handed to the writer thread exactly once, by whichever of the two
    comes first, so it is written (retried while the database is locked) even when the
    channel got the fallback answer (the defaults). ``run`` waits for the commit at most
    :func:`write_wait`: ``CT_STATUS=ok`` means written, or queued behind a locked database
    and written as soon as it allows; while the database cannot be reached at all the
    answer is the fallback (the tag stays queued for the writer's ``retry_seconds``);
    ``error`` means no project to tag in (or bad arguments). The classic script writes
    within the budget itself; its fallback writes nothing.
    """

    def __init__(self, env: HookEnv, linkedid: str, name: str):
        self.env = env
        self.now = env.clock()
        self.linkedid = clean_linkedid(linkedid)
        self.name = " ".join((name or "").split())[:100]
        self.valid = bool(self.name and self.linkedid)
        self.future = None              # the writer's future, once handed over
        self._lock = threading.Lock()

    def _hand_over(self):
        with self._lock:
            if self.future is None:
                self.future = self.env.writer.submit_work(
                    _tag_work(self.env, self.linkedid, self.name, self.now),
                    f"tag {self.name!r} of call {self.linkedid}")
            return self.future

    def run(self, budget: Optional[Budget] = None) -> dict[str, str]:
        error = Answer(status="error").variables(TAG_VARIABLES)
        if not self.valid:
            return error
        try:
            if self.env.writer is None:
                write_in_budget(self.env.session_factory, budget,
                                _tag_work(self.env, self.linkedid, self.name, self.now))
            else:
                try:
                    # a tag is a transaction, not a spooled row: it waits for its commit
                    self._hand_over().result(write_wait(self.env, budget, spooled=False))
                except TimeoutError:    # queued: the writer writes it as soon as it can
                    self.env.writer.stats["late"] += 1
                    if self.env.writer.unreachable:
                        raise Unreachable("the database cannot be reached; the tag is queued") from None
        except LookupError as e:
            if self.env.writer is None:     # (the writer thread logged it)
                log.warning("tag %r: %s", self.name, e, extra={"linkedid": self.linkedid})
            return error
        return Answer(tag=self.name).variables(TAG_VARIABLES)

    def fallback(self) -> dict[str, str]:
        if self.valid and self.env.writer is not None:
            self._hand_over()
        return defaults(self.env, "tag")


def tag(env: HookEnv, linkedid: str, name: str, budget: Optional[Budget] = None) -> dict[str, str]:
    """Add the tag ``name`` to the call (see :class:`TagRequest`)."""
    return TagRequest(env, linkedid, name).run(budget)
