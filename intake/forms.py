"""Form fields every feature shares: e-mail addresses, new passwords, a bare confirm button.

Forms check shape (required, lengths, format); meaning is decided by the services.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import wtforms
from flask import Flask
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import DateField, EmailField, Field, PasswordField, SelectMultipleField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.utils import unset_value
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget, Select

from intake.security.passwords import MAX_LENGTH
from intake.users.services import EMAIL_MAX_LENGTH

PASSWORD_TOO_LONG = _l("Passwords are at most 128 characters.")


def strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def no_control_characters(form: FlaskForm, field: Field) -> None:
    """Refuse NUL, escape and other invisible control characters in a new password."""
    if field.data and any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in field.data):
        raise ValidationError(_l("Passwords cannot contain invisible control characters."))


def email_field(label: Any, *, required: Any = None, autocomplete: str = "email", autofocus: bool = True) -> EmailField:
    return EmailField(
        label,
        filters=[strip],
        validators=[
            DataRequired(required or _l("Enter your e-mail address.")),
            Length(max=EMAIL_MAX_LENGTH, message=_l("That is too long for an e-mail address.")),
            Email(message=_l("Enter an e-mail address like name@example.org."), check_deliverability=False),
        ],
        render_kw={"autocomplete": autocomplete, "spellcheck": "false", **({"autofocus": True} if autofocus else {})},
    )


def new_password_field(label: Any) -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(_l("Choose a password.")), Length(max=MAX_LENGTH, message=PASSWORD_TOO_LONG),
                    no_control_characters],
        render_kw={"autocomplete": "new-password"},
    )


def confirmation_field(label: Any, of: str = "password") -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(_l("Type the password a second time.")),
                    Length(max=MAX_LENGTH, message=PASSWORD_TOO_LONG),
                    EqualTo(of, message=_l("The two passwords are not the same."))],
        render_kw={"autocomplete": "new-password"},
    )


class CheckboxesField(SelectMultipleField):
    """Several choices as checkboxes (drawn by the ``choice_group`` macro)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _text_key(label: Any) -> Any:
    """What a choice's label is, as a dictionary key: a lazy string by its message (its text depends
    on the language, which the key holds), anything else by its type and value (markup is not text)."""
    if isinstance(label, LazyString):
        return ("lazy", label._func, label._args, tuple(sorted(label._kwargs.items())))
    return (type(label), label)


class PreparedSelect(Select):
    """WTForms' ``<select>``, its markup kept once drawn.

    Drawing a select builds and escapes every option, translating each lazy label, on every view: a
    list page's filters were a fifth of its time (``make profile``). The markup is a function of the
    field's name and id, the attributes it is drawn with, its flags, its choices (value, label,
    selected) and, for lazy labels, the language: all of that is the key, so what is served is what
    WTForms would draw. Only the selected option changes between views of a list, so the table
    holds a few entries per field (bounded all the same). Choices with their own attributes or in
    groups are drawn by WTForms each time."""

    MAX_KEPT = 4096
    _kept: dict[Any, Markup] = {}

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        key = self._key(field, kwargs)
        if key is None:
            return super().__call__(field, **kwargs)  # WTForms' own markup (it escapes every value)
        html = self._kept.get(key)
        if html is None:
            if len(self._kept) >= self.MAX_KEPT:
                self._kept.clear()
            html = self._kept[key] = super().__call__(field, **kwargs)
        return html

    def _key(self, field: Any, kwargs: dict[str, Any]) -> Any:
        if field.has_groups():
            return None
        choices = []
        for choice in field.iter_choices():
            if choice.render_kw:
                return None
            choices.append((type(choice.value), choice.value, _text_key(choice.label), bool(choice.selected)))
        flags = getattr(field, "flags", None)
        flagged = tuple((name, getattr(flags, name)) for name in dir(flags) if name in self.validation_attrs)
        key = (str(get_locale() or ""), type(self), self.multiple, field.name, field.id,
               tuple(sorted(kwargs.items())), flagged, tuple(choices))
        try:
            hash(key)
        except TypeError:  # an attribute value that cannot be a key (a list): drawn each time
            return None
        return key


class SelectField(wtforms.SelectField):
    """WTForms' select field, drawn by ``PreparedSelect`` (the same markup, kept)."""

    widget = PreparedSelect()


