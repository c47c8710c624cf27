"""The staff queue of records requests through HTTP: tabs, filters, keyset pages, one request's
page and every form on it (moves, messages, notes, claim, assign, extend), the version check,
the "who viewed this" panel, audit of views, and hostile input."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import common, queue, services
from intake.records.models import EventKind, RecordsRequest, RequestEvent, RequestStatus
from intake.records.services import MoveInput
from intake.records.timeline import describe
from intake.security.crypto import KeyRing
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, LICENCE, OTHER_LICENCE, csrf_token, login, sql_statements

S = RequestStatus
ROW_REF_RE = re.compile(r'<tr class="request-row">\s*<td><a href="/queue/requests/([A-Za-z0-9_-]{16,32})"')
CONFLICT = "Someone else changed this request while you were working on it"
# Noon in Los Angeles on a Monday: the facility's day is 2026-06-15.
TODAY = date(2026, 6, 15)
NOON = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)


def at(day: date) -> datetime:
    """Noon in Los Angeles on ``day`` (summer time)."""
    return datetime(day.year, day.month, day.day, 19, 0, tzinfo=UTC)


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "admin": make_user(FULL_ADMIN, licence=LICENCE),
            "admin2": make_user(FULL_ADMIN, licence=OTHER_LICENCE), "operator": make_user(Role.OPERATOR)}


@pytest.fixture()
def admin_client(client, people):
    assert login(client, people["admin"].email).status_code == 302
    return client


def _load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def _user(user: User) -> User:
    return db.session.get(User, user.id)


def state(app, ref: str) -> RecordsRequest:
    """A detached snapshot of the request as the database holds it."""
    with app.app_context():
        req = _load(ref)
        db.session.expunge(req)
        return req


def events(app, ref: str, include_internal: bool = True) -> list[tuple[str, str, str | None]]:
    with app.app_context():
        return [(e.kind.value, e.visibility.value, describe(e, "en").full)
                for e in services.timeline(_load(ref), include_internal)]


def act(app, ref: str, fn) -> None:
    """Run a service call on the request, as a separate (already committed) piece of work."""
    with app.app_context():
        fn(_load(ref))
        db.session.commit()


def row_refs(html: str) -> list[str]:
    return ROW_REF_RE.findall(html)


def path(ref: str, action: str = "") -> str:
    return f"/queue/requests/{ref}" + (f"/{action}" if action else "")


def move(client, ref: str, target: str, version: int, **fields):
    data = {"target": target, f"move-{target}-version": str(version),
            f"move-{target}-csrf_token": csrf_token(client, "/account")}
    data.update({f"move-{target}-{k}": v for k, v in fields.items()})
    return client.post(path(ref, "move"), data=data)


def post(client, ref: str, action: str, version: int, **fields):
    data = {f"{action}-version": str(version), f"{action}-csrf_token": csrf_token(client, "/account")}
    data.update({f"{action}-{k}": v for k, v in fields.items()})
    return client.post(path(ref, action), data=data)


def audit_actions(app, req_id: int) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent.action).where(
            AuditEvent.object_type == common.OBJECT_TYPE, AuditEvent.object_id == str(req_id))
            .order_by(AuditEvent.seq)).scalars())


# --- The list ----------------------------------------------------------------------------------

def test_each_tab_holds_exactly_the_right_requests(app, client, people, make_request):
    owner, admin, admin2 = people["requester"], people["admin"], people["admin2"]
    with time_machine.travel(NOON, tick=False):
        fresh = make_request(owner)  # due 2026-06-30: on track
        soon = make_request(owner, now=at(TODAY - timedelta(days=13)))  # due today + 2
        due_today = make_request(owner, now=at(TODAY - timedelta(days=15)))  # due today: due soon, not overdue
        overdue = make_request(owner, now=at(TODAY - timedelta(days=20)))  # due 5 days ago
        later = make_request(owner, now=at(TODAY - timedelta(days=11)))  # due today + 4: not soon yet
        mine = make_request(owner)
        theirs = make_request(owner)
        verifying = make_request(owner)
        awaiting = make_request(owner)
        closed = make_request(owner, now=at(TODAY - timedelta(days=30)))  # overdue, but closed
        act(app, mine, lambda r: services.claim(r, _user(admin)))
        act(app, theirs, lambda r: services.claim(r, _user(admin2)))
        act(app, verifying, lambda r: services.transition(r, S.VERIFYING, _user(admin)))
        act(app, awaiting, lambda r: services.transition(r, S.AWAITING_REQUESTER, _user(admin),
                                                          MoveInput(message="Which years?")))
        act(app, closed, lambda r: services.transition(r, S.NO_RECORDS, _user(admin),
                                                        MoveInput(no_records_reason="not_in_index")))
        login(client, admin.email)

        def tab(name: str | None) -> list[str]:
            response = client.get("/queue/requests/" + (f"?tab={name}" if name else ""))
            assert response.status_code == 200
            return row_refs(response.get_data(as_text=True))

        unassigned = {fresh, soon, due_today, overdue, later, verifying, awaiting}
        assert set(tab(None)) == unassigned == set(tab("unassigned"))
        assert tab("mine") == [mine]
        assert tab("verifying") == [verifying]
        assert tab("due_today") == [due_today]
        assert tab("due_soon") == [soon]  # after today, within RECORDS_DUE_SOON_DAYS
        assert tab("overdue") == [overdue]
        assert tab("awaiting") == [awaiting]
        assert tab("closed") == [closed]
        html = client.get("/queue/requests/?tab=due_soon").get_data(as_text=True)
        assert 'aria-current="page">Due soon <span' in html and html.count('aria-current="page"') == 1
        # Each working tab says how many it holds; the closed tab is not counted.
        counts = dict(re.findall(r'tab=(\w+)[^"]*"[^>]*>[^<]*<span class="badge[^"]*">(\d+)<', html))
        assert counts == {"unassigned": "7", "mine": "1", "verifying": "1", "due_today": "1", "due_soon": "1",
                          "overdue": "1", "awaiting": "1"}
        # The menu counts what is due today or overdue, and leads to the overdue tab.
        assert re.search(r'id="nav-records">Records queue <span[^>]*>2<span class="visually-hidden"> due today or '
                         r'overdue', html)
        assert "Due soon</span>" in html  # the badge says it in words
        assert "Overdue</span>" in client.get("/queue/requests/?tab=overdue").get_data(as_text=True)


def test_a_reference_read_over_the_phone_finds_the_request(app, client, people, make_request):
    """Issue 19: the search box and /queue/requests/RR-… lead to the request; anything else is told
    what a reference looks like, and nothing about other requests leaks."""
    reference = make_request(people["requester"])
    with app.app_context():
        human = db.session.execute(select(RecordsRequest.human_ref).where(RecordsRequest.reference == reference)
                                   ).scalar_one()
    login(client, people["admin"].email)
    for typed in (human, human.lower(), f"  {human} "):
        found = client.get("/queue/requests/", query_string={"q": typed})
        assert found.status_code == 302 and found.headers["Location"].endswith(f"/queue/requests/{reference}")
    direct = client.get(f"/queue/requests/{human}")
    assert direct.status_code == 302 and direct.headers["Location"].endswith(f"/queue/requests/{reference}")
    assert client.get("/queue/requests/RR-2026-ZZZZ").status_code == 404
    unknown = client.get("/queue/requests/", query_string={"q": "RR-2026-ZZZZ"})
    assert unknown.status_code == 400 and "No request has the reference RR-2026-ZZZZ" in unknown.get_data(as_text=True)
    for hostile in ("<script>alert(1)</script>", "' OR 1=1 --", "RR-%", "x" * 500):
        answer = client.get("/queue/requests/", query_string={"q": hostile})
        page = answer.get_data(as_text=True)
        assert answer.status_code == 400 and "Enter a request reference such as RR-2026-MZ6R" in page
        assert "<script>alert(1)</script>" not in page


def test_list_is_sorted_by_due_date_then_id(app, admin_client, people, make_request):
    owner = people["requester"]
    refs = {offset: make_request(owner, now=at(TODAY - timedelta(days=offset))) for offset in (3, 10, 1, 7)}
    same_day = make_request(owner, now=at(TODAY - timedelta(days=10)))
    shown = row_refs(admin_client.get("/queue/requests/?tab=overdue").get_data(as_text=True))
    assert shown == [refs[10], same_day, refs[7], refs[3], refs[1]]
    # The unassigned tab (the default) is ordered by its NULL assignee too: the same order.
    assert row_refs(admin_client.get("/queue/requests/").get_data(as_text=True)) == shown


def test_keyset_pages_have_no_duplicates_or_gaps(app, admin_client, people, make_request):
    owner = people["requester"]
    made = [make_request(owner, now=NOON - timedelta(hours=i)) for i in range(55)]
    first = admin_client.get("/queue/requests/").get_data(as_text=True)
    page1 = row_refs(first)
    assert len(page1) == 50
    cursor = re.search(r'after=([A-Za-z0-9_-]+)', first).group(1)
    second = admin_client.get(f"/queue/requests/?after={cursor}").get_data(as_text=True)
    page2 = row_refs(second)
    assert len(page2) == 5 and "Next page" not in second and "First page" in second
    assert not set(page1) & set(page2) and set(page1) | set(page2) == set(made)


CAPPED_COUNT_RE = re.compile(r"count\(\*\)(?:(?!count\().)*?FROM \(SELECT (?:(?!count\().)*? LIMIT ", re.I | re.S)


def test_list_never_counts_and_costs_the_same_queries_for_more_rows(app, admin_client, people, make_request):
    owner, admin, admin2 = people["requester"], people["admin"], people["admin2"]

    def statements() -> list[str]:
        with sql_statements(app) as seen:
            assert admin_client.get("/queue/requests/?tab=closed").status_code == 200
        return seen

    def closed_request(assignee) -> None:
        ref = make_request(owner)
        act(app, ref, lambda r: services.assign(r, _user(assignee), _user(admin)))
        act(app, ref, lambda r: services.transition(r, S.WITHDRAWN, _user(admin), MoveInput(
            withdraw_reason="duplicate", withdraw_confirmed=True)))

    for who in (admin, admin2):
        closed_request(who)
    few = statements()
    for i in range(6):
        closed_request((admin, admin2)[i % 2])
    many = statements()
    assert len(many) == len(few)
    # The tab counts count ids read with a limit (the cap), never the table.
    for statement in many:
        counted = statement.lower().count("count(")
        assert len(CAPPED_COUNT_RE.findall(statement)) == counted
    assert sum(s.lower().count("count(") for s in many if "records_requests" in s) == len(queue.WORKING_TABS)


def test_tab_counts_are_counted_by_the_database_capped_in_one_row(app, client, people, make_request):
    """One statement answers every working tab's count as one row (no id per request to count here),
    each the tab's true count up to ``cap + 1``; the page and the menu show them."""
    owner, admin = people["requester"], people["admin"]
    with time_machine.travel(NOON, tick=False):
        for days in (15, 15, 15, 20, 20, 13, 0):  # three due today, two overdue, one due soon, one on track
            make_request(owner, now=at(TODAY - timedelta(days=days)))
        login(client, admin.email)
        html = client.get("/queue/requests/").get_data(as_text=True)
        counts = dict(re.findall(r'tab=(\w+)[^"]*"[^>]*>[^<]*<span class="badge[^"]*">(\d+)<', html))
        assert counts == {"unassigned": "7", "mine": "0", "verifying": "0", "due_today": "3", "due_soon": "1",
                          "overdue": "2", "awaiting": "0"}
        assert re.search(r'id="nav-records">Records queue <span[^>]*>5<', html)
        with app.app_context():
            viewer = _user(admin)
            for cap, expected in ((1, (2, 0, 0, 2, 1, 2, 0)), (2, (3, 0, 0, 3, 1, 2, 0)), (99, (7, 0, 0, 3, 1, 2, 0))):
                with sql_statements(app) as seen:
                    got = queue.tab_counts(viewer, TODAY, 3, cap)
                assert got == dict(zip(queue.WORKING_TABS, expected, strict=True))
                assert len([s for s in seen if "records_requests" in s]) == 1


