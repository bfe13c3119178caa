"""The `calltracking` command line (click)."""
from __future__ import annotations

import logging
import sys

import click

from calltracking.config import ConfigError, load_config


class AppContext:
    """Lazily loaded configuration, engine and session factory for commands."""

    def __init__(self, config_path: str | None, overrides: dict[str, str]):
        self.config_path = config_path
        self.overrides = overrides
        self._config = None
        self._engine = None
        self._sessionmaker = None

    @property
    def config(self):
        if self._config is None:
            self._config = load_config(self.config_path, overrides=self.overrides)
        return self._config

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

    @property
    def region(self) -> str:
        return self.config.general.default_region


pass_ctx = click.make_pass_decorator(AppContext)


def _parse_set(_ctx, _param, values):
    out = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or "." not in k:
            raise click.BadParameter(f"expected SECTION.KEY=VALUE, got {v!r}")
        out[k.strip()] = val
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="CALLTRACKING_CONFIG", type=click.Path(dir_okay=False),
              help="Configuration file (default /etc/calltracking/config.ini).")
@click.option("--set", "overrides", multiple=True, callback=_parse_set, metavar="SECTION.KEY=VALUE",
              help="Override one configuration value (repeatable).")
@click.version_option(package_name="calltracking")
@click.pass_context
def cli(ctx, config_path, overrides):
    """Call tracking for the Asterisk PBX."""
    ctx.obj = AppContext(config_path, overrides)


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return cli.main(args=argv, prog_name="calltracking", standalone_mode=True)
    except ConfigError as e:
        click.echo(f"configuration error: {e}", err=True)
        sys.exit(2)


# Sub-command modules register themselves on `cli` when imported.
from calltracking.cli import calls, db, demo, doctor, entities, jobs, web, agi, pools, ami  # noqa: E402,F401
from calltracking.cli import run  # noqa: E402,F401
