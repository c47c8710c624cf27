"""``hidden_fields`` (intake/forms.py) writes plain hidden inputs itself: its text must be exactly what
WTForms draws for ``field(id=False)``, for every hidden field of every form in ``intake``, with values
that need escaping."""

from __future__ import annotations

from flask import Flask
from markupsafe import Markup
from wtforms.widgets import HiddenInput

from intake.forms import hidden_fields

from .test_form_marking import all_forms


def test_hidden_fields_are_drawn_as_wtforms_draws_them(app: Flask) -> None:
    checked = 0
    with app.test_request_context():
        for cls in all_forms():
            for value in (None, 7, 'a"<b>&\'c'):
                form = cls(prefix="p", formdata=None)
                hidden = [field for field in form if isinstance(field.widget, HiddenInput)]
                for field in hidden:
                    if field.type != "CSRFTokenField":
                        field.data = value
                expected = Markup("").join(field(id=False) for field in hidden)
                assert hidden_fields(form) == expected, cls.__qualname__
                checked += len(hidden)
    assert checked > 100  # every form's CSRF token at least, and the version counters
