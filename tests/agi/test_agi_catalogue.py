"""The catalogue version (migration 0009 triggers) and the cache that re-reads only on change."""
from __future__ import annotations

import time

from sqlalchemy import text

from calltracking.attribution import catalogue
from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.models import Call, RoutingRule, utcnow


def _version(engine):
    with engine.connect() as c:
        return catalogue.catalogue_version(c)


def test_triggers_count_catalogue_changes_only(engine, session_factory, data):
    v0 = _version(engine)
    assert isinstance(v0, int)
    steps = [
        ("UPDATE sources SET name = 'Google Ads 2' WHERE name = 'Google Ads'", True),
        ("UPDATE tracking_numbers SET active = false WHERE number = '+74950001002'", True),
        ("UPDATE tracking_numbers SET description = 'note' WHERE number = '+74950001001'", False),
        ("UPDATE number_pools SET exhausted_count = exhausted_count + 1", False),   # DNI counter
        ("UPDATE number_pools SET hold_seconds = 600", True),
        ("UPDATE projects SET default_queue = 'other' WHERE key = 'acme'", True),
        ("DELETE FROM promo_codes", False),
    ]
    for sql, counts in steps:
        before = _version(engine)
        with engine.begin() as c:             # raw SQL: no ORM hook could see these
            c.execute(text(sql))
        assert (_version(engine) > before) is counts, sql
    before = _version(engine)
    with session_scope(session_factory) as s:     # calls are written all day: no change
        s.add(Call(pbx_id="pbx1", linkedid="v.1", project_id=data["project"], started_at=utcnow()))
    assert _version(engine) == before
    with session_scope(session_factory) as s:
        s.add(RoutingRule(project_id=data["project"], name="r", priority=5, queue="q"))
    assert _version(engine) > before
    before = _version(engine)
    with session_scope(session_factory) as s:
        p = s.get(svc.Project, data["project"])
        svc.add_number(s, p, "+74950006001", source=svc.get_source(s, p, "Billboard"))
    assert _version(engine) > before


def test_cache_rereads_only_when_the_version_moved(engine, session_factory, data):
    cache = catalogue.HookCache(rules_ttl=0.05)
    with engine.connect() as c:
        first = cache.catalogue(c, session_factory)
    assert first.version is not None and "+74950001001" in first.numbers

    def settle():
        """Let the snapshot age past the TTL, trigger the background check, wait for it."""
        time.sleep(0.06)
        with engine.connect() as c:
            cache.catalogue(c, session_factory)
        deadline = time.monotonic() + 20
        while cache._refreshing:        # the check runs in a background thread
            assert time.monotonic() < deadline, "the background check never finished"
            time.sleep(0.01)
        return cache._cat

    checked = first.loaded_at
    assert settle() is first and first.loaded_at > checked       # unchanged: same snapshot
    with session_scope(session_factory) as s:
        s.add(RoutingRule(project_id=data["project"], name="late", priority=1, queue="late-q"))
    for _ in range(50):
        cat = settle()
        if cat is not first:
            break
    assert cat is not first and cat.version > first.version
    assert [r.queue for r in cat.rules[data["project"]]][0] == "late-q"


def test_old_schema_without_the_table_still_reloads(engine, session_factory, data):
    with engine.begin() as c:
        c.execute(text("DROP TABLE catalogue_version" + (" CASCADE" if engine.dialect.name ==
                                                          "postgresql" else "")))
    with engine.connect() as c:
        assert catalogue.catalogue_version(c) is None
        cat = catalogue.load_catalogue(c)               # the transaction survived the miss
    assert cat.version is None and "+74950001001" in cat.numbers
