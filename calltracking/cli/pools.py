"""`calltracking pools list|release|sizing|set`: number pools of dynamic number insertion."""
from __future__ import annotations

import click
from sqlalchemy import select

from calltracking import entities as svc
from calltracking import phone
from calltracking.attribution.promo import PROMO_MODES
from calltracking.cli._common import FORMAT, UserErrors, out, pass_ctx
from calltracking.dni import holds, pool_sizing
from calltracking.models import NumberPool, Project


@click.group()
def pools():
    """Number pools of dynamic number insertion (the website snippet)."""


@pools.command("list")
@click.argument("project", required=False)
@FORMAT
@pass_ctx
def pools_list(app, project, fmt):
    """Numbers, live holds and exhaustion of each pool."""
    with app.session() as s:
        q = select(NumberPool, Project.key).join(Project, Project.id == NumberPool.project_id)
        if project:
            q = q.where(Project.key == project)
        rows = [dict(project=key, **holds.pool_status(s, pool)) for pool, key in s.execute(q.order_by(Project.key))]
    out(rows, ("project", "pool", "numbers", "held", "free", "hold_seconds", "exhausted_count", "promo_mode"),
         fmt)


@pools.command("release")
@pass_ctx
def pools_release(app):
    """Release numbers whose hold time has passed (the scheduler runs this every minute)."""
    n = holds.release_expired(app.sessionmaker)
    click.echo(f"released {n} number(s)")


@pools.command("sizing")
@click.option("--project", default=None, help="Only this project's pools.")
@click.option("--days", type=click.FloatRange(0.01, 366), default=7.0, show_default=True,
              help="Measure the traffic of the last N days.")
@click.option("--target", type=click.FloatRange(0.0001, 0.5), default=pool_sizing.DEFAULT_TARGET,
              show_default=True, help="Target collision rate (0.01 = 1 %).")
@FORMAT
@pass_ctx
def pools_sizing(app, project, days, target, fmt):
    """Sessions per hour, time to call, collisions, exhaustion and the recommended pool size."""
    with app.session() as s:
        if project:
            with UserErrors():
                svc.get_project(s, project)
        rows = pool_sizing.report(s, project, days, target)
    out(rows, ("project", "pool", "numbers", "recommended", "sessions_per_hour", "peak_per_hour",
                "occupancy_seconds", "calls", "ttc_p50", "ttc_p90", "collision_rate", "exhausted_count",
                "estimated_collision_rate"), fmt)
    if fmt == "table":
        for r in rows:
            if r["recommended"] is None:
                click.echo(f"{r['project']}/{r['pool']}: no traffic measured yet: no recommendation")
            elif r["recommended"] > r["numbers"]:
                click.echo(f"{r['project']}/{r['pool']}: add {r['recommended'] - r['numbers']} number(s) "
                           f"to reach a collision rate of at most {target:.1%}")


@pools.command("set")
@click.argument("project")
@click.argument("pool")
@click.option("--hold", "hold_seconds", type=click.IntRange(0, 86400), default=None,
              help="Seconds a number stays with a visitor after the last activity.")
@click.option("--fallback", default=None, help="Number shown when the pool is exhausted ('' = project default).")
@click.option("--promo", "promo_mode", type=click.Choice(PROMO_MODES), default=None,
              help="When the snippet shows a promo code.")
@pass_ctx
def pools_set(app, project, pool, hold_seconds, fallback, promo_mode):
    """Change a pool's hold time, fallback number or promo mode."""
    with UserErrors(), app.session(write=True) as s:
        p = svc.get_pool(s, svc.get_project(s, project), pool)
        if hold_seconds is not None:
            p.hold_seconds = hold_seconds
        if fallback is not None:
            p.fallback_number = phone.normalize(fallback, app.region) if fallback else None
        if promo_mode is not None:
            p.promo_mode = promo_mode
        click.echo(f"pool {pool}: hold {p.hold_seconds} s, fallback {p.fallback_number or '(project default)'}, "
                   f"promo {p.promo_mode}")
