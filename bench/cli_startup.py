#!/usr/bin/env python3
"""Benchmark the start-up of the `calltracking` command line on an empty SQLite database.

    .venv/bin/python bench/cli_startup.py [--runs 30]

Creates an empty database (``db upgrade``, not timed) in a temporary directory, then runs each
case ``--runs`` times as a new process, the cases interleaved (run 1 of every case, then run 2...)
so that the load of other processes on the machine spreads over all of them alike, after one
warm-up run each (bytecode written, files in the page cache). A run's time is the wall time from
starting the process to its exit; its CPU time is the process's user + system time (from
``wait4``), which other processes sharing the cores disturb much less than the wall time.
Printed per case: wall p50, p95 and min and CPU p50 in milliseconds, and the wall and CPU p50
as multiples of the two baselines measured in the same run: ``python -c pass`` (the interpreter
alone) and ``python -c "import sqlalchemy"`` (the least a command reading the database needs).
The load average before and after is printed too: figures taken on a busy machine are worse.
Only the venv is needed (no hyperfine).

``--before DIR`` times the same commands of another tree too (a copy of an older revision, e.g.
``git worktree add /tmp/before HEAD~1``), run as ``python -m calltracking`` from DIR with this
venv, in the same interleaved rounds, and prints each command's p50 before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the start-up targets (p50, seconds) of the commands that have one
TARGETS = {"--help": 0.2, "calls list": 0.3}


ROOT = Path(__file__).resolve().parent.parent


def cli_command() -> list[str]:
    """The `calltracking` console script of this interpreter's environment, else ``-m calltracking``."""
    script = Path(sys.executable).with_name("calltracking")
    return [str(script)] if script.exists() else [sys.executable, "-m", "calltracking"]


COMMANDS = {"--help": ["--help"], "calls list": ["calls", "list"], "doctor --help": ["doctor", "--help"],
            "db current": ["db", "current"]}


def cases(before: Path | None) -> dict[str, tuple[list[str], Path]]:
    """Case name → (argv, working directory)."""
    todo = {"python -c pass": ([sys.executable, "-c", "pass"], ROOT),
            "python -c 'import sqlalchemy'": ([sys.executable, "-c", "import sqlalchemy"], ROOT)}
    for name, args in COMMANDS.items():
        todo[name] = (cli_command() + args, ROOT)
        if before is not None:
            todo[f"{name} (before)"] = ([sys.executable, "-m", "calltracking"] + args, before)
    return todo


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``argv``."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} exited {p.returncode}:\n{err.read().decode(errors='replace')}")
    return elapsed, usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="timed runs of each case (default 30)")
    ap.add_argument("--before", type=Path, metavar="DIR", help="also time the CLI of the tree in DIR")
    args = ap.parse_args(argv)
    before = args.before.resolve() if args.before else None
    if before is not None and not (before / "calltracking" / "cli" / "__init__.py").exists():
        ap.error(f"{before} holds no calltracking/cli")

    with tempfile.TemporaryDirectory(prefix="ct-cli-bench-") as tmp:
        ini = Path(tmp) / "config.ini"
        ini.write_text(f"[database]\nurl = sqlite:///{Path(tmp) / 'calltracking.db'}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
        env["CALLTRACKING_CONFIG"] = str(ini)
        subprocess.run(cli_command() + ["db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)

        todo = cases(before)
        times: dict[str, list[float]] = {name: [] for name in todo}
        cpu: dict[str, list[float]] = {name: [] for name in todo}
        load_before = os.getloadavg()
        for name, (cmd, cwd) in todo.items():
            run_once(cmd, cwd, env)                  # warm-up, not counted
        for _ in range(args.runs):
            for name, (cmd, cwd) in todo.items():
                wall, used = run_once(cmd, cwd, env)
                times[name].append(wall)
                cpu[name].append(used)
        load_after = os.getloadavg()

    p50 = {name: statistics.median(ts) for name, ts in times.items()}
    c50 = {name: statistics.median(ts) for name, ts in cpu.items()}
    wall_pass, wall_sqla = p50["python -c pass"], p50["python -c 'import sqlalchemy'"]
    cpu_sqla = c50["python -c 'import sqlalchemy'"]
    print(f"calltracking CLI start-up, empty SQLite database, {args.runs} runs per case, interleaved")
    print(f"CLI: {' '.join(cli_command())}; CPUs: {os.cpu_count()}; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'case':30} {'wall p50':>8} {'p95':>7} {'min':>6} {'CPU p50':>8}  {'wall ×pass':>10} "
          f"{'wall ×sqla':>10} {'CPU ×sqla':>9}  target")
    for name, ts in times.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else \
            f"wall p50 ≤ {target * 1000:.0f} ms: {'met' if p50[name] <= target else 'NOT met'}"
        print(f"{name:30} {p50[name] * 1000:8.1f} {percentile(ts, 0.95) * 1000:7.1f} {min(ts) * 1000:6.1f} "
              f"{c50[name] * 1000:8.1f}  {p50[name] / wall_pass:10.1f} {p50[name] / wall_sqla:10.2f} "
              f"{c50[name] / cpu_sqla:9.2f}  {verdict}")
    if before is not None:
        print(f"before = {before}")
        for name in COMMANDS:
            b = f"{name} (before)"
            print(f"{name:30} wall p50 {p50[b] * 1000:7.1f} → {p50[name] * 1000:7.1f} ms "
                  f"({p50[b] / p50[name]:.2f}×), CPU p50 {c50[b] * 1000:7.1f} → {c50[name] * 1000:7.1f} ms "
                  f"({c50[b] / c50[name]:.2f}×)")


if __name__ == "__main__":
    main()
