"""Long-running services: `run`, `agi`, `ami`, `web`, `scheduler`."""
import click

from . import cli, pass_ctx


@cli.command()
@pass_ctx
def run(app):
    """Run every service in one process (FastAGI, AMI listener, scheduler, web UI)."""
    app.config  # validate configuration before anything else
    raise click.ClickException("`run` is not implemented yet in this version: the FastAGI server, "
                               "AMI listener and web UI arrive in the next releases")