@pytest.mark.parametrize("cursor", ["garbage!!", "x" * 300, base64.urlsafe_b64encode(b"99999999.1").decode(),
                                    base64.urlsafe_b64encode(b"20260615.99999999999").decode(), "AAAA"])
def test_a_tampered_cursor_is_a_clear_400(admin_client, cursor):
    response = admin_client.get(f"/queue/requests/?after={cursor}")
    assert response.status_code == 400
    assert "That page link is not valid" in response.get_data(as_text=True)


def test_filters_by_type_status_and_assignee(app, admin_client, people, make_request):
    owner, admin, admin2 = people["requester"], people["admin"], people["admin2"]
    copy = make_request(owner)
    accounting = make_request(owner, request_type="accounting")
    verifying = make_request(owner)
    act(app, verifying, lambda r: services.transition(r, S.VERIFYING, _user(admin)))
    mine = make_request(owner)
    theirs = make_request(owner)
    act(app, mine, lambda r: services.claim(r, _user(admin)))
    act(app, theirs, lambda r: services.claim(r, _user(admin2)))

    def shown(query: str) -> set[str]:
        response = admin_client.get("/queue/requests/?" + query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return set(row_refs(response.get_data(as_text=True)))

    assert shown("type=accounting") == {accounting}
    assert shown("status=verifying") == {verifying}
    assert shown("type=copy") == {copy, verifying}
    assert shown("tab=closed&status=verifying") == set()
    assert shown("tab=mine&assignee=") == {mine}
    assert shown("tab=due_soon&assignee=me") == set()
    assert shown(f"tab=awaiting&assignee={admin2.id}") == set()
    assert shown(f"tab=unassigned&assignee={admin2.id}") == set()


def test_assignee_filter_on_the_closed_and_verifying_tabs(app, admin_client, people, make_request):
    owner, admin, admin2 = people["requester"], people["admin"], people["admin2"]
    a = make_request(owner)
    b = make_request(owner)
    act(app, a, lambda r: services.claim(r, _user(admin)))
    act(app, b, lambda r: services.claim(r, _user(admin2)))
    for ref in (a, b):
        act(app, ref, lambda r: services.transition(r, S.VERIFYING, _user(admin)))
    both = "/queue/requests/?tab=verifying"
    assert set(row_refs(admin_client.get(both).get_data(as_text=True))) == {a, b}
    assert row_refs(admin_client.get(both + "&assignee=me").get_data(as_text=True)) == [a]
    assert row_refs(admin_client.get(both + f"&assignee={admin2.id}").get_data(as_text=True)) == [b]


@pytest.mark.parametrize("query, message", [
    ("type=everything", "Some filters are not valid"),
    ("status=DROP TABLE", "Some filters are not valid"),
    ("assignee=99999", "Some filters are not valid"),
    ("assignee=-1", "Some filters are not valid"),
    ("tab=secret", "There is no such tab"),
    ("tab=%3Cscript%3E", "There is no such tab"),
])
def test_bad_filters_are_a_clear_400(admin_client, query, message):
    response = admin_client.get("/queue/requests/?" + query)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and "<script>" not in html


@pytest.mark.parametrize("key", ["type", "status", "assignee"])
@pytest.mark.parametrize("blank", ["%20", "%0D%0A", "%09%20"])
def test_a_blank_filter_means_any_not_a_500(app, admin_client, people, make_request, key, blank):
    """Found by the fuzz (tests/fuzz): Optional() let a whitespace value through to RequestStatus(...)."""
    ref = make_request(people["requester"])
    response = admin_client.get(f"/queue/requests/?{key}={blank}")
    assert response.status_code == 200
    assert row_refs(response.get_data(as_text=True)) == [ref]


def test_an_operator_is_not_an_assignee_choice_in_the_filter(admin_client, people):
    response = admin_client.get(f"/queue/requests/?assignee={people['operator'].id}")
    assert response.status_code == 400


def test_list_shows_no_patient_data_and_decrypts_no_request(app, admin_client, people, make_request, monkeypatch):
    make_request(people["requester"], patient_name="Canary Patientname", details="Canary details")
    opened: list[str] = []
    real_open = KeyRing.open

    def spy(self, envelope, aad):
        opened.append(aad)
        return real_open(self, envelope, aad)

    monkeypatch.setattr(KeyRing, "open", spy)
    html = admin_client.get("/queue/requests/").get_data(as_text=True)
    assert len(row_refs(html)) == 1
    assert "Canary" not in html and "1980" not in html
    assert not [aad for aad in opened if aad.startswith(("records_requests|", "request_events|"))]


# --- Who may reach it -------------------------------------------------------------------------

ROUTES = [("get", ""), ("post", "move"), ("post", "message"), ("post", "note"), ("post", "claim"),
          ("post", "assign"), ("post", "extend")]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.REQUESTER])
