"""``record(...)``, the one way anything is written to the audit trail, and "who viewed this".

The chain itself (how a link is computed and checked, ``verify_chain``) is ``intake/audit/chain.py``;
its names are importable from here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import select, text

from intake.audit.chain import AUDIT_MIN_KEEP_DAYS, ChainReport, compute_hash, verify_chain
from intake.audit.keys import audit_keys
from intake.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from intake.database import take_write_lock
from intake.db_types import utcnow
from intake.extensions import db

__all__ = ["AUDIT_MIN_KEEP_DAYS", "ChainReport", "ObjectEvent", "compute_hash", "lock_trail", "object_history",
           "pending_view", "record", "verify_chain", "with_emails"]

# Any constant works; it names the lock that serialises appends on PostgreSQL.
_PG_AUDIT_LOCK = 7_220_431


def lock_trail() -> None:
    """Serialise writers of the trail for the rest of the transaction: appends, and the
    retention purge's deletes (an advisory lock on PostgreSQL; on SQLite the write lock of
    ``BEGIN IMMEDIATE``, taken now if the transaction began as a page view's read)."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    elif connection.dialect.name == "sqlite":
        take_write_lock(connection)  # a page view's read transaction becomes a write one first


def _roles_text(actor: Any) -> str:
    """Every role the actor holds, comma-separated in the roles' order ("operator,admin")."""
    ordered = getattr(actor, "ordered_roles", None)
    return ",".join(str(role) for role in ordered) if ordered is not None else str(getattr(actor, "role", ""))


def record(
    action: str,
    *,
    actor: Any = None,
    object_type: str | None = None,
    object_id: Any = None,
    details: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> AuditEvent:
    """Append one audit event in the current transaction (flushed, not committed).

    ``actor`` is a User or None (anonymous or the system); ``details`` must hold only
    non-confidential facts. Appends are serialised (an advisory lock on PostgreSQL, the write
    lock taken by ``BEGIN IMMEDIATE`` on SQLite) so the chain never forks. The link is an HMAC
    under the newest key of ``AUDIT_KEYS`` (``intake/audit/chain.py``).

    ``occurred_at`` (default now): when the thing happened, for a page view recorded after the page
    was drawn (``pending_view``), so the panel it showed and the trail agree to the microsecond.
    """
    session = db.session
    lock_trail()
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if last is None:
        # An empty table after a retention purge continues the chain from its checkpoint.
        last = session.execute(
            select(AuditCheckpoint.through_seq.label("seq"), AuditCheckpoint.through_hash.label("hash"))
            .order_by(AuditCheckpoint.through_seq.desc()).limit(1)).first()
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS_HASH)
    actor_id = getattr(actor, "id", None) if actor is not None and getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        seq=seq,
        occurred_at=occurred_at or utcnow(),
        actor_id=actor_id,
        actor_role=_roles_text(actor) if actor_id is not None else None,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        ip_address=request.remote_addr if has_request_context() else None,
        details=json.dumps(details or {}, sort_keys=True, separators=(",", ":")),
        prev_hash=prev_hash,
        key_id=audit_keys().active,
    )
    event.hash = compute_hash(event)
    # Written by a Core INSERT in the session's transaction, after flushing what the session holds
    # (as ``add`` + ``flush`` did): the same row, without the unit of work's bookkeeping for an
    # object nothing changes again (~300 fewer Python calls, inside the write lock, a page view:
    # make profile PAGE=status). The event returned is not in the session; ``db.session.get`` reads
    # it back. No ORM insert hook runs: the trail has no encrypted column (tests/test_audit.py checks).
    session.flush()
    session.connection().execute(AuditEvent.__table__.insert(), {
        column.key: getattr(event, column.key) for column in AuditEvent.__table__.columns})
    return event


@dataclass(frozen=True)
class ObjectEvent:
    """One line of a "who viewed this" panel."""

    occurred_at: datetime
    action: str
    actor_id: int | None
    actor_role: str | None
    actor_email: str | None = None  # filled in by the caller, who can read users


def pending_view(action: str, actor: Any, occurred_at: datetime) -> ObjectEvent:
    """The line a page view will add to its object's "who viewed this" panel, for a page drawn before
    its view is recorded (``record(..., occurred_at=...)`` after drawing, then commit: on SQLite the
    write lock is then held for the insert alone, not while the page is drawn, and on PostgreSQL the
    trail's lock likewise). If the record or the commit fails, the drawn page is never sent."""
    return ObjectEvent(occurred_at, action, actor.id, _roles_text(actor))


def object_history(object_type: str, object_id: Any, limit: int = 50) -> list[ObjectEvent]:
    """The latest audit events about one object (views, reveals, changes), newest first; served
    by the (object_type, object_id, seq) index."""
    rows = db.session.execute(
        select(AuditEvent.occurred_at, AuditEvent.action, AuditEvent.actor_id, AuditEvent.actor_role)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))
        .order_by(AuditEvent.seq.desc()).limit(limit)
    ).all()
    return [ObjectEvent(r.occurred_at, r.action, r.actor_id, r.actor_role) for r in rows]


def with_emails(events: list[ObjectEvent], emails: dict[int, str]) -> list[ObjectEvent]:
    """The same events with the actors' e-mail addresses (looked up by the caller in one query)."""
    return [replace(e, actor_email=emails.get(e.actor_id)) if e.actor_id is not None else e for e in events]
