"""Filing a records request: what the answers must mean together, the references, the clock's
start, the first timeline entry, the audit event and the acknowledgment, in one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import select

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.i18n import supported
from intake.permissions import Permission, can
from intake.records import clocks, deadlines, letters
from intake.records.common import (
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
    Channel,
    Delivery,
    DocumentKind,
    EventCode,
    EventKind,
    FileKind,
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


def addendum_words(text: str | None) -> int:
    """The words of an addendum, as a reader counts them (H&S 123111(a): "shall not exceed 250 words").
    Whitespace separates words; punctuation alone is not a word."""
    return sum(1 for token in (text or "").split() if any(ch.isalnum() for ch in token))


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
        elif addendum_words(addendum) > ADDENDUM_MAX_WORDS:  # H&S 123111(a): counted in words, not characters
            errors["addendum_text"] = _("An addendum can have at most %(n)d words; this one has %(count)d.",
                                        n=ADDENDUM_MAX_WORDS, count=addendum_words(addendum))

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

    if data.get("recipient_language") and not supported(data.get("recipient_language")):
        errors["recipient_language"] = _("Choose the recipient's language from the list.")
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
    """File a new request for ``owner`` through the portal: checks, starts the clock now, writes the
    first timeline event and the audit event, and queues the acknowledgment."""
    if not can(owner, Permission.REQUESTS_SUBMIT):
        raise RequestRefused("this account may not submit requests")
    now = now or utcnow()
    errors = submission_problems(data, deadlines.facility_day(now))
    if errors:
        raise RequestInvalid(errors)
    req = _create(data, received_at=now, attested_at=now, owner_id=owner.id, channel=Channel.PORTAL)
    add_event(req, EventKind.SUBMITTED, Visibility.REQUESTER, owner, to_status=RequestStatus.SUBMITTED)
    letters.store_letter(req, "acknowledgment", None)  # printable: what was asked, the due date and the rule
    record("request.submitted", actor=owner, object_type=OBJECT_TYPE, object_id=req.id,
           details={"type": req.request_type.value, "policy": req.clock_policy})
    notify_requester(req, owner, Email.ACKNOWLEDGED)
    db.session.flush()
    return req


def _create(data: Mapping[str, Any], *, received_at: datetime, attested_at: datetime, owner_id: int | None,
            channel: Channel, entered_by_id: int | None = None, requester_language: str | None = None
            ) -> RecordsRequest:
    """The request row from checked ``data``, its clock started at ``received_at``."""
    received_on = deadlines.facility_day(received_at)
    request_type = RequestType(data["request_type"])
    policy = deadlines.current_policy()
    record_format = RecordFormat(data.get("record_format") or RecordFormat.ELECTRONIC)
    due = clocks.compute_due(clocks.rule_for(policy, request_type, record_format), received_on,
                             extra_holidays=deadlines.extra_holidays())
    relationship = RequesterRelationship(data["relationship_to_patient"])
    scope = Scope(data.get("scope") or Scope.EVERYTHING)
    delivery = Delivery.PICKUP if request_type == RequestType.INSPECTION else Delivery(data["delivery"])
    # Letters go by post when there is no account: the postal address is kept whatever the delivery.
    keep_address = delivery == Delivery.MAIL or owner_id is None
    req = RecordsRequest(
        human_ref=_new_human_ref(received_on.year),
        owner_id=owner_id,
        channel=channel,
        entered_by_id=entered_by_id,
        requester_language=requester_language,
        recipient_language=supported(data.get("recipient_language")) or "en",
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
        mail_address=_text(data, "mail_address") if keep_address else None,
        recipient_name=_text(data, "recipient_name") if request_type == RequestType.THIRD_PARTY else None,
        recipient_address=_text(data, "recipient_address") if request_type == RequestType.THIRD_PARTY else None,
        purpose=_text(data, "purpose") if request_type == RequestType.THIRD_PARTY else None,
        addendum_text=_text(data, "addendum_text") if request_type == RequestType.ADDENDUM else None,
        details=_text(data, "details"),
        attestation_name=_text(data, "attestation_name"),
        attested_at=attested_at,
        status=RequestStatus.SUBMITTED,
        is_open=True,
        received_at=received_at,
        clock_policy=policy.code,
        due_on=due.due_on,
    )
    db.session.add(req)
    db.session.flush()
    return req


# --- Requests received on paper, by fax or in person (entered by records staff) -------------------
# A request for records must be in writing (H&S 123110(b); 45 CFR 164.524(b)(1) lets a facility ask for
# that); a written request that arrives by post or fax, is handed in, or follows a phone call, is entered
# by records staff with its true receipt time, and the clock runs from that moment, not from the moment
# it was typed in. The scanned request is kept on it. No account is needed: letters go by post to the
# address given (an account can be linked later).

PAPER_CHANNELS = frozenset(Channel) - {Channel.PORTAL}
OLDEST_RECEIPT_DAYS = 366  # a receipt more than a year ago is refused as a typing mistake


def entry_problems(data: Mapping[str, Any], received_at: datetime | None, now: datetime,
                   scan: bytes | None) -> dict[str, str]:
    """What a staff-entered request lacks beyond a portal one's checks: a real receipt time, never in
    the future; how it arrived; the scanned request; the postal address letters go to; the language."""
    errors = submission_problems(data, deadlines.facility_day(received_at or now))
    if received_at is None:
        errors["received_at"] = _("Enter the date and time the request was received, like 2026-05-17 09:30.")
    elif received_at > now:
        errors["received_at"] = _("The time of receipt cannot be in the future: enter when the request arrived.")
    elif received_at < now - timedelta(days=OLDEST_RECEIPT_DAYS):
        errors["received_at"] = _("Check the time of receipt: it is more than a year ago.")
    if data.get("channel") not in {c.value for c in PAPER_CHANNELS}:
        errors["channel"] = _("Choose how the request arrived.")
    if not _text(data, "mail_address"):
        errors["mail_address"] = _("Enter the requester's postal address: without an account, letters go by post.")
    if data.get("requester_language") not in current_app.config["LANGUAGES"]:
        errors["requester_language"] = _("Choose the language of the letters.")
    if not scan:
        errors.setdefault("scan", _("Attach the scanned request (PDF, PNG or JPEG)."))
    return errors


def enter_request(actor: User, data: Mapping[str, Any], received_at: datetime | None,
                  scan: tuple[str | None, bytes] | None, now: datetime | None = None) -> RecordsRequest:
    """Records staff enter a written request received by post, fax, in person or after a call, with
    its true receipt time (the clock runs from it) and the scanned request; no account needed."""
    # Imported here: documents builds on this package's services.
    from intake.records.documents import store_document

    if not can(actor, Permission.REQUESTS_QUEUE):
        raise RequestRefused("only records staff enter requests received on paper")
    now = now or utcnow()
    errors = entry_problems(data, received_at, now, scan[1] if scan else None)
    if errors:
        raise RequestInvalid(errors)
    assert received_at is not None and scan is not None
    req = _create(data, received_at=received_at, attested_at=received_at, owner_id=None,
                  channel=Channel(data["channel"]), entered_by_id=actor.id,
                  requester_language=data["requester_language"])
    store_document(req, FileKind.REQUEST_SCAN, scan[0], scan[1], actor, Visibility.INTERNAL)
    add_event(req, EventKind.SUBMITTED, Visibility.REQUESTER, actor, to_status=RequestStatus.SUBMITTED)
    letters.store_letter(req, "acknowledgment", actor)  # printed and posted to the requester
    record("request.entered", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"type": req.request_type.value, "policy": req.clock_policy, "channel": req.channel.value})
    db.session.flush()
    return req


def link_account(req: RecordsRequest, actor: User, email: str, expected_version: int | None = None) -> User:
    """Link a requester's account (found by its e-mail address) to a request entered from paper, so the
    requester follows it online from then on; the account must be a verified requester's."""
    from intake.records.common import check_version
    from intake.users.models import Role
    from intake.users.services import find_by_email

    if not can(actor, Permission.REQUESTS_QUEUE):
        raise RequestRefused("only records staff link accounts")
    check_version(req, expected_version)
    if req.owner_id is not None:
        raise RequestInvalid({"request": _("This request already belongs to an account.")})
    user = find_by_email(email or "")
    if user is None or not user.active or user.roles != {Role.REQUESTER} or user.email_verified_at is None:
        raise RequestInvalid({"email": _("No active requester account with a confirmed address has this e-mail "
                                         "address. Ask the requester to register first.")})
    req.owner_id = user.id
    add_event(req, EventKind.NOTE, Visibility.INTERNAL, actor, code=EventCode.ACCOUNT_LINKED)
    record("request.account_linked", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"user_id": user.id})
    notify_requester(req, user, Email.ACKNOWLEDGED)
    db.session.flush()
    return user