def test_operators_and_requesters_get_403_everywhere(app, client, make_user, make_request, people, role):
    ref = make_request(people["requester"])
    user = people["requester"] if role == Role.REQUESTER else make_user(role)
    login(client, user.email)
    assert client.get("/queue/requests/").status_code == 403
    token = csrf_token(client, "/account")
    for method, action in ROUTES:
        if method == "get":
            response = client.get(path(ref))
        else:
            response = client.post(path(ref, action), data={"csrf_token": token, f"{action}-body": "x",
                                                            "target": "verifying"})
        assert response.status_code == 403, (method, action)
    assert state(app, ref).status == S.SUBMITTED and state(app, ref).version == 1
    assert "request.viewed" not in audit_actions(app, state(app, ref).id)


@pytest.mark.parametrize("reference", ["AAAAAAAAAAAAAAAAAAAAAA", "short", "a" * 40, "%3Cscript%3E", "..%2F..%2Fetc"])
def test_unknown_or_malformed_references_are_404(admin_client, reference):
    assert admin_client.get(path(reference)).status_code == 404
    assert admin_client.post(path(reference, "note"), data={"csrf_token": csrf_token(admin_client, "/account"),
                                                            "note-body": "x", "note-version": "1"}
                             ).status_code == 404


# --- One request -------------------------------------------------------------------------------

