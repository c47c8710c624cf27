"""The list pages' per-row helpers (intake/listing.py): a link built once and completed per row
is the link url_for builds; a list of codes is written as its labels."""

from __future__ import annotations

import re

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


def test_a_kept_fragment_is_drawn_once_per_state(app):
    from intake import listing

    drawn = []

    def body():
        drawn.append(1)
        return "<b>filters</b>"

    listing._fragments.clear()
    assert listing.kept_fragment("t", ("en", 1), caller=body) == "<b>filters</b>"
    assert listing.kept_fragment("t", ("en", 1), caller=body) == "<b>filters</b>"
    assert len(drawn) == 1
    listing.kept_fragment("t", ("en", 2), caller=body)
    listing.kept_fragment("t", None, caller=body)
    listing.kept_fragment("t", None, caller=body)
    assert len(drawn) == 4  # a new state, and no state at all: drawn each time


def test_the_kept_filters_are_the_filters_drawn_each_time(app, client, login_as, monkeypatch):
    """The call list's filters served from the kept markup are byte for byte those drawn afresh, for
    any values; a value in error is drawn each time (its summary carries the page's nonce)."""
    from intake import listing

    login_as("operator")
    queries = ["", "?risk=high", "?risk=high&substance=alcohol&date_from=2026-01-02", "?has_followup=yes",
               "?date_from=2026-02-31", "?risk=%3Cscript%3E"]
    kept = {q: client.get("/calls/" + q).get_data(as_text=True) for q in queries}
    again = {q: client.get("/calls/" + q).get_data(as_text=True) for q in queries}
    monkeypatch.setattr(listing, "kept_fragment", lambda name, state, caller: caller())
    app.jinja_env.globals["kept_fragment"] = listing.kept_fragment
    try:
        fresh = {q: client.get("/calls/" + q).get_data(as_text=True) for q in queries}
    finally:
        listing.init_app(app)

    def form_of(html: str) -> str:
        start = html.index('<form method="get"')
        return re.sub(r'nonce="[^"]+"', 'nonce=""', html[start:html.index("</form>", start)])

    for q in queries:
        assert form_of(kept[q]) == form_of(again[q]) == form_of(fresh[q]), q
    bad = "?date_from=2026-02-31"
    assert re.findall(r'nonce="([^"]+)"', kept[bad]) != re.findall(r'nonce="([^"]+)"', again[bad])
    assert "selected value=\"high\"" in form_of(kept["?risk=high"])
    assert "2026-01-02" in form_of(kept["?risk=high&substance=alcohol&date_from=2026-01-02"])


def test_filter_state_refuses_forms_with_a_token_or_errors(app):
    from werkzeug.datastructures import MultiDict

    from intake.calls.list_forms import CallFilterForm, RevealForm
    from intake.forms import filter_state

    with app.test_request_context("/"):
        assert filter_state(RevealForm(formdata=None)) is None  # has a CSRF token
        form = CallFilterForm(MultiDict({"date_from": "2026-02-31"}))
        form.validate()
        assert filter_state(form) is None
        one, other = CallFilterForm(MultiDict({"risk": "high"})), CallFilterForm(MultiDict({"risk": "low"}))
        assert filter_state(one) != filter_state(other)
        assert filter_state(one) == filter_state(CallFilterForm(MultiDict({"risk": "high"})))


def test_a_reference_between_the_halves_is_url_fors(app):
    """The records queue's rows put the request's reference (URL-safe by construction) between the halves."""
    from intake.records.models import new_reference

    with app.test_request_context("/queue/requests/"):
        before, after = link_pattern("request_queue.detail", "reference")
        for reference in [new_reference() for _ in range(50)] + ["-_-", "AZaz09"]:
            html = render_template_string("{{ b }}{{ r|urlencode }}{{ a }}", b=before, r=reference, a=after)
            assert html == url_for("request_queue.detail", reference=reference)


# The call table's rows as calls/_table.html drew them in a Jinja loop before ``call_rows``: the
# reference the one-call rows must match (whitespace aside).
_ROWS_IN_JINJA = """
{%- set detail_before, detail_after = link_pattern('calls.detail', 'call_id') -%}
{%- set risk_classes = {'none': 'text-bg-secondary', 'low': 'text-bg-info', 'moderate': 'text-bg-warning',
    'high': 'text-bg-danger', 'imminent': 'text-bg-danger'} -%}
{%- for row in rows -%}
<tr><td><a href="{{ detail_before }}{{ row.id }}{{ detail_after }}">{{ row.started_at|local_time }}</a>
{% if row.is_draft %} <span class="badge text-bg-light border">{{ _('my draft') }}</span>{% endif %}</td>
<td>{{ row.operator_name or _('Account #%(id)d', id=row.operator_id) }}</td>
<td>{{ labels.call_type[row.call_type] }}</td>
{%- set risk_class = risk_classes[row.risk_level] or 'text-bg-secondary' -%}
<td><span class="badge {{ risk_class }}">{{ labels.risk[row.risk_level] }}</span></td>
<td>{{ row.substances|labelled(labels.substance) }}</td>
<td>{{ labels.disposition[row.disposition] if row.disposition else '—' }}</td>
<td>{{ _('yes') if row.has_followup else _('no') }}</td></tr>
{%- endfor -%}
"""


