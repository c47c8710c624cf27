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


def rule_of(req: RecordsRequest) -> clocks.ClockRule:
    """The rule the request runs on (``clocks.rule_for``: its type's, or the access clock for an
    electronic copy the patient directs to a third party)."""
    return clocks.rule_for(policy_of(req), req.request_type, req.record_format)


def due_date(req: RecordsRequest) -> clocks.DueDate:
    """Recompute the request's due date from its stored facts (the policy it was received under).
    Waiting for the requester never moves it (no tolling: H&S 123110, 45 CFR 164.524(b)(2))."""
    policy = policy_of(req)
    if req.status == RequestStatus.REVIEW_REQUESTED and req.review_requested_at is not None:
        return clocks.compute_due(policy.review, facility_day(req.review_requested_at),
                                  extra_holidays=extra_holidays())
    return clocks.compute_due(rule_of(req), facility_day(req.received_at), req.extended_days, extra_holidays())


def urgency(req: RecordsRequest, on: date | None = None) -> clocks.Urgency | None:
    """Due soon / overdue / on track for an open request (waiting for the requester included: the
    clock runs); None for a closed one."""
    if not req.is_open:
        return None
    return clocks.urgency(req.due_on, on or today(), int(current_app.config["RECORDS_DUE_SOON_DAYS"]))


def _weekday_or_holiday(day: date) -> str:
    if day.weekday() == 5:
        return _("a Saturday")
    if day.weekday() == 6:
        return _("a Sunday")
    return _("a holiday")


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
    if due.falls_on is not None and due.moved:
        lines.append(_("That day, %(day)s, is %(what)s, so the deadline moves to the next working day "
                       "(California Code of Civil Procedure §§12a, 135).", day=format_date(due.falls_on),
                       what=_weekday_or_holiday(due.falls_on)))
    elif due.falls_on is not None:
        lines.append(_("That day, %(day)s, is %(what)s. This deadline is not moved to the next working day, so "
                       "we answer by the working day before it.", day=format_date(due.falls_on),
                       what=_weekday_or_holiday(due.falls_on)))
    elif rule.rolls_to_working_day:
        lines.append(_("When the last day falls on a weekend or a holiday, the deadline moves to the next working "
                       "day (California Code of Civil Procedure §§12a, 135)."))
    if req.paused_days:
        lines.append(_("We waited %(n)d days for information from the requester; waiting does not move the due "
                       "date.", n=req.paused_days))
    if req.status == RequestStatus.AWAITING_REQUESTER:
        lines.append(_(policy.waiting_note))  # marked in clocks.py, translated here
    lines.append(_("Due on %(day)s.", day=format_date(due.due_on)))
    return lines
