"""The `calltracking` command line (click): the group, its global options, every command.

Each command lives in the module named for what it manages; what they share (the context
with the configuration and database, output, user errors) is :mod:`calltracking.cli._common`.
"""
from __future__ import annotations

import logging
import sys

import click

from calltracking.cli import agi, ami, calls, db, demo, doctor, entities, jobs, pools, run, web
from calltracking.cli._common import AppContext
from calltracking.config import ConfigError


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


for _command in (run.run, agi.agi_serve, ami.ami, web.web, jobs.scheduler, db.db, doctor.doctor, demo.demo,
                 entities.projects, entities.sources, entities.campaigns, entities.numbers, entities.operators,
                 entities.users, pools.pools, calls.calls, agi.routes, jobs.jobs, jobs.notify, jobs.deliveries,
                 jobs.recordings, jobs.spend):
    cli.add_command(_command)


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return cli.main(args=argv, prog_name="calltracking", standalone_mode=True)
    except ConfigError as e:
        click.echo(f"configuration error: {e}", err=True)
        sys.exit(2)
