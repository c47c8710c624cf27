"""Admin forms: shape only. Whether an invitation, a change of roles or identity, or a disable is
allowed is decided by the services (``invite_staff``, ``set_roles``, ``set_identity``, ``disable_user``)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, StopValidation, ValidationError

from intake.forms import CheckboxesField, ConfirmForm, email_field, strip
from intake.users.labels import LICENCE_TYPE_LABELS, ROLE_LABELS, US_STATES
from intake.users.models import STAFF_ROLES
from intake.users.services import DISPLAY_NAME_MAX, LICENCE_NUMBER_MAX

STAFF_ROLE_CHOICES = [SelectChoice(role.value, ROLE_LABELS[role]) for role in STAFF_ROLES]
LICENCE_TYPE_CHOICES = [SelectChoice("", _l("No licence"))] + [
    SelectChoice(kind.value, label) for kind, label in LICENCE_TYPE_LABELS.items()]
STATE_CHOICES = [SelectChoice("", _l("Choose a state"))] + [
    SelectChoice(code, f"{code} – {name}") for code, name in US_STATES.items()]


def _one_of_the_choices(message: str):
    """A select's value must be one it offers; ``message`` says so better than "Not a valid choice"."""

    def check(form: FlaskForm, field: Field) -> None:
        if field.data not in {c.value for c in field.iter_choices()}:
            raise ValidationError(message)

    return check


def _all_of_the_choices(message: str):
    """Every ticked value must be one the checkboxes offer."""

    def check(form: FlaskForm, field: Field) -> None:
        offered = {choice.value for choice in field.choices}
        if any(value not in offered for value in field.data or []):
            raise ValidationError(message)

    return check


def _at_least_one(message: str):
    """Some box ticked. (Not DataRequired: its "required" flag on every checkbox would tell a
    screen reader that each role must be ticked.)"""

    def check(form: FlaskForm, field: Field) -> None:
        if not field.data:
            raise StopValidation(message)

    return check


def roles_field(label: str) -> CheckboxesField:
    return CheckboxesField(label, choices=list(STAFF_ROLE_CHOICES), validate_choice=False,
                           validators=[_at_least_one(_l("Choose at least one role.")),
                                       _all_of_the_choices(_l("Choose roles from the list."))])


def display_name_field() -> StringField:
    # The service checks the characters (letters of any script, the punctuation names use).
    return StringField(_l("Name"), filters=[strip],
                       validators=[DataRequired(_l("Enter the name colleagues know them by.")),
                                   Length(max=DISPLAY_NAME_MAX,
                                          message=_l("Use at most %(max)d characters.", max=DISPLAY_NAME_MAX))],
                       render_kw={"autocomplete": "off", "spellcheck": "false", "maxlength": DISPLAY_NAME_MAX})


class InviteForm(FlaskForm):
    email = email_field(_l("E-mail address"), required=_l("Enter an e-mail address."), autocomplete="off")
    display_name = display_name_field()
    # The service refuses any role but the staff roles, with a message; the form only offers them.
    roles = roles_field(_l("Roles"))
    submit = SubmitField(_l("Send invitation"))


class LookupForm(FlaskForm):
    """Exact-address lookup of any account (GET, so no CSRF token: it changes nothing)."""

    class Meta:
        csrf = False

    email = email_field(_l("Find an account by its exact e-mail address"), required=_l("Enter an e-mail address."),
                        autocomplete="off", autofocus=False)
    submit = SubmitField(_l("Find"))


ActionForm = ConfirmForm  # a button and its CSRF token, for actions whose only input is the URL


class RolesForm(FlaskForm):
    """The roles of a staff account: one or several. Requesters are not offered (former patients
    never become staff)."""

    roles = roles_field(_l("Roles"))
    submit = SubmitField(_l("Save roles"))


class IdentityForm(FlaskForm):
    """A staff member's name and professional licence (all three parts of it, or none)."""

    display_name = display_name_field()
    licence_type = SelectField(_l("Licence type"), choices=LICENCE_TYPE_CHOICES, default="", validate_choice=False,
                               validators=[_one_of_the_choices(_l("Choose a licence type from the list."))])
    licence_number = StringField(_l("Licence number"), filters=[strip],
                                 validators=[Length(max=LICENCE_NUMBER_MAX, message=_l(
                                     "Use at most %(max)d characters.", max=LICENCE_NUMBER_MAX))],
                                 render_kw={"autocomplete": "off", "spellcheck": "false",
                                            "maxlength": LICENCE_NUMBER_MAX})
    licence_state = SelectField(_l("Issuing state"), choices=STATE_CHOICES, default="", validate_choice=False,
                                validators=[_one_of_the_choices(_l("Choose a state from the list."))])
    submit = SubmitField(_l("Save name and licence"))


class DisableForm(FlaskForm):
    """Disabling needs a ticked box: it signs the person out everywhere at once."""

    confirm = BooleanField(_l("I understand that this signs them out everywhere at once."),
                           validators=[DataRequired(_l("Tick the box to confirm that their sessions end now."))])
    submit = SubmitField(_l("Disable account"))


ROLE_FILTERS = [SelectChoice("", _l("All staff"))] + STAFF_ROLE_CHOICES
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
