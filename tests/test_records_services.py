"""Records-request services end to end without HTTP: submit, the workflow with its timeline,
audit events and e-mails, messages, assignment, extensions and the optimistic version check."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import deadlines, services, submission
from intake.records.common import RequestInvalid, RequestRefused, VersionConflict
from intake.records.models import EventKind, RecordsRequest, RequestEvent, RequestStatus, Visibility
from intake.records.services import MoveInput
from intake.records.timeline import describe
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, LICENCE, OTHER_LICENCE, valid_submission

S = RequestStatus


def _load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def _user(user: User) -> User:
    return db.session.get(User, user.id)


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "other": make_user(Role.REQUESTER),
            "admin": make_user(FULL_ADMIN, licence=LICENCE), "admin2": make_user(FULL_ADMIN, licence=OTHER_LICENCE),
            "operator": make_user(Role.OPERATOR)}


def test_submit_starts_the_clock_acknowledges_and_audits(app, people, make_request):
    received = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # 10:00 in Los Angeles
    ref = make_request(people["requester"], now=received)
    with app.app_context():
        req = _load(ref)
        assert req.status == S.SUBMITTED and req.is_open
        assert req.due_on == date(2026, 3, 17)  # 15 calendar days, Health & Safety Code 123110
        assert req.human_ref.startswith("RR-2026-") and len(req.human_ref) == 12
        assert len(req.reference) >= 22 and req.reference != req.human_ref
        assert req.patient_name == "Jordan Example"
        raw = db.session.execute(text("SELECT patient_name, patient_dob FROM records_requests")).one()
        assert "Jordan" not in raw[0] and "1980" not in raw[1]
        events = services.timeline(req, include_internal=True)
        assert [e.kind for e in events] == [EventKind.SUBMITTED]
        mail = db.session.execute(select(OutboxMessage)).scalar_one()
        assert mail.recipient == people["requester"].email and req.human_ref in mail.subject
        assert "Jordan" not in mail.body and "copy" not in mail.body.lower()
        audit = db.session.execute(select(AuditEvent).where(AuditEvent.action == "request.submitted")).scalar_one()
        assert audit.object_id == str(req.id) and "Jordan" not in audit.details


def test_full_path_to_fulfilled_writes_timeline_audit_and_mail(app, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    patient_id = archive_patient()
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        services.transition(req, S.VERIFYING, admin)
        with pytest.raises(RequestInvalid) as excinfo:  # verified, but against which archive record?
            services.transition(req, S.IN_REVIEW, admin, MoveInput(verification_method="photo_id"))
        assert set(excinfo.value.errors) == {"archived_patient_id"}
        services.transition(req, S.IN_REVIEW, admin, MoveInput(verification_method="photo_id",
                                                               archived_patient_id=patient_id))
        with pytest.raises(RequestInvalid) as excinfo:  # nothing handed over yet
            services.transition(req, S.FULFILLED, admin)
        assert "delivered" in excinfo.value.errors["status"]
        services.record_delivery(req, admin, "mail", note="Tracking 9400 0000")
        services.transition(req, S.FULFILLED, admin)
        db.session.commit()
        assert req.status == S.FULFILLED and not req.is_open and req.closed_at is not None
        assert req.verified_by_id == admin.id and req.archived_patient_id == patient_id
        assert req.delivery_method == "mail" and req.delivery_note == "Tracking 9400 0000"
        moves = [(e.from_status, e.to_status) for e in services.timeline(req, True) if e.kind == EventKind.STATUS]
        assert moves == [("submitted", "verifying"), ("verifying", "in_review"), ("in_review", "fulfilled")]
        actions = db.session.execute(select(AuditEvent.action).where(AuditEvent.object_id == str(req.id))).scalars()
        assert list(actions).count("request.transition") == 3
        kinds = db.session.execute(select(OutboxMessage.kind)).scalars().all()
        assert kinds == ["records_acknowledged", "records_ready"]


def test_a_refused_move_changes_nothing(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        req = _load(ref)
        with pytest.raises(RequestRefused):
            services.transition(req, S.FULFILLED, _user(people["admin"]))  # not from submitted
        with pytest.raises(RequestRefused):
            services.transition(req, S.VERIFYING, _user(people["operator"]))
        with pytest.raises(RequestRefused):
            services.transition(req, S.WITHDRAWN, _user(people["other"]))  # not theirs
        services.transition(req, S.VERIFYING, _user(people["admin"]))
        with pytest.raises(RequestInvalid) as excinfo:
            services.transition(req, S.IN_REVIEW, _user(people["admin"]))  # no verification method
        assert "verification_method" in excinfo.value.errors
        db.session.commit()
        assert _load(ref).status == S.VERIFYING


def test_clarification_round_trip_and_requester_reply(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        req = _load(ref)
        services.transition(req, S.VERIFYING, _user(people["admin"]))
        services.transition(req, S.AWAITING_REQUESTER, _user(people["admin"]),
                            MoveInput(message="Please tell us your name at the time of your stay."))
        db.session.commit()
        # Waiting is recorded (since when), but the clock runs: the due date does not move.
        due = req.due_on
        assert req.awaiting_return_to == S.VERIFYING and req.paused_since is not None
        services.reply(req, _user(people["requester"]), "It was Jordan Sample.")
        db.session.commit()
        assert req.status == S.VERIFYING and req.awaiting_return_to is None and req.due_on == due
        visible = services.timeline(req, include_internal=False)
        assert any(e.body and "Jordan Sample" in e.body for e in visible)
        kinds = db.session.execute(select(OutboxMessage.kind)).scalars().all()
        assert "records_action_needed" in kinds


def test_hipaa_164_524_b2_waiting_for_the_requester_does_not_toll_the_clock(app, people, make_request):
    """45 CFR 164.524(b)(2): 30 days from receipt, one 30-day extension, no pause. Ten days of waiting
    are counted and shown, and the due date stays where it was."""
    app.config["RECORDS_CLOCK_POLICY"] = "hipaa"
    received = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    ref = make_request(people["requester"], now=received)
    with app.app_context():
        req = _load(ref)
        assert req.due_on == date(2026, 2, 4)  # 30 days, 45 CFR 164.524
        services.transition(req, S.AWAITING_REQUESTER, _user(people["admin"]), MoveInput(message="Which years?"),
                            now=datetime(2026, 1, 10, 18, 0, tzinfo=UTC))
        assert req.paused_since is not None
        services.transition(req, S.SUBMITTED, _user(people["requester"]), MoveInput(message="2017."),
                            now=datetime(2026, 1, 20, 18, 0, tzinfo=UTC))
        db.session.commit()
        assert req.paused_days == 10 and req.due_on == date(2026, 2, 4)
        assert any("waiting does not move the due date" in line for line in deadlines.explain_due(req))


def test_denial_letter_review_by_a_different_admin(app, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    patient_id = archive_patient()
    with app.app_context():
        req, admin, admin2 = _load(ref), _user(people["admin"]), _user(people["admin2"])
        services.transition(req, S.VERIFYING, admin)
        services.transition(req, S.IN_REVIEW, admin, MoveInput(verification_method="photo_id",
                                                               archived_patient_id=patient_id))
        services.transition(req, S.DENIED, admin, MoveInput(reason="endangerment"))
        letter = describe([e for e in services.timeline(req, False) if e.to_status == "denied"][0], "en").text
        assert "reviewed by a licensed health professional" in letter and "Office for Civil Rights" in letter
        services.transition(req, S.REVIEW_REQUESTED, _user(people["requester"]))
        with pytest.raises(RequestInvalid) as excinfo:
            services.transition(req, S.REVIEW_DECIDED, admin, MoveInput(review_outcome="upheld", message="Upheld."))
        assert "status" in excinfo.value.errors
        services.transition(req, S.REVIEW_DECIDED, admin2, MoveInput(review_outcome="overturned", message="Granted."))
        services.transition(req, S.IN_REVIEW, admin2, MoveInput(note="Reopened after the review."))
        db.session.commit()
        assert req.status == S.IN_REVIEW and req.is_open


def test_unreviewable_denial_cannot_be_reviewed(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        services.transition(req, S.VERIFYING, admin)
        services.transition(req, S.DENIED, admin, MoveInput(reason="identity_not_verified"))
        with pytest.raises(RequestInvalid):
            services.transition(req, S.REVIEW_REQUESTED, _user(people["requester"]))


def test_version_conflict_for_a_stale_copy(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        req = _load(ref)
        seen = req.version
        services.claim(req, _user(people["admin"]), expected_version=seen)
        db.session.commit()
        with pytest.raises(VersionConflict):
            services.transition(req, S.VERIFYING, _user(people["admin2"]), expected_version=seen)


def test_extension_rules(app, people, make_request):
    received = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    copy_ref = make_request(people["requester"], now=received)
    accounting_ref = make_request(people["requester"], now=received, request_type="accounting")
    with app.app_context():
        admin = _user(people["admin"])
        with pytest.raises(RequestInvalid) as excinfo:
            services.extend(_load(copy_ref), admin, "Records are in off-site storage.", on=date(2026, 3, 5))
        assert "no extension" in excinfo.value.errors["reason"]
        req = _load(accounting_ref)
        assert req.due_on == date(2026, 5, 1)
        with pytest.raises(RequestInvalid):
            services.extend(req, admin, "   ", on=date(2026, 3, 5))
        with pytest.raises(RequestInvalid):
            services.extend(req, admin, "Late.", on=date(2026, 5, 2))
        services.extend(req, admin, "Records are in off-site storage.", on=date(2026, 4, 30))
        db.session.commit()
        assert req.due_on == date(2026, 5, 31) and req.extended_days == 30
        with pytest.raises(RequestInvalid) as excinfo:
            services.extend(req, admin, "Again.", on=date(2026, 5, 1))
        assert "only one" in excinfo.value.errors["reason"]
        notice = [e for e in services.timeline(req, False) if e.kind == EventKind.EXTENDED][0]
        assert "off-site storage" in describe(notice, "en").text
        assert "records_extended" in db.session.execute(select(OutboxMessage.kind)).scalars().all()


@pytest.mark.parametrize("overrides, field", [
    ({"patient_dob": date(2999, 1, 1)}, "patient_dob"),
    ({"stay_to": date(2019, 1, 1)}, "stay_to"),
    ({"stay_from": date(2018, 12, 1), "stay_to": None}, "stay_from"),
    ({"attest": False}, "attest"),
    ({"attestation_name": "  "}, "attestation_name"),
    ({"delivery": "mail", "mail_address": ""}, "mail_address"),
    ({"request_type": "third_party"}, "recipient_name"),
    ({"request_type": "addendum", "addendum_text": "word " * 251}, "addendum_text"),
    ({"relationship_to_patient": "personal_representative"}, "requester_name"),
    ({"scope": "kinds", "scope_kinds": []}, "scope_kinds"),
    ({"scope": "dates"}, "scope_from"),
    ({"request_type": "nonsense"}, "request_type"),
])
def test_submission_problems_are_reported_and_nothing_is_stored(app, people, overrides, field):
    with app.app_context():
        with pytest.raises(RequestInvalid) as excinfo:
            submission.submit_request(_user(people["requester"]), valid_submission(**overrides))
        assert field in excinfo.value.errors
        db.session.rollback()
        assert db.session.execute(select(RecordsRequest.id)).first() is None


def test_unverified_requester_cannot_submit(app, make_user):
    user = make_user(Role.REQUESTER, verified=False)
    with app.app_context():
        with pytest.raises(RequestRefused):
            submission.submit_request(_user(user), valid_submission())


def test_internal_notes_stay_internal(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        req = _load(ref)
        services.add_note(req, _user(people["admin"]), "Check the off-site boxes.")
        services.send_message(req, _user(people["admin"]), "We are working on it.")
        with pytest.raises(RequestRefused):
            services.add_note(req, _user(people["requester"]), "sneaky")
        db.session.commit()
        visible = [e.body for e in services.timeline(req, include_internal=False)]
        assert "We are working on it." in visible and "Check the off-site boxes." not in visible
        notes = db.session.execute(select(RequestEvent).where(RequestEvent.visibility == Visibility.INTERNAL))
        assert [e.body for e in notes.scalars()] == ["Check the off-site boxes."]
        details = db.session.execute(select(AuditEvent.details).where(AuditEvent.action == "request.note")).scalar_one()
        assert "boxes" not in details and json.loads(details) == {}


def test_an_unknown_archive_record_is_refused(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        services.transition(req, S.VERIFYING, admin)
        db.session.commit()
        with pytest.raises(RequestInvalid) as excinfo:
            services.transition(req, S.IN_REVIEW, admin, MoveInput(verification_method="photo_id",
                                                                   archived_patient_id=999_999))
        assert "archived_patient_id" in excinfo.value.errors
        db.session.rollback()
        assert _load(ref).status == S.VERIFYING


@pytest.mark.parametrize("reason, custodian, words", [
    ("not_in_index", None, "could not find records"),
    ("destroyed", None, "destroyed"),
    ("held_elsewhere", "County Health Records Unit", "County Health Records Unit"),
])
def test_no_records_closes_with_the_right_letter(app, people, make_request, reason, custodian, words):
    ref = make_request(people["requester"])
    with app.app_context():
        req = _load(ref)
        services.transition(req, S.NO_RECORDS, _user(people["admin"]),
                            MoveInput(no_records_reason=reason, custodian=custodian))
        db.session.commit()
        assert req.status == S.NO_RECORDS and not req.is_open and req.no_records_reason == reason
        letter = [describe(e, "en").text for e in services.timeline(req, False) if e.to_status == "no_records"][0]
        assert words in letter


def test_held_elsewhere_needs_the_custodian(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        with pytest.raises(RequestInvalid) as excinfo:
            services.transition(_load(ref), S.NO_RECORDS, _user(people["admin"]),
                                MoveInput(no_records_reason="held_elsewhere"))
        assert "custodian" in excinfo.value.errors


def test_delivery_rules(app, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    patient_id = archive_patient()
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        with pytest.raises(RequestInvalid):  # not while still received
            services.record_delivery(req, admin, "mail")
        services.transition(req, S.VERIFYING, admin)
        services.transition(req, S.IN_REVIEW, admin, MoveInput(verification_method="photo_id",
                                                               archived_patient_id=patient_id))
        with pytest.raises(RequestRefused):
            services.record_delivery(req, _user(people["requester"]), "mail")
        with pytest.raises(RequestInvalid):
            services.record_delivery(req, admin, "carrier pigeon")
        with pytest.raises(RequestInvalid) as excinfo:  # a download needs something released
            services.record_delivery(req, admin, "download")
        assert "Release" in excinfo.value.errors["method"]
        services.record_delivery(req, admin, "pickup")
        db.session.commit()
        kinds = [e.kind for e in services.timeline(req, include_internal=False)]
        assert EventKind.DELIVERED in kinds
        audit = db.session.execute(select(AuditEvent.details).where(AuditEvent.action == "request.delivered"))
        assert json.loads(audit.scalar_one()) == {"method": "pickup", "basis": "patient_access"}
