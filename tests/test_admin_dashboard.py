"""The admin dashboard: every figure from seeded rows (exact numbers, facility days across midnight
and DST), SVG plus table for each chart, bad input, access, no personal data, a fixed query count,
and the hourly counts kept for it (intake/admin/dashboard_cache.py)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select, update

from intake.admin import dashboard, dashboard_cache
from intake.admin.exports import DateRange
from intake.admin.models import DashboardHour, DashboardHourReady
from intake.calls.models import (
    Call,
    CallStatus,
    CallSubstance,
    CallType,
    FollowUp,
    FollowUpStatus,
    Referral,
    ReferralStatus,
    RiskLevel,
    Substance,
)
from intake.extensions import db
from intake.records.models import RecordsRequest, RequestStatus
from intake.resources.models import Resource, ResourceKind
from intake.users.models import Role
from tests.conftest import FULL_ADMIN, csrf_token, login, sql_statements

LA = ZoneInfo("America/Los_Angeles")
TZ = "America/Los_Angeles"
PERIOD = DateRange(date(2026, 1, 10), date(2026, 1, 12))
PAGE = "/admin/dashboard?date_from=2026-01-10&date_to=2026-01-12"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)  # long after PERIOD: every hour of it can be kept
NAME, PHONE, NOTES = "Jane Q. Roe", "(805) 555-0142", "Relapsed after the funeral"


def local(*args) -> datetime:
    """A moment given in the facility's wall-clock time."""
    return datetime(*args, tzinfo=LA)


def make_call(app, operator_id, started_at, *, status=CallStatus.FINAL, call_type=CallType.DATA,
              substances=(), referrals=(), **fields) -> int:
    with app.app_context():
        call = Call(operator_id=operator_id, status=status, call_type=call_type, started_at=started_at, **fields)
        call.substances = [CallSubstance(substance=s) for s in substances]
        db.session.add(call)
        db.session.flush()
        for kind, referral_status in referrals:
            resource = Resource(name="Program", kind=kind, city="Oakland")
            db.session.add(resource)
            db.session.flush()
            db.session.add(Referral(call_id=call.id, resource_id=resource.id, status=referral_status))
        db.session.commit()
        return call.id


@pytest.fixture()
def calls(app, make_user):
    """Four finalized calls in the range over two facility days, a draft, and two just outside."""
    op = make_user(Role.OPERATOR).id
    make_call(app, op, local(2026, 1, 10, 9, 15), risk_level=RiskLevel.LOW,
              substances=[Substance.CLONAZEPAM, Substance.ALCOHOL],
              referrals=[(ResourceKind.DETOX, ReferralStatus.GIVEN)])
    make_call(app, op, local(2026, 1, 10, 9, 45), risk_level=RiskLevel.HIGH, substances=[Substance.CLONAZEPAM],
              referrals=[(ResourceKind.DETOX, ReferralStatus.ADMITTED),
                         (ResourceKind.SUPPORT_GROUP, ReferralStatus.GIVEN)])
    # 23:30 on the 10th at the facility is 07:30 on the 11th in UTC: it belongs to the 10th.
    make_call(app, op, local(2026, 1, 10, 23, 30), call_type=CallType.HANG_UP)
    make_call(app, op, local(2026, 1, 11, 14, 0), risk_level=RiskLevel.NONE, substances=[Substance.OPIOIDS],
              caller_name=NAME, caller_phone=PHONE, notes=NOTES)
    make_call(app, op, local(2026, 1, 11, 10, 0), status=CallStatus.DRAFT, risk_level=RiskLevel.IMMINENT,
              substances=[Substance.STIMULANTS], referrals=[(ResourceKind.CRISIS_LINE, ReferralStatus.GIVEN)])
    make_call(app, op, local(2026, 1, 9, 23, 59), substances=[Substance.CANNABIS])  # the day before
    make_call(app, op, local(2026, 1, 13, 0, 30), call_type=CallType.PRANK)  # the day after


def set_request(app, reference, **values) -> None:
    with app.app_context():
        db.session.execute(update(RecordsRequest).where(RecordsRequest.reference == reference).values(**values))
        db.session.commit()


def closed(status, at) -> dict:
    return {"status": status, "is_open": False, "closed_at": at}


@pytest.fixture()
def requests_(app, make_user, make_request):
    """Requests closed in the range (two on time, one late), one closed after it, and four open ones."""
    owner = make_user(Role.REQUESTER)
    seeded = [
        # Received the 2nd, closed the 10th (the evening, the 11th in UTC): on time, 8 days.
        (local(2026, 1, 2, 10, 0), dict(due_on=date(2026, 1, 17),
                                        **closed(RequestStatus.FULFILLED, local(2026, 1, 10, 20, 0)))),
        # Closed at 23:30 on its due day (the next day in UTC): still on time, 10 days.
        (local(2026, 1, 1, 10, 0), dict(due_on=date(2026, 1, 11),
                                        **closed(RequestStatus.FULFILLED, local(2026, 1, 11, 23, 30)))),
        # Denied 8 days late, 23 days after receipt.
        (local(2025, 12, 20, 10, 0), dict(due_on=date(2026, 1, 4), decision_reason="identity_not_verified",
                                          **closed(RequestStatus.DENIED, local(2026, 1, 12, 10, 0)))),
        # Denied the day after the range: not counted.
        (local(2025, 12, 22, 10, 0), dict(due_on=date(2026, 1, 6), decision_reason="endangerment",
                                          **closed(RequestStatus.DENIED, local(2026, 1, 13, 9, 0)))),
        # Open: received in the range (one extended), 6 facility days old (5 in UTC), and an old one.
        (local(2026, 1, 11, 9, 0), dict(status=RequestStatus.IN_REVIEW, extended_days=15)),
        (local(2026, 1, 12, 9, 0), dict(status=RequestStatus.SUBMITTED)),
        (local(2026, 1, 6, 23, 30), dict(status=RequestStatus.VERIFYING)),
        (local(2025, 11, 1, 9, 0), dict(status=RequestStatus.AWAITING_REQUESTER)),
    ]
    for received, values in seeded:
        set_request(app, make_request(owner, now=received.astimezone(UTC)), **values)


