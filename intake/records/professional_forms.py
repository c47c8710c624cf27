"""Forms for licensed professionals on a request: shape only (``intake.records.professionals`` checks
the licence, the dates and who may be named).

Staff record an outside professional's clinical denial or review with the written decision attached;
the patient (online, or staff from the patient's letter) designates a professional to receive the
records after a denial on clinical grounds (H&S 123115(b)).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from intake.records.common import ADDRESS_MAX
from intake.records.document_forms import ACCEPT
from intake.records.labels import DENIAL_LABELS, REVIEW_OUTCOME_LABELS
from intake.records.portal_forms import IsoDateField, name_field, text_field
from intake.records.professionals import DESIGNATABLE_LICENCES
from intake.records.queue_forms import VersionedForm
from intake.records.workflow import REVIEWABLE_REASONS
from intake.users.labels import LICENCE_TYPE_LABELS, US_STATES
from intake.users.models import LicenceType

FIELDS = ("name", "licence_type", "licence_number", "licence_state", "address")


def _licence_types(allowed: Any) -> list[SelectChoice]:
    return [SelectChoice("", _l("Choose…"))] + [SelectChoice(kind.value, LICENCE_TYPE_LABELS[kind])
                                                for kind in LicenceType if kind in allowed]


def _states() -> list[SelectChoice]:
    return [SelectChoice("", _l("Choose…"))] + [SelectChoice(code, name) for code, name in US_STATES.items()]


class DesignateForm(FlaskForm):
    """The licensed professional the patient designates (H&S 123115(b))."""

    name = name_field(_l("The professional's full name"), autocomplete="off")
    licence_type = SelectField(_l("Their licence"), choices=_licence_types(DESIGNATABLE_LICENCES),
                               validate_choice=False)
    licence_number = name_field(_l("Licence number"), autocomplete="off")
    licence_state = SelectField(_l("State that issued the licence"), choices=_states(), validate_choice=False)
    address = text_field(_l("Where they receive the records (postal address)"), ADDRESS_MAX)

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name).data for name in FIELDS}


class StaffDesignateForm(DesignateForm, VersionedForm):
    """The designation, entered by staff from the patient's written designation."""


class ProfessionalDecisionForm(VersionedForm):
    """An outside licensed professional's clinical denial, or review of one, with their written decision."""

    name = name_field(_l("The professional's full name"), autocomplete="off")
    licence_type = SelectField(_l("Their licence"), choices=_licence_types(set(LicenceType) - {LicenceType.OTHER}),
                               validate_choice=False)
    licence_number = name_field(_l("Licence number"), autocomplete="off")
    licence_state = SelectField(_l("State that issued the licence"), choices=_states(), validate_choice=False)
    decided_on = IsoDateField(_l("Date of their decision"), validators=[
        InputRequired(_l("Enter the date of the decision, like 2026-05-17."))])
    decision = SelectField(_l("Their decision"), validate_choice=False)
    file = FileField(_l("Their written decision (PDF, PNG or JPEG)"), render_kw={"accept": ACCEPT})

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name).data for name in
                ("name", "licence_type", "licence_number", "licence_state", "decided_on", "decision")}


def decision_form(role: str, formdata: Any = None, version: int | None = None) -> ProfessionalDecisionForm:
    """The form for a denial (the clinical reasons) or a review (upheld / overturned)."""
    kwargs: dict[str, Any] = {"prefix": f"professional-{role}"}
    if formdata is None:
        kwargs.update(formdata=None, version=version)
    form = ProfessionalDecisionForm(**kwargs)
    # In the labels' own order: REVIEWABLE_REASONS is a set, whose order differed from one worker to the next.
    labels = ({code: label for code, label in DENIAL_LABELS.items() if code in REVIEWABLE_REASONS}
              if role == "denial" else REVIEW_OUTCOME_LABELS)
    form.decision.choices = [SelectChoice("", _l("Choose…"))] + [
        SelectChoice(str(code), label) for code, label in labels.items()]
    form.role = role
    return form

