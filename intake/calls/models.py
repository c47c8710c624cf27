"""Call-log models.

Coded fields (call type, relationship, ZIP, age range, substances, risk, disposition, safety
actions) are plain columns so they can be counted; anything a person said or that names a person
(caller name, phone, notes, safe wording, disclosure details) is encrypted. The phone number is
also kept as a blind index for repeat-caller lookup.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from intake.db_types import UTCDateTime, coded_enum, utcnow
from intake.extensions import Model
from intake.security.crypto import EncryptedText, new_uid


class CallStatus(StrEnum):
    DRAFT = "draft"
    FINAL = "final"


class CallType(StrEnum):
    DATA = "data"
    HANG_UP = "hang_up"
    WRONG_NUMBER = "wrong_number"
    PRANK = "prank"
    SILENT = "silent"
    TEST = "test"


class Channel(StrEnum):
    PHONE = "phone"
    TEXT = "text"
    CHAT = "chat"
    EMAIL = "email"


class Relationship(StrEnum):
    SELF = "self"
    FAMILY = "family"
    FRIEND = "friend"
    PROFESSIONAL = "professional"
    OTHER = "other"


class AgeRange(StrEnum):
    UNKNOWN = "unknown"
    UNDER_18 = "under_18"
    AGE_18_24 = "18_24"
    AGE_25_34 = "25_34"
    AGE_35_44 = "35_44"
    AGE_45_54 = "45_54"
    AGE_55_64 = "55_64"
    AGE_65_PLUS = "65_plus"


class Substance(StrEnum):
    """Benzodiazepines first: the facility's focus."""

    CLONAZEPAM = "clonazepam"  # Klonopin
    OTHER_BENZODIAZEPINE = "other_benzodiazepine"  # alprazolam (Xanax), diazepam (Valium), lorazepam ...
    ALCOHOL = "alcohol"
    OPIOIDS = "opioids"
    STIMULANTS = "stimulants"
    CANNABIS = "cannabis"
    OTHER = "other"


BENZODIAZEPINES = frozenset({Substance.CLONAZEPAM, Substance.OTHER_BENZODIAZEPINE})


class RiskLevel(StrEnum):
    NONE = "none"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    IMMINENT = "imminent"


class Disposition(StrEnum):
    INFORMATION_GIVEN = "information_given"
    REFERRED = "referred"
    CRISIS_DEESCALATED = "crisis_deescalated"
    EMERGENCY_DISPATCHED = "emergency_dispatched"
    WARM_TRANSFER = "warm_transfer"
    CALLBACK_PLANNED = "callback_planned"
    CALLER_DISCONNECTED = "caller_disconnected"
    OTHER = "other"


class UnaskedReason(StrEnum):
    """Why a screen question the danger signs made required was not asked (intake.calls.risk)."""

    CALLER_HUNG_UP = "caller_hung_up"
    THIRD_PARTY_DID_NOT_KNOW = "third_party_did_not_know"
    CALLER_DECLINED = "caller_declined"
    EMERGENCY_FIRST = "emergency_first"
    OTHER = "other"


class ReferralStatus(StrEnum):
    GIVEN = "given"
    CONTACTED = "contacted"
    ADMITTED = "admitted"
    DECLINED = "declined"


class TaskKind(StrEnum):
    INSURANCE = "insurance"
    TRANSPORT = "transport"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class FollowUpStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class AttemptOutcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no_answer"
    LEFT_VOICEMAIL = "left_voicemail"
    TEXT_SENT = "text_sent"
    WRONG_NUMBER = "wrong_number"
    NOT_SAFE_TO_TALK = "not_safe_to_talk"
    DECLINED = "declined"