# --- The figures, computed directly -------------------------------------------------------------

def test_call_volume_per_facility_day_and_hour(app, calls):
    with app.app_context():
        volume = dashboard.call_volume(PERIOD, TZ)
    assert [(d.day, d.data, d.other) for d in volume.days] == [
        (date(2026, 1, 10), 2, 1), (date(2026, 1, 11), 1, 0), (date(2026, 1, 12), 0, 0)]
    assert volume.total == 4
    expected = [0] * 24
    expected[9], expected[14], expected[23] = 2, 1, 1
    assert volume.hours == expected


def test_call_volume_is_exact_across_the_spring_dst_change(app, make_user):
    """8 March 2026: clocks jump from 02:00 PST to 03:00 PDT. A fixed offset would put the
    23:30 PDT call at 22:00 or on the 9th."""
    op = make_user(Role.OPERATOR).id
    for moment in (local(2026, 3, 8, 1, 30), local(2026, 3, 8, 3, 30), local(2026, 3, 8, 23, 30),
                   local(2026, 3, 7, 23, 30)):
        make_call(app, op, moment)
    with app.app_context():
        volume = dashboard.call_volume(DateRange(date(2026, 3, 8), date(2026, 3, 8)), TZ)
    assert [(d.day, d.total) for d in volume.days] == [(date(2026, 3, 8), 3)]
    assert [hour for hour, n in enumerate(volume.hours) if n] == [1, 3, 23]


def test_call_mix_risk_substances_and_referrals(app, calls):
    with app.app_context():
        types = dashboard.calls_by_type(PERIOD, TZ)
        risks = dashboard.risk_levels(PERIOD, TZ)
        named = dashboard.substances(PERIOD, TZ)
        referrals = dashboard.referrals_by_kind(PERIOD, TZ)
    assert types == {CallType.DATA: 3, CallType.HANG_UP: 1, CallType.WRONG_NUMBER: 0, CallType.PRANK: 0,
                     CallType.SILENT: 0, CallType.TEST: 0}
    # Data calls only, drafts never: the hang-up is not "none", the imminent draft is not counted.
    assert risks == {RiskLevel.NONE: 1, RiskLevel.LOW: 1, RiskLevel.MODERATE: 0, RiskLevel.HIGH: 1,
                     RiskLevel.IMMINENT: 0}
    assert named == {Substance.CLONAZEPAM: 2, Substance.OTHER_BENZODIAZEPINE: 0, Substance.ALCOHOL: 1,
                     Substance.OPIOIDS: 1, Substance.STIMULANTS: 0, Substance.CANNABIS: 0, Substance.OTHER: 0}
    assert referrals[ResourceKind.DETOX] == {ReferralStatus.GIVEN: 1, ReferralStatus.CONTACTED: 0,
                                             ReferralStatus.ADMITTED: 1, ReferralStatus.DECLINED: 0}
    assert referrals[ResourceKind.SUPPORT_GROUP][ReferralStatus.GIVEN] == 1
    assert sum(sum(by_status.values()) for by_status in referrals.values()) == 3  # not the draft's crisis line


def test_followups_overdue_due_soon_and_later(app, make_user):
    op = make_user(Role.OPERATOR).id
    now = datetime(2026, 1, 12, 20, 0, tzinfo=UTC)
    call = make_call(app, op, now - timedelta(days=3))
    with app.app_context():
        for due, status in ((now - timedelta(hours=1), FollowUpStatus.OPEN),
                            (now + timedelta(days=2), FollowUpStatus.OPEN),
                            (now + timedelta(days=6, hours=23), FollowUpStatus.OPEN),
                            (now + timedelta(days=10), FollowUpStatus.OPEN),
                            (now - timedelta(days=2), FollowUpStatus.DONE),
                            (now - timedelta(days=1), FollowUpStatus.CANCELLED)):
            db.session.add(FollowUp(call_id=call, due_at=due, status=status))
        db.session.commit()
        load = dashboard.followups_due(now)
    assert (load.overdue, load.due_soon, load.later, load.horizon_days) == (1, 2, 1, 7)


def test_records_figures(app, requests_):
    with app.app_context():
        result = dashboard.closed_requests(PERIOD, TZ)
        extensions = dashboard.extensions_used(PERIOD, TZ)
        denials = dashboard.denials_by_reason(PERIOD, TZ)
        states = dashboard.open_requests_by_state()
        ages = dashboard.open_request_ages(date(2026, 1, 12), TZ)
    assert (result.closed, result.on_time) == (3, 2)
    assert result.days_to_close == {8: 1, 10: 1, 23: 1}
    assert result.median_days == 10
    assert result.on_time_rate == pytest.approx(2 / 3)
    assert (extensions.received, extensions.extended) == (2, 1)
    assert denials["identity_not_verified"] == 1 and denials["endangerment"] == 0 and sum(denials.values()) == 1
    assert states == {RequestStatus.SUBMITTED: 1, RequestStatus.VERIFYING: 1, RequestStatus.IN_REVIEW: 1,
                      RequestStatus.AWAITING_REQUESTER: 1, RequestStatus.REVIEW_REQUESTED: 0}
    # 0 and 1 day old; 6 facility days (received at 23:30, the next day in UTC); 72 days.
    assert ages == [((0, 5), 2), ((6, 10), 1), ((11, 15), 0), ((16, 30), 0), ((31, 60), 0), ((61, None), 1)]


def test_nothing_to_count(app):
    with app.app_context():
        board = dashboard.build_dashboard(PERIOD, TZ, datetime(2026, 1, 12, 20, 0, tzinfo=UTC))
    assert board.volume.total == 0 and len(board.volume.days) == 3
    assert board.closed.on_time_rate is None and board.closed.median_days is None
    assert board.extensions == dashboard.Extensions(0, 0)


@pytest.mark.parametrize("histogram, expected", [
    ({}, None), ({3: 1}, 3), ({1: 1, 5: 1}, 3), ({2: 3, 9: 1}, 2), ({0: 1, 4: 2, 7: 1}, 4), ({1: 2, 2: 2}, 1.5),
])
def test_median_of_a_histogram(histogram, expected):
    assert dashboard.median_of(histogram) == expected


