"""Records-request models.

Coded fields (type, relationship, scope, delivery, state, clock) are plain columns so the queue
can filter and sort on them and dashboards can count them. Everything that names or describes
the patient (names, date of birth, dates of stay, addresses, the attestation's typed name, the
addendum, message bodies) is encrypted. ``due_on`` is computed by ``intake.records.clocks``;
nobody types it.

Each request has two references: ``reference`` (22 URL-safe characters, 128 random bits) is the
only one that appears in URLs; ``human_ref`` (``RR-2026-7K4M``) is for the phone and letters and
grants nothing on its own.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from intake.db_types import UTCDateTime, coded_enum, utcnow
from intake.extensions import Model
from intake.security.crypto import EncryptedText, new_uid
from intake.users.models import LicenceType


class RequestType(StrEnum):
    COPY = "copy"  # a copy for the patient (or their representative)
    THIRD_PARTY = "third_party"  # a copy sent to someone else
    INSPECTION = "inspection"  # look at the records in person
    ACCOUNTING = "accounting"  # accounting of disclosures
    ADDENDUM = "addendum"  # add a statement to the record (at most 250 words)


class Channel(StrEnum):
    """How the request reached the facility. Only ``portal`` requests are filed by the requester;
    the others are written requests records staff enter with their true receipt time."""

    PORTAL = "portal"
    MAIL = "mail"
    FAX = "fax"
    IN_PERSON = "in_person"
    PHONE_THEN_WRITING = "phone_writing"  # a call, followed by the written request (H&S 123110(b))


class RequesterRelationship(StrEnum):
    SELF = "self"
    PERSONAL_REPRESENTATIVE = "personal_representative"
    DECEASED_REPRESENTATIVE = "deceased_representative"


class Scope(StrEnum):
    EVERYTHING = "everything"
    DATES = "dates"
    KINDS = "kinds"


class DocumentKind(StrEnum):
    DISCHARGE_SUMMARY = "discharge_summary"
    HISTORY_AND_PHYSICAL = "history_and_physical"
    MEDICATIONS = "medications"
    LAB_RESULTS = "lab_results"
    PROGRESS_NOTES = "progress_notes"
    TREATMENT_PLAN = "treatment_plan"
    BILLING = "billing"


class Delivery(StrEnum):
    SECURE_DOWNLOAD = "secure_download"
    MAIL = "mail"
    PICKUP = "pickup"


class RecordFormat(StrEnum):
    ELECTRONIC = "electronic"
    PAPER = "paper"


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    VERIFYING = "verifying"
    IN_REVIEW = "in_review"
    AWAITING_REQUESTER = "awaiting_requester"
    FULFILLED = "fulfilled"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    DENIED = "denied"
    NO_RECORDS = "no_records"
    WITHDRAWN = "withdrawn"
    REVIEW_REQUESTED = "review_requested"
    REVIEW_DECIDED = "review_decided"


OPEN_STATUSES = frozenset({
    RequestStatus.SUBMITTED, RequestStatus.VERIFYING, RequestStatus.IN_REVIEW,
    RequestStatus.AWAITING_REQUESTER, RequestStatus.REVIEW_REQUESTED,
})


class EventKind(StrEnum):
    SUBMITTED = "submitted"
    STATUS = "status"  # a transition
    MESSAGE = "message"  # to or from the requester
    NOTE = "note"  # internal note between staff
    ASSIGNED = "assigned"
    EXTENDED = "extended"
    CLOCK_PAUSED = "clock_paused"
    CLOCK_RESUMED = "clock_resumed"
    DELIVERED = "delivered"
    DOCUMENT = "document"  # a file added, released or revoked
    FEE_ESTIMATE = "fee_estimate"
    PROFESSIONAL = "professional"  # a licensed professional's decision recorded, or one designated (123115(b))


class EventCode(StrEnum):
    """What a timeline entry says, as a code: ``intake.records.timeline`` words it in the reader's
    language when the page is drawn (``docs/development.md``: adding an event code). Never stored as text."""

    DOCUMENT_FROM_REQUESTER = "document.from_requester"
    DOCUMENT_ADDED = "document.added"
    DOCUMENT_RELEASED = "document.released"
    DOCUMENT_REVOKED = "document.revoked"
    FEE_ESTIMATE = "fee.estimate"
    PROFESSIONAL_DENIAL = "professional.denial"
    PROFESSIONAL_REVIEW = "professional.review"
    PROFESSIONAL_DESIGNATED = "professional.designated"
    CONSENT_SIGNED = "consent.signed"
    CONSENT_PAPER = "consent.paper"
    CONSENT_REVOKED_ONLINE = "consent.revoked_online"
    CONSENT_REVOKED_IN_WRITING = "consent.revoked_in_writing"
    ACCOUNT_LINKED = "account.linked"
    EXTENDED = "extended"
    DELIVERED = "delivered"  # to the requester: params ``method``
    DISCLOSED = "disclosed"  # to a third party or a designated professional: ``recipient``, ``method``
    NO_RECORDS = "decision.no_records"  # ``reason``, ``custodian``
    DENIED = "decision.denied"  # ``reason``
    PARTIAL = "decision.partial"  # ``reason``
    REVIEW_DECIDED = "review.decided"  # ``outcome``
    ANSWERED_WITH_DOCUMENT = "answer.document"  # the requester's answer is a document: ``kind``
    FEE_ACCEPTED = "fee.accepted"  # the requester's answer to a cost estimate: ``total``
    FEE_DECLINED = "fee.declined"  # ``total``
    WITHDRAW_REASON = "withdraw.reason"  # why staff withdrew the request (internal): ``reason``; their words in body


class Visibility(StrEnum):
    INTERNAL = "internal"
    REQUESTER = "requester"


class FileKind(StrEnum):
    PHOTO_ID = "photo_id"  # uploaded by the requester
    PROOF_OF_AUTHORITY = "proof_of_authority"  # a representative's power of attorney, letters, order
    REQUESTER_OTHER = "requester_other"  # anything else staff asked the requester for
    RELEASED_RECORD = "released_record"  # records released to the requester (staff upload)
    LETTER = "letter"  # a letter generated from a template and stored on the request
    INTERNAL = "internal"  # working papers staff keep on the request
    REQUEST_SCAN = "request_scan"  # the written request received by post, fax or in person (staff-entered)
    PROFESSIONAL = "professional"  # a licensed professional's written decision or a patient's designation


class NoRecordsReason(StrEnum):
    NOT_IN_INDEX = "not_in_index"  # no such patient in the archive index
    DESTROYED = "destroyed"  # destroyed (in the fire, or at the end of retention)
    HELD_ELSEWHERE = "held_elsewhere"  # held by a named custodian


class DeliveryMethod(StrEnum):
    DOWNLOAD = "download"
    MAIL = "mail"
    PICKUP = "pickup"
    INSPECTION = "inspection"
    FAX = "fax"
    RECIPIENT_LINK = "recipient_link"  # a one-time secure link e-mailed to the recipient (``recipient``)


class FeeBasis(StrEnum):
    PAPER = "paper"  # per page, California cap
    MICROFILM = "microfilm"  # per page from microfilm, California cap
    ELECTRONIC_FLAT = "electronic_flat"  # the flat fee for an electronic copy
    # Free under Health & Safety Code §123110 as amended by AB 2520 (each needs the written request
    # and proof the copy is needed for it):
    BENEFITS_APPEAL = "benefits_appeal"  # a claim or appeal for a public benefit program
    U_VISA = "u_visa"  # a petition for U nonimmigrant status
    VAWA_SELF_PETITION = "vawa_self_petition"  # a VAWA self-petition for lawful permanent residence
    LEGAL_AID_BENEFITS = "legal_aid_benefits"  # a legal-aid representative's public-benefits claim
    WAIVED = "waived"


class FeeDecision(StrEnum):
    """The requester's answer to a cost estimate (H&S 123110: the estimate comes before the work)."""

    ACCEPTED = "accepted"  # go ahead at this cost
    DECLINED = "declined"  # not at this cost: the office writes about the other ways (inspection, a smaller request)


