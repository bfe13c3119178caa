"""`calltracking doctor`."""
import click

from calltracking import doctor as doc
from calltracking.cli._common import pass_ctx

MARK = {doc.OK: click.style("OK  ", fg="green"), doc.INFO: click.style("INFO", fg="blue"),
        doc.WARN: click.style("WARN", fg="yellow"), doc.FAIL: click.style("FAIL", fg="red")}


@click.command()
@pass_ctx
def doctor(app):
    """Check configuration, database and services; print a fix for each problem."""
    # The checks register themselves when their modules are imported (here: these are heavy).
    from agi import doctor as _agi_checks  # noqa: F401  (FastAGI port, dialplan include)
    from ami_listener import doctor as _ami_checks  # noqa: F401  (AMI login, events, clock)
    from calltracking.jobs import doctor as _jobs_checks  # noqa: F401  (scheduler, jobs, recordings, deliveries)
    from calltracking.whisper import doctor as _whisper_checks  # noqa: F401  (espeak-ng, whisper files)
    from calltracking.transcripts import doctor as _transcript_checks  # noqa: F401  (backend, backlog)
    from webui import doctor as _web_checks  # noqa: F401  (web UI, DNI server)

    results = doc.run_checks(app)
    for r in results:
        click.echo(f"{MARK[r.status]} {r.name}: {r.detail}")
        if r.fix and r.status != doc.OK:
            click.echo(f"     fix: {r.fix}")
    failed = sum(r.status == doc.FAIL for r in results)
    click.echo(f"{len(results)} checks, {failed} failed")
    raise SystemExit(1 if failed else 0)
