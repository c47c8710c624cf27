"""The call log's reading pages: list filters and keyset paging, the detail page with masked
contact details and audited views, the reveal, the repeat-caller lookup and the urgent queue."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.calls import views_list
from intake.calls.models import (
    Call,
    CallStatus,
    CallSubstance,
    Disposition,
    FollowUp,
    RiskLevel,
    Substance,
)
from intake.calls.phones import PHONE_INDEX_PURPOSE, display_phone, mask_phone, normalise_phone
from intake.calls.queries import BadCursor, CallFilters, Cursor, list_calls
from intake.extensions import db
from intake.permissions import Permission, require
from intake.security.crypto import keyring
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, csrf_token, login, sql_statements

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DETAIL_LINK = re.compile(r'href="/calls/(\d+)"')
NEXT_LINK = re.compile(r'href="(/calls/\?[^"]*before=[^"]+)"')
PHONE = "(805) 555-0142"
NAME = "Jane Q. Roe"


def make_call(app, operator_id, *, started_at=BASE, status=CallStatus.FINAL, substances=(), followup=False,
              phone=None, **fields) -> int:
    """A call row straight through the ORM; returns its id."""
    with app.app_context():
        call = Call(operator_id=operator_id, status=status, started_at=started_at,
                    finalized_at=started_at + timedelta(minutes=10) if status == CallStatus.FINAL else None,
                    **fields)
        if phone is not None:
            call.caller_phone = phone
            call.caller_phone_index = keyring().blind_index(PHONE_INDEX_PURPOSE, normalise_phone(phone))
        call.substances = [CallSubstance(substance=s) for s in substances]
        db.session.add(call)
        db.session.flush()
        if followup:
            db.session.add(FollowUp(call_id=call.id, due_at=started_at + timedelta(days=1)))
        db.session.commit()
        return call.id


def ids_on(response) -> list[int]:
    """Call ids linked from a page, in page order, without repeats."""
    seen: list[int] = []
    for match in DETAIL_LINK.finditer(response.get_data(as_text=True)):
        if int(match.group(1)) not in seen:
            seen.append(int(match.group(1)))
    return seen


def audit_rows(app, action=None) -> list[AuditEvent]:
    with app.app_context():
        stmt = select(AuditEvent).order_by(AuditEvent.seq)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        rows = db.session.execute(stmt).scalars().all()
        db.session.expunge_all()
        return list(rows)


@pytest.fixture()
def operator(make_user):
    return make_user(Role.OPERATOR)


@pytest.fixture()
def operator_client(app, operator):
    client = app.test_client()
    assert login(client, operator.email).status_code == 302
    return client


@pytest.fixture()
def admin(make_user):
    return make_user(FULL_ADMIN)


@pytest.fixture()
def admin_client(app, admin):
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    return client


# --- the list -------------------------------------------------------------------------------

def test_each_filter_narrows_the_list(app, operator, operator_client, make_user):
    other = make_user(Role.OPERATOR)
    jan = make_call(app, operator.id, started_at=datetime(2026, 1, 10, 9, tzinfo=UTC), risk_level=RiskLevel.LOW,
                    substances=[Substance.CLONAZEPAM], disposition=Disposition.REFERRED, followup=True)
    feb = make_call(app, other.id, started_at=datetime(2026, 2, 15, 23, 59, tzinfo=UTC), risk_level=RiskLevel.HIGH,
                    substances=[Substance.ALCOHOL, Substance.OPIOIDS], disposition=Disposition.WARM_TRANSFER)
    mar = make_call(app, operator.id, started_at=datetime(2026, 3, 1, 0, 0, tzinfo=UTC), risk_level=RiskLevel.LOW,
                    substances=[Substance.ALCOHOL], disposition=Disposition.REFERRED)
    everything = operator_client.get("/calls/")
    assert everything.status_code == 200
    assert ids_on(everything) == [mar, feb, jan]  # newest first

    cases = {
        "date_from=2026-02-01&date_to=2026-02-15": [feb],  # "to" is inclusive of the whole day
        "date_from=2026-02-16": [mar],
        "date_to=2026-01-31": [jan],
        f"operator={other.id}": [feb],
        f"operator={operator.id}": [mar, jan],
        "risk=high": [feb],
        "risk=low": [mar, jan],
        "risk=imminent": [],
        "substance=alcohol": [mar, feb],
        "substance=clonazepam": [jan],
        "disposition=warm_transfer": [feb],
        "has_followup=yes": [jan],
        "has_followup=no": [mar, feb],
        "risk=low&substance=alcohol": [mar],
    }
    for query, expected in cases.items():
        response = operator_client.get(f"/calls/?{query}")
        assert response.status_code == 200, query
        assert ids_on(response) == expected, query


def test_each_row_says_whether_its_call_has_a_follow_up(app, operator):
    """Asked for the page's rows after the page is read (not as a per-row EXISTS in the list query)."""
    with_one = make_call(app, operator.id, started_at=BASE, followup=True)
    without = make_call(app, operator.id, started_at=BASE + timedelta(minutes=1))
    with app.app_context():
        page = list_calls(db.session.get(User, operator.id), CallFilters())
        assert {row.id: row.has_followup for row in page.rows} == {with_one: True, without: False}


