"""`calltracking web`: serve the web UI with the production WSGI server (waitress), and the
public DNI endpoints on their asyncio server (``[dni] listen``) next to it."""
from __future__ import annotations

import signal

import click

from calltracking.cli._common import pass_ctx


@click.command()
@click.option("--listen", default=None, metavar="HOST:PORT", help="Override [web] listen.")
@pass_ctx
def web(app, listen):
    """Serve the web UI (waitress) and the DNI endpoints ([dni] listen) until interrupted."""
    if listen:
        app.override("web.listen", listen)
    cfg = app.config
    cfg.require_web_secret()
    from webui.dni_server import start_next_to
    from webui.server import make_server

    server = make_server(cfg, app.sessionmaker)
    host, _ = cfg.web.listen
    click.echo(f"calltracking web UI on http://{host}:{server.effective_port}/ (Ctrl-C stops)", err=True)
    dni_server = start_next_to(server, cfg, app.sessionmaker)
    if dni_server is not None:
        click.echo(f"calltracking DNI endpoints on http://{dni_server.host}:{dni_server.port}/", err=True)

    def stop(_sig, _frame):
        server.close()

    old = signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if dni_server is not None:
            dni_server.close()
        signal.signal(signal.SIGTERM, old)
