"""The audit review's filter form: shape only. The view fills the choices (actions and object
types actually present in the trail) and turns a person's address into an account."""

from __future__ import annotations

import re
from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, Field, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from intake.forms import SelectField, strip

EARLIEST = date(2000, 1, 1)
LATEST = date(2999, 12, 31)
MAX_ID = 2**31 - 1
NOBODY = ("system", "anonymous")  # events with no signed-in actor
_ID_RE = re.compile(r"^[0-9]{1,10}$")
ANY = SelectChoice("", _l("Any"))


def _sane_date(form: FlaskForm, field: Field) -> None:
    if field.data is not None and not EARLIEST <= field.data <= LATEST:
        raise ValidationError(_l("Enter a date between 2000 and 2999."))


_ACCOUNT_RE = re.compile(r"^#?[0-9]{1,10}$")


def _person_shape(form: FlaskForm, field: Field) -> None:
    # An account number, not an address: the filter travels in the URL, and a former patient's
    # address there would say they were a patient.
    value = field.data or ""
    if value and value.lower() not in NOBODY and not _ACCOUNT_RE.match(value):
        raise ValidationError(_l("Enter an account number (as shown on the users page), or “system” for events "
                                 "without a signed-in person."))


REQUEST_REF_RE = re.compile(r"^RR-[0-9]{4}-[A-Z0-9]{4,8}$")
CALL_REF_RE = re.compile(r"^(?:call\s*)?#?\s*([0-9]{1,10})$", re.IGNORECASE)


def _reference_shape(form: FlaskForm, field: Field) -> None:
    value = (field.data or "").upper()
    if value and not REQUEST_REF_RE.match(value) and not CALL_REF_RE.match(value):
        raise ValidationError(_l("Enter a request reference such as RR-2026-MZ6R, or a call number such as #208."))


def _object_id_shape(form: FlaskForm, field: Field) -> None:
    value = field.data or ""
    if value and (not _ID_RE.match(value) or int(value) > MAX_ID):
        raise ValidationError(_l("An object id is a whole number, such as 42."))


class AuditFilterForm(FlaskForm):
    """Filters read from the query string (GET changes nothing, so no CSRF token)."""

    class Meta:
        csrf = False

    # The staff by name (the view fills them); an account number not in the list (a requester's,
    # from the users page) is accepted as well. validate_choice=False for that reason.
    person = SelectField(_l("Person"), choices=[ANY], default="", validate_choice=False,
                         validators=[Optional(), Length(max=12, message=_l("That is too long.")), _person_shape])
    # What a colleague would quote: a request's reference or a call's number.
    reference = StringField(_l("Request reference or call number"), filters=[strip],
                            validators=[Optional(), Length(max=40, message=_l("That is too long.")), _reference_shape],
                            description=_l("For example RR-2026-MZ6R, or #208 for call 208."),
                            render_kw={"autocomplete": "off", "spellcheck": "false"})
    # validate_choice=False: the checks below word the refusal better than "Not a valid choice".
    action = SelectField(_l("Action"), choices=[ANY], default="", validate_choice=False)
    object_type = SelectField(_l("Object type"), choices=[ANY], default="", validate_choice=False)
    object_id = StringField(_l("Object id"), filters=[strip], validators=[Optional(), _object_id_shape],
                            render_kw={"autocomplete": "off", "inputmode": "numeric"})
    date_from = DateField(_l("From (facility date)"), validators=[Optional(), _sane_date],
                          render_kw={"autocomplete": "off"})
    date_to = DateField(_l("To (facility date, inclusive)"), validators=[Optional(), _sane_date],
                        render_kw={"autocomplete": "off"})
    submit = SubmitField(_l("Filter"))

    def validate_date_to(self, field: Field) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))

    def validate_action(self, field: Field) -> None:
        if field.data and field.data not in {c.value for c in field.iter_choices()} - {""}:
            raise ValidationError(_l("No event in the audit trail has that action. Choose one from the list."))

    def validate_object_type(self, field: Field) -> None:
        if field.data and field.data not in {c.value for c in field.iter_choices()} - {""}:
            raise ValidationError(_l("No event in the audit trail has that object type. Choose one from the list."))

    def validate_object_id(self, field: Field) -> None:
        if field.data and not self.object_type.data:
            raise ValidationError(_l("Choose an object type to look up an object by its id."))
