"""`calltracking demo`: seed a demo project into its own SQLite file and start the UI."""
from __future__ import annotations

import os
import secrets

import click

from calltracking.cli._common import pass_ctx


@click.command()
@click.option("--db", "db_path", default="calltracking-demo.db", show_default=True,
              type=click.Path(dir_okay=False), help="SQLite file for the demo (recreated).")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 365))
@click.option("--calls-per-day", default=90, show_default=True, type=click.IntRange(1, 5000))
@click.option("--listen", default="127.0.0.1:8088", show_default=True, help="Web UI address.")
@click.option("--password", default=None, help="Password of the demo user (default: generated).")
@click.option("--no-serve", is_flag=True, help="Only create the demo database.")
@pass_ctx
def demo(app, db_path, days, calls_per_day, listen, password, no_serve):
    """Create a realistic demo project (30 days of calls, up to now) and open the web UI on it,
    with the scheduler's jobs running (the recordings are analysed at creation).

    Never touches the configured database: everything goes to --db.
    """
    from calltracking.config import load_config
    from calltracking.db import make_engine, make_sessionmaker
    from calltracking import entities, migrate
    from calltracking.demo import analyse_recordings, seed

    db_path = os.path.abspath(db_path)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    url = f"sqlite:///{db_path}"
    rec_dir = os.path.splitext(db_path)[0] + "-recordings"
    whisper_dir = os.path.splitext(db_path)[0] + "-whispers"
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    password = password or secrets.token_urlsafe(9)
    cfg = load_config(app.config_path, overrides={
        "database.url": url, "web.listen": listen, "web.secret_key": secrets.token_urlsafe(32),
        "web.secure_cookies": "no", "recordings.dir": rec_dir, "general.timezone": "Europe/Moscow",
        "asterisk.whisper_dir": whisper_dir,
        "recordings.format": "wav",     # measured and kept as made: seconds, not a minute of encoding
    }, require_file=False)
    with factory() as s:
        stats = seed(s, days=days, per_day=calls_per_day, recordings_dir=rec_dir)
        entities.add_user(s, "demo", password, "admin", language="ru")
        s.commit()
    from calltracking.transcripts.demo import seed_transcripts, speak_recordings
    spoken = speak_recordings(factory)
    analysed = analyse_recordings(cfg, factory)
    said = seed_transcripts(cfg, factory, spoken)
    transcribed = (f"{said['calls']} transcribed in {said['seconds']:.1f} s" if not said["error"]
                   else f"transcripts not made: {said['error']}")
    from calltracking.whisper import audio, files as whisper_files
    if audio.espeak_path():
        with factory() as s:
            whispers = whisper_files.sync(s, whisper_dir).summary()
    else:
        whispers = "not made: espeak-ng is not installed"
    click.echo(f"demo database {db_path}: {stats['calls']} calls, {stats['sources']} sources, "
               f"{stats['operators']} operators, {stats['targets']} target calls, {analysed} recordings analysed "
               f"({transcribed}); whispers {whispers}")
    if no_serve:
        click.echo(f"log in as demo / {password}")
        return
    from calltracking.jobs.scheduler import start_scheduler
    from webui.server import make_server

    server = make_server(cfg, factory)
    scheduler = start_scheduler(cfg, factory)   # rollups, recordings, pool release... as in `run`
    host, port = cfg.web.listen
    click.echo(f"open http://{host}:{port}/ and log in as demo / {password}  (Ctrl+C to stop)")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        scheduler.shutdown()
