"""The site-notice form: shape only (required, lengths, dates readable, a known kind).

Whether the dates make sense together and whether any text is left once formatting is cleaned
is decided by ``intake.admin.notices.check_notice``.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, RadioField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional, ValidationError

from intake.admin.models import NoticeKind
from intake.admin.notices import BODY_MAX, KIND_LABELS, KIND_ORDER, TITLE_MAX
from intake.forms import IsoDateField, strip

_CONTROL = {chr(c) for c in range(32)} | {chr(c) for c in range(127, 160)}
_MULTILINE_OK = {"\n", "\r", "\t"}


def _no_control_characters(multiline: bool = False) -> Any:
    """Refuse NUL and other invisible characters (PostgreSQL cannot even store NUL in text)."""
    forbidden = _CONTROL - _MULTILINE_OK if multiline else _CONTROL

    def check(form: FlaskForm, field: Field) -> None:
        if isinstance(field.data, str) and any(ch in forbidden for ch in field.data):
            raise ValidationError(_l("Remove the invisible control characters."))

    return check


def _text(label: Any, max_length: int, *, required: Any = None, multiline: bool = False, **kwargs: Any) -> Field:
    field_class = TextAreaField if multiline else StringField
    return field_class(label, filters=[strip], validators=[
        DataRequired(required) if required else Optional(),
        Length(max=max_length, message=_l("At most %(max)d characters.", max=max_length)),
        _no_control_characters(multiline),
    ], **kwargs)


class NoticeForm(FlaskForm):
    kind = RadioField(
        _l("Kind of notice"), choices=[SelectChoice(kind.value, KIND_LABELS[kind]) for kind in KIND_ORDER],
        validate_choice=False,
        validators=[DataRequired(_l("Choose the kind of notice.")),
                    AnyOf([kind.value for kind in NoticeKind], message=_l("Choose the kind of notice."))],
    )
    title = _text(_l("Title"), TITLE_MAX, required=_l("Enter a title."), render_kw={"autocomplete": "off"})
    body = _text(_l("Text"), BODY_MAX, required=_l("Enter the text of the notice."), multiline=True,
                 render_kw={"rows": 8})
    title_es = _text(_l("Title in Spanish (optional)"), TITLE_MAX, render_kw={"autocomplete": "off", "lang": "es"})
    body_es = _text(_l("Text in Spanish (optional)"), BODY_MAX, multiline=True, render_kw={"rows": 8, "lang": "es"})
    starts_on = IsoDateField(_l("First day shown"), required=_l("Enter the first day the notice shows."))
    ends_on = IsoDateField(_l("Last day shown (optional)"))
    preview = SubmitField(_l("Preview"))
    save = SubmitField(_l("Save"))
