"""The OutboxMessage model: one e-mail waiting to be sent, being sent, sent, or given up on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.db_types import UTCDateTime, utcnow
from intake.extensions import Model, db
from intake.security.crypto import EncryptedText, new_uid


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed by a sender (claimed_at); never picked by another
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry; kept for the admins to see


class OutboxMessage(Model):
    """Recipient and body are encrypted (bodies carry sign-in links); the subject is plain and,
    by rule, never holds a name or health information."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(EncryptedText)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(EncryptedText)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(OutboxStatus, native_enum=False, length=16, create_constraint=True, name="outbox_status",
             values_callable=lambda values: [v.value for v in values], validate_strings=True),
        default=OutboxStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # The Message-ID header, fixed at queueing, so a retry is recognisably the same message.
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (db.Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    def __repr__(self) -> str:  # never the recipient
        return f"<OutboxMessage {self.id} {self.kind} {self.status}>"
