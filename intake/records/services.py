"""Records-request business rules: submit, move through the workflow, message, note, assign,
extend. Plain functions, no HTTP: each checks who may act and what the rules need, changes
state, writes the timeline event and the audit event, queues the e-mail and ``flush()``es; the
view commits once, so all of it lands together or not at all.

``data`` for a submission is a dict of shape-checked values (the form does that);
``submission_problems`` checks their meaning. Errors carry ``{field: message}`` and nothing is
changed when they are raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, select

from intake.archive.models import ArchivedPatient
from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, can
from intake.records import clocks, deadlines, disclosures, documents, letters, professionals
from intake.records.common import (
    MESSAGE_MAX,
    NAME_MAX,
    OBJECT_TYPE,
    STATUS_PROBLEMS,
    TEXT_MAX,
    RequestInvalid,
    RequestRefused,
    add_event,
    check_length,
    check_version,
    flush_or_conflict,
    notify_requester,
    ready_told,
)
from intake.records.models import (
    OPEN_STATUSES,
    DeliveryMethod,
    EventCode,
    EventKind,
    FileKind,
    NoRecordsReason,
    ProfessionalRole,
    RecordsRequest,
    RequestDocument,
    RequestEvent,
    RequestStatus,
    RequestType,
    Visibility,
)
from intake.records.workflow import (
    REVIEWABLE_REASONS,
    Actor,
    Email,
    Facts,
    Given,
    TransitionRefused,
    WithdrawReason,
    actor_for,
    missing,
    one_mail_per_event,
    rule_for,
)
from intake.users.models import User


def get_for_owner(user: Any, reference: str) -> RecordsRequest | None:
    """The request with this URL reference if it belongs to ``user``; None otherwise (the view
    answers 404 either way, so a guess learns nothing). The owner is part of the query, so
    someone else's request is never even loaded and decrypted."""
    if not can(user, Permission.REQUESTS_OWN):
        return None
    req = db.session.execute(select(RecordsRequest).where(
        RecordsRequest.reference == reference, RecordsRequest.owner_id == user.id)).scalar_one_or_none()
    if req is None or not can(user, Permission.REQUESTS_OWN, req):
        return None
    return req


def get_for_staff(user: Any, reference: str) -> RecordsRequest | None:
    """The request with this URL reference, for staff who may read the queue (``REQUESTS_VIEW``;
    changing it needs ``REQUESTS_QUEUE``, checked by each change)."""
    if not can(user, Permission.REQUESTS_VIEW):
        return None
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one_or_none()


def timeline(req: RecordsRequest, include_internal: bool) -> list[RequestEvent]:
    """The request's events, oldest first; the requester's view leaves internal ones out."""
    query = select(RequestEvent).where(RequestEvent.request_id == req.id)
    if not include_internal:
        query = query.where(RequestEvent.visibility == Visibility.REQUESTER)
    return list(db.session.execute(query.order_by(RequestEvent.id)).scalars())


VIEWED = "request.viewed"


def record_view(req: RecordsRequest, viewer: Any, occurred_at: datetime | None = None) -> None:
    """Audit one view of a request's page (by staff or by its requester); ``occurred_at`` for a view
    recorded after its page was drawn (``intake.audit.services.pending_view``)."""
    record(VIEWED, actor=viewer, object_type=OBJECT_TYPE, object_id=req.id, occurred_at=occurred_at)


# --- Workflow ----------------------------------------------------------------------------------

# What a person supplies with a move: the workflow table's own ``Given``, under the name the
# views and tests have always used.
MoveInput = Given

_MOVE_MESSAGES = {
    "message": lambda: _("Write the message the requester will read."),
    "note": lambda: _("Give the reason, for the record."),
    "verification_method": lambda: _("Choose how the identity was verified."),
    "reason": lambda: _("Choose a reason from the list."),
    "review_outcome": lambda: _("Choose the outcome of the review."),
    "archived_patient_id": lambda: _("Choose the archive record this request is about."),
    "no_records_reason": lambda: _("Choose why there are no records."),
    "custodian": lambda: _("Name who holds the records now, so the requester can ask them."),
    "withdraw_reason": lambda: _("Choose a reason from the list."),
    "withdraw_detail": lambda: _("Give the reason, for the record."),
    "withdraw_confirmed": lambda: _("Tick the box to confirm that you want to withdraw."),
}
def _explain(problems: Mapping[str, str]) -> dict[str, str]:
    return {field: (STATUS_PROBLEMS[code]() if field == "status" or code in STATUS_PROBLEMS
                    else _MOVE_MESSAGES[field]())
            for field, code in problems.items()}


