"""Registration, verification and password-reset forms: shape only (required, lengths, format).

Meaning (is the password strong enough, does the address have an account) is decided by
``intake.auth.account_services``; the views put its verdict next to the field.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SubmitField

from intake.forms import ConfirmForm, confirmation_field, email_field, new_password_field

__all__ = ["ConfirmForm", "NewPasswordForm", "RegisterForm", "ResetRequestForm"]

class RegisterForm(FlaskForm):
    email = email_field(_l("E-mail address"))
    password = new_password_field(_l("Password"))
    confirm = confirmation_field(_l("Password again"))
    submit = SubmitField(_l("Create account"))


class ResetRequestForm(FlaskForm):
    email = email_field(_l("E-mail address of your account"))
    submit = SubmitField(_l("Send me a link"))


class NewPasswordForm(FlaskForm):
    password = new_password_field(_l("Password"))
    confirm = confirmation_field(_l("Password again"))
    submit = SubmitField(_l("Save the new password"))
