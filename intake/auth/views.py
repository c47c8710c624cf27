"""Sign-in, sign-out and the signed-in user's own account page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from intake.auth.forms import LoginForm
from intake.auth.services import authenticate, sign_out_everywhere
from intake.extensions import db
from intake.permissions import Permission, require
from intake.security.sessions import absolute_limit_seconds, start_session

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str | None:
    """Accept only a path on this site ("/calls/"), never another host or scheme."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def landing_url() -> str:
    return url_for("auth.account")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """Show the sign-in form; on success start a brand-new session."""
    if current_user.is_authenticated:
        return redirect(landing_url())
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is None:
            db.session.commit()  # keep the failure in the audit trail
            form.password.errors.append(_("The e-mail address or password is not right."))
            return render_template("auth/login.html", form=form), 200
        target = safe_next(form.next.data) or landing_url()
        db.session.commit()
        session.clear()  # never carry anything from before sign-in into the new session
        login_user(user)
        start_session()
        return redirect(target)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@require(Permission.SIGNED_IN)
def logout() -> Response:
    """End the session on the server: every cookie this user held stops working.

    POST only; the CSRF token is checked for every POST before any view runs.
    """
    sign_out_everywhere(current_user._get_current_object())
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are signed out."), "success")
    return redirect(url_for("public.index"))


@bp.route("/account")
@require(Permission.SIGNED_IN)
def account() -> str:
    """The signed-in user's own account: who they are signed in as and for how long."""
    return render_template(
        "auth/account.html",
        absolute_limit=timedelta(seconds=absolute_limit_seconds(current_user)),
    )
