"""Password reset by e-mail link.

``/reset`` answers with the same page whether or not the address has an account. The link
works once (it is bound to the current password hash) and for an hour. Setting the new password
ends every session of the account and signs nobody in: the owner signs in again at ``/login``,
and staff pass their second factor there as always.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import logout_user
from werkzeug.wrappers import Response

from intake.audit.services import record
from intake.auth import account_services as accounts
from intake.auth.registration import token_problem
from intake.auth.registration_forms import NewPasswordForm, ResetRequestForm
from intake.extensions import db
from intake.security.tokens import Purpose, TokenError, read_token

bp = Blueprint("reset", __name__)

@bp.route("/reset", methods=["GET", "POST"])
def request_link() -> str | tuple[str, int]:
    """Ask for a reset link by e-mail address; one answer for every address."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        accounts.request_password_reset(form.email.data)
        db.session.commit()
        return render_template("auth/reset_sent.html", lifetime=accounts.link_lifetime(Purpose.RESET_PASSWORD))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/reset_request.html", form=form), status

@bp.route("/reset/<token>", methods=["GET", "POST"])
def choose_password(token: str) -> Response | str | tuple[str, int]:
    """GET: the new-password form. POST: set it, end every session, send the owner to sign in."""
    try:
        user = read_token(token, Purpose.RESET_PASSWORD)
    except TokenError as exc:
        if request.method == "POST":
            record("password.reset_refused", details={"reason": "expired" if exc.expired else "invalid"})
            db.session.commit()
        return token_problem(exc, Purpose.RESET_PASSWORD)
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(user, form.password.data)
        except accounts.PasswordRejected as exc:
            form.password.errors.extend(exc.problems)
        else:
            db.session.commit()
            # Whoever was signed in in this browser starts over; the owner's cookies are dead anyway.
            logout_user()
            session.clear()
            flash(_("Your password is changed and your account is signed out everywhere. "
                    "Sign in with the new password."), "success")
            return redirect(url_for("auth.login"))
    status = 400 if request.method == "POST" else 200
    # The address goes into a hidden username field, so password managers save the new password
    # under the right account; whoever holds the link reads that mailbox anyway.
    return render_template("auth/reset_form.html", form=form, token=token, username=user.email), status
