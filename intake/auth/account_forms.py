"""Forms of the account pages and of accepting an invitation: shape only (required, lengths).

Whether a password is strong enough, or the current one right, is decided by the services.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from intake.security.passwords import MAX_LENGTH

_TOO_LONG = _l("Passwords are at most 128 characters.")


def no_control_characters(form: FlaskForm, field: Field) -> None:
    """Refuse NUL, escape and other invisible control characters in a new password."""
    if field.data and any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in field.data):
        raise ValidationError(_l("Passwords cannot contain invisible control characters."))


def _new_password(label: Any) -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(_l("Choose a password.")), Length(max=MAX_LENGTH, message=_TOO_LONG),
                    no_control_characters],
        render_kw={"autocomplete": "new-password"},
    )


def _confirmation(label: Any) -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(_l("Type the new password a second time.")),
                    Length(max=MAX_LENGTH, message=_TOO_LONG),
                    EqualTo("password", message=_l("The two passwords are not the same."))],
        render_kw={"autocomplete": "new-password"},
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(_l("Enter your current password.")), Length(max=MAX_LENGTH, message=_TOO_LONG)],
        render_kw={"autocomplete": "current-password", "autofocus": True},
    )
    password = _new_password(_l("New password"))
    confirm = _confirmation(_l("New password again"))
    submit = SubmitField(_l("Change password"))


class SetPasswordForm(FlaskForm):
    """The first password of an invited staff member."""

    password = _new_password(_l("Choose a password"))
    confirm = _confirmation(_l("Password again"))
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
