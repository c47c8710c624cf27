"""The select fields' kept markup (intake/forms.py, ``PreparedSelect``): always exactly what
WTForms draws for the same field, selection, attributes, flags and language; hostile values in
the query string never select an option nor grow the table past its bound."""

from __future__ import annotations

import pytest
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import SelectField as WTFormsSelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from intake.calls.list_forms import CallFilterForm
from intake.forms import PreparedSelect, SelectField

# "Medical records" has its Spanish (the staff's labels are English only).
CHOICES = [SelectChoice("", _l("Any")), SelectChoice("high", _l("Medical records")),
           SelectChoice("<b>", "Plain <b> & text"), SelectChoice("m", Markup("<em>marked</em>"))]


class Kept(FlaskForm):
    class Meta:
        csrf = False

    level = SelectField(_l("Risk level"), choices=CHOICES, default="")
    needed = SelectField("Needed", choices=CHOICES, validators=[DataRequired()])


class Plain(FlaskForm):
    class Meta:
        csrf = False

    level = WTFormsSelectField(_l("Risk level"), choices=CHOICES, default="")
    needed = WTFormsSelectField("Needed", choices=CHOICES, validators=[DataRequired()])


@pytest.mark.parametrize("query", [{}, {"level": "high"}, {"level": "<b>"}, {"level": "m"}, {"level": "nonsense"},
                                   {"needed": "high", "level": ""}])
@pytest.mark.parametrize("language", ["en", "es"])
def test_the_kept_markup_is_what_wtforms_draws(app, query, language):
    with app.test_request_context("/"), force_locale(language):
        for _ in range(2):  # drawn, then served from the table
            kept, plain = Kept(MultiDict(query)), Plain(MultiDict(query))
            for name in ("level", "needed"):
                assert kept[name]() == plain[name]()
                attrs = {"class": "form-select is-invalid", "aria-describedby": f"{name}-error"}
                assert kept[name](**attrs) == plain[name](**attrs)
                assert isinstance(kept[name](), Markup)


def test_the_selection_and_the_language_change_the_markup(app):
    with app.test_request_context("/"):
        with force_locale("en"):
            first = Kept(MultiDict({"level": "high"})).level()
            other = Kept(MultiDict({"level": ""})).level()
            assert 'selected value="high"' in first and 'selected value="high"' not in other
        with force_locale("es"):
            spanish = Kept(MultiDict({"level": "high"})).level()
        assert spanish != first and "Medical records" in first and "Medical records" not in spanish


def test_choices_set_by_the_view_are_keyed_by_their_text(app):
    """The operator filter's choices are built per request from the staff list: a renamed person is
    drawn with the new name at once."""
    with app.test_request_context("/"):
        form = CallFilterForm(MultiDict({"operator": "7"}))
        form.operator.choices = [SelectChoice("", "Any"), SelectChoice("7", "Test Operator")]
        assert "Test Operator" in form.operator()
        form = CallFilterForm(MultiDict({"operator": "7"}))
        form.operator.choices = [SelectChoice("", "Any"), SelectChoice("7", "Test Operator Renamed")]
        html = form.operator()
        assert "Test Operator Renamed" in html and 'selected value="7"' in html


def test_hostile_values_select_nothing_and_the_table_stays_bounded(app, monkeypatch):
    monkeypatch.setattr(PreparedSelect, "_kept", {})
    monkeypatch.setattr(PreparedSelect, "MAX_KEPT", 8)
    with app.test_request_context("/"):
        for n in range(50):
            html = Kept(MultiDict({"level": f"<script>{n}</script>"})).level()
            assert "selected" not in html and "<script>" not in html
            assert len(PreparedSelect._kept) <= 8
        # Unhashable attributes are drawn each time, not kept.
        before = dict(PreparedSelect._kept)
        assert Kept().level(data_list=["a"]) == Plain().level(data_list=["a"])
        assert PreparedSelect._kept.keys() == before.keys()
