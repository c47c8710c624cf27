"""The staff form for a cost estimate: shape only (``intake.records.fees`` checks the meaning).

Postage is typed in dollars and cents and handed to the service in cents.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import DecimalField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from intake.forms import SelectField, strip
from intake.records.common import TEXT_MAX
from intake.records.labels import FEE_BASIS_LABELS
from intake.records.queue_forms import VersionedForm, WholeNumber, labelled_choices

MAX_PAGES = 20_000  # the same bound as intake.records.fees.MAX_PAGES
MAX_POSTAGE = Decimal("100.00")


class MoneyField(DecimalField):
    """A decimal amount; "NaN", "Infinity" and the like are not amounts (and a signalling NaN
    would otherwise break the range check)."""

    data: Any  # WTForms is untyped here (pyproject.toml); the validators decide when it holds an amount

    def process_formdata(self, valuelist: list) -> None:
        super().process_formdata(valuelist)
        if self.data is not None and not self.data.is_finite():
            self.data = None
            raise ValueError(_l("Enter the postage in dollars and cents, like 4.65."))


class FeeForm(VersionedForm):
    basis = SelectField(
        _l("How the fee is worked out"), choices=labelled_choices(_l("Choose…"), FEE_BASIS_LABELS),
        validators=[DataRequired(_l("Choose how the fee is worked out."))])
    pages = WholeNumber(
        _l("Number of pages (for per-page copies)"), validators=[
            Optional(), NumberRange(min=0, max=MAX_PAGES, message=_l("Enter a number of pages from 0 to %(max)d.",
                                                                     max=MAX_PAGES))],
        render_kw={"min": 0, "max": MAX_PAGES, "inputmode": "numeric"})
    postage = MoneyField(
        _l("Postage in US dollars (if the copy is mailed)"), places=2, validators=[
            Optional(), NumberRange(min=Decimal(0), max=MAX_POSTAGE,
                                    message=_l("Enter the postage from $0 to $100."))],
        render_kw={"inputmode": "decimal"})
    waiver_reason = TextAreaField(
        _l("Reason for the waiver (only when the fee is waived; the requester does not see it)"), filters=[strip],
        validators=[Optional(), Length(max=TEXT_MAX, message=_l("Please keep this under %(n)d characters.",
                                                                n=TEXT_MAX))],
        render_kw={"rows": 2, "maxlength": TEXT_MAX})
    submit = SubmitField(_l("Save the estimate"))

    def postage_cents(self) -> int | None:
        """The postage in whole cents; None when blank, -1 for a fraction of a cent (the service refuses it)."""
        value = self.postage.data
        if value is None:
            return None
        cents = value * 100
        return int(cents) if cents == cents.to_integral_value() else -1
