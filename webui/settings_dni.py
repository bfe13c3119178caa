"""Settings → DNI on the site (admin): the snippet generator with a copy button, the live check
(per site: when the snippet last ran, on which page, which version; "Check again" reloads only
that part, ``/settings/dni/check``) and each pool's usage today with its recommended size."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_babel import format_timedelta
from sqlalchemy import select

from calltracking.dni import setup as dni_setup
from calltracking.dni import snippet_pings
from calltracking.models import NumberPool, Project, utcnow

from webui.auth import roles_required
from webui.context import chosen_project, config, db

bp = Blueprint("settings_dni", __name__, url_prefix="/settings")


def _check(s, project) -> dict:
    """What the live check shows (the partial ``settings/_dni_sites.html``)."""
    now = utcnow()
    return {"project": project, "now": now, "sites": snippet_pings.sites(s, project.id, now),
            "ago": lambda at: format_timedelta(at - now, add_direction=True),
            "visitors_today": dni_setup.visitors_today(s, project, now),
            "snippet_version": snippet_pings.SNIPPET_VERSION}


@bp.route("/dni")
@roles_required("admin")
def index():
    s = db()
    projects = list(s.scalars(select(Project).order_by(Project.name, Project.id)))
    project = chosen_project(projects)
    options = {k: (request.args.get(k) or "").strip()[:200] for k in dni_setup.OPTIONS}
    if options["timeout"] and not options["timeout"].isdigit():
        options["timeout"] = ""
    ctx = {"projects": projects, "project": project, "options": options}
    if project is not None:
        base = config().web.public_url or request.url_root
        ctx.update(_check(s, project),
                   tag=dni_setup.snippet_tag(base, project.key, **options),
                   usage=dni_setup.pool_usage(s, project),
                   pools=list(s.scalars(select(NumberPool.name).where(NumberPool.project_id == project.id,
                                                                       NumberPool.active.is_(True))
                                        .order_by(NumberPool.name))))
    return render_template("settings/dni.html", **ctx)


@bp.route("/dni/check")
@roles_required("admin")
def check():
    """The live check alone (HTML fragment), for the "Check again" button."""
    s = db()
    project = s.get(Project, request.args.get("project", type=int) or 0)
    if project is None:
        abort(404)
    resp = render_template("settings/_dni_sites.html", **_check(s, project))
    return resp, 200, {"Cache-Control": "no-store"}
