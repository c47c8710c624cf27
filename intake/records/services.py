"""Records-request business rules: submit, move through the workflow, message, note, assign,
extend. Plain functions, no HTTP: each checks who may act and what the rules need, changes
state, writes the timeline event and the audit event, queues the e-mail and ``flush()``es; the
view commits once, so all of it lands together or not at all.

``data`` for a submission is a dict of shape-checked values (the form does that);
``submission_problems`` checks their meaning. Errors carry ``{field: message}`` and nothing is
changed when they are raised.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.services import public_url, queue_email
from intake.permissions import Permission, can
from intake.records import clocks
from intake.records.labels import DENIAL_LABELS, PARTIAL_LABELS, REVIEW_OUTCOME_LABELS
from intake.records.models import (
    OPEN_STATUSES,
    Delivery,
    DocumentKind,
    EventKind,
    RecordFormat,
    RecordsRequest,
    RequesterRelationship,
    RequestEvent,
    RequestStatus,
    RequestType,
    Scope,
    Visibility,
)
from intake.records.workflow import (
    REVIEWABLE_REASONS,
    Actor,
    Email,
    Facts,
    Given,
    TransitionRefused,
    actor_for,
    missing,
    rule_for,
)
from intake.users.models import User

NAME_MAX = 200
ADDRESS_MAX = 500
TEXT_MAX = 2_000  # details, purpose, reasons
MESSAGE_MAX = 5_000
ADDENDUM_MAX_WORDS = 250  # Health & Safety Code §123111
ADDENDUM_MAX_CHARS = 3_000
EARLIEST_DOB = date(1900, 1, 1)
HUMAN_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
OBJECT_TYPE = "records_request"


class RequestInvalid(ValueError):
    """The input breaks a rule; ``errors`` maps field names to messages."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("records request input is not valid: " + ", ".join(sorted(errors)))
        self.errors = dict(errors)


class RequestRefused(PermissionError):
    """This person may not do this to this request."""


class VersionConflict(RuntimeError):
    """Someone else saved the request since this person loaded it."""


# --- Clocks, as configured ---------------------------------------------------------------------

def current_policy() -> clocks.ClockPolicy:
    config = current_app.config
    policies = clocks.build_policies(int(config["RECORDS_THIRD_PARTY_TARGET_DAYS"]))
    return policies[config["RECORDS_CLOCK_POLICY"]]


def extra_holidays() -> frozenset[date]:
    return clocks.parse_extra_holidays(current_app.config.get("RECORDS_EXTRA_HOLIDAYS") or "")


def facility_day(moment: datetime) -> date:
    return clocks.local_day(moment, current_app.config["FACILITY_TIMEZONE"])


def today() -> date:
    return facility_day(utcnow())


def _policy_of(req: RecordsRequest) -> clocks.ClockPolicy:
    config = current_app.config
    policies = clocks.build_policies(int(config["RECORDS_THIRD_PARTY_TARGET_DAYS"]))
    return policies.get(req.clock_policy) or current_policy()


def due_date(req: RecordsRequest) -> clocks.DueDate:
    """Recompute the request's due date from its stored facts (the policy it was received under)."""
    policy = _policy_of(req)
    if req.status == RequestStatus.REVIEW_REQUESTED and req.review_requested_at is not None:
        return clocks.compute_due(policy.review, facility_day(req.review_requested_at),
                                  extra_holidays=extra_holidays())
    return clocks.compute_due(policy.rules[req.request_type], facility_day(req.received_at), req.extended_days,
                              req.paused_days, extra_holidays())


def urgency(req: RecordsRequest, on: date | None = None) -> clocks.Urgency | None:
    """Due soon / overdue / on track for an open request whose clock runs; None otherwise."""
    if not req.is_open or req.paused_since is not None:
        return None
    return clocks.urgency(req.due_on, on or today(), int(current_app.config["RECORDS_DUE_SOON_DAYS"]))


