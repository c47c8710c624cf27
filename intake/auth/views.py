"""Sign-in, sign-out and the signed-in user's own account page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response

from intake.audit.services import record
from intake.auth import flow
from intake.auth.forms import CodeForm, LoginForm
from intake.auth.mfa import (
    confirm_enrolment,
    ensure_secret,
    mfa_required,
    provisioning_uri,
    qr_data_uri,
    remaining_recovery_codes,
    verify_second_factor,
)
from intake.auth.services import (
    begin_attempt,
    check_password,
    is_locked,
    refuse_locked,
    register_failure,
    sign_out_everywhere,
)
from intake.extensions import db
from intake.permissions import Permission, landing_endpoint, require
from intake.security.sessions import absolute_limit_seconds

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


def landing_url(user) -> str:
    """Where ``user`` starts when the sign-in carried no ``next``: their work (intake.permissions.LANDING)."""
    return url_for(landing_endpoint(user))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """First step of signing in: e-mail and password. Staff go on to their second factor."""
    if current_user.is_authenticated:
        return redirect(landing_url(current_user))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        user = check_password(form.email.data, form.password.data)
        if user is None:
            db.session.commit()  # keep the failure (and any lock) in the database
            form.password.errors.append(_("The e-mail address or password is not right."))
            return render_template("auth/login.html", form=form), 200
        target = safe_next(form.next.data) or landing_url(user)
        if mfa_required(user):
            stage = flow.MFA if user.mfa_enrolled else flow.ENROL
            record("login.password_ok", object_type="user", object_id=user.id, details={"next_step": stage})
            db.session.commit()
            flow.begin_pending(user, stage, target)
            return redirect(url_for("auth.mfa" if stage == flow.MFA else "auth.mfa_setup"))
        flow.finish_sign_in(user, "password")
        db.session.commit()
        return redirect(target)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


def _pending_expired() -> Response:
    flash(_("Your sign-in took too long or is no longer valid. Please sign in again."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/login/mfa", methods=["GET", "POST"])
def mfa() -> Response | str | tuple[str, int]:
    """Second step for enrolled staff: a code from the authenticator app, or a recovery code."""
    user = flow.pending_user(flow.MFA)
    if user is None:
        return _pending_expired()
    form = CodeForm()
    if form.validate_on_submit():
        attempt = begin_attempt(user)  # counted before the code is checked (intake/auth/services.py)
        if attempt is None:
            refuse_locked(user)
            db.session.commit()
            session.clear()
            return _pending_expired()
        method = verify_second_factor(user, form.code.data)
        if method is None:
            register_failure(user, "wrong_code", attempt)
            db.session.commit()
            if is_locked(user):
                session.clear()
                return _pending_expired()
            form.code.errors.append(_("That code is not right, or it was already used. "
                                      "Wait for the next code and try again."))
            return render_template("auth/mfa.html", form=form), 200
        target = flow.pending_next() or landing_url(user)
        flow.finish_sign_in(user, method)
        db.session.commit()
        if method == "recovery_code":
            flash(_("You used a recovery code. %(n)d remain; you can make new ones on your account page.",
                    n=remaining_recovery_codes(user)), "warning")
        return redirect(target)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/mfa.html", form=form), status


@bp.route("/mfa/setup", methods=["GET", "POST"])
def mfa_setup() -> Response | str | tuple[str, int]:
    """Enrolment for staff without an authenticator: scan, confirm a code, keep the recovery codes."""
    user = flow.pending_user(flow.ENROL)
    if user is None:
        return _pending_expired()
    form = CodeForm()
    if form.validate_on_submit():
        attempt = begin_attempt(user)
        if attempt is None:
            refuse_locked(user)
            db.session.commit()
            session.clear()
            return _pending_expired()
        codes = confirm_enrolment(user, form.code.data)
        if codes is None:
            register_failure(user, "wrong_enrolment_code", attempt)
            db.session.commit()
            if is_locked(user):
                session.clear()
                return _pending_expired()
            form.code.errors.append(_("That code is not right. Check the time on your phone and try the next code."))
        else:
            target = flow.pending_next() or landing_url(user)
            flow.finish_sign_in(user, "totp_enrolment")
            db.session.commit()
            return render_template("auth/recovery_codes.html", codes=codes, next_url=target)
    else:
        ensure_secret(user)
        db.session.commit()
    uri = provisioning_uri(user)
    status = 400 if request.method == "POST" and not form.code.data else 200
    return render_template("auth/mfa_setup.html", form=form, qr=qr_data_uri(uri),
                           secret=user.mfa_secret, issuer=current_app.config["MFA_ISSUER"]), status


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
