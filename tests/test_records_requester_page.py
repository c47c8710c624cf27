"""The requester's request page (issue 19, "The requester"): the checklist of what is still needed
(the pure rule per step, and the page shrinking as steps are done), the staff's question beside the
answer box, a document sent in answer resuming the request like a written reply, the answer to a
cost estimate (with bad and hostile input), and one e-mail per event (never two "ready" mails)."""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta, timezone
from io import BytesIO

import pytest
import time_machine
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import checklist, fees, services
from intake.records.checklist import Facts, Step
from intake.records.models import (
    EventCode,
    FeeDecision,
    FeeEstimate,
    FileKind,
    RecordsRequest,
    RequestDocument,
    RequestEvent,
    RequestStatus,
    RequestType,
)
from intake.records.services import MoveInput
from intake.records.timeline import describe
from intake.records.workflow import Email, one_mail_per_event
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, LICENCE, csrf_token, login, verify_and_deliver

S = RequestStatus
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
HOSTILE = "<script>alert(1)</script>'; DROP TABLE fee_estimates; --"


# --- The rule: what is still needed (pure) ----------------------------------------------------------

def facts(**overrides) -> Facts:
    values = dict(status=S.SUBMITTED, is_open=True, request_type=RequestType.COPY, representative=False,
                  verified=False, photo_id_sent=False, authority_sent=False, consent_problem=None,
                  fee_estimated=False, fee_decided=False, due_on=date(2026, 12, 31))
    values.update(overrides)
    return Facts(**values)


def steps(result) -> dict[Step, bool]:
    return {item.step: item.done for item in result.items}


def test_photo_id_is_needed_until_sent_or_identity_verified_45_cfr_164_514_h():
    assert steps(checklist.needed(facts())) == {Step.PHOTO_ID: False}
    assert steps(checklist.needed(facts(photo_id_sent=True))) == {Step.PHOTO_ID: True}
    assert steps(checklist.needed(facts(verified=True))) == {Step.PHOTO_ID: True}


def test_proof_of_authority_only_for_a_representative_45_cfr_164_502_g():
    assert Step.AUTHORITY not in steps(checklist.needed(facts()))
    assert steps(checklist.needed(facts(representative=True)))[Step.AUTHORITY] is False
    assert steps(checklist.needed(facts(representative=True, authority_sent=True)))[Step.AUTHORITY] is True
    assert steps(checklist.needed(facts(representative=True, verified=True)))[Step.AUTHORITY] is True


@pytest.mark.parametrize("problem,done", [("missing", False), ("incomplete", False), ("expired", False),
                                          ("revoked", False), (None, True)])
def test_signed_consent_only_for_a_third_party_42_cfr_2_31(problem, done):
    assert Step.CONSENT not in steps(checklist.needed(facts(consent_problem=problem)))
    third = checklist.needed(facts(request_type=RequestType.THIRD_PARTY, consent_problem=problem))
    assert steps(third)[Step.CONSENT] is done


def test_fee_decision_only_for_an_estimate_with_a_charge_hs_123110():
    assert Step.FEE not in steps(checklist.needed(facts()))
    assert steps(checklist.needed(facts(fee_estimated=True)))[Step.FEE] is False
    assert steps(checklist.needed(facts(fee_estimated=True, fee_decided=True)))[Step.FEE] is True


def test_an_open_question_comes_first_while_the_request_waits():
    result = checklist.needed(facts(status=S.AWAITING_REQUESTER, photo_id_sent=True))
    assert [item.step for item in result.todo] == [Step.ANSWER]
    assert Step.ANSWER not in steps(checklist.needed(facts(status=S.IN_REVIEW)))


def test_the_list_shrinks_and_is_complete_when_everything_is_done():
    start = checklist.needed(facts(request_type=RequestType.THIRD_PARTY, representative=True,
                                   consent_problem="missing", fee_estimated=True))
    assert len(start.todo) == 4 and not start.complete
    later = checklist.needed(facts(request_type=RequestType.THIRD_PARTY, representative=True, photo_id_sent=True,
                                   consent_problem="missing", fee_estimated=True))
    assert len(later.todo) == 3 and len(later.done) == 1
    done = checklist.needed(facts(request_type=RequestType.THIRD_PARTY, representative=True, verified=True,
                                  consent_problem=None, fee_estimated=True, fee_decided=True))
    assert done.complete and len(done.done) == 4 and done.due_on == date(2026, 12, 31)


