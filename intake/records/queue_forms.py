"""Staff queue forms: shape only. The workflow and clock rules are checked by
``intake.records.services``; assignee choices are filled in by the view (forms never query).

Every form that changes a request carries the ``version`` the page was drawn with, so a change
made on a stale copy is refused instead of silently overwriting someone else's work. Each form
on the detail page gets its own ``prefix`` so field ids stay unique on the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from intake.forms import SelectField, strip
from intake.records.common import MESSAGE_MAX, NAME_MAX, TEXT_MAX
from intake.records.labels import (
    DENIAL_LABELS,
    NO_RECORDS_LABELS,
    PARTIAL_LABELS,
    REVIEW_OUTCOME_LABELS,
    STAFF_STATUS_LABELS,
    TYPE_SHORT,
    VERIFICATION_LABELS,
)
from intake.records.request_page import WITHDRAW_REASON_LABELS
from intake.records.workflow import Need

VERSION_MAX = 2**31 - 1


def _too_long(limit: int) -> Length:
    return Length(max=limit, message=_l("Please keep this under %(n)d characters.", n=limit))


def labelled_choices(placeholder: Any, labels: dict[Any, Any]) -> list[SelectChoice]:
    return [SelectChoice("", placeholder)] + [SelectChoice(code.value, label) for code, label in labels.items()]


class WholeNumber(IntegerField):
    """An IntegerField that reads more than 12 digits as no number, so the field's range check
    refuses it with its own message: WTForms' NumberRange calls math.isnan, which raises on a huge
    int (a 500; found by the fuzz)."""

    data: Any  # WTForms is untyped here (pyproject.toml); the validators decide when it holds a number

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and len(str(valuelist[0]).strip()) > 12:
            self.data = None
            return
        super().process_formdata(valuelist)


class VersionedForm(FlaskForm):
    """The request's version as the page showed it (hidden)."""

    version = WholeNumber(widget=HiddenField.widget,
                          validators=[InputRequired(), NumberRange(min=1, max=VERSION_MAX)])


class MoveForm(VersionedForm):
    """One move of the workflow; the view keeps only the inputs that move needs."""

    message = TextAreaField(
        _l("Message to the requester (they will read this)"), filters=[strip],
        validators=[DataRequired(_l("Write the message the requester will read.")), _too_long(MESSAGE_MAX)],
        render_kw={"rows": 4, "maxlength": MESSAGE_MAX})
    note = TextAreaField(
        _l("Internal reason (staff only; the requester never sees it)"), filters=[strip],
        validators=[DataRequired(_l("Give the reason, for the record.")), _too_long(TEXT_MAX)],
        render_kw={"rows": 3, "maxlength": TEXT_MAX})
    verification_method = SelectField(
        _l("How the identity was verified"), choices=labelled_choices(_l("Choose a method"), VERIFICATION_LABELS),
        validators=[DataRequired(_l("Choose how the identity was verified."))])
    reason = SelectField(_l("Reason (quoted in the letter to the requester)"),
                         validators=[DataRequired(_l("Choose a reason from the list."))])
    review_outcome = SelectField(
        _l("Outcome of the review"), choices=labelled_choices(_l("Choose an outcome"), REVIEW_OUTCOME_LABELS),
        validators=[DataRequired(_l("Choose the outcome of the review."))])
    archived_patient_id = SelectField(
        _l("The archive record this request is about"),
        validators=[DataRequired(_l("Choose the archive record this request is about."))])
    no_records_reason = SelectField(
        _l("Why there are no records"), choices=labelled_choices(_l("Choose a reason"), NO_RECORDS_LABELS),
        validators=[DataRequired(_l("Choose why there are no records."))])
    custodian = StringField(_l("Who holds the records now (only if another custodian holds them)"),
                            filters=[strip], validators=[Optional(), _too_long(NAME_MAX)])
    withdraw_reason = SelectField(
        _l("Why is the request withdrawn?"), choices=labelled_choices(_l("Choose a reason"), WITHDRAW_REASON_LABELS),
        validators=[DataRequired(_l("Choose why the request is withdrawn."))])
    withdraw_detail = TextAreaField(
        _l("In your words (needed for “Other”; staff only)"), filters=[strip],
        validators=[Optional(), _too_long(TEXT_MAX)], render_kw={"rows": 2, "maxlength": TEXT_MAX})
    withdraw_confirmed = BooleanField(
        _l("I understand the request will be closed"),
        validators=[DataRequired(_l("Tick the box to confirm that the request will be closed."))])