def test_list_shows_own_drafts_marked_and_hides_other_drafts(app, operator, operator_client, make_user):
    other = make_user(Role.OPERATOR)
    mine = make_call(app, operator.id, status=CallStatus.DRAFT, started_at=BASE)
    theirs = make_call(app, other.id, status=CallStatus.DRAFT, started_at=BASE + timedelta(minutes=1))
    final = make_call(app, other.id, started_at=BASE - timedelta(minutes=1))
    response = operator_client.get("/calls/")
    assert ids_on(response) == [mine, final]
    assert "my draft" in response.get_data(as_text=True)
    assert operator_client.get(f"/calls/{theirs}").status_code == 404


def test_list_never_shows_names_or_numbers(app, operator, operator_client):
    make_call(app, operator.id, phone=PHONE, caller_name=NAME, notes="private note text")
    html = operator_client.get("/calls/").get_data(as_text=True)
    assert NAME not in html
    assert "0142" not in html
    assert "private note text" not in html
    assert operator.display_name in html and operator.email not in html  # the operator, by name (issue 19)


def test_keyset_paging_returns_every_row_exactly_once(app, operator, operator_client):
    with app.app_context():
        # Three calls share each start time, so the id must break ties for the cursor to work.
        db.session.add_all([
            Call(operator_id=operator.id, status=CallStatus.FINAL, started_at=BASE - timedelta(minutes=i // 3))
            for i in range(120)
        ])
        db.session.commit()
        expected = [row.id for row in db.session.execute(
            select(Call.id).order_by(Call.started_at.desc(), Call.id.desc()))]
    seen: list[int] = []
    url, pages = "/calls/", 0
    while url:
        response = operator_client.get(url)
        assert response.status_code == 200
        page_ids = ids_on(response)
        assert len(page_ids) <= 50
        seen += page_ids
        pages += 1
        match = NEXT_LINK.search(response.get_data(as_text=True))
        url = match.group(1).replace("&amp;", "&") if match else None
        assert pages <= 5, "paging does not end"
    assert pages == 3
    assert len(seen) == 120 and len(set(seen)) == 120
    assert seen == expected


def test_no_next_link_when_the_page_is_exactly_full(app, operator, operator_client):
    with app.app_context():
        db.session.add_all([Call(operator_id=operator.id, status=CallStatus.FINAL,
                                 started_at=BASE - timedelta(minutes=i)) for i in range(50)])
        db.session.commit()
    response = operator_client.get("/calls/")
    assert len(ids_on(response)) == 50
    assert not NEXT_LINK.search(response.get_data(as_text=True))


def test_filters_survive_paging(app, operator, operator_client):
    with app.app_context():
        db.session.add_all([Call(operator_id=operator.id, status=CallStatus.FINAL,
                                 risk_level=RiskLevel.HIGH if i % 2 else RiskLevel.LOW,
                                 started_at=BASE - timedelta(minutes=i)) for i in range(120)])
        db.session.commit()
    first = operator_client.get("/calls/?risk=high")
    link = NEXT_LINK.search(first.get_data(as_text=True)).group(1).replace("&amp;", "&")
    assert "risk=high" in link
    second = operator_client.get(link)
    assert len(ids_on(first)) == 50 and len(ids_on(second)) == 10


def count_statements(app, client, url) -> list[str]:
    with sql_statements(app) as statements:
        assert client.get(url).status_code == 200
    return statements


def test_query_count_does_not_grow_with_the_page_and_nothing_is_counted(app, operator, operator_client,
                                                                      make_user, monkeypatch):
    others = [make_user(Role.OPERATOR) for _ in range(3)]
    with app.app_context():
        calls = [Call(operator_id=(others[i % 3].id), status=CallStatus.FINAL, started_at=BASE - timedelta(minutes=i),
                      substances=[CallSubstance(substance=Substance.ALCOHOL),
                                  CallSubstance(substance=Substance.OPIOIDS)])
                 for i in range(120)]
        db.session.add_all(calls)
        db.session.flush()
        db.session.add_all([FollowUp(call_id=c.id, due_at=BASE) for c in calls[::2]])
        db.session.commit()
    monkeypatch.setattr(views_list, "PAGE_SIZE", 5)
    small = count_statements(app, operator_client, "/calls/")
    monkeypatch.setattr(views_list, "PAGE_SIZE", 50)
    large = count_statements(app, operator_client, "/calls/")
    assert len(ids_on(operator_client.get("/calls/"))) == 50
    assert len(large) == len(small), (small, large)
    assert len(large) <= 12, large
    assert not any("count(" in s.lower() for s in large), large


@pytest.mark.parametrize("query, message", [
    ("risk=catastrophic", "Some filters are not valid"),
    ("substance=%3Cscript%3E", "Some filters are not valid"),
    ("disposition=1%20OR%201%3D1", "Some filters are not valid"),
    ("has_followup=maybe", "Some filters are not valid"),
    ("operator=999999", "Some filters are not valid"),
    ("operator=abc", "Some filters are not valid"),
    ("date_from=yesterday", "Some filters are not valid"),
    ("date_from=2026-02-30", "Some filters are not valid"),
    ("date_from=0001-01-01", "Some filters are not valid"),
    ("date_to=9999-12-31", "Some filters are not valid"),
    ("date_from=2026-03-02&date_to=2026-03-01", "end date is before the start date"),
    ("before=garbage!", "page link is not valid"),
    ("before=" + "A" * 500, "page link is not valid"),
    ("before=bm90LWEtY3Vyc29y", "page link is not valid"),  # base64 of "not-a-cursor"
    ("before=OTk5OTk5OTk5OTk5OTk5OTkuMQ", "page link is not valid"),  # a year far out of range
    ("before=MS45OTk5OTk5OTk5OQ", "page link is not valid"),  # an id above any id
])
def test_bad_filters_and_cursors_are_a_400_with_a_message(operator_client, query, message):
    response = operator_client.get(f"/calls/?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_cursor_round_trip_and_refusals():
    cursor = Cursor(datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), 42)
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "x", "====", "A" * 65, cursor.encode() + "$"):
        with pytest.raises(BadCursor):
            Cursor.decode(bad)


# --- one call -------------------------------------------------------------------------------

def test_detail_masks_name_and_phone(app, operator, operator_client):
    call_id = make_call(app, operator.id, phone=PHONE, caller_name=NAME, notes="Asked about a taper.")
    response = operator_client.get(f"/calls/{call_id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "•••-•••-0142" in html
    assert NAME not in html and "555-0142" not in html and "8055550142" not in html
    assert "hidden" in html
    assert "Asked about a taper." in html


def test_unknown_call_is_404(operator_client):
    assert operator_client.get("/calls/999999").status_code == 404


def test_every_detail_view_is_audited(app, operator, operator_client):
    call_id = make_call(app, operator.id)
    for _ in range(3):
        assert operator_client.get(f"/calls/{call_id}").status_code == 200
    views = audit_rows(app, "call.viewed")
    assert len(views) == 3
    assert {(v.object_type, v.object_id, v.actor_id) for v in views} == {("call", str(call_id), operator.id)}


def test_admins_see_who_viewed_the_call_operators_do_not(app, operator, operator_client, admin_client):
    call_id = make_call(app, operator.id)
    operator_html = operator_client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "Who viewed this call" not in operator_html
    admin_html = admin_client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "Who viewed this call" in admin_html
    panel = admin_html.split("Who viewed this call", 1)[1]
    assert operator.email in panel  # the operator's earlier view, by e-mail
    assert panel.count("call.viewed") == 2


def test_viewers_panel_lists_the_latest_fifty(app, operator, admin_client):
    call_id = make_call(app, operator.id)
    for _ in range(55):
        admin_client.get(f"/calls/{call_id}")
    panel = admin_client.get(f"/calls/{call_id}").get_data(as_text=True).split("Who viewed this call", 1)[1]
    assert panel.count("call.viewed") == 50


def test_edit_link_follows_the_edit_policy(app, operator, operator_client, make_user):
    if "calls_intake.edit" not in app.view_functions:
        @require(Permission.CALLS_LOG)
        def edit_probe(call_id):
            return "edit"

        app.add_url_rule("/calls/<int:call_id>/edit", "calls_intake.edit", edit_probe)
    other = make_user(Role.OPERATOR)
    recent = make_call(app, operator.id, started_at=datetime.now(UTC) - timedelta(hours=1))
    old = make_call(app, operator.id, started_at=datetime.now(UTC) - timedelta(days=3))
    theirs = make_call(app, other.id, started_at=datetime.now(UTC) - timedelta(hours=1))
    assert f'href="/calls/{recent}/edit"' in operator_client.get(f"/calls/{recent}").get_data(as_text=True)
    assert "/edit" not in operator_client.get(f"/calls/{old}").get_data(as_text=True)
    assert "/edit" not in operator_client.get(f"/calls/{theirs}").get_data(as_text=True)


def test_stored_html_and_sql_are_rendered_escaped(app, operator, operator_client):
    notes = "<script>alert('x')</script>\nRobert'); DROP TABLE calls;--"
    call_id = make_call(app, operator.id, notes=notes, safe_times="<b>evenings</b>", caller_name="<i>x</i>")
    html = operator_client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "Robert&#39;); DROP TABLE calls;--" in html
    revealed = reveal(operator_client, call_id, reason="callback").get_data(as_text=True)
    assert "<b>evenings</b>" not in revealed and "&lt;b&gt;evenings&lt;/b&gt;" in revealed
    assert "<i>x</i>" not in revealed and "&lt;i&gt;x&lt;/i&gt;" in revealed
    assert operator_client.get("/calls/").status_code == 200  # the table is still there


# --- reveal ---------------------------------------------------------------------------------

def reveal(client, call_id, **data):
    token = csrf_token(client, f"/calls/{call_id}")
    return client.post(f"/calls/{call_id}/reveal", data={"csrf_token": token, **data})


def test_reveal_needs_a_reason(app, operator, operator_client):
    call_id = make_call(app, operator.id, phone=PHONE, caller_name=NAME)
    for data in ({}, {"reason": ""}, {"reason": "curiosity"}, {"reason": "other"},
                 {"reason": "other", "explanation": "x" * 201}):
        response = reveal(operator_client, call_id, **data)
        assert response.status_code == 400, data
        html = response.get_data(as_text=True)
        assert NAME not in html and "555-0142" not in html
    assert audit_rows(app, "call.contact_revealed") == []


def test_reveal_with_a_reason_shows_the_details_once_and_audits_the_code(app, operator, operator_client):
    call_id = make_call(app, operator.id, phone=PHONE, caller_name=NAME)
    response = reveal(operator_client, call_id, reason="callback")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert NAME in html and PHONE in html
    rows = audit_rows(app, "call.contact_revealed")
    assert len(rows) == 1
    assert (rows[0].object_type, rows[0].object_id, rows[0].actor_id) == ("call", str(call_id), operator.id)
    assert json.loads(rows[0].details) == {"reason": "callback"}
    # Not kept anywhere: the next view is masked again.
    again = operator_client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert NAME not in again and "•••-•••-0142" in again


def test_reveal_for_other_keeps_only_the_code(app, operator, operator_client):
    call_id = make_call(app, operator.id, phone=PHONE, caller_name=NAME)
    secret = "her brother Sam asked us to call"
    response = reveal(operator_client, call_id, reason="other", explanation=secret)
    assert response.status_code == 200 and NAME in response.get_data(as_text=True)
    assert [json.loads(r.details) for r in audit_rows(app, "call.contact_revealed")] == [{"reason": "other"}]
    assert not any("Sam" in r.details for r in audit_rows(app))


def test_unknown_call_reveal_is_404(operator_client):
    assert reveal(operator_client, 999999, reason="callback").status_code == 404


# --- repeat-caller lookup -------------------------------------------------------------------

def lookup(client, phone):
    token = csrf_token(client, "/calls/lookup")
    return client.post("/calls/lookup", data={"csrf_token": token, "phone": phone})


def test_lookup_matches_the_same_number_in_any_format(app, operator, operator_client):
    first = make_call(app, operator.id, phone="(805) 555-0142", started_at=BASE - timedelta(days=2))
    second = make_call(app, operator.id, phone="805-555-0142", started_at=BASE - timedelta(days=1))
    make_call(app, operator.id, phone="(805) 555-0199")
    make_call(app, operator.id)
    for written in ("805.555.0142", "+1 805 555 0142", "(805) 555-0142"):
        response = lookup(operator_client, written)
        assert response.status_code == 200
        assert ids_on(response) == [second, first], written
    nothing = lookup(operator_client, "(212) 555-0000")
    assert ids_on(nothing) == []
    assert "No earlier calls" in nothing.get_data(as_text=True)
    rows = audit_rows(app, "call.phone_lookup")
    assert [json.loads(r.details) for r in rows] == [{"matches": 2}] * 3 + [{"matches": 0}]
    with app.app_context():
        blind = keyring().blind_index(PHONE_INDEX_PURPOSE, "8055550142")
    for row in audit_rows(app):
        text = " ".join(str(v) for v in (row.details, row.object_id, row.object_type))
        assert "0142" not in text and blind not in text and "555" not in text


def test_lookup_is_a_post_and_does_not_echo_the_number(app, operator, operator_client):
    form = operator_client.get("/calls/lookup").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/calls/lookup"', form)
    make_call(app, operator.id, phone=PHONE)
    html = lookup(operator_client, "805.555.0142").get_data(as_text=True)
    assert "805.555.0142" not in html and "8055550142" not in html
    assert "•••-•••-0142" in html
    # A number in a query string does nothing.
    operator_client.get("/calls/lookup?phone=805.555.0142")
    assert len(audit_rows(app, "call.phone_lookup")) == 1


@pytest.mark.parametrize("phone", ["", "12345", "call me", "1" * 41])
def test_lookup_refuses_what_is_not_a_number(app, operator_client, phone):
    assert lookup(operator_client, phone).status_code == 400
    assert audit_rows(app, "call.phone_lookup") == []


def test_phone_normalisation():
    assert normalise_phone("(805) 555-0142") == normalise_phone("805.555.0142") == "8055550142"
    assert normalise_phone("+1 805 555 0142") == "8055550142"
    assert normalise_phone("٨٠٥") == ""  # other scripts' digits are not folded
    assert mask_phone("(805) 555-0142") == "•••-•••-0142"
    assert display_phone("8055550142") == "(805) 555-0142"
    assert display_phone("+44 20 7946 0958") == "+44 20 7946 0958"


# --- urgent queue ---------------------------------------------------------------------------

def test_urgent_queue_and_review(app, operator, admin, admin_client, operator_client):
    older = make_call(app, operator.id, urgent=True, risk_level=RiskLevel.HIGH, started_at=BASE - timedelta(hours=2))
    newer = make_call(app, operator.id, urgent=True, risk_level=RiskLevel.IMMINENT, started_at=BASE)
    live = make_call(app, operator.id, urgent=True, risk_level=RiskLevel.HIGH, status=CallStatus.DRAFT,
                     started_at=BASE - timedelta(hours=3))
    make_call(app, operator.id, risk_level=RiskLevel.LOW, started_at=BASE - timedelta(hours=4))
    make_call(app, operator.id, urgent=True, urgent_reviewed_at=BASE, urgent_reviewed_by_id=admin.id,
              started_at=BASE - timedelta(hours=5))
    assert operator_client.get("/calls/urgent").status_code == 403
    queue = admin_client.get("/calls/urgent")
    assert queue.status_code == 200
    # Imminent first, then high (the live draft is older than the finished high call), then by age.
    assert ids_on(queue) == [newer, live, older]
    assert "live: on the line now" in queue.get_data(as_text=True)

    token = csrf_token(admin_client, "/calls/urgent")
    response = admin_client.post(f"/calls/{older}/urgent-reviewed", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/calls/urgent"
    with app.app_context():
        call = db.session.get(Call, older)
        assert call.urgent_reviewed_by_id == admin.id and call.urgent_reviewed_at is not None
    assert ids_on(admin_client.get("/calls/urgent")) == [newer, live]
    rows = audit_rows(app, "call.urgent_reviewed")
    assert [(r.object_id, r.actor_id) for r in rows] == [(str(older), admin.id)]
    # Reviewing twice changes nothing and records nothing more.
    again = admin_client.post(f"/calls/{older}/urgent-reviewed", data={"csrf_token": token})
    assert again.status_code == 302
    assert len(audit_rows(app, "call.urgent_reviewed")) == 1
    assert operator_client.post(f"/calls/{newer}/urgent-reviewed",
                                data={"csrf_token": csrf_token(operator_client, "/calls/")}).status_code == 403
    assert admin_client.post(f"/calls/{newer}/urgent-reviewed", data={}).status_code == 400  # no CSRF token


# --- requesters -----------------------------------------------------------------------------

def test_requesters_get_403_everywhere(app, operator, make_user):
    call_id = make_call(app, operator.id, phone=PHONE, urgent=True)
    requester = make_user(Role.REQUESTER)
    client = app.test_client()
    assert login(client, requester.email).status_code == 302
    token = csrf_token(client, "/account")
    for path in ("/calls/", f"/calls/{call_id}", "/calls/999999", "/calls/lookup", "/calls/urgent"):
        assert client.get(path).status_code == 403, path
    for path, data in ((f"/calls/{call_id}/reveal", {"reason": "callback"}), ("/calls/999999/reveal", {}),
                       ("/calls/lookup", {"phone": PHONE}), (f"/calls/{call_id}/urgent-reviewed", {}),
                       ("/calls/999999/urgent-reviewed", {})):
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403, path
    assert audit_rows(app, "call.viewed") == [] and audit_rows(app, "call.contact_revealed") == []
