"""Form fields every feature shares: e-mail addresses, new passwords, a bare confirm button.

Forms check shape (required, lengths, format); meaning is decided by the services.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import wtforms
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import DateField, EmailField, Field, PasswordField, SelectMultipleField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget, Select

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
            return Markup(super().__call__(field, **kwargs))
        html = self._kept.get(key)
        if html is None:
            if len(self._kept) >= self.MAX_KEPT:
                self._kept.clear()
            html = self._kept[key] = Markup(super().__call__(field, **kwargs))
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

