"""Reading the review queue: keyset pages over ``(queued_at, id)`` and the coded facts of one
call. Plain columns only (never whole ``Call`` rows, which would decrypt notes nobody is shown);
no count of the table, no query per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from intake.calls.models import Call, CallSubstance, Referral, Substance
from intake.extensions import db
from intake.pagination import BadCursor, MomentCursor  # noqa: F401 - BadCursor: the views catch it from here
from intake.review.models import CallReview, ReviewReason, ReviewStatus

PAGE_SIZE = 50

# A page's last row: (queued_at, id).
Cursor = MomentCursor


@dataclass(frozen=True)
class QueueFilters:
    status: ReviewStatus = ReviewStatus.OPEN
    reason: ReviewReason | None = None
    operator_id: int | None = None


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue: coded columns only."""

    id: int
    call_id: int
    started_at: datetime
    operator_id: int
    reason: str
    risk_level: str
    queued_at: datetime
    reviewed_at: datetime | None
    reviewer_id: int | None


def list_queue(filters: QueueFilters, after: Cursor | None = None,
               page_size: int = PAGE_SIZE) -> tuple[list[QueueRow], Cursor | None]:
    """One page of the queue and the cursor of the next page (None on the last).

    Open reviews come oldest first (the longest-waiting call is read first); done ones newest
    first. Both walk the ``(status, queued_at, id)`` index; ``page_size + 1`` rows tell whether
    another page exists without counting.
    """
    stmt = (select(CallReview.id, CallReview.call_id, Call.started_at, CallReview.operator_id, CallReview.reason,
                   Call.risk_level, CallReview.queued_at, CallReview.reviewed_at, CallReview.reviewer_id)
            .join(Call, Call.id == CallReview.call_id)
            .where(CallReview.status == filters.status))
    if filters.reason is not None:
        stmt = stmt.where(CallReview.reason == filters.reason)
    if filters.operator_id is not None:
        stmt = stmt.where(CallReview.operator_id == filters.operator_id)
    newest_first = filters.status == ReviewStatus.DONE
    if after is not None:
        if newest_first:
            stmt = stmt.where(or_(CallReview.queued_at < after.at,
                                  and_(CallReview.queued_at == after.at, CallReview.id < after.id)))
        else:
            stmt = stmt.where(or_(CallReview.queued_at > after.at,
                                  and_(CallReview.queued_at == after.at, CallReview.id > after.id)))
    order = ((CallReview.queued_at.desc(), CallReview.id.desc()) if newest_first
             else (CallReview.queued_at, CallReview.id))
    raw = db.session.execute(stmt.order_by(*order).limit(page_size + 1)).all()
    rows = [QueueRow(id=r.id, call_id=r.call_id, started_at=r.started_at, operator_id=r.operator_id,
                     reason=str(r.reason), risk_level=str(r.risk_level), queued_at=r.queued_at,
                     reviewed_at=r.reviewed_at, reviewer_id=r.reviewer_id) for r in raw[:page_size]]
    following = Cursor(rows[-1].queued_at, rows[-1].id) if len(raw) > page_size else None
    return rows, following


@dataclass(frozen=True)
class CallFacts:
    """What the review page shows about the call: coded fields only."""

    id: int
    operator_id: int
    started_at: datetime
    duration_seconds: int | None
    call_type: str
    channel: str
    risk_level: str
    disposition: str | None
    overdose_risk: bool
    safety_actions: list[str]
    substances: list[str]
    referrals: int


def call_facts(call_id: int) -> CallFacts | None:
    """The call's coded facts in three small queries (columns, substances, referral count)."""
    row = db.session.execute(
        select(Call.id, Call.operator_id, Call.started_at, Call.duration_seconds, Call.call_type, Call.channel,
               Call.risk_level, Call.disposition, Call.overdose_risk, Call.safety_988, Call.safety_911,
               Call.safety_warm_transfer, Call.safety_plan).where(Call.id == call_id)).first()
    if row is None:
        return None
    found = db.session.execute(select(CallSubstance.substance)
                               .where(CallSubstance.call_id == call_id)).scalars().all()
    substances = sorted(found, key=list(Substance).index)  # benzodiazepines first, as on the call form
    referrals = db.session.execute(select(func.count()).select_from(Referral)
                                   .where(Referral.call_id == call_id)).scalar_one()
    actions = [name for name, done in (("988", row.safety_988), ("911", row.safety_911),
                                       ("warm_transfer", row.safety_warm_transfer),
                                       ("safety_plan", row.safety_plan)) if done]
    return CallFacts(id=row.id, operator_id=row.operator_id, started_at=row.started_at,
                     duration_seconds=row.duration_seconds, call_type=str(row.call_type), channel=str(row.channel),
                     risk_level=str(row.risk_level), disposition=str(row.disposition) if row.disposition else None,
                     overdose_risk=bool(row.overdose_risk), safety_actions=actions,
                     substances=[str(s) for s in substances], referrals=referrals)


def as_args(**values: Any) -> dict[str, Any]:
    """Query-string arguments without the empty ones."""
    return {k: v for k, v in values.items() if v not in (None, "")}
