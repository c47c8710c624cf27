"""Repeated markup of the staff request page, written in Python once per page (``make profile
PAGE=staff_request``): the "who viewed this" panel draws fifty rows for an auditor, and Jinja's
per-row filter call and attribute lookups were about a sixteenth of the page's CPU time.

``viewer_rows(events)`` writes the rows of ``_macros/audit.html``'s ``viewers_panel`` exactly as
its loop does (the page's panel, ``records/queue/_viewers.html``, is that macro with these rows);
``tests/test_request_page_rows.py`` compares the two texts in English and Spanish, with markup in
the values. Every value is escaped as Jinja would; nothing is marked safe that a person typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import get_locale
from markupsafe import Markup, escape
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import HiddenInput

from intake.audit.services import ObjectEvent
from intake.clock import MEDIUM, local_time, zone

_ROW = ('            <tr><td>%s</td><td class="text-break">%s</td><td>%s</td></tr>\n')


def viewer_rows(events: Iterable[ObjectEvent]) -> Markup:
    """The panel's table rows: when (the facility's time, ``medium``, in the reader's language),
    who (the e-mail address, or a dash) and the action, one ``<tr>`` a line."""
    tz = zone()
    return Markup("".join([  # nosec B704: every value below is escaped
        _ROW % (escape(local_time(e.occurred_at, MEDIUM, tz=tz)), escape(e.actor_email or "—"), escape(e.action))
        for e in events]))


# --- The visible part of a form, drawn once per state -------------------------------------------

def fields_state(form: Any, *extra: Any) -> tuple[Any, ...] | None:
    """The state the visible part of one of the page's forms draws from, for ``kept_fragment``
    (``intake.listing``): the language, the form's class and prefix, and for each field that is not
    hidden its class, id, name, label, description, attributes, flags, values (as typed and as read)
    and choices; ``extra``: whatever else the fragment draws (a hint's text, a switch).

    The token and the version are drawn outside the fragment (``hidden_fields``), so the fragment
    holds no per-session secret. None (drawn every time) for a form with errors (their summary
    carries the page's script nonce), for values that cannot be kept as a key, and for a move form
    that offers archive records (a patient's candidates are never kept in the process)."""
    if form is None or getattr(form, "form_errors", None) or getattr(form, "archived_patient_id", None) is not None:
        return None
    parts: list[Any] = [type(form), form._prefix, str(get_locale() or ""), extra]
    for field in form:
        if field.errors:
            return None
        if isinstance(field.widget, HiddenInput):  # drawn by hidden_fields, outside the fragment
            continue
        choices = getattr(field, "choices", None)
        parts.append((
            type(field), field.id, field.name, str(field.label.text), str(field.description or ""),
            tuple(sorted((field.render_kw or {}).items())), tuple(sorted(vars(field.flags).items())),
            tuple(field.raw_data or ()), field.data,
            None if choices is None else tuple(_choice_key(choice) for choice in choices)))
    state = tuple(parts)
    try:
        hash(state)
    except TypeError:
        return None
    return state


def _text(value: Any) -> Any:
    return value if isinstance(value, int | float | bool | type(None)) else str(value)


def _choice_key(choice: Any) -> Any:
    if isinstance(choice, SelectChoice):
        return (_text(choice.value), str(choice.label), choice.optgroup,
                tuple(sorted((choice.render_kw or {}).items())))
    if isinstance(choice, tuple | list):
        return tuple(_text(part) for part in choice)
    return _text(choice)


def drawn_each_time(form: Any, *extra: Any) -> None:
    """``fields_state`` for a page that answers a post: no state, so every form is drawn afresh."""
    return None
