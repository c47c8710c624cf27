"""The follow-up queue: order, filters, the safe-wording page, attempts with consent checks,
assignment, closing, auditing without note text, encrypted notes, and bad input."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text

from intake.audit.models import AuditEvent
from intake.calls.followups import (
    FollowUpError,
    NoConsentError,
    QueueFilter,
    create_followup,
    open_queue,
    record_attempt,
)
from intake.calls.models import AttemptOutcome, Call, CallStatus, FollowUp, FollowUpAttempt, FollowUpStatus
from intake.db_types import utcnow
from intake.extensions import db
from intake.users.models import Role, User
from tests.conftest import csrf_token, login

SAFE_WORDING = "Returning your call from the pharmacy."


def make_followup(app, operator_id: int, *, due_in: timedelta = timedelta(hours=2), assignee_id: int | None = None,
                  callback: bool = True, voicemail: bool = False, text_ok: bool = False,
                  safe_wording: str | None = SAFE_WORDING, safe_times: str | None = "Weekdays after 6 pm") -> int:
    """A finalized call with consent and its follow-up, written directly; returns the follow-up id."""
    with app.app_context():
        call = Call(operator_id=operator_id, status=CallStatus.FINAL, consent_callback=callback,
                    consent_voicemail=voicemail, consent_text=text_ok, safe_wording=safe_wording,
                    safe_times=safe_times)
        db.session.add(call)
        db.session.flush()
        assignee = db.session.get(User, assignee_id) if assignee_id else None
        followup = create_followup(call, utcnow() + due_in, assignee, actor=None)
        db.session.commit()
        return followup.id


@pytest.fixture()
def operator(client, make_user):
    user = make_user(Role.OPERATOR)
    assert login(client, user.email).status_code == 302
    return user


def token(client) -> str:
    return csrf_token(client, "/account")


def audit_rows(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                       .order_by(AuditEvent.seq)).scalars())


def followup_ids_in_order(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'data-followup-id="(\d+)"', html)]


def get_followup(app, followup_id: int) -> FollowUp:
    with app.app_context():
        followup = db.session.get(FollowUp, followup_id)
        db.session.expunge(followup)
        return followup


# The queue ------------------------------------------------------------------------------------


def test_queue_lists_overdue_first_then_due(app, client, operator):
    later = make_followup(app, operator.id, due_in=timedelta(hours=2))
    oldest = make_followup(app, operator.id, due_in=timedelta(hours=-3))
    recent = make_followup(app, operator.id, due_in=timedelta(hours=-1))
    response = client.get("/followups/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert followup_ids_in_order(html) == [oldest, recent, later]
    assert "overdue by 3 hours" in html
    assert "due in 2 hours" in html
    assert html.count("overdue by") == 2


def test_queue_shows_consent_summary_and_safe_times_but_not_the_wording(app, client, operator):
    make_followup(app, operator.id, voicemail=True, text_ok=False, safe_times="Saturdays 10 to noon")
    html = client.get("/followups/").get_data(as_text=True)
    assert "call back / voicemail" in html
    assert "call back / voicemail / text" not in html
    assert "Saturdays 10 to noon" in html
    assert SAFE_WORDING not in html  # only on the follow-up's own page


def test_queue_filters_mine_unassigned_all(app, client, operator, make_user):
    other = make_user(Role.OPERATOR)
    mine = make_followup(app, operator.id, assignee_id=operator.id)
    theirs = make_followup(app, operator.id, assignee_id=other.id)
    nobody = make_followup(app, operator.id)
    assert set(followup_ids_in_order(client.get("/followups/?show=mine").get_data(as_text=True))) == {mine}
    assert set(followup_ids_in_order(client.get("/followups/?show=unassigned").get_data(as_text=True))) == {nobody}
    assert set(followup_ids_in_order(client.get("/followups/?show=all").get_data(as_text=True))) == {
        mine, theirs, nobody}
    assert set(followup_ids_in_order(client.get("/followups/").get_data(as_text=True))) == {mine, theirs, nobody}
    assert client.get("/followups/?show=everything").status_code == 400


def test_closed_followups_leave_the_queue(app, client, operator):
    open_one = make_followup(app, operator.id)
    closed = make_followup(app, operator.id)
    response = client.post(f"/followups/{closed}/close", data={"resolution": "done", "outcome": "",
                                                               "csrf_token": token(client)})
    assert response.status_code == 302
    assert followup_ids_in_order(client.get("/followups/").get_data(as_text=True)) == [open_one]


def test_queue_is_bounded_to_100(app, client, operator):
    with app.app_context():
        call = Call(operator_id=operator.id, status=CallStatus.FINAL, consent_callback=True)
        db.session.add(call)
        db.session.flush()
        now = utcnow()
        db.session.add_all([FollowUp(call_id=call.id, due_at=now + timedelta(minutes=i)) for i in range(105)])
        db.session.commit()
    html = client.get("/followups/").get_data(as_text=True)
    assert len(followup_ids_in_order(html)) == 100
    assert "only the first 100 are shown" in html


def test_queue_query_count_does_not_grow_with_rows(app, client, operator, make_user):
    """No N+1: the queue with 2 rows and with 12 rows (with assignees) costs the same queries."""
    other = make_user(Role.OPERATOR)

    def count_queries() -> int:
        statements = []
        with app.app_context():
            engine = db.engine

        def listener(conn, cursor, statement, params, context, executemany):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get("/followups/").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(statements)

    for assignee in (operator.id, other.id):
        make_followup(app, operator.id, assignee_id=assignee)
    few = count_queries()
    for i in range(10):
        make_followup(app, operator.id, assignee_id=(operator.id, other.id, None)[i % 3])
    assert count_queries() == few


def test_requesters_cannot_see_the_queue(app, client, make_user):
    requester = make_user(Role.REQUESTER)
    login(client, requester.email)
    assert client.get("/followups/").status_code == 403


# The follow-up page ---------------------------------------------------------------------------


def test_page_shows_safe_wording_first_and_is_audited(app, client, operator):
    followup_id = make_followup(app, operator.id, voicemail=True, text_ok=False)
    response = client.get(f"/followups/{followup_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Say only this if someone else answers:" in html
    main = html[html.index('<main'):]
    assert SAFE_WORDING in main
    # The wording comes before everything else on the page: consent, times, attempts, forms.
    assert main.index(SAFE_WORDING) < main.index("Safe times") < main.index("Record an attempt")
    assert "not allowed: do not send a text" in html
    assert "Weekdays after 6 pm" in html
    viewed = audit_rows(app, "followup.viewed")
    assert [(e.object_type, e.object_id, e.actor_id) for e in viewed] == [("followup", str(followup_id), operator.id)]
    assert SAFE_WORDING not in viewed[0].details


def test_safe_wording_is_escaped(app, client, operator):
    followup_id = make_followup(app, operator.id, safe_wording='<script>alert("x")</script> & <b>Sam</b>')
    html = client.get(f"/followups/{followup_id}").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "<b>Sam</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;Sam&lt;/b&gt;" in html


def test_page_without_safe_wording_says_what_to_do(app, client, operator):
    followup_id = make_followup(app, operator.id, safe_wording=None)
    html = client.get(f"/followups/{followup_id}").get_data(as_text=True)
    assert "No safe wording was recorded" in html


@pytest.mark.parametrize("path", ["/followups/999", "/followups/0", "/followups/99999999999",
                                  "/followups/abc", "/followups/-1", "/followups/1.5"])
def test_unknown_or_malformed_ids_are_404(app, client, operator, path):
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("action", ["assign", "attempt", "close"])
def test_posts_to_an_unknown_followup_are_404(app, client, operator, action):
    response = client.post(f"/followups/424242/{action}", data={"csrf_token": token(client), "assignee": "me",
                                                                "outcome": "reached", "resolution": "done"})
    assert response.status_code == 404


# Attempts -------------------------------------------------------------------------------------


def test_attempt_is_recorded_with_encrypted_note_and_audited_without_it(app, client, operator):
    followup_id = make_followup(app, operator.id)
    note = "Mother answered; caller at work until 7. Try Thursday."
    response = client.post(f"/followups/{followup_id}/attempt",
                           data={"outcome": "no_answer", "note": note, "csrf_token": token(client)})
    assert response.status_code == 302
    followup = get_followup(app, followup_id)
    assert followup.attempts == 1
    assert followup.last_outcome == AttemptOutcome.NO_ANSWER
    with app.app_context():
        raw = db.session.execute(text("SELECT note, outcome, operator_id FROM followup_attempts")).all()
    assert len(raw) == 1
    assert raw[0].outcome == "no_answer" and raw[0].operator_id == operator.id
    assert raw[0].note != note and "Mother" not in raw[0].note and "Thursday" not in raw[0].note
    events = audit_rows(app, "followup.attempt")
    assert len(events) == 1
    details = json.loads(events[0].details)
    assert details == {"attempt": 1, "has_note": True, "outcome": "no_answer"}
    assert "Mother" not in events[0].details
    # The page decrypts it for staff.
    assert note in client.get(f"/followups/{followup_id}").get_data(as_text=True)

    assert client.post(f"/followups/{followup_id}/attempt",
                       data={"outcome": "reached", "csrf_token": token(client)}).status_code == 302
    followup = get_followup(app, followup_id)
    assert (followup.attempts, followup.last_outcome) == (2, AttemptOutcome.REACHED)


@pytest.mark.parametrize("outcome, consent, message", [
    ("left_voicemail", {"voicemail": False, "text_ok": True}, "did not agree to voicemail"),
    ("text_sent", {"voicemail": True, "text_ok": False}, "did not agree to text messages"),
])
def test_attempt_refuses_a_channel_without_consent(app, client, operator, outcome, consent, message):
    followup_id = make_followup(app, operator.id, **consent)
    response = client.post(f"/followups/{followup_id}/attempt",
                           data={"outcome": outcome, "note": "tried", "csrf_token": token(client)})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'id="attempt-outcome-error"' in html  # next to the field (the attempt form's ids start "attempt-")
    followup = get_followup(app, followup_id)
    assert followup.attempts == 0 and followup.last_outcome is None
    with app.app_context():
        assert db.session.execute(select(db.func.count()).select_from(FollowUpAttempt)).scalar_one() == 0
    assert audit_rows(app, "followup.attempt") == []


@pytest.mark.parametrize("outcome, consent", [
    ("left_voicemail", {"voicemail": True}),
    ("text_sent", {"text_ok": True}),
])
def test_attempt_allows_a_channel_with_consent(app, client, operator, outcome, consent):
    followup_id = make_followup(app, operator.id, **consent)
    response = client.post(f"/followups/{followup_id}/attempt",
                           data={"outcome": outcome, "csrf_token": token(client)})
    assert response.status_code == 302
    assert get_followup(app, followup_id).last_outcome == AttemptOutcome(outcome)


def test_service_refuses_voicemail_without_consent(app, make_user):
    user = make_user(Role.OPERATOR)
    followup_id = make_followup(app, user.id, voicemail=False)
    with app.app_context():
        followup = db.session.get(FollowUp, followup_id)
        actor = db.session.get(User, user.id)
        with pytest.raises(FollowUpError) as exc:
            record_attempt(followup, AttemptOutcome.LEFT_VOICEMAIL, None, actor, utcnow())
        assert exc.value.field == "outcome"


@pytest.mark.parametrize("data", [
    {"outcome": "called_the_police"},
    {"outcome": ""},
    {"outcome": "reached' OR 1=1 --"},
    {"outcome": "reached", "note": "x" * 2001},
])
def test_bad_attempt_input_is_400(app, client, operator, data):
    followup_id = make_followup(app, operator.id)
    response = client.post(f"/followups/{followup_id}/attempt", data={**data, "csrf_token": token(client)})
    assert response.status_code == 400
    assert get_followup(app, followup_id).attempts == 0


def test_a_100_kb_note_is_refused_without_a_server_error(app, client, operator):
    followup_id = make_followup(app, operator.id)
    response = client.post(f"/followups/{followup_id}/attempt",
                           data={"outcome": "reached", "note": "x" * 100_000, "csrf_token": token(client)})
    # 413 when the body is over the form-memory limit, 400 from the form's length check otherwise.
    assert response.status_code in (400, 413)
    assert get_followup(app, followup_id).attempts == 0


def test_html_and_sql_in_a_note_are_stored_as_text_and_escaped(app, client, operator):
    followup_id = make_followup(app, operator.id)
    note = "<img src=x onerror=alert(1)>'; DROP TABLE followups; --"
    response = client.post(f"/followups/{followup_id}/attempt",
                           data={"outcome": "reached", "note": note, "csrf_token": token(client)})
    assert response.status_code == 302
    html = client.get(f"/followups/{followup_id}").get_data(as_text=True)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&#39;; DROP TABLE followups; --" in html
    assert get_followup(app, followup_id).attempts == 1


@pytest.mark.parametrize("action, data", [
    ("attempt", {"outcome": "reached"}),
    ("assign", {"assignee": "me"}),
    ("close", {"resolution": "done"}),
])
def test_posts_without_csrf_token_are_refused(app, client, operator, action, data):
    followup_id = make_followup(app, operator.id)
    response = client.post(f"/followups/{followup_id}/{action}", data=data)
    assert response.status_code == 400
    followup = get_followup(app, followup_id)
    assert (followup.attempts, followup.assignee_id, followup.status) == (0, None, FollowUpStatus.OPEN)


# Assignment -----------------------------------------------------------------------------------


def test_assign_to_me_and_to_a_colleague(app, client, operator, make_user):
    colleague = make_user(Role.OPERATOR)
    followup_id = make_followup(app, operator.id)
    page = client.get(f"/followups/{followup_id}").get_data(as_text=True)
    assert f'value="{colleague.id}"' in page
    assert client.post(f"/followups/{followup_id}/assign",
                       data={"assignee": "me", "csrf_token": token(client)}).status_code == 302
    assert get_followup(app, followup_id).assignee_id == operator.id
    assert client.post(f"/followups/{followup_id}/assign",
                       data={"assignee": str(colleague.id), "csrf_token": token(client)}).status_code == 302
    assert get_followup(app, followup_id).assignee_id == colleague.id
    details = [json.loads(e.details) for e in audit_rows(app, "followup.assigned")]
    assert details == [{"assignee_id": operator.id, "previous_assignee_id": None},
                       {"assignee_id": colleague.id, "previous_assignee_id": operator.id}]


@pytest.mark.parametrize("choice", ["requester", "disabled", "999999", "abc", "1 OR 1=1", ""])
def test_assign_refuses_anyone_but_active_staff(app, client, operator, make_user, choice):
    requester = make_user(Role.REQUESTER)
    disabled = make_user(Role.OPERATOR, active=False)
    value = {"requester": str(requester.id), "disabled": str(disabled.id)}.get(choice, choice)
    followup_id = make_followup(app, operator.id)
    response = client.post(f"/followups/{followup_id}/assign", data={"assignee": value, "csrf_token": token(client)})
    assert response.status_code == 400
    assert get_followup(app, followup_id).assignee_id is None
    assert audit_rows(app, "followup.assigned") == []


# Closing --------------------------------------------------------------------------------------


def test_close_as_done_with_outcome_then_nothing_more_changes(app, client, operator):
    followup_id = make_followup(app, operator.id)
    response = client.post(f"/followups/{followup_id}/close",
                           data={"resolution": "done", "outcome": "reached", "csrf_token": token(client)})
    assert response.status_code == 302
    followup = get_followup(app, followup_id)
    assert followup.status == FollowUpStatus.DONE
    assert followup.closed_at is not None
    assert followup.last_outcome == AttemptOutcome.REACHED
    events = audit_rows(app, "followup.closed")
    assert [json.loads(e.details) for e in events] == [{"attempts": 0, "outcome": "reached", "status": "done"}]
    # A closed follow-up takes no further attempt, assignment or closing.
    for action, data in (("attempt", {"outcome": "reached"}), ("assign", {"assignee": "me"}),
                         ("close", {"resolution": "cancelled"})):
        response = client.post(f"/followups/{followup_id}/{action}", data={**data, "csrf_token": token(client)})
        assert response.status_code == 400, action
        assert "This follow-up is closed" in response.get_data(as_text=True)
    followup = get_followup(app, followup_id)
    assert (followup.status, followup.attempts, followup.assignee_id) == (FollowUpStatus.DONE, 0, None)


@pytest.mark.parametrize("data", [
    {"resolution": "open"},
    {"resolution": ""},
    {"resolution": "deleted"},
    {"resolution": "cancelled", "outcome": "bogus"},
    {"resolution": "done", "outcome": "left_voicemail"},  # no voicemail consent
])
def test_bad_close_input_is_400(app, client, operator, data):
    followup_id = make_followup(app, operator.id, voicemail=False)
    response = client.post(f"/followups/{followup_id}/close", data={**data, "csrf_token": token(client)})
    assert response.status_code == 400
    assert get_followup(app, followup_id).status == FollowUpStatus.OPEN


def test_cancel(app, client, operator):
    followup_id = make_followup(app, operator.id)
    response = client.post(f"/followups/{followup_id}/close",
                           data={"resolution": "cancelled", "csrf_token": token(client)})
    assert response.status_code == 302
    followup = get_followup(app, followup_id)
    assert followup.status == FollowUpStatus.CANCELLED and followup.last_outcome is None


# Services -------------------------------------------------------------------------------------


def test_create_followup_refuses_a_call_without_consent(app, make_user):
    user = make_user(Role.OPERATOR)
    with app.app_context():
        call = Call(operator_id=user.id, status=CallStatus.FINAL)
        db.session.add(call)
        db.session.flush()
        with pytest.raises(NoConsentError, match="did not consent"):
            create_followup(call, utcnow(), None, actor=None)
        assert isinstance(NoConsentError("x"), ValueError)
        call.consent_text = True  # any one kind of consent is enough
        followup = create_followup(call, utcnow(), None, actor=None)
        assert followup.id and followup.status == FollowUpStatus.OPEN


def test_create_followup_refuses_a_requester_as_assignee(app, make_user):
    user = make_user(Role.OPERATOR)
    requester = make_user(Role.REQUESTER)
    with app.app_context():
        call = Call(operator_id=user.id, status=CallStatus.FINAL, consent_callback=True)
        db.session.add(call)
        db.session.flush()
        with pytest.raises(FollowUpError):
            create_followup(call, utcnow(), db.session.get(User, requester.id), actor=None)


def test_open_queue_service_filters_and_orders(app, make_user):
    me = make_user(Role.OPERATOR)
    late = make_followup(app, me.id, due_in=timedelta(hours=-5), assignee_id=me.id)
    soon = make_followup(app, me.id, due_in=timedelta(hours=1))
    with app.app_context():
        user = db.session.get(User, me.id)
        rows = open_queue(user, QueueFilter.ALL, utcnow())
        assert [r.followup.id for r in rows] == [late, soon]
        assert rows[0].overdue and not rows[1].overdue
        assert rows[0].assignee.id == me.id and rows[1].assignee is None
        assert [r.followup.id for r in open_queue(user, QueueFilter.MINE, utcnow())] == [late]
        assert [r.followup.id for r in open_queue(user, QueueFilter.UNASSIGNED, utcnow())] == [soon]