# --- The page -----------------------------------------------------------------------------------

class Tables(HTMLParser):
    """Every <table> on a page by id: its caption and its rows as lists of cell texts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, dict] = {}
        self._table: dict | None = None
        self._cell: list[str] | None = None
        self._in_caption = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = {"caption": "", "rows": []}
            self.tables[dict(attrs).get("id", "")] = self._table
        elif self._table is not None and tag == "tr":
            self._table["rows"].append([])
        elif self._table is not None and tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._in_caption = True

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table["rows"][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "caption":
            self._in_caption = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption and self._table is not None:
            self._table["caption"] += data.strip()


CHARTS = ("calls-per-day", "calls-per-hour", "call-types", "risk-levels", "substances", "referrals", "followups",
          "open-requests", "request-ages", "denials")


def test_the_page_draws_each_chart_with_its_table(app, client, login_as, calls, requests_):
    login_as(FULL_ADMIN)
    response = client.get(PAGE)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    tables = Tables(html).tables
    for key in CHARTS:
        assert re.search(rf'<svg class="chart [^"]*" viewBox="[^"]+" role="img"\s+aria-labelledby="{key}-title"',
                         html), key
        assert f'<title id="{key}-title">' in html
        assert tables[f"{key}-table"]["caption"], key
        assert f'id="{key}-table"' in html and '<th scope="col"' in html
    per_day = tables["calls-per-day-table"]["rows"]
    assert per_day == [["Day", "Data calls", "Other calls", "All calls"], ["Jan 10, 2026", "2", "1", "3"],
                       ["Jan 11, 2026", "1", "0", "1"], ["Jan 12, 2026", "0", "0", "0"]]
    per_hour = dict(tables["calls-per-hour-table"]["rows"][1:])
    assert (per_hour["09:00–09:59"], per_hour["14:00–14:59"], per_hour["23:00–23:59"]) == ("2", "1", "1")
    assert sum(int(n) for n in per_hour.values()) == 4
    assert dict(tables["risk-levels-table"]["rows"][1:]) == {"None": "1", "Low": "1", "Moderate": "0",
                                                             "High": "1", "Imminent": "0"}
    assert dict(tables["call-types-table"]["rows"][1:])["Call with data"] == "3"
    assert dict(tables["substances-table"]["rows"][1:])["Clonazepam (Klonopin)"] == "2"
    assert ["Detox", "1", "0", "1", "0", "2"] in tables["referrals-table"]["rows"]
    assert dict(tables["denials-table"]["rows"][1:])["Identity not verified"] == "1"
    figures = dict(tables["request-figures"]["rows"])
    assert figures["Closed in the range"] == "3" and figures["Closed on or before their due date"] == "2"
    assert figures["On-time rate"] == "67%" and figures["Median days from receipt to closing"] == "10"
    assert figures["Received in the range"] == "2" and figures["Of those, with the deadline extended"] == "1"
    # The tallest column is as high as the plot; a zero is drawn with no height.
    assert 'height="180.0" fill="#1f4e8c"><title>Jan 10, 2026: 3</title>' in html
    assert 'height="0.0" fill="#1f4e8c"><title>Jan 12, 2026: 0</title>' in html


def test_the_page_has_no_personal_data_and_no_inline_style_or_script(app, client, login_as, calls, requests_):
    login_as(FULL_ADMIN)
    html = client.get(PAGE).get_data(as_text=True)
    for secret in (NAME, PHONE, "555-0142", NOTES, "Jordan Example", "1980"):
        assert secret not in html
    assert "style=" not in html
    # No inline script: the only scripts are files (the idle-timeout dialog's, on every signed-in page, and
    # Bootstrap's bundle for the folding menu, served locally from /bootstrap/static/).
    assert all(re.search(r'\bsrc="/(bootstrap/)?static/', tag) for tag in re.findall(r"<script\b[^>]*>", html)), html


def test_default_is_the_last_30_days_at_either_address(app, client, login_as, make_user):
    login_as(FULL_ADMIN)
    op = make_user(Role.OPERATOR).id
    make_call(app, op, datetime.now(UTC) - timedelta(minutes=5))
    make_call(app, op, datetime.now(UTC) - timedelta(days=45))
    for path in ("/admin/dashboard", "/admin/dashboard/"):
        response = client.get(path)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert len(Tables(html).tables["calls-per-day-table"]["rows"]) == 31  # header + 30 days
        assert "Finalized calls started in the range: 1." in html


def test_the_admin_hub_links_to_the_dashboard(client, login_as):
    login_as(FULL_ADMIN)
    assert 'href="/admin/dashboard"' in client.get("/admin/").get_data(as_text=True)


def test_a_full_year_is_allowed(client, login_as):
    login_as(FULL_ADMIN)
    response = client.get("/admin/dashboard?date_from=2024-01-01&date_to=2024-12-31")
    assert response.status_code == 200
    assert len(Tables(response.get_data(as_text=True)).tables["calls-per-day-table"]["rows"]) == 367


@pytest.mark.parametrize("query, message", [
    ("date_from=2026-01-31&date_to=2026-01-01", "The end date is before the start date."),
    ("date_from=2025-01-01&date_to=2026-01-02", "Choose at most 366 days at once."),
    ("date_from=2000-01-01&date_to=2999-12-31", "Choose at most 366 days at once."),
    ("date_from=yesterday&date_to=2026-01-01", "Enter the date as YYYY-MM-DD"),
    ("date_from=2026-02-30&date_to=2026-03-01", "Enter the date as YYYY-MM-DD"),
    ("date_from=<script>alert(1)</script>&date_to=2026-01-01", "Enter the date as YYYY-MM-DD"),
    ("date_from=" + "9" * 5000 + "&date_to=2026-01-01", "Enter the date as YYYY-MM-DD"),
    ("date_from=%00&date_to=2026-01-01", "Enter the date as YYYY-MM-DD"),
    ("date_from=1066-10-14&date_to=1066-10-15", "Enter a date between 2000 and 2999."),
    ("date_to=2026-01-01", "Enter a date."),
    ("date_from=&date_to=", "Enter a date."),
    ("date_from=2026-01-01&date_to=2026-01-02&risk=high", "This page takes only a start date and an end date"),
    ("date_from=2026-01-01&date_to=2026-01-02&date_from=2026-01-05", None),
    ("operator=1", "This page takes only a start date and an end date"),
])
def test_bad_input_answers_400_with_the_reason(client, login_as, query, message):
    login_as(FULL_ADMIN)
    response = client.get(f"/admin/dashboard?{query}")
    html = response.get_data(as_text=True)
    if message is None:  # a repeated date is read once (the first), like any form field
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert message in html
    assert "<svg class=\"chart" not in html and "<script>alert" not in html
    assert 'id="dashboard-date-from"' in html  # the form is there to correct the input


def test_bad_input_keeps_what_was_typed(client, login_as):
    login_as(FULL_ADMIN)
    html = client.get("/admin/dashboard?date_from=2026-01-31&date_to=2026-01-01").get_data(as_text=True)
    assert 'value="2026-01-31"' in html and 'value="2026-01-01"' in html


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.REQUESTER])
def test_only_admins_see_the_dashboard(client, login_as, role):
    login_as(role)
    assert client.get(PAGE).status_code == 403


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get(PAGE).headers["Location"].startswith("/login")


# --- Cost ---------------------------------------------------------------------------------------

def statements_during(app, client, url) -> list[str]:
    with sql_statements(app) as statements:
        assert client.get(url).status_code == 200
    return statements


ENCRYPTED = ("caller_name", "caller_phone", "notes", "safe_wording", "safe_times", "draft_extras", "patient_name",
             "patient_dob", "requester_name", "mail_address", "recipient_name", "recipient_address", "purpose",
             "details", "attestation_name", "delivery_note", "extension_reason", "no_records_custodian")


def _seed_calls(app, operator_id, how_many) -> None:
    with app.app_context():
        resource = Resource(name="Program", kind=ResourceKind.DETOX, city="Oakland")
        db.session.add(resource)
        db.session.flush()
        for i in range(how_many):
            call = Call(operator_id=operator_id, status=CallStatus.FINAL, started_at=local(2026, 1, 10, 8) +
                        timedelta(minutes=37 * i), risk_level=RiskLevel.LOW, caller_name=NAME)
            call.substances = [CallSubstance(substance=Substance.ALCOHOL)]
            db.session.add(call)
            db.session.flush()
            db.session.add(Referral(call_id=call.id, resource_id=resource.id))
            db.session.add(FollowUp(call_id=call.id, due_at=call.started_at + timedelta(days=1)))
        db.session.commit()


def _menu_count(statement: str) -> bool:
    """The menu's "urgent calls waiting" for supervisors (a few ids from an index, on every page)."""
    return "calls.urgent_reviewed_at IS NULL" in statement and "LIMIT" in statement