class Call(Model):
    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[CallStatus] = mapped_column(coded_enum(CallStatus, "call_status", 16), default=CallStatus.DRAFT)
    call_type: Mapped[CallType] = mapped_column(coded_enum(CallType, "call_type", 16), default=CallType.DATA)
    channel: Mapped[Channel] = mapped_column(coded_enum(Channel, "channel", 16), default=Channel.PHONE)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)

    # Caller: anonymous by default.
    relationship_to_person: Mapped[Relationship | None] = mapped_column(coded_enum(Relationship, "relationship", 16))
    caller_name: Mapped[str | None] = mapped_column(EncryptedText)
    caller_phone: Mapped[str | None] = mapped_column(EncryptedText)
    caller_phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    zip: Mapped[str | None] = mapped_column(String(5))
    state: Mapped[str | None] = mapped_column(String(2))
    age_range: Mapped[AgeRange | None] = mapped_column(coded_enum(AgeRange, "age_range", 16))

    # Concerns: coded lists kept as comma-separated codes (substances get their own table to be counted).
    withdrawal_symptoms: Mapped[str] = mapped_column(String(300), default="")
    concerns: Mapped[str] = mapped_column(String(300), default="")
    overdose_risk: Mapped[bool] = mapped_column(Boolean, default=False)  # benzodiazepine with alcohol or opioids

    # Risk screen: None = not asked.
    suicidal_thoughts: Mapped[bool | None] = mapped_column(Boolean)
    suicidal_intent: Mapped[bool | None] = mapped_column(Boolean)
    suicide_plan: Mapped[bool | None] = mapped_column(Boolean)
    access_to_means: Mapped[bool | None] = mapped_column(Boolean)
    recent_attempt: Mapped[bool | None] = mapped_column(Boolean)
    medical_danger: Mapped[bool | None] = mapped_column(Boolean)  # seizures, withdrawal, overdose signs
    risk_level: Mapped[RiskLevel] = mapped_column(coded_enum(RiskLevel, "risk_level", 16), default=RiskLevel.NONE)
    # Why required screen questions were left unasked (one reason covers them all); None: none was.
    unasked_reason: Mapped[UnaskedReason | None] = mapped_column(coded_enum(UnaskedReason, "unasked_reason"))
    # Safety actions taken (required for high and imminent risk).
    safety_988: Mapped[bool] = mapped_column(Boolean, default=False)
    safety_911: Mapped[bool] = mapped_column(Boolean, default=False)
    safety_warm_transfer: Mapped[bool] = mapped_column(Boolean, default=False)
    safety_plan: Mapped[bool] = mapped_column(Boolean, default=False)
    safety_supervisor: Mapped[bool] = mapped_column(Boolean, default=False)  # supervisor consulted during the call
    # The caller's identity or location was given to someone outside the helpline (a rescue, a mobile
    # crisis team): with 911 this requires the emergency-disclosure record (42 CFR 2.51(c)).
    identity_shared: Mapped[bool] = mapped_column(Boolean, default=False)
    # The supervisors' urgent queue: set as soon as a draft reaches high or imminent risk (live
    # escalation), and at finalization; it stays set until a supervisor marks the call reviewed.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent_reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    urgent_reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    # Consent to contact.
    consent_callback: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_voicemail: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_text: Mapped[bool] = mapped_column(Boolean, default=False)
    safe_times: Mapped[str | None] = mapped_column(EncryptedText)
    safe_wording: Mapped[str | None] = mapped_column(EncryptedText)

    disposition: Mapped[Disposition | None] = mapped_column(coded_enum(Disposition, "disposition"))
    notes: Mapped[str | None] = mapped_column(EncryptedText)
    # While a draft: what was typed into the disclosure and follow-up boxes (JSON, encrypted), so a
    # crashed browser loses nothing; they become records only when the call is finalized.
    draft_extras: Mapped[str | None] = mapped_column(EncryptedText)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the retention purge stripped the free text and contact details (coded fields stay).
    text_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    substances: Mapped[list[CallSubstance]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin")
    referrals: Mapped[list[Referral]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin")
    tasks: Mapped[list[CallTask]] = relationship(cascade="all, delete-orphan", passive_deletes=True, lazy="selectin")
    followups: Mapped[list[FollowUp]] = relationship(back_populates="call", lazy="raise")
    disclosures: Mapped[list[EmergencyDisclosure]] = relationship(back_populates="call", lazy="raise")
    supervisor_notes: Mapped[list[SupervisorNote]] = relationship(back_populates="call", lazy="raise")

    __table_args__ = (
        # The call list: newest first, filtered by status / risk / operator; keyset on (started_at, id).
        Index("ix_calls_started_at_id", "started_at", "id"),
        Index("ix_calls_status_started_at", "status", "started_at"),
        Index("ix_calls_risk_started_at", "risk_level", "started_at"),
        Index("ix_calls_urgent_queue", "urgent", "urgent_reviewed_at"),
        # The dashboard counts calls in a date range by type, risk and status from this index alone.
        Index("ix_calls_dashboard", "started_at", "call_type", "risk_level", "status"),
        # The retention purge finds calls whose text is not yet stripped, oldest first.
        Index("ix_calls_text_purge", "text_purged_at", "started_at"),
    )

    def __repr__(self) -> str:
        return f"<Call {self.id} {self.status} {self.call_type}>"


class CallSubstance(Model):
    __tablename__ = "call_substances"

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    substance: Mapped[Substance] = mapped_column(coded_enum(Substance, "substance"), primary_key=True, index=True)


class Referral(Model):
    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"), index=True)
    status: Mapped[ReferralStatus] = mapped_column(coded_enum(ReferralStatus, "referral_status", 16),
                                                  default=ReferralStatus.GIVEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CallTask(Model):
    """Insurance or transport help promised on a call, tracked until done."""

    __tablename__ = "call_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[TaskKind] = mapped_column(coded_enum(TaskKind, "task_kind", 16))
    status: Mapped[TaskStatus] = mapped_column(coded_enum(TaskStatus, "task_status", 16), default=TaskStatus.OPEN)
    note: Mapped[str | None] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FollowUp(Model):
    """A promised call back; exists only where the caller consented to contact."""

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[FollowUpStatus] = mapped_column(coded_enum(FollowUpStatus, "followup_status", 16),
                                                  default=FollowUpStatus.OPEN)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_outcome: Mapped[AttemptOutcome | None] = mapped_column(coded_enum(AttemptOutcome, "attempt_outcome"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    call: Mapped[Call] = relationship(back_populates="followups")

    # The queue: open ones by due time (overdue first).
    __table_args__ = (Index("ix_followups_status_due_at", "status", "due_at"),)


class FollowUpAttempt(Model):
    __tablename__ = "followup_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    followup_id: Mapped[int] = mapped_column(ForeignKey("followups.id", ondelete="CASCADE"), index=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[AttemptOutcome] = mapped_column(coded_enum(AttemptOutcome, "attempt_outcome"))
    note: Mapped[str | None] = mapped_column(EncryptedText)


class EmergencyDisclosure(Model):
    """Caller details shared with emergency services during a rescue (a medical-emergency disclosure).

    42 CFR 2.51(c): immediately following the disclosure the program documents in writing (1) the name
    of the medical personnel to whom it was made and their affiliation with any health care facility
    (``disclosed_to``, ``affiliation``), (2) the name of the individual making it (``disclosed_by_id``),
    (3) its date and time (``disclosed_at``) and (4) the nature of the emergency (``reason``). What was
    shared (``information``) is kept too. ``recorded_by_id`` is who wrote the record down."""

    __tablename__ = "emergency_disclosures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    disclosed_to: Mapped[str] = mapped_column(EncryptedText)
    affiliation: Mapped[str | None] = mapped_column(EncryptedText)
    information: Mapped[str] = mapped_column(EncryptedText)
    reason: Mapped[str] = mapped_column(EncryptedText)
    disclosed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disclosed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    call: Mapped[Call] = relationship(back_populates="disclosures")

    # The disclosures report (every one made, newest first): keyset on (disclosed_at, id).
    __table_args__ = (Index("ix_emergency_disclosures_disclosed_at_id", "disclosed_at", "id"),)


class SupervisorNote(Model):
    """A supervisor's note on a call while it is live (the operator sees it on the form)."""

    __tablename__ = "call_supervisor_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str | None] = mapped_column(EncryptedText)  # None once the retention purge stripped it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    call: Mapped[Call] = relationship(back_populates="supervisor_notes")
