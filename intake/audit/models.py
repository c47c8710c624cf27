"""The AuditEvent and AuditCheckpoint models.

Rows are numbered without gaps (``seq``, the primary key) and each stores an HMAC-SHA256 of its
own content together with the hash of the row before it, under a key from ``AUDIT_KEYS`` that
the database never holds (``key_id`` names it). Editing or deleting a row breaks the chain at
that point, and without the key nobody can make a row that links: neither an edited one nor a
new one appended at the end. The database also refuses UPDATE and DELETE on the table (triggers
created by the migrations), except the retention purge's deletion of old events behind a checkpoint.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from intake.db_types import UTCDateTime, utcnow
from intake.extensions import Model

GENESIS_HASH = "0" * 64


class AuditEvent(Model):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Every role the actor held, comma-separated in the roles' order ("operator,admin").
    actor_role: Mapped[str | None] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    # JSON of non-confidential facts (never names, phones, notes or messages).
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The AUDIT_KEYS key id whose key made ``hash``.
    key_id: Mapped[str] = mapped_column(String(16))

    # "Who viewed this call / request": events about one object, newest first.
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id", "seq"),)

    def __repr__(self) -> str:
        return f"<AuditEvent {self.seq} {self.action}>"


class AuditCheckpoint(Model):
    """Written before the retention purge removes the oldest events: the chain then verifies from
    the event after ``through_seq``, whose ``prev_hash`` must equal ``through_hash``. The database
    lets audit events be deleted only up to the latest checkpoint, only when older than six years,
    and on PostgreSQL only by the purge job's role (which alone may write checkpoints).

    ``signature`` is an HMAC under the audit key (``key_id``) of what the checkpoint says, so one
    slipped into the table by someone without the key is recognised as forged. ``legacy`` marks a
    checkpoint written before the chain was keyed (migration 0012 checked and re-signed it)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    through_seq: Mapped[int] = mapped_column(Integer, unique=True)  # events up to this one may go
    through_hash: Mapped[str] = mapped_column(String(64))  # the hash of that event: the next one's prev_hash
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(64))
    legacy: Mapped[bool] = mapped_column(Boolean, default=False)
