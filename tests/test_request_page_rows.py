"""The staff request page's rows written in Python (intake/records/page/rows.py) are the markup the
shared templates' loops wrote: byte for byte, in English and Spanish, every value escaped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import render_template_string

from intake.audit.services import ObjectEvent


def _events() -> list[ObjectEvent]:
    at = datetime(2026, 7, 4, 18, 5, 41, tzinfo=UTC)
    return [
        ObjectEvent(at, "records_request.viewed", 3, "admin", "admin@example.org"),
        ObjectEvent(datetime(2026, 1, 2, 8, 0, tzinfo=UTC), '<script>alert("x")</script>', 4, "records",
                    '<b>mallory</b>&"\'@example.org'),
        ObjectEvent(at, "records_request.moved", None, None, None),  # the system: a dash
        ObjectEvent(datetime(2026, 11, 1, 9, 30, tzinfo=UTC), "records_request.viewed", 5, "records", ""),
    ]


_SHARED = ("{% from '_macros/audit.html' import viewers_panel %}"
           "<div>{{ viewers_panel(events, _('Who viewed this')) }}</div>")
_PAGE = ("{% from 'records/queue/_viewers.html' import viewers_panel %}"
         "<div>{{ viewers_panel(rows, _('Who viewed this')) }}</div>")


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("count", [0, 1, 4, 50])
def test_the_viewers_panel_is_the_shared_macros_panel(app, language, count):
    """The page's panel with its rows from ``viewer_rows`` is the text ``_macros/audit.html`` draws
    for the same events, whitespace included, in either language."""
    from flask_babel import force_locale

    from intake.records.page.rows import viewer_rows

    events = (_events() * 13)[:count]
    with app.test_request_context("/queue/requests/x"), force_locale(language):
        shared = render_template_string(_SHARED, events=events)
        page = render_template_string(_PAGE, rows=viewer_rows(events))
    assert page == shared
    assert page.count("<tr>") == count + 1  # the heading's row and one per event


def test_viewer_rows_escape_every_value(app):
    from intake.records.page.rows import viewer_rows

    with app.test_request_context("/queue/requests/x"):
        drawn = str(viewer_rows(_events()))
    assert "<script>" not in drawn and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in drawn
    assert "<b>" not in drawn and "&lt;b&gt;mallory&lt;/b&gt;&amp;&#34;&#39;@example.org" in drawn
    assert drawn.count('<td class="text-break">—</td>') == 2  # no address: a dash, as the macro wrote


# --- The forms' visible parts, drawn once per state ------------------------------------------------

def _forms_part(html: str) -> str:
    """The page without what changes from one view to the next (tokens, nonces, the viewers' rows)."""
    import re

    html = re.sub(r'value="[A-Za-z0-9._-]{40,}"', 'value="TOKEN"', html)
    html = re.sub(r'data-csrf="[^"]+"', "data-csrf", html)
    html = re.sub(r'nonce="[^"]+"', "nonce", html)
    html = re.sub(r'data-session-left="\d+"', "", html)
    return re.sub(r"<tbody>.*?</tbody>", "<tbody/>", html, flags=re.S)


@pytest.fixture()
def staff(make_user):
    from intake.users.models import Role
    from tests.conftest import FULL_ADMIN, LICENCE

    return {"requester": make_user(Role.REQUESTER), "admin": make_user(FULL_ADMIN, licence=LICENCE)}


@pytest.mark.parametrize("kept", ["kept", "drawn"])
def test_the_kept_forms_are_the_forms_drawn_each_time(app, client, staff, make_request, monkeypatch, kept):
    """The staff page served from the kept fragments (a second view, and a second request in another
    state) is the page drawn with every form drawn afresh."""
    from intake import listing
    from intake.records.page import rows
    from tests.conftest import login
    from tests.test_records_queue import move

    first, second = make_request(staff["requester"]), make_request(staff["requester"])
    assert login(client, staff["admin"].email).status_code == 302
    assert move(client, second, "verifying", 1).status_code == 302  # another state: other moves offered
    assert client.get("/queue/requests/").status_code == 200  # its flash message shown
    listing._fragments.clear()
    if kept == "drawn":
        monkeypatch.setattr(rows, "fields_state", rows.drawn_each_time)
    pages = [_forms_part(client.get(f"/queue/requests/{ref}").get_data(as_text=True))
             for ref in (first, second, first, second)]
    assert bool(listing._fragments) == (kept == "kept")
    monkeypatch.setattr(rows, "fields_state", rows.drawn_each_time)
    fresh = [_forms_part(client.get(f"/queue/requests/{ref}").get_data(as_text=True)) for ref in (first, second)]
    assert pages == fresh * 2
    assert 'name="message-body"' in fresh[0] and 'name="assign-assignee"' in fresh[0]


def test_typed_text_is_never_kept(app, client, staff, make_request):
    """A page that answers a post (here a stale note, 409, the text kept on the page) draws its forms
    afresh: what a person typed is never kept in the process."""
    from intake import listing
    from tests.conftest import login
    from tests.test_records_queue import post

    ref = make_request(staff["requester"])
    assert login(client, staff["admin"].email).status_code == 302
    listing._fragments.clear()
    assert client.get(f"/queue/requests/{ref}").status_code == 200
    typed = "Archive box 14, shelf C."
    response = post(client, ref, "note", 99, body=typed)  # a stale version
    assert response.status_code == 409 and f"{typed}</textarea>" in response.get_data(as_text=True)
    assert not any(typed in str(html) for html in listing._fragments.values())


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_forms_state_holds_its_language_values_and_choices(app, language):
    from flask_babel import force_locale
    from wtforms.fields.choices import SelectChoice

    from intake.records.page.rows import fields_state
    from intake.records.queue_forms import AssignForm, MessageForm, move_form
    from intake.records.workflow import Need

    with app.test_request_context("/queue/requests/x"):
        with force_locale(language):
            message = fields_state(MessageForm(prefix="message", formdata=None, version=3))
            assert message == fields_state(MessageForm(prefix="message", formdata=None, version=4))  # version: outside
        with force_locale("es" if language == "en" else "en"):
            assert fields_state(MessageForm(prefix="message", formdata=None, version=3)) != message
        one, two = (AssignForm(prefix="assign", formdata=None, version=1) for _ in range(2))
        for form, data in ((one, "none"), (two, "7")):
            form.assignee.choices = [SelectChoice("none", "Nobody"), SelectChoice("7", "a@example.org")]
            form.assignee.data = data
        assert fields_state(one) != fields_state(two)
        two.assignee.data = "none"
        assert fields_state(one) == fields_state(two)
        two.assignee.choices = [SelectChoice("none", "Nobody"), SelectChoice("8", "b@example.org")]
        assert fields_state(one) != fields_state(two)
        errors = MessageForm(prefix="message", formdata=None, version=3)
        errors.body.errors = ["Write a message."]
        assert fields_state(errors) is None
        archive = move_form("in_review", frozenset({Need.ARCHIVE_MATCH}), archive_choices=[("5", "Doe, Jane")])
        assert fields_state(archive) is None  # a patient's candidates are never kept


# --- The requester's page builds only the forms it draws --------------------------------------------

def test_the_requesters_page_builds_only_the_forms_it_draws(app, client, make_user, make_request, monkeypatch):
    """An open request offers the message and the withdrawal (their forms built and drawn); once
    withdrawn, the page draws neither and builds none of the four forms."""
    from intake.records.models import RequestStatus
    from intake.records.page import portal
    from intake.users.models import Role
    from tests.conftest import FULL_ADMIN, LICENCE, login
    from tests.test_records_requester_page import move

    built: list[str] = []
    for name in ("MessageForm", "WithdrawForm", "ReviewForm", "FeeDecisionForm"):
        original = getattr(portal, name)
        monkeypatch.setattr(portal, name, lambda *a, _o=original, _n=name, **k: built.append(_n) or _o(*a, **k))
    owner, admin = make_user(Role.REQUESTER), make_user(FULL_ADMIN, licence=LICENCE)
    ref = make_request(owner)
    assert login(client, owner.email).status_code == 302
    html = client.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert sorted(built) == ["MessageForm", "WithdrawForm"]
    assert 'name="body"' in html and 'name="confirm"' in html
    move(app, admin, ref, RequestStatus.WITHDRAWN, withdraw_reason="duplicate", withdraw_confirmed=True)
    built.clear()
    html = client.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert built == [] and 'name="body"' not in html and 'name="confirm"' not in html
