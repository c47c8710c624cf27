"""Due dates as this installation computes them: the pure rules of ``clocks`` applied with the
configured policy, holidays and time zone, and explained in plain words for the request's page."""

from __future__ import annotations

from datetime import date, datetime

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _

from intake.db_types import utcnow
from intake.records import clocks
from intake.records.models import RecordsRequest, RequestStatus


def current_policy() -> clocks.ClockPolicy:
    """The policy new requests are received under (``RECORDS_CLOCK_POLICY``)."""
    config = current_app.config
    policies = clocks.build_policies(int(config["RECORDS_THIRD_PARTY_TARGET_DAYS"]))
    return policies[config["RECORDS_CLOCK_POLICY"]]


def extra_holidays() -> frozenset[date]:
    return clocks.parse_extra_holidays(current_app.config.get("RECORDS_EXTRA_HOLIDAYS") or "")


def facility_day(moment: datetime) -> date:
    return clocks.local_day(moment, current_app.config["FACILITY_TIMEZONE"])


def today() -> date:
    """The facility's calendar day now."""
    return facility_day(utcnow())


def policy_of(req: RecordsRequest) -> clocks.ClockPolicy:
    """The policy the request was received under (a later change of setting does not move it)."""
    config = current_app.config
    policies = clocks.build_policies(int(config["RECORDS_THIRD_PARTY_TARGET_DAYS"]))
    return policies.get(req.clock_policy) or current_policy()


def due_date(req: RecordsRequest) -> clocks.DueDate:
    """Recompute the request's due date from its stored facts (the policy it was received under)."""
    policy = policy_of(req)
    if req.status == RequestStatus.REVIEW_REQUESTED and req.review_requested_at is not None:
        return clocks.compute_due(policy.review, facility_day(req.review_requested_at),
                                  extra_holidays=extra_holidays())
    return clocks.compute_due(policy.rules[req.request_type], facility_day(req.received_at), req.extended_days,
                              req.paused_days, extra_holidays())


def urgency(req: RecordsRequest, on: date | None = None) -> clocks.Urgency | None:
    """Due soon / overdue / on track for an open request whose clock runs; None otherwise."""
    if not req.is_open or req.paused_since is not None:
        return None
    return clocks.urgency(req.due_on, on or today(), int(current_app.config["RECORDS_DUE_SOON_DAYS"]))


def explain_due(req: RecordsRequest) -> list[str]:
    """How the due date was computed, in plain sentences that cite the rule."""
    due = due_date(req)
    policy = policy_of(req)
    rule = due.rule
    lines = []
    if req.status == RequestStatus.REVIEW_REQUESTED and req.review_requested_at is not None:
        lines.append(_("The review was requested on %(day)s.", day=format_date(due.received_on)))
    else:
        lines.append(_("We received the request on %(day)s.", day=format_date(due.received_on)))
    if rule.count is clocks.DayCount.WORKING:
        lines.append(_("The rule gives %(n)d working days, not counting weekends and California holidays "
                       "(%(rule)s).", n=rule.days, rule=_(rule.citation)))
    else:
        lines.append(_("The rule gives %(n)d calendar days (%(rule)s).", n=rule.days, rule=_(rule.citation)))
    if rule.internal_target:
        lines.append(_("This is our own target, not a deadline set by law."))
    if due.extended_days:
        lines.append(_("The deadline was extended once by %(n)d days (%(rule)s).", n=due.extended_days,
                       rule=_(rule.extension_citation or rule.citation)))
    if due.paused_days:
        lines.append(_("The clock was stopped for %(n)d days while we waited for information from the requester.",
                       n=due.paused_days))
    if req.paused_since is not None:
        lines.append(_("The clock is stopped now, while we wait for information from the requester."))
    elif req.status == RequestStatus.AWAITING_REQUESTER:
        lines.append(_(policy.pause_note))  # marked in clocks.py, translated here
    lines.append(_("Due on %(day)s.", day=format_date(due.due_on)))
    return lines
