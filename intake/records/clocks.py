"""Legal clocks for records requests: pure functions over a policy table.

A due date is always computed, never typed: from the day the request was received (in the
facility's time zone), the rule for its type, any extension granted and any days the clock was
paused. ``explain`` says in plain words how the date was reached and cites the rule.

California's policy is the default because the facility is in California and its law is
stricter than HIPAA's: 15 calendar days for a copy with no extension, 5 working days to inspect
(Health & Safety Code 123110), and identity checks may not be used to delay compliance, so the
clock never pauses. The "HIPAA only" policy is for a facility subject only to federal law.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from intake.records.models import RequestType


def N_(text: str) -> str:
    """Mark ``text`` for translation without translating it here (this module stays free of Flask);
    ``deadlines.explain_due`` translates it when it is shown."""
    return text


class DayCount(StrEnum):
    CALENDAR = "calendar"
    WORKING = "working"


@dataclass(frozen=True)
class ClockRule:
    days: int
    count: DayCount
    citation: str
    extension_days: int | None = None  # None: the rule allows no extension
    extension_citation: str | None = None
    internal_target: bool = False  # an internal goal, not a legal deadline


@dataclass(frozen=True)
class ClockPolicy:
    code: str
    name: str
    rules: Mapping[RequestType, ClockRule]
    pause_while_awaiting: bool  # does the clock stop while the request waits on the requester?
    pause_note: str
    review: ClockRule = ClockRule(30, DayCount.CALENDAR, N_("the facility's internal target for the review of a "
                                                          "denial (45 CFR §164.524(d)(4) asks for a reasonable "
                                                          "period)"), internal_target=True)


_HSC_123110 = N_("California Health & Safety Code §123110")
_ACCOUNTING = ClockRule(60, DayCount.CALENDAR, "45 CFR §164.528(c)(1)", 30, "45 CFR §164.528(c)(1)(ii)")
_ADDENDUM = ClockRule(60, DayCount.CALENDAR,
                      N_("45 CFR §164.526(b)(2); at most 250 words under Health & Safety Code §123111"),
                      30, "45 CFR §164.526(b)(2)(ii)")


def _third_party(days: int) -> ClockRule:
    return ClockRule(days, DayCount.CALENDAR, N_("the facility's internal target for releases to a third party"),
                     internal_target=True)


def build_policies(third_party_days: int = 30) -> dict[str, ClockPolicy]:
    """The policy table. Only the third-party target is a setting; the rest is law."""
    return {
        "california": ClockPolicy(
            code="california", name="California",
            rules={
                RequestType.COPY: ClockRule(15, DayCount.CALENDAR, _HSC_123110),
                RequestType.INSPECTION: ClockRule(5, DayCount.WORKING, _HSC_123110),
                RequestType.ACCOUNTING: _ACCOUNTING,
                RequestType.ADDENDUM: _ADDENDUM,
                RequestType.THIRD_PARTY: _third_party(third_party_days),
            },
            pause_while_awaiting=False,
            pause_note=N_("The clock keeps running while we wait for you: California law does not let identity "
                          "checks delay a request (Health & Safety Code §123110)."),
        ),
        "hipaa": ClockPolicy(
            code="hipaa", name="HIPAA only",
            rules={
                RequestType.COPY: ClockRule(30, DayCount.CALENDAR, "45 CFR §164.524(b)(2)", 30,
                                            "45 CFR §164.524(b)(2)(ii)"),
                RequestType.INSPECTION: ClockRule(30, DayCount.CALENDAR, "45 CFR §164.524(b)(2)", 30,
                                                  "45 CFR §164.524(b)(2)(ii)"),
                RequestType.ACCOUNTING: _ACCOUNTING,
                RequestType.ADDENDUM: _ADDENDUM,
                RequestType.THIRD_PARTY: _third_party(third_party_days),
            },
            pause_while_awaiting=True,
            pause_note=N_("The clock stops while we wait for information from you and starts again when you "
                          "reply."),
        ),
    }


# --- Holidays ---------------------------------------------------------------------------------
# California holidays that the state's legal-holiday list (Government Code §6700) and the state
# employees' calendar (CalHR) both name. A fixed-date holiday on a Sunday is observed the next
# Monday; one on a Saturday is not moved. Where sources differ (Lincoln's Birthday, Juneteenth,
# Indigenous Peoples' Day, the day after Thanksgiving) the default leaves the day out, so a due
# date errs early, never late; a facility that closes on those days lists them in
# RECORDS_EXTRA_HOLIDAYS.

def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) ``weekday`` (Monday = 0) of the month; n = -1 for the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


@lru_cache(maxsize=64)
def california_holidays(year: int) -> frozenset[date]:
    fixed = [date(year, 1, 1), date(year, 3, 31), date(year, 7, 4), date(year, 11, 11), date(year, 12, 25)]
    observed = [d + timedelta(days=1) for d in fixed if d.weekday() == 6]
    by_rule = [
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Presidents' Day
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 9, 4, 4),  # Native American Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
    ]
    return frozenset(fixed + observed + by_rule)


def parse_extra_holidays(text: str) -> frozenset[date]:
    """``RECORDS_EXTRA_HOLIDAYS``: ISO dates separated by commas; raises ValueError on a bad one."""
    return frozenset(date.fromisoformat(part.strip()) for part in text.split(",") if part.strip())


def is_working_day(day: date, extra_holidays: Iterable[date] = ()) -> bool:
    return day.weekday() < 5 and day not in california_holidays(day.year) and day not in set(extra_holidays)


def add_working_days(start: date, days: int, extra_holidays: frozenset[date] = frozenset()) -> date:
    """The ``days``-th working day after ``start`` (the day of receipt itself does not count)."""
    day, counted = start, 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day, extra_holidays):
            counted += 1
    return day


# --- Due dates --------------------------------------------------------------------------------

def local_day(moment: datetime, timezone: str) -> date:
    """The facility's calendar day at ``moment``."""
    return moment.astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True)