def explain_due(req: RecordsRequest) -> list[str]:
    """How the due date was computed, in plain sentences that cite the rule."""
    due = due_date(req)
    policy = _policy_of(req)
    rule = due.rule
    lines = []
    if req.status == RequestStatus.REVIEW_REQUESTED and req.review_requested_at is not None:
        lines.append(_("The review was requested on %(day)s.", day=format_date(due.received_on)))
    else:
        lines.append(_("We received the request on %(day)s.", day=format_date(due.received_on)))
    if rule.count is clocks.DayCount.WORKING:
        lines.append(_("The rule gives %(n)d working days, not counting weekends and California holidays "
                       "(%(rule)s).", n=rule.days, rule=rule.citation))
    else:
        lines.append(_("The rule gives %(n)d calendar days (%(rule)s).", n=rule.days, rule=rule.citation))
    if rule.internal_target:
        lines.append(_("This is our own target, not a deadline set by law."))
    if due.extended_days:
        lines.append(_("The deadline was extended once by %(n)d days (%(rule)s).", n=due.extended_days,
                       rule=rule.extension_citation or rule.citation))
    if due.paused_days:
        lines.append(_("The clock was stopped for %(n)d days while we waited for information from the requester.",
                       n=due.paused_days))
    if req.paused_since is not None:
        lines.append(_("The clock is stopped now, while we wait for information from the requester."))
    elif req.status == RequestStatus.AWAITING_REQUESTER:
        lines.append(str(policy.pause_note))
    lines.append(_("Due on %(day)s.", day=format_date(due.due_on)))
    return lines


# --- Loading -----------------------------------------------------------------------------------

def get_for_owner(user: Any, reference: str) -> RecordsRequest | None:
    """The request with this URL reference if it belongs to ``user``; None otherwise (the view
    answers 404 either way, so a guess learns nothing)."""
    req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one_or_none()
    if req is None or not can(user, Permission.REQUESTS_OWN, req):
        return None
    return req


def get_for_staff(user: Any, reference: str) -> RecordsRequest | None:
    if not can(user, Permission.REQUESTS_QUEUE):
        return None
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one_or_none()


def timeline(req: RecordsRequest, include_internal: bool) -> list[RequestEvent]:
    """The request's events, oldest first; the requester's view leaves internal ones out."""
    query = select(RequestEvent).where(RequestEvent.request_id == req.id)
    if not include_internal:
        query = query.where(RequestEvent.visibility == Visibility.REQUESTER)
    return list(db.session.execute(query.order_by(RequestEvent.id)).scalars())


def record_view(req: RecordsRequest, viewer: Any) -> None:
    """Audit one view of a request's page (by staff or by its requester)."""
    record("request.viewed", actor=viewer, object_type=OBJECT_TYPE, object_id=req.id)


# --- Submission --------------------------------------------------------------------------------

def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def closure_date() -> date:
    return date.fromisoformat(current_app.config["FACILITY_CLOSED_ON"])


