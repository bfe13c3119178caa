"""`calltracking db upgrade|downgrade|current`."""
import click

from calltracking.cli._common import pass_ctx


@click.group()
def db():
    """Create, upgrade or inspect the database schema."""


@db.command()
@click.argument("revision", default="head")
@pass_ctx
def upgrade(app, revision):
    """Create the database or upgrade it to REVISION (default: head)."""
    from calltracking import migrate

    migrate.upgrade(app.config.database.url, revision)
    click.echo(f"database at {migrate.current_revision(app.engine)}")


@db.command()
@click.argument("revision", default="-1")
@pass_ctx
def downgrade(app, revision):
    """Go back to REVISION (default: one step)."""
    from calltracking import migrate

    migrate.downgrade(app.config.database.url, revision)
    click.echo(f"database at {migrate.current_revision(app.engine) or 'base (empty)'}")


@db.command()
@pass_ctx
def current(app):
    """Show the schema revision of the database and of the code."""
    from calltracking import migrate

    cur = migrate.current_revision(app.engine)
    head = migrate.head_revision()
    click.echo(f"database: {cur or 'none'}")
    click.echo(f"code:     {head}")
    if cur != head:
        click.echo("run `calltracking db upgrade`", err=True)
        raise SystemExit(1)
