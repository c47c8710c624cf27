"""Resource directory forms: shape only (required, lengths, formats). The service decides meaning."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from intake.forms import strip
from intake.resources.geo import known_zip
from intake.resources.labels import KIND_LABELS, PAYER_FILTER_LABELS, PAYER_LABELS
from intake.resources.models import PAYERS, ResourceKind

QUERY_MAX = 100
WITHIN_MILES = (10, 25, 50, 100)
DESCRIPTION_MAX = 2000
_CONTROL = {chr(c) for c in range(32)} | {chr(c) for c in range(127, 160)}
_MULTILINE_OK = {"\n", "\r", "\t"}


def _no_control_characters(multiline: bool = False):
    """Refuse NUL and other invisible characters (PostgreSQL cannot even store NUL in text)."""
    forbidden = _CONTROL - _MULTILINE_OK if multiline else _CONTROL

    def check(form: FlaskForm, field: Field) -> None:
        if isinstance(field.data, str) and any(ch in forbidden for ch in field.data):
            raise ValidationError(_l("Remove the invisible control characters."))

    return check


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _text(label: Any, max_length: int, *validators: Any, required: bool = False, **kwargs: Any) -> StringField:
    first = DataRequired(_l("Enter the name.")) if required else Optional()
    return StringField(label, filters=[strip], validators=[
        first,
        Length(max=max_length, message=_l("At most %(max)d characters.", max=max_length)),
        _no_control_characters(),
        *validators,
    ], **kwargs)


def _known_zip(form: FlaskForm, field: Field) -> None:
    if field.data and not field.errors and not known_zip(field.data):
        raise ValidationError(_l("That ZIP code is not known."))


def _kind_choices() -> list[SelectChoice]:
    return [SelectChoice(kind.value, KIND_LABELS[kind]) for kind in ResourceKind]


class ResourceForm(FlaskForm):
    name = _text(_l("Name"), 200, required=True, render_kw={"autocomplete": "off"})
    kind = SelectField(_l("Kind of service"), choices=_kind_choices(), validate_choice=False, validators=[
        DataRequired(_l("Choose the kind of service.")),
        AnyOf([k.value for k in ResourceKind], message=_l("Choose the kind of service.")),
    ])
    phone = _text(_l("Phone (optional)"), 40, Regexp(r"^[0-9+() .\-]*[0-9][0-9+() .\-]*$",
                                          message=_l("Use digits, spaces and + ( ) - . only.")),
                  render_kw={"autocomplete": "off", "inputmode": "tel"})
    website = _text(_l("Website (optional)"), 300, Regexp(r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?([/?#][^\s<>\"]*)?$",
                                               flags=re.IGNORECASE,
                                               message=_l("Enter a web address starting with https:// or http://.")),
                    render_kw={"autocomplete": "off", "inputmode": "url", "spellcheck": "false"})
    address = _text(_l("Street address (optional)"), 300, render_kw={"autocomplete": "off"})
    city = _text(_l("City (optional)"), 100, render_kw={"autocomplete": "off"})
    state = StringField(_l("State (optional)"), filters=[_upper], validators=[
        Optional(), Regexp(r"^[A-Z]{2}$", message=_l("Two letters, like CA."))],
        render_kw={"autocomplete": "off", "maxlength": 2})
    zip = StringField(_l("ZIP code (optional)"), filters=[strip], validators=[
        Optional(), Regexp(r"^[0-9]{5}$", message=_l("Five digits, like 90265."))],
        render_kw={"autocomplete": "off", "inputmode": "numeric", "maxlength": 5})
    hours = _text(_l("Hours (optional)"), 200, render_kw={"autocomplete": "off"})
    payers = SelectMultipleField(
        _l("Payers accepted (optional)"), choices=[SelectChoice(p, PAYER_LABELS[p]) for p in PAYERS],
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())
    description = TextAreaField(_l("Description (optional)"), filters=[strip], validators=[
        Optional(),
        Length(max=DESCRIPTION_MAX, message=_l("At most %(max)d characters.", max=DESCRIPTION_MAX)),
        _no_control_characters(multiline=True),
    ], render_kw={"rows": 5})
    verified = BooleanField(_l("I checked these details today (marks the entry verified)"))


class SearchForm(FlaskForm):
    """The directory search (GET, no CSRF token: it changes nothing)."""

    class Meta:
        csrf = False

    q = StringField(_l("Name, city or ZIP code"), filters=[strip], validators=[
        Optional(), Length(max=QUERY_MAX, message=_l("At most %(max)d characters.", max=QUERY_MAX)),
        _no_control_characters(),
    ], render_kw={"autocomplete": "off", "type": "search"})
    kind = SelectField(_l("Kind of service"), choices=[SelectChoice("", _l("Any kind")), *_kind_choices()],
                       validate_choice=False, validators=[
                           Optional(), AnyOf([k.value for k in ResourceKind],
                                             message=_l("Choose a kind from the list."))])
    payer = SelectField(_l("Accepts"), choices=[SelectChoice("", _l("Any payer")),
                                                *(SelectChoice(c, label) for c, label in PAYER_FILTER_LABELS.items())],
                        validate_choice=False, validators=[
                            Optional(), AnyOf(list(PAYER_FILTER_LABELS), message=_l("Choose a payer from the list."))])
    near = StringField(_l("Near ZIP code"), filters=[strip], validators=[
        Optional(), Regexp(r"^[0-9]{5}$", message=_l("Five digits, like 90265.")), _known_zip],
        render_kw={"autocomplete": "off", "inputmode": "numeric", "maxlength": 5})
    within = SelectField(_l("Within"), choices=[SelectChoice("", _l("Any distance")),
                                                *(SelectChoice(str(m), _l("%(n)d miles", n=m)) for m in WITHIN_MILES)],
                         validate_choice=False, validators=[
                             Optional(), AnyOf([str(m) for m in WITHIN_MILES], message=_l("Choose a distance."))])