def submission_problems(data: Mapping[str, Any], on: date) -> dict[str, str]:
    """Meaning checks on a shape-checked submission: ``{field: message}``, empty when valid."""
    errors: dict[str, str] = {}
    closed = closure_date()

    def too_long(key: str, limit: int) -> None:
        value = _text(data, key)
        if value is not None and len(value) > limit:
            errors[key] = _("Please keep this under %(n)d characters.", n=limit)

    if not _text(data, "patient_name"):
        errors["patient_name"] = _("Enter the patient's full name.")
    for key in ("patient_name", "patient_former_names", "requester_name", "recipient_name", "attestation_name"):
        too_long(key, NAME_MAX)
    for key in ("mail_address", "recipient_address"):
        too_long(key, ADDRESS_MAX)
    for key in ("details", "purpose"):
        too_long(key, TEXT_MAX)

    dob = data.get("patient_dob")
    if not isinstance(dob, date):
        errors["patient_dob"] = _("Enter the patient's date of birth.")
    elif dob > on:
        errors["patient_dob"] = _("The date of birth cannot be in the future.")
    elif dob < EARLIEST_DOB:
        errors["patient_dob"] = _("Check the year of birth.")
    stay_from, stay_to = data.get("stay_from"), data.get("stay_to")
    if isinstance(stay_from, date) and stay_from > closed:
        errors["stay_from"] = _("The facility closed on %(day)s; a stay cannot start after that.",
                                day=format_date(closed))
    if isinstance(stay_to, date) and stay_to > closed:
        errors["stay_to"] = _("The facility closed on %(day)s; a stay cannot end after that.", day=format_date(closed))
    if isinstance(stay_from, date) and isinstance(stay_to, date) and stay_to < stay_from:
        errors.setdefault("stay_to", _("The end of the stay is before its start."))
    if isinstance(dob, date) and isinstance(stay_from, date) and stay_from < dob:
        errors.setdefault("stay_from", _("The stay starts before the date of birth."))

    try:
        relationship = RequesterRelationship(data.get("relationship_to_patient"))
    except ValueError:
        errors["relationship_to_patient"] = _("Choose how you are related to the patient.")
        relationship = None
    if relationship is not None and relationship != RequesterRelationship.SELF and not _text(data, "requester_name"):
        errors["requester_name"] = _("Enter your own full name, as the patient's representative.")

    try:
        request_type = RequestType(data.get("request_type"))
    except ValueError:
        errors["request_type"] = _("Choose what you are asking for.")
        request_type = None
    if request_type == RequestType.THIRD_PARTY:
        if not _text(data, "recipient_name"):
            errors["recipient_name"] = _("Enter who should receive the copy.")
        if not _text(data, "recipient_address"):
            errors["recipient_address"] = _("Enter the recipient's address.")
        if not _text(data, "purpose"):
            errors["purpose"] = _("Say what the records are for.")
    if request_type == RequestType.ADDENDUM:
        addendum = _text(data, "addendum_text")
        if not addendum:
            errors["addendum_text"] = _("Write the statement you want added to the record.")
        elif len(addendum.split()) > ADDENDUM_MAX_WORDS or len(addendum) > ADDENDUM_MAX_CHARS:
            errors["addendum_text"] = _("An addendum can have at most %(n)d words.", n=ADDENDUM_MAX_WORDS)

    try:
        scope = Scope(data.get("scope") or Scope.EVERYTHING)
    except ValueError:
        errors["scope"] = _("Choose which records you want.")
        scope = None
    if scope == Scope.DATES:
        scope_from, scope_to = data.get("scope_from"), data.get("scope_to")
        if not isinstance(scope_from, date) and not isinstance(scope_to, date):
            errors["scope_from"] = _("Give at least one of the two dates.")
        elif isinstance(scope_from, date) and isinstance(scope_to, date) and scope_to < scope_from:
            errors["scope_to"] = _("The end date is before the start date.")
    if scope == Scope.KINDS:
        kinds = list(data.get("scope_kinds") or [])
        if not kinds:
            errors["scope_kinds"] = _("Choose at least one kind of document.")
        elif any(kind not in set(DocumentKind) for kind in kinds):
            errors["scope_kinds"] = _("Choose from the list.")

    try:
        delivery = Delivery(data.get("delivery"))
    except ValueError:
        if request_type != RequestType.INSPECTION:
            errors["delivery"] = _("Choose how you want to receive the records.")
        delivery = None
    if delivery == Delivery.MAIL and request_type != RequestType.THIRD_PARTY and not _text(data, "mail_address"):
        errors["mail_address"] = _("Enter the postal address to send the records to.")
    if data.get("record_format") and data.get("record_format") not in set(RecordFormat):
        errors["record_format"] = _("Choose a format from the list.")

    if not data.get("attest"):
        errors["attest"] = _("Tick the box to confirm the statement.")
    if not _text(data, "attestation_name"):
        errors["attestation_name"] = _("Type your full name as your signature.")
    return errors