def facts_for(req: RecordsRequest, actor: Any) -> Facts:
    external_denial = professionals.pending_decision(req, ProfessionalRole.DENIAL) if req.is_open else None
    external_review = (professionals.pending_decision(req, ProfessionalRole.REVIEW)
                       if req.status == RequestStatus.REVIEW_REQUESTED else None)
    return Facts(awaiting_return_to=req.awaiting_return_to, verified=req.verified_at is not None,
                 delivered=req.delivered_at is not None,
                 decision_reason=req.decision_reason, decided_by_id=req.decided_by_id,
                 actor_id=getattr(actor, "id", None),
                 actor_licensed=professionals.clinical_licence_of(actor) is not None,
                 external_denial=external_denial.decision if external_denial else None,
                 external_review=external_review.decision if external_review else None,
                 by_staff=actor_for(actor, req) is Actor.STAFF)


def _decision_licence(req: RecordsRequest, actor: Any, role: ProfessionalRole, decision: str | None) -> str | None:
    """Who made a clinical decision, by licence: the outside professional whose recorded decision it
    is, else the person moving the request (the workflow checked that one of them holds a licence)."""
    outside = professionals.pending_decision(req, role)
    if outside is not None and outside.decision == decision:
        return professionals.licence_label(outside.licence_type, outside.licence_number, outside.licence_state)
    return professionals.clinical_licence_of(actor)