def test_a_closed_request_has_no_checklist():
    assert checklist.needed(facts(status=S.FULFILLED, is_open=False)) is None


# --- One e-mail per event (pure) ------------------------------------------------------------------

def test_one_mail_per_event_never_two_ready_mails():
    assert one_mail_per_event(Email.READY, None, ready_told=False) is Email.READY  # the first release
    assert one_mail_per_event(Email.READY, None, ready_told=True) is None  # a further release, same step
    assert one_mail_per_event(Email.READY, S.FULFILLED, ready_told=False) is Email.READY  # by post: news
    assert one_mail_per_event(Email.READY, S.FULFILLED, ready_told=True) is None  # already told
    assert one_mail_per_event(Email.READY, S.PARTIALLY_FULFILLED, ready_told=True) is Email.DECISION
    for other in (Email.UPDATE, Email.DECISION, Email.ACTION_NEEDED, None):
        assert one_mail_per_event(other, S.FULFILLED, ready_told=True) is other


# --- Through the app -----------------------------------------------------------------------------

@pytest.fixture()
def requester(client, make_user):
    user = make_user(Role.REQUESTER)
    assert login(client, user.email).status_code == 302
    return user


@pytest.fixture()
def admin(make_user):
    return make_user(FULL_ADMIN, licence=LICENCE)


def load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def staff(user: User) -> User:
    return db.session.get(User, user.id)


def move(app, admin: User, reference: str, target: RequestStatus, **given) -> None:
    with app.app_context():
        services.transition(load(reference), target, staff(admin), MoveInput(**given))
        db.session.commit()


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def upload(client, reference: str, kind: str = "photo_id", data: bytes = PDF):
    return client.post(f"/my/requests/{reference}/documents", content_type="multipart/form-data", data={
        "upload-kind": kind, "upload-file": (BytesIO(data), "id.pdf"),
        "upload-csrf_token": csrf_token(client, "/account")})


def todo_steps(body: str) -> list[str]:
    start = body.find('id="checklist-todo"')
    if start < 0:
        return []
    section = body[start:body.find("</ol>", start)]
    return [part.split('"', 1)[0] for part in section.split('data-step="')[1:]]


def test_the_page_lists_what_is_needed_and_it_shrinks_as_it_is_done(app, client, requester, make_request):
    reference = make_request(requester, relationship_to_patient="personal_representative",
                             requester_name="Sam Example")
    body = page(client.get(f"/my/requests/{reference}"))
    assert "What we still need from you" in body
    assert todo_steps(body) == ["photo_id", "authority"]
    assert body.index('id="checklist"') < body.index('id="timeline"')  # at the top
    assert 'href="#upload-heading"' in body  # each with its action
    assert upload(client, reference, "photo_id").status_code == 303
    body = page(client.get(f"/my/requests/{reference}"))
    assert todo_steps(body) == ["authority"]
    assert 'id="checklist-done"' in body
    assert upload(client, reference, "proof_of_authority").status_code == 303
    body = page(client.get(f"/my/requests/{reference}"))
    assert todo_steps(body) == []
    assert "Nothing more is needed from you" in body and "We will answer by" in body


def test_a_third_party_request_asks_for_the_signed_consent(app, client, requester, make_request):
    reference = make_request(requester, request_type="third_party", recipient_name="Dr. Rivera",
                             recipient_address="1 Main St, Fresno", purpose="Continuing care",
                             delivery="mail", mail_address="")
    body = page(client.get(f"/my/requests/{reference}"))
    assert "consent" in todo_steps(body)
    assert f'href="/my/requests/{reference}/consent' in body


def test_a_closed_request_shows_no_checklist(app, client, requester, make_request):
    reference = make_request(requester)
    client.post(f"/my/requests/{reference}/withdraw",
                data={"csrf_token": csrf_token(client, f"/my/requests/{reference}"), "confirm": "y"})
    assert 'id="checklist"' not in page(client.get(f"/my/requests/{reference}"))


# --- The question beside the answer box; a document sent in answer --------------------------------