def test_query_count_does_not_grow_with_the_calls(app, client, login_as, make_user):
    login_as(FULL_ADMIN)
    op = make_user(Role.OPERATOR).id
    _seed_calls(app, op, 5)
    few = statements_during(app, client, PAGE)
    _seed_calls(app, op, 45)  # on the same hours: the kept counts of those hours are forgotten
    many = statements_during(app, client, PAGE)
    with app.app_context():
        assert db.session.execute(select(db.func.count(Call.id))).scalar_one() == 50
    assert len(few) == len(many)
    figures = [s for s in many if "calls" in s or "records_requests" in s or "followups" in s]
    for statement in figures:
        for column in ENCRYPTED:
            assert f".{column}" not in statement, statement
    counted = [s for s in many if ("FROM calls" in s or "JOIN calls" in s) and not _menu_count(s)]
    assert len(counted) == 3  # the calls of the forgotten hours, counted again: one query per figure group
    # Every hour of the range is kept now: a second view counts no call at all.
    again = statements_during(app, client, PAGE)
    assert not [s for s in again if ("FROM calls" in s or "JOIN calls" in s) and not _menu_count(s)]
    assert any("dashboard_call_hours" in s for s in again)


def test_kept_counts_match_counting_afresh_and_follow_edits(app, calls):
    """The same figures from kept hours as from the calls; an edit to an old call, a substance
    added and a call deleted are all seen by the next view."""
    with app.app_context():
        first = dashboard.build_dashboard(PERIOD, TZ, NOW)
        assert db.session.execute(select(db.func.count()).select_from(DashboardHourReady)).scalar_one() == 72
        again = dashboard.build_dashboard(PERIOD, TZ, NOW)
        assert again == first
        call = db.session.execute(select(Call).where(Call.status == CallStatus.FINAL,
                                                     Call.call_type == CallType.DATA)
                                  .order_by(Call.id).limit(1)).scalar_one()
        before_risk = call.risk_level
        call.risk_level = RiskLevel.IMMINENT
        call.substances.append(CallSubstance(substance=Substance.CANNABIS))
        db.session.commit()
        edited = dashboard.build_dashboard(PERIOD, TZ, NOW)
        assert edited.risk_levels[RiskLevel.IMMINENT] == first.risk_levels[RiskLevel.IMMINENT] + 1
        assert edited.risk_levels[before_risk] == first.risk_levels[before_risk] - 1
        assert edited.substances[Substance.CANNABIS] == first.substances[Substance.CANNABIS] + 1
        db.session.delete(call)
        db.session.commit()
        deleted = dashboard.build_dashboard(PERIOD, TZ, NOW)
        assert deleted.volume.total == first.volume.total - 1
        fresh = dashboard_cache.count_afresh(*PERIOD.bounds(TZ))
        assert sum(n for _, figure, _, n in fresh if figure == dashboard_cache.TYPE) == deleted.volume.total


def test_a_bulk_statement_on_calls_forgets_every_kept_hour(app, calls):
    with app.app_context():
        dashboard.build_dashboard(PERIOD, TZ, NOW)
        db.session.execute(update(Call).values(text_purged_at=None))
        db.session.commit()
        assert db.session.execute(select(db.func.count()).select_from(DashboardHourReady)).scalar_one() == 0
        assert db.session.execute(select(db.func.count()).select_from(DashboardHour)).scalar_one() == 0


