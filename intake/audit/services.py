"""``record(...)``, the one way anything is written to the audit trail, and chain verification."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from flask import has_request_context, request
from sqlalchemy import select, text

from intake.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from intake.database import take_write_lock
from intake.db_types import utcnow
from intake.extensions import db

# Any constant works; it names the lock that serialises appends on PostgreSQL.
_PG_AUDIT_LOCK = 7_220_431
# Six years (45 CFR 164.316(b)(2)): no checkpoint may drop events younger than this.
AUDIT_MIN_KEEP_DAYS = 2192


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "ip_address": event.ip_address,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


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
) -> AuditEvent:
    """Append one audit event in the current transaction (flushed, not committed).

    ``actor`` is a User or None (anonymous or the system); ``details`` must hold only
    non-confidential facts. Appends are serialised (an advisory lock on PostgreSQL, the write
    lock taken by ``BEGIN IMMEDIATE`` on SQLite) so the chain never forks.
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
        occurred_at=utcnow(),
        actor_id=actor_id,
        actor_role=_roles_text(actor) if actor_id is not None else None,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        ip_address=request.remote_addr if has_request_context() else None,
        details=json.dumps(details or {}, sort_keys=True, separators=(",", ":")),
        prev_hash=prev_hash,
    )
    event.hash = compute_hash(event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    head_hash: str
    broken_at: int | None = None
    reason: str | None = None
    checkpoint_seq: int | None = None  # the walk started after this event (older ones were purged)


def _checkpoint_problem(checkpoint: AuditCheckpoint) -> str | None:
    """Why the latest checkpoint cannot be trusted, or None. A purge announces each checkpoint in
    the chain (``audit.checkpoint_written``, after the events it covers, so never deleted under
    it) with the same seq and hash and a cutoff at least six years before the announcement."""
    announced = db.session.execute(
        select(AuditEvent).where(AuditEvent.object_type == "audit_checkpoint",
                                 AuditEvent.object_id == str(checkpoint.id),
                                 AuditEvent.action == "audit.checkpoint_written")
        .order_by(AuditEvent.seq).limit(1)).scalar_one_or_none()
    if announced is None or announced.seq <= checkpoint.through_seq:
        return f"checkpoint {checkpoint.id} is not announced in the trail"
    details = json.loads(announced.details or "{}")
    if details.get("through_seq") != checkpoint.through_seq or details.get("through_hash") != checkpoint.through_hash:
        return f"checkpoint {checkpoint.id} does not match its announcement"
    try:
        cutoff = datetime.fromisoformat(details["cutoff"])
    except (KeyError, TypeError, ValueError):
        return f"checkpoint {checkpoint.id} has no cutoff"
    if cutoff.tzinfo is None or announced.occurred_at - cutoff < timedelta(days=AUDIT_MIN_KEEP_DAYS):
        return f"checkpoint {checkpoint.id} removed events younger than six years"
    return None


def verify_chain(batch_size: int = 5000) -> ChainReport:
    """Walk the whole trail in order and report the first broken link, if any.

    After a retention purge the walk starts from the latest checkpoint: the first event must be
    the one after it and link to its hash. Reads in keyset-paginated batches so memory stays flat
    however long the trail is.
    """
    expected_seq, prev_hash, checked, last_seq, since = 1, GENESIS_HASH, 0, 0, None
    checkpoint = db.session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.through_seq.desc()).limit(1)).scalar_one_or_none()
    if checkpoint is not None:
        since = checkpoint.through_seq
        expected_seq, prev_hash, last_seq = since + 1, checkpoint.through_hash, since
        problem = _checkpoint_problem(checkpoint)
        if problem:
            return ChainReport(False, 0, prev_hash, since + 1, problem, since)
    while True:
        rows = db.session.execute(
            select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch_size)
        ).scalars().all()
        if not rows:
            return ChainReport(ok=True, checked=checked, head_hash=prev_hash, checkpoint_seq=since)
        for event in rows:
            if event.seq != expected_seq:
                return ChainReport(False, checked, prev_hash, expected_seq, f"event {expected_seq} is missing", since)
            if event.prev_hash != prev_hash:
                return ChainReport(False, checked, prev_hash, event.seq, "link to the previous event does not match",
                                   since)
            if compute_hash(event) != event.hash:
                return ChainReport(False, checked, prev_hash, event.seq, "content does not match its hash", since)
            prev_hash, expected_seq, last_seq = event.hash, expected_seq + 1, event.seq
            checked += 1
        db.session.expunge_all()


@dataclass(frozen=True)
class ObjectEvent:
    """One line of a "who viewed this" panel."""

    occurred_at: datetime
    action: str
    actor_id: int | None
    actor_role: str | None
    actor_email: str | None = None  # filled in by the caller, who can read users


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
