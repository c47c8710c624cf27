"""The dashboard's figures: aggregates grouped in SQL, never a row of a call or request.

The call figures come from counts kept per hour and per facility day, and the range's records
figures from counts kept per facility day (intake/admin/dashboard_cache.py), so the page costs about
the same at ten thousand and at a million calls; the figures "now" (open requests, follow-ups) are
counted each time (a few thousand open requests, indexed).

Only coded, non-identifying columns are read (type, risk, status, substance codes, timestamps,
due dates, reason codes), so no encrypted column is ever selected or decrypted. What must be
counted in the facility's days and hours is grouped in SQL by UTC hour and folded into local days
in Python with ``zoneinfo``: at most one row per hour of the range comes back, the result is exact
across daylight-saving changes, and SQLite (which has no time-zone database) gives the same
numbers as PostgreSQL. That folding assumes the facility's zone is a whole number of hours from
UTC, as every US zone is.

Calls count only once finalized: a draft is a call still being written (or abandoned in the middle),
so its type, risk and substances are not yet what the operator settled on.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.sql.expression import Select

from intake.admin import dashboard_cache
from intake.admin.dashboard_cache import grouped
from intake.admin.exports import DateRange
from intake.calls.models import (
    CallType,
    FollowUp,
    FollowUpStatus,
    ReferralStatus,
    RiskLevel,
    Substance,
)
from intake.extensions import db
from intake.records import queue
from intake.records.models import OPEN_STATUSES, RecordsRequest, RequestStatus
from intake.records.workflow import DenialReason
from intake.resources.models import ResourceKind

FOLLOWUP_HORIZON_DAYS = 7
# Age of an open request in the facility's days since it was received: (first day, last day or None).
AGE_BUCKETS: tuple[tuple[int, int | None], ...] = ((0, 5), (6, 10), (11, 15), (16, 30), (31, 60), (61, None))
# The open states in the order a request moves through them.
OPEN_ORDER = (RequestStatus.SUBMITTED, RequestStatus.VERIFYING, RequestStatus.IN_REVIEW,
              RequestStatus.AWAITING_REQUESTER, RequestStatus.REVIEW_REQUESTED)


# --- Results ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DayCount:
    day: date
    data: int
    other: int

    @property
    def total(self) -> int:
        return self.data + self.other


@dataclass(frozen=True)
class CallVolume:
    """Finalized calls per facility day (every day of the range, zeros included) and per hour of
    the facility's day (24 totals, index = hour)."""

    days: list[DayCount]
    hours: list[int]

    @property
    def total(self) -> int:
        return sum(self.hours)


@dataclass(frozen=True)
class FollowUpLoad:
    """Open follow-ups now: past their due time, due within the horizon, due later."""

    overdue: int
    due_soon: int
    later: int
    horizon_days: int = FOLLOWUP_HORIZON_DAYS


@dataclass(frozen=True)
class ClosedRequests:
    """Requests closed in the range: how many, how many by their due date, days to close."""

    closed: int
    on_time: int
    days_to_close: Mapping[int, int]  # facility days from receipt to closing -> requests

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.closed if self.closed else None

    @property
    def median_days(self) -> float | None:
        return median_of(self.days_to_close)


@dataclass(frozen=True)
class Extensions:
    received: int  # requests received in the range
    extended: int  # of which the deadline was extended


@dataclass(frozen=True)
class Dashboard:
    period: DateRange
    volume: CallVolume
    call_types: dict[CallType, int]
    risk_levels: dict[RiskLevel, int]
    substances: dict[Substance, int]
    referrals: dict[ResourceKind, dict[ReferralStatus, int]]
    followups: FollowUpLoad
    open_requests: dict[RequestStatus, int]
    ages: list[tuple[tuple[int, int | None], int]]
    closed: ClosedRequests
    extensions: Extensions
    denials: dict[str, int]


# --- Helpers ----------------------------------------------------------------------------------

