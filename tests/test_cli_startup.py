"""What the `calltracking` command line imports to start: `--help` lists every command without
importing a command module, a command imports what it runs (the start-up times themselves are
measured by bench/cli_startup.py, never here)."""
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from calltracking.cli import COMMANDS, cli

#: top-level packages no command listing calls needs: the web UI, the FastAGI and AMI adapters
#: and the libraries only they (or migrations, or the scheduler) use
SERVICES = {"flask", "werkzeug", "jinja2", "waitress", "panoramisk", "apscheduler", "alembic", "uvloop",
            "webui", "agi", "ami_listener", "prometheus_client", "ua_parser", "pydub"}

CHILD = """
import gc, sys
from calltracking.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(sorted({m.split('.')[0] for m in sys.modules}), code, gc.get_freeze_count(), file=sys.stderr)
"""


def run_child(*args, env=None, frozen=None):
    """Run `calltracking ARGS` in a new interpreter: (stdout, top-level packages imported, exit code);
    ``frozen`` (a list) receives how many objects were frozen out of the garbage collector."""
    p = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=True)
    modules, code, freeze_count = p.stderr.strip().splitlines()[-1].rsplit(" ", 2)
    if frozen is not None:
        frozen.append(int(freeze_count))
    return p.stdout, set(eval(modules)), int(code)


def help_names(text: str) -> list[str]:
    """The command names of a `--help` text's "Commands" section."""
    section = text.split("\nCommands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and not line.startswith("   ")]


def test_help_lists_every_command_without_importing_them():
    out, modules, code = run_child("--help")
    assert code == 0
    assert help_names(out) == sorted(COMMANDS)
    assert not {"sqlalchemy", "phonenumbers", "asyncio"} & modules
    assert not SERVICES & modules
    assert "calltracking.cli.calls" not in out and "Recorded calls." in out


def test_a_command_help_imports_its_own_module_only():
    out, modules, code = run_child("doctor", "--help")
    assert code == 0 and "Usage: calltracking doctor" in out
    assert not ({"sqlalchemy"} | SERVICES) & modules


def test_calls_list_imports_no_web_ami_or_scheduler(cli_env):
    """On an empty database (SQLite or PostgreSQL, from the test run): the database layer and
    nothing of the services."""
    import os

    frozen = []
    out, modules, code = run_child("calls", "list", env=dict(os.environ), frozen=frozen)
    assert code == 0
    assert frozen[0] > 50_000          # SQLAlchemy's and the models' objects: out of the collector
    assert out.split() == ["started_at", "linkedid", "did", "caller", "source", "queue", "status",
                           "missed_reason", "operator", "wait_seconds", "talk_seconds"]
    assert "sqlalchemy" in modules
    assert not SERVICES & modules


def test_lazy_table_is_the_commands_own_help(monkeypatch, capsys):
    """The short help of COMMANDS is each command's own, and `--help` written from the table (in
    a new interpreter) is the text click writes from the loaded commands."""
    monkeypatch.setenv("COLUMNS", "80")
    lazy_help, _, _ = run_child("--help")
    for name, entry in COMMANDS.items():
        cmd = cli.load(name)
        assert cmd.name == name and not cmd.hidden
        assert entry.short_help == cmd.get_short_help_str(limit=10**6), name
    assert cli.main(["--help"], prog_name="calltracking", standalone_mode=False) == 0
    assert capsys.readouterr().out == lazy_help      # same width: not CliRunner's forced 80 columns


def _walk(group: click.Group, ctx: click.Context, path: tuple[str, ...]):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"{' '.join(path + (name,))} is listed but does not resolve"
        yield path + (name,)
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, click.Context(cmd, info_name=name, parent=ctx), path + (name,))


def test_every_listed_command_resolves_and_shows_its_help():
    paths = list(_walk(cli, click.Context(cli, info_name="calltracking"), ()))
    assert {p[0] for p in paths} == set(COMMANDS) and ("calls", "list") in paths
    for path in paths:
        res = CliRunner().invoke(cli, [*path, "--help"], prog_name="calltracking")
        assert res.exit_code == 0, (path, res.output)
        assert f"Usage: calltracking {' '.join(path)}" in res.output


def test_a_command_under_another_name_is_refused():
    from calltracking.cli.lazy import LazyCommand, LazyGroup

    group = LazyGroup("g", lazy_commands={"list": LazyCommand("calltracking.cli.calls:calls", "Recorded calls.")})
    with pytest.raises(TypeError, match="is not the click command 'list'"):
        group.get_command(click.Context(group), "list")
    assert group.get_command(click.Context(group), "nosuch") is None


def test_in_a_test_process_loading_pauses_the_collector_but_freezes_nothing():
    import gc

    from calltracking.cli.lazy import LazyCommand, LazyGroup

    group = LazyGroup("g", lazy_commands={"calls": LazyCommand("calltracking.cli.calls:calls", "Recorded calls.")})
    assert group.freeze_imports is False and gc.isenabled()
    before = gc.get_freeze_count()
    assert group.get_command(click.Context(group), "calls").name == "calls"
    assert gc.isenabled() and gc.get_freeze_count() == before


def test_the_command_context_closes_its_database_connections(cli_env):
    from sqlalchemy import event, text

    from calltracking.cli._common import AppContext

    app = AppContext(None, {})
    closed = []
    event.listen(app.engine, "close", lambda *_: closed.append(1))
    with app.session() as s:
        assert s.execute(text("SELECT 1")).scalar() == 1
    assert closed == []                 # back in the pool, still open
    app.close()
    assert closed == [1] and app._engine is None


def test_every_command_of_the_cli_modules_is_in_the_table():
    """A click command defined in calltracking/cli/ and in no group is one of COMMANDS (else
    `calltracking` would not know it)."""
    import importlib
    import pkgutil

    import calltracking.cli as package

    defined, children = {}, set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"calltracking.cli.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, click.Command) and obj is not cli:
                defined[id(obj)] = obj
                if isinstance(obj, click.Group):
                    children |= {id(c) for c in obj.commands.values()}
    top = {cmd.name for key, cmd in defined.items() if key not in children}
    assert top == set(COMMANDS)
