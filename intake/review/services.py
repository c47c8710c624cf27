"""Quality-review rules: what lands on the supervisors' queue, the rubric, and the operator's
reading of the feedback. Plain functions, no HTTP: they change state, write the audit row and
``flush()``; the caller commits once.

Weeks are the facility's: Monday 00:00 to the next Monday 00:00 in ``FACILITY_TIMEZONE``, so a
call at 11 pm on a Sunday in California belongs to that Sunday's week, whatever UTC says.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext
from sqlalchemy import func, select

from intake.audit.services import lock_trail, record
from intake.calls.models import Call, CallStatus, CallType
from intake.calls.risk import needs_safety_action
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, can
from intake.review.models import CallReview, ReviewReason, ReviewStatus

OBJECT_TYPE = "call_review"
# The rubric, in the order the form and the operator's page show it.
ITEMS = ("opening", "listening", "risk_assessment", "referral_fit", "safety_plan", "closing")
SCORES = (0, 1, 2)  # not done, partly, done well
NOT_NEEDED_ITEM = "safety_plan"  # the only item that may be "not needed" (NULL)
FEEDBACK_MAX = 4000
SAMPLE_SIZE_MAX = 50
# The candidates one operator's week offers the sample; a week of one operator's calls is far below it.
CANDIDATE_LIMIT = 2000


class ReviewInvalid(ValueError):
    """The rubric cannot be saved as given; ``errors`` maps item names (or "feedback") to messages."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("review is not valid: " + ", ".join(sorted(errors)))
        self.errors = dict(errors)


class ReviewRefused(PermissionError):
    """This person may not review this call (their own call, or no review permission)."""


