"""The intake form: non-data calls in one press, data calls drafted, autosaved and finalized,
validation that saves all or nothing, encryption at rest, the edit window and its audit."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from intake.audit.models import AuditEvent
from intake.calls.models import (
    Call,
    CallStatus,
    CallTask,
    CallType,
    EmergencyDisclosure,
    FollowUp,
    Referral,
    RiskLevel,
    Substance,
)
from intake.calls.policy import can_edit_call
from intake.calls.services import CallInvalid, add_followup, finalize_call, start_call
from intake.extensions import db
from intake.resources.models import Resource, ResourceKind
from intake.security.crypto import aad_for, keyring
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, csrf_token, login

NOTE = "Caller said: canary-note-7f3a worried about stopping Klonopin"


def start(client) -> int:
    token = csrf_token(client, "/calls/new")
    response = client.post("/calls/new", data={"csrf_token": token, "channel": "phone"})
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.fullmatch(r"/calls/(\d+)/edit", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def form_token(client, call_id: int) -> str:
    return csrf_token(client, f"/calls/{call_id}/edit")


def complete(**overrides) -> dict:
    """A complete, moderate-risk data call."""
    data = {
        "channel": "phone", "relationship_to_person": "self", "caller_name": "Pat Example",
        "caller_phone": "(415) 555-0134", "zip": "94110", "state": "ca", "age_range": "35_44",
        "substances": ["clonazepam", "alcohol"], "withdrawal_symptoms": ["insomnia", "tremor"],
        "concerns": ["taper_help"], "suicidal_thoughts": "no", "suicidal_intent": "", "suicide_plan": "",
        "access_to_means": "", "recent_attempt": "", "medical_danger": "no",
        "disposition": "information_given", "notes": NOTE, "action": "finalize",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def post_edit(client, call_id: int, data: dict, token: str | None = None):
    return client.post(f"/calls/{call_id}/edit", data={"csrf_token": token or form_token(client, call_id), **data})


def get_call(app, call_id: int) -> Call:
    with app.app_context():
        call = db.session.get(Call, call_id)
        db.session.expunge(call)
        return call


def audit_actions(app, call_id: int) -> list[tuple[str, dict]]:
    with app.app_context():
        rows = db.session.execute(select(AuditEvent).where(AuditEvent.object_type == "call",
                                                           AuditEvent.object_id == str(call_id))
                                  .order_by(AuditEvent.seq)).scalars()
        return [(e.action, json.loads(e.details)) for e in rows]


@pytest.fixture()
def operator(login_as) -> User:
    return login_as(Role.OPERATOR)


def test_a_non_data_call_is_one_post(app, client, operator):
    token = csrf_token(client, "/calls/new")
    assert b"Hang-up" in client.get("/calls/new").data
    response = client.post("/calls/new/non-data", data={"csrf_token": token, "call_type": "hang_up",
                                                        "channel": "phone"})
    assert response.status_code == 302 and response.headers["Location"] == "/calls/new"
    assert b"Hang-up call logged" in client.get("/calls/new").data
    with app.app_context():
        call = db.session.execute(select(Call)).scalar_one()
        assert call.call_type == CallType.HANG_UP and call.status == CallStatus.FINAL
        assert call.finalized_at is not None and call.operator_id == operator.id
    assert audit_actions(app, call.id)[0][0] == "call.logged_non_data"


def test_starting_a_call_writes_a_draft_and_its_audit_event(app, client, operator):
    """The call's row and its audit event, as the form's POST writes them (one INSERT each, not the
    ORM's flush: intake.calls.services.start_call): every default filled, the event chained."""
    from intake.audit.services import verify_chain

    token = csrf_token(client, "/calls/new")
    before = datetime.now(UTC)
    response = client.post("/calls/new", data={"csrf_token": token, "channel": "chat"},
                           environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 302
    call_id = int(re.fullmatch(r"/calls/(\d+)/edit", response.headers["Location"]).group(1))
    call = get_call(app, call_id)
    assert (call.operator_id, call.status, call.call_type, call.channel) == (
        operator.id, CallStatus.DRAFT, CallType.DATA, "chat")
    assert before <= call.started_at <= datetime.now(UTC) and call.created_at >= before
    assert call.uid and len(call.uid) >= 16 and call.risk_level == RiskLevel.NONE
    assert call.overdose_risk is False and call.urgent is False and call.safety_988 is False
    assert call.caller_name is None and call.notes is None and call.ended_at is None
    with app.app_context():
        event = db.session.execute(select(AuditEvent).where(AuditEvent.object_type == "call",
                                                            AuditEvent.object_id == str(call_id))).scalar_one()
        assert (event.action, event.actor_id, event.actor_role, event.ip_address, event.details) == (
            "call.started", operator.id, "operator", "203.0.113.7", "{}")
        assert verify_chain().ok


@pytest.mark.parametrize("path", ["/calls/new", "/calls/new/non-data"])
@pytest.mark.parametrize("token", [None, "not-a-token", "other-session"])
def test_starting_or_logging_a_call_needs_the_sessions_csrf_token(app, client, operator, make_user, path, token):
    """The forms do not check the token themselves (CSRFProtect does, before the view): a missing,
    forged or another session's token is refused and nothing is written."""
    if token == "other-session":
        other = app.test_client()
        login(other, make_user(Role.OPERATOR).email)
        token = csrf_token(other, "/calls/new")
    csrf_token(client, "/calls/new")  # this session has a token of its own
    data = {"channel": "phone", "call_type": "hang_up"} | ({"csrf_token": token} if token else {})
    with app.app_context():
        before = (db.session.execute(select(func.count()).select_from(Call)).scalar_one(),
                  db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())
    assert client.post(path, data=data).status_code == 400
    with app.app_context():
        assert (db.session.execute(select(func.count()).select_from(Call)).scalar_one(),
                db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()) == before


def test_a_data_call_cannot_be_logged_as_non_data(client, operator):
    token = csrf_token(client, "/calls/new")
    assert client.post("/calls/new/non-data", data={"csrf_token": token, "call_type": "data",
                                                    "channel": "phone"}).status_code == 400


def test_a_complete_data_call_is_finalized(app, client, operator):
    call_id = start(client)
    page = client.get(f"/calls/{call_id}/edit").get_data(as_text=True)
    assert "Clonazepam (Klonopin)" in page
    assert page.index("Clonazepam (Klonopin)") < page.index("Alcohol")  # benzodiazepines first
    assert 'nonce="' in page and "js/call-form.js" in page
    response = post_edit(client, call_id, complete())
    assert response.status_code == 302, response.get_data(as_text=True)
    assert f"Call #{call_id} finalized" in client.get(response.headers["Location"]).get_data(as_text=True)
    call = get_call(app, call_id)
    assert call.status == CallStatus.FINAL and call.finalized_at is not None
    assert call.ended_at is not None and call.duration_seconds is not None and call.duration_seconds >= 0
    assert call.relationship_to_person == "self" and call.zip == "94110" and call.state == "CA"
    assert {s.substance for s in call.substances} == {Substance.CLONAZEPAM, Substance.ALCOHOL}
    assert call.overdose_risk is True  # clonazepam + alcohol
    assert call.risk_level == RiskLevel.MODERATE  # co-use alone is moderate
    assert call.withdrawal_symptoms == "insomnia,tremor"
    assert call.caller_phone == "4155550134"
    with app.app_context():
        assert call.caller_phone_index == keyring().blind_index("call.phone", "4155550134")
    assert call.urgent is False
    actions = [a for a, _ in audit_actions(app, call_id)]
    assert actions == ["call.started", "call.finalized"]


def test_notes_are_encrypted_at_rest(app, client, operator):
    call_id = start(client)
    assert post_edit(client, call_id, complete()).status_code == 302
    with app.app_context():
        raw = db.session.execute(text("SELECT notes, caller_name, caller_phone, uid FROM calls WHERE id = :id"),
                                 {"id": call_id}).one()
        assert raw.notes and "canary-note-7f3a" not in raw.notes
        assert "Pat Example" not in raw.caller_name and "4155550134" not in raw.caller_phone
        assert keyring().open(raw.notes, aad_for("calls", "notes", raw.uid)) == NOTE


def test_substances_are_replaced_not_added(app, client, operator):
    call_id = start(client)
    post_edit(client, call_id, complete(action="draft", substances=["clonazepam", "opioids"]))
    post_edit(client, call_id, complete(action="draft", substances=["cannabis"]))
    call = get_call(app, call_id)
    assert [s.substance for s in call.substances] == [Substance.CANNABIS]
    assert call.overdose_risk is False


def test_risk_level_is_computed_on_each_save(app, client, operator):
    call_id = start(client)
    post_edit(client, call_id, complete(action="draft", suicidal_thoughts="yes", access_to_means="yes"))
    assert get_call(app, call_id).risk_level == RiskLevel.HIGH
    post_edit(client, call_id, complete(action="draft", medical_danger="yes"))
    assert get_call(app, call_id).risk_level == RiskLevel.IMMINENT


def test_the_risk_level_is_shown_and_the_first_field_has_focus(app, client, operator):
    call_id = start(client)
    post_edit(client, call_id, complete(action="draft", suicide_plan="yes"))
    page = client.get(f"/calls/{call_id}/edit").get_data(as_text=True)
    assert '<span class="risk-badge" id="risk-level" data-level="high">High</span>' in page
    assert re.search(r'<select[^>]*autofocus[^>]*id="channel"|<select[^>]*id="channel"[^>]*autofocus', page)


def test_a_refused_finalize_lists_each_problem_linked_to_its_field(app, client, operator):
    """The summary at the top names what stopped the call being finished, links each item to its field,
    and loads the script that moves focus to it (the accessibility walk checks the focus in a browser)."""
    call_id = start(client)
    for data, field in ((complete(zip="9411"), "zip"), (complete(disposition=""), "disposition")):
        response = post_edit(client, call_id, data)
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        summary = page[page.index('class="alert alert-danger error-summary"'):]
        summary = summary[:summary.index("</div>")]
        assert f'href="#{field}"' in summary, summary
    assert "js/form-errors.js" in page
    assert get_call(app, call_id).status == CallStatus.DRAFT


def test_a_finalized_call_is_not_autosaved_and_a_non_data_call_has_no_form(app, client, operator):
    call_id = start(client)
    assert post_edit(client, call_id, complete()).status_code == 302
    token = csrf_token(client, "/calls/new")
    response = client.post(f"/calls/{call_id}/draft", headers={"X-CSRFToken": token}, data={"notes": "late"})
    assert response.status_code == 409 and get_call(app, call_id).notes == NOTE
    client.post("/calls/new/non-data", data={"csrf_token": token, "call_type": "silent", "channel": "chat"})
    with app.app_context():
        silent = db.session.execute(select(Call).where(Call.call_type == CallType.SILENT)).scalar_one()
        assert silent.channel == "chat"
    assert client.get(f"/calls/{silent.id}/edit").status_code == 403


def test_high_risk_without_a_safety_action_is_refused_and_nothing_changes(app, client, operator):
    call_id = start(client)
    before = get_call(app, call_id)
    response = post_edit(client, call_id, complete(suicidal_intent="yes", zip="90210"))
    assert response.status_code == 400
    assert "needs at least one safety action" in response.get_data(as_text=True)
    after = get_call(app, call_id)
    assert after.status == CallStatus.DRAFT and after.zip is None and after.notes is None
    assert after.updated_at == before.updated_at
    assert [a for a, _ in audit_actions(app, call_id)] == ["call.started"]


def test_high_risk_with_a_safety_action_is_urgent(app, client, operator):
    call_id = start(client)
    response = post_edit(client, call_id, complete(suicidal_intent="yes", safety_988="y"))
    assert response.status_code == 302
    call = get_call(app, call_id)
    assert call.risk_level == RiskLevel.HIGH and call.urgent is True and call.safety_988 is True


def test_a_moderate_call_is_not_urgent(app, client, operator):
    call_id = start(client)
    post_edit(client, call_id, complete(suicidal_thoughts="yes", suicidal_intent="no", suicide_plan="no",
                                        access_to_means="no", recent_attempt="no"))
    call = get_call(app, call_id)
    assert call.risk_level == RiskLevel.MODERATE and call.urgent is False


def test_an_emergency_disclosure_is_recorded(app, client, operator):
    call_id = start(client)
    response = post_edit(client, call_id, complete(
        medical_danger="yes", safety_911="y", disclosure_to="County EMS dispatcher",
        disclosure_affiliation="County EMS", disclosure_information="Caller name and address",
        disclosure_reason="Seizure in progress",
        disclosure_at="2026-11-21T16:05"))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        d = db.session.execute(select(EmergencyDisclosure)).scalar_one()
        assert d.call_id == call_id and d.recorded_by_id == operator.id and d.disclosed_by_id == operator.id
        assert d.affiliation == "County EMS"
        assert d.disclosed_to == "County EMS dispatcher" and d.reason == "Seizure in progress"
        assert d.disclosed_at == datetime(2026, 11, 22, 0, 5, tzinfo=UTC)  # 16:05 Pacific
        raw = db.session.execute(text("SELECT disclosed_to, information, reason FROM emergency_disclosures")).one()
        # Whole phrases: a short one ("EMS") turns up in random ciphertext now and then.
        plain = ("County EMS dispatcher", "Caller name and address", "Seizure in progress")
        assert all(p not in v for v in raw for p in plain)


def test_a_half_filled_disclosure_is_refused(app, client, operator):
    call_id = start(client)
    response = post_edit(client, call_id, complete(disclosure_to="Police"))
    assert response.status_code == 400 and "nature of the emergency" in response.get_data(as_text=True)
    assert get_call(app, call_id).status == CallStatus.DRAFT


def test_a_follow_up_needs_consent(app, client, operator):
    call_id = start(client)
    response = post_edit(client, call_id, complete(followup_due_at="2026-12-01T10:00"))
    assert response.status_code == 400
    assert "needs the caller&#39;s consent" in response.get_data(as_text=True)
    assert get_call(app, call_id).status == CallStatus.DRAFT
    response = post_edit(client, call_id, complete(followup_due_at="2026-12-01T10:00", consent_callback="y",
                                                   followup_assignee=str(operator.id)))
    assert response.status_code == 302
    with app.app_context():
        f = db.session.execute(select(FollowUp)).scalar_one()
        assert f.call_id == call_id and f.assignee_id == operator.id


def test_add_followup_service_refuses_without_consent(app, make_user):
    op = make_user(Role.OPERATOR)
    with app.app_context():
        user = db.session.get(User, op.id)
        call = db.session.get_one(Call, start_call(user))
        with pytest.raises(CallInvalid):
            add_followup(call, datetime(2026, 12, 1, tzinfo=UTC), None, user)
        call.consent_text = True
        assert add_followup(call, datetime(2026, 12, 1, tzinfo=UTC), user, user).assignee_id == user.id


def test_end_before_start_is_refused(app, client, operator):
    call_id = start(client)
    response = post_edit(client, call_id, complete(ended_at="2001-01-01T00:00"))
    assert response.status_code == 400
    assert "cannot be before the start" in response.get_data(as_text=True)
    assert get_call(app, call_id).status == CallStatus.DRAFT


@pytest.mark.parametrize("bad", ["00000", "1234", "123456", "abcde", "9411O", "000 1", "00012"])
def test_impossible_zips_are_refused(app, client, operator, bad):
    call_id = start(client)
    response = post_edit(client, call_id, complete(zip=bad))
    assert response.status_code == 400
    assert get_call(app, call_id).zip is None


def test_bad_state_is_refused(app, client, operator):
    call_id = start(client)
    assert post_edit(client, call_id, complete(state="C4")).status_code == 400


def test_100_kb_of_notes_is_a_field_error(app, client, operator):
    call_id = start(client)
    response = post_edit(client, call_id, complete(notes="x" * 100_000))
    assert response.status_code == 400
    assert "At most 10,000 characters" in response.get_data(as_text=True)
    assert get_call(app, call_id).notes is None
    assert post_edit(client, call_id, complete(notes="x" * 10_000)).status_code == 302


def test_html_and_sql_are_stored_verbatim_and_shown_escaped(app, client, operator):
    hostile = "<script>alert(1)</script> '; DROP TABLE calls; --"
    call_id = start(client)
    assert post_edit(client, call_id, complete(notes=hostile, caller_name=hostile)).status_code == 302
    call = get_call(app, call_id)
    assert call.notes == hostile and call.caller_name == hostile
    page = client.get(f"/calls/{call_id}/edit").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_post_without_csrf_is_refused(app, client, operator):
    call_id = start(client)
    assert client.post(f"/calls/{call_id}/edit", data=complete()).status_code == 400
    assert client.post(f"/calls/{call_id}/draft", data={"zip": "94110"}).status_code == 400
    assert client.post("/calls/new", data={"channel": "phone"}).status_code == 400
    assert get_call(app, call_id).status == CallStatus.DRAFT


def test_autosave_answers_json_and_the_draft_survives(app, client, operator):
    call_id = start(client)
    token = form_token(client, call_id)
    response = client.post(f"/calls/{call_id}/draft", headers={"X-CSRFToken": token},
                           data={"zip": "94110", "notes": "half a thought", "substances": ["clonazepam", "opioids"],
                                 "suicidal_thoughts": "yes", "state": "C"})
    assert response.status_code == 200
    body = response.get_json()
    # Thoughts reported with intent, plan, means and attempt not yet asked: high until asked (fail safe).
    assert datetime.fromisoformat(body["saved_at"]) and body["risk_level"] == "high"
    assert body["unanswered_required"] == ["suicidal_intent", "suicide_plan", "access_to_means", "recent_attempt",
                                           "medical_danger"]
    assert body["overdose_risk"] is True and body["skipped"] == ["state"]
    call = get_call(app, call_id)
    assert call.status == CallStatus.DRAFT and call.zip == "94110" and call.state is None
    page = client.get(f"/calls/{call_id}/edit").get_data(as_text=True)  # the browser reloads
    assert 'value="94110"' in page and "half a thought" in page
    assert re.search(r'value="clonazepam"[^>]*checked|checked[^>]*value="clonazepam"', page)
    # Autosaves are not audited; reaching high risk while live is (it put the call on the urgent queue).
    assert [a for a, _ in audit_actions(app, call_id)] == ["call.started", "call.escalated"]
    assert call.urgent is True


def test_disclosure_and_followup_boxes_survive_a_crash_but_become_records_only_at_finalize(app, client, operator):
    call_id = start(client)
    token = form_token(client, call_id)
    typed = {"disclosure_to": "County dispatch, unit 12", "disclosure_affiliation": "County EMS",
             "disclosure_information": "caller address",
             "disclosure_reason": "seizure in progress", "followup_due_at": "2026-12-01T10:30"}
    assert client.post(f"/calls/{call_id}/draft", headers={"X-CSRFToken": token}, data=typed).status_code == 200
    with app.app_context():
        stored = db.session.execute(text("SELECT draft_extras FROM calls WHERE id = :i"), {"i": call_id}).scalar_one()
        assert "County dispatch" not in stored  # encrypted like every free text
        assert db.session.execute(select(EmergencyDisclosure)).first() is None  # not a record yet
    page = client.get(f"/calls/{call_id}/edit").get_data(as_text=True)  # the browser crashed and came back
    assert "County dispatch, unit 12" in page and "seizure in progress" in page and "2026-12-01T10:30" in page
    final = complete(safety_911="y", medical_danger="yes", consent_callback="y", **typed)
    final["disclosure_at"] = "2026-11-20T09:00"
    response = post_edit(client, call_id, final)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        disclosure = db.session.execute(select(EmergencyDisclosure)).scalar_one()
        assert disclosure.disclosed_to == "County dispatch, unit 12"
    assert get_call(app, call_id).draft_extras is None


def test_save_draft_button_works_without_javascript(app, client, operator):
    call_id = start(client)
    response = post_edit(client, call_id, {"action": "draft", "zip": "9411", "notes": "kept"})
    assert response.status_code == 302 and response.headers["Location"] == f"/calls/{call_id}/edit"
    call = get_call(app, call_id)
    assert call.notes == "kept" and call.zip is None and call.status == CallStatus.DRAFT


def test_referrals_and_tasks_without_javascript(app, client, operator):
    with app.app_context():
        detox = Resource(name="Bay Detox", kind=ResourceKind.DETOX, city="Oakland")
        retired = Resource(name="Closed Place", kind=ResourceKind.OTHER, active=False)
        db.session.add_all([detox, retired])
        db.session.commit()
        detox_id, retired_id = detox.id, retired.id
    call_id = start(client)
    assert b"Bay Detox" in client.get(f"/calls/{call_id}/edit").data
    post_edit(client, call_id, complete(action="draft", referral_add=str(detox_id), referral_add_status="given",
                                        insurance_help="y", insurance_note="Medi-Cal question"))
    response = post_edit(client, call_id, complete(referral_resource_id=[str(detox_id)],
                                                   referral_status=["contacted"], insurance_help="y",
                                                   insurance_note="Medi-Cal question", transport_help="y"))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        referral = db.session.execute(select(Referral)).scalar_one()
        assert referral.resource_id == detox_id and referral.status == "contacted"
        tasks = {t.kind.value: t.note for t in db.session.execute(select(CallTask)).scalars()}
        assert tasks == {"insurance": "Medi-Cal question", "transport": None}
    # A retired (or unknown) resource cannot be referred to.
    other = start(client)
    assert post_edit(client, other, complete(referral_resource_id=[str(retired_id)],
                                             referral_status=["given"])).status_code == 400


@pytest.mark.parametrize("bad", [" ", "abc", "-1", "99999999999999999999", "1.5", "<script>"])
def test_an_unknown_new_referral_is_a_field_error_not_a_500(app, client, operator, bad):
    """Found by the fuzz (tests/fuzz): a finalize with a non-id in "Add a referral" parsed it as an int."""
    call_id = start(client)
    response = post_edit(client, call_id, complete(referral_add=bad, referral_add_status="given"))
    assert response.status_code == 400
    assert "Choose an answer from the list." in response.get_data(as_text=True)
    assert get_call(app, call_id).status == CallStatus.DRAFT
    with app.app_context():
        assert db.session.execute(select(Referral)).first() is None


@pytest.mark.parametrize("bad", [" ", "_", "-787", "A" * 300, "<script>"])
def test_a_new_referral_with_an_unknown_status_is_skipped_on_a_draft_not_a_500(app, client, operator, bad):
    """Found by the fuzz (tests/fuzz): a draft skipped the refused status field but still added the
    referral with it, and the service's ReferralStatus(...) raised."""
    with app.app_context():
        detox = Resource(name="Bay Detox", kind=ResourceKind.DETOX, city="Oakland")
        db.session.add(detox)
        db.session.commit()
        detox_id = detox.id
    call_id = start(client)
    token = form_token(client, call_id)
    data = complete(action="draft", referral_add=str(detox_id), referral_add_status=bad)
    autosave = client.post(f"/calls/{call_id}/draft", headers={"X-CSRFToken": token}, data=data)
    assert autosave.status_code == 200
    assert "referral_add_status" in autosave.get_json()["skipped"]
    assert post_edit(client, call_id, data, token).status_code in (200, 302, 400)
    with app.app_context():
        assert db.session.execute(select(Referral)).first() is None
    assert get_call(app, call_id).notes == NOTE  # the rest of the draft was kept


def test_another_operator_cannot_save_my_draft(app, client, operator, make_user):
    call_id = start(client)
    other_client = app.test_client()
    other = make_user(Role.OPERATOR)
    login(other_client, other.email)
    token = csrf_token(other_client, "/calls/new")
    assert other_client.get(f"/calls/{call_id}/edit").status_code == 403
    assert other_client.post(f"/calls/{call_id}/draft", headers={"X-CSRFToken": token},
                             data={"notes": "not mine"}).status_code == 403
    assert other_client.post(f"/calls/{call_id}/edit", data={"csrf_token": token, **complete()}).status_code == 403
    assert other_client.get("/calls/999999/edit").status_code == 404
    assert get_call(app, call_id).notes is None


def test_requesters_are_refused_every_call_route(app, client, login_as, make_user):
    login_as(Role.REQUESTER)
    token = csrf_token(client, "/account")
    assert client.get("/calls/new").status_code == 403
    for path in ("/calls/new", "/calls/new/non-data", "/calls/1/edit", "/calls/1/draft"):
        assert client.post(path, data={"csrf_token": token, "call_type": "test", "channel": "phone"}).status_code == 403


def _finalized_at(app, operator_id: int, ago: timedelta) -> int:
    """A call the operator finalized ``ago`` (time_machine travels back to finalize it)."""
    with app.app_context():
        user = db.session.get(User, operator_id)
        with time_machine.travel(datetime.now(UTC) - ago, tick=False):
            call = db.session.get_one(Call, start_call(user))
            finalize_call(call, {"channel": "phone", "relationship_to_person": "family",
                                 "disposition": "referred", "zip": "94110"}, user)
        db.session.commit()
        return call.id


def test_edit_window_for_the_operator_and_for_admins(app, client, operator, make_user):
    recent = _finalized_at(app, operator.id, timedelta(hours=23))
    old = _finalized_at(app, operator.id, timedelta(hours=25))
    assert client.get(f"/calls/{recent}/edit").status_code == 200
    assert client.get(f"/calls/{old}/edit").status_code == 403
    response = post_edit(client, recent, complete(disposition="referred", zip="94110", notes=None,
                                                  caller_name=None, caller_phone=None, state=None,
                                                  age_range=None, substances=None, withdrawal_symptoms=None,
                                                  concerns=None, relationship_to_person="friend"))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert f"Call #{recent} updated" in client.get("/calls/new").get_data(as_text=True)
    admin_client = app.test_client()
    admin = make_user(FULL_ADMIN)
    login(admin_client, admin.email)
    assert admin_client.get(f"/calls/{old}/edit").status_code == 200
    response = post_edit(admin_client, old, complete(disposition="referred", zip="94110", notes="Reviewed",
                                                     relationship_to_person="family", caller_name=None,
                                                     caller_phone=None, state=None, age_range=None,
                                                     substances=None, withdrawal_symptoms=None, concerns=None))
    assert response.status_code == 302
    assert get_call(app, old).notes == "Reviewed"


def test_call_edited_audit_lists_field_names_only(app, client, operator):
    call_id = _finalized_at(app, operator.id, timedelta(hours=1))
    form = client.get(f"/calls/{call_id}/edit").get_data(as_text=True)
    shown_end = re.search(r'name="ended_at" type="datetime-local" value="([^"]+)"', form).group(1)
    response = post_edit(client, call_id, complete(disposition="referred", zip="94110", notes="secret-canary-91",
                                                   ended_at=shown_end, suicidal_thoughts=None, medical_danger=None,
                                                   relationship_to_person="friend", caller_name=None,
                                                   caller_phone=None, state=None, age_range=None,
                                                   substances=None, withdrawal_symptoms=None, concerns=None))
    assert response.status_code == 302
    edited = [d for a, d in audit_actions(app, call_id) if a == "call.edited"]
    assert edited == [{"fields": ["notes", "relationship_to_person"]}]
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.details.contains("secret-canary"))).scalar() == 0


