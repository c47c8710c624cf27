"""The signed-in user's own security pages: change password and new recovery codes.

The account page itself stays ``auth.account``; its security section (recent sign-ins, recovery
codes left) is filled by the ``account_security`` template global registered here, so the page
queries the audit trail only when it is shown.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from werkzeug.wrappers import Response

from intake.auth import account_security as security
from intake.auth.account_forms import AuthenticatorCodeForm, ChangePasswordForm
from intake.auth.account_security import AccountLocked, NewPasswordRejected, WrongCode, WrongCurrentPassword
from intake.auth.mfa import remaining_recovery_codes
from intake.extensions import db
from intake.permissions import Permission, require
from intake.security.sessions import AUTH_AT, end_current_session, start_session
from intake.users.models import User

bp = Blueprint("account", __name__)

# How each sign-in method recorded by ``complete_sign_in`` reads on the account page.
METHOD_LABELS = {
    "password": _l("Password"),
    "totp": _l("Password and authenticator code"),
    "recovery_code": _l("Password and recovery code"),
    "totp_enrolment": _l("Password and a newly set-up authenticator"),
    "invitation": _l("Invitation link"),
}


@bp.app_template_global("account_security")
def account_security(user: User) -> dict[str, Any]:
    """What the account page's security section shows (two small queries, none per row)."""
    sign_ins = [
        {"at": s.at, "address": s.address, "method": METHOD_LABELS.get(s.method, _l("Other"))}
        for s in security.recent_sign_ins(user)
    ]
    codes_left = remaining_recovery_codes(user) if user.is_staff and user.mfa_enrolled else None
    return {"sign_ins": sign_ins, "recovery_codes_left": codes_left}


def _sign_in_again(user: User) -> None:
    """Keep this browser signed in after the session version was bumped.

    A fresh session (nothing carried over but the time of the original sign-in): the absolute
    timeout still counts from when the user really signed in with every factor, so changing the
    password cannot stretch a session past its 8 (or 1) hours.
    """
    authenticated_at = session.get(AUTH_AT)
    session.clear()
    login_user(user)
    start_session()
    if isinstance(authenticated_at, int):
        session[AUTH_AT] = authenticated_at


def _locked_out() -> Response:
    """Too many wrong passwords or codes: sign out here too, and say why."""
    end_current_session(reason="locked")  # commits the failure count and the lock
    flash(_("Too many wrong attempts: sign-in to your account is paused for a while, and you are signed "
            "out. We have sent you an e-mail about it."), "warning")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@require(Permission.SIGNED_IN)
def change_password() -> Response | str | tuple[str, int]:
    """Change one's own password; every other session ends, this one stays signed in."""
    user = current_user._get_current_object()
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            security.change_password(user, form.current_password.data, form.password.data)
        except AccountLocked:
            return _locked_out()
        except WrongCurrentPassword:
            db.session.commit()  # keep the failure count
            form.current_password.errors.append(_("That is not your current password."))
        except NewPasswordRejected as exc:
            form.password.errors.extend(exc.problems)
        else:
            db.session.commit()
            _sign_in_again(user)
            flash(_("Your password is changed. You are still signed in here; every other session has ended."),
                  "success")
            return redirect(url_for("auth.account"))
    status = 400 if request.method == "POST" else 200
    return render_template("account/change_password.html", form=form), status


@bp.route("/account/recovery-codes", methods=["GET", "POST"])
@require(Permission.OWN_SECOND_FACTOR)
def recovery_codes() -> Response | str | tuple[str, int]:
    """Staff: replace the recovery codes after a fresh authenticator code; show the new ones once."""
    user = current_user._get_current_object()
    if not user.mfa_enrolled:
        flash(_("Your account has no authenticator app set up, so it has no recovery codes."), "info")
        return redirect(url_for("auth.account"))
    form = AuthenticatorCodeForm()
    if form.validate_on_submit():
        try:
            codes = security.regenerate_recovery_codes(user, form.code.data)
        except AccountLocked:
            return _locked_out()
        except WrongCode:
            db.session.commit()  # keep the failure count
            form.code.errors.append(_("That code is not right, or it was already used. Wait for the next code "
                                      "and try again."))
        else:
            db.session.commit()
            flash(_("New recovery codes made. Your old codes no longer work."), "success")
            return render_template("auth/recovery_codes.html", codes=codes, next_url=url_for("auth.account"))
    status = 400 if request.method == "POST" else 200
    return render_template("account/recovery_codes_form.html", form=form,
                           remaining=remaining_recovery_codes(user)), status
