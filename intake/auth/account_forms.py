"""Forms of the account pages and of accepting an invitation: shape only (required, lengths).

Whether a password is strong enough, or the current one right, is decided by the services.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from intake.forms import PASSWORD_TOO_LONG, confirmation_field, new_password_field
from intake.security.passwords import MAX_LENGTH


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(_l("Enter your current password.")),
                    Length(max=MAX_LENGTH, message=PASSWORD_TOO_LONG)],
        render_kw={"autocomplete": "current-password", "autofocus": True},
    )
    password = new_password_field(_l("New password"))
    confirm = confirmation_field(_l("New password again"))
    submit = SubmitField(_l("Change password"))


class SetPasswordForm(FlaskForm):
    """The first password of an invited staff member."""

    password = new_password_field(_l("Choose a password"))
    confirm = confirmation_field(_l("Password again"))
    submit = SubmitField(_l("Save and continue"))


class AuthenticatorCodeForm(FlaskForm):
    """A fresh 6-digit code from the authenticator app (a recovery code is not accepted here)."""

    code = StringField(
        _l("Authenticator code"),
        validators=[DataRequired(_l("Enter the code.")), Length(max=32, message=_l("That code is too long."))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True,
                   "spellcheck": "false"},
    )
    submit = SubmitField(_l("Make new recovery codes"))
