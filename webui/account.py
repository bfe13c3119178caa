"""The logged-in user's own account: password, language, API token."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.security import check_password_hash

from calltracking import entities

from webui.auth import _fingerprint, end_sessions, new_api_token, roles_required
from webui.context import audit, current_user, db

bp = Blueprint("account", __name__)


def _set_password(user, new: str) -> bool:
    """False when ``new`` breaks the password rule (:func:`calltracking.settings_rules.password`)."""
    try:
        entities.set_password(user, new)
    except entities.ServiceError:
        return False
    return True


@bp.route("/account", methods=["GET", "POST"])
@roles_required()
def index():
    user = current_user()
    token = None
    if request.method == "POST":
        action = request.form.get("action")
        if action == "password":
            old, new = request.form.get("old_password", ""), request.form.get("new_password", "")
            if not check_password_hash(user.password_hash, old):
                flash(_("The current password is wrong."), "error")
            elif not _set_password(user, new):
                flash(_("The new password must have at least 8 characters."), "error")
            else:
                audit("password", "user", user.id, {"username": user.username})
                end_sessions(user)
                db().commit()
                session["fp"] = _fingerprint(user)      # this session goes on, the others end
                session["gen"] = user.session_generation
                flash(_("Password changed."), "success")
        elif action == "token":
            token = new_api_token(user)
            audit("api_token", "user", user.id, {"username": user.username})
            db().commit()
        elif action == "revoke":
            user.api_token_hash = None
            audit("api_token_revoke", "user", user.id, {"username": user.username})
            db().commit()
            flash(_("API token revoked."), "success")
        if token is None:
            return redirect(url_for("account.index"))
    return render_template("account/index.html", user=user, token=token)