def filter_state(form: Any) -> tuple[Any, ...] | None:
    """Everything a list page's filter form (GET, no token) draws from that can change between views:
    the language, each field's values as typed and as read, and its choices (the operator filter's
    come from the staff list). With ``intake.listing.kept_fragment`` the form is drawn once per
    state; what else a field draws from (labels, attributes, flags, widgets) is its class's.

    None, so the form is drawn each time, for a form with a CSRF token (a per-session secret) or
    with errors (their summary carries the page's script nonce)."""
    if getattr(form.meta, "csrf", False):
        return None
    parts: list[Any] = [type(form), str(get_locale() or "")]
    for field in form:
        if field.errors:
            return None
        choices = getattr(field, "choices", None)
        parts.append((field.name, tuple(field.raw_data or ()), field.data,
                      None if choices is None else tuple(_choice_key(c) for c in choices)))
    state = tuple(parts)
    try:
        hash(state)
    except TypeError:
        return None
    return state


def _choice_key(choice: Any) -> Any:
    if isinstance(choice, SelectChoice):
        return (choice.value, _text_key(choice.label), choice.optgroup, tuple(sorted((choice.render_kw or {}).items())))
    if isinstance(choice, tuple | list):
        return tuple(_text_key(part) for part in choice)
    return _text_key(choice)


class PrefixedIdsForm(FlaskForm):
    """A form that shares its page with other forms: every field's id (and so its label's ``for``,
    its hint's and its error's ids and the error summary's links) starts with ``id_prefix``, while
    the names the form posts stay the same. Two forms with an ``outcome`` field on one page are
    then ``#attempt-outcome`` and ``#close-outcome``, and each label names its own form's control
    (WCAG 1.3.1, 4.1.2)."""

    id_prefix = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.id_prefix:
            for field in self:
                field.id = f"{self.id_prefix}-{field.name}"
                field.label.field_id = field.id


def hidden_fields(form: FlaskForm) -> Markup:
    """A form's hidden fields (the CSRF token, version counters) without ids: Flask-WTF's
    ``hidden_tag`` gives each its name as id, so a page with two forms had two ``id="csrf_token"``.
    Nothing labels or looks up a hidden field by id. (The ``hidden_fields(form)`` template global.)"""
    return Markup("").join(_hidden_input(field) for field in form if isinstance(field.widget, HiddenInput))


_HIDDEN_INPUT = Markup('<input name="%s" type="hidden" value="%s">')


def _hidden_input(field: Field) -> Markup:
    """``field(id=False)`` for a plain hidden field, written directly: the same text WTForms draws
    (``name``, ``type``, ``value`` in that order, each value escaped), without its general path
    (keyword merging, ``dir()`` of the flags, ``Markup.format`` per attribute). The twelve hidden
    fields of the staff request page took ~1 ms of CPU that way (make profile PAGE=staff_request).
    Anything else (a subclass of the widget, ``render_kw``, a ``disabled`` flag) is WTForms' to draw;
    tests/test_hidden_fields.py compares the two texts for every form."""
    if type(field.widget) is not HiddenInput or field.render_kw or getattr(field.flags, "disabled", False) \
            or getattr(field, "_datalist", None) is not None:
        return field(id=False)
    return _HIDDEN_INPUT % (field.name, field._value())


def select_may_be_required(field: Field) -> bool:
    """Whether a select may carry HTML's ``required``: only when its first option is an empty
    placeholder ("Choose..."). HTML forbids ``required`` on a select whose first option is a real
    value (the Nu checker's error); such a select always has an answer, so it needs no marking."""
    for choice in field.iter_choices():
        return choice[0] in ("", None)
    return False


def is_select(field: Field) -> bool:
    """Whether the field is drawn as a ``<select>`` (the macros give it Bootstrap's ``form-select``)."""
    return isinstance(field.widget, Select)


def init_app(app: Flask) -> None:
    """The form helpers templates use: ``hidden_fields(form)``, ``is_select(field)``,
    ``select_may_be_required(field)``."""
    app.jinja_env.globals.update(hidden_fields=hidden_fields, is_select=is_select,
                                 select_may_be_required=select_may_be_required)


class ConfirmForm(FlaskForm):
    """A button and its CSRF token: for actions whose only input is the URL."""

    submit = SubmitField(_l("Confirm"))