def _call_rows_sample():
    from datetime import UTC, datetime

    from intake.calls.queries import CallRow

    at = datetime(2026, 7, 4, 18, 5, tzinfo=UTC)
    return [
        CallRow(id=7, started_at=at, operator_id=3, call_type="crisis", risk_level="high", disposition=None,
                is_draft=True, has_followup=True, operator_name='<script>alert("x")</script> & Co',
                substances=["alcohol", "opioids"]),
        CallRow(id=2147483647, started_at=at, operator_id=41, call_type="<b>odd</b>", risk_level="<i>",
                disposition="<u>gone</u>", is_draft=False, has_followup=False, operator_name=None,
                substances=["<img src=x onerror=alert(1)>"]),
    ]


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_rows_drawn_in_one_call_are_the_rows_jinja_drew(app, language):
    """``call_rows`` writes the markup the template's loop wrote, in either language, every value
    escaped: a name with markup, codes the tables do not know, a row without a name."""
    from flask_babel import force_locale

    from intake.calls.views_list import LABELS
    from intake.labels import in_locale
    from intake.listing import call_rows

    rows = _call_rows_sample()
    with app.test_request_context("/calls/"), force_locale(language):
        labels = in_locale(LABELS)
        reference = render_template_string(_ROWS_IN_JINJA, rows=rows, labels=labels)
        drawn = str(call_rows(rows, labels, render_template_string("{{ _('my draft') }}")))

    def squeezed(html: str) -> str:  # the markup without the whitespace between tags
        return re.sub(r">\s+<", "><", html).replace("\n", "")

    assert squeezed(reference) == squeezed(drawn)
    assert "<script>" not in drawn and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in drawn
    assert "<b>" not in drawn and "<i>" not in drawn and "<u>" not in drawn and "<img" not in drawn
    assert 'href="/calls/2147483647"' in drawn


# The records queue's rows as records/queue/index.html drew them in a Jinja loop before ``request_rows``.
_REQUEST_ROWS_IN_JINJA = """
{%- from "records/queue/_badges.html" import urgency_badge -%}
{%- set detail_before, detail_after = link_pattern('request_queue.detail', 'reference') -%}
{%- set badges = {'overdue': urgency_badge('overdue'), 'due_soon': urgency_badge('due_soon')} -%}
{%- for row in rows -%}
<tr class="request-row"><td><a href="{{ detail_before }}{{ row.reference|urlencode }}{{ detail_after }}">
{{- row.human_ref }}</a></td>
<td>{{ labels.type[row.request_type] }}</td><td>{{ labels.status[row.status] }}</td>
<td>{{ row.received_on|dateformat }}</td>
<td>{{ row.due_on|dateformat }} {{ badges[row.urgency]|trim if row.urgency in badges else '' }}</td>
<td>{% if row.assignee_id is none %}{{ _('nobody') }}{% elif row.assignee_id == me %}{{ _('me') }}
{%- else %}{{ row.assignee_name or _('Account #%(id)d', id=row.assignee_id) }}{% endif %}</td></tr>
{%- endfor -%}
"""


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_queue_rows_drawn_in_one_call_are_the_rows_jinja_drew(app, language):
    """``request_rows`` writes the markup the queue's loop wrote, in either language, every value
    escaped: an assignee whose name holds markup, the viewer's own rows, nobody's, a nameless account."""
    from datetime import date

    from flask_babel import force_locale

    from intake.labels import in_locale
    from intake.listing import request_rows
    from intake.records import clocks
    from intake.records.models import RequestStatus, RequestType
    from intake.records.page.staff import LABELS
    from intake.records.queue import QueueRow

    def row(n: int, assignee: int | None, name: str | None, urgency) -> QueueRow:
        return QueueRow(id=n, human_ref=f"RR-2026-AB{n:02d}", reference=f"ref_{n:02d}-abcdefghijklmn",
                        request_type=RequestType.COPY, status=RequestStatus.VERIFYING,
                        received_on=date(2026, 3, n), due_on=date(2026, 4, n), assignee_id=assignee,
                        urgency=urgency, assignee_name=name)

    rows = [row(1, None, None, clocks.Urgency.OVERDUE), row(2, 5, None, clocks.Urgency.DUE_SOON),
            row(3, 9, '<script>alert("x")</script>', None), row(4, 11, None, None), row(5, None, None, None),
            row(1, None, None, None)]
    rows[4].reference = 'odd ref/<5>&"é'  # none the app makes: quoted and escaped as Jinja did
    rows[4].due_on = rows[0].due_on  # a day written twice
    with app.test_request_context("/queue/requests/"), force_locale(language):
        labels = in_locale(LABELS)
        reference = render_template_string(_REQUEST_ROWS_IN_JINJA, rows=rows, labels=labels, me=5)
        badges = render_template_string(
            "{% from 'records/queue/_badges.html' import urgency_badge %}{{ urgency_badge('overdue') }}|"
            "{{ urgency_badge('due_soon') }}").split("|")
        drawn = str(request_rows(rows, labels, 5, {"overdue": badges[0], "due_soon": badges[1]}))

    def squeezed(html: str) -> str:
        return re.sub(r">\s+<", "><", html).replace("\n", "")

    assert squeezed(reference) == squeezed(drawn)
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn
    assert 'href="/queue/requests/ref_01-abcdefghijklmn"' in drawn
    assert 'href="/queue/requests/odd%20ref/%3C5%3E%26%22%C3%A9"' in drawn
