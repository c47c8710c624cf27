"""Live escalation: a call that reaches high or imminent risk goes on the supervisors' urgent queue at
once, while the operator is still on the line (the 988 Lifeline's imminent-risk policy keeps a
supervisor available for consultation during every shift); supervisors see how many wait on every
page, open the live draft read-only and leave the operator a note.

Plain functions, no HTTP: they check, write the audit row and flush; the view commits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select

from intake.audit.services import record
from intake.calls.models import Call, CallStatus, RiskLevel, SupervisorNote
from intake.calls.risk import needs_safety_action
from intake.extensions import db
from intake.permissions import Permission, can
from intake.users.services import names_by_id

URGENT_LIMIT = 50
COUNT_CAP = 99  # the menu shows "99+" past this: the count never reads more rows than that
NOTE_MAX = 1000
NOTES_SHOWN = 20


class NoteRefused(ValueError):
    """The note cannot be left (not a live call, empty or too long, or not a supervisor)."""


def escalate_if_urgent(call: Call, actor: Any) -> bool:
    """Put the call on the urgent queue the moment its level is high or imminent (a draft as much as a
    finished call). It stays there, even if the level falls again, until a supervisor reviews it:
    an escalation is never withdrawn silently. True when this call was just escalated."""
    if call.urgent or not needs_safety_action(call.risk_level):
        return False
    call.urgent = True
    db.session.flush()
    record("call.escalated", actor=actor, object_type="call", object_id=call.id,
           details={"risk_level": call.risk_level.value, "live": call.status == CallStatus.DRAFT})
    return True


def _waiting() -> Any:
    return (Call.urgent.is_(True)) & (Call.urgent_reviewed_at.is_(None))


def urgent_rows(limit: int = URGENT_LIMIT) -> list[Any]:
    """Urgent calls nobody has reviewed yet, live drafts included: imminent first, then high, then the
    oldest first (the ``ix_calls_urgent_queue`` index finds them; there are few)."""
    rank = case((Call.risk_level == RiskLevel.IMMINENT, 0), (Call.risk_level == RiskLevel.HIGH, 1), else_=2)
    return list(db.session.execute(
        select(Call.id, Call.started_at, Call.operator_id, Call.call_type, Call.risk_level, Call.disposition,
               Call.status, Call.urgent)
        .where(_waiting()).order_by(rank, Call.started_at, Call.id).limit(limit)).all())


@functools.lru_cache(maxsize=8)
def _waiting_ids(limit: int) -> Any:
    """Built once per limit (the menu asks on every page a supervisor opens). Ordered as the index is:
    PostgreSQL's estimate of the waiting calls (tens of thousands: most calls have no review time, and
    it takes the two conditions as independent) made a sequential scan of every call look cheaper for a
    limit, 180 ms at a million calls on every supervisor's page; in the index's order it reads the
    index (0.2 ms; make bench, docs/benchmarks.md)."""
    return select(Call.id).where(_waiting()).order_by(Call.urgent, Call.urgent_reviewed_at).limit(limit)


def waiting_count(cap: int = COUNT_CAP) -> int:
    """How many urgent calls wait for a supervisor, up to ``cap + 1`` (the menu shows "99+"): the ids
    are read from the ``ix_calls_urgent_queue`` index with a limit, never a count of the table."""
    return len(db.session.execute(_waiting_ids(cap + 1)).all())


def may_watch(viewer: Any, call: Call) -> bool:
    """Supervisors may open another operator's draft, read-only, once it is on the urgent queue."""
    return call.urgent and can(viewer, Permission.CALLS_URGENT_QUEUE)


def add_note(call: Call, author: Any, body: str) -> SupervisorNote:
    """A supervisor's note to the operator of a live call (the operator's form shows it)."""
    if not can(author, Permission.CALLS_URGENT_QUEUE):
        raise NoteRefused("only a supervisor leaves a note on a live call")
    if call.status != CallStatus.DRAFT:
        raise NoteRefused("the call is finished; use the quality review")
    body = (body or "").strip()
    if not body or len(body) > NOTE_MAX:
        raise NoteRefused("a note is 1 to 1,000 characters")
    note = SupervisorNote(call_id=call.id, author_id=author.id, body=body)
    db.session.add(note)
    db.session.flush()
    record("call.supervisor_note", actor=author, object_type="call", object_id=call.id, details={"note_id": note.id})
    return note


@dataclass(frozen=True)
class NoteView:
    id: int
    body: str
    author: str | None
    created_at: datetime


def notes_for(call_id: int, limit: int = NOTES_SHOWN) -> list[NoteView]:
    """The latest notes on a call, oldest first, with their authors' names (two queries)."""
    raw = list(db.session.execute(select(SupervisorNote).where(SupervisorNote.call_id == call_id)
                                  .order_by(SupervisorNote.id.desc()).limit(limit)).scalars())
    names = names_by_id({n.author_id for n in raw})
    return [NoteView(n.id, n.body or "", names.get(n.author_id), n.created_at) for n in reversed(raw)]
