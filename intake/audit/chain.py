"""The keyed hash chain: how a link and a checkpoint are computed, and the walk that checks them.

A link is HMAC-SHA256, under the audit key named in the row, of the event's content and the hash
of the event before it. The database holds key ids, never keys (``intake/audit/keys.py``), so
somebody who can INSERT, UPDATE or DELETE rows but does not have the key cannot make a row that
links, nor a checkpoint that verifies. The walk (``verify_chain``) also compares the head with
the last anchor written outside the database (``intake/audit/anchor.py``), which is what shows
that the newest events were not cut off.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from intake.audit.anchor import Anchor, AnchorError, last_anchor
from intake.audit.keys import CHECKPOINT, LINK, AuditKeys, UnknownAuditKey, audit_keys
from intake.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from intake.extensions import db

# Six years (45 CFR 164.316(b)(2)): no checkpoint may drop events younger than this.
AUDIT_MIN_KEEP_DAYS = 2192
CHECKPOINT_ACTION = "audit.checkpoint_written"


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def link_content(event: AuditEvent) -> bytes:
    """What a link's HMAC covers: every column but the hash itself."""
    return _json({
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
        "key_id": event.key_id,
    })


def compute_hash(event: AuditEvent, keys: AuditKeys | None = None) -> str:
    """The link hash ``event`` must carry, under the key its ``key_id`` names."""
    return (keys or audit_keys()).mac(LINK, event.key_id, link_content(event))


def checkpoint_content(checkpoint: AuditCheckpoint) -> bytes:
    return _json({
        "through_seq": checkpoint.through_seq,
        "through_hash": checkpoint.through_hash,
        "created_at": checkpoint.created_at.isoformat(timespec="microseconds"),
        "legacy": bool(checkpoint.legacy),
    })


def sign_checkpoint(checkpoint: AuditCheckpoint, keys: AuditKeys | None = None) -> None:
    """Sign ``checkpoint`` (its seq, hash, time and kind) with the newest audit key."""
    keys = keys or audit_keys()
    checkpoint.key_id = keys.active
    checkpoint.signature = keys.mac(CHECKPOINT, checkpoint.key_id, checkpoint_content(checkpoint))


def checkpoint_signed(checkpoint: AuditCheckpoint, keys: AuditKeys) -> bool:
    return keys.check(CHECKPOINT, checkpoint.key_id or "", checkpoint_content(checkpoint), checkpoint.signature)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    head_hash: str
    broken_at: int | None = None
    reason: str | None = None
    checkpoint_seq: int | None = None  # the walk started after this event (older ones were purged)
    head_seq: int = 0
    anchor: Anchor | None = None  # the anchor the head was compared with, if any


def _announcement(checkpoint: AuditCheckpoint) -> AuditEvent | None:
    return db.session.execute(
        select(AuditEvent).where(AuditEvent.object_type == "audit_checkpoint",
                                 AuditEvent.object_id == str(checkpoint.id),
                                 AuditEvent.action == CHECKPOINT_ACTION)
        .order_by(AuditEvent.seq).limit(1)).scalar_one_or_none()


def _checkpoint_problem(checkpoint: AuditCheckpoint) -> str | None:
    """Why a signed checkpoint still cannot be trusted, or None.

    The purge announces each checkpoint in the chain (``audit.checkpoint_written``, after the events
    it covers, so never deleted under it) with the same seq and hash. What it removed must all be
    older than six years when it was removed. That is checked against times the key vouches for,
    never against what the checkpoint says about itself: the first event kept (the purge always
    keeps the last expired one, so its time bounds everything before it) must be six years older
    than the announcement. A ``legacy`` checkpoint (from before the chain was keyed; migration 0012
    checked it by the rules of its day) is held to those rules: the announced cutoff.
    """
    announced = _announcement(checkpoint)
    if announced is None or announced.seq <= checkpoint.through_seq:
        return f"checkpoint {checkpoint.id} is not announced in the trail"
    try:
        details = json.loads(announced.details or "{}")
    except ValueError:
        details = {}
    if details.get("through_seq") != checkpoint.through_seq or details.get("through_hash") != checkpoint.through_hash:
        return f"checkpoint {checkpoint.id} does not match its announcement"
    minimum = timedelta(days=AUDIT_MIN_KEEP_DAYS)
    if checkpoint.legacy:
        try:
            cutoff = datetime.fromisoformat(details["cutoff"])
        except (KeyError, TypeError, ValueError):
            return f"checkpoint {checkpoint.id} has no cutoff"
        if cutoff.tzinfo is None or announced.occurred_at - cutoff < minimum:
            return f"checkpoint {checkpoint.id} removed events younger than six years"
        return None
    first_kept = db.session.execute(
        select(AuditEvent.occurred_at).where(AuditEvent.seq == checkpoint.through_seq + 1)).scalar_one_or_none()
    if first_kept is None:
        return f"checkpoint {checkpoint.id}: the event after it, {checkpoint.through_seq + 1}, is missing"
    if announced.occurred_at - first_kept < minimum:
        return (f"checkpoint {checkpoint.id} removed events younger than six years (event "
                f"{checkpoint.through_seq + 1}, the first kept, is from {first_kept:%Y-%m-%d})")
    return None


