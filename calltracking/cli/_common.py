"""What the `calltracking` commands share: the configuration and database they open (lazily,
on first use: ``calltracking --help`` opens nothing), table/JSON output, user errors, asyncio.

A command module imports only what its commands need at module level; anything heavy
(the web UI, the AGI server, the AMI listener, Alembic) is imported inside the command. This
module imports nothing but click at module level: every command, and ``calltracking --help``,
loads it.
"""
from __future__ import annotations

import json
import sys

import click


class AppContext:
    """The configuration (``--config``, ``--set``), engine and session factory of a command,
    each opened on first use."""

    def __init__(self, config_path: str | None, overrides: dict[str, str]):
        self.config_path = config_path
        self.overrides = overrides
        self._config = None
        self._engine = None
        self._sessionmaker = None

    @property
    def config(self):
        if self._config is None:
            from calltracking.config import load_config

            self._config = load_config(self.config_path, overrides=self.overrides)
        return self._config

    def override(self, key: str, value: str) -> None:
        """Set ``SECTION.KEY`` like ``--set`` does (before the configuration is used)."""
        self.overrides[key] = value
        self._config = None

    @property
    def engine(self):
        if self._engine is None:
            from calltracking.db import engine_from_config

            self._engine = engine_from_config(self.config)
        return self._engine

    @property
    def sessionmaker(self):
        if self._sessionmaker is None:
            from calltracking.db import make_sessionmaker

            self._sessionmaker = make_sessionmaker(self.engine)
        return self._sessionmaker

    def session(self, write: bool = False):
        """A transaction. ``write=True`` for commands that change data: on SQLite it begins
        IMMEDIATE (see :func:`calltracking.db.writer`), so that a service committing at the
        same moment makes it wait its turn instead of failing with "database is locked"."""
        from calltracking.db import make_sessionmaker, session_scope, writer

        if not write:
            return session_scope(self.sessionmaker)
        return session_scope(make_sessionmaker(writer(self.engine)))

    def close(self) -> None:
        """Close the database connections this command opened (when its context closes)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = self._sessionmaker = None

    @property
    def region(self) -> str:
        return self.config.general.default_region


pass_ctx = click.make_pass_decorator(AppContext)

#: the ``--format table|json`` option of the listing commands
FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                      show_default=True)


def out(rows: list[dict], columns, fmt: str) -> None:
    """Print rows as an aligned table (these columns) or as JSON (every key)."""
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
    else:
        from calltracking.calls.export import render_table

        click.echo(render_table(rows, columns))


class UserErrors:
    """``with UserErrors():`` a wrong name or value given by the user (an
    :class:`calltracking.entities.ServiceError`, a bad phone number) ends the command with its
    message and exit code 1, without a traceback."""

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            return False
        from calltracking.phone import InvalidNumber
        from calltracking.settings_rules import ServiceError

        if issubclass(et, (ServiceError, InvalidNumber)):
            raise click.ClickException(str(ev))
        return False


def run_loop(coro):
    """``asyncio.run``, on uvloop on Linux (a dependency there: less CPU per AGI round trip)."""
    import asyncio

    if sys.platform == "linux":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)