def week_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def week_bounds(monday: date, timezone: str) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of the facility week starting ``monday`` (DST-safe: each end is
    computed from its own local midnight, so a week may be 167 or 169 hours long)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(monday, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(monday + timedelta(days=7), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


def _timezone() -> str:
    return current_app.config["FACILITY_TIMEZONE"]


def call_week(call: Call) -> date:
    """The Monday of the facility week in which the call started."""
    return week_of(call.started_at.astimezone(ZoneInfo(_timezone())).date())


def last_full_week(now: datetime | None = None) -> date:
    """The Monday of the most recent week that has ended (the one before the current week)."""
    today = (now or utcnow()).astimezone(ZoneInfo(_timezone())).date()
    return week_of(today) - timedelta(days=7)


def review_for_call(call_id: int) -> CallReview | None:
    """The call's review (there is at most one), or None."""
    return db.session.execute(select(CallReview).where(CallReview.call_id == call_id)).scalar_one_or_none()


def queue_high_risk(call: Call, actor: Any = None) -> CallReview | None:
    """Put a finalized high- or imminent-risk call on the review queue, once.

    Called by ``finalize_call`` after every finalization and edit: a call that is not final or
    not high risk is ignored, and a call already on the queue (for whatever reason) is left
    alone, so calling it again changes nothing. Audited "review.queued".
    """
    if call.status != CallStatus.FINAL or not needs_safety_action(call.risk_level):
        return None
    if review_for_call(call.id) is not None:
        return None
    review = CallReview(call_id=call.id, operator_id=call.operator_id, reason=ReviewReason.HIGH_RISK,
                        week_of=call_week(call), status=ReviewStatus.OPEN, queued_at=utcnow())
    db.session.add(review)
    db.session.flush()
    record("review.queued", actor=actor, object_type=OBJECT_TYPE, object_id=review.id,
           details={"call_id": call.id, "reason": ReviewReason.HIGH_RISK.value})
    return review


@dataclass
class SampleResult:
    """What one draw did: per operator (account number), how many calls it added and how many
    sampled calls that operator now has on the queue for the week."""

    week_of: date
    size: int
    added: dict[int, int] = field(default_factory=dict)
    on_queue: dict[int, int] = field(default_factory=dict)

    @property
    def total_added(self) -> int:
        return sum(self.added.values())


def draw_weekly_sample(monday: date, size: int, actor: Any = None) -> SampleResult:
    """Draw ``size`` random finalized data calls per operator from the facility week starting
    ``monday`` onto the queue (reason "sample").

    Idempotent per (operator, week): an operator who already has ``size`` sampled calls that
    week gets no more, one with fewer is topped up. Calls already on the queue (high risk, or
    drawn before) are never drawn again. Non-data calls (hang-ups, tests…) say nothing about an
    operator's work and are left out. The choice uses the system's random source, so nobody can
    predict which calls will be read. Audited "review.sampled" with the counts.
    """
    if monday.weekday() != 0:
        raise ValueError("a week starts on a Monday")
    if not 0 <= size <= SAMPLE_SIZE_MAX:
        raise ValueError(f"the sample size is between 0 and {SAMPLE_SIZE_MAX}")
    result = SampleResult(week_of=monday, size=size)
    if size:
        # Two draws at once (the timer and the button) must not both top up the same operator:
        # the second waits here for the first to commit, then sees its rows.
        lock_trail()
        start, end = week_bounds(monday, _timezone())
        in_week = (Call.status == CallStatus.FINAL, Call.call_type == CallType.DATA,
                   Call.started_at >= start, Call.started_at < end)
        already = dict(db.session.execute(
            select(CallReview.operator_id, func.count())
            .where(CallReview.week_of == monday, CallReview.reason == ReviewReason.SAMPLE)
            .group_by(CallReview.operator_id)).tuples().all())
        operators = db.session.execute(select(Call.operator_id).where(*in_week).distinct()
                                       .order_by(Call.operator_id)).scalars().all()
        queued = select(CallReview.call_id).where(CallReview.call_id == Call.id).exists()
        rng = secrets.SystemRandom()
        for operator_id in operators:
            wanted = size - already.get(operator_id, 0)
            if wanted > 0:
                # One query per operator: a helpline's staff is a few dozen people, not a page of rows.
                candidates = db.session.execute(
                    select(Call.id).where(*in_week, Call.operator_id == operator_id, ~queued)
                    .order_by(Call.id).limit(CANDIDATE_LIMIT)).scalars().all()
                picked = rng.sample(list(candidates), min(wanted, len(candidates)))
                now = utcnow()
                for call_id in sorted(picked):
                    db.session.add(CallReview(call_id=call_id, operator_id=operator_id, reason=ReviewReason.SAMPLE,
                                              week_of=monday, status=ReviewStatus.OPEN, queued_at=now))
                result.added[operator_id] = len(picked)
            else:
                result.added[operator_id] = 0
            result.on_queue[operator_id] = already.get(operator_id, 0) + result.added[operator_id]
        db.session.flush()
    record("review.sampled", actor=actor, object_type=OBJECT_TYPE,
           details={"week_of": monday.isoformat(), "size": size, "operators": len(result.added),
                    "added": result.total_added,
                    "added_by_operator": {str(k): v for k, v in sorted(result.added.items()) if v}})
    return result


def _scores_of(review: CallReview) -> dict[str, int | None]:
    return {item: getattr(review, "score_" + item) for item in ITEMS}


def check_rubric(call: Call, scores: Mapping[str, Any], feedback: str | None) -> dict[str, str]:
    """Every rubric rule, checked on the values given; {} when they are fine.

    Each item needs a score 0, 1 or 2. The safety plan may be "not needed" (None) only when the
    call's risk did not call for a safety action: a high or imminent call always needed a plan.
    Feedback is required and at most ``FEEDBACK_MAX`` characters.
    """
    errors: dict[str, str] = {}
    for item in ITEMS:
        value = scores.get(item)
        if value is None and item == NOT_NEEDED_ITEM:
            if needs_safety_action(call.risk_level):
                errors[item] = gettext("This call's risk level needed a safety plan: score how it was done.")
        elif value is None:
            errors[item] = gettext("Score this item.")
        elif isinstance(value, bool) or not isinstance(value, int) or value not in SCORES:
            errors[item] = gettext("Choose one of the scores offered.")
    text = (feedback or "").strip()
    if not text:
        errors["feedback"] = gettext("Write feedback for the operator.")
    elif len(text) > FEEDBACK_MAX:
        errors["feedback"] = gettext("Feedback is at most %(n)s characters.", n=f"{FEEDBACK_MAX:,}")
    return errors


def may_review(reviewer: Any, review: CallReview) -> bool:
    """A reviewer holds QUALITY_REVIEW and is not the call's operator (nobody marks their own work)."""
    return can(reviewer, Permission.QUALITY_REVIEW) and reviewer.id != review.operator_id


def submit_review(review: CallReview, scores: Mapping[str, Any], feedback: str, reviewer: Any) -> CallReview:
    """Score a call on the rubric and write the feedback its operator will read.

    An open review becomes done, audited "review.submitted"; a done review may be amended by any
    reviewer (the latest one is recorded), audited "review.updated" with the names of the
    changed items. Either way the operator is shown the feedback as new again. The audit rows
    hold the scores, never the feedback text. Raises ``ReviewRefused`` or ``ReviewInvalid``
    before anything changes.
    """
    if not may_review(reviewer, review):
        raise ReviewRefused("the call's own operator, or someone without the review permission")
    call = db.session.get(Call, review.call_id)
    if call is None:  # deleted by the retention purge between the page and the post
        raise ReviewRefused("the call no longer exists")
    errors = check_rubric(call, scores, feedback)
    if errors:
        raise ReviewInvalid(errors)
    was_done = review.status == ReviewStatus.DONE
    before = _scores_of(review)
    before_feedback = review.feedback
    text = feedback.strip()
    for item in ITEMS:
        setattr(review, "score_" + item, scores.get(item))
    review.feedback = text
    review.status = ReviewStatus.DONE
    review.reviewer_id = reviewer.id
    review.reviewed_at = utcnow()
    review.operator_seen_at = None
    db.session.flush()
    after = _scores_of(review)
    details: dict[str, Any] = {"call_id": review.call_id, "reason": str(review.reason), "scores": after}
    if was_done:
        changed = sorted(item for item in ITEMS if before[item] != after[item])
        if before_feedback != text:
            changed.append("feedback")
        details["changed"] = changed
        record("review.updated", actor=reviewer, object_type=OBJECT_TYPE, object_id=review.id, details=details)
    else:
        record("review.submitted", actor=reviewer, object_type=OBJECT_TYPE, object_id=review.id, details=details)
    return review


def feedback_for_viewer(call: Call, viewer: Any) -> CallReview | None:
    """The review the call page shows to ``viewer``: a done review to the call's own operator;
    the review in any state to reviewers; nothing to anyone else (other operators may read the
    call, not what a supervisor wrote about a colleague's work)."""
    review = review_for_call(call.id)
    if review is None:
        return None
    if can(viewer, Permission.QUALITY_REVIEW):
        return review
    if review.status == ReviewStatus.DONE and viewer.id == review.operator_id:
        return review
    return None


def mark_seen(review: CallReview, operator: Any) -> bool:
    """The call's operator has read the feedback: stamp it once (audited "review.seen").
    False, and nothing changes, for anyone else, an open review or feedback already seen."""
    if operator.id != review.operator_id or review.status != ReviewStatus.DONE or review.operator_seen_at:
        return False
    review.operator_seen_at = utcnow()
    db.session.flush()
    record("review.seen", actor=operator, object_type=OBJECT_TYPE, object_id=review.id,
           details={"call_id": review.call_id})
    return True