def test_the_current_hour_is_counted_every_time_and_never_kept(app, make_user):
    now = datetime.now(UTC)
    today = DateRange(now.astimezone(LA).date(), now.astimezone(LA).date())
    op = make_user(Role.OPERATOR).id
    with app.app_context():
        before = dashboard.call_figures(today, TZ, now).volume.total
        db.session.rollback()
    make_call(app, op, now)
    with app.app_context():
        assert dashboard.call_figures(today, TZ, now).volume.total == before + 1
        current = now.replace(minute=0, second=0, microsecond=0)
        kept = set(db.session.execute(select(DashboardHourReady.hour)).scalars())
        assert current not in kept


def test_the_fill_reads_the_covering_index_for_the_call_mix(app, calls):
    """Counting hours afresh reads type, risk and status from ``ix_calls_dashboard`` without the
    table (SQLite's plan; PostgreSQL decides by its statistics)."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the plan checked is SQLite's")
        statements: list[tuple[str, tuple]] = []

        def listener(conn, cursor, statement, parameters, context, executemany):
            if "FROM calls" in statement and "JOIN" not in statement:
                statements.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            dashboard_cache.count_afresh(*PERIOD.bounds(TZ))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert len(statements) == 1
        for statement, parameters in statements:
            plan = " | ".join(row[-1] for row in db.session.connection()
                              .exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "COVERING INDEX ix_calls_dashboard" in plan, plan


def test_the_dashboard_starts_with_what_needs_action_now(app, client, make_user, make_request):
    """Issue 19: overdue and due-today requests, urgent calls, failed e-mails first, with links into the
    queues, each only for those whose work it is."""
    import time_machine

    from intake.db_types import utcnow
    from intake.notify.models import OutboxMessage, OutboxStatus
    from intake.notify.services import queue_email
    from intake.records import deadlines
    from tests.test_review import HIGH, make_call

    clerk = make_user(Role.RECORDS_CLERK)
    supervisor = make_user(Role.SUPERVISOR)
    operator = make_user(Role.OPERATOR)
    requester = make_user(Role.REQUESTER)
    with app.app_context():
        today = deadlines.today()
    with time_machine.travel(datetime.combine(today - timedelta(days=25), datetime.min.time(), tzinfo=UTC)
                             + timedelta(hours=19)):
        make_request(requester)  # long past its 15 days: overdue
    make_call(app, operator.id, when=utcnow() - timedelta(hours=1), data=HIGH)  # high risk, not yet reviewed
    with app.app_context():
        message: OutboxMessage = queue_email("someone@example.org", "verify_email", "Confirm", "link")
        message.status = OutboxStatus.FAILED
        db.session.commit()

    def section(user) -> str:
        login(client, user.email)
        page = client.get("/admin/dashboard").get_data(as_text=True)
        client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
        start = page.index('id="dashboard-now"')
        return page[start:page.index("</section>", start)]

    records = section(clerk)
    assert re.search(r'href="/queue/requests/\?tab=overdue">Records requests overdue</a>\s*<span[^>]*>1<', records)
    assert re.search(r"<span>Records requests due today</span>\s*<span[^>]*>0<", records)  # none: no link
    assert "Urgent calls" not in records  # not a records clerk's work
    assert re.search(r"E-mails that could not be delivered \(last 7 days\)</span>\s*<span[^>]*>1<", records)
    helpline = section(supervisor)
    assert re.search(r'href="/calls/urgent">Urgent calls waiting for a supervisor</a>\s*<span[^>]*>1<', helpline)
    assert "Records requests" not in helpline
    login(client, supervisor.email)
    page = client.get("/admin/dashboard").get_data(as_text=True)
    assert page.index("Needs action now") < page.index("Date range")  # the section leads the page


LATE = datetime(2026, 12, 1, 12, tzinfo=UTC)  # after both of 2026's clock changes: every day can be kept


def _folded_afresh(period: DateRange, timezone: str) -> tuple[list[tuple[date, int, int]], list[int], dict]:
    """The call figures counted from the calls and folded into the facility's days and hours here."""
    zone = ZoneInfo(timezone)
    days = {period.first + timedelta(days=i): [0, 0] for i in range((period.last - period.first).days + 1)}
    hours, totals = [0] * 24, {}
    for hour, figure, code, n in dashboard_cache.count_afresh(*period.bounds(timezone)):
        totals[figure, code] = totals.get((figure, code), 0) + n
        if figure == dashboard_cache.TYPE:
            local_hour = hour.astimezone(zone)
            days[local_hour.date()][0 if code == CallType.DATA else 1] += n
            hours[local_hour.hour] += n
    return [(day, data, other) for day, (data, other) in sorted(days.items())], hours, totals


def _figures(board: dashboard.CallFigures) -> tuple[list[tuple[date, int, int]], list[int], dict]:
    totals = {(dashboard_cache.TYPE, str(k)): n for k, n in board.types.items() if n}
    totals.update({(dashboard_cache.RISK, str(k)): n for k, n in board.risks.items() if n})
    totals.update({(dashboard_cache.SUBSTANCE, str(k)): n for k, n in board.substances.items() if n})
    totals.update({(dashboard_cache.REFERRAL, f"{kind}/{status}"): n for kind, by in board.referrals.items()
                   for status, n in by.items() if n})
    return [(d.day, d.data, d.other) for d in board.volume.days], board.volume.hours, totals


