"""Accepting a staff invitation: choose a password, then set up the authenticator.

GET only shows the form (mail scanners fetch links, and a GET must not change anything). The
link is the credential, so the endpoint is public; a link that is forged, used or too old
answers 400 with a page that says so, never a 500. After the password is set the invitee is
not signed in yet: they are handed to MFA enrolment, which signs them in when it succeeds.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from intake.audit.services import record
from intake.auth import flow
from intake.auth.account_forms import SetPasswordForm
from intake.auth.mfa import mfa_required
from intake.extensions import db
from intake.security.tokens import Purpose, TokenError, read_token
from intake.users.invitations import InvitationPasswordRejected, accept_invitation

bp = Blueprint("invitations", __name__)


def _link_problem(expired: bool) -> tuple[str, int]:
    return render_template("invitations/invalid.html", expired=expired), 400


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept(token: str) -> Response | str | tuple[str, int]:
    """GET: the set-password form. POST: set it and go on to set up the authenticator."""
    try:
        user = read_token(token, Purpose.INVITATION)
    except TokenError as exc:
        if request.method == "POST":  # a deliberate use of a bad link; a GET may be a mail scanner
            record("user.invitation_refused", details={"reason": "expired" if exc.expired else "invalid"})
            db.session.commit()
        return _link_problem(exc.expired)
    if user.password_hash is not None or not user.is_staff:
        return _link_problem(False)  # accepted already (the fingerprint normally says so first)
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            accept_invitation(user, form.password.data)
        except InvitationPasswordRejected as exc:
            form.password.errors.extend(exc.problems)
        else:
            if not mfa_required(user):  # development with MFA_DISABLED only
                flow.finish_sign_in(user, "invitation")
                db.session.commit()
                return redirect(url_for("auth.account"))
            db.session.commit()
            flow.begin_pending(user, flow.ENROL, None)
            return redirect(url_for("auth.mfa_setup"))
    status = 400 if request.method == "POST" else 200
    return render_template("invitations/accept.html", form=form, token=token, email=user.email), status
