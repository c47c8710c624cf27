"""What a list page does for each of its rows, done once per page instead (``make profile``).

A list page draws fifty rows, and every function a template calls for a row costs a Jinja context
call on top of its own work: a link built by ``url_for`` per row and a label looked up by a method
call per cell were most of the call table's time. So:

- ``link_pattern(endpoint, key)`` builds the link once, around a marker number, and the row puts
  its id between the two halves: the same text ``url_for`` writes for a whole-number id;
- ``|labelled(table)`` writes a row's list of codes as their labels, joined, in one filter call;
- the label tables (``intake.labels.in_locale``) answer a code they do not know with the code
  itself, so a template reads ``labels.risk[code]`` (a subscript, no call) as it read
  ``labels.risk.get(code, code)``;
- ``{% call kept_fragment(name, state) %}…{% endcall %}`` draws its body once per ``state`` (a
  filter form's, ``intake.forms.filter_state``: the language, the values, the choices) and serves
  that markup while the state is the same: the filters were most of a list page's time after its
  rows. The body must draw from nothing but the state (no token, no nonce, no user); a state of
  None draws it every time;
- ``call_rows(rows, labels, my_draft)`` writes the call table's rows (the list and the lookup: no
  form per row) in one call: Jinja's escaping of ~550 values and its attribute lookups were most of
  what remained of the call list's drawing. Every value is escaped here as Jinja would (the labels
  once per table), the ids written as whole numbers; nothing a person typed is marked safe;
- ``request_rows(rows, labels, viewer_id, badges)`` does the same for the records queue's rows (a
  quarter of the queue's time was its row loop in the template; make profile).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, url_for
from flask_babel import gettext
from jinja2.utils import url_quote
from markupsafe import Markup, escape

from intake.clock import local_time, zone
from intake.forms import filter_state
from intake.translating import date_format

_MARK = 918273645  # a whole number standing for the row's id while the link is built


def link_pattern(endpoint: str, key: str, **values: Any) -> tuple[str, str]:
    """``url_for(endpoint, **{key: id}, **values)`` as the text before and after ``id``, for an
    endpoint whose ``key`` is a whole number (``int`` converter: the id is written as ``str(id)``)."""
    arguments: dict[str, Any] = {key: _MARK, **values}
    url = url_for(endpoint, **arguments)
    before, found, after = url.partition(str(_MARK))
    if not found or str(_MARK) in after:
        raise ValueError(f"{endpoint}'s link does not hold {key} once")
    return before, after


def labelled(codes: Iterable[Any], table: Mapping[Any, Any], separator: str = ", ") -> str:
    """``codes`` as their labels (a code without one as itself), joined by ``separator``."""
    return separator.join(str(table.get(code, code)) for code in codes)


FRAGMENTS_MAX = 2048  # a few kilobytes each; values typed in a query string make new states
_fragments: dict[tuple[str, Any], Markup] = {}


def kept_fragment(name: str, state: Any, caller: Any) -> Markup:
    """The body of a ``{% call %}`` block, drawn once per ``(name, state)`` (see the docstring). The
    body is Jinja's own output (markup, every value escaped), kept as it is."""
    if state is None:
        return caller()
    key = (name, state)
    html = _fragments.get(key)
    if html is None:
        if len(_fragments) >= FRAGMENTS_MAX:
            _fragments.clear()
        html = _fragments[key] = caller()
    return html


# What URL quoting and HTML escaping leave as it is (``request_rows``' references).
_PLAIN = re.compile(r"[A-Za-z0-9_-]+")

# The risk levels' badge colours (as calls/_table.html's risk_badge); an unknown level is grey.
RISK_CLASSES = {"none": "text-bg-secondary", "low": "text-bg-info", "moderate": "text-bg-warning",
                "high": "text-bg-danger", "imminent": "text-bg-danger"}


class _Escaped(dict[Any, str]):
    """A label table's labels escaped once; a code it does not know is written as itself, escaped."""

    def __missing__(self, code: Any) -> str:
        return str(escape(code))


def _escaped(table: Mapping[Any, Any]) -> _Escaped:
    return _Escaped({code: str(escape(label)) for code, label in table.items()})