def test_detail_shows_the_submission_clock_and_timeline_and_is_audited(app, admin_client, people, make_request):
    ref = make_request(people["requester"], request_type="accounting", details="Only the <b>2017</b> stay",
                       patient_former_names="Jordan Sample")
    response = admin_client.get(path(ref))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    req = state(app, ref)
    assert req.human_ref in html and "Jordan Example" in html and "Jordan Sample" in html
    assert "1980-05-17" in html and "Only the &lt;b&gt;2017&lt;/b&gt; stay" in html
    assert "Accounting of disclosures" in html
    assert "60 calendar days" in html and "45 CFR" in html  # explain_due cites the rule
    assert "Request received" in html
    assert "Who viewed this" in html and people["admin"].display_name in html  # staff are named by name
    assert audit_actions(app, req.id).count("request.viewed") == 1
    admin_client.get(path(ref))
    assert audit_actions(app, req.id).count("request.viewed") == 2


def test_viewers_panel_is_only_for_auditors(app, admin_client, people, make_request, monkeypatch):
    ref = make_request(people["requester"])
    import intake.records.page.staff as views

    monkeypatch.setattr(views, "can", lambda user, perm, obj=None: False)
    html = admin_client.get(path(ref)).get_data(as_text=True)
    assert "Who viewed this" not in html
    assert audit_actions(app, state(app, ref).id).count("request.viewed") == 1