_FIELD_FOR_NEED = {Need.MESSAGE: ("message",), Need.NOTE: ("note",),
                   Need.VERIFICATION_METHOD: ("verification_method",), Need.DENIAL_REASON: ("reason",),
                   Need.PARTIAL_REASON: ("reason",), Need.REVIEW_OUTCOME: ("review_outcome",),
                   Need.ARCHIVE_MATCH: ("archived_patient_id",),
                   Need.NO_RECORDS_REASON: ("no_records_reason", "custodian"),
                   Need.WITHDRAW_REASON: ("withdraw_reason", "withdraw_detail", "withdraw_confirmed")}
TYPED_FIELDS = ("message", "note", "verification_method", "reason", "review_outcome", "archived_patient_id",
                "no_records_reason", "custodian", "withdraw_reason", "withdraw_detail", "withdraw_confirmed")


def move_form(target: str, needs: frozenset[Need], formdata: Any = None,
              archive_choices: Sequence[tuple[str, str]] | None = None) -> MoveForm:
    """A ``MoveForm`` for this target, holding only the inputs its rule needs.

    ``formdata=None`` draws an empty form; otherwise the form reads the posted data.
    ``archive_choices`` are the candidate archive records as ``(id, label)`` (the view finds them).
    """
    kwargs: dict[str, Any] = {"prefix": f"move-{target}"}
    if formdata is None:
        kwargs["formdata"] = None
    form = MoveForm(**kwargs)
    wanted = {name for need in needs for name in _FIELD_FOR_NEED.get(need, ())}
    for name in TYPED_FIELDS:
        if name not in wanted:
            delattr(form, name)
    if "reason" in wanted:
        labels = PARTIAL_LABELS if Need.PARTIAL_REASON in needs else DENIAL_LABELS
        form.reason.choices = labelled_choices(_l("Choose a reason"), labels)
    if "archived_patient_id" in wanted:
        form.archived_patient_id.choices = [SelectChoice("", _l("Choose the matching record"))] + [
            SelectChoice(value, label) for value, label in archive_choices or []]
    form.target = target
    return form


class MessageForm(VersionedForm):
    body = TextAreaField(
        _l("Message to the requester"), filters=[strip],
        validators=[DataRequired(_l("Write your message.")), _too_long(MESSAGE_MAX)],
        render_kw={"rows": 4, "maxlength": MESSAGE_MAX})
    submit = SubmitField(_l("Send the message to the requester"))


class NoteForm(VersionedForm):
    body = TextAreaField(
        _l("Internal note (staff only)"), filters=[strip],
        validators=[DataRequired(_l("Write the note.")), _too_long(MESSAGE_MAX)],
        render_kw={"rows": 4, "maxlength": MESSAGE_MAX})
    submit = SubmitField(_l("Add the internal note"))


class ClaimForm(VersionedForm):
    submit = SubmitField(_l("Assign the request to me"))


class AssignForm(VersionedForm):
    """Give the request to a queue worker or to nobody; choices come from the view."""

    assignee = SelectField(_l("Assign to"), validators=[DataRequired(_l("Choose who works this request."))])
    submit = SubmitField(_l("Give the request to this person"))


class ExtendForm(VersionedForm):
    reason = TextAreaField(
        _l("Reason for the delay (the requester reads it in the written notice)"), filters=[strip],
        validators=[DataRequired(_l("Give the reason for the delay; the requester will read it.")),
                    _too_long(TEXT_MAX)],
        render_kw={"rows": 3, "maxlength": TEXT_MAX})
    submit = SubmitField(_l("Extend the deadline"))


ANY = ""
ME = "me"


class QueueFilterForm(FlaskForm):
    """The list's filters (GET; no CSRF, nothing changes). Assignee choices come from the view."""

    class Meta:
        csrf = False

    type = SelectField(_l("Request type"), choices=labelled_choices(_l("Any"), TYPE_SHORT), validators=[Optional()])
    status = SelectField(_l("Status"), choices=labelled_choices(_l("Any"), STAFF_STATUS_LABELS),
                         validators=[Optional()])
    assignee = SelectField(_l("Assignee"), validators=[Optional()])