def _new_human_ref(year: int) -> str:
    """``RR-2026-7K4M``: short enough to read over the phone; longer if a year ever runs short."""
    for length in (4, 4, 4, 4, 5, 5, 6, 6, 8):
        ref = f"RR-{year}-" + "".join(secrets.choice(HUMAN_REF_ALPHABET) for _ in range(length))
        taken = db.session.execute(select(RecordsRequest.id).where(RecordsRequest.human_ref == ref)).first()
        if taken is None:
            return ref
    raise RuntimeError("could not find a free human reference")


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, date) else None


def submit_request(owner: User, data: Mapping[str, Any], now: datetime | None = None) -> RecordsRequest:
    """File a new request for ``owner``: checks, starts the clock, writes the first timeline
    event and the audit event, and queues the acknowledgment."""
    if not can(owner, Permission.REQUESTS_SUBMIT):
        raise RequestRefused("this account may not submit requests")
    now = now or utcnow()
    received_on = facility_day(now)
    errors = submission_problems(data, received_on)
    if errors:
        raise RequestInvalid(errors)
    request_type = RequestType(data["request_type"])
    policy = current_policy()
    due = clocks.compute_due(policy.rules[request_type], received_on, extra_holidays=extra_holidays())
    relationship = RequesterRelationship(data["relationship_to_patient"])
    scope = Scope(data.get("scope") or Scope.EVERYTHING)
    delivery = Delivery.PICKUP if request_type == RequestType.INSPECTION else Delivery(data["delivery"])
    req = RecordsRequest(
        human_ref=_new_human_ref(received_on.year),
        owner_id=owner.id,
        request_type=request_type,
        relationship_to_patient=relationship,
        patient_name=_text(data, "patient_name"),
        patient_former_names=_text(data, "patient_former_names"),
        patient_dob=_iso(data["patient_dob"]),
        stay_from=_iso(data.get("stay_from")),
        stay_to=_iso(data.get("stay_to")),
        requester_name=None if relationship == RequesterRelationship.SELF else _text(data, "requester_name"),
        scope=scope,
        scope_from=_iso(data.get("scope_from")) if scope == Scope.DATES else None,
        scope_to=_iso(data.get("scope_to")) if scope == Scope.DATES else None,
        scope_kinds=",".join(sorted(data.get("scope_kinds") or [])) if scope == Scope.KINDS else "",
        record_format=RecordFormat(data.get("record_format") or RecordFormat.ELECTRONIC),
        delivery=delivery,
        mail_address=_text(data, "mail_address") if delivery == Delivery.MAIL else None,
        recipient_name=_text(data, "recipient_name") if request_type == RequestType.THIRD_PARTY else None,
        recipient_address=_text(data, "recipient_address") if request_type == RequestType.THIRD_PARTY else None,
        purpose=_text(data, "purpose") if request_type == RequestType.THIRD_PARTY else None,
        addendum_text=_text(data, "addendum_text") if request_type == RequestType.ADDENDUM else None,
        details=_text(data, "details"),
        attestation_name=_text(data, "attestation_name"),
        attested_at=now,
        status=RequestStatus.SUBMITTED,
        is_open=True,
        received_at=now,
        clock_policy=policy.code,
        due_on=due.due_on,
    )
    db.session.add(req)
    db.session.flush()
    _event(req, EventKind.SUBMITTED, Visibility.REQUESTER, owner, to_status=RequestStatus.SUBMITTED)
    record("request.submitted", actor=owner, object_type=OBJECT_TYPE, object_id=req.id,
           details={"type": request_type.value, "policy": policy.code})
    _email(req, owner, Email.ACKNOWLEDGED)
    db.session.flush()
    return req


# --- Workflow ----------------------------------------------------------------------------------