class _Problems:
    """The problems found, each at an event number; the report names the first."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def add(self, seq: int, reason: str) -> None:
        self.found.append((seq, reason))

    def first(self) -> tuple[int | None, str | None]:
        if not self.found:
            return None, None
        ordered = sorted(self.found, key=lambda item: item[0])
        return ordered[0][0], "; ".join(reason for _seq, reason in ordered)


def verify_chain(batch_size: int = 5000, anchor: bool = True) -> ChainReport:
    """Walk the whole trail in order and report the first broken link, if any.

    After a retention purge the walk starts from the latest checkpoint that is signed with the
    audit key: the first event must be the one after it and link to its hash. A checkpoint that
    is not signed (slipped into the table) is reported, and the walk then starts from an older one,
    or from the beginning, so the events deleted behind it show up as missing. Every link must be
    made with a key in ``AUDIT_KEYS``, and never with an older key than the link before it (a retired
    key cannot be used to append). With ``anchor``, the head is compared with the last anchor
    written outside the database: the trail may not end before it, and the anchored event must
    still have the anchored hash. Reads in keyset-paginated batches so memory stays flat however
    long the trail is.
    """
    keys = audit_keys()
    problems = _Problems()
    checkpoints = db.session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.through_seq.desc())).scalars().all()
    start = None
    for checkpoint in checkpoints:
        if not checkpoint_signed(checkpoint, keys):
            problems.add(checkpoint.through_seq + 1,
                         f"checkpoint {checkpoint.id} (through event {checkpoint.through_seq}) is not signed "
                         "with the audit key")
        elif start is None:
            start = checkpoint
    expected_seq, prev_hash, last_seq, since = 1, GENESIS_HASH, 0, None
    if start is not None:
        since = start.through_seq
        expected_seq, prev_hash, last_seq = since + 1, start.through_hash, since
        problem = _checkpoint_problem(start)
        if problem:
            problems.add(since + 1, problem)
    anchored = None
    if anchor:
        try:
            anchored = last_anchor()
        except AnchorError as exc:
            problems.add(0, str(exc))
    checked, prev_rank, broke = 0, None, False
    while not broke:
        rows = db.session.execute(
            select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch_size)
        ).scalars().all()
        if not rows:
            break
        for event in rows:
            reason = _link_problem(event, expected_seq, prev_hash, prev_rank, keys)
            if reason is None and anchored is not None and event.seq == anchored.seq \
                    and not hmac.compare_digest(event.hash, anchored.hash):
                reason = f"the event differs from the anchor written {anchored.at:%Y-%m-%d %H:%M} UTC"
            if reason is not None:
                problems.add(expected_seq, reason)
                broke = True
                break
            prev_hash, expected_seq, last_seq = event.hash, expected_seq + 1, event.seq
            prev_rank = keys.rank(event.key_id)
            checked += 1
        db.session.expunge_all()
    if not broke and anchored is not None and anchored.seq > last_seq:
        problems.add(last_seq + 1, f"events {last_seq + 1} to {anchored.seq} are missing: the anchor written "
                                   f"{anchored.at:%Y-%m-%d %H:%M} UTC records event {anchored.seq}")
    broken_at, reason = problems.first()
    return ChainReport(ok=broken_at is None, checked=checked, head_hash=prev_hash, broken_at=broken_at,
                       reason=reason, checkpoint_seq=since, head_seq=last_seq, anchor=anchored)


def _link_problem(event: AuditEvent, expected_seq: int, prev_hash: str, prev_rank: int | None,
                  keys: AuditKeys) -> str | None:
    if event.seq != expected_seq:
        return f"event {expected_seq} is missing"
    if event.prev_hash != prev_hash:
        return "link to the previous event does not match"
    try:
        rank = keys.rank(event.key_id)
    except UnknownAuditKey:
        return f"its key id {event.key_id!r} is not in AUDIT_KEYS"
    if prev_rank is not None and rank > prev_rank:
        return f"it is signed with key {event.key_id!r}, older than the key of the event before it"
    if not hmac.compare_digest(compute_hash(event, keys), event.hash or ""):
        return "content does not match its hash"
    return None