def test_moves_are_offered_with_only_the_inputs_they_need(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    html = admin_client.get(path(ref)).get_data(as_text=True)
    offered = set(re.findall(r'name="target" value="([a-z_]+)"', html))
    assert offered == {"verifying", "awaiting_requester", "no_records", "withdrawn"}
    assert 'name="move-verifying-message"' not in html
    assert 'name="move-awaiting_requester-message"' in html
    assert 'name="move-awaiting_requester-note"' not in html
    act(app, ref, lambda r: services.transition(r, S.VERIFYING, _user(people["admin"])))
    html = admin_client.get(path(ref)).get_data(as_text=True)
    assert 'name="move-in_review-verification_method"' in html
    assert 'name="move-denied-reason"' in html and "psychotherapy notes" in html
    assert "fulfilled" not in set(re.findall(r'name="target" value="([a-z_]+)"', html))


def test_every_move_through_http(app, admin_client, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    patient_id = archive_patient()
    archive_patient(mrn="OTHER-1", last_name="Someone", dob=date(1970, 1, 1))  # not a candidate
    assert move(admin_client, ref, "verifying", 1).status_code == 302
    req = state(app, ref)
    assert req.status == S.VERIFYING

    # Missing and forged verification methods: 400 next to the field, nothing changed.
    response = move(admin_client, ref, "in_review", req.version)
    assert response.status_code == 400 and "Choose how the identity was verified." in response.get_data(as_text=True)
    response = move(admin_client, ref, "in_review", req.version, verification_method="trust_me")
    assert response.status_code == 400 and "Not a valid choice" in response.get_data(as_text=True)
    assert state(app, ref).status == S.VERIFYING

    # The matching archive record is offered (and only it); it must be chosen.
    page = admin_client.get(path(ref)).get_data(as_text=True)
    assert re.findall(r'<option value="(\d+)"', page[page.index('name="move-in_review-archived_patient_id"'):]
                      )[:1] == [str(patient_id)]
    assert "OTHER-1" not in page
    response = move(admin_client, ref, "in_review", req.version, verification_method="photo_id")
    assert response.status_code == 400 and "Choose the archive record" in response.get_data(as_text=True)
    response = move(admin_client, ref, "in_review", req.version, verification_method="photo_id",
                    archived_patient_id="999999")  # not offered
    assert response.status_code == 400 and state(app, ref).status == S.VERIFYING
    response = move(admin_client, ref, "in_review", req.version, verification_method="photo_id",
                    archived_patient_id=str(patient_id))
    assert response.status_code == 302 and response.headers["Location"] == path(ref)
    req = state(app, ref)
    assert req.status == S.IN_REVIEW and req.verification_method == "photo_id"
    assert req.archived_patient_id == patient_id
    assert req.verified_by_id == people["admin"].id

    response = move(admin_client, ref, "awaiting_requester", req.version, message="Which years do you need?")
    assert response.status_code == 302
    follow = admin_client.get(path(ref)).get_data(as_text=True)
    assert "Waiting for the requester" in follow and "Which years do you need?" in follow
    assert "Which years" not in " ".join(re.findall(r'class="alert[^"]*"[^>]*>([^<]*)<', follow))  # not in flash
    act(app, ref, lambda r: services.reply(r, _user(people["requester"]), "Only 2017."))
    html = admin_client.get(path(ref)).get_data(as_text=True)
    reply = html[html.index("Only 2017.") - 600:html.index("Only 2017.")]
    assert "From the requester" in reply and people["requester"].email in reply
    assert state(app, ref).status == S.IN_REVIEW

    act(app, ref, lambda r: services.record_delivery(r, _user(people["admin"]), "mail"))
    req = state(app, ref)
    assert move(admin_client, ref, "fulfilled", req.version).status_code == 302
    req = state(app, ref)
    assert req.status == S.FULFILLED and not req.is_open and req.closed_at is not None


def test_deny_with_a_reason_shows_the_letter(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    move(admin_client, ref, "verifying", 1)
    version = state(app, ref).version
    response = move(admin_client, ref, "denied", version, reason="fulfilled")  # not a denial reason
    assert response.status_code == 400 and state(app, ref).status == S.VERIFYING
    response = move(admin_client, ref, "denied", version, reason="endangerment")
    assert response.status_code == 302
    html = admin_client.get(path(ref)).get_data(as_text=True)
    assert "We cannot provide the records you asked for." in html
    assert "reasonably likely to endanger" in html and "Office for Civil Rights" in html
    req = state(app, ref)
    assert req.status == S.DENIED and req.decision_reason == "endangerment"
    letter = [body for kind, vis, body in events(app, ref, include_internal=False) if body and "cannot" in body]
    assert letter  # the requester reads it


def test_the_admin_who_denied_is_told_why_they_cannot_decide_the_review(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        req, admin = _load(ref), db.session.get(User, people["admin"].id)
        services.transition(req, S.VERIFYING, admin)
        services.transition(req, S.DENIED, admin, MoveInput(reason="endangerment"))
        services.transition(req, S.REVIEW_REQUESTED, db.session.get(User, people["requester"].id))
        db.session.commit()
    html = admin_client.get(path(ref)).get_data(as_text=True)
    assert "Not available now" in html
    assert "A denial must be reviewed by someone other than the person who made it." in html
    assert 'value="review_decided"' not in html  # no form for the move itself


def test_a_refused_move_changes_nothing(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    before = events(app, ref)
    response = move(admin_client, ref, "fulfilled", 1)
    assert response.status_code == 409
    assert "That step is not possible for this request as it stands now" in response.get_data(as_text=True)
    response = move(admin_client, ref, "nonsense", 1)
    assert response.status_code == 400
    req = state(app, ref)
    assert req.status == S.SUBMITTED and req.version == 1 and events(app, ref) == before
    assert "request.transition" not in audit_actions(app, req.id)


def test_fulfil_before_identity_is_verified_is_explained(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    act(app, ref, lambda r: services.transition(r, S.AWAITING_REQUESTER, _user(people["admin"]),
                                                  MoveInput(message="Please send ID.")))
    version = state(app, ref).version
    response = move(admin_client, ref, "in_review", version, message="Resuming.")
    assert response.status_code == 400
    assert "goes back to the step it was waiting at" in response.get_data(as_text=True)
    assert state(app, ref).status == S.AWAITING_REQUESTER


def test_two_admins_the_second_gets_409_with_text_kept(app, client, people, make_request):
    ref = make_request(people["requester"])
    first = client
    second = app.test_client()
    login(first, people["admin"].email)
    login(second, people["admin2"].email)
    version_seen = state(app, ref).version
    assert first.get(path(ref)).status_code == 200 and second.get(path(ref)).status_code == 200
    assert move(first, ref, "verifying", version_seen).status_code == 302
    typed = "Please send a copy of your photo ID, front and back."
    response = move(second, ref, "awaiting_requester", version_seen, message=typed)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert CONFLICT in html and typed in html
    assert "Checking identity" in html  # the current version
    current = state(app, ref)
    assert re.search(rf'name="move-awaiting_requester-version" type="hidden" value="{current.version}"', html)
    assert current.status == S.VERIFYING
    assert not any(body and typed in body for _, _, body in events(app, ref))
    # Submitting again with the current version works.
    assert move(second, ref, "awaiting_requester", current.version, message=typed).status_code == 302
    assert state(app, ref).status == S.AWAITING_REQUESTER


def test_a_stale_note_keeps_the_text_and_saves_nothing(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    act(app, ref, lambda r: services.claim(r, _user(people["admin2"])))
    response = post(admin_client, ref, "note", 1, body="Archive box 14, shelf C.")
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert CONFLICT in html and "Archive box 14, shelf C.</textarea>" in html
    assert not [e for e in events(app, ref) if e[0] == "note"]


def test_a_race_caught_at_flush_is_a_409(app, admin_client, people, make_request, monkeypatch):
    """Someone saves between our read and our write: the version column catches it at flush."""
    ref = make_request(people["requester"])
    import intake.records.page.staff as views

    real = services.get_for_staff

    def racing(user, reference):
        req = real(user, reference)
        if req is not None:
            db.session.execute(RecordsRequest.__table__.update().where(RecordsRequest.id == req.id)
                               .values(version=RecordsRequest.version + 1))
        return req

    monkeypatch.setattr(views.services, "get_for_staff", racing)
    response = move(admin_client, ref, "verifying", 1)
    monkeypatch.setattr(views.services, "get_for_staff", real)
    assert response.status_code == 409 and CONFLICT in response.get_data(as_text=True)
    assert state(app, ref).status == S.SUBMITTED


def test_message_and_note_are_unmistakably_different(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    html = admin_client.get(path(ref)).get_data(as_text=True)
    assert "The requester will read this" in html and "Staff only: the requester will not see this" in html
    assert post(admin_client, ref, "message", 1, body="We found your file.").status_code == 302
    assert post(admin_client, ref, "note", 1, body="Box 14, checked by Dana.").status_code == 302
    shown_to_requester = events(app, ref, include_internal=False)
    assert any(body == "We found your file." for _, _, body in shown_to_requester)
    assert not any(body and "Box 14" in body for _, _, body in shown_to_requester)
    assert ("note", "internal", "Box 14, checked by Dana.") in events(app, ref)
    html = admin_client.get(path(ref)).get_data(as_text=True)
    assert "Internal: not shown to the requester" in html and "To the requester" in html
    with app.app_context():
        mails = db.session.execute(select(OutboxMessage.body)).scalars().all()
    assert not any("found your file" in body or "Box 14" in body for body in mails)


def test_flash_messages_carry_no_request_content(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    response = post(admin_client, ref, "note", 1, body="Patient disclosed relapse in 2017.")
    assert response.status_code == 302
    html = admin_client.get(path(ref)).get_data(as_text=True)
    flashes = re.findall(r'<div class="alert alert-success[^"]*"[^>]*>(.*?)</div>', html, re.S)
    assert flashes and not any("relapse" in f for f in flashes)
    assert state(app, ref).human_ref in flashes[0]


def test_claim_and_assign(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    assert post(admin_client, ref, "claim", 1).status_code == 302
    req = state(app, ref)
    assert req.assignee_id == people["admin"].id
    html = admin_client.get(path(ref)).get_data(as_text=True)
    assert people["operator"].email not in html  # operators are not assignee choices
    assert post(admin_client, ref, "assign", req.version, assignee=str(people["admin2"].id)).status_code == 302
    req = state(app, ref)
    assert req.assignee_id == people["admin2"].id
    for forged in (str(people["operator"].id), str(people["requester"].id), "99999", "'; DROP TABLE users;--"):
        response = post(admin_client, ref, "assign", req.version, assignee=forged)
        assert response.status_code == 400, forged
        assert "Not a valid choice" in response.get_data(as_text=True)
    assert state(app, ref).assignee_id == people["admin2"].id and state(app, ref).version == req.version
    assert post(admin_client, ref, "assign", req.version, assignee="none").status_code == 302
    assert state(app, ref).assignee_id is None
    # A stale assignment is refused.
    response = post(admin_client, ref, "assign", req.version, assignee=str(people["admin"].id))
    assert response.status_code == 409 and state(app, ref).assignee_id is None


def test_bad_version_fields_are_refused(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    for version in ("", "abc", "-1", "99999999999999"):
        response = admin_client.post(path(ref, "claim"), data={
            "claim-version": version, "claim-csrf_token": csrf_token(admin_client, "/account")})
        assert response.status_code == 400, version
    assert move(admin_client, ref, "verifying", "zzz").status_code == 400  # type: ignore[arg-type]
    assert state(app, ref).assignee_id is None and state(app, ref).status == S.SUBMITTED


def test_extension_is_offered_only_where_allowed(app, admin_client, people, make_request):
    copy = make_request(people["requester"])
    accounting = make_request(people["requester"], request_type="accounting")
    assert "Extend the deadline" not in admin_client.get(path(copy)).get_data(as_text=True)
    response = post(admin_client, copy, "extend", 1, reason="Records are in off-site storage.")
    assert response.status_code == 400 and "allows no extension" in response.get_data(as_text=True)
    assert state(app, copy).extended_days == 0

    assert "Extend the deadline" in admin_client.get(path(accounting)).get_data(as_text=True)
    response = post(admin_client, accounting, "extend", 1, reason="   ")
    assert response.status_code == 400 and "Give the reason for the delay" in response.get_data(as_text=True)
    before = state(app, accounting)
    response = post(admin_client, accounting, "extend", 1, reason="Records are in off-site storage.")
    assert response.status_code == 302
    after = state(app, accounting)
    assert after.extended_days == 30 and after.due_on == before.due_on + timedelta(days=30)
    notice = [body for kind, vis, body in events(app, accounting, False) if kind == "extended"]
    assert notice and "off-site storage" in notice[0]
    html = admin_client.get(path(accounting)).get_data(as_text=True)
    assert "Extend the deadline" not in html and "extended once by 30 days" in html
    response = post(admin_client, accounting, "extend", after.version, reason="Again.")
    assert response.status_code == 400 and "only one extension" in response.get_data(as_text=True)


def test_extension_after_the_due_date_is_refused(app, admin_client, people, make_request):
    ref = make_request(people["requester"], request_type="accounting",
                       now=datetime.now(UTC) - timedelta(days=70))
    response = post(admin_client, ref, "extend", 1, reason="Late.")
    assert response.status_code == 400 and "that date has passed" in response.get_data(as_text=True)
    assert state(app, ref).extended_days == 0


HOSTILE = ["<script>alert(1)</script>", "'; DROP TABLE records_requests; --", "\" onmouseover=\"x", "🙂 ünïcödé"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_stored_as_text_and_escaped(app, admin_client, people, make_request, text):
    ref = make_request(people["requester"])
    assert post(admin_client, ref, "note", 1, body=text).status_code == 302
    assert post(admin_client, ref, "message", 1, body=text).status_code == 302
    html = admin_client.get(path(ref)).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert ("note", "internal", text) in events(app, ref) and ("message", "requester", text) in events(app, ref)
    with app.app_context():
        assert db.session.execute(select(RecordsRequest.id)).all()  # the table is still there


@pytest.mark.parametrize("action, field, limit", [("message", "body", "5000"), ("note", "body", "5000"),
                                                  ("extend", "reason", "2000")])
def test_50_kb_of_text_is_a_clear_400(app, admin_client, people, make_request, action, field, limit):
    ref = make_request(people["requester"], request_type="accounting")
    before = events(app, ref)
    response = post(admin_client, ref, action, 1, **{field: "x" * 50_000})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f"Please keep this under {limit} characters." in html
    assert f'aria-describedby="{action}-{field}-error"' in html
    assert events(app, ref) == before and state(app, ref).extended_days == 0


@pytest.mark.parametrize("field", ["message"])
def test_50_kb_in_a_move_is_a_clear_400(app, admin_client, people, make_request, field):
    ref = make_request(people["requester"])
    response = move(admin_client, ref, "awaiting_requester", 1, message="y" * 50_000)
    assert response.status_code == 400
    assert "Please keep this under 5000 characters." in response.get_data(as_text=True)
    assert state(app, ref).status == S.SUBMITTED


@pytest.mark.parametrize("action", ["message", "note", "extend"])
def test_missing_text_is_a_clear_400(app, admin_client, people, make_request, action):
    ref = make_request(people["requester"], request_type="accounting")
    field = "reason" if action == "extend" else "body"
    response = post(admin_client, ref, action, 1, **{field: "   "})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert len(events(app, ref)) == 1


def test_posts_without_csrf_token_are_refused(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    response = admin_client.post(path(ref, "note"), data={"note-body": "x", "note-version": "1"})
    assert response.status_code == 400
    assert not [e for e in events(app, ref) if e[0] == "note"]


def test_internal_note_from_a_move_is_internal(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    admin = people["admin"]
    act(app, ref, lambda r: services.transition(r, S.NO_RECORDS, _user(admin),
                                                  MoveInput(no_records_reason="destroyed")))
    response = move(admin_client, ref, "in_review", state(app, ref).version, note="Found box 9 after all.")
    assert response.status_code == 302
    assert ("note", "internal", "Found box 9 after all.") in events(app, ref)
    assert not any(body and "box 9" in body for _, _, body in events(app, ref, include_internal=False))
    with app.app_context():
        kinds = {e.kind for e in db.session.execute(select(RequestEvent)).scalars()}
    assert EventKind.NOTE in kinds


def test_partial_release_and_a_review_by_a_different_admin(app, client, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    patient_id = archive_patient()
    admin, admin2 = people["admin"], people["admin2"]
    act(app, ref, lambda r: services.transition(r, S.VERIFYING, _user(admin)))
    act(app, ref, lambda r: services.transition(r, S.IN_REVIEW, _user(admin),
                                                  MoveInput(verification_method="in_person",
                                                            archived_patient_id=patient_id)))
    act(app, ref, lambda r: services.record_delivery(r, _user(admin), "pickup"))
    login(client, admin.email)
    version = state(app, ref).version
    response = move(client, ref, "partially_fulfilled", version, reason="endangerment")  # a denial reason
    assert response.status_code == 400 and state(app, ref).status == S.IN_REVIEW
    assert move(client, ref, "denied", version, reason="references_other_person").status_code == 302
    act(app, ref, lambda r: services.transition(r, S.REVIEW_REQUESTED, _user(people["requester"])))
    # The admin who denied is not offered the review decision.
    html = client.get(path(ref)).get_data(as_text=True)
    assert 'value="review_decided"' not in html
    other = app.test_client()
    login(other, admin2.email)
    html = other.get(path(ref)).get_data(as_text=True)
    assert 'name="move-review_decided-review_outcome"' in html and 'name="move-review_decided-message"' in html
    version = state(app, ref).version
    response = move(other, ref, "review_decided", version, review_outcome="overturned")  # no message
    assert response.status_code == 400 and state(app, ref).status == S.REVIEW_REQUESTED
    response = move(other, ref, "review_decided", version, review_outcome="overturned",
                    message="The records will be sent within 15 days.")
    assert response.status_code == 302
    req = state(app, ref)
    assert req.status == S.REVIEW_DECIDED and req.review_outcome == "overturned"
    assert "The denial is overturned" in other.get(path(ref)).get_data(as_text=True)


def test_no_records_through_http_names_the_custodian(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    version = state(app, ref).version
    response = move(admin_client, ref, "no_records", version)
    assert response.status_code == 400 and "Choose why there are no records." in response.get_data(as_text=True)
    response = move(admin_client, ref, "no_records", version, no_records_reason="held_elsewhere")
    assert response.status_code == 400 and "Name who holds the records now" in response.get_data(as_text=True)
    assert state(app, ref).status == S.SUBMITTED
    response = move(admin_client, ref, "no_records", version, no_records_reason="held_elsewhere",
                    custodian="<b>County</b> Records Center")
    assert response.status_code == 302
    req = state(app, ref)
    assert req.status == S.NO_RECORDS and req.no_records_custodian == "<b>County</b> Records Center"
    html = admin_client.get(path(ref)).get_data(as_text=True)
    assert "&lt;b&gt;County&lt;/b&gt; Records Center" in html and "<b>County</b>" not in html
