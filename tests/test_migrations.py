"""Migrations go up and down on the backend under test, and match the models."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from calltracking import migrate
from calltracking.db import make_engine
from calltracking.models import Base
from calltracking.transcripts.search import is_search_index


def _revisions():
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_single_head_and_linear_history():
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    revs = _revisions()
    assert revs[0] == "0001" and migrate.head_revision() == revs[-1]


def test_upgrade_creates_schema_with_own_version_table(db_factory):
    url = db_factory.empty()
    migrate.upgrade(url)
    eng = make_engine(url)
    try:
        tables = set(inspect(eng).get_table_names())
        assert "calltracking_alembic_version" in tables
        assert "alembic_version" not in tables
        assert set(Base.metadata.tables) <= tables
        assert migrate.is_at_head(eng)
    finally:
        eng.dispose()


def test_models_match_migrations(db_url):
    eng = make_engine(db_url)
    try:
        with eng.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "version_table": migrate.VERSION_TABLE,
                                                         "include_name": is_search_index})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        eng.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_downgrade_one_step_then_all_then_up(db_factory):
    url = db_factory.empty()
    migrate.upgrade(url)
    eng = make_engine(url)
    try:
        revs = _revisions()
        migrate.downgrade(url, "-1")
        expected = revs[-2] if len(revs) > 1 else None
        assert migrate.current_revision(eng) == expected
        migrate.downgrade(url, "base")
        assert migrate.current_revision(eng) is None
        left = set(inspect(eng).get_table_names()) - {"calltracking_alembic_version"}
        assert left == set()
        migrate.upgrade(url)
        assert migrate.is_at_head(eng)
    finally:
        eng.dispose()


def test_each_step_down_and_up(db_factory):
    """Every revision's downgrade undoes its upgrade (walk the chain step by step)."""
    url = db_factory.empty()
    eng = make_engine(url)
    try:
        for rev in _revisions():
            migrate.upgrade(url, rev)
            assert migrate.current_revision(eng) == rev
            before = set(inspect(eng).get_table_names())
            migrate.downgrade(url, "-1")
            migrate.upgrade(url, rev)
            assert set(inspect(eng).get_table_names()) == before
    finally:
        eng.dispose()
