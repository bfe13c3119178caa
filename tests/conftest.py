"""The fixtures every test folder shares: a real database per test, on SQLite or PostgreSQL,
and the ``calltracking`` CLI on it.

``CALLTRACKING_TEST_DB=postgresql`` runs the suite on PostgreSQL: a throw-away cluster
(:class:`support.postgres.PgCluster`) is started for the session, or ``CALLTRACKING_TEST_PG_URL``
names an existing server to create databases on. Each test gets a new database already at the
migrations' head.

The test helpers are the package ``tests/support`` (``from support.web import login``):
``tests/`` is on ``sys.path`` through ``pythonpath = tests`` in setup.cfg's ``[tool:pytest]``.
Folder conftests hold only their folder's fixtures.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from calltracking import migrate
from calltracking.db import make_engine, make_sessionmaker
from support.postgres import PgCluster

BACKEND = os.environ.get("CALLTRACKING_TEST_DB", "sqlite")


def pytest_report_header(config):
    return f"calltracking test database: {BACKEND}"


@pytest.fixture(scope="session", autouse=True)
def _no_writes_to_the_hosts_spool():
    """No test server spools its call rows in the host's default ``[agi] spool_dir``: each
    test gives its own (support.config.make_config does; a test's own config file must)."""
    default = Path("/var/lib/calltracking/agi-spool")
    existed = default.exists()
    yield
    assert existed or not default.exists(), f"a test server wrote {default}: give it a spool_dir"


@pytest.fixture(scope="session")
def pg_admin_url():
    """URL of the ``postgres`` database of the test server (PostgreSQL runs only)."""
    if BACKEND != "postgresql":
        pytest.skip("PostgreSQL only")  # never reached by the default selection
    url = os.environ.get("CALLTRACKING_TEST_PG_URL")
    if url:
        yield url
        return
    cluster = PgCluster().start()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.stop()


def _pg_exec(admin_url: str, sql: str):
    engine = make_engine(admin_url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _with_db(url: str, dbname: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=dbname).render_as_string(hide_password=False)


class DatabaseFactory:
    """Creates empty or migrated databases on the backend under test."""

    def __init__(self, tmp_root: Path, admin_url: str | None):
        self.tmp_root = tmp_root
        self.admin_url = admin_url
        self._template: str | None = None

    def empty(self) -> str:
        name = "ct_" + uuid.uuid4().hex[:12]
        if self.admin_url:
            _pg_exec(self.admin_url, f'CREATE DATABASE "{name}"')
            return _with_db(self.admin_url, name)
        return f"sqlite:///{self.tmp_root / (name + '.db')}"

    def migrated(self) -> str:
        if self._template is None:
            url = self.empty()
            migrate.upgrade(url)
            self._template = url
        name = "ct_" + uuid.uuid4().hex[:12]
        if self.admin_url:
            tmpl = self._template.rsplit("/", 1)[1].split("?")[0]
            _pg_exec(self.admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{tmpl}"')
            return _with_db(self.admin_url, name)
        path = self.tmp_root / (name + ".db")
        shutil.copyfile(self._template.split("///", 1)[1], path)
        return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def db_factory(tmp_path_factory, request):
    admin = request.getfixturevalue("pg_admin_url") if BACKEND == "postgresql" else None
    return DatabaseFactory(tmp_path_factory.mktemp("dbs"), admin)


@pytest.fixture
def db_url(db_factory):
    """A new database at the migrations' head."""
    return db_factory.migrated()


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def session(session_factory):
    s = session_factory()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def cli_env(db_url, tmp_path, monkeypatch):
    """Environment for the CLI: the test database, no config file."""
    monkeypatch.setenv("CALLTRACKING_CONFIG", str(tmp_path / "absent.ini"))
    monkeypatch.delenv("CALLTRACKING_CONFIG")
    for k in list(os.environ):
        if k.startswith("CALLTRACKING_") and k not in ("CALLTRACKING_TEST_DB", "CALLTRACKING_TEST_PG_URL"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CALLTRACKING_DATABASE_URL", db_url)
    monkeypatch.setenv("CALLTRACKING_GENERAL_DEFAULT_REGION", "RU")
    return {"CALLTRACKING_DATABASE_URL": db_url}


@pytest.fixture
def run_cli(cli_env):
    """Invoke the real `calltracking` CLI in-process; returns click's Result."""
    from calltracking.cli import cli

    def invoke(*args, input=None, ok=True):
        res = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
        if ok and res.exit_code != 0:
            raise AssertionError(f"calltracking {' '.join(args)} exited {res.exit_code}:\n{res.output}")
        return res

    return invoke


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright, one per test module (:func:`support.browser.chromium`)."""
    from support.browser import chromium

    with chromium() as b:
        yield b