@pytest.mark.parametrize("first", [date(2026, 3, 7), date(2026, 10, 31)])  # spring forward, fall back
def test_whole_days_are_kept_summed_and_give_what_the_calls_give(app, make_user, first):
    """Each facility day wholly in the range is kept summed (``day:`` rows at its midnight, cut in the
    facility's zone): the figures are those of the calls, across the clock changes too (a 23-hour and a
    25-hour day), the second view reads the kept days, and an edit to a call of a kept day is seen."""
    op = make_user(Role.OPERATOR).id
    period = DateRange(first, first + timedelta(days=2))
    moments = [datetime.combine(first + timedelta(days=d), datetime.min.time(), tzinfo=LA) + timedelta(hours=h)
               for d in range(3) for h in (0.5, 1.5, 2.5, 3.5, 9, 23.5)]
    moments.append(datetime(2026, 11, 1, 1, 30, tzinfo=LA).replace(fold=1))  # the repeated hour, PST
    for i, moment in enumerate(moments):
        make_call(app, op, moment, call_type=CallType.DATA if i % 3 else CallType.HANG_UP,
                  risk_level=RiskLevel.LOW if i % 2 else RiskLevel.NONE,
                  substances=(Substance.ALCOHOL,) if i % 4 == 0 else (),
                  referrals=((ResourceKind.DETOX, ReferralStatus.GIVEN),) if i % 5 == 0 else ())
    with app.app_context():
        expected = _folded_afresh(period, TZ)
        built = _figures(dashboard.call_figures(period, TZ, LATE))
        ready = db.session.execute(select(DashboardHour.hour, DashboardHour.code)
                                   .where(DashboardHour.figure == dashboard_cache.READY)).all()
        assert sorted(ready) == [(datetime.combine(first + timedelta(days=d), datetime.min.time(), tzinfo=LA)
                                  .astimezone(UTC), TZ) for d in range(3)]
        assert built == expected
        statements: list[tuple[str, tuple]] = []

        def listener(conn, cursor, statement, parameters, context, executemany):
            statements.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert _figures(dashboard.call_figures(period, TZ, LATE)) == expected
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        db.session.rollback()
        # The second view: no call counted, no write, and the hourly rows of the whole days are not read.
        assert not [s for s, _ in statements if "calls" in s.split("FROM", 1)[-1].split("WHERE")[0]]
        assert not [s for s, _ in statements if s.lstrip().upper().startswith(("INSERT", "DELETE", "UPDATE"))]
        assert any("day:type" in str(p) for _, p in statements)
    with app.app_context():
        call = db.session.execute(select(Call).where(Call.call_type == CallType.HANG_UP)
                                  .order_by(Call.id).limit(1)).scalar_one()
        call.call_type = CallType.DATA
        db.session.commit()
        edited = _folded_afresh(period, TZ)
        assert edited != expected
        assert _figures(dashboard.call_figures(period, TZ, LATE)) == edited


def test_a_day_kept_in_another_zone_is_cut_again(app, make_user):
    """A changed FACILITY_TIMEZONE cuts the days at other midnights: the days kept in the old zone are
    not used for the new one (two zones' midnights can fall at the same moment)."""
    op = make_user(Role.OPERATOR).id
    for hour in range(0, 48, 5):
        make_call(app, op, local(2026, 7, 1) + timedelta(hours=hour))
    period = DateRange(date(2026, 7, 1), date(2026, 7, 2))
    with app.app_context():
        assert _figures(dashboard.call_figures(period, TZ, LATE)) == _folded_afresh(period, TZ)
        denver = "America/Denver"
        assert _figures(dashboard.call_figures(period, denver, LATE)) == _folded_afresh(period, denver)
        assert _figures(dashboard.call_figures(period, TZ, LATE)) == _folded_afresh(period, TZ)


def test_closed_requests_are_counted_in_facility_days_across_clock_changes(app, make_user, make_request):
    """Days to close and on time, in the facility's days, computed in SQL (the zone's offsets as of each
    moment): requests closed just before and after local midnight, across the autumn clock change and
    the repeated hour, received across the spring one, and one received years before (folded in Python)."""
    owner = make_user(Role.REQUESTER)
    fall = datetime(2026, 11, 1, 1, 30, tzinfo=LA)
    cases = [  # (received, closed, due)
        (local(2026, 10, 20, 23, 59), local(2026, 11, 1, 0, 1), date(2026, 10, 31)),  # late by one day
        (local(2026, 10, 21, 0, 0), local(2026, 10, 31, 23, 59), date(2026, 10, 31)),  # on its due day
        (local(2026, 3, 8, 1, 59), fall, date(2026, 11, 1)),  # PDT first 01:30: spring-forward received
        (local(2026, 3, 8, 3, 0), fall.replace(fold=1), date(2026, 10, 31)),  # the repeated hour, PST: late
        (local(2026, 11, 1, 0, 30), local(2026, 11, 2, 0, 15), date(2026, 11, 2)),
        (local(2021, 6, 1, 12, 0), local(2026, 11, 2, 23, 45), date(2021, 6, 16)),  # years before: folded here
    ]
    for received, closed_at, due in cases:
        set_request(app, make_request(owner, now=received.astimezone(UTC)),
                    **closed(RequestStatus.FULFILLED, closed_at.astimezone(UTC)), due_on=due)
    period = DateRange(date(2026, 10, 31), date(2026, 11, 2))
    expected_days: dict[int, int] = {}
    on_time = 0
    for received, closed_at, due in cases:
        took = (closed_at.astimezone(LA).date() - received.astimezone(LA).date()).days
        expected_days[took] = expected_days.get(took, 0) + 1
        on_time += closed_at.astimezone(LA).date() <= due
    with app.app_context():
        result = dashboard.closed_requests(period, TZ)
    assert (result.closed, result.on_time) == (len(cases), on_time)
    assert result.days_to_close == expected_days


def test_the_zone_offsets_change_where_the_clocks_do():
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    assert dashboard_cache.zone_offsets(LA, start, end) == (
        (start, -8 * 3600), (datetime(2026, 3, 8, 10, tzinfo=UTC), -7 * 3600),
        (datetime(2026, 11, 1, 9, tzinfo=UTC), -8 * 3600))
    assert dashboard_cache.zone_offsets(ZoneInfo("UTC"), start, end) == ((start, 0),)