def transition(req: RecordsRequest, target: RequestStatus | str, actor: User, move: MoveInput | None = None,
               expected_version: int | None = None, now: datetime | None = None) -> RecordsRequest:
    """Move ``req`` to ``target`` if the table lets ``actor`` do it and everything it needs is given."""
    target = RequestStatus(target)
    move = move or MoveInput()
    who = actor_for(actor, req)
    try:
        rule = rule_for(req.status, target, who)
    except TransitionRefused as exc:
        raise RequestRefused(str(exc)) from exc
    check_version(req, expected_version)
    message = (move.message or "").strip() or None
    note = (move.note or "").strip() or None
    custodian = (move.custodian or "").strip() or None
    withdraw_detail = (move.withdraw_detail or "").strip() or None
    check_length("message", message, MESSAGE_MAX)
    check_length("note", note, TEXT_MAX)
    check_length("custodian", custodian, NAME_MAX)
    check_length("withdraw_detail", withdraw_detail, TEXT_MAX)
    problems = missing(rule, target, facts_for(req, actor),
                       replace(move, message=message, note=note, custodian=custodian, withdraw_detail=withdraw_detail))
    if problems:
        raise RequestInvalid(_explain(problems))
    if move.archived_patient_id and db.session.get(ArchivedPatient, move.archived_patient_id) is None:
        raise RequestInvalid({"archived_patient_id": _MOVE_MESSAGES["archived_patient_id"]()})

    now = now or utcnow()
    source = req.status
    visibility = Visibility.REQUESTER
    # The timeline texts below are written in the requester's language.
    if source == RequestStatus.AWAITING_REQUESTER and req.paused_since is not None:
        # Waiting is counted and shown; it never moves the due date (H&S 123110; 45 CFR 164.524(b)(2)).
        days = clocks.paused_day_count(req.paused_since, now, current_app.config["FACILITY_TIMEZONE"])
        req.paused_days += days
        req.paused_since = None
    if target == RequestStatus.AWAITING_REQUESTER:
        req.awaiting_return_to = source
        req.paused_since = now  # waiting since (the clock keeps running)
    elif source == RequestStatus.AWAITING_REQUESTER:
        req.awaiting_return_to = None
    if source == RequestStatus.VERIFYING and target == RequestStatus.IN_REVIEW:
        req.verification_method = move.verification_method
        req.verified_by_id = actor.id
        req.verified_at = now
        req.archived_patient_id = move.archived_patient_id
    # What the requester reads on the timeline about the move: a code, worded when read.
    code: EventCode | None = None
    params: dict[str, Any] = {}
    if move.answered_with and not message:
        code = EventCode.ANSWERED_WITH_DOCUMENT
        params = {"kind": FileKind(move.answered_with).value}
    if target == RequestStatus.NO_RECORDS:
        req.no_records_reason = NoRecordsReason(move.no_records_reason or "")
        req.no_records_custodian = custodian if req.no_records_reason == NoRecordsReason.HELD_ELSEWHERE else None
        code = EventCode.NO_RECORDS
        params = {"reason": req.no_records_reason.value, "custodian": req.no_records_custodian}
    if target in (RequestStatus.DENIED, RequestStatus.PARTIALLY_FULFILLED):
        req.decision_reason = move.reason
        req.decided_by_id = actor.id
        clinical = target == RequestStatus.DENIED and move.reason in REVIEWABLE_REASONS
        req.decision_licence = (_decision_licence(req, actor, ProfessionalRole.DENIAL, move.reason)
                                if clinical else None)
        req.review_outcome = None
        req.review_licence = None
        if move.reason is None:
            raise ValueError("a denial or a partial release states its reason (workflow.TRANSITIONS requires one)")
        code = EventCode.DENIED if target == RequestStatus.DENIED else EventCode.PARTIAL
        params = {"reason": move.reason}
    if target == RequestStatus.REVIEW_REQUESTED:
        req.review_requested_at = now
    if target == RequestStatus.REVIEW_DECIDED:
        req.review_outcome = move.review_outcome
        req.review_licence = _decision_licence(req, actor, ProfessionalRole.REVIEW, move.review_outcome)
        code = EventCode.REVIEW_DECIDED
        params = {"outcome": move.review_outcome}
    req.status = target
    req.is_open = target in OPEN_STATUSES
    req.closed_at = None if req.is_open else now
    req.due_on = deadlines.due_date(req).due_on

    add_event(req, EventKind.STATUS, visibility, actor, body=message or None, from_status=source, to_status=target,
              code=code, params=params)
    if note:
        add_event(req, EventKind.NOTE, Visibility.INTERNAL, actor, body=note)
    if target == RequestStatus.WITHDRAWN and move.withdraw_reason and who is Actor.STAFF:
        # Staff say why they withdraw (staff only: an internal entry of the timeline, in the office's English).
        add_event(req, EventKind.NOTE, Visibility.INTERNAL, actor, code=EventCode.WITHDRAW_REASON,
                  params={"reason": WithdrawReason(move.withdraw_reason).value}, body=withdraw_detail)
    letters.store_transition_letter(req, target, actor, message=message)  # the printable letter, if the move has one
    details: dict[str, Any] = {"from": source.value, "to": target.value}
    if target in (RequestStatus.DENIED, RequestStatus.PARTIALLY_FULFILLED):
        details["reason"] = move.reason
        if req.decision_licence:
            details["licensed"] = True
    if target == RequestStatus.REVIEW_DECIDED and req.review_licence:
        details["licensed"] = True
    if req.verification_method and target == RequestStatus.IN_REVIEW and source == RequestStatus.VERIFYING:
        details["verification_method"] = req.verification_method
        details["archived_patient_id"] = req.archived_patient_id
    if target == RequestStatus.NO_RECORDS:
        details["reason"] = move.no_records_reason  # the code NoRecordsReason() accepted above
    if target == RequestStatus.WITHDRAWN and move.withdraw_reason and who is Actor.STAFF:
        details["reason"] = move.withdraw_reason  # a WithdrawReason code (the workflow checked it)
    email = one_mail_per_event(rule.email, target, ready_told(req))  # before this move's own audit event
    record("request.transition", actor=actor, object_type=OBJECT_TYPE, object_id=req.id, details=details)
    if email is not None:
        notify_requester(req, None, email)
    flush_or_conflict()
    return req


def reply(req: RecordsRequest, actor: User, body: str) -> RequestEvent | None:
    """The requester writes to staff. While the request waits on them, the reply sends it back
    to where it was (and restarts a paused clock); otherwise it is a message on the timeline."""
    if actor_for(actor, req) is not Actor.REQUESTER:
        raise RequestRefused("only the requester replies through the portal")
    body = (body or "").strip()
    if not body:
        raise RequestInvalid({"body": _("Write your message.")})
    check_length("body", body, MESSAGE_MAX)
    if not req.is_open and req.status != RequestStatus.DENIED:
        raise RequestInvalid({"body": _("This request is closed. To ask for something new, start a new request.")})
    if answers_question(req):
        resume_with_answer(req, actor, body)
        return None
    event = add_event(req, EventKind.MESSAGE, Visibility.REQUESTER, actor, body=body)
    record("request.message", actor=actor, object_type=OBJECT_TYPE, object_id=req.id, details={"from": "requester"})
    flush_or_conflict()
    return event


def answers_question(req: RecordsRequest) -> bool:
    """Whether what the requester sends now is the answer the office waits for."""
    return req.status == RequestStatus.AWAITING_REQUESTER and req.awaiting_return_to is not None


