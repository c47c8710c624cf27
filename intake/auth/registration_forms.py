"""Registration, verification and password-reset forms: shape only (required, lengths, format).

Meaning (is the password strong enough, does the address have an account) is decided by
``intake.auth.account_services``; the views put its verdict next to the field.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from intake.security.passwords import MAX_LENGTH

EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def no_control_characters(form: FlaskForm, field: Field) -> None:
    """Refuse NUL, escape and other invisible control characters (any other character is fine)."""
    if field.data and any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in field.data):
        raise ValidationError(_l("Passwords cannot contain invisible control characters."))


def _email_field(label: Any) -> EmailField:
    return EmailField(
        label,
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter your e-mail address.")),
            Length(max=EMAIL_MAX_LENGTH, message=_l("That is too long for an e-mail address.")),
            Email(message=_l("Enter an e-mail address like name@example.org."), check_deliverability=False),
        ],
        render_kw={"autocomplete": "email", "autofocus": True, "spellcheck": "false"},
    )


def _new_password_fields() -> tuple[PasswordField, PasswordField]:
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(_l("Choose a password.")),
            Length(max=MAX_LENGTH, message=_l("Passwords are at most 128 characters.")),
            no_control_characters,
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Password again"),
        validators=[
            DataRequired(_l("Type the password a second time.")),
            Length(max=MAX_LENGTH, message=_l("Passwords are at most 128 characters.")),
            EqualTo("password", message=_l("The two passwords are not the same.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    return password, confirm


class RegisterForm(FlaskForm):
    email = _email_field(_l("E-mail address"))
    password, confirm = _new_password_fields()
    submit = SubmitField(_l("Create account"))


class ResetRequestForm(FlaskForm):
    email = _email_field(_l("E-mail address of your account"))
    submit = SubmitField(_l("Send me a link"))


class NewPasswordForm(FlaskForm):
    password, confirm = _new_password_fields()
    submit = SubmitField(_l("Save the new password"))


class ConfirmForm(FlaskForm):
    """A button and its CSRF token: for actions whose only input is the URL (a link's token)."""

    submit = SubmitField(_l("Confirm"))