class DueDate:
    received_on: date
    base_due_on: date
    due_on: date
    rule: ClockRule
    extended_days: int
    paused_days: int


def compute_due(rule: ClockRule, received_on: date, extended_days: int = 0, paused_days: int = 0,
                extra_holidays: frozenset[date] = frozenset()) -> DueDate:
    """The due date: the rule's period from the day of receipt, plus any extension and pause."""
    if rule.count is DayCount.WORKING:
        base = add_working_days(received_on, rule.days, extra_holidays)
    else:
        base = received_on + timedelta(days=rule.days)
    due = base + timedelta(days=extended_days + paused_days)
    return DueDate(received_on, base, due, rule, extended_days, paused_days)


class ExtensionRefused(ValueError):
    """The extension is not allowed; the message says why in plain words."""


def check_extension(rule: ClockRule, due_on: date, today: date, already_extended: int, reason: str | None) -> int:
    """Return the number of days an extension adds, or raise ``ExtensionRefused``."""
    if rule.extension_days is None:
        raise ExtensionRefused("no_extension")
    if already_extended:
        raise ExtensionRefused("already_extended")
    if today > due_on:
        raise ExtensionRefused("past_due")
    if not (reason or "").strip():
        raise ExtensionRefused("reason_required")
    return rule.extension_days


def paused_day_count(since: datetime, until: datetime, timezone: str) -> int:
    """Whole calendar days a pause lasted, counted in the facility's zone (a pause that starts
    and ends on the same day adds nothing)."""
    return max(0, (local_day(until, timezone) - local_day(since, timezone)).days)


class Urgency(StrEnum):
    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


def urgency(due_on: date, today: date, due_soon_days: int = 3) -> Urgency:
    if today > due_on:
        return Urgency.OVERDUE
    if (due_on - today).days <= due_soon_days:
        return Urgency.DUE_SOON
    return Urgency.ON_TRACK
