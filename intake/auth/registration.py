"""Requester registration and e-mail verification.

``/register`` answers with the same page whether or not the address already has an account
(its owner is told by e-mail instead), so the form cannot be used to find out who has one.
A verification link only *shows* a button on GET: mail scanners fetch links, and a GET must
not change anything. A link that is forged, used or too old answers 400 with a page that says
which, and what to do next.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from intake.audit.services import record
from intake.auth import account_services as accounts
from intake.auth.registration_forms import ConfirmForm, RegisterForm
from intake.extensions import db
from intake.permissions import Permission, require
from intake.security.tokens import Purpose, TokenError, read_token

bp = Blueprint("registration", __name__)

def token_problem(error: TokenError, purpose: Purpose) -> tuple[str, int]:
    """The page for a link that cannot be used (400): expired, or forged / already used."""
    return render_template("auth/token_problem.html", expired=error.expired, purpose=purpose.value), 400

@bp.route("/register", methods=["GET", "POST"])
def register() -> Response | str | tuple[str, int]:
    """Create a requester account (unverified until the link in the e-mail is opened)."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.account"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            accounts.register_requester(form.email.data, form.password.data)
        except accounts.PasswordRejected as exc:
            form.password.errors.extend(exc.problems)
        else:
            db.session.commit()
            return render_template("auth/register_sent.html",
                                   lifetime=accounts.link_lifetime(Purpose.VERIFY_EMAIL))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status

@bp.route("/register/verify/<token>", methods=["GET", "POST"])
def verify_email(token: str) -> Response | str | tuple[str, int]:
    """GET: a page with a confirm button. POST: mark the address verified.

    The link does not sign anyone in; afterwards the owner is sent to their account page if
    this browser is signed in as them, else to the sign-in page.
    """
    try:
        user = read_token(token, Purpose.VERIFY_EMAIL)
    except TokenError as exc:
        if request.method == "POST":  # a deliberate use of a bad link; a GET may be a mail scanner
            record("account.verification_refused", details={"reason": "expired" if exc.expired else "invalid"})
            db.session.commit()
        return token_problem(exc, Purpose.VERIFY_EMAIL)
    form = ConfirmForm()
    if form.validate_on_submit():
        accounts.verify_email(user)
        db.session.commit()
        flash(_("Thank you: your e-mail address is confirmed."), "success")
        if current_user.is_authenticated and current_user.id == user.id:
            return redirect(url_for("auth.account"))
        return redirect(url_for("auth.login"))
    return render_template("auth/verify.html", form=form, token=token)

@bp.route("/account/verify/resend", methods=["POST"])
@require(Permission.SIGNED_IN)
def resend_verification() -> Response:
    """Send the signed-in user a fresh verification link (rate-limited per client address)."""
    if accounts.resend_verification(current_user._get_current_object()):
        db.session.commit()
        flash(_("We sent a new link to your e-mail address. It works for %(lifetime)s.",
                lifetime=accounts.link_lifetime(Purpose.VERIFY_EMAIL)), "success")
    else:
        flash(_("Your e-mail address is already confirmed."), "info")
    return redirect(url_for("auth.account"))