def median_of(histogram: Mapping[int, int]) -> float | None:
    """The median of values given as ``{value: how many}``; the mean of the middle two when the
    count is even; ``None`` for no values."""
    count = sum(histogram.values())
    if not count:
        return None
    wanted = [(count - 1) // 2, count // 2]  # 0-based positions of the middle value(s)
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        while wanted and wanted[0] < seen:
            found.append(value)
            wanted.pop(0)
    return sum(found) / len(found)


def _zero_filled(codes: Iterable[Any], counts: Iterable[tuple[Any, int]]) -> dict[Any, int]:
    """Every code in order with its count (0 when absent); codes not in the list are kept after them."""
    result: dict[Any, int] = {code: 0 for code in codes}
    for code, n in counts:
        result[code] = result.get(code, 0) + n
    return result


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


# --- Helpline ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CallFigures:
    volume: CallVolume
    types: dict[CallType, int]
    risks: dict[RiskLevel, int]
    substances: dict[Substance, int]
    referrals: dict[ResourceKind, dict[ReferralStatus, int]]


def call_figures(period: DateRange, timezone: str, now: datetime | None = None,
                 kept: dashboard_cache.HourlyCounts | None = None) -> CallFigures:
    """The helpline's figures for the range, from the hourly counts (intake/admin/dashboard_cache.py):
    finalized calls per facility day (data and other) and per facility hour of day; by type; data
    calls by risk level (a hang-up is not screened); calls naming each substance (a call naming two
    counts once for each); referrals given, by kind of service and where each stands now."""
    if kept is None:
        kept = dashboard_cache.counts(*period.bounds(timezone), now or datetime.now(UTC), timezone)
    zone = ZoneInfo(timezone)
    days = {period.first + timedelta(days=i): [0, 0] for i in range((period.last - period.first).days + 1)}
    hours = [0] * 24
    for (bucket, data), n in kept.volume_by_hour.items():
        local = bucket.astimezone(zone)
        days.setdefault(local.date(), [0, 0])[0 if data else 1] += n
        hours[local.hour] += n
    for (day, data), n in kept.volume_by_day.items():  # whole days kept summed
        days.setdefault(day, [0, 0])[0 if data else 1] += n
    for hour, n in kept.volume_by_local_hour.items():
        hours[hour] += n
    volume = CallVolume(days=[DayCount(day, data, other) for day, (data, other) in sorted(days.items())],
                        hours=hours)

    def figure(name: str, enum: Any) -> dict[Any, int]:
        return _zero_filled(enum, ((enum(code), n) for (f, code), n in kept.totals.items() if f == name))

    referrals = {kind: dict.fromkeys(ReferralStatus, 0) for kind in ResourceKind}
    for (name, code), n in kept.totals.items():
        if name == dashboard_cache.REFERRAL:
            kind, status = code.split("/", 1)
            referrals[ResourceKind(kind)][ReferralStatus(status)] += n
    return CallFigures(volume=volume, types=figure(dashboard_cache.TYPE, CallType),
                       risks=figure(dashboard_cache.RISK, RiskLevel),
                       substances=figure(dashboard_cache.SUBSTANCE, Substance), referrals=referrals)


def call_volume(period: DateRange, timezone: str) -> CallVolume:
    return call_figures(period, timezone).volume


def calls_by_type(period: DateRange, timezone: str) -> dict[CallType, int]:
    return call_figures(period, timezone).types


def risk_levels(period: DateRange, timezone: str) -> dict[RiskLevel, int]:
    return call_figures(period, timezone).risks


def substances(period: DateRange, timezone: str) -> dict[Substance, int]:
    return call_figures(period, timezone).substances


def referrals_by_kind(period: DateRange, timezone: str) -> dict[ResourceKind, dict[ReferralStatus, int]]:
    return call_figures(period, timezone).referrals


def followups_due(now: datetime, horizon_days: int = FOLLOWUP_HORIZON_DAYS) -> FollowUpLoad:
    """Open follow-ups now: overdue (due before ``now``), due soon (within ``horizon_days``), later.
    Not tied to the range: it is the queue as it stands (``ix_followups_status_due_at``)."""
    when = case((FollowUp.due_at < now, "overdue"),
                (FollowUp.due_at < now + timedelta(days=horizon_days), "soon"), else_="later")
    counts = {state: n for state, n in grouped(select(when.label("state"))
                                                .where(FollowUp.status == FollowUpStatus.OPEN))}
    return FollowUpLoad(counts.get("overdue", 0), counts.get("soon", 0), counts.get("later", 0), horizon_days)


# --- Records requests -------------------------------------------------------------------------

@dataclass(frozen=True)
class OpenRequests:
    """Open requests now (not tied to the range): by state, and by age in ``AGE_BUCKETS``."""

    by_state: dict[RequestStatus, int]
    ages: list[tuple[tuple[int, int | None], int]]


def open_request_counts(today: date, timezone: str) -> OpenRequests:
    """Open requests now, by state and by age (facility days since receipt, in ``AGE_BUCKETS``), from the
    open requests' ``(status, received_at)`` index entries (``ix_records_requests_status_received``).

    By status, not ``is_open`` (the same rows: ``is_open`` is set as ``status in OPEN_STATUSES``): filtering
    on is_open, SQLite read every request of the table (140 ms at 200,000). A request received on facility
    day ``d`` is ``today - d`` days old, so "at most N days old" is "received at or after the facility's
    midnight starting ``today - N``": the open requests received since each such midnight are counted, and
    the buckets are the differences; the oldest bucket is the rest of the open requests.

    PostgreSQL counts them in one pass, each state's row summing its requests received since each midnight:
    seven counts read the same entries seven times, and their rows too while the visibility map is not set
    (4.8 ms at a million calls, against 1.8 ms; bench/profiles.md). SQLite counts index ranges far faster
    than it evaluates a CASE per entry (0.8 ms against 1.7), so it keeps the states grouped and one
    statement of seven counts."""
    zone = ZoneInfo(timezone)
    r = RecordsRequest
    is_open = r.status.in_(sorted(OPEN_STATUSES))
    midnights = [_local_midnight(today - timedelta(days=last), zone) for _first, last in AGE_BUCKETS
                 if last is not None]
    if db.session.get_bind().dialect.name == "postgresql":
        since = [func.sum(case((r.received_at >= midnight, 1), else_=0)) for midnight in midnights]
        rows = db.session.execute(select(r.status, func.count(), *since).where(is_open).group_by(r.status)).all()
        states = [(row[0], int(row[1])) for row in rows]
        within = [sum(int(row[2 + i] or 0) for row in rows) for i in range(len(midnights))]
    else:
        states = [(status, int(n)) for status, n in db.session.execute(
            select(r.status, func.count()).where(is_open).group_by(r.status))]
        counts = [select(func.count()).where(is_open, r.received_at >= midnight).scalar_subquery()
                  for midnight in midnights]
        within = [int(n) for n in db.session.execute(select(*counts)).one()]
    total = sum(n for _status, n in states)
    ages = [n - (within[i - 1] if i else 0) for i, n in enumerate(within)] + [total - (within[-1] if within else 0)]
    return OpenRequests(by_state=_zero_filled(OPEN_ORDER, states), ages=list(zip(AGE_BUCKETS, ages, strict=True)))


def open_requests_by_state() -> dict[RequestStatus, int]:
    """Open requests now, by state (not tied to the range)."""
    return open_request_counts(datetime.now(UTC).date(), "UTC").by_state


def open_request_ages(today: date, timezone: str) -> list[tuple[tuple[int, int | None], int]]:
    """Open requests now by age: facility days since receipt, in ``AGE_BUCKETS``."""
    return open_request_counts(today, timezone).ages


@functools.lru_cache(maxsize=4)
def _due_statement(cap: int) -> Select[Any]:
    r = RecordsRequest
    today = bindparam("today", type_=r.due_on.type)

    def counted(*where: Any) -> Any:
        return select(func.count()).select_from(select(r.id).where(r.is_open.is_(True), *where).limit(cap + 1)
                                                .subquery()).scalar_subquery()
    return select(counted(r.due_on < today), counted(r.due_on == today))


def requests_due(today: date, cap: int = queue.COUNT_CAP) -> tuple[int, int]:
    """(overdue, due today): the open requests of the records queue's "overdue" and "due today" tabs, each
    counted to at most ``cap + 1`` as ``queue.tab_counts`` counts them (tests/test_admin_dashboard.py holds
    them equal), in SQL: the dashboard shows only these two, and ``tab_counts`` fetched up to a hundred ids
    of each of its seven tabs to count them (700 rows a view at a million calls; bench/profiles.md)."""
    found = db.session.execute(_due_statement(cap), {"today": today}).one()
    return int(found[0]), int(found[1])


def _closed_from(totals: Mapping[tuple[str, str], int]) -> ClosedRequests:
    closed = on_time = 0
    days: Counter[int] = Counter()
    for (name, code), n in totals.items():
        if name == dashboard_cache.CLOSED:
            took, in_time = code.split("/", 1)
            closed += n
            on_time += n if in_time == "1" else 0
            days[int(took)] += n
    return ClosedRequests(closed=closed, on_time=on_time, days_to_close=dict(days))


def _extensions_from(totals: Mapping[tuple[str, str], int]) -> Extensions:
    received = totals.get((dashboard_cache.RECEIVED, "0"), 0) + totals.get((dashboard_cache.RECEIVED, "1"), 0)
    return Extensions(received=received, extended=totals.get((dashboard_cache.RECEIVED, "1"), 0))


def _denials_from(totals: Mapping[tuple[str, str], int]) -> dict[str, int]:
    return _zero_filled([str(r) for r in DenialReason],
                        ((code, n) for (name, code), n in totals.items() if name == dashboard_cache.DENIED))


def _requests_afresh(period: DateRange, timezone: str) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for _day, name, code, n in dashboard_cache.count_requests_afresh(*period.bounds(timezone), ZoneInfo(timezone)):
        totals[name, code] = totals.get((name, code), 0) + n
    return totals


def closed_requests(period: DateRange, timezone: str) -> ClosedRequests:
    """Requests closed in the range, counted from the requests: on time (closed on or before
    ``due_on``, in facility days) and facility days from receipt to closing
    (``dashboard_cache.count_requests_afresh``; the page sums kept days instead)."""
    return _closed_from(_requests_afresh(period, timezone))


def extensions_used(period: DateRange, timezone: str) -> Extensions:
    """Requests received in the range, and how many of them had their deadline extended."""
    return _extensions_from(_requests_afresh(period, timezone))


def denials_by_reason(period: DateRange, timezone: str) -> dict[str, int]:
    """Requests denied (and still denied) with the denial dated in the range, by reason code."""
    return _denials_from(_requests_afresh(period, timezone))


def build_dashboard(period: DateRange, timezone: str, now: datetime) -> Dashboard:
    """Every figure of the page: a fixed number of queries, however many calls and requests there are."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    start, end = period.bounds(timezone)
    kept = dashboard_cache.counts(start, end, now, timezone)
    calls = call_figures(period, timezone, now, kept)
    opened = open_request_counts(today, timezone)
    return Dashboard(
        period=period,
        volume=calls.volume,
        call_types=calls.types,
        risk_levels=calls.risks,
        substances=calls.substances,
        referrals=calls.referrals,
        followups=followups_due(now),
        open_requests=opened.by_state,
        ages=opened.ages,
        closed=_closed_from(kept.totals),
        extensions=_extensions_from(kept.totals),
        denials=_denials_from(kept.totals),
    )
