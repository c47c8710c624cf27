"""Admin forms: shape only. Whether an invitation is allowed is decided by ``invite_staff``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from intake.forms import ConfirmForm, email_field


class InviteForm(FlaskForm):
    email = email_field(_l("E-mail address"), required=_l("Enter an e-mail address."), autocomplete="off")
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

    email = email_field(_l("Find an account by its exact e-mail address"), required=_l("Enter an e-mail address."),
                        autocomplete="off", autofocus=False)
    submit = SubmitField(_l("Find"))


ActionForm = ConfirmForm  # a button and its CSRF token, for actions whose only input is the URL