class FakeUser:
    def __init__(self, role, uid):
        self.roles = frozenset(role) if isinstance(role, (list, tuple)) else frozenset({role})
        self.id, self.is_authenticated, self.is_active = uid, True, True


NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _call(status, operator_id=1, finalized_ago=None):
    return Call(status=status, operator_id=operator_id,
                finalized_at=None if finalized_ago is None else NOW - finalized_ago)


@pytest.mark.parametrize(("user", "call", "allowed"), [
    (FakeUser(Role.OPERATOR, 1), _call(CallStatus.DRAFT), True),
    (FakeUser(Role.OPERATOR, 2), _call(CallStatus.DRAFT), False),
    (FakeUser(Role.OPERATOR, 1), _call(CallStatus.FINAL, finalized_ago=timedelta(hours=23)), True),
    (FakeUser(Role.OPERATOR, 1), _call(CallStatus.FINAL, finalized_ago=timedelta(hours=24)), True),
    (FakeUser(Role.OPERATOR, 1), _call(CallStatus.FINAL, finalized_ago=timedelta(hours=25)), False),
    (FakeUser(Role.OPERATOR, 2), _call(CallStatus.FINAL, finalized_ago=timedelta(hours=1)), False),
    (FakeUser(Role.SUPERVISOR, 9), _call(CallStatus.FINAL, finalized_ago=timedelta(days=400)), True),
    (FakeUser(Role.SUPERVISOR, 9), _call(CallStatus.DRAFT), True),
    (FakeUser(Role.ADMIN, 9), _call(CallStatus.FINAL, finalized_ago=timedelta(hours=1)), False),
    (FakeUser(Role.RECORDS_CLERK, 1), _call(CallStatus.DRAFT), False),
    (FakeUser(Role.PRIVACY_OFFICER, 9), _call(CallStatus.FINAL, finalized_ago=timedelta(hours=1)), False),
    (FakeUser(Role.REQUESTER, 1), _call(CallStatus.DRAFT), False),
    (None, _call(CallStatus.DRAFT), False),
])
def test_can_edit_call_table(user, call, allowed):
    assert can_edit_call(user, call, NOW) is allowed