def resume_with_answer(req: RecordsRequest, actor: User, body: str | None = None,
                       document_kind: str | None = None) -> RequestStatus:
    """The requester's answer sends a waiting request back to where it was: the one way both a
    written reply and a document sent in answer resume it (the waiting days counted, the due date
    unchanged: ``transition``). Returns the state it went back to."""
    target = req.awaiting_return_to
    if target is None:
        raise RequestRefused("the request is not waiting for an answer")
    transition(req, target, actor, MoveInput(message=body, answered_with=document_kind))
    return target


def answer_with_document(req: RecordsRequest, actor: User, kind: str, filename: str | None,
                         data: bytes) -> bool:
    """A document the requester sends (``documents.upload``). While the office waits on them it is
    also their answer: the request resumes exactly as a written reply resumes it. Returns whether it did."""
    doc = documents.upload(req, actor, kind, filename, data)
    if actor_for(actor, req) is not Actor.REQUESTER or not answers_question(req):
        return False
    resume_with_answer(req, actor, document_kind=FileKind(doc.kind).value)
    return True


def open_question(req: RecordsRequest) -> list[RequestEvent]:
    """While the request waits on the requester: the office's question (the move to "waiting for
    you", with its message) and anything staff wrote after it, oldest first; empty otherwise."""
    if req.status != RequestStatus.AWAITING_REQUESTER:
        return []
    asked = db.session.execute(
        select(RequestEvent).where(RequestEvent.request_id == req.id, RequestEvent.visibility == Visibility.REQUESTER,
                                   RequestEvent.to_status == RequestStatus.AWAITING_REQUESTER.value)
        .order_by(RequestEvent.id.desc()).limit(1)).scalar_one_or_none()
    if asked is None:
        return []
    later = db.session.execute(
        select(RequestEvent).where(RequestEvent.request_id == req.id, RequestEvent.id > asked.id,
                                   RequestEvent.visibility == Visibility.REQUESTER,
                                   RequestEvent.kind == EventKind.MESSAGE,
                                   RequestEvent.actor_id.is_distinct_from(req.owner_id))
        .order_by(RequestEvent.id)).scalars()
    return [asked, *later]


def send_message(req: RecordsRequest, actor: User, body: str) -> RequestEvent:
    """Staff write to the requester: on the timeline, with an e-mail saying there is news."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff send messages to the requester")
    body = (body or "").strip()
    if not body:
        raise RequestInvalid({"body": _("Write your message.")})
    check_length("body", body, MESSAGE_MAX)
    event = add_event(req, EventKind.MESSAGE, Visibility.REQUESTER, actor, body=body)
    record("request.message", actor=actor, object_type=OBJECT_TYPE, object_id=req.id, details={"from": "staff"})
    notify_requester(req, None, Email.UPDATE)
    flush_or_conflict()
    return event


def add_note(req: RecordsRequest, actor: User, body: str) -> RequestEvent:
    """An internal note between staff; the requester never sees it."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff write internal notes")
    body = (body or "").strip()
    if not body:
        raise RequestInvalid({"body": _("Write the note.")})
    check_length("body", body, MESSAGE_MAX)
    event = add_event(req, EventKind.NOTE, Visibility.INTERNAL, actor, body=body)
    record("request.note", actor=actor, object_type=OBJECT_TYPE, object_id=req.id)
    flush_or_conflict()
    return event


