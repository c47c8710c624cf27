"""Forms for the call list, the repeat-caller lookup, the reveal and the urgent queue: shape only.

Readable labels for the coded call fields live here too, so every call page words them alike.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, Field, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from intake.calls.models import AgeRange, CallType, Channel, Disposition, RiskLevel, Substance
from intake.calls.phones import normalise_phone
from intake.forms import ConfirmForm, SelectField, strip

CALL_TYPE_LABELS = {
    CallType.DATA: _l("Call with data"), CallType.HANG_UP: _l("Hang-up"),
    CallType.WRONG_NUMBER: _l("Wrong number"), CallType.PRANK: _l("Prank"), CallType.SILENT: _l("Silent"),
    CallType.TEST: _l("Test"),
}
CHANNEL_LABELS = {Channel.PHONE: _l("Phone"), Channel.TEXT: _l("Text message"), Channel.CHAT: _l("Chat"),
                  Channel.EMAIL: _l("E-mail")}
RISK_LABELS = {RiskLevel.NONE: _l("None"), RiskLevel.LOW: _l("Low"), RiskLevel.MODERATE: _l("Moderate"),
               RiskLevel.HIGH: _l("High"), RiskLevel.IMMINENT: _l("Imminent")}
SUBSTANCE_LABELS = {
    Substance.CLONAZEPAM: _l("Clonazepam (Klonopin)"), Substance.OTHER_BENZODIAZEPINE: _l("Other benzodiazepine"),
    Substance.ALCOHOL: _l("Alcohol"), Substance.OPIOIDS: _l("Opioids"), Substance.STIMULANTS: _l("Stimulants"),
    Substance.CANNABIS: _l("Cannabis"), Substance.OTHER: _l("Other"),
}
DISPOSITION_LABELS = {
    Disposition.INFORMATION_GIVEN: _l("Information given"), Disposition.REFERRED: _l("Referred"),
    Disposition.CRISIS_DEESCALATED: _l("Crisis de-escalated"),
    Disposition.EMERGENCY_DISPATCHED: _l("Emergency services dispatched"),
    Disposition.WARM_TRANSFER: _l("Warm transfer"), Disposition.CALLBACK_PLANNED: _l("Callback planned"),
    Disposition.CALLER_DISCONNECTED: _l("Caller disconnected"), Disposition.OTHER: _l("Other"),
}
AGE_LABELS = {
    AgeRange.UNKNOWN: _l("Unknown"), AgeRange.UNDER_18: _l("Under 18"), AgeRange.AGE_18_24: _l("18 to 24"),
    AgeRange.AGE_25_34: _l("25 to 34"), AgeRange.AGE_35_44: _l("35 to 44"), AgeRange.AGE_45_54: _l("45 to 54"),
    AgeRange.AGE_55_64: _l("55 to 64"), AgeRange.AGE_65_PLUS: _l("65 or older"),
}
REVEAL_REASONS = {
    "callback": _l("Calling the caller back"),
    "emergency": _l("Emergency"),
    "safeguarding": _l("Safeguarding concern"),
    "supervisor_review": _l("Supervisor review"),
    "other": _l("Other (explain)"),
}
HAS_FOLLOWUP_CHOICES = [SelectChoice("", _l("Any")), SelectChoice("yes", _l("Yes")), SelectChoice("no", _l("No"))]
EARLIEST = date(2000, 1, 1)
LATEST = date(2999, 12, 31)


def _choices(labels: dict[Any, Any]) -> list[SelectChoice]:
    return [SelectChoice("", _l("Any"))] + [SelectChoice(str(code), label) for code, label in labels.items()]


def _sane_date(form: FlaskForm, field: Field) -> None:
    if field.data is not None and not EARLIEST <= field.data <= LATEST:
        raise ValidationError(_l("Enter a date between 2000 and 2999."))


class CallFilterForm(FlaskForm):
    """The list's filters, read from the query string (GET: changes nothing, so no CSRF token).

    ``operator.choices`` is filled by the view from the staff list; the form itself never
    queries the database.
    """

    class Meta:
        csrf = False

    date_from = DateField(_l("From (date)"), validators=[Optional(), _sane_date],
                          render_kw={"autocomplete": "off"})
    date_to = DateField(_l("To (date, inclusive)"), validators=[Optional(), _sane_date],
                        render_kw={"autocomplete": "off"})
    operator = SelectField(_l("Operator"), choices=[SelectChoice("", _l("Any"))], default="")
    risk = SelectField(_l("Risk level"), choices=_choices(RISK_LABELS), default="")
    substance = SelectField(_l("Substance"), choices=_choices(SUBSTANCE_LABELS), default="")
    disposition = SelectField(_l("Disposition"), choices=_choices(DISPOSITION_LABELS), default="")
    has_followup = SelectField(_l("Has a follow-up"), choices=HAS_FOLLOWUP_CHOICES, default="")
    submit = SubmitField(_l("Filter"))

    def validate_date_to(self, field: Field) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))


def _phone_shape(form: FlaskForm, field: Field) -> None:
    if field.data and not 7 <= len(normalise_phone(field.data)) <= 15:
        raise ValidationError(_l("Enter a phone number with 7 to 15 digits."))


class PhoneLookupForm(FlaskForm):
    """Repeat-caller lookup: POSTed so the number never appears in a URL or an access log."""

    phone = StringField(_l("Caller's phone number"), filters=[strip],
                        validators=[DataRequired(_l("Enter a phone number.")),
                                    Length(max=40, message=_l("Enter a phone number with 7 to 15 digits.")),
                                    _phone_shape],
                        render_kw={"autocomplete": "off", "inputmode": "tel", "spellcheck": "false"})
    submit = SubmitField(_l("Find earlier calls"))


def _reasons() -> list[SelectChoice]:
    return [SelectChoice(code, label) for code, label in REVEAL_REASONS.items()]


class RevealForm(FlaskForm):
    """Why the caller's contact details are needed. Only the code is kept (in the audit trail);
    the explanation for "other" is checked for presence and length, then discarded."""

    reason = SelectField(_l("Reason for revealing the caller's details"),
                         choices=[SelectChoice("", _l("Choose a reason"))] + _reasons(),
                         validators=[DataRequired(_l("Choose a reason."))])
    explanation = StringField(_l("Explanation (required for \"Other\"; not stored)"), filters=[strip],
                              validators=[Length(max=200, message=_l("At most 200 characters."))],
                              render_kw={"autocomplete": "off", "maxlength": 200})
    submit = SubmitField(_l("Reveal contact details"))

    def validate_explanation(self, field: Field) -> None:
        if self.reason.data == "other" and not field.data:
            raise ValidationError(_l("Explain the reason."))


UrgentReviewForm = ConfirmForm  # a button and its CSRF token


def _no_control_characters(form: FlaskForm, field: Field) -> None:
    """Refuse NUL and other invisible control characters (line breaks and tabs are fine)."""
    if field.data and any((ord(ch) < 32 and ch not in "\t\r\n") or 127 <= ord(ch) < 160 for ch in field.data):
        raise ValidationError(_l("Remove the invisible control characters."))


class SupervisorNoteForm(FlaskForm):
    """A supervisor's note to the operator of a live call (the service checks meaning)."""

    body = TextAreaField(_l("Note to the operator"), filters=[strip],
                         validators=[DataRequired(_l("Write the note.")),
                                     Length(max=1000, message=_l("At most 1,000 characters.")),
                                     _no_control_characters],
                         render_kw={"rows": 3, "maxlength": 1000})