class IsoDateField(DateField):
    """A date typed as YYYY-MM-DD (what ``<input type="date">`` sends); the one date field of every form.

    Empty is "no date": an error only when ``required`` gives its message. Anything else that is
    not a real date gets ``unreadable`` (a plain sentence with an example), never WTForms' "Not a
    valid date value". ``earliest`` / ``latest`` bound the year, so a typo like 20026 is caught.
    """

    def __init__(self, label: Any = None, validators: Any = None, *, required: Any = None,
                 earliest: date | None = None, latest: date | None = None, unreadable: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(label, validators, format="%Y-%m-%d", **kwargs)
        self.required, self.earliest, self.latest = required, earliest, latest
        self.unreadable = unreadable or _l("Enter the date as YYYY-MM-DD, for example 2026-01-31.")

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or not str(valuelist[0]).strip():
            self.data = None
            return
        raw = str(valuelist[0]).strip()
        try:
            self.data = datetime.strptime(raw, "%Y-%m-%d").date() if len(raw) == 10 else None
        except ValueError:
            self.data = None
        if self.data is None:
            raise ValueError(str(self.unreadable))

    def pre_validate(self, form: Any) -> None:
        if self.data is None:
            if not self.process_errors and self.required:
                raise ValidationError(str(self.required))
            return
        if (self.earliest and self.data < self.earliest) or (self.latest and self.data > self.latest):
            raise ValidationError(_("Enter a date between %(first)d and %(last)d.",
                                    first=(self.earliest or date.min).year, last=(self.latest or date.max).year))



class DatePartsField(Field):
    """A date typed as three numbers in three labelled boxes, day, month and year (GOV.UK's date
    input; the ``date_parts`` macro draws it). For a date people know by heart, a date of birth:
    a browser's own date box shows the order of its locale (mm/dd/yyyy in the United States,
    dd/mm/aaaa in Spanish) whatever the page's hint says, and typing "1980-05-17" into one gave
    0517-12-08. Three boxes read the same everywhere.

    The form posts ``<name>-day``, ``<name>-month``, ``<name>-year``. Every problem says what is
    wrong: which part is missing, which is not a number, a month above 12, a day the month does not
    have, a year that is not four digits; ``earliest`` / ``latest`` bound the date with a message
    naming the years. ``autocomplete`` ("bday") gives each box ``bday-day``, ``bday-month``,
    ``bday-year`` (WCAG 1.3.5).
    """

    PARTS = ("day", "month", "year")

    def __init__(self, label: Any = None, validators: Any = None, *, required: Any = None,
                 earliest: date | None = None, latest: date | None = None, autocomplete: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.required, self.earliest, self.latest, self.autocomplete = required, earliest, latest, autocomplete
        self.raw: dict[str, str] = dict.fromkeys(self.PARTS, "")

    def parts(self) -> list[tuple[str, str, int]]:
        """(part, its label, its width in characters), in the order the boxes are drawn."""
        return [("day", _("Day"), 2), ("month", _("Month"), 2), ("year", _("Year"), 4)]

    def process(self, formdata: Any, data: Any = unset_value, extra_filters: Any = None) -> None:
        self.process_errors = []
        if data is unset_value:
            data = self.default() if callable(self.default) else self.default
        self.object_data = self.data = data if isinstance(data, date) else None
        if isinstance(self.data, date):
            self.raw = {"day": str(self.data.day), "month": str(self.data.month), "year": f"{self.data.year:04d}"}
        if formdata is None:
            return
        posted = {part: formdata.get(f"{self.name}-{part}") for part in self.PARTS}
        if all(value is None for value in posted.values()):
            return  # the form did not carry this field at all (a GET, say): keep the default
        self.raw = {part: str(value or "").strip()[:8] for part, value in posted.items()}
        self.data = None
        try:
            self.data = self._read()
        except ValueError as problem:
            self.process_errors.append(str(problem))

    def _read(self) -> date | None:
        raw = self.raw
        missing = [part for part in self.PARTS if not raw[part]]
        if len(missing) == 3:
            return None
        if missing:
            names = {"day": _("a day"), "month": _("a month"), "year": _("a year")}
            listed = [names[part] for part in missing]
            what = listed[0] if len(listed) == 1 else _("%(first)s and %(second)s", first=listed[0], second=listed[1])
            raise ValueError(_("%(field)s must include %(parts)s.", field=self.label.text, parts=what))
        if not all(raw[part].isascii() and raw[part].isdigit() for part in self.PARTS):
            raise ValueError(_("Type the day, month and year as numbers, for example 17 5 1980."))
        day, month, year = int(raw["day"]), int(raw["month"]), int(raw["year"])
        if len(raw["year"]) != 4 or year < 1:  # "0000" is no year either
            raise ValueError(_("Type the year with four digits, for example 1980."))
        if not 1 <= month <= 12:
            raise ValueError(_("The month must be a number from 1 to 12."))
        try:
            return date(year, month, day)
        except ValueError:
            raise ValueError(_("Check the day: that month has no day %(day)d.", day=day)) from None

    def pre_validate(self, form: Any) -> None:
        if self.data is None:
            if not self.process_errors and self.required:
                raise ValidationError(str(self.required))
            return
        if (self.earliest and self.data < self.earliest) or (self.latest and self.data > self.latest):
            raise ValidationError(_("Enter a date between %(first)d and %(last)d.",
                                    first=(self.earliest or date.min).year, last=(self.latest or date.max).year))

    def _value(self) -> str:
        return self.data.isoformat() if isinstance(self.data, date) else ""
