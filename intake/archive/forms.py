"""Archive admin forms: shape only (lengths, date format, control characters). What the fields
mean together (dates in order, nothing after the closure) is ``services.patient_problems``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from intake.archive.services import CUSTODIAN_MAX, FORMER_NAMES_MAX, LOCATION_MAX, MRN_MAX, NAME_MAX
from intake.forms import strip
from intake.records.portal_forms import IsoDateField, no_control_characters

TOO_LONG = _l("Please keep this under %(max)d characters.")


def _text(label, limit: int, required=None, **render_kw) -> StringField:
    validators = [DataRequired(required)] if required else [Optional()]
    return StringField(label, filters=[strip],
                       validators=[*validators, Length(max=limit, message=TOO_LONG), no_control_characters],
                       render_kw={"maxlength": limit, "autocomplete": "off", "spellcheck": "false", **render_kw})


class PatientForm(FlaskForm):
    """One patient of the archive index, added or edited by hand."""

    mrn = _text(_l("Medical record number (MRN)"), MRN_MAX, required=_l("Enter the medical record number."))
    last_name = _text(_l("Last name"), NAME_MAX, required=_l("Enter the last name."))
    first_name = _text(_l("First name"), NAME_MAX, required=_l("Enter the first name."))
    former_names = TextAreaField(
        _l("Former names (optional)"), filters=[strip],
        validators=[Length(max=FORMER_NAMES_MAX, message=TOO_LONG), no_control_characters],
        render_kw={"rows": 2, "maxlength": FORMER_NAMES_MAX, "spellcheck": "false"})
    dob = IsoDateField(_l("Date of birth"), validators=[InputRequired(_l("Enter the date of birth."))])
    admitted_on = IsoDateField(_l("Admitted on (optional)"))
    discharged_on = IsoDateField(_l("Discharged on (optional)"))
    record_location = _text(_l("Where the record is (optional)"), LOCATION_MAX)
    custodian = _text(_l("Custodian (optional)"), CUSTODIAN_MAX)
    retention_until = IsoDateField(_l("Keep the record until (optional)"))
    legal_hold = BooleanField(_l("Legal hold: never offer this record for destruction, whatever the dates"))
    hold_reason = _text(_l("Reason for the hold (only with a legal hold; staff only)"), CUSTODIAN_MAX)
    # When the record was last changed (microseconds): an edit made on an older copy is refused.
    loaded = HiddenField()
    submit = SubmitField(_l("Save"))

    def data_for_service(self) -> dict:
        return {name: getattr(self, name).data for name in (
            "mrn", "last_name", "first_name", "former_names", "dob", "admitted_on", "discharged_on",
            "record_location", "custodian", "retention_until", "legal_hold", "hold_reason")}


class SearchForm(FlaskForm):
    """Find patients by exact MRN, or by last name and date of birth. POSTed, so that the terms
    never appear in a URL."""

    mrn = _text(_l("Medical record number (MRN)"), MRN_MAX)
    last_name = _text(_l("Last name (current or former)"), NAME_MAX)
    dob = IsoDateField(_l("Date of birth"))


class MrnLookupForm(FlaskForm):
    """Look one MRN up from a request's verification step (POSTed: an MRN is never in a URL)."""

    mrn = _text(_l("Look up an MRN"), MRN_MAX)




class EmergencyDisclosureForm(FlaskForm):
    """A disclosure of this patient's records to medical personnel in a medical emergency, recorded as
    42 CFR 2.51(c) asks (who made it is the person recording it)."""

    recipient_name = _text(_l("Who received the records (the medical personnel)"), 200,
                           required=_l("Name the medical personnel who received the records (42 CFR 2.51(c)(1))."))
    affiliation = _text(_l("Their health care facility"), 200,
                        required=_l("Give their affiliation: the health care facility (42 CFR 2.51(c)(1))."))
    disclosed_at = StringField(_l("When (date and time, facility time)"), filters=[strip],
                               render_kw={"type": "datetime-local", "autocomplete": "off"})
    information = TextAreaField(_l("What was disclosed"), filters=[strip],
                                validators=[Length(max=2000, message=TOO_LONG), no_control_characters],
                                render_kw={"rows": 2, "maxlength": 2000})
    reason = TextAreaField(_l("The nature of the emergency"), filters=[strip],
                           validators=[Length(max=2000, message=TOO_LONG), no_control_characters],
                           render_kw={"rows": 2, "maxlength": 2000})
