"""The list pages' per-row helpers (intake/listing.py): a link built once and completed per row
is the link url_for builds; a list of codes is written as its labels."""

from __future__ import annotations

import pytest
from flask import render_template_string, url_for

from intake.listing import labelled, link_pattern


@pytest.mark.parametrize("call_id", [1, 7, 10, 918273645, 2147483647])
def test_the_link_around_an_id_is_url_fors(app, call_id):
    with app.test_request_context("/calls/"):
        for endpoint in ("calls.detail", "calls.urgent_reviewed"):
            before, after = link_pattern(endpoint, "call_id")
            assert f"{before}{call_id}{after}" == url_for(endpoint, call_id=call_id)


def test_the_link_keeps_a_script_root_and_other_values(app):
    with app.test_request_context("/calls/", base_url="http://localhost/intake"):
        before, after = link_pattern("calls.detail", "call_id")
        assert f"{before}5{after}" == url_for("calls.detail", call_id=5)
        assert before.startswith("/intake/")
        before, after = link_pattern("calls.index", "before", risk="high")
        assert f"{before}12{after}" == url_for("calls.index", before=12, risk="high")


def test_codes_are_written_as_their_labels(app):
    assert labelled(["a", "b", "c"], {"a": "Alcohol", "b": "Benzodiazepine"}) == "Alcohol, Benzodiazepine, c"
    assert labelled([], {}) == ""
    with app.test_request_context("/"):
        html = render_template_string("{{ codes|labelled(table) }}", codes=["x"], table={"x": "<b>"})
    assert html == "&lt;b&gt;"
