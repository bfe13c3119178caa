"""Migration 0017 (forwarded_from): the catalogue triggers of routing_rules survive it both ways."""
from __future__ import annotations

from sqlalchemy import inspect, text

from calltracking import migrate
from calltracking.db import make_engine


def _bumps(eng) -> bool:
    """Are the three catalogue triggers of routing_rules (migration 0009) in place?"""
    sql = ("SELECT tgname FROM pg_trigger WHERE tgrelid = 'routing_rules'::regclass AND NOT tgisinternal"
           if eng.dialect.name == "postgresql" else
           "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'routing_rules'")
    with eng.connect() as c:
        names = set(c.execute(text(sql)).scalars())
    return names == {f"ct_catalogue_routing_rules_{x}" for x in ("ins", "del", "upd")}


def test_0017_adds_the_columns_and_keeps_the_catalogue_triggers(db_factory):
    url = db_factory.empty()
    migrate.upgrade(url, "0016")
    eng = make_engine(url)
    try:
        assert _bumps(eng)
        migrate.upgrade(url, "0017")
        assert _bumps(eng)
        cols = {t: {c["name"] for c in inspect(eng).get_columns(t)} for t in ("calls", "routing_rules")}
        assert all("forwarded_from" in c for c in cols.values())
        migrate.downgrade(url, "0016")
        assert _bumps(eng)
        assert "forwarded_from" not in {c["name"] for c in inspect(make_engine(url)).get_columns("calls")}
    finally:
        eng.dispose()