class DisclosureBasis(StrEnum):
    """What made a logged disclosure lawful (``intake.records.gate``)."""

    CONSENT = "consent"  # a written consent that meets 42 CFR 2.31 and matches the request
    EMERGENCY = "emergency"  # a bona fide medical emergency, 42 CFR 2.51
    DESIGNATED_PROFESSIONAL = "designated"  # the licensed professional the patient designated, H&S 123115(b)


class ProfessionalRole(StrEnum):
    """Why a licensed professional is named on a request."""

    DENIAL = "denial"  # made a denial on clinical grounds (45 CFR 164.524(a)(3); H&S 123115(b))
    REVIEW = "review"  # reviewed such a denial (45 CFR 164.524(a)(4), (d)(4))
    DESIGNATED = "designated"  # chosen by the patient to receive the records instead (H&S 123115(b))


def new_reference() -> str:
    """128 random bits, URL-safe: the only reference that appears in a URL."""
    return secrets.token_urlsafe(16)


class RecordsRequest(Model):
    __tablename__ = "records_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    reference: Mapped[str] = mapped_column(String(32), unique=True, default=new_reference)
    human_ref: Mapped[str] = mapped_column(String(20), unique=True)
    # The requester's account; None for a request entered by staff from paper until an account is linked.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    channel: Mapped[Channel] = mapped_column(coded_enum(Channel, "request_channel", 16), default=Channel.PORTAL)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # staff who entered a paper request
    # Letters to a requester without an account are written in this language; letters and the
    # §2.32 notice to a third party in ``recipient_language`` (English unless chosen otherwise).
    requester_language: Mapped[str | None] = mapped_column(String(8))
    recipient_language: Mapped[str] = mapped_column(String(8), default="en")

    request_type: Mapped[RequestType] = mapped_column(coded_enum(RequestType, "request_type", 16))
    relationship_to_patient: Mapped[RequesterRelationship] = mapped_column(
        coded_enum(RequesterRelationship, "requester_relationship", 32))

    # Who the patient is.
    patient_name: Mapped[str] = mapped_column(EncryptedText)
    patient_former_names: Mapped[str | None] = mapped_column(EncryptedText)
    patient_dob: Mapped[str] = mapped_column(EncryptedText)  # ISO date
    stay_from: Mapped[str | None] = mapped_column(EncryptedText)  # ISO date, approximate
    stay_to: Mapped[str | None] = mapped_column(EncryptedText)
    requester_name: Mapped[str | None] = mapped_column(EncryptedText)  # when not the patient

    # What is asked for, and how it is to be delivered.
    scope: Mapped[Scope] = mapped_column(coded_enum(Scope, "request_scope", 16), default=Scope.EVERYTHING)
    scope_from: Mapped[str | None] = mapped_column(EncryptedText)
    scope_to: Mapped[str | None] = mapped_column(EncryptedText)
    scope_kinds: Mapped[str] = mapped_column(String(200), default="")  # comma-separated DocumentKind codes
    record_format: Mapped[RecordFormat] = mapped_column(
        coded_enum(RecordFormat, "record_format", 16), default=RecordFormat.ELECTRONIC)
    delivery: Mapped[Delivery] = mapped_column(coded_enum(Delivery, "delivery", 16))
    mail_address: Mapped[str | None] = mapped_column(EncryptedText)
    recipient_name: Mapped[str | None] = mapped_column(EncryptedText)  # third-party requests
    recipient_address: Mapped[str | None] = mapped_column(EncryptedText)
    purpose: Mapped[str | None] = mapped_column(EncryptedText)
    addendum_text: Mapped[str | None] = mapped_column(EncryptedText)
    details: Mapped[str | None] = mapped_column(EncryptedText)

    # The signed attestation.
    attestation_name: Mapped[str] = mapped_column(EncryptedText)
    attested_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Workflow.
    status: Mapped[RequestStatus] = mapped_column(
        coded_enum(RequestStatus, "request_status", 24), default=RequestStatus.SUBMITTED)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    awaiting_return_to: Mapped[RequestStatus | None] = mapped_column(
        coded_enum(RequestStatus, "request_return_status", 24))
    verification_method: Mapped[str | None] = mapped_column(String(32))
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(String(32))  # denial or partial-release reason code
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The licence of the professional who made a clinical denial, and of the reviewer ("LCSW 12345 CA"):
    # a snapshot, so a later change of a staff account's licence does not rewrite who decided.
    decision_licence: Mapped[str | None] = mapped_column(String(48))
    review_outcome: Mapped[str | None] = mapped_column(String(16))
    review_licence: Mapped[str | None] = mapped_column(String(48))
    review_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # starts the review's own clock
    archived_patient_id: Mapped[int | None] = mapped_column(ForeignKey("archived_patients.id"))  # the match
    no_records_reason: Mapped[NoRecordsReason | None] = mapped_column(
        coded_enum(NoRecordsReason, "no_records_reason", 16))
    no_records_custodian: Mapped[str | None] = mapped_column(EncryptedText)  # who holds them instead
    # Delivery: what was handed over, how and when (secure download, mail, pick-up or inspection).
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivery_method: Mapped[DeliveryMethod | None] = mapped_column(coded_enum(DeliveryMethod, "delivery_method", 16))
    delivery_note: Mapped[str | None] = mapped_column(EncryptedText)  # tracking number, who picked up

    # Clock: everything needed to recompute and explain the due date.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    clock_policy: Mapped[str] = mapped_column(String(16))
    due_on: Mapped[date] = mapped_column(Date)
    extended_days: Mapped[int] = mapped_column(Integer, default=0)
    extension_reason: Mapped[str | None] = mapped_column(EncryptedText)
    # Days spent waiting for the requester, and since when it waits now: shown on the request, never
    # added to the due date (neither H&S 123110 nor 45 CFR 164.524 lets the clock stop).
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    paused_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    events: Mapped[list[RequestEvent]] = relationship(back_populates="request", lazy="raise",
                                                      order_by="RequestEvent.id")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # The queue: open requests by due date (keyset on (due_on, id)), per tab.
        Index("ix_records_requests_open_due", "is_open", "due_on", "id"),
        Index("ix_records_requests_status_due", "status", "due_on", "id"),
        Index("ix_records_requests_assignee_due", "assignee_id", "is_open", "due_on", "id"),
        # A requester's own list, newest first.
        Index("ix_records_requests_owner", "owner_id", "id"),
        # The dashboard: requests received, and closed, in a date range.
        Index("ix_records_requests_received", "received_at", "status"),
        Index("ix_records_requests_closed", "closed_at", "status"),
        # The dashboard's records figures read from these alone (covering: no row lookup per request,
        # 5,500 a month at a million calls): days to close, on time and denials (closed_requests,
        # denials_by_reason), and the requests received with their extensions (extensions_used).
        Index("ix_records_requests_closed_took", "closed_at", "received_at", "due_on", "status", "decision_reason"),
        Index("ix_records_requests_received_extended", "received_at", "extended_days"),
        # The dashboard's open requests by age (open_request_ages): the open ones received since each
        # bound, seeked per open status instead of checking the status of every request received
        # (2.8 -> 1.1 ms of SQLite CPU at a million calls, 6,000 open).
        Index("ix_records_requests_status_received", "status", "received_at"),
    )

    @property
    def kinds(self) -> list[str]:
        return [k for k in self.scope_kinds.split(",") if k]


