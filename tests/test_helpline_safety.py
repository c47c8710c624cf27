"""Helpline safety (issue 16), on the server: the screen's required questions and their recorded
reason, live escalation and supervisors' notes, the 42 CFR 2.51 record and the report of every
disclosure, the repeat-caller notice, callbacks in one step, the directory search by payer and ZIP,
and sessions that keep a form posted after they ended."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.calls.models import (
    AttemptOutcome,
    Call,
    CallStatus,
    EmergencyDisclosure,
    FollowUp,
    FollowUpAttempt,
    FollowUpStatus,
    RiskLevel,
    SupervisorNote,
)
from intake.clock import local_time, parse_local
from intake.extensions import db
from intake.resources.models import Resource, ResourceKind
from intake.resources.services import find_near
from intake.security.sessions import SEEN_AT
from intake.users.models import Role
from tests.conftest import csrf_token, login
from tests.test_calls_intake import complete, form_token, get_call, post_edit, start
from tests.test_followups import make_followup

PHONE = "(415) 555-0134"


@pytest.fixture()
def operator(client, make_user):
    user = make_user(Role.OPERATOR)
    assert login(client, user.email).status_code == 302
    return user


def audit(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                       .order_by(AuditEvent.seq)).scalars())


def autosave(client, call_id: int, data: dict):
    return client.post(f"/calls/{call_id}/draft", headers={"X-CSRFToken": form_token(client, call_id)}, data=data)


# --- the screen: danger signs make questions required -----------------------------------------

def test_a_suicidal_thoughts_symptom_cannot_be_finalized_as_low(app, client, operator):
    """The bypass seen: clonazepam + "Suicidal thoughts" ticked, questions left alone."""
    call_id = start(client)
    data = complete(substances=["clonazepam"], withdrawal_symptoms=["suicidal_thoughts"], suicidal_thoughts="",
                    medical_danger="")
    response = post_edit(client, call_id, data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "a danger sign on the call makes it required" in page
    assert "Say why the required questions were not asked." in page
    assert get_call(app, call_id).status == CallStatus.DRAFT


def test_a_recorded_reason_lets_an_unasked_screen_finish_high_with_a_safety_action(app, client, operator):
    call_id = start(client)
    data = complete(substances=["clonazepam"], withdrawal_symptoms=["suicidal_thoughts"], suicidal_thoughts="",
                    medical_danger="", unasked_reason="caller_hung_up")
    response = post_edit(client, call_id, data)
    assert response.status_code == 400 and "needs at least one safety action" in response.get_data(as_text=True)
    response = post_edit(client, call_id, {**data, "safety_supervisor": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    call = get_call(app, call_id)
    assert call.risk_level == RiskLevel.HIGH and call.urgent is True and call.unasked_reason == "caller_hung_up"
    page = client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "Required questions not asked because" in page and "caller hung up" in page


def test_seizures_and_hallucinations_make_a_draft_high_and_ask_the_medical_question(app, client, operator):
    call_id = start(client)
    body = autosave(client, call_id, {"withdrawal_symptoms": ["seizures", "hallucinations"]}).get_json()
    assert body["risk_level"] == "high" and body["unanswered_required"] == ["medical_danger"]
    assert {"seizures", "hallucinations"} <= set(body["matched"])


def test_the_server_computes_the_level_whatever_the_browser_says(app, client, operator):
    call_id = start(client)
    autosave(client, call_id, {"risk_level": "none", "overdose_risk": "false", "medical_danger": "yes"})
    call = get_call(app, call_id)
    assert call.risk_level == RiskLevel.IMMINENT


def test_an_unknown_unasked_reason_is_refused(app, client, operator):
    call_id = start(client)
    response = post_edit(client, call_id, complete(unasked_reason="<script>"))
    assert response.status_code == 400
    assert get_call(app, call_id).status == CallStatus.DRAFT


# --- live escalation ----------------------------------------------------------------------------

def test_a_draft_reaching_high_is_on_the_urgent_queue_at_once_marked_live(app, client, operator, admin_client):
    call_id = start(client)
    before = admin_client.get("/calls/urgent").get_data(as_text=True)
    assert f"/calls/{call_id}\"" not in before
    autosave(client, call_id, {"suicide_plan": "yes"})
    queue = admin_client.get("/calls/urgent").get_data(as_text=True)
    assert f'href="/calls/{call_id}"' in queue and "live: on the line now" in queue and operator.display_name in queue
    assert 'class="badge rounded-pill text-bg-danger urgent-count">1' in queue  # the menu's count
    [escalated] = audit(app, "call.escalated")
    assert json.loads(escalated.details) == {"risk_level": "high", "live": True}
    # The operator's menu has no urgent queue and no count.
    assert "urgent-count" not in client.get("/calls/new").get_data(as_text=True)


def test_the_urgent_queue_puts_imminent_first_then_high_then_age(app, make_user, admin_client):
    operator = make_user(Role.OPERATOR)
    now = datetime.now(UTC)
    with app.app_context():
        rows = [Call(operator_id=operator.id, status=CallStatus.FINAL, urgent=True, risk_level=level,
                     started_at=now - timedelta(hours=hours))
                for level, hours in ((RiskLevel.HIGH, 48), (RiskLevel.IMMINENT, 1), (RiskLevel.HIGH, 2))]
        db.session.add_all(rows)
        db.session.commit()
        old_high, imminent, new_high = (r.id for r in rows)
    page = admin_client.get("/calls/urgent").get_data(as_text=True)
    positions = [page.index(f'href="/calls/{i}"') for i in (imminent, old_high, new_high)]
    assert positions == sorted(positions)


def test_a_supervisor_opens_the_live_draft_read_only_and_leaves_a_note(app, client, operator, admin_client):
    call_id = start(client)
    autosave(client, call_id, {"medical_danger": "yes", "notes": "canary-live-17"})
    page = admin_client.get(f"/calls/{call_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Live call: the operator is still on the line" in html and "canary-live-17" in html
    assert 'id="call-form"' not in html  # the page itself is read-only (admins may still open the form)
    token = csrf_token(admin_client, f"/calls/{call_id}")
    response = admin_client.post(f"/calls/{call_id}/notes", data={"csrf_token": token,
                                                                 "body": "Ask about the pills; I am listening."})
    assert response.status_code == 302
    live = client.get(f"/calls/{call_id}/live.json").get_json()
    assert [n["body"] for n in live["notes"]] == ["Ask about the pills; I am listening."]
    assert live["notes"][0]["at"].endswith(("PST", "PDT"))
    assert "Ask about the pills" in client.get(f"/calls/{call_id}/edit").get_data(as_text=True)
    with app.app_context():
        stored = db.session.execute(select(SupervisorNote)).scalar_one()
        raw = db.session.execute(select(SupervisorNote.__table__.c.body)).scalar_one()
        assert stored.body.startswith("Ask") and "pills" not in raw  # encrypted at rest
    assert len(audit(app, "call.supervisor_note")) == 1


def test_an_operator_cannot_watch_another_operators_draft_or_leave_notes(app, client, operator, make_user):
    call_id = start(client)
    autosave(client, call_id, {"medical_danger": "yes"})
    other = app.test_client()
    assert login(other, make_user(Role.OPERATOR).email).status_code == 302
    assert other.get(f"/calls/{call_id}").status_code == 404
    assert other.get(f"/calls/{call_id}/live.json").status_code == 403
    token = csrf_token(other, "/calls/")
    assert other.post(f"/calls/{call_id}/notes", data={"csrf_token": token, "body": "x"}).status_code == 403


@pytest.mark.parametrize("body", ["", " ", "x" * 1001, "nul\x00byte"])
def test_a_bad_note_is_refused(app, client, operator, admin_client, body):
    call_id = start(client)
    autosave(client, call_id, {"medical_danger": "yes"})
    token = csrf_token(admin_client, f"/calls/{call_id}")
    assert admin_client.post(f"/calls/{call_id}/notes", data={"csrf_token": token, "body": body}).status_code == 400
    with app.app_context():
        assert db.session.execute(select(SupervisorNote)).first() is None


# --- 42 CFR 2.51 ------------------------------------------------------------------------------

@pytest.mark.parametrize("trigger", [{"safety_911": "y"}, {"identity_shared": "y", "safety_plan": "y"},
                                     {"disposition": "emergency_dispatched", "safety_988": "y"}])
def test_911_or_a_shared_identity_requires_the_disclosure_record(app, client, operator, trigger):
    call_id = start(client)
    data = complete(medical_danger="yes", **trigger)
    response = post_edit(client, call_id, data)
    assert response.status_code == 400 and "record it here before finalizing" in response.get_data(as_text=True)
    partial = {**data, "disclosure_to": "Dispatcher 12", "disclosure_reason": "Seizure in progress"}
    response = post_edit(client, call_id, partial)
    assert response.status_code == 400 and "affiliation" in response.get_data(as_text=True)
    assert get_call(app, call_id).status == CallStatus.DRAFT


def test_the_2_51_record_names_the_discloser_chosen(app, client, operator, make_user):
    supervisor = make_user(Role.SUPERVISOR)
    call_id = start(client)
    response = post_edit(client, call_id, complete(
        medical_danger="yes", safety_911="y", disclosure_to="Dispatcher 12", disclosure_affiliation="County EMS",
        disclosure_by=str(supervisor.id), disclosure_at="2026-07-04T21:30", disclosure_reason="Overdose now"))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        d = db.session.execute(select(EmergencyDisclosure)).scalar_one()
        assert (d.disclosed_to, d.affiliation, d.reason) == ("Dispatcher 12", "County EMS", "Overdose now")
        assert d.disclosed_by_id == supervisor.id and d.recorded_by_id == operator.id
        assert d.disclosed_at == datetime(2026, 7, 5, 4, 30, tzinfo=UTC)  # 21:30 PDT


def test_the_form_defaults_the_discloser_to_the_operator_and_the_time_to_now(app, client, operator):
    call_id = start(client)
    page = client.get(f"/calls/{call_id}/edit").get_data(as_text=True)
    assert f'<option selected value="{operator.id}">' in page or f'value="{operator.id}" selected' in page


def test_admins_list_and_export_every_disclosure(app, client, operator, admin_client):
    call_id = start(client)
    assert post_edit(client, call_id, complete(
        medical_danger="yes", safety_911="y", disclosure_to="=HYPERLINK(\"x\")", disclosure_affiliation="County EMS",
        disclosure_at="2026-12-01T10:00", disclosure_reason="Seizure")).status_code == 302
    page = admin_client.get("/admin/disclosures/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "County EMS" in html and "2026-12-01 10:00 PST" in html
    assert f"/calls/{call_id}" in html
    export = admin_client.get("/admin/disclosures/export.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows[0][2] == "disclosed_at (America/Los_Angeles)"
    assert rows[1][2] == "2026-12-01 10:00 PST" and rows[1][3].startswith("'=")  # formula defused
    assert len(audit(app, "disclosures.report_viewed")) == 1 and len(audit(app, "disclosures.exported")) == 1
    assert client.get("/admin/disclosures/").status_code == 403  # operators do not hold DISCLOSURES_REPORT
    assert admin_client.get("/admin/disclosures/?before=garbage").status_code == 400


# --- repeat callers -----------------------------------------------------------------------------

def test_the_form_says_when_a_number_has_called_before(app, client, operator):
    first = start(client)
    assert post_edit(client, first, complete(caller_phone=PHONE, suicidal_intent="yes",
                                             safety_988="y")).status_code == 302
    second = start(client)
    token = form_token(client, second)
    answer = client.post("/calls/repeat-check", headers={"X-CSRFToken": token},
                         data={"phone": "415.555.0134", "call_id": str(second)}).get_json()
    assert answer["count"] == 1 and answer["last_risk"] == "high" and answer["url"] == f"/calls/{first}"
    assert "called before" in answer["message"]
    none = client.post("/calls/repeat-check", headers={"X-CSRFToken": token},
                       data={"phone": "(212) 555-0199"}).get_json()
    assert none == {"count": 0}
    lookups = audit(app, "call.phone_lookup")
    assert [json.loads(e.details)["matches"] for e in lookups] == [1, 0]
    assert all("0134" not in (e.details or "") for e in lookups)  # never the number
    assert client.post("/calls/repeat-check", headers={"X-CSRFToken": token},
                       data={"phone": "12"}).status_code == 400
    assert client.post("/calls/repeat-check", data={"phone": PHONE}).status_code == 400  # no CSRF token


# --- callbacks ----------------------------------------------------------------------------------

def test_a_callback_in_one_reveal_and_one_form(app, client, operator):
    followup_id = make_followup(app, operator.id)
    with app.app_context():
        call = db.session.get(FollowUp, followup_id).call
        call.caller_phone = "4155550134"
        db.session.commit()
    token = csrf_token(client, "/followups/")
    page = client.post(f"/followups/{followup_id}/reveal", data={"csrf_token": token})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'href="tel:4155550134"' in html and "(415) 555-0134" in html
    assert "Returning your call from the pharmacy." in html  # the safe wording beside it
    [reveal] = audit(app, "call.contact_revealed")
    assert json.loads(reveal.details) == {"reason": "callback"}
    assert "555-0134" not in client.get(f"/followups/{followup_id}").get_data(as_text=True)  # this response only
    response = client.post(f"/followups/{followup_id}/callback",
                           data={"csrf_token": token, "outcome": "reached", "note": "Safe; starts taper Monday."})
    assert response.status_code == 302 and response.headers["Location"] == "/followups/"
    with app.app_context():
        followup = db.session.get(FollowUp, followup_id)
        assert followup.status == FollowUpStatus.DONE and followup.attempts == 1
        assert db.session.execute(select(FollowUpAttempt)).scalar_one().outcome == AttemptOutcome.REACHED


def test_no_answer_keeps_the_follow_up_open_and_voicemail_needs_consent(app, client, operator):
    followup_id = make_followup(app, operator.id, voicemail=False)
    token = csrf_token(client, "/followups/")
    page = client.get(f"/followups/{followup_id}").get_data(as_text=True)
    assert 'value="left_voicemail"' not in page.split('id="callback-form"')[1].split("</form>")[0]
    response = client.post(f"/followups/{followup_id}/callback", data={"csrf_token": token, "outcome": "no_answer"})
    assert response.status_code == 302 and response.headers["Location"] == f"/followups/{followup_id}"
    refused = client.post(f"/followups/{followup_id}/callback",
                          data={"csrf_token": token, "outcome": "left_voicemail"})
    assert refused.status_code == 400
    kept = client.post(f"/followups/{followup_id}/callback",
                       data={"csrf_token": token, "outcome": "reached", "keep_open": "y"})
    assert kept.status_code == 302
    with app.app_context():
        followup = db.session.get(FollowUp, followup_id)
        assert followup.status == FollowUpStatus.OPEN and followup.attempts == 2
    assert client.post(f"/followups/{followup_id}/callback",
                       data={"csrf_token": token, "outcome": "teleported"}).status_code == 400


# --- the directory: who takes Medi-Cal near this caller ------------------------------------------

def add_resource(app, name: str, zip_code: str | None, payers: str, kind=ResourceKind.DETOX, **kw) -> int:
    with app.app_context():
        r = Resource(name=name, kind=kind, zip=zip_code, payers=payers, phone="(310) 555-0100",
                     hours="24/7 intake", **kw)
        db.session.add(r)
        db.session.commit()
        return r.id


def test_search_by_payer_and_distance_from_a_zip(app, client, operator):
    malibu = add_resource(app, "Malibu Detox", "90265", "medi_cal,private")
    sf = add_resource(app, "Mission Detox", "94110", "medi_cal")
    private_only = add_resource(app, "Santa Monica Private", "90401", "private")
    free = add_resource(app, "Venice Free Clinic", "90291", "free,sliding_scale", kind=ResourceKind.OUTPATIENT)
    with app.app_context():
        ranked = find_near("", None, "medi_cal", "90401", None, 10)
        assert [r.id for r, _ in ranked] == [malibu, sf]
        assert ranked[0][1] < 20 < 300 < ranked[1][1]
        assert [r.id for r, _ in find_near("", None, "medi_cal", "90401", 50, 10)] == [malibu]
        assert [r.id for r, _ in find_near("", None, "uninsured", "90401", None, 10)] == [free]
        assert private_only not in [r.id for r, _ in find_near("", None, "medicare", "90401", None, 10)]
    page = client.get("/resources/?payer=medi_cal&near=90401&within=25").get_data(as_text=True)
    assert "Malibu Detox" in page and "Mission Detox" not in page and "Santa Monica Private" not in page
    assert "24/7 intake" in page and 'href="tel:3105550100"' in page and " mi" in page
    picker = client.get("/resources/search.json?q=detox&near=90401&payer=medi_cal").get_json()["results"]
    assert [r["name"] for r in picker] == ["Malibu Detox", "Mission Detox"]
    assert picker[0]["phone"] == "(310) 555-0100" and picker[0]["hours"] == "24/7 intake"
    assert picker[0]["distance_label"].endswith(" mi") and picker[0]["distance_miles"] < 20


@pytest.mark.parametrize("query", ["near=00000", "near=abcde", "near=9026", "payer=bitcoin", "within=7",
                                   "near=90265%00"])
def test_bad_directory_filters_are_refused(app, client, operator, query):
    assert client.get(f"/resources/?{query}").status_code == 400
    assert client.get(f"/resources/search.json?q=ab&{query}").status_code == 400


# --- one clock ----------------------------------------------------------------------------------

def test_times_people_type_are_the_facility_wall_clock(app):
    with app.app_context():
        assert parse_local("2026-12-07T10:00") == datetime(2026, 12, 7, 18, 0, tzinfo=UTC)  # PST
        assert parse_local("2026-07-07 10:00") == datetime(2026, 7, 7, 17, 0, tzinfo=UTC)  # PDT
        assert parse_local("2026-11-01T01:30") == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)  # the repeated hour
        for bad in ("", "10:00", "2026-12-07T10:00:00", "2026-12-07T10:00Z", "2026-02-30T10:00", "tomorrow"):
            assert parse_local(bad) is None, bad
        assert local_time(datetime(2026, 12, 7, 18, 0, tzinfo=UTC)) == "2026-12-07 10:00 PST"
        assert local_time(datetime(2026, 7, 7, 17, 0, tzinfo=UTC)) == "2026-07-07 10:00 PDT"


def test_a_follow_up_typed_at_ten_shows_at_ten(app, client, operator):
    call_id = start(client)
    assert post_edit(client, call_id, complete(consent_callback="y", safe_times="Weekdays 9-11am",
                                               followup_due_at="2026-12-08T10:00")).status_code == 302
    with app.app_context():
        followup_id = db.session.execute(select(FollowUp.id)).scalar_one()
    page = client.get(f"/followups/{followup_id}").get_data(as_text=True)
    assert "2026-12-08 10:00 PST" in page and "18:00" not in page


# --- sessions that keep work --------------------------------------------------------------------

def test_signed_in_pages_carry_the_timeout_dialog_and_its_numbers(app, client, operator):
    page = client.get("/calls/new").get_data(as_text=True)
    assert 'id="session-dialog"' in page and 'role="alertdialog"' in page and "Stay signed in" in page
    assert 'data-session-warn="120"' in page and "js/session.js" in page
    left = int(page.split('data-session-left="')[1].split('"')[0])
    assert 880 <= left <= 900
    assert 'id="session-dialog"' not in app.test_client().get("/login").get_data(as_text=True)


def test_stay_signed_in_restarts_the_idle_clock(app, client, operator):
    with client.session_transaction() as session:
        session[SEEN_AT] = int(time.time()) - 800
    token = csrf_token(client, "/account")
    with client.session_transaction() as session:
        session[SEEN_AT] = int(time.time()) - 800
    answer = client.post("/session/keepalive", headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert answer.status_code == 200 and answer.get_json() == {"seconds_left": 900}
    with client.session_transaction() as session:
        assert int(time.time()) - session[SEEN_AT] < 5


def test_a_form_posted_after_the_session_ended_comes_back_to_its_page(app, client, operator):
    call_id = start(client)
    token = form_token(client, call_id)
    with client.session_transaction() as session:
        session[SEEN_AT] = int(time.time()) - 16 * 60  # idle for 16 minutes
    response = client.post(f"/calls/{call_id}/edit", data={"csrf_token": token, "notes": "typed while away",
                                                          "_resume_page": f"/calls/{call_id}/edit"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next=%2Fcalls%2F{call_id}%2Fedit%3Fresumed%3D1"
    assert get_call(app, call_id).notes is None  # nothing was saved by a signed-out post
    login_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session ended after a period of inactivity" in login_page
    # After signing in again, the page is the form, with the sentence that explains it (shown by js/session.js).
    assert login(client, operator.email, next_url=f"/calls/{call_id}/edit?resumed=1").headers["Location"] \
        == f"/calls/{call_id}/edit?resumed=1"
    page = client.get(f"/calls/{call_id}/edit?resumed=1").get_data(as_text=True)
    assert 'id="session-resumed"' in page and "What you typed before is back" in page


@pytest.mark.parametrize("page", ["https://evil.example/x", "//evil.example/x", "/\\evil", "javascript:alert(1)"])
def test_the_resume_page_must_be_a_path_here(app, client, operator, page):
    call_id = start(client)
    token = form_token(client, call_id)
    with client.session_transaction() as session:
        session[SEEN_AT] = int(time.time()) - 16 * 60
    response = client.post(f"/calls/{call_id}/edit", data={"csrf_token": token, "_resume_page": page})
    assert response.headers["Location"] == f"/login?next=%2Fcalls%2F{call_id}%2Fedit"


def test_a_script_asking_after_the_session_ended_gets_401(app, client, operator):
    call_id = start(client)
    with client.session_transaction() as session:
        session[SEEN_AT] = int(time.time()) - 16 * 60
    response = client.get(f"/calls/{call_id}/live.json", headers={"Accept": "application/json"})
    assert response.status_code == 401 and response.get_json() == {"error": "signed out"}


def test_the_menu_counts_urgent_calls_waiting_up_to_its_cap(app, make_user):
    """The supervisors' menu badge: unreviewed urgent calls, live drafts included, read from the index
    with a limit, never past ``cap + 1`` ("99+"). (Not a COUNT: the list pages promise never to count.)"""
    from intake.calls import escalation
    from intake.calls.models import Call, CallStatus, RiskLevel

    operator = make_user(Role.OPERATOR).id
    with app.app_context():
        now = datetime.now(UTC)
        for i, (status, reviewed) in enumerate([(CallStatus.FINAL, None), (CallStatus.DRAFT, None),
                                                (CallStatus.FINAL, None), (CallStatus.FINAL, now)]):
            db.session.add(Call(operator_id=operator, status=status, started_at=now - timedelta(minutes=i),
                                risk_level=RiskLevel.HIGH, urgent=True, urgent_reviewed_at=reviewed))
        db.session.add(Call(operator_id=operator, status=CallStatus.FINAL, started_at=now, risk_level=RiskLevel.LOW))
        db.session.commit()
        assert escalation.waiting_count() == 3  # the reviewed one and the ordinary one are not waiting
        assert escalation.waiting_count(cap=1) == 2  # "1+": the count stops one past the cap
        assert escalation.waiting_count(cap=3) == 3
