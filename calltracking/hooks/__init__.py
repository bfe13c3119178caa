"""The AGI hooks ``route``, ``promo``, ``tag`` and ``lookup``: the core behind both adapters.

The FastAGI server (``agi/server.py``) and the classic stdin/stdout script
(``agi/classic.py``) translate the AGI protocol and call these functions; each takes a
:class:`HookEnv` (configuration, session factory, clock, caches) and the hook's inputs and
returns the ``{variable: value}`` dict to set on the channel. :func:`defaults` is the safe
answer used when the database is slow, locked or down: the adapters answer with it instead
of leaving the channel waiting.

One module per hook (:mod:`.route`, :mod:`.promo`, :mod:`.tag`, :mod:`.lookup`); what they
answer: :mod:`.answer`; their environment, time budget and budgeted write: :mod:`.env`;
the call row's upsert: :mod:`.call_row`; the FastAGI writer thread: :mod:`.writer` (its jobs
:mod:`.write_job`), and the spool that keeps its rows safe until committed: :mod:`.spool`. How a
call is attributed and routed is :mod:`calltracking.attribution`.

This package re-exports what the adapters use. The hook functions shadow their modules'
names here (``calltracking.hooks.route`` is the function): import from a module with
``from calltracking.hooks.route import ...``.
"""
from calltracking.attribution.catalogue import HookCache
from calltracking.hooks.answer import HOOKS, defaults
from calltracking.hooks.env import Budget, HookEnv
from calltracking.hooks.inputs import normalize
from calltracking.hooks.lookup import lookup
from calltracking.hooks.promo import promo
from calltracking.hooks.route import (ROUTE_OVERWRITE, plan_route, plan_route_steps,
                                     preload_fallback_queues, route)
from calltracking.hooks.tag import TagRequest, tag

__all__ = ["HOOKS", "Budget", "HookCache", "HookEnv", "ROUTE_OVERWRITE", "TagRequest", "defaults",
           "lookup", "normalize", "plan_route", "plan_route_steps", "preload_fallback_queues",
           "promo", "route", "tag"]