def test_the_question_stands_right_above_the_answer_box(app, client, requester, admin, make_request):
    reference = make_request(requester)
    move(app, admin, reference, S.VERIFYING)
    move(app, admin, reference, S.AWAITING_REQUESTER, message="Please send a clearer copy of your ID.")
    body = page(client.get(f"/my/requests/{reference}"))
    reply = body[body.index('id="reply"'):body.index("</section>", body.index('id="reply"'))]
    assert "Please send a clearer copy of your ID." in reply and "Our question" in reply
    assert reply.index("Please send a clearer copy") < reply.index('name="body"')
    assert todo_steps(body)[0] == "answer"


def _clock(reference: str) -> tuple:
    req = load(reference)
    return req.status, req.paused_days, req.paused_since, req.due_on, req.awaiting_return_to


def test_a_document_sent_in_answer_resumes_the_request_like_a_reply(app, client, requester, admin, make_request):
    """Two requests, each asked a question on the same day and answered three days later: one with
    text, one with a document. Both leave "waiting for you" the same way (state, waiting days, due date)."""
    start = datetime(2026, 3, 2, 17, 0, tzinfo=timezone.utc)
    with time_machine.travel(start, tick=False):
        by_text = make_request(requester)
        by_document = make_request(requester)
        for reference in (by_text, by_document):
            move(app, admin, reference, S.VERIFYING)
            move(app, admin, reference, S.AWAITING_REQUESTER, message="Please send your photo ID.")
    with time_machine.travel(start + timedelta(days=3), tick=False):
        assert login(client, requester.email).status_code == 302  # a new session three days later
        replied = client.post(f"/my/requests/{by_text}/messages", data={
            "csrf_token": csrf_token(client, f"/my/requests/{by_text}"), "body": "Here it is."})
        assert replied.status_code == 303
        sent = upload(client, by_document)
        assert sent.status_code == 303
        assert "working on request" in page(client.get(sent.headers["Location"]))
    with app.app_context():
        text_clock, document_clock = _clock(by_text), _clock(by_document)
        assert text_clock == document_clock
        assert document_clock[0] == S.VERIFYING and document_clock[1] == 3 and document_clock[2] is None
        events = list(db.session.execute(select(RequestEvent).where(
            RequestEvent.request_id == load(by_document).id).order_by(RequestEvent.id)).scalars())
        # Worded when read: a code and the file kind, not words in the writer's language.
        assert events[-1].to_status == "verifying" and events[-1].body is None
        assert events[-1].code == EventCode.ANSWERED_WITH_DOCUMENT
        assert "Photo ID" in (describe(events[-1], "en").text or "")
        moves = db.session.execute(select(func.count(AuditEvent.seq)).where(
            AuditEvent.action == "request.transition", AuditEvent.object_id == str(load(by_document).id))).scalar_one()
        assert moves == 3  # verifying, waiting, and back: the same audited move as a reply


def test_a_document_sent_when_nothing_was_asked_moves_nothing(app, client, requester, make_request):
    reference = make_request(requester)
    assert upload(client, reference).status_code == 303
    with app.app_context():
        assert load(reference).status == S.SUBMITTED


# --- The answer to a cost estimate ---------------------------------------------------------------

def estimate(app, admin: User, reference: str, pages: int = 40) -> str:
    with app.app_context():
        fee = fees.give_estimate(load(reference), staff(admin), "paper", pages, 100)
        db.session.commit()
        return fee.uid


def decide(client, reference: str, decision: str | None, estimate_uid: str | None, token: bool = True):
    data = {}
    if decision is not None:
        data["decision"] = decision
    if estimate_uid is not None:
        data["estimate"] = estimate_uid
    if token:
        data["csrf_token"] = csrf_token(client, f"/my/requests/{reference}")
    return client.post(f"/my/requests/{reference}/fee-decision", data=data)


def newest(app, reference: str) -> FeeEstimate:
    with app.app_context():
        fee = fees.newest_estimate(load(reference))
        db.session.expunge(fee)
        return fee