def _event(req: RecordsRequest, kind: EventKind, visibility: Visibility, actor: Any, body: str | None = None,
           from_status: RequestStatus | None = None, to_status: RequestStatus | None = None) -> RequestEvent:
    event = RequestEvent(request_id=req.id, kind=kind, visibility=visibility,
                         actor_id=getattr(actor, "id", None), body=body,
                         from_status=None if from_status is None else from_status.value,
                         to_status=None if to_status is None else to_status.value)
    db.session.add(event)
    return event


_SUBJECTS = {
    Email.ACKNOWLEDGED: lambda ref: _("We received your records request %(ref)s", ref=ref),
    Email.ACTION_NEEDED: lambda ref: _("Action needed on your records request %(ref)s", ref=ref),
    Email.READY: lambda ref: _("Your records request %(ref)s is ready", ref=ref),
    Email.DECISION: lambda ref: _("A decision on your records request %(ref)s", ref=ref),
    Email.UPDATE: lambda ref: _("Your records request %(ref)s has an update", ref=ref),
    Email.EXTENDED: lambda ref: _("Notice: more time is needed for your records request %(ref)s", ref=ref),
}


def _email(req: RecordsRequest, owner: User | None, kind: Email) -> None:
    """Queue the notice for the requester: the reference and a link, never what the request is about."""
    owner = owner or db.session.get(User, req.owner_id)
    if owner is None or not owner.email:
        return
    link = public_url("my_requests.detail", reference=req.reference)
    subject = _SUBJECTS[kind](req.human_ref)
    body = _("Your records request %(ref)s has an update. Sign in to read it:\n\n%(link)s\n\n"
             "For your privacy this e-mail says nothing about the request itself.",
             ref=req.human_ref, link=link)
    queue_email(str(owner.email), f"records_{kind.value}", subject, body)


def check_version(req: RecordsRequest, expected: int | None) -> None:
    """Refuse a change made on a stale copy of the request."""
    if expected is not None and int(expected) != req.version:
        raise VersionConflict(req.reference)


def _flush() -> None:
    try:
        db.session.flush()
    except StaleDataError as exc:  # saved by someone else between our read and our write
        raise VersionConflict("stale") from exc


@dataclass(frozen=True)
class MoveInput:
    message: str | None = None
    note: str | None = None
    verification_method: str | None = None
    reason: str | None = None
    review_outcome: str | None = None


_MOVE_MESSAGES = {
    "message": lambda: _("Write the message the requester will read."),
    "note": lambda: _("Give the reason, for the record."),
    "verification_method": lambda: _("Choose how the identity was verified."),
    "reason": lambda: _("Choose a reason from the list."),
    "review_outcome": lambda: _("Choose the outcome of the review."),
}
_STATUS_PROBLEMS = {
    "not_verified": lambda: _("The requester's identity has not been verified yet."),
    "not_reviewable": lambda: _("This denial's reason is not one a review can reconsider."),
    "same_reviewer": lambda: _("A denial must be reviewed by someone other than the person who made it."),
    "wrong_return": lambda: _("The request goes back to the step it was waiting at."),
}


def _explain(problems: Mapping[str, str]) -> dict[str, str]:
    return {field: (_STATUS_PROBLEMS[code]() if field == "status" else _MOVE_MESSAGES[field]())
            for field, code in problems.items()}


def facts_for(req: RecordsRequest, actor: Any) -> Facts:
    return Facts(awaiting_return_to=req.awaiting_return_to, verified=req.verified_at is not None,
                 decision_reason=req.decision_reason, decided_by_id=req.decided_by_id,
                 actor_id=getattr(actor, "id", None))


