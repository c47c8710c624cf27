"""The CallReview model: one supervisor review of one call.

A call lands on the queue because its risk was high or imminent (``HIGH_RISK``, when it is
finalized) or because it was drawn in the weekly random sample of its operator's calls
(``SAMPLE``). Each rubric item is scored 0 (not done), 1 (partly) or 2 (done well); the safety
plan item may be "not needed" (NULL). The written feedback is encrypted: it is about a
confidential call, and the operator reads it on that call's page.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.db_types import UTCDateTime, coded_enum, utcnow
from intake.extensions import Model
from intake.security.crypto import EncryptedText, new_uid


class ReviewReason(StrEnum):
    HIGH_RISK = "high_risk"
    SAMPLE = "sample"


class ReviewStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class CallReview(Model):
    __tablename__ = "call_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)  # binds the encrypted feedback
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # whose call it is (copied from the call)
    reason: Mapped[ReviewReason] = mapped_column(coded_enum(ReviewReason, "review_reason", 16))
    week_of: Mapped[date] = mapped_column(Date)  # the Monday of the call's week (facility time)
    status: Mapped[ReviewStatus] = mapped_column(coded_enum(ReviewStatus, "review_status", 8),
                                                 default=ReviewStatus.OPEN)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    score_opening: Mapped[int | None] = mapped_column(Integer)
    score_listening: Mapped[int | None] = mapped_column(Integer)
    score_risk_assessment: Mapped[int | None] = mapped_column(Integer)
    score_referral_fit: Mapped[int | None] = mapped_column(Integer)
    score_safety_plan: Mapped[int | None] = mapped_column(Integer)  # NULL when no safety plan was needed
    score_closing: Mapped[int | None] = mapped_column(Integer)
    feedback: Mapped[str | None] = mapped_column(EncryptedText)
    operator_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The queue: open reviews, oldest first; and the sample's "already drawn this week?".
        Index("ix_call_reviews_status_queued", "status", "queued_at", "id"),
        Index("ix_call_reviews_operator_week", "operator_id", "week_of", "reason"),
    )

    def __repr__(self) -> str:
        return f"<CallReview {self.id} call={self.call_id} {self.status}>"
