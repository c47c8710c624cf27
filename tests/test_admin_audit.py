"""Audit review: filters that narrow, keyset pages without gaps or repeats, hostile input refused
with a message, admins only, the CSV export (headers, content, formula escaping, audited) and
chain verification (intact and broken, audited)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from intake.audit.services import record
from intake.extensions import db
from intake.permissions import ROLE_PERMISSIONS, Permission
from intake.records.models import RecordsRequest
from intake.users.models import Role, User
from tests.conftest import csrf_token, login
from tests.test_account import audit, flashes
from tests.test_audit import drop_append_only_guard

ROW_RE = re.compile(r'<tr data-seq="(\d+)">')


def seqs(page: str) -> list[int]:
    return [int(n) for n in ROW_RE.findall(page)]


def add_events(app, n: int = 1, action: str = "test.event", actor_id: int | None = None, at: datetime | None = None,
               monkeypatch=None, **kwargs) -> list[int]:
    """Events written through ``record(...)``; ``at`` pins their time (the column cannot be edited later)."""
    if at is not None:
        monkeypatch.setattr("intake.audit.services.utcnow", lambda: at)
    with app.app_context():
        actor = db.session.get(User, actor_id) if actor_id else None
        made = [record(action, actor=actor, **kwargs).seq for _ in range(n)]
        db.session.commit()
    if at is not None:
        monkeypatch.undo()
    return made


def get(client, **params):
    return client.get("/admin/audit/", query_string=params)


# --- the page ----------------------------------------------------------------------------------

def test_the_page_lists_newest_first_with_who_and_links(app, admin_client, make_user, make_request):
    operator = make_user(Role.OPERATOR)
    requester = make_user(Role.REQUESTER)
    reference = make_request(requester)
    with app.app_context():
        request_id = db.session.execute(select(RecordsRequest.id).where(RecordsRequest.reference == reference)
                                        ).scalar_one()
    add_events(app, action="call.viewed", actor_id=operator.id, object_type="call", object_id=5)
    add_events(app, action="request.viewed", actor_id=admin_client.admin.id, object_type="records_request",
               object_id=request_id, details={"why": "check"})
    response = get(admin_client)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    shown = seqs(page)
    assert shown == sorted(shown, reverse=True) and shown
    assert operator.email in page
    assert 'href="/calls/5"' in page
    assert f'href="/queue/requests/{reference}"' in page
    assert html.escape('{"why":"check"}', quote=False) in page or "&#34;why&#34;" in page
    assert 'href="/admin/audit/"' in admin_client.get("/admin/").get_data(as_text=True)  # the admin hub's link


def test_the_trail_names_requests_calls_and_people_as_the_office_does(app, admin_client, make_user, make_request):
    """Issue 19: "RR-2026-MZ6R" and "call #208", people by name and address; never "records_request 4"."""
    operator = make_user(Role.OPERATOR, display_name="Test Operator Named")
    requester = make_user(Role.REQUESTER)
    reference = make_request(requester)
    with app.app_context():
        found = db.session.execute(select(RecordsRequest.id, RecordsRequest.human_ref)
                                   .where(RecordsRequest.reference == reference)).one()
    add_events(app, action="call.viewed", actor_id=operator.id, object_type="call", object_id=208)
    add_events(app, action="request.viewed", actor_id=operator.id, object_type="records_request", object_id=found.id)
    add_events(app, action="user.updated", actor_id=admin_client.admin.id, object_type="user", object_id=operator.id)
    page = get(admin_client).get_data(as_text=True)
    assert f">{found.human_ref}</a>" in page and f"records_request {found.id}" not in page
    assert ">call #208</a>" in page
    assert "Test Operator Named" in page and operator.email in page
    assert f"account Test Operator Named ({operator.email})" in html.unescape(page)
    # The person filter lists the staff by name; a reference or a call number filters the objects.
    assert f'<option value="{operator.id}">Test Operator Named ({operator.email})</option>' in page
    by_request = get(admin_client, reference=found.human_ref.lower()).get_data(as_text=True)
    by_call = get(admin_client, reference="#208").get_data(as_text=True)
    assert found.human_ref in by_request and "call #208" not in by_request
    assert "call #208" in by_call and found.human_ref not in by_call
    assert "No request has that reference" in get(admin_client, reference="RR-2026-ZZZZ").get_data(as_text=True)
    hostile = get(admin_client, reference="RR-1' OR '1'='1")
    assert hostile.status_code == 400 and "Enter a request reference such as" in hostile.get_data(as_text=True)
    exported = list(csv.DictReader(io.StringIO(admin_client.get("/admin/audit/export.csv").get_data(as_text=True))))
    assert {"call #208", found.human_ref} <= {row["object_reference"] for row in exported}
    assert "Test Operator Named" in {row["actor_name"] for row in exported}


def test_viewing_is_audited_without_the_address(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    assert get(admin_client, person=str(operator.id), action="user.created").status_code == 200
    event = audit(app, "audit.viewed")[-1]
    assert event.actor_id == admin_client.admin.id
    details = json.loads(event.details)
    assert details["filters"] == {"actor_id": operator.id, "action": "user.created"}
    assert operator.email not in event.details


# --- filters -----------------------------------------------------------------------------------

def test_person_filter_by_account_number_or_system(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    mine = add_events(app, 2, action="test.person", actor_id=operator.id)
    nobody = add_events(app, 3, action="test.person")
    assert seqs(get(admin_client, person=f"#{operator.id}", action="test.person").get_data(as_text=True)) \
        == mine[::-1]
    assert seqs(get(admin_client, person="system", action="test.person").get_data(as_text=True)) == nobody[::-1]
    unknown = get(admin_client, person="999999")
    assert unknown.status_code == 200
    page = unknown.get_data(as_text=True)
    assert seqs(page) == [] and "No account has that number" in page
    # A person of spaces is no filter (found by the fuzz: it was a 500).
    for blank in (" ", "  ", "\t"):
        spaces = get(admin_client, person=blank, action="test.person")
        assert spaces.status_code == 200 and seqs(spaces.get_data(as_text=True)) == sorted(mine + nobody)[::-1]


def test_action_filter(app, admin_client):
    wanted = add_events(app, 2, action="test.wanted")
    add_events(app, 2, action="test.other")
    page = get(admin_client, action="test.wanted").get_data(as_text=True)
    assert seqs(page) == wanted[::-1]
    assert '<option value="test.other">' in page  # the select offers what the trail holds


def test_object_filter(app, admin_client):
    target = add_events(app, 2, object_type="thing", object_id=7)
    add_events(app, 1, object_type="thing", object_id=8)
    add_events(app, 1, object_type="other", object_id=7)
    assert seqs(get(admin_client, object_type="thing", object_id="7").get_data(as_text=True)) == target[::-1]
    by_type = seqs(get(admin_client, object_type="thing").get_data(as_text=True))
    assert len(by_type) == 3


def test_date_filter_uses_the_facility_days(app, admin_client, monkeypatch):
    zone = ZoneInfo(app.config["FACILITY_TIMEZONE"])
    late_evening = datetime(2026, 1, 9, 23, 30, tzinfo=zone).astimezone(UTC)  # already Jan 10 in UTC
    next_morning = datetime(2026, 1, 10, 9, 0, tzinfo=zone).astimezone(UTC)
    first = add_events(app, action="test.dated", at=late_evening, monkeypatch=monkeypatch)
    second = add_events(app, action="test.dated", at=next_morning, monkeypatch=monkeypatch)
    assert seqs(get(admin_client, action="test.dated", date_from="2026-01-09", date_to="2026-01-09")
                .get_data(as_text=True)) == first
    assert seqs(get(admin_client, action="test.dated", date_from="2026-01-10").get_data(as_text=True)) == second
    assert seqs(get(admin_client, action="test.dated", date_to="2026-01-10").get_data(as_text=True)) \
        == second + first


def test_pages_have_no_gaps_or_repeats(app, admin_client):
    made = add_events(app, 123, action="test.page")
    seen, params, pages = [], {"action": "test.page"}, 0
    while True:
        page = get(admin_client, **params).get_data(as_text=True)
        pages += 1
        rows = seqs(page)
        assert len(rows) <= 50
        seen += rows
        match = re.search(r'href="(/admin/audit/\?[^"]*before=(\d+)[^"]*)">Older events', page)
        if not match:
            break
        assert "action=test.page" in match.group(1)  # the filters travel with the cursor
        params = {"action": "test.page", "before": match.group(2)}
    assert pages == 3
    assert seen == sorted(made, reverse=True)


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "message"), [
    ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "The end date is before the start date."),
    ({"date_from": "1800-01-01"}, "Enter a date between 2000 and 2999."),
    ({"date_to": "9999-12-31"}, "Enter a date between 2000 and 2999."),
    ({"date_from": "yesterday"}, "Not a valid date value."),
    ({"action": "no.such.action"}, "No event in the audit trail has that action."),
    ({"object_type": "<script>"}, "No event in the audit trail has that object type."),
    ({"object_type": "thing", "object_id": "abc"}, "An object id is a whole number"),
    ({"object_type": "thing", "object_id": "99999999999"}, "An object id is a whole number"),
    ({"object_id": "7"}, "Choose an object type"),
    ({"person": "someone@example.org"}, "Enter an account number"),  # never an address in a URL
    ({"person": "1" * 300}, "That is too long."),
    ({"before": "abc"}, "That page link is not valid."),
    ({"before": "0"}, "That page link is not valid."),
    ({"before": "-5"}, "That page link is not valid."),
    ({"before": "99999999999"}, "That page link is not valid."),
    ({"before": "1' OR '1'='1"}, "That page link is not valid."),
])
def test_bad_input_is_a_clear_400(app, admin_client, params, message):
    add_events(app, object_type="thing", object_id=7)
    response = get(admin_client, **params)
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert message in page
    assert seqs(page) == []
    assert admin_client.get("/admin/audit/export.csv", query_string=params).status_code \
        == (200 if "before" in params else 400)


def test_unknown_parameters_are_ignored(admin_client):
    assert get(admin_client, colour="blue").status_code == 200


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.REQUESTER])
def test_only_admins(app, make_user, role):
    user = make_user(role)
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    assert client.get("/admin/audit/").status_code == 403
    assert client.get("/admin/audit/export.csv").status_code == 403
    token = csrf_token(client, "/account")
    assert client.post("/admin/audit/verify", data={"csrf_token": token}).status_code == 403
    assert "/admin/audit/" not in client.get("/account").get_data(as_text=True)


def test_export_needs_audit_view_as_well(app, make_user, monkeypatch):
    monkeypatch.setitem(ROLE_PERMISSIONS, Role.OPERATOR, ROLE_PERMISSIONS[Role.OPERATOR] | {Permission.EXPORT})
    user = make_user(Role.OPERATOR)
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    assert client.get("/admin/audit/export.csv").status_code == 403


# --- export ------------------------------------------------------------------------------------

def test_export_streams_the_filtered_events_as_csv(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    wanted = add_events(app, 3, action="test.export", actor_id=operator.id, object_type="thing", object_id=1)
    add_events(app, 2, action="test.other")
    response = admin_client.get("/admin/audit/export.csv", query_string={"action": "test.export"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:6] == ["seq", "occurred_at_utc", "actor_id", "actor_email", "actor_role", "action"]
    assert [int(r[0]) for r in rows[1:]] == wanted[::-1]
    assert all(r[3] == operator.email and r[5] == "test.export" for r in rows[1:])
    exported = audit(app, "audit.exported")
    assert len(exported) == 1 and json.loads(exported[0].details) == {"filters": {"action": "test.export"}}


def test_export_batches_by_keyset(app, admin_client, monkeypatch):
    from intake.admin import audit as audit_views

    made = add_events(app, 30, action="test.batch")
    sizes = []
    real_fetch = audit_views.fetch

    def counting_fetch(filters, before, batch):
        rows = real_fetch(filters, before, batch)
        sizes.append(len(rows))
        return rows

    monkeypatch.setattr(audit_views, "fetch", counting_fetch)
    with app.test_request_context():
        chunks = list(audit_views.csv_lines(audit_views.AuditFilters(action="test.batch"), batch=7))
    assert sizes == [7, 7, 7, 7, 2, 0]  # keyset batches, then the empty one that ends the walk
    rows = list(csv.reader(io.StringIO("".join(chunks))))[1:]
    assert [int(r[0]) for r in rows] == made[::-1]


def test_export_escapes_formulas(app, admin_client):
    add_events(app, action="=HYPERLINK(\"http://evil\")", object_type="+thing", object_id="-1",
               details={"a": 1})
    add_events(app, action="@SUM(1)", object_type="\tthing", object_id="\r2")
    body = admin_client.get("/admin/audit/export.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'=HYPERLINK(\"http://evil\")" in cells and "'+thing" in cells and "'-1" in cells
    assert "'@SUM(1)" in cells and "'\tthing" in cells and "'\r2" in cells
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in cells)
    # the page shows the same values, escaped
    page = get(admin_client).get_data(as_text=True)
    assert "=HYPERLINK(&#34;http://evil&#34;)" in page or "=HYPERLINK(&quot;http://evil&quot;)" in page


# --- chain verification ----------------------------------------------------------------------

def verify(client):
    return client.post("/admin/audit/verify", data={"csrf_token": csrf_token(client, "/admin/audit/")})


def test_verify_reports_an_intact_chain(app, admin_client):
    add_events(app, 4)
    response = verify(admin_client)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/audit/"
    messages = flashes(admin_client.get("/admin/audit/").get_data(as_text=True))
    assert messages and messages[0][0] == "success"
    assert "intact" in messages[0][1]
    event = audit(app, "audit.verified")[-1]
    details = json.loads(event.details)
    assert details["ok"] is True and details["broken_at"] is None
    assert f"{details['checked']} events checked" in messages[0][1]
    with app.app_context():
        head = db.session.execute(text("SELECT hash FROM audit_events WHERE seq = :s"),
                                  {"s": event.seq - 1}).scalar_one()
    assert head in messages[0][1]


def test_verify_reports_the_first_broken_link(app, admin_client):
    add_events(app, 4)
    with app.app_context():
        drop_append_only_guard()
        db.session.execute(text("UPDATE audit_events SET details = :d WHERE seq = 2"), {"d": '{"forged":1}'})
        db.session.commit()
    verify(admin_client)
    messages = flashes(admin_client.get("/admin/audit/").get_data(as_text=True))
    assert messages[0][0] == "danger"
    assert "broken at event 2" in messages[0][1]
    details = json.loads(audit(app, "audit.verified")[-1].details)
    assert details == {"ok": False, "checked": 1, "broken_at": 2}


def test_verify_needs_the_csrf_token(admin_client):
    assert admin_client.post("/admin/audit/verify").status_code == 400

