"""Required and optional fields are marked one way everywhere (WCAG 3.3.2), read from the forms
themselves: every field of every form in ``intake`` is checked.

The convention (docs/development.md, "Forms"): a field that may always be left empty says
"(optional)" in its label; a field with no such mark is needed, always or when its label or hint
says ("only if...", "only when..."), and those conditional ones are listed below with the reason.
A required field never says "(optional)", and a select that is required has an empty first option
("Choose..."), or is drawn without HTML's ``required`` (its first option is an answer).
Filter and search forms (GET, every field narrows a list) are all optional by nature and unmarked.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from flask import Flask
from flask_wtf import FlaskForm
from wtforms.validators import DataRequired, InputRequired, Optional

import intake
from intake.forms import DatePartsField, is_select

SKIPPED_TYPES = ("SubmitField", "HiddenField", "CSRFTokenField", "BooleanField")
# Forms whose every field narrows a list (GET): nothing in them is ever required.
FILTER_FORMS = ("FilterForm", "SearchForm", "LookupForm")
# Fields that are needed only in some cases, which their label or hint names (the reason).
CONDITIONAL: dict[str, str] = {
    "intake.calls.forms.CallForm.disclosure_to": "needed when 911 was called or the identity shared (the hint)",
    "intake.calls.forms.CallForm.disclosure_affiliation": "the same 42 CFR 2.51 disclosure",
    "intake.calls.forms.CallForm.disclosure_at": "the same 42 CFR 2.51 disclosure",
    "intake.calls.forms.CallForm.disclosure_reason": "the same 42 CFR 2.51 disclosure",
    "intake.calls.forms.CallForm.disclosure_information": "the same 42 CFR 2.51 disclosure",
    "intake.records.consent_forms.ConsentForm.expires_on": "a date, an event, or both (the hint)",
    "intake.records.consent_forms.PaperConsentForm.expires_on": "a date, an event, or both (the hint)",
    "intake.records.consent_forms.PaperConsentForm.signed_on": "typed as the paper says (the form's own text)",
    "intake.records.fee_forms.FeeForm.pages": "only for per-page copies (its label)",
    "intake.records.fee_forms.FeeForm.postage": "only if the copy is mailed (its label)",
    "intake.records.fee_forms.FeeForm.waiver_reason": "only when the fee is waived (its label)",
    "intake.records.portal_forms.RequestForm.scope_from": "one of the two dates, only for records from certain dates",
    "intake.records.portal_forms.RequestForm.scope_to": "one of the two dates, only for records from certain dates",
    "intake.records.queue_forms.MoveForm.custodian": "only if another custodian holds them (its label)",
    "intake.records.queue_forms.MoveForm.withdraw_detail": "needed for the reason “Other” (its label)",
    "intake.records.entry_forms.StaffRequestForm.scope_from": "as the requester's form: only for certain dates",
    "intake.records.entry_forms.StaffRequestForm.scope_to": "as the requester's form: only for certain dates",
    "intake.archive.forms.PatientForm.hold_reason": "only with a legal hold (its label)",
}


def all_forms() -> list[type[FlaskForm]]:
    found: dict[str, type[FlaskForm]] = {}
    for module in pkgutil.walk_packages(intake.__path__, "intake."):
        loaded = importlib.import_module(module.name)
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, FlaskForm) and cls.__module__ == loaded.__name__:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


def fields(app: Flask):
    with app.test_request_context():
        for cls in all_forms():
            form = cls(meta={"csrf": False})
            for field in form:
                if field.type not in SKIPPED_TYPES:
                    yield f"{cls.__module__}.{cls.__qualname__}", field


def test_every_form_is_found(app: Flask) -> None:
    names = {name for name, _ in fields(app)}
    assert {"intake.calls.forms.CallForm", "intake.records.portal_forms.RequestForm",
            "intake.calls.followup_forms.CloseForm"} <= names
    assert set(CONDITIONAL) <= {f"{name}.{field.name}" for name, field in fields(app)}, "a stale CONDITIONAL entry"


def test_optional_fields_say_so_and_required_ones_do_not(app: Flask) -> None:
    problems = []
    for name, field in fields(app):
        where, label = f"{name}.{field.name}", str(field.label.text)
        required = field.flags.required or any(isinstance(v, DataRequired | InputRequired) for v in field.validators)
        optional = any(isinstance(v, Optional) for v in field.validators) and not required
        if required and "(optional)" in label:
            problems.append(f"{where}: required, but its label says (optional): {label!r}")
        if optional and "(optional)" not in label and not name.endswith(FILTER_FORMS) and where not in CONDITIONAL:
            problems.append(f"{where}: may be left empty, but its label does not say (optional): {label!r}")
    assert not problems, "\n".join(problems)


def test_a_required_select_can_be_left_unchosen_or_is_not_marked_required(app: Flask) -> None:
    """HTML: a required select's first option must be an empty placeholder. The macros drop
    ``required`` from a select whose first option is an answer; this lists which selects those are
    and checks the placeholder of the others."""
    from intake.forms import select_may_be_required

    with_placeholder, always_answered = [], []
    for name, field in fields(app):
        if is_select(field) and field.flags.required and field.choices:
            (with_placeholder if select_may_be_required(field) else always_answered).append(f"{name}.{field.name}")
    assert "intake.calls.followup_forms.AttemptForm.outcome" in with_placeholder
    assert "intake.calls.forms.StartCallForm.channel" in always_answered


@pytest.mark.parametrize(("parts", "message"), [
    ({"day": "17", "month": "5", "year": "1980"}, None),
    ({"day": "", "month": "", "year": ""}, None),
    ({"day": "17", "month": "", "year": "1980"}, "must include a month."),
    ({"day": "", "month": "", "year": "1980"}, "must include a day and a month."),
    ({"day": "x", "month": "5", "year": "1980"}, "Type the day, month and year as numbers"),
    ({"day": "١٧", "month": "5", "year": "1980"}, "Type the day, month and year as numbers"),
    ({"day": "17", "month": "13", "year": "1980"}, "The month must be a number from 1 to 12."),
    ({"day": "31", "month": "4", "year": "1980"}, "Check the day: that month has no day 31."),
    ({"day": "8", "month": "12", "year": "517"}, "Type the year with four digits"),
    ({"day": "8", "month": "12", "year": "0000"}, "Type the year with four digits"),
    ({"day": "99999999", "month": "12", "year": "1980"}, "Check the day: that month has no day 99999999."),
    ({"day": "8", "month": "12", "year": "0517"}, "Enter a date between 1900 and 2100."),
])
def test_a_date_of_birth_in_three_boxes_says_what_is_wrong(app: Flask, parts: dict, message: str | None) -> None:
    from datetime import date

    from werkzeug.datastructures import MultiDict

    class Form(FlaskForm):
        dob = DatePartsField("Date of birth", earliest=date(1900, 1, 1), latest=date(2100, 12, 31))

    with app.test_request_context():
        form = Form(MultiDict({f"dob-{k}": v for k, v in parts.items()}), meta={"csrf": False})
        valid = form.validate()
        if message is None:
            assert valid, form.errors
            assert form.dob.data == (date(1980, 5, 17) if parts["year"] else None)
        else:
            assert not valid and message in " ".join(form.dob.errors), form.dob.errors
            assert form.dob.raw == parts  # what was typed comes back in the boxes


# WCAG 1.3.5: the fields where people type their own personal data say what it is, so a browser
# (or an assistive tool) can fill it in; fields about someone else say "off".
AUTOCOMPLETE = {
    "intake.auth.forms.LoginForm.email": "username",
    "intake.auth.registration_forms.RegisterForm.email": "email",
    "intake.records.portal_forms.RequestForm.patient_name": "name",
    "intake.records.portal_forms.RequestForm.patient_dob": "bday",
    "intake.records.portal_forms.RequestForm.requester_name": "name",
    "intake.records.portal_forms.RequestForm.mail_address": "street-address",
    "intake.records.portal_forms.RequestForm.attestation_name": "name",
    "intake.records.portal_forms.RequestForm.recipient_name": "off",
    "intake.records.portal_forms.RequestForm.recipient_address": "off",
    "intake.records.consent_forms.ConsentForm.patient_name": "name",
    "intake.records.consent_forms.ConsentForm.signed_name": "name",
    "intake.records.consent_forms.ConsentForm.recipient_name": "off",
    "intake.records.consent_forms.ConsentForm.recipient_address": "off",
    "intake.records.consent_forms.PaperConsentForm.patient_name": "off",
    "intake.records.consent_forms.PaperConsentForm.signed_name": "off",
    "intake.calls.forms.CallForm.caller_name": "off",
    "intake.calls.forms.CallForm.caller_phone": "off",
}


def test_personal_data_fields_say_what_they_hold(app: Flask) -> None:
    found = {}
    for name, field in fields(app):
        where = f"{name}.{field.name}"
        if where in AUTOCOMPLETE:
            found[where] = (field.autocomplete if isinstance(field, DatePartsField)
                            else (field.render_kw or {}).get("autocomplete"))
    assert found == AUTOCOMPLETE
