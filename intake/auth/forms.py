"""Sign-in forms: shape only (lengths, required); meaning is checked by the services."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from intake.forms import PASSWORD_TOO_LONG, email_field
from intake.security.passwords import MAX_LENGTH


class LoginForm(FlaskForm):
    email = email_field(_l("E-mail address"), autocomplete="username")
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("Enter your password.")), Length(max=MAX_LENGTH, message=PASSWORD_TOO_LONG)],
        render_kw={"autocomplete": "current-password"},
    )
    next = HiddenField()
    submit = SubmitField(_l("Sign in"))


class CodeForm(FlaskForm):
    """A 6-digit authenticator code, or a recovery code (10 letters and digits)."""

    code = StringField(
        _l("Code"),
        validators=[DataRequired(_l("Enter the code.")), Length(max=32, message=_l("That code is too long."))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True,
                   "spellcheck": "false", "autocapitalize": "characters"},
    )
    submit = SubmitField(_l("Continue"))
