"""Error pages: an HTML page, or ``{"error": message}`` for the API and JSON clients."""
from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError


def _error(code, message):
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return {"error": message}, code
    return render_template("error.html", code=code, message=message), code


def init_app(app) -> None:
    @app.errorhandler(403)
    def _403(_e):
        return _error(403, _("You do not have access to this page."))

    @app.errorhandler(404)
    def _404(_e):
        return _error(404, _("Not found."))

    @app.errorhandler(405)
    def _405(_e):
        return _error(405, _("Method not allowed."))

    @app.errorhandler(429)
    def _429(e):
        return _error(429, getattr(e, "description", None) or _("Too many requests."))

    @app.errorhandler(500)
    def _500(_e):
        return _error(500, _("Internal error; see the service log."))

    @app.errorhandler(CSRFError)
    def _csrf(_e):
        return _error(400, _("The form has expired or is invalid (CSRF check failed); reload the page "
                             "and try again."))