@pytest.mark.parametrize("decision", ["accepted", "declined"])
def test_the_requester_answers_the_estimate(app, client, requester, admin, make_request, decision):
    reference = make_request(requester, record_format="paper", delivery="mail", mail_address="1 Elm St, Fresno")
    uid = estimate(app, admin, reference)
    body = page(client.get(f"/my/requests/{reference}"))
    assert "fee" in todo_steps(body) and 'id="fee-decision"' in body
    response = decide(client, reference, decision, uid)
    assert response.status_code == 303 and response.headers["Location"].endswith("#fees")
    fee = newest(app, reference)
    assert fee.decision == FeeDecision(decision) and fee.decided_at is not None
    body = page(client.get(f"/my/requests/{reference}"))
    assert "fee" not in todo_steps(body) and 'id="fee-decision"' not in body and 'id="fee-decided"' in body
    with app.app_context():
        row = db.session.execute(select(AuditEvent).where(AuditEvent.action == "request.fee_decision")).scalar_one()
        assert decision in row.details
        assert load(reference).status == S.SUBMITTED  # information, never a condition


@pytest.mark.parametrize("decision,estimate_uid,message", [
    (None, "OWN", "Choose whether we should go ahead at this cost."),
    ("", "OWN", "Choose whether we should go ahead at this cost."),
    ("maybe", "OWN", "Choose whether we should go ahead at this cost."),
    (HOSTILE, "OWN", "Choose whether we should go ahead at this cost."),
    ("accepted", None, "We could not tell which estimate you answered."),
    ("accepted", "x" * 500, "We could not tell which estimate you answered."),
    ("accepted", HOSTILE[:30], "We gave a new cost estimate since you opened the page."),
    ("accepted\x00", "OWN", "Choose whether we should go ahead at this cost."),
])
def test_bad_and_hostile_answers_are_refused_with_a_clear_message(app, client, requester, admin, make_request,
                                                                 decision, estimate_uid, message):
    reference = make_request(requester)
    uid = estimate(app, admin, reference)
    response = decide(client, reference, decision, uid if estimate_uid == "OWN" else estimate_uid)
    assert response.status_code == 400
    body = page(response)
    assert message in body and "<script>alert(1)</script>" not in response.get_data(as_text=True)
    assert 'id="fee-decision"' in body  # the form is still there to answer again
    assert newest(app, reference).decision is None


def test_an_answer_to_an_older_estimate_is_refused(app, client, requester, admin, make_request):
    reference = make_request(requester)
    old = estimate(app, admin, reference, pages=10)
    estimate(app, admin, reference, pages=80)
    response = decide(client, reference, "accepted", old)
    assert response.status_code == 400 and "We gave a new cost estimate" in page(response)
    assert newest(app, reference).decision is None


def test_an_estimate_is_answered_once_and_only_on_an_open_request(app, client, requester, admin, make_request):
    reference = make_request(requester)
    uid = estimate(app, admin, reference)
    assert decide(client, reference, "accepted", uid).status_code == 303
    again = decide(client, reference, "declined", uid)
    assert again.status_code == 400 and "already answered" in page(again)
    assert newest(app, reference).decision == FeeDecision.ACCEPTED
    other = make_request(requester)
    other_uid = estimate(app, admin, other)
    client.post(f"/my/requests/{other}/withdraw",
                data={"csrf_token": csrf_token(client, f"/my/requests/{other}"), "confirm": "y"})
    closed = decide(client, other, "accepted", other_uid)
    assert closed.status_code == 400 and "closed" in page(closed)


def test_no_csrf_no_estimate_and_someone_elses_request(app, client, requester, admin, make_user, make_request):
    reference = make_request(requester)
    assert decide(client, reference, "accepted", "a" * 22).status_code == 400  # nothing to answer
    uid = estimate(app, admin, reference)
    assert decide(client, reference, "accepted", uid, token=False).status_code == 400
    assert newest(app, reference).decision is None
    stranger = make_user(Role.REQUESTER)
    theirs = app.test_client()
    assert login(theirs, stranger.email).status_code == 302
    token = csrf_token(theirs, "/account")
    response = theirs.post(f"/my/requests/{reference}/fee-decision",
                           data={"csrf_token": token, "decision": "accepted", "estimate": uid})
    assert response.status_code == 404
    assert newest(app, reference).decision is None


def test_staff_cannot_answer_for_the_requester(app, admin, make_user, make_request):
    owner = make_user(Role.REQUESTER)
    reference = make_request(owner)
    uid = estimate(app, admin, reference)
    with app.app_context():
        with pytest.raises(services.RequestRefused):
            fees.decide_estimate(load(reference), staff(admin), uid, "accepted")


