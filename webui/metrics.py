"""`/metrics`: Prometheus text format, for admins only.

Prometheus authenticates with an admin's API token
(``authorization: {type: Bearer, credentials: ct_...}`` in the scrape config);
a logged-in admin can open it in the browser too.
"""
from flask import Blueprint, Response, current_app

from calltracking import metrics

from webui.auth import api_user
from webui.context import current_user

bp = Blueprint("metrics", __name__)


@bp.route("/metrics")
def metrics_view():
    user = api_user() or current_user()
    if user is None:
        return Response("authentication required (Authorization: Bearer <admin API token>)\n",
                        status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="calltracking"'})
    if user.role != "admin":
        return Response("forbidden: admins only\n", status=403, mimetype="text/plain")
    ext = current_app.extensions["calltracking"]
    body = metrics.render(ext["sessionmaker"], ext["config"].transcripts)
    return Response(body, mimetype="text/plain; version=0.0.4; charset=utf-8")