def test_the_records_figures_read_covering_indexes(app, requests_):
    """The requests closed in the range (days to close, on time) and received in it (extensions) are
    read from ``ix_records_requests_closed_took`` and ``ix_records_requests_received_extended`` alone,
    without a row lookup per request (migration 0018; SQLite's plan), the denials among the closed ones."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the plan checked is SQLite's")
        statements: list[tuple[str, tuple]] = []

        def listener(conn, cursor, statement, parameters, context, executemany):
            if "FROM records_requests" in statement:
                statements.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            dashboard_cache.count_requests_afresh(*PERIOD.bounds(TZ), LA)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert len(statements) == 2  # the closed ones (with the denials) and the received ones
        for statement, parameters in statements:
            plan = " | ".join(row[-1] for row in db.session.connection()
                              .exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "USING COVERING INDEX ix_records_requests_" in plan, plan


def _records_afresh(period: DateRange, timezone: str) -> tuple:
    return (dashboard.closed_requests(period, timezone), dashboard.extensions_used(period, timezone),
            dashboard.denials_by_reason(period, timezone))


def _records_kept(board: dashboard.Dashboard) -> tuple:
    return board.closed, board.extensions, board.denials


@pytest.mark.parametrize("first", [date(2026, 3, 7), date(2026, 10, 31)])  # spring forward, fall back
def test_kept_days_give_the_records_figures_the_requests_give(app, make_user, make_request, first):
    """Each facility day wholly in the range keeps its records figures (``day:closed``, ``day:denied``,
    ``day:received``): summed, they equal counting the requests afresh, with requests received and
    closed a minute either side of the facility's midnights and in the repeated hour; the second view
    reads no request of a kept day; an edit to a request of a kept day (reopened, denied, extended,
    its closing moved to another day) and a new request received in a kept day are seen."""
    owner = make_user(Role.REQUESTER)
    midnights = [datetime.combine(first + timedelta(days=d), datetime.min.time(), tzinfo=LA) for d in range(4)]
    cases = []  # (received, closed or None, due, status, reason, extended days)
    for d, midnight in enumerate(midnights):
        for minutes in (-1, 0, 1, 90, 23 * 60 + 59):
            moment = midnight + timedelta(minutes=minutes)
            cases.append((moment - timedelta(days=9, minutes=1), moment, (moment - timedelta(days=d % 3)).date(),
                          RequestStatus.DENIED if minutes == 90 else RequestStatus.FULFILLED,
                          "identity_not_verified" if minutes == 90 else None, 0))
            cases.append((moment, None, None, RequestStatus.IN_REVIEW, None, 15 if minutes % 2 else 0))
    repeated = datetime(2026, 11, 1, 1, 30, tzinfo=LA)
    cases.append((repeated - timedelta(days=3), repeated.replace(fold=1), date(2026, 11, 1), RequestStatus.FULFILLED,
                  None, 0))
    cases.append((local(2021, 6, 1, 12, 0), midnights[1] + timedelta(hours=5), date(2021, 6, 16),
                  RequestStatus.FULFILLED, None, 0))  # received years before: folded in Python
    references = []
    for received, closed_at, due, status, reason, extended in cases:
        reference = make_request(owner, now=received.astimezone(UTC))
        values: dict = {"status": status, "extended_days": extended, "decision_reason": reason}
        if closed_at is not None:
            values.update(closed(status, closed_at.astimezone(UTC)), due_on=due)
        set_request(app, reference, **values)
        references.append(reference)
    period = DateRange(first, first + timedelta(days=2))
    with app.app_context():
        expected = _records_afresh(period, TZ)
        assert expected[0].closed > 10 and expected[1].extended and expected[2]["identity_not_verified"]
        assert _records_kept(dashboard.build_dashboard(period, TZ, LATE)) == expected
        kept = set(db.session.execute(select(DashboardHour.figure).where(DashboardHour.figure.in_(
            [dashboard_cache.DAY + f for f in dashboard_cache.REQUEST_FIGURES]))).scalars())
        assert kept == {"day:closed", "day:denied", "day:received"}
        statements: list[str] = []

        def listener(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert _records_kept(dashboard.build_dashboard(period, TZ, LATE)) == expected
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        db.session.rollback()
        # Every day of the range is kept: only the open requests (now, not in the range) are read.
        assert not [s for s in statements if "records_requests" in s and "closed_at" in s]
        assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT", "DELETE", "UPDATE"))]

        def edit(index: int, **values) -> None:
            request = db.session.execute(select(RecordsRequest).where(
                RecordsRequest.reference == references[index])).scalar_one()
            for name, value in values.items():
                setattr(request, name, value)
            db.session.commit()

        before = expected
        edits = [
            (2, {"status": RequestStatus.IN_REVIEW, "is_open": True, "closed_at": None}),  # reopened
            (4, {"status": RequestStatus.DENIED, "decision_reason": "endangerment"}),
            (3, {"extended_days": 15}),
            (6, {"closed_at": (midnights[2] + timedelta(hours=3)).astimezone(UTC)}),  # closed another day
            (8, {"due_on": first - timedelta(days=30)}),  # now late
        ]
        for index, values in edits:
            edit(index, **values)
            db.session.expire_all()
            now_expected = _records_afresh(period, TZ)
            assert now_expected != before, values
            assert _records_kept(dashboard.build_dashboard(period, TZ, LATE)) == now_expected
            before = now_expected
    make_request(owner, now=(midnights[1] + timedelta(hours=2)).astimezone(UTC))  # received in a kept day
    with app.app_context():
        grown = dashboard.build_dashboard(period, TZ, LATE).extensions
        assert grown.received == before[1].received + 1
        assert grown == _records_afresh(period, TZ)[1]


def _open_by_hand(today: date) -> tuple[dict, list]:
    """The open requests by state and by age, from every request's row (facility days in Python)."""
    states = dict.fromkeys(dashboard.OPEN_ORDER, 0)
    ages = [0] * len(dashboard.AGE_BUCKETS)
    for status, received in db.session.execute(select(RecordsRequest.status, RecordsRequest.received_at)):
        if status not in dashboard.OPEN_STATUSES:
            continue
        states[status] += 1
        age = (today - received.astimezone(LA).date()).days
        for i, (first, last) in enumerate(dashboard.AGE_BUCKETS):
            if age >= first and (last is None or age <= last):
                ages[i] += 1
    return states, list(zip(dashboard.AGE_BUCKETS, ages, strict=True))


