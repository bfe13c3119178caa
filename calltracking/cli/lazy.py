"""A click group whose commands are imported when they run (click's documented "lazily loading
subcommands" pattern).

The group knows each command by its name, where it is (``module:attribute``) and its short help,
so ``calltracking --help`` lists every command without importing one of their modules (and with
them SQLAlchemy, the models, Flask...). A command's module is imported when the command runs or
its own ``--help`` is asked for; from then on the group shows the command's real short help.
The short help in the table must be the command's own: ``tests/test_cli_startup.py`` checks it.
"""
from __future__ import annotations

import gc
import importlib
from typing import NamedTuple

import click


class LazyCommand(NamedTuple):
    """Where a command is (``"calltracking.cli.calls:calls"``) and its short help: the first
    sentence of its docstring, as ``click.Command.get_short_help_str`` makes it."""
    target: str
    short_help: str


class LazyGroup(click.Group):
    """A group listing ``lazy_commands`` (name → :class:`LazyCommand`) beside the commands added
    the usual way; a lazy command is imported on first use, and must carry the same name."""

    #: Set by the `calltracking` process (:func:`calltracking.cli.main`), not in a test's process:
    #: what importing a command makes (modules, classes, the models' tables) lives as long as the
    #: process, so it is frozen out of the cyclic garbage collector, which then never walks it
    #: again (its collections during the command and at exit). `calls list` on an empty SQLite
    #: database, CPU per run, mean of 6: 503 ms without the pause and the freeze, 368 ms with both.
    freeze_imports = False

    def __init__(self, *args, lazy_commands: dict[str, LazyCommand], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in self.lazy_commands:
            cmd = self.load(cmd_name)
        return cmd

    def load(self, name: str) -> click.Command:
        """Import the command ``name`` and add it to the group.

        The cyclic garbage collector is paused while its modules load: importing makes objects,
        not garbage. Importing `calls list` (SQLAlchemy, the models) set off 160 collections that
        freed 441 objects in 36 ms of CPU, of about 470 ms the whole command used."""
        module, _, attribute = self.lazy_commands[name].target.partition(":")
        collecting = gc.isenabled()
        gc.disable()
        try:
            cmd = getattr(importlib.import_module(module), attribute)
        finally:
            if self.freeze_imports:
                gc.freeze()
            if collecting:
                gc.enable()
        if not isinstance(cmd, click.Command) or cmd.name != name:
            raise TypeError(f"{self.lazy_commands[name].target} is not the click command {name!r}")
        self.add_command(cmd)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The "Commands" section of ``--help``, as ``click.Group`` writes it, with the short
        help of a command not imported yet taken from its :class:`LazyCommand`."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name) or click.Command(name, help=self.lazy_commands[name].short_help)
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])