def _check_text(field: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise RequestInvalid({field: _("Please keep this under %(n)d characters.", n=limit)})


def transition(req: RecordsRequest, target: RequestStatus | str, actor: User, move: MoveInput = MoveInput(),
               expected_version: int | None = None, now: datetime | None = None) -> RecordsRequest:
    """Move ``req`` to ``target`` if the table lets ``actor`` do it and everything it needs is given."""
    target = RequestStatus(target)
    who = actor_for(actor, req)
    try:
        rule = rule_for(req.status, target, who)
    except TransitionRefused as exc:
        raise RequestRefused(str(exc)) from exc
    check_version(req, expected_version)
    message = (move.message or "").strip() or None
    note = (move.note or "").strip() or None
    _check_text("message", message, MESSAGE_MAX)
    _check_text("note", note, TEXT_MAX)
    problems = missing(rule, target, facts_for(req, actor), Given(message, note, move.verification_method,
                                                                     move.reason, move.review_outcome))
    if problems:
        raise RequestInvalid(_explain(problems))

    now = now or utcnow()
    source = req.status
    policy = _policy_of(req)
    visibility = Visibility.REQUESTER
    if source == RequestStatus.AWAITING_REQUESTER and req.paused_since is not None:
        days = clocks.paused_day_count(req.paused_since, now, current_app.config["FACILITY_TIMEZONE"])
        req.paused_days += days
        req.paused_since = None
        _event(req, EventKind.CLOCK_RESUMED, Visibility.REQUESTER, actor,
               body=_("The clock restarted after %(n)d days.", n=days))
    if target == RequestStatus.AWAITING_REQUESTER:
        req.awaiting_return_to = source
        if policy.pause_while_awaiting:
            req.paused_since = now
            _event(req, EventKind.CLOCK_PAUSED, Visibility.REQUESTER, actor,
                   body=_("The clock is stopped while we wait for your reply."))
    elif source == RequestStatus.AWAITING_REQUESTER:
        req.awaiting_return_to = None
    if source == RequestStatus.VERIFYING and target == RequestStatus.IN_REVIEW:
        req.verification_method = move.verification_method
        req.verified_by_id = actor.id
        req.verified_at = now
    letter = None
    if target in (RequestStatus.DENIED, RequestStatus.PARTIALLY_FULFILLED):
        req.decision_reason = move.reason
        req.decided_by_id = actor.id
        letter = decision_letter(target, move.reason)
    if target == RequestStatus.REVIEW_REQUESTED:
        req.review_requested_at = now
    if target == RequestStatus.REVIEW_DECIDED:
        req.review_outcome = move.review_outcome
        letter = str(REVIEW_OUTCOME_LABELS[move.review_outcome]) + "."
    req.status = target
    req.is_open = target in OPEN_STATUSES
    req.closed_at = None if req.is_open else now
    req.due_on = due_date(req).due_on

    body = "\n\n".join(part for part in (letter, message) if part) or None
    _event(req, EventKind.STATUS, visibility, actor, body=body, from_status=source, to_status=target)
    if note:
        _event(req, EventKind.NOTE, Visibility.INTERNAL, actor, body=note)
    details = {"from": source.value, "to": target.value}
    if target in (RequestStatus.DENIED, RequestStatus.PARTIALLY_FULFILLED):
        details["reason"] = move.reason
    if req.verification_method and target == RequestStatus.IN_REVIEW and source == RequestStatus.VERIFYING:
        details["verification_method"] = req.verification_method
    record("request.transition", actor=actor, object_type=OBJECT_TYPE, object_id=req.id, details=details)
    if rule.email is not None:
        _email(req, None, rule.email)
    _flush()
    return req


def decision_letter(target: RequestStatus, reason: str | None) -> str:
    """The plain-language part of a denial or partial release the requester reads: the reason,
    the right to a review where the law gives one, and how to complain."""
    facility = current_app.config["FACILITY_NAME"]
    if target == RequestStatus.PARTIALLY_FULFILLED:
        return _("We could provide only part of the records. %(reason)s", reason=PARTIAL_LABELS[reason])
    lines = [_("We cannot provide the records you asked for. %(reason)s", reason=DENIAL_LABELS[reason])]
    if reason in REVIEWABLE_REASONS:
        lines.append(_("You have the right to have this decision reviewed by a licensed health professional who "
                       "did not take part in it. To ask for a review, use the button on this page or write to us."))
    lines.append(_("If you believe your rights have been violated, you can complain to %(facility)s's privacy "
                   "officer, and to the U.S. Department of Health and Human Services, Office for Civil Rights "
                   "(hhs.gov/ocr/complaints). We will not hold a complaint against you.", facility=facility))
    return "\n\n".join(str(line) for line in lines)


def reply(req: RecordsRequest, actor: User, body: str) -> RequestEvent | None:
    """The requester writes to staff. While the request waits on them, the reply sends it back
    to where it was (and restarts a paused clock); otherwise it is a message on the timeline."""
    if actor_for(actor, req) is not Actor.REQUESTER:
        raise RequestRefused("only the requester replies through the portal")
    body = (body or "").strip()
    if not body:
        raise RequestInvalid({"body": _("Write your message.")})
    _check_text("body", body, MESSAGE_MAX)
    if not req.is_open and req.status != RequestStatus.DENIED:
        raise RequestInvalid({"body": _("This request is closed. To ask for something new, start a new request.")})
    if req.status == RequestStatus.AWAITING_REQUESTER and req.awaiting_return_to is not None:
        transition(req, req.awaiting_return_to, actor, MoveInput(message=body))
        return None
    event = _event(req, EventKind.MESSAGE, Visibility.REQUESTER, actor, body=body)
    record("request.message", actor=actor, object_type=OBJECT_TYPE, object_id=req.id, details={"from": "requester"})
    _flush()
    return event


def send_message(req: RecordsRequest, actor: User, body: str) -> RequestEvent:
    """Staff write to the requester: on the timeline, with an e-mail saying there is news."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff send messages to the requester")
    body = (body or "").strip()
    if not body:
        raise RequestInvalid({"body": _("Write your message.")})
    _check_text("body", body, MESSAGE_MAX)
    event = _event(req, EventKind.MESSAGE, Visibility.REQUESTER, actor, body=body)
    record("request.message", actor=actor, object_type=OBJECT_TYPE, object_id=req.id, details={"from": "staff"})
    _email(req, None, Email.UPDATE)
    _flush()
    return event


def add_note(req: RecordsRequest, actor: User, body: str) -> RequestEvent:
    """An internal note between staff; the requester never sees it."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff write internal notes")
    body = (body or "").strip()
    if not body:
        raise RequestInvalid({"body": _("Write the note.")})
    _check_text("body", body, MESSAGE_MAX)
    event = _event(req, EventKind.NOTE, Visibility.INTERNAL, actor, body=body)
    record("request.note", actor=actor, object_type=OBJECT_TYPE, object_id=req.id)
    _flush()
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
    _event(req, EventKind.ASSIGNED, Visibility.INTERNAL, actor)
    record("request.assigned", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"assignee_id": new_id})
    _flush()


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
    _check_text("reason", reason, TEXT_MAX)
    rule = _policy_of(req).rules[req.request_type]
    try:
        days = clocks.check_extension(rule, req.due_on, on or today(), req.extended_days, reason)
    except clocks.ExtensionRefused as exc:
        raise RequestInvalid({"reason": _EXTENSION_PROBLEMS[str(exc)]()}) from exc
    req.extended_days = days
    req.extension_reason = reason
    req.due_on = due_date(req).due_on
    notice = _("We need more time to complete your request. Reason: %(reason)s\n\nWe will complete it by "
               "%(day)s.", reason=reason, day=format_date(req.due_on))
    _event(req, EventKind.EXTENDED, Visibility.REQUESTER, actor, body=notice)
    record("request.extended", actor=actor, object_type=OBJECT_TYPE, object_id=req.id, details={"days": days})
    _email(req, None, Email.EXTENDED)
    _flush()
    return req
