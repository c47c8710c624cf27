"""Filing a records request: what the answers must mean together, the references, the clock's
start, the first timeline entry, the audit event and the acknowledgment, in one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import select

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, can
from intake.records import clocks, deadlines, letters
from intake.records.common import (
    ADDENDUM_MAX_CHARS,
    ADDENDUM_MAX_WORDS,
    ADDRESS_MAX,
    NAME_MAX,
    OBJECT_TYPE,
    TEXT_MAX,
    RequestInvalid,
    RequestRefused,
    add_event,
    notify_requester,
)
from intake.records.models import (
    Delivery,
    DocumentKind,
    EventKind,
    RecordFormat,
    RecordsRequest,
    RequesterRelationship,
    RequestStatus,
    RequestType,
    Scope,
    Visibility,
)
from intake.records.workflow import Email
from intake.users.models import User

EARLIEST_DOB = date(1900, 1, 1)
HUMAN_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


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
        errors["patient_dob"] = _("The year of birth is %(year)d: it must be %(first)d or later.",
                                  year=dob.year, first=EARLIEST_DOB.year)
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
        relationship = RequesterRelationship(data.get("relationship_to_patient") or "")
    except ValueError:
        errors["relationship_to_patient"] = _("Choose how you are related to the patient.")
        relationship = None
    if relationship is not None and relationship != RequesterRelationship.SELF and not _text(data, "requester_name"):
        errors["requester_name"] = _("Enter your own full name, as the patient's representative.")

    try:
        request_type = RequestType(data.get("request_type") or "")
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
        delivery = Delivery(data.get("delivery") or "")
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
    received_on = deadlines.facility_day(now)
    errors = submission_problems(data, received_on)
    if errors:
        raise RequestInvalid(errors)
    request_type = RequestType(data["request_type"])
    policy = deadlines.current_policy()
    record_format = RecordFormat(data.get("record_format") or RecordFormat.ELECTRONIC)
    due = clocks.compute_due(clocks.rule_for(policy, request_type, record_format), received_on,
                             extra_holidays=deadlines.extra_holidays())
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
        record_format=record_format,
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
    add_event(req, EventKind.SUBMITTED, Visibility.REQUESTER, owner, to_status=RequestStatus.SUBMITTED)
    letters.store_letter(req, "acknowledgment", None)  # printable: what was asked, the due date and the rule
    record("request.submitted", actor=owner, object_type=OBJECT_TYPE, object_id=req.id,
           details={"type": request_type.value, "policy": policy.code})
    notify_requester(req, owner, Email.ACKNOWLEDGED)
    db.session.flush()
    return req