def test_open_requests_by_state_and_age_give_what_the_rows_give(app, make_user, make_request):
    """The open requests' states and ages (one statement on PostgreSQL, two on SQLite) are those of the
    rows, for every state and on each side of each bucket's first facility midnight (23:59 and 00:00);
    closed requests count in neither."""
    owner = make_user(Role.REQUESTER)
    today = date(2026, 3, 20)
    open_states = list(dashboard.OPEN_ORDER)
    seeded = []
    for i, (_first, last) in enumerate(dashboard.AGE_BUCKETS):
        if last is None:
            continue
        midnight = datetime.combine(today - timedelta(days=last), datetime.min.time(), tzinfo=LA)
        seeded += [(midnight, open_states[i % len(open_states)]),
                   (midnight - timedelta(minutes=1), open_states[(i + 1) % len(open_states)])]
    seeded += [(local(2025, 6, 1, 9, 0), RequestStatus.SUBMITTED), (local(2026, 3, 20, 8, 0), RequestStatus.IN_REVIEW),
               (local(2026, 3, 19, 8, 0), RequestStatus.FULFILLED), (local(2026, 1, 2, 8, 0), RequestStatus.DENIED)]
    for received, status in seeded:
        values: dict = {"status": status}
        if status not in dashboard.OPEN_STATUSES:
            values.update(closed(status, received + timedelta(days=1)))
        set_request(app, make_request(owner, now=received.astimezone(UTC)), **values)
    with app.app_context():
        states, ages = _open_by_hand(today)
        found = dashboard.open_request_counts(today, TZ)
        board = dashboard.build_dashboard(DateRange(date(2026, 3, 1), today), TZ,
                                          datetime.combine(today, datetime.min.time(), tzinfo=LA).astimezone(UTC)
                                          + timedelta(hours=12))
    assert found.by_state == states and found.ages == ages
    assert (board.open_requests, board.ages) == (states, ages)
    assert sum(states.values()) == len(seeded) - 2 and all(n for _bounds, n in ages)


def test_a_view_asks_once_whether_the_hours_and_days_are_kept(app, make_user):
    """Once every hour and day of the range is kept, one statement tells so (the hours ready, the days
    ready in the facility's zone), and a day kept in another zone is not taken for one kept in this one."""
    op = make_user(Role.OPERATOR).id
    for hour in range(0, 72, 7):
        make_call(app, op, local(2026, 1, 10) + timedelta(hours=hour))
    with app.app_context():
        start, end = PERIOD.bounds(TZ)
        dashboard_cache.counts(start, end, NOW, TZ)
        db.session.rollback()
        with sql_statements(app) as statements:
            dashboard_cache.counts(start, end, NOW, TZ)
        asked = [s for s in statements if "dashboard_hours_ready" in s]
        assert len(asked) == 1 and "dashboard_call_hours" in asked[0], statements  # hours and days at once
        assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT", "DELETE", "UPDATE"))]
        midnights = [first for first, _following in dashboard_cache.facility_days(start, end, LA)]
        assert dashboard_cache._readiness(start, end, midnights, LA) == (int((end - start) / dashboard_cache.HOUR), 3)
        assert dashboard_cache._readiness(start, end, midnights, ZoneInfo("America/Denver"))[1] == 0
        assert _figures(dashboard.call_figures(PERIOD, TZ, NOW)) == _folded_afresh(PERIOD, TZ)


def test_days_kept_with_the_hours_of_the_day_split_by_type_are_read_alike(app, make_user):
    """The hours of the facility's day are kept one row an hour ("HH"); days kept by the earlier version
    ("HH/1" for data calls, "HH/0" for others) still give the same hours."""
    op = make_user(Role.OPERATOR).id
    for i, hour in enumerate(range(0, 72, 5)):
        make_call(app, op, local(2026, 1, 10) + timedelta(hours=hour),
                  call_type=CallType.DATA if i % 2 else CallType.HANG_UP)
    with app.app_context():
        expected = _folded_afresh(PERIOD, TZ)
        assert _figures(dashboard.call_figures(PERIOD, TZ, NOW)) == expected
        rows = db.session.execute(select(DashboardHour).where(DashboardHour.figure == dashboard_cache.HOUR_OF_DAY)
                                  ).scalars().all()
        assert rows and all(re.fullmatch(r"\d\d", row.code) for row in rows)
        # Rewrite them as the earlier version kept them: each hour's calls split in two rows.
        for row in rows:
            hour, n = row.code, row.n
            row.code, row.n = f"{hour}/1", n - 1 if n > 1 else n
            if n > 1:
                db.session.add(DashboardHour(hour=row.hour, figure=row.figure, code=f"{hour}/0", n=1))
        db.session.commit()
        assert _figures(dashboard.call_figures(PERIOD, TZ, NOW)) == expected


@pytest.mark.parametrize("cap", [2, 99])
def test_requests_due_are_counted_as_the_queue_tabs_count_them(app, make_user, make_request, cap):
    """"Needs action now" counts the overdue and due-today requests in SQL: the same numbers as the records
    queue's tabs (``queue.tab_counts``), capped alike (``cap + 1`` at most), closed requests in neither."""
    from intake.records import queue

    owner = make_user(Role.REQUESTER)
    today = date(2026, 3, 20)
    due_days = [-30, -3, -1, -1, -2, 0, 0, 0, 1, 5]  # the third is closed
    for i, days in enumerate(due_days):
        values: dict = {"due_on": today + timedelta(days=days)}
        if i == 2:
            values.update(closed(RequestStatus.FULFILLED, local(2026, 3, 1, 9, 0)))
        set_request(app, make_request(owner, now=local(2026, 3, 1, 9, 0).astimezone(UTC)), **values)
    with app.app_context():
        viewer = db.session.get(type(owner), owner.id)
        tabs = queue.tab_counts(viewer, today, 3, cap=cap)
        assert dashboard.requests_due(today, cap=cap) == (tabs[queue.Tab.OVERDUE], tabs[queue.Tab.DUE_TODAY])
    assert (tabs[queue.Tab.OVERDUE], tabs[queue.Tab.DUE_TODAY]) == ((3, 3) if cap == 2 else (4, 3))
