"""The requester's forms: shape only (lengths, dates, choices, control characters).

What the answers mean together (a third party needs a recipient, mail needs an address, a stay
cannot end after the facility closed...) is decided by ``submission.submission_problems``; the view
shows those messages next to the same fields. Choice fields skip WTForms' own choice check so
that a forged value gets our message, which never repeats what was sent.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, HiddenField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from intake.forms import DatePartsField, strip
from intake.forms import IsoDateField as SharedIsoDateField
from intake.records.common import ADDENDUM_MAX_CHARS, ADDENDUM_MAX_WORDS, ADDRESS_MAX, MESSAGE_MAX, NAME_MAX, TEXT_MAX
from intake.records.labels import (
    DELIVERY_LABELS,
    FORMAT_LABELS,
    KIND_LABELS,
    RELATIONSHIP_LABELS,
    SCOPE_LABELS,
    TYPE_LABELS,
)
from intake.records.models import FeeDecision, RecordFormat, Scope

TOO_LONG = _l("Please keep this under %(max)d characters.")


def _too_long(limit: int) -> Length:
    return Length(max=limit, message=TOO_LONG)


def no_control_characters(form: FlaskForm, field: Field) -> None:
    """Refuse NUL and other invisible characters; line breaks and tabs are fine in long text."""
    if isinstance(field.data, str) and any(
            (ord(ch) < 32 and ch not in "\n\r\t") or 127 <= ord(ch) < 160 for ch in field.data):
        raise ValidationError(_l("Remove the invisible control characters from this text."))


def one_of(values: Any, message: Any, optional: bool = False):
    """Accept only a listed code; the message never echoes what was sent."""
    allowed = {str(v) for v in values}

    def check(form: FlaskForm, field: Field) -> None:
        if optional and not field.data:
            return
        if field.data not in allowed:
            raise ValidationError(message)

    return check


def all_of(values: Any, message: Any):
    allowed = {str(v) for v in values}

    def check(form: FlaskForm, field: Field) -> None:
        if any(value not in allowed for value in field.data or []):
            raise ValidationError(message)

    return check


class IsoDateField(SharedIsoDateField):
    """The shared date field, optional unless told otherwise, with the portal's example date."""

    def __init__(self, label: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("validators", [Optional()])
        kwargs.setdefault("unreadable", _l("Enter a date like 1980-05-17 (year, month, day)."))
        super().__init__(label, **kwargs)


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _choices(labels: dict) -> list[SelectChoice]:
    return [SelectChoice(code.value, label) for code, label in labels.items()]


def _codes(labels: dict) -> list[str]:
    return [code.value for code in labels]


def name_field(label: Any, **kwargs: Any) -> StringField:
    return StringField(label, filters=[strip], validators=[_too_long(NAME_MAX), no_control_characters],
                       render_kw={"maxlength": NAME_MAX, **kwargs})


def text_field(label: Any, limit: int, rows: int = 3, **kwargs: Any) -> TextAreaField:
    return TextAreaField(label, filters=[strip], validators=[_too_long(limit), no_control_characters],
                         render_kw={"rows": rows, "maxlength": limit, **kwargs})


class RequestForm(FlaskForm):
    """A new records request. Every field is listed here; nothing else is read from the post."""

    # Who the patient is.
    # The patient is most often the person asking: their browser may fill in their own name and
    # date of birth (WCAG 1.3.5); someone asking for another person simply types over it.
    patient_name = name_field(_l("The patient's full name"), autocomplete="name")
    patient_former_names = name_field(_l("Other names the patient used (optional)"), autocomplete="off")
    patient_dob = DatePartsField(_l("The patient's date of birth"), autocomplete="bday")
    stay_from = IsoDateField(_l("Stay began, approximately (optional)"))
    stay_to = IsoDateField(_l("Stay ended, approximately (optional)"))

    # Who is asking.
    relationship_to_patient = RadioField(
        _l("Who are you?"), choices=_choices(RELATIONSHIP_LABELS), validate_choice=False,
        validators=[one_of(_codes(RELATIONSHIP_LABELS),
                           _l("Choose how you are related to the patient."))])
    requester_name = name_field(_l("Your own full name"), autocomplete="name")

    # What is asked for.
    request_type = RadioField(
        _l("What are you asking for?"), choices=_choices(TYPE_LABELS), validate_choice=False,
        validators=[one_of(_codes(TYPE_LABELS), _l("Choose what you are asking for."))])
    recipient_name = name_field(_l("Who should receive the copy"), autocomplete="off")
    recipient_address = text_field(_l("The recipient's address"), ADDRESS_MAX, autocomplete="off")
    purpose = text_field(_l("What the records are for"), TEXT_MAX)
    recipient_language = RadioField(
        _l("The recipient's language (the letter and the federal notice that go with the records)"),
        choices=[SelectChoice("en", "English"), SelectChoice("es", "Español")], default="en", validate_choice=False,
        validators=[one_of(("en", "es"), _l("Choose the recipient's language from the list."), optional=True)])
    addendum_text = TextAreaField(
        _l("Your statement (at most %(n)d words)", n=ADDENDUM_MAX_WORDS), filters=[strip],
        validators=[Length(max=ADDENDUM_MAX_CHARS, message=_l("An addendum can have at most %(n)d words.",
                                                                n=ADDENDUM_MAX_WORDS)),
                    no_control_characters],
        render_kw={"rows": 6})

    # Which records.
    scope = RadioField(
        _l("Which records?"), choices=_choices(SCOPE_LABELS), default=Scope.EVERYTHING.value, validate_choice=False,
        validators=[one_of(_codes(SCOPE_LABELS), _l("Choose which records you want."))])
    scope_from = IsoDateField(_l("From"))
    scope_to = IsoDateField(_l("To"))
    scope_kinds = MultiCheckboxField(_l("Kinds of document"), choices=_choices(KIND_LABELS), validate_choice=False,
                                     validators=[all_of(_codes(KIND_LABELS),
                                                        _l("Choose from the list."))])

    # How they are delivered.
    record_format = RadioField(
        _l("Format"), choices=_choices(FORMAT_LABELS), default=RecordFormat.ELECTRONIC.value, validate_choice=False,
        validators=[one_of(_codes(FORMAT_LABELS), _l("Choose a format from the list."), optional=True)])
    delivery = RadioField(
        _l("How should we give you the records?"), choices=_choices(DELIVERY_LABELS), validate_choice=False,
        validators=[one_of(_codes(DELIVERY_LABELS),
                           _l("Choose how you want to receive the records."), optional=True)])
    mail_address = text_field(_l("Postal address"), ADDRESS_MAX, autocomplete="street-address")

    details = text_field(_l("Anything else we should know (optional)"), TEXT_MAX, rows=4)

    # The signed attestation.
    attest = BooleanField(_l("I confirm that the information is true and that I am the patient or am legally "
                             "authorized to act for them"))
    attestation_name = name_field(_l("Type your full name as your signature"), autocomplete="name")

    def submission(self) -> dict[str, Any]:
        """The answers as the service reads them (an unparsable date is simply absent)."""
        data = {name: field.data for name, field in self._fields.items() if name != "csrf_token"}
        data["scope_kinds"] = list(data.get("scope_kinds") or [])
        data["attest"] = bool(data.get("attest"))
        return data


class MessageForm(FlaskForm):
    body = TextAreaField(
        _l("Your message"), filters=[strip],
        validators=[DataRequired(_l("Write your message.")),
                    Length(max=MESSAGE_MAX, message=_l("Please keep your message under %(max)d characters.")),
                    no_control_characters],
        render_kw={"rows": 5, "maxlength": MESSAGE_MAX})


class WithdrawForm(FlaskForm):
    confirm = BooleanField(_l("Yes, withdraw this request. We will stop working on it."),
                           validators=[DataRequired(_l("Tick the box to confirm that you want to withdraw."))])


class ReviewForm(FlaskForm):
    message = TextAreaField(
        _l("Anything you want the reviewer to know (optional)"), filters=[strip],
        validators=[Length(max=MESSAGE_MAX, message=_l("Please keep your message under %(max)d characters.")),
                    no_control_characters],
        render_kw={"rows": 3, "maxlength": MESSAGE_MAX})


class FeeDecisionForm(FlaskForm):
    """The requester's answer to a cost estimate; ``estimate`` names the estimate the page showed.
    The choice skips WTForms' own check so a forged value gets the service's message."""

    estimate = HiddenField(validators=[DataRequired(), Length(max=32)])
    decision = RadioField(
        _l("Should we go ahead at this cost?"), validate_choice=False,
        choices=[SelectChoice(FeeDecision.ACCEPTED.value, _l("Yes, go ahead at this cost")),
                 SelectChoice(FeeDecision.DECLINED.value, _l("No, not at this cost"))],
        validators=[DataRequired(_l("Choose whether we should go ahead at this cost."))])