hostile_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.sampled_from(["\x00", "a\x00b", "<img src=x onerror=alert(1)>", "' OR 1=1; --", "x" * 20_000,
                     "9" * 400, "2026-13-45T99:99", "-1", "00000", "\ud7ff\ufffd", "ZZ"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=hostile_text, phone=hostile_text, zip_code=hostile_text, state=hostile_text, notes=hostile_text,
       ended=hostile_text, disposition=hostile_text, substance=hostile_text, wording=hostile_text)
def test_hostile_input_never_causes_a_server_error(app, client, operator, name, phone, zip_code, state, notes,
                                                   ended, disposition, substance, wording):
    call_id = _HYPOTHESIS_CALL.get(id(app)) or start(client)
    _HYPOTHESIS_CALL[id(app)] = call_id
    data = complete(caller_name=name, caller_phone=phone, zip=zip_code, state=state, notes=notes, ended_at=ended,
                    disposition=disposition, substances=["clonazepam", substance], safe_wording=wording,
                    referral_resource_id=[substance], referral_status=[disposition], followup_due_at=ended,
                    disclosure_to=name, suicidal_intent=substance)
    response = post_edit(client, call_id, data)
    assert response.status_code < 500, response.get_data(as_text=True)[:2000]
    draft = client.post(f"/calls/{call_id}/draft", headers={"X-CSRFToken": form_token(client, call_id)}, data=data)
    assert draft.status_code < 500


_HYPOTHESIS_CALL: dict[int, int] = {}
