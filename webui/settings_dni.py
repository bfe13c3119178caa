"""Settings → DNI on the site (admin): the snippet generator with a copy button, the live check
(where and when the snippet last ran) and each pool's usage today with its recommended size."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from calltracking.dni import setup as dni_setup
from calltracking.models import NumberPool, Project

from webui.auth import roles_required
from webui.context import config, db

bp = Blueprint("settings_dni", __name__, url_prefix="/settings")


@bp.route("/dni")
@roles_required("admin")
def index():
    s = db()
    projects = list(s.scalars(select(Project).order_by(Project.name, Project.id)))
    pid = request.args.get("project", type=int)
    project = next((p for p in projects if p.id == pid), projects[0] if projects else None)
    options = {k: (request.args.get(k) or "").strip()[:200] for k in dni_setup.OPTIONS}
    if options["timeout"] and not options["timeout"].isdigit():
        options["timeout"] = ""
    ctx = {"projects": projects, "project": project, "options": options}
    if project is not None:
        base = config().web.public_url or request.url_root
        ctx.update(
            tag=dni_setup.snippet_tag(base, project.key, **options),
            seen=dni_setup.last_seen(s, project),
            usage=dni_setup.pool_usage(s, project),
            pools=list(s.scalars(select(NumberPool.name).where(NumberPool.project_id == project.id,
                                                                NumberPool.active.is_(True))
                                 .order_by(NumberPool.name))))
    return render_template("settings/dni.html", **ctx)
