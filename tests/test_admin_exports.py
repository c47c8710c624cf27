"""CSV exports of calls and records requests: content, range, coded fields only, streaming,
formula injection, access, audit and bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from intake.admin import exports
from intake.admin.exports import CALL_HEADER, REQUEST_HEADER, DateRange, csv_lines, safe_cell
from intake.audit.models import AuditEvent
from intake.calls.models import Call, CallStatus, CallSubstance, FollowUp, Referral, RiskLevel, Substance
from intake.extensions import db
from intake.records.models import RecordsRequest
from intake.resources.models import Resource, ResourceKind
from intake.users.models import Role
from tests.conftest import FULL_ADMIN, sql_statements

# 2026-01-15 20:00 in Los Angeles (the test facility's zone): the 15th there, the 16th in UTC.
IN_RANGE = datetime(2026, 1, 16, 4, 0, tzinfo=UTC)
NAME, PHONE, NOTES = "Jane Q. Roe", "(805) 555-0142", "Relapsed after the funeral"


def make_call(app, operator_id, *, started_at=IN_RANGE, status=CallStatus.FINAL, substances=(), referrals=0,
              followup=False, **fields) -> int:
    with app.app_context():
        call = Call(operator_id=operator_id, status=status, started_at=started_at, **fields)
        call.substances = [CallSubstance(substance=s) for s in substances]
        db.session.add(call)
        db.session.flush()
        for _ in range(referrals):
            resource = Resource(name="Bay Detox", kind=ResourceKind.DETOX, city="Oakland")
            db.session.add(resource)
            db.session.flush()
            db.session.add(Referral(call_id=call.id, resource_id=resource.id))
        if followup:
            db.session.add(FollowUp(call_id=call.id, due_at=started_at + timedelta(days=1)))
        db.session.commit()
        return call.id


def rows_of(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def audit_events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


CALLS = "/admin/exports/calls.csv?date_from=2026-01-01&date_to=2026-01-31"
REQUESTS = "/admin/exports/requests.csv?date_from=2026-01-01&date_to=2026-01-31"


# --- The writer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_safe_cell_defuses_formulas(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value, expected", [(None, ""), ("", ""), ("94110", "94110"), (12, "12"),
                                             ("a=b", "a=b"), ("'=x", "'=x")])
def test_safe_cell_leaves_the_rest(value, expected):
    assert safe_cell(value) == expected


def test_csv_lines_quotes_and_defuses_every_cell():
    text = "".join(csv_lines(["a", "=b"], [["x,y", '"q"', "=1+1"], ["line\nbreak", None, "-5"]]))
    assert list(csv.reader(io.StringIO(text))) == [["a", "'=b"], ["x,y", '"q"', "'=1+1"],
                                                   ["line\nbreak", "", "'-5"]]


def test_csv_lines_streams_in_chunks():
    chunks = list(csv_lines(["n"], ([str(i) * 50] for i in range(5000))))
    assert len(chunks) > 1
    assert "".join(chunks).count("\r\n") == 5001


def test_range_bounds_are_the_facility_days():
    start, end = DateRange(date(2026, 1, 1), date(2026, 1, 31)).bounds("America/Los_Angeles")
    assert start == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    assert end == datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


# --- Calls ----------------------------------------------------------------------------------------

def test_calls_export_content_and_headers(app, client, login_as, make_user):
    admin = login_as(FULL_ADMIN)
    operator = make_user(Role.OPERATOR)
    call_id = make_call(app, operator.id, substances=[Substance.CLONAZEPAM, Substance.ALCOHOL], referrals=2,
                        followup=True, zip="94110", state="CA", risk_level=RiskLevel.HIGH, suicidal_thoughts=True,
                        suicidal_intent=False, overdose_risk=True, safety_988=True, urgent=True,
                        consent_callback=True, duration_seconds=600,
                        ended_at=IN_RANGE + timedelta(minutes=10))
    response = client.get(CALLS)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="calls-2026-01-01-to-2026-01-31.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(CALL_HEADER)
    [row] = rows_of(response)
    assert row["id"] == str(call_id)
    assert row["started_at"] == "2026-01-16T04:00:00+00:00"
    assert row["ended_at"] == "2026-01-16T04:10:00+00:00"
    assert row["duration_seconds"] == "600"
    assert row["substances"] == "alcohol;clonazepam"
    assert (row["zip"], row["state"], row["risk_level"]) == ("94110", "CA", "high")
    assert (row["suicidal_thoughts"], row["suicidal_intent"], row["suicide_plan"]) == ("yes", "no", "")
    assert (row["overdose_risk"], row["safety_988"], row["safety_911"], row["urgent"]) == ("yes", "yes", "no", "yes")
    assert (row["consent_callback"], row["has_followup"], row["referral_count"]) == ("yes", "yes", "2")
    assert row["call_type"] == "data" and row["channel"] == "phone"
    assert admin.id  # signed in as an admin


def test_calls_export_holds_only_the_range_and_finalized_calls(app, client, login_as, make_user):
    login_as(FULL_ADMIN)
    op = make_user(Role.OPERATOR)
    inside_first = make_call(app, op.id, started_at=datetime(2026, 1, 1, 8, 0, tzinfo=UTC))  # 00:00 on the 1st
    inside_last = make_call(app, op.id, started_at=datetime(2026, 2, 1, 7, 59, tzinfo=UTC))  # 23:59 on the 31st
    make_call(app, op.id, started_at=datetime(2026, 1, 1, 7, 59, tzinfo=UTC))  # 23:59 on Dec 31 there
    make_call(app, op.id, started_at=datetime(2026, 2, 1, 8, 0, tzinfo=UTC))  # Feb 1 there
    make_call(app, op.id, status=CallStatus.DRAFT)
    ids = [row["id"] for row in rows_of(client.get(CALLS))]
    assert ids == [str(inside_first), str(inside_last)]


def test_calls_export_never_holds_names_phones_or_notes(app, client, login_as, make_user):
    login_as(FULL_ADMIN)
    op = make_user(Role.OPERATOR)
    call_id = make_call(app, op.id)
    with app.app_context():
        call = db.session.get(Call, call_id)
        call.caller_name, call.caller_phone, call.notes = NAME, PHONE, NOTES
        call.safe_wording, call.safe_times = "Say it is the pharmacy", "Weekday mornings"
        db.session.commit()
    body = client.get(CALLS).get_data()
    assert str(call_id).encode() in body
    for secret in (NAME, PHONE, "555-0142", NOTES, "pharmacy", "mornings"):
        assert secret.encode() not in body


def statements_during(app, client, url: str) -> list[str]:
    """The SQL run while the whole response is read."""
    with sql_statements(app) as statements:
        client.get(url).get_data()
    return statements


ENCRYPTED = ("caller_name", "caller_phone", "notes", "safe_wording", "safe_times", "draft_extras", "patient_name",
             "patient_dob", "requester_name", "mail_address", "recipient_name", "recipient_address", "purpose",
             "details", "attestation_name", "delivery_note", "extension_reason", "no_records_custodian")


@pytest.mark.parametrize("url", [CALLS, REQUESTS])
def test_exports_never_select_an_encrypted_column(app, client, login_as, make_user, make_request, url,
                                                  monkeypatch):
    """Plain columns only, and a fixed number of queries per batch (no query per row)."""
    monkeypatch.setattr(exports, "BATCH_SIZE", 5)
    login_as(FULL_ADMIN)
    op, owner = make_user(Role.OPERATOR), make_user(Role.REQUESTER)
    for i in range(12):
        make_call(app, op.id, started_at=IN_RANGE + timedelta(minutes=i), substances=[Substance.ALCOHOL])
        make_request(owner, now=IN_RANGE + timedelta(minutes=i))
    statements = statements_during(app, client, url)
    exported = [s for s in statements if "FROM calls" in s or "FROM records_requests" in s]
    assert exported
    for statement in exported:
        for column in ENCRYPTED:
            assert f".{column}" not in statement, statement
    batch_queries = [s for s in statements if "LIMIT" in s and ("FROM calls" in s or "FROM records_requests" in s)]
    assert len(batch_queries) == 3  # 5 + 5 + 2 rows
    assert len(statements) < 20


def test_calls_export_walks_batches(app, client, login_as, make_user, monkeypatch):
    """Several keyset batches (made small here), including calls at the same instant, each exactly once."""
    monkeypatch.setattr(exports, "BATCH_SIZE", 3)
    login_as(FULL_ADMIN)
    op = make_user(Role.OPERATOR)
    made = [make_call(app, op.id, started_at=IN_RANGE + timedelta(minutes=i // 2)) for i in range(8)]
    ids = [int(row["id"]) for row in rows_of(client.get(CALLS))]
    assert ids == made


def test_calls_export_is_audited_with_the_range_only(app, client, login_as, make_user):
    admin = login_as(FULL_ADMIN)
    make_call(app, make_user(Role.OPERATOR).id)
    client.get(CALLS).get_data()
    [event] = audit_events(app, "export.calls")
    assert event.actor_id == admin.id
    assert json.loads(event.details) == {"date_from": "2026-01-01", "date_to": "2026-01-31"}


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.REQUESTER])
@pytest.mark.parametrize("url", ["/admin/exports/", CALLS, REQUESTS])
def test_only_exporters_may_export(app, client, login_as, role, url):
    login_as(role)
    assert client.get(url).status_code == 403
    assert not audit_events(app, "export.calls") and not audit_events(app, "export.requests")


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get(CALLS).headers["Location"].startswith("/login")


# --- Records requests -------------------------------------------------------------------------

def test_requests_export_content_range_and_no_personal_data(app, client, login_as, make_user, make_request):
    admin = login_as(FULL_ADMIN)
    owner = make_user(Role.REQUESTER)
    make_request(owner, now=IN_RANGE, details="I was there in the spring", purpose="Disability claim")
    make_request(owner, now=datetime(2026, 2, 1, 9, 0, tzinfo=UTC))  # February there: outside
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.received_at == IN_RANGE)).scalar_one()
        human_ref, due_on = req.human_ref, req.due_on
    response = client.get(REQUESTS)
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"] == \
        'attachment; filename="requests-2026-01-01-to-2026-01-31.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_data(as_text=True).splitlines()[0] == ",".join(REQUEST_HEADER)
    [row] = rows_of(response)
    assert row["human_ref"] == human_ref
    assert row["received_at"] == "2026-01-16T04:00:00+00:00"
    assert row["due_on"] == due_on.isoformat()
    assert row["on_time"] == "" and row["closed_at"] == ""
    assert row["request_type"] == "copy" and row["relationship"] == "self"
    body = response.get_data()
    for secret in ("Jordan Example", "1980-05-17", "spring", "Disability", owner.email):
        assert secret.encode() not in body
    [event] = audit_events(app, "export.requests")
    assert event.actor_id == admin.id
    assert json.loads(event.details) == {"date_from": "2026-01-01", "date_to": "2026-01-31"}


def test_requests_export_on_time_and_formula_injection(app, client, login_as, make_user, make_request):
    login_as(FULL_ADMIN)
    owner = make_user(Role.REQUESTER)
    make_request(owner, now=IN_RANGE)
    make_request(owner, now=IN_RANGE + timedelta(hours=1))
    with app.app_context():
        first, second = db.session.execute(select(RecordsRequest).order_by(RecordsRequest.id)).scalars().all()
        # Closed late on the evening of its due day (the next UTC day) counts as on time.
        on_due_evening = datetime.combine(first.due_on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=30)
        db.session.execute(update(RecordsRequest).where(RecordsRequest.id == first.id).values(
            closed_at=on_due_evening, decision_reason="=cmd|' /C calc'!A0"))
        db.session.execute(update(RecordsRequest).where(RecordsRequest.id == second.id).values(
            closed_at=on_due_evening + timedelta(days=1), decision_reason="@SUM(1+1)"))
        db.session.commit()
    rows = rows_of(client.get(REQUESTS))
    assert [r["on_time"] for r in rows] == ["yes", "no"]
    assert [r["decision_reason"] for r in rows] == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)"]


# --- Bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, message", [
    ("date_from=2026-01-31&date_to=2026-01-01", "The end date is before the start date."),
    ("date_from=2025-01-01&date_to=2026-01-02", "Export at most 366 days at once."),
    ("date_from=yesterday&date_to=2026-01-01", "Enter the date as YYYY-MM-DD"),
    ("date_from=2026-02-30&date_to=2026-03-01", "Enter the date as YYYY-MM-DD"),
    ("date_from=99999-01-01&date_to=2026-01-01", "Enter the date as YYYY-MM-DD"),
    ("date_from=1066-10-14&date_to=1066-10-15", "Enter a date between 2000 and 2999."),
    ("date_from=%00&date_to=2026-01-01", "Enter the date as YYYY-MM-DD"),
    ("date_to=2026-01-01", "Enter a date."),
    ("date_from=&date_to=", "Enter a date."),
    ("", "Enter a date."),
])
@pytest.mark.parametrize("path", ["/admin/exports/calls.csv", "/admin/exports/requests.csv"])
def test_bad_ranges_answer_400_on_the_page(app, client, login_as, path, query, message):
    login_as(FULL_ADMIN)
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Content-Disposition" not in response.headers
    assert message in response.get_data(as_text=True)
    assert not audit_events(app, "export.calls") and not audit_events(app, "export.requests")


def test_a_full_year_is_allowed(client, login_as):
    login_as(FULL_ADMIN)
    assert client.get("/admin/exports/calls.csv?date_from=2024-01-01&date_to=2024-12-31").status_code == 200


def test_exports_page_defaults_to_the_last_30_days(app, client, login_as):
    login_as(FULL_ADMIN)
    response = client.get("/admin/exports/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    with app.app_context():
        from zoneinfo import ZoneInfo
        today = datetime.now(ZoneInfo(app.config["FACILITY_TIMEZONE"])).date()
    assert f'value="{(today - timedelta(days=29)).isoformat()}"' in page
    assert f'value="{today.isoformat()}"' in page
    assert 'id="calls-date-from"' in page and 'id="requests-date-from"' in page
    assert 'href="/admin/exports/"' in client.get("/admin/").get_data(as_text=True)  # the admin hub's link
