"""Forms of the retention page: one policy (days, legal hold, reason) and the preview button.

Shape only: a whole number, a reason of sensible length. The limits per kind and "a hold needs a
reason" are the service's (``intake.admin.retention.update_policy``).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, ValidationError

from intake.admin.retention import HOLD_REASON_MAX, MAX_DAYS
from intake.forms import strip


class _Days(IntegerField):
    """A whole number of days; anything else (letters, decimals, a huge number) is said so plainly."""

    data: Any  # WTForms is untyped here (pyproject.toml); InputRequired decides when it holds a number

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or not str(valuelist[0]).strip():
            self.data = None
            return
        raw = str(valuelist[0]).strip()
        if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
            self.data = None
            raise ValueError(_l("Enter a whole number of days, for example 730."))
        self.data = int(raw)

    def pre_validate(self, form: Any) -> None:
        # Only spaces passes InputRequired but leaves no number (found by the fuzz).
        if self.data is None and self.raw_data and not self.process_errors:
            raise ValidationError(_l("Enter a number of days."))
        if self.data is not None and not 1 <= self.data <= MAX_DAYS:
            raise ValidationError(_l("Enter a number of days up to %(max)d.", max=MAX_DAYS))


class PolicyForm(FlaskForm):
    """One kind's policy. Field ids are made unique per kind by the view (``prefix``)."""

    keep_days = _Days(_l("Keep for (days)"), validators=[InputRequired(_l("Enter a number of days."))])
    legal_hold = BooleanField(_l("Legal hold: purge nothing of this kind"))
    hold_reason = TextAreaField(_l("Reason for the hold"), filters=[strip],
                                validators=[Length(max=HOLD_REASON_MAX,
                                                   message=_l("Keep the reason under %(max)d characters.",
                                                              max=HOLD_REASON_MAX))],
                                render_kw={"rows": 2})
    submit = SubmitField(_l("Save"))


class PreviewForm(FlaskForm):
    """The "what would the purge remove now?" button (it counts rows, so only on request)."""

    submit = SubmitField(_l("Preview the purge"))