class RequestEvent(Model):
    """One entry of a request's timeline. ``visibility`` decides whether the requester sees it."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    request_id: Mapped[int] = mapped_column(ForeignKey("records_requests.id", ondelete="CASCADE"))
    kind: Mapped[EventKind] = mapped_column(coded_enum(EventKind, "request_event_kind", 16))
    visibility: Mapped[Visibility] = mapped_column(coded_enum(Visibility, "request_event_visibility", 16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    # What the system says, as a code and its parameters (JSON, encrypted: a recipient's name, a
    # reason typed by staff), worded when read (``intake.records.timeline.describe``). Entries written
    # before 0015 have no code: their text, in the language it was written in, stays in ``body``.
    code: Mapped[str | None] = mapped_column(String(48))
    params: Mapped[str | None] = mapped_column(EncryptedText)
    body: Mapped[str | None] = mapped_column(EncryptedText)  # what a person typed: a message, a note
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    request: Mapped[RecordsRequest] = relationship(back_populates="events")

    __table_args__ = (Index("ix_request_events_request", "request_id", "id"),)


class RequestDocument(Model):
    """A file on a request: uploaded by the requester, released to them, or a stored letter.

    The bytes live in ``DocumentContent`` (encrypted, one row per document), so listing documents
    never reads them. A released document is downloadable until ``expires_at`` and at most
    ``max_downloads`` times; every download is audited.
    """

    __tablename__ = "request_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)  # also the URL name
    request_id: Mapped[int] = mapped_column(ForeignKey("records_requests.id", ondelete="CASCADE"))
    kind: Mapped[FileKind] = mapped_column(coded_enum(FileKind, "file_kind", 24))
    visibility: Mapped[Visibility] = mapped_column(coded_enum(Visibility, "document_visibility", 16))
    filename: Mapped[str] = mapped_column(EncryptedText)  # the name shown (cleaned), never used on disk
    content_type: Mapped[str] = mapped_column(String(64))  # as detected from the content
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    max_downloads: Mapped[int | None] = mapped_column(Integer)
    download_count: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the retention purge deleted the bytes; the row (name, size, SHA-256) stays as proof.
    content_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A letter keeps the language it was written in (the page says "Letter sent in Spanish");
    # empty for uploads, and for letters stored before 0015.
    language: Mapped[str | None] = mapped_column(String(8))

    __table_args__ = (Index("ix_request_documents_request", "request_id", "id"),)


class DocumentContent(Model):
    """The encrypted bytes of one document (base64 inside the sealed envelope)."""

    __tablename__ = "request_document_contents"

    id: Mapped[int] = mapped_column(ForeignKey("request_documents.id", ondelete="CASCADE"), primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    data: Mapped[str] = mapped_column(EncryptedText)


class FeeEstimate(Model):
    """A cost estimate given before work starts; the newest one is the one that counts. Records
    are never withheld for an unpaid fee."""

    __tablename__ = "fee_estimates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    request_id: Mapped[int] = mapped_column(ForeignKey("records_requests.id", ondelete="CASCADE"))
    basis: Mapped[FeeBasis] = mapped_column(coded_enum(FeeBasis, "fee_basis", 24))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    per_page_cents: Mapped[int] = mapped_column(Integer, default=0)
    clerical_cents: Mapped[int] = mapped_column(Integer, default=0)
    postage_cents: Mapped[int] = mapped_column(Integer, default=0)
    total_cents: Mapped[int] = mapped_column(Integer)
    waiver_reason: Mapped[str | None] = mapped_column(EncryptedText)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The requester's answer to this estimate, and when they gave it (empty until they answer).
    decision: Mapped[FeeDecision | None] = mapped_column(coded_enum(FeeDecision, "fee_decision", 16))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_fee_estimates_request", "request_id", "id"),)


class Consent(Model):
    """A written consent to disclose to a third party, with every element 42 CFR §2.31 requires.

    A release under a consent is possible only while it is complete, signed, not expired and not
    revoked (``intake.records.consents`` decides). The newest consent on a request is the one that counts.
    """

    __tablename__ = "disclosure_consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    request_id: Mapped[int] = mapped_column(ForeignKey("records_requests.id", ondelete="CASCADE"))
    patient_name: Mapped[str | None] = mapped_column(EncryptedText)  # (a)(1)
    disclosing_program: Mapped[str | None] = mapped_column(EncryptedText)  # (a)(3) who may disclose
    information: Mapped[str | None] = mapped_column(EncryptedText)  # (a)(2) how much and what kind
    recipient_name: Mapped[str | None] = mapped_column(EncryptedText)  # (a)(4)
    recipient_address: Mapped[str | None] = mapped_column(EncryptedText)
    purpose: Mapped[str | None] = mapped_column(EncryptedText)  # (a)(5)
    revocation_acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)  # (a)(6) right to revoke
    expires_on: Mapped[date | None] = mapped_column(Date)  # (a)(7) a date ...
    expiry_event: Mapped[str | None] = mapped_column(EncryptedText)  # ... or an event
    signed_name: Mapped[str | None] = mapped_column(EncryptedText)  # (a)(8) signature
    signed_on: Mapped[date | None] = mapped_column(Date)  # (a)(9) date signed
    signer_authority: Mapped[str | None] = mapped_column(EncryptedText)  # when signed by a representative
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_disclosure_consents_request", "request_id", "id"),)


class Disclosure(Model):
    """One disclosure of a patient's records to someone other than the patient: what an accounting of
    disclosures lists (42 CFR 2.25, 45 CFR 164.528). Written by the disclosure gate at the moment the
    records leave, in the same transaction, with copies of who, what and why: nothing later (a
    withdrawal, a revocation, an edit of the request or the consent) changes or removes it."""

    __tablename__ = "disclosures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    archived_patient_id: Mapped[int | None] = mapped_column(ForeignKey("archived_patients.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("records_requests.id"))
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("disclosure_consents.id"))
    professional_id: Mapped[int | None] = mapped_column(ForeignKey("licensed_professionals.id"))
    basis: Mapped[DisclosureBasis] = mapped_column(coded_enum(DisclosureBasis, "disclosure_basis", 16),
                                                   default=DisclosureBasis.CONSENT)
    channel: Mapped[str | None] = mapped_column(String(16))  # how the records left (a DeliveryMethod code, phone...)
    disclosed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recipient_name: Mapped[str] = mapped_column(EncryptedText)
    recipient_address: Mapped[str | None] = mapped_column(EncryptedText)
    affiliation: Mapped[str | None] = mapped_column(EncryptedText)  # 42 CFR 2.51(c)(1): the recipient's facility
    description: Mapped[str] = mapped_column(EncryptedText)  # what was disclosed
    purpose: Mapped[str] = mapped_column(EncryptedText)  # for an emergency: the nature of the emergency
    redisclosure_notice: Mapped[bool] = mapped_column(Boolean, default=False)  # the 42 CFR §2.32 notice went with it
    notice_version: Mapped[str | None] = mapped_column(String(16))  # which §2.32 text (consents.NOTICE_VERSIONS)
    notice_language: Mapped[str | None] = mapped_column(String(8))  # the language it was written in
    addenda_count: Mapped[int] = mapped_column(Integer, default=0)  # addenda sent with it (H&S 123111(b))
    disclosed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # What ``description`` and ``purpose`` say, as codes and facts (JSON, encrypted): the accounting
    # is worded from them when read, in the reader's language (``consents.disclosure_words``), while
    # the two columns above keep the words as written at the time. None before 0015: shown as written.
    wording: Mapped[str | None] = mapped_column(EncryptedText)

    __table_args__ = (Index("ix_disclosures_patient", "archived_patient_id", "disclosed_at"),)


class LicensedProfessional(Model):
    """A licensed professional named on a request, as staff recorded them: an outside professional
    who made a denial on clinical grounds or reviewed one (with their written decision as a document),
    or the professional the patient designated to receive the records instead (H&S 123115(b)).
    Staff who hold a licence themselves need no row: their account carries it."""

    __tablename__ = "licensed_professionals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    request_id: Mapped[int] = mapped_column(ForeignKey("records_requests.id", ondelete="CASCADE"))
    role: Mapped[ProfessionalRole] = mapped_column(coded_enum(ProfessionalRole, "professional_role", 16))
    name: Mapped[str] = mapped_column(EncryptedText)
    licence_type: Mapped[LicenceType] = mapped_column(coded_enum(LicenceType, "professional_licence_type", length=8))
    licence_number: Mapped[str] = mapped_column(String(20))
    licence_state: Mapped[str] = mapped_column(String(2))
    address: Mapped[str | None] = mapped_column(EncryptedText)  # where a designated professional gets the records
    decided_on: Mapped[date | None] = mapped_column(Date)  # the date of the decision (or designation)
    decision: Mapped[str | None] = mapped_column(String(32))  # a DenialReason or ReviewOutcome code
    document_id: Mapped[int | None] = mapped_column(ForeignKey("request_documents.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_licensed_professionals_request", "request_id", "role", "id"),)


class CodeChannel(StrEnum):
    """How the access code of a recipient's link reaches them: never the e-mail that carries the link."""

    PHONE = "phone"  # the clerk reads it out on the telephone (shown to them once)
    POST = "post"  # printed on a cover letter sent by post


