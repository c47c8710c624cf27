"""Admin forms: shape only. Whether an invitation, a role change or a disable is allowed is
decided by the services (``invite_staff``, ``change_role``, ``disable_user``)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, SelectField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from intake.forms import ConfirmForm, email_field

STAFF_ROLE_CHOICES = [SelectChoice("operator", _l("Helpline operator")), SelectChoice("admin", _l("Administrator"))]


class InviteForm(FlaskForm):
    email = email_field(_l("E-mail address"), required=_l("Enter an e-mail address."), autocomplete="off")
    # The service refuses any role but these two, with a message; the form only offers them.
    role = SelectField(
        _l("Role"),
        choices=STAFF_ROLE_CHOICES,
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


def _one_of_the_choices(message: str):
    """A select's value must be one it offers; ``message`` says so better than "Not a valid choice"."""

    def check(form: FlaskForm, field: Field) -> None:
        if field.data not in {c.value for c in field.iter_choices()}:
            raise ValidationError(message)

    return check


class RoleForm(FlaskForm):
    """The new role of a staff account. Requesters are not offered (former patients never become staff)."""

    role = SelectField(_l("New role"), choices=STAFF_ROLE_CHOICES, validate_choice=False,
                       validators=[DataRequired(_l("Choose a role.")),
                                   _one_of_the_choices(_l("Choose operator or administrator."))])
    submit = SubmitField(_l("Change role"))


class DisableForm(FlaskForm):
    """Disabling needs a ticked box: it signs the person out everywhere at once."""

    confirm = BooleanField(_l("I understand that this signs them out everywhere at once."),
                           validators=[DataRequired(_l("Tick the box to confirm that their sessions end now."))])
    submit = SubmitField(_l("Disable account"))


ROLE_FILTERS = [SelectChoice("", _l("All staff")), SelectChoice("operator", _l("Helpline operators")),
                SelectChoice("admin", _l("Administrators"))]
STATE_FILTERS = [SelectChoice("", _l("Any")), SelectChoice("active", _l("Active")),
                 SelectChoice("disabled", _l("Disabled")), SelectChoice("locked", _l("Locked")),
                 SelectChoice("invited", _l("Invited, not yet accepted"))]


class UserFilterForm(FlaskForm):
    """Filters of the staff list, read from the query string (GET changes nothing: no CSRF token)."""

    class Meta:
        csrf = False

    role = SelectField(_l("Role"), choices=ROLE_FILTERS, default="", validate_choice=False,
                       validators=[_one_of_the_choices(_l("Choose a role from the list."))])
    state = SelectField(_l("State"), choices=STATE_FILTERS, default="", validate_choice=False,
                        validators=[_one_of_the_choices(_l("Choose a state from the list."))])
    submit = SubmitField(_l("Filter"))
