"""`calltracking run`: all services in one process."""
import click

from calltracking.app import COMPONENTS, Supervisor, check_startup, enabled_components
from calltracking.cli._common import pass_ctx, run_loop
from calltracking.logsetup import setup_logging


@click.command()
@click.option("--only", multiple=True, type=click.Choice(COMPONENTS),
              help="Run only these components (repeatable).")
@click.option("--without", "skip", multiple=True, type=click.Choice(COMPONENTS),
              help="Do not run these components (repeatable).")
@pass_ctx
def run(app, only, skip):
    """Run FastAGI server, AMI listener, scheduler and web UI in one process.

    Stops cleanly on SIGTERM/SIGINT. This is what the systemd unit starts.
    """
    cfg = app.config
    setup_logging(cfg)
    enabled = enabled_components(cfg, tuple(only), tuple(skip))
    check_startup(cfg, enabled)
    sup = Supervisor(cfg, app.sessionmaker, enabled, config_path=app.config_path,
                     overrides=dict(app.overrides))
    run_loop(sup.run())          # uvloop when installed