class RecipientLink(Model):
    """A one-time secure link to a copy of the records, e-mailed to a third party (or a designated
    professional) after the disclosure gate wrote the ``Disclosure``; the access code goes another
    way (``code_channel``). Only keyed hashes of the link's token and of the code are stored. Each
    download is counted here (and audited) as the delivery of that one disclosure."""

    __tablename__ = "recipient_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)  # names it in staff URLs
    request_id: Mapped[int] = mapped_column(ForeignKey("records_requests.id", ondelete="CASCADE"))
    disclosure_id: Mapped[int] = mapped_column(ForeignKey("disclosures.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # HMAC of the link's token
    code_hash: Mapped[str] = mapped_column(String(64))  # HMAC of the access code (with the uid)
    code_channel: Mapped[CodeChannel] = mapped_column(coded_enum(CodeChannel, "recipient_code_channel", 8))
    recipient_email: Mapped[str] = mapped_column(EncryptedText)
    language: Mapped[str] = mapped_column(String(8), default="en")
    document_ids: Mapped[str] = mapped_column(String(500))  # the files it gives, "12,13" (fixed when sent)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_downloads: Mapped[int] = mapped_column(Integer)
    download_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first right code
    last_download_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (Index("ix_recipient_links_request", "request_id", "id"),)
