#!/usr/bin/env python3
"""Target rules benchmark (prints figures; not a test).

Seeds ``--calls`` finished calls (one project, 5 sources, 30 % first calls, log-normal talk
times, a quarter tagged) into SQLite in a temporary directory, then times, in the same run:

- **baseline**: :func:`calltracking.qualify.apply.reapply` over every call with *no* rule (it
  reads the calls and writes ``qualified_at``: the floor of the job);
- **rules**: the same with four rules (talk ≥ 60 s; first call from one source adding a tag; a
  weekday 09:00–18:00 window on a tag; a queue), the verdicts and tags written;
- **job**: :func:`calltracking.qualify.apply.apply_pending` on the calls that ended in the last
  minute (what the scheduler's ``qualify`` job does every 5 s), ``--recent`` of them.

    .venv/bin/python bench/qualify.py
    .venv/bin/python bench/qualify.py --calls 200000 --recent 500
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UTC = dt.timezone.utc


def seed(factory, n: int, recent: int) -> dict:
    from calltracking import entities as svc
    from calltracking.models import Call, Tag, call_tags
    from sqlalchemy import insert

    rnd = random.Random(3)
    now = dt.datetime.now(UTC)
    with factory() as s:
        p = svc.add_project(s, "bench", "Bench", "Europe/Moscow")
        sources = [svc.add_source(s, p, f"Source {i}", "ads") for i in range(5)]
        tags = [Tag(project_id=p.id, name=n) for n in ("lead", "callback", "vip")]
        s.add_all(tags)
        s.commit()
        ids = {"project": p.id, "sources": [x.id for x in sources], "tags": [t.id for t in tags]}
    rows, tagged = [], []
    for i in range(1, n + recent + 1):
        ended = now - (dt.timedelta(seconds=rnd.randrange(6, 60)) if i > n
                       else dt.timedelta(days=2, seconds=rnd.randrange(60 * 86400)))
        answered = rnd.random() < 0.8
        talk = round(min(rnd.lognormvariate(4.0, 1.0), 3600), 3) if answered else None
        started = ended - dt.timedelta(seconds=(talk or 0) + 10)
        rows.append(dict(id=i, pbx_id="b", linkedid=f"{i}.1", project_id=ids["project"],
                         source_id=rnd.choice(ids["sources"]), queue=rnd.choice(["sales", "support"]),
                         started_at=started, ended_at=ended, status="answered" if answered else "missed",
                         talk_seconds=None if talk is None else Decimal(str(talk)), first_call=rnd.random() < 0.3,
                         wait_seconds=Decimal(10), updated_at=ended, created_at=started))
        if rnd.random() < 0.25:
            tagged.append({"call_id": i, "tag_id": rnd.choice(ids["tags"])})
    with factory() as s:
        for k in range(0, len(rows), 20000):
            s.execute(insert(Call), rows[k:k + 20000])
        if tagged:
            s.execute(insert(call_tags), tagged)
        s.commit()
    return ids


def rules(factory, ids) -> None:
    from calltracking.models import Project
    from calltracking.qualify import settings

    with factory() as s:
        p = s.get(Project, ids["project"])
        lead, cb, vip = ids["tags"]
        settings.save_rule(s, p, name="long", position=10, min_talk_seconds=60)
        settings.save_rule(s, p, name="first from 0", position=20, first_call_only=True,
                           source_id=ids["sources"][0], add_tag_ids=[vip])
        settings.save_rule(s, p, name="office hours callback", position=30, tag_id=cb, weekdays="12345",
                           time_from="09:00", time_to="18:00", mark_target=False, add_tag_ids=[lead])
        settings.save_rule(s, p, name="support", position=40, queue="support", min_talk_seconds=30)
        s.commit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--recent", type=int, default=200, help="calls that ended in the last minute (the job)")
    args = ap.parse_args()

    from calltracking import migrate
    from calltracking.db import make_engine, make_sessionmaker, write_sessionmaker
    from calltracking.qualify import apply

    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/bench.db"
        migrate.upgrade(url)
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        t = time.monotonic()
        ids = seed(factory, args.calls, args.recent)
        print(f"seeded {args.calls + args.recent:,} calls in {time.monotonic() - t:.1f} s")
        writer = write_sessionmaker(factory)
        since = dt.datetime(2000, 1, 1, tzinfo=UTC)

        t = time.monotonic()
        base = apply.reapply(writer, since)
        t_base = time.monotonic() - t
        rules(factory, ids)
        t = time.monotonic()
        got = apply.reapply(writer, since)
        t_rules = time.monotonic() - t
        with factory() as s:        # the job's calls again: not qualified yet
            from sqlalchemy import update
            from calltracking.models import Call
            s.execute(update(Call).where(Call.id > args.calls).values(qualified_at=None, is_target=False,
                                                                      target_rule_id=None))
            s.commit()
        t = time.monotonic()
        job = apply.apply_pending(writer)
        t_job = time.monotonic() - t
        n = base.calls
        print(f"{'run':<34}{'calls':>10}{'s':>9}{'calls/s':>11}")
        print(f"{'baseline: reapply, no rule':<34}{n:>10,}{t_base:>9.2f}{n / t_base:>11,.0f}")
        print(f"{'reapply, 4 rules':<34}{got.calls:>10,}{t_rules:>9.2f}{got.calls / t_rules:>11,.0f}"
              f"   ({got.targets:,} target, {got.changed:,} changed, {got.tags_added:,} tags added)")
        print(f"{'qualify job, calls of the last min':<34}{job.calls:>10,}{t_job * 1000:>8.0f}ms")
        engine.dispose()


if __name__ == "__main__":
    main()