# --- One e-mail per event: never two identical "ready" mails --------------------------------------

def ready_mails(app) -> list[OutboxMessage]:
    with app.app_context():
        return list(db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "records_ready")).scalars())


def mail_kinds(app) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(OutboxMessage.kind).order_by(OutboxMessage.id)).scalars())


def _released_and_delivered(app, admin, requester, make_request, archive_patient, releases: int = 1) -> str:
    reference = make_request(requester)
    pid = archive_patient()
    with app.app_context():
        req, actor = load(reference), staff(admin)
        services.transition(req, "verifying", actor)
        services.transition(req, "in_review", actor, MoveInput(verification_method="photo_id",
                                                               archived_patient_id=pid))
        from intake.records import documents
        for n in range(releases):
            doc = documents.upload(req, actor, "released_record", f"records-{n}.pdf", PDF)
            documents.release(req, doc, actor)
        services.record_delivery(req, actor, "download")
        db.session.commit()
    return reference


def test_release_then_completion_sends_one_ready_mail(app, requester, admin, make_request, archive_patient):
    reference = _released_and_delivered(app, admin, requester, make_request, archive_patient)
    assert len(ready_mails(app)) == 1
    move(app, admin, reference, S.FULFILLED)
    assert len(ready_mails(app)) == 1
    assert mail_kinds(app).count("records_ready") == 1


def test_two_releases_in_one_step_send_one_ready_mail(app, requester, admin, make_request, archive_patient):
    reference = _released_and_delivered(app, admin, requester, make_request, archive_patient, releases=2)
    move(app, admin, reference, S.FULFILLED)
    assert len(ready_mails(app)) == 1


def test_a_partial_release_after_ready_says_decision_not_ready_again(app, requester, admin, make_request,
                                                                    archive_patient):
    reference = _released_and_delivered(app, admin, requester, make_request, archive_patient)
    move(app, admin, reference, S.PARTIALLY_FULFILLED, reason="some_records_lost")
    kinds = mail_kinds(app)
    assert kinds.count("records_ready") == 1 and kinds[-1] == "records_decision"


def test_completion_by_post_still_says_ready_once(app, requester, admin, make_request, archive_patient):
    reference = make_request(requester, record_format="paper", delivery="mail", mail_address="1 Elm St")
    pid = archive_patient()
    with app.app_context():
        verify_and_deliver(load(reference), staff(admin), pid, method="mail")
        db.session.commit()
    move(app, admin, reference, S.FULFILLED)
    assert len(ready_mails(app)) == 1


def test_a_reopened_request_released_again_is_a_new_event(app, requester, admin, make_request, archive_patient):
    reference = _released_and_delivered(app, admin, requester, make_request, archive_patient)
    move(app, admin, reference, S.FULFILLED)
    move(app, admin, reference, S.IN_REVIEW, note="One page was missing.")
    with app.app_context():
        from intake.records import documents
        req, actor = load(reference), staff(admin)
        documents.release(req, documents.upload(req, actor, "released_record", "page.pdf", PDF), actor)
        db.session.commit()
    assert len(ready_mails(app)) == 2  # two events: the first copy, then the missing page
    with app.app_context():
        count = db.session.execute(select(func.count(RequestDocument.id)).where(
            RequestDocument.kind == FileKind.RELEASED_RECORD)).scalar_one()
        assert count == 2


# --- The unconfirmed requester who starts a request -----------------------------------------------

def test_an_unconfirmed_requester_is_told_why_in_their_language_with_the_link_again(app, client, make_user):
    user = make_user(Role.REQUESTER, verified=False)
    assert login(client, user.email).status_code == 302
    for language, heading, button in (("en", "Confirm your e-mail address first", "Send the link again"),
                                      ("es", "Primero confirme su dirección de correo electrónico",
                                       "Enviar el enlace otra vez")):
        told = client.get("/my/requests/new", headers={"Accept-Language": language})
        body = page(told)
        assert told.status_code == 403 and f'lang="{language}"' in body
        assert heading in body and button in body and 'action="/account/verify/resend"' in body
        assert "Forbidden" not in body
