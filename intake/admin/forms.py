"""Admin forms: shape only. Whether an invitation is allowed is decided by ``invite_staff``."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

EMAIL_MAX_LENGTH = 254


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _email_field(label: Any, autofocus: bool = False) -> EmailField:
    return EmailField(
        label,
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter an e-mail address.")),
            Length(max=EMAIL_MAX_LENGTH, message=_l("That is too long for an e-mail address.")),
            Email(message=_l("Enter an e-mail address like name@example.org."), check_deliverability=False),
        ],
        render_kw={"autocomplete": "off", "spellcheck": "false", **({"autofocus": True} if autofocus else {})},
    )


class InviteForm(FlaskForm):
    email = _email_field(_l("E-mail address"), autofocus=True)
    # The service refuses any role but these two, with a message; the form only offers them.
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice("operator", _l("Helpline operator")), SelectChoice("admin", _l("Administrator"))],
        validate_choice=False,
        validators=[DataRequired(_l("Choose a role.")), Length(max=16, message=_l("Choose a role."))],
    )
    submit = SubmitField(_l("Send invitation"))


class LookupForm(FlaskForm):
    """Exact-address lookup of any account (GET, so no CSRF token: it changes nothing)."""

    class Meta:
        csrf = False

    email = _email_field(_l("Find an account by its exact e-mail address"))
    submit = SubmitField(_l("Find"))


class ActionForm(FlaskForm):
    """A button and its CSRF token, for actions whose only input is the URL."""

    submit = SubmitField(_l("Confirm"))