def call_rows(rows: Iterable[Any], labels: Mapping[str, Mapping[Any, Any]], my_draft: str) -> Markup:
    """The ``<tr>`` of each call row (``intake.calls.queries.CallRow``) of the call table without its
    review column: the markup ``calls/_table.html`` drew per row, with every value escaped."""
    before, after = (str(escape(part)) for part in link_pattern("calls.detail", "call_id"))
    types, risks = _escaped(labels["call_type"]), _escaped(labels["risk"])
    substances, dispositions = labels["substance"], _escaped(labels["disposition"])
    badges = {code: f'<span class="badge {cls}">' for code, cls in RISK_CLASSES.items()}
    draft = f' <span class="badge text-bg-light border">{escape(my_draft)}</span>'
    yes, no = str(escape(gettext("yes"))), str(escape(gettext("no")))
    tz = zone()
    out = []
    for row in rows:
        name = row.operator_name or gettext("Account #%(id)d", id=row.operator_id)
        risk = row.risk_level
        out.append(
            f'<tr><td><a href="{before}{int(row.id):d}{after}">{escape(local_time(row.started_at, tz=tz))}</a>'
            f'{draft if row.is_draft else ""}</td><td>{escape(name)}</td><td>{types[row.call_type]}</td>'
            f'<td>{badges.get(risk, badges["none"])}{risks[risk]}</span></td>'
            f'<td>{escape(labelled(row.substances, substances))}</td>'
            f'<td>{dispositions[row.disposition] if row.disposition else "—"}</td>'
            f'<td>{yes if row.has_followup else no}</td></tr>')
    # Every value above went through escape(); the rest is this function's own literal markup.
    return Markup("".join(out))  # nosec B704: every value escaped above; the rest is literal markup


def request_rows(rows: Iterable[Any], labels: Mapping[str, Mapping[Any, Any]], viewer_id: int,
                 badges: Mapping[str, Any]) -> Markup:
    """The ``<tr>`` of each row of the records queue (``intake.records.queue.QueueRow``): the markup
    ``records/queue/index.html`` drew per row, with every value escaped. ``badges``: the urgency
    badges' markup by urgency (drawn once by the template's macro)."""
    before, after = (str(escape(part)) for part in link_pattern("request_queue.detail", "reference"))
    types, statuses = _escaped(labels["type"]), _escaped(labels["status"])
    nobody, mine = str(escape(gettext("nobody"))), str(escape(gettext("me")))
    shown = {urgency: str(badge).strip() for urgency, badge in badges.items()}
    dates: dict[Any, str] = {}  # each day written once a page (rows due the same day are many at 1M calls)
    out = []
    for row in rows:
        if row.assignee_id is None:
            assignee = nobody
        elif row.assignee_id == viewer_id:
            assignee = mine
        else:
            assignee = str(escape(row.assignee_name or gettext("Account #%(id)d", id=row.assignee_id)))
        reference = row.reference
        # A reference as the app makes them (letters, digits, - and _) is its own quoted and escaped text.
        link = reference if _PLAIN.fullmatch(reference) else escape(url_quote(reference))
        received = dates.get(row.received_on)
        if received is None:
            received = dates[row.received_on] = str(escape(date_format(row.received_on)))
        due = dates.get(row.due_on)
        if due is None:
            due = dates[row.due_on] = str(escape(date_format(row.due_on)))
        out.append(
            f'<tr class="request-row"><td><a href="{before}{link}{after}">'
            f'{escape(row.human_ref)}</a></td><td>{types[row.request_type]}</td><td>{statuses[row.status]}</td>'
            f'<td>{received}</td><td>{due} {shown.get(row.urgency, "")}</td><td>{assignee}</td></tr>')
    # Every value above went through escape(); the badges are the template's own markup.
    return Markup("".join(out))  # nosec B704: every value escaped above; the rest is literal markup


def init_app(app: Flask) -> None:
    app.jinja_env.globals["kept_fragment"] = kept_fragment
    app.jinja_env.globals["filter_state"] = filter_state
    app.jinja_env.globals["link_pattern"] = link_pattern
    app.jinja_env.globals["call_rows"] = call_rows
    app.jinja_env.globals["request_rows"] = request_rows
    app.jinja_env.filters["labelled"] = labelled
