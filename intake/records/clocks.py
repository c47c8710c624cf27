"""Legal clocks for records requests: pure functions over a policy table.

A due date is always computed, never typed: from the day the request was received (in the
facility's time zone), the rule for its type, any extension granted and any days the clock was
paused. ``explain`` says in plain words how the date was reached and cites the rule.

California's policy is the default because the facility is in California and its law is
stricter than HIPAA's: 15 calendar days for a copy with no extension, 5 working days to inspect
(Health & Safety Code 123110). The "HIPAA only" policy is for a facility subject only to federal law.

Under neither does the clock stop while the request waits for the requester: H&S 123110 has no
tolling, and 45 CFR 164.524(b)(2) counts 30 days from receipt with one 30-day extension and nothing
else. Waiting is recorded (its days are shown) but never moves the due date.

A state deadline of calendar days that ends on a Saturday, Sunday or holiday runs to the next
working day (Code of Civil Procedure §§12a, 135); federal deadlines (45 CFR 164.524, 164.526,
164.528) are not moved, and the explanation says so.

A copy sent to a third party at the patient's direction in electronic form is an access request
(45 CFR 164.524(c)(3)(ii)): it runs on the access clock of 45 CFR 164.524(b)(2). Only a paper copy
to a third party, which no rule times, has the facility's own target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from intake.records.models import RecordFormat, RequestType


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
    # A state deadline that ends on a weekend or holiday runs to the next working day (CCP §12a).
    rolls_to_working_day: bool = False


@dataclass(frozen=True)
class ClockPolicy:
    code: str
    name: str
    rules: Mapping[RequestType, ClockRule]
    waiting_note: str  # what waiting for the requester does to the clock (nothing), and why
    review: ClockRule = ClockRule(30, DayCount.CALENDAR, N_("the facility's internal target for the review of a "
                                                          "denial (45 CFR §164.524(d)(4) asks for a reasonable "
                                                          "period)"), internal_target=True)


_HSC_123110 = N_("California Health & Safety Code §123110")
# 45 CFR 164.524(c)(3)(ii): an electronic copy the patient directs to a third party is an access request.
_DIRECTED = ClockRule(30, DayCount.CALENDAR, N_("45 CFR §164.524(b)(2): a copy the patient directs to a third "
                                                "party in electronic form is an access request "
                                                "(§164.524(c)(3)(ii))"), 30, "45 CFR §164.524(b)(2)(ii)")
THIRD_PARTY_TARGET_MAX = 30  # the facility's own target never exceeds the federal access clock
_ACCOUNTING = ClockRule(60, DayCount.CALENDAR, "45 CFR §164.528(c)(1)", 30, "45 CFR §164.528(c)(1)(ii)")
_ADDENDUM = ClockRule(60, DayCount.CALENDAR,
                      N_("45 CFR §164.526(b)(2); at most 250 words under Health & Safety Code §123111"),
                      30, "45 CFR §164.526(b)(2)(ii)")


def _third_party(days: int) -> ClockRule:
    return ClockRule(days, DayCount.CALENDAR, N_("the facility's internal target for a paper copy sent to a third "
                                                 "party"), internal_target=True)


def build_policies(third_party_days: int = 30) -> dict[str, ClockPolicy]:
    """The policy table. Only the third-party target is a setting; the rest is law."""
    return {
        "california": ClockPolicy(
            code="california", name="California",
            rules={
                RequestType.COPY: ClockRule(15, DayCount.CALENDAR, _HSC_123110, rolls_to_working_day=True),
                RequestType.INSPECTION: ClockRule(5, DayCount.WORKING, _HSC_123110),
                RequestType.ACCOUNTING: _ACCOUNTING,
                RequestType.ADDENDUM: _ADDENDUM,
                RequestType.THIRD_PARTY: _third_party(third_party_days),
            },
            waiting_note=N_("The clock keeps running while we wait for you: California law does not let identity "
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
            waiting_note=N_("The clock keeps running while we wait for you: the federal rule counts 30 days from "
                            "receipt, with one extension and no pause (45 CFR §164.524(b)(2))."),
        ),
    }


def rule_for(policy: ClockPolicy, request_type: RequestType, record_format: RecordFormat | str | None) -> ClockRule:
    """The rule a request runs on: its type's, except that an electronic copy sent to a third party at
    the patient's direction is an access request (45 CFR 164.524(c)(3)(ii), (b)(2))."""
    if request_type == RequestType.THIRD_PARTY and record_format == RecordFormat.ELECTRONIC:
        return _DIRECTED
    return policy.rules[request_type]


# --- Holidays ---------------------------------------------------------------------------------
# California holidays that the state's legal-holiday list (Government Code §6700) and the state
# employees' calendar (CalHR) both name: the intersection, nothing else. A fixed-date holiday on a
# Sunday is observed the next Monday; one on a Saturday is not moved. Where the sources differ
# (Lincoln's Birthday, Juneteenth, Native American Day, Indigenous Peoples' Day, the day after
# Thanksgiving) the day is left out, so a working-day deadline errs early, never late; a facility
# that closes on those days lists them in RECORDS_EXTRA_HOLIDAYS. Native American Day (the fourth
# Friday of September, Gov. Code §6700(a)(13)) is a legal holiday but not a state employees' paid
# holiday, so it is not in the intersection.

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
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
    ]
    return frozenset(fixed + observed + by_rule)


def parse_extra_holidays(text: str) -> frozenset[date]:
    """``RECORDS_EXTRA_HOLIDAYS``: ISO dates separated by commas; raises ValueError on a bad one."""
    return frozenset(date.fromisoformat(part.strip()) for part in text.split(",") if part.strip())


def is_working_day(day: date, extra_holidays: Iterable[date] = ()) -> bool:
    return day.weekday() < 5 and day not in california_holidays(day.year) and day not in set(extra_holidays)


def next_working_day(day: date, extra_holidays: frozenset[date] = frozenset()) -> date:
    """``day`` itself when it is a working day, else the first working day after it."""
    while not is_working_day(day, extra_holidays):
        day += timedelta(days=1)
    return day


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
    falls_on: date | None = None  # the period's last day when that is a weekend or holiday
    moved: bool = False  # ... and the due date was moved to the next working day (CCP §12a)


def compute_due(rule: ClockRule, received_on: date, extended_days: int = 0,
                extra_holidays: frozenset[date] = frozenset()) -> DueDate:
    """The due date: the rule's period from the day of receipt, plus any extension; never any waiting
    (no tolling: H&S 123110, 45 CFR 164.524(b)(2)). A state deadline that ends on a weekend or
    holiday runs to the next working day (CCP §12a); a federal one stays where it falls."""
    if rule.count is DayCount.WORKING:
        base = add_working_days(received_on, rule.days, extra_holidays)
    else:
        base = received_on + timedelta(days=rule.days)
    last = base + timedelta(days=extended_days)
    if is_working_day(last, extra_holidays):
        return DueDate(received_on, base, last, rule, extended_days)
    if rule.rolls_to_working_day:
        return DueDate(received_on, base, next_working_day(last, extra_holidays), rule, extended_days, last, True)
    return DueDate(received_on, base, last, rule, extended_days, last, False)


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
