"""Form fields every feature shares: e-mail addresses, new passwords, a bare confirm button.

Forms check shape (required, lengths, format); meaning is decided by the services.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from intake.security.passwords import MAX_LENGTH
from intake.users.services import EMAIL_MAX_LENGTH

PASSWORD_TOO_LONG = _l("Passwords are at most 128 characters.")


def strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def no_control_characters(form: FlaskForm, field: Field) -> None:
    """Refuse NUL, escape and other invisible control characters in a new password."""
    if field.data and any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in field.data):
        raise ValidationError(_l("Passwords cannot contain invisible control characters."))


def email_field(label: Any, *, required: Any = None, autocomplete: str = "email", autofocus: bool = True) -> EmailField:
    return EmailField(
        label,
        filters=[strip],
        validators=[
            DataRequired(required or _l("Enter your e-mail address.")),
            Length(max=EMAIL_MAX_LENGTH, message=_l("That is too long for an e-mail address.")),
            Email(message=_l("Enter an e-mail address like name@example.org."), check_deliverability=False),
        ],
        render_kw={"autocomplete": autocomplete, "spellcheck": "false", **({"autofocus": True} if autofocus else {})},
    )


def new_password_field(label: Any) -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(_l("Choose a password.")), Length(max=MAX_LENGTH, message=PASSWORD_TOO_LONG),
                    no_control_characters],
        render_kw={"autocomplete": "new-password"},
    )


def confirmation_field(label: Any, of: str = "password") -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(_l("Type the password a second time.")),
                    Length(max=MAX_LENGTH, message=PASSWORD_TOO_LONG),
                    EqualTo(of, message=_l("The two passwords are not the same."))],
        render_kw={"autocomplete": "new-password"},
    )


class ConfirmForm(FlaskForm):
    """A button and its CSRF token: for actions whose only input is the URL."""

    submit = SubmitField(_l("Confirm"))
