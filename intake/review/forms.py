"""Quality-review forms: the rubric and the queue's filters. Shape only; the rules (a high-risk
call needed a safety plan, nobody reviews their own call) are the services'."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, RadioField, SelectField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from intake.forms import strip
from intake.review.models import ReviewReason
from intake.review.services import FEEDBACK_MAX, ITEMS, NOT_NEEDED_ITEM

NOT_NEEDED = "na"
SCORE_LABELS = {"2": _l("Done well"), "1": _l("Partly"), "0": _l("Not done")}
ITEM_LABELS = {
    "opening": _l("Opening: greeting, confidentiality explained, purpose of the call"),
    "listening": _l("Listening: let the caller speak, reflected back, no judgement"),
    "risk_assessment": _l("Risk assessment: suicide and withdrawal questions asked"),
    "referral_fit": _l("Referral fit: the help offered suits the caller's situation"),
    "safety_plan": _l("Safety plan, where one was needed"),
    "closing": _l("Closing: summary, next steps, the caller knows how to call back"),
}
REASON_LABELS = {ReviewReason.HIGH_RISK: _l("High risk"), ReviewReason.SAMPLE: _l("Weekly sample")}
# What templates/review/_feedback.html needs to name the rubric's items and scores.
FEEDBACK_LABELS = {"reason": REASON_LABELS, "item": ITEM_LABELS, "score": SCORE_LABELS, "item_order": ITEMS}
_ACCOUNT_RE = re.compile(r"^#?[0-9]{1,10}$")
MAX_ID = 2**31 - 1


def _score_field(item: str) -> RadioField:
    choices = [SelectChoice(value, label) for value, label in SCORE_LABELS.items()]
    if item == NOT_NEEDED_ITEM:
        choices.append(SelectChoice(NOT_NEEDED, _l("Not needed on this call")))
    # validate_choice=False: pre_validate's "Not a valid choice" is replaced by the check below.
    return RadioField(ITEM_LABELS[item], choices=choices, validate_choice=False,
                      validators=[InputRequired(_l("Score this item."))])


class ReviewForm(FlaskForm):
    """The rubric: six radio groups and the written feedback."""

    opening = _score_field("opening")
    listening = _score_field("listening")
    risk_assessment = _score_field("risk_assessment")
    referral_fit = _score_field("referral_fit")
    safety_plan = _score_field("safety_plan")
    closing = _score_field("closing")
    feedback = TextAreaField(
        _l("Feedback for the operator"), filters=[strip],
        validators=[InputRequired(_l("Write feedback for the operator.")),
                    Length(max=FEEDBACK_MAX, message=_l("Feedback is at most 4,000 characters."))],
        render_kw={"rows": 8, "maxlength": FEEDBACK_MAX})
    submit = SubmitField(_l("Save the review"))

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for item in ITEMS:
            field = self[item]
            if field.errors or field.data is None:
                continue
            if field.data not in {choice.value for choice in field.iter_choices()}:
                field.errors = [_l("Choose one of the scores offered.")]
                ok = False
        return ok

    def scores(self) -> dict[str, int | None]:
        """The scores as numbers; "not needed" is None (call after ``validate``)."""
        return {item: None if self[item].data == NOT_NEEDED else int(self[item].data) for item in ITEMS}

    def fill_from(self, review: Any) -> None:
        """Show a saved review's scores and feedback (for amending it)."""
        for item in ITEMS:
            value = getattr(review, "score_" + item)
            self[item].data = NOT_NEEDED if value is None and review.status == "done" else (
                None if value is None else str(value))
        self.feedback.data = review.feedback or ""


def _account_shape(form: FlaskForm, field: Field) -> None:
    value = field.data or ""
    if value and (not _ACCOUNT_RE.match(value) or int(value.lstrip("#")) > MAX_ID):
        raise ValidationError(_l("Enter an account number, such as 12."))


class QueueFilterForm(FlaskForm):
    """The queue's tab and filters, read from the query string (GET changes nothing: no CSRF)."""

    class Meta:
        csrf = False

    tab = SelectField(_l("Show"), choices=[SelectChoice("open", _l("Open")), SelectChoice("done", _l("Done"))],
                      default="open", validators=[Optional()])
    reason = SelectField(_l("Reason"), choices=[SelectChoice("", _l("Any"))] + [
        SelectChoice(r.value, label) for r, label in REASON_LABELS.items()], default="", validators=[Optional()])
    # The operators by name (the view fills them); an account number from an older link still works.
    operator = SelectField(_l("Operator"), choices=[SelectChoice("", _l("Any"))], default="", validate_choice=False,
                           validators=[Optional(), Length(max=11, message=_l("That is too long.")), _account_shape])
    submit = SubmitField(_l("Filter"))

    def operator_id(self) -> int | None:
        # Optional() lets a value of spaces through as "no filter": strip before reading a number.
        value = (self.operator.data or "").strip()
        return int(value.lstrip("#")) if value else None