def assign(req: RecordsRequest, assignee: User | None, actor: User, expected_version: int | None = None) -> None:
    """Give the request to ``assignee`` (or nobody); claiming is assigning to oneself."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff assign requests")
    if assignee is not None and not can(assignee, Permission.REQUESTS_QUEUE):
        raise RequestInvalid({"assignee": _("Choose someone who works the records queue.")})
    check_version(req, expected_version)
    new_id = None if assignee is None else assignee.id
    if req.assignee_id == new_id:
        return
    req.assignee_id = new_id
    add_event(req, EventKind.ASSIGNED, Visibility.INTERNAL, actor)
    record("request.assigned", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"assignee_id": new_id})
    flush_or_conflict()


def claim(req: RecordsRequest, actor: User, expected_version: int | None = None) -> None:
    assign(req, actor, actor, expected_version)


_EXTENSION_PROBLEMS = {
    "no_extension": lambda: _("The rule for this kind of request allows no extension."),
    "already_extended": lambda: _("This request has already been extended once; the law allows only one extension."),
    "past_due": lambda: _("An extension must be given before the due date, and that date has passed."),
    "reason_required": lambda: _("Give the reason for the delay; the requester will read it."),
}


def extend(req: RecordsRequest, actor: User, reason: str, expected_version: int | None = None,
           on: date | None = None) -> RecordsRequest:
    """Extend the deadline once, where the rule allows, before it passes, with a reason the
    requester reads in a written notice (45 CFR §164.524(b)(2)(iii))."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff extend deadlines")
    if not req.is_open:
        raise RequestInvalid({"reason": _("This request is closed.")})
    check_version(req, expected_version)
    reason = (reason or "").strip()
    check_length("reason", reason, TEXT_MAX)
    rule = deadlines.rule_of(req)
    try:
        days = clocks.check_extension(rule, req.due_on, on or deadlines.today(), req.extended_days, reason)
    except clocks.ExtensionRefused as exc:
        raise RequestInvalid({"reason": _EXTENSION_PROBLEMS[str(exc)]()}) from exc
    req.extended_days = days
    req.extension_reason = reason
    req.due_on = deadlines.due_date(req).due_on
    add_event(req, EventKind.EXTENDED, Visibility.REQUESTER, actor, code=EventCode.EXTENDED,
              params={"reason": reason, "day": req.due_on.isoformat()})
    letters.store_letter(req, "extension", actor, reason=reason)  # the written notice, printable
    record("request.extended", actor=actor, object_type=OBJECT_TYPE, object_id=req.id, details={"days": days})
    notify_requester(req, None, Email.EXTENDED)
    flush_or_conflict()
    return req


class DeliveryInvalid(RequestInvalid):
    """The delivery cannot be recorded as given."""


def record_delivery(req: RecordsRequest, actor: User, method: DeliveryMethod | str, note: str | None = None,
                    expected_version: int | None = None, now: datetime | None = None,
                    consent_confirmed: bool = False, recipient_link: bool = False) -> RecordsRequest:
    """Record that the records left (before ``fulfilled``): to the requester (a released download,
    post, pick-up, fax, an inspection), to a third party under its consent, or to a designated
    professional. The disclosure gate decides whether it is lawful now and, for a disclosure to
    anyone but the patient, writes it in this same transaction (``disclosures.disclose``).
    ``consent_confirmed``: staff read the consent and the request side by side and they match.
    ``recipient_link``: called by ``recipient.send_link``, which makes the link in the same transaction
    (a delivery by link is never recorded without one)."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff record deliveries")
    if req.status != RequestStatus.IN_REVIEW:
        raise RequestInvalid({"method": _("Records are delivered while the request is being prepared.")})
    check_version(req, expected_version)
    try:
        method = DeliveryMethod(method)
    except ValueError as exc:
        raise RequestInvalid({"method": _("Choose how the records were delivered.")}) from exc
    if (method == DeliveryMethod.RECIPIENT_LINK) != recipient_link:
        raise RequestInvalid({"method": _("Send a secure link from the section “Copy for the recipient”.")
                              if not recipient_link else _("Choose how the records were delivered.")})
    note = (note or "").strip() or None
    check_length("note", note, TEXT_MAX)
    now = now or utcnow()
    if method == DeliveryMethod.DOWNLOAD:
        available = db.session.execute(select(RequestDocument.id).where(
            RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.RELEASED_RECORD,
            RequestDocument.released_at.is_not(None), RequestDocument.revoked_at.is_(None),
            or_(RequestDocument.expires_at.is_(None), RequestDocument.expires_at > now)).limit(1)).first()
        if available is None:
            raise RequestInvalid({"method": _("Release at least one document for download first.")})
    ruling = disclosures.disclose(req, actor, method, now, consent_confirmed=consent_confirmed)
    req.delivered_at = now
    req.delivery_method = method
    req.delivery_note = note
    if ruling.logged:
        add_event(req, EventKind.DELIVERED, Visibility.REQUESTER, actor, code=EventCode.DISCLOSED,
                  params={"recipient": ruling_recipient(req), "how": method.value})
    else:
        add_event(req, EventKind.DELIVERED, Visibility.REQUESTER, actor, code=EventCode.DELIVERED,
                  params={"method": method.value})
    record("request.delivered", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"method": method.value, "basis": ruling.basis})
    flush_or_conflict()
    return req


def ruling_recipient(req: RecordsRequest) -> str:
    """Who received a disclosure made on this request (the third party, or the designated professional)."""
    professional = professionals.designated(req) if req.request_type != RequestType.THIRD_PARTY else None
    return (professional.name if professional is not None else req.recipient_name) or ""


