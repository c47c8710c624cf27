"""Label tables resolved once per locale (intake/labels.py)."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from intake.calls.views_list import LABELS
from intake.labels import in_locale

TABLE = {"kind": {"a": _l("Phone"), "b": _l("Chat")}, "plain": {"c": "kept as it is", "d": 3}}


def test_lazy_strings_become_plain_text_of_the_current_locale(app):
    with app.test_request_context("/"):
        resolved = in_locale(TABLE)
        assert resolved == {"kind": {"a": "Phone", "b": "Chat"}, "plain": {"c": "kept as it is", "d": 3}}
        assert all(type(v) is str for v in resolved["kind"].values())
        assert in_locale(TABLE) is resolved  # built once, then reused


def test_each_locale_has_its_own_resolution(app):
    with app.test_request_context("/"):
        english = in_locale(TABLE)
        with force_locale("es"):
            spanish = in_locale(TABLE)
        assert spanish is not english
        assert in_locale(TABLE) is english


def test_the_call_list_labels_hold_no_lazy_string_once_resolved(app):
    with app.test_request_context("/"):
        resolved = in_locale(LABELS)
    leaves = [v for table in resolved.values() for v in table.values()]
    assert leaves and not any(isinstance(v, LazyString) for v in leaves)
    assert resolved["risk"]["high"] == str(LABELS["risk"]["high"])


def test_a_code_without_a_label_is_its_own_label_in_a_resolved_table(app):
    with app.test_request_context("/"):
        resolved = in_locale(TABLE)
    assert resolved["kind"]["zz"] == "zz"
    assert resolved["kind"].get("zz") is None  # .get keeps its meaning
    assert "zz" not in resolved["kind"]  # nothing is added by asking
    try:
        resolved["no such table"]
    except KeyError:
        pass
    else:
        raise AssertionError("a table of tables must not answer an unknown name")
