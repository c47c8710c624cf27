"""The dashboard's call figures kept per hour, so the page costs about the same at a million calls.

The call figures (calls by type, which also gives the volume; risk levels; substances; referrals)
count finalized calls by the UTC hour they started. Counting them afresh reads every call of the
range, so the page grew with the helpline's history (0.9 s at a million calls; ``make bench``).
Instead, once an hour is over its counts are kept in ``dashboard_call_hours`` and the hour is
marked in ``dashboard_hours_ready``; the page sums kept counts in SQL and counts afresh only what
is not kept: the hours of a range nobody has looked at yet, hours changed since, and the current
hour (never kept, it is still filling).

Days. Summing a month of kept hours still read every hour's rows (14,000 at a million calls, 20 ms;
``make profile``), so each facility day wholly inside a range viewed is also kept summed, in the same
table: rows whose figure starts with ``day:``, at the hour of the day's midnight (in UTC), with its
calls by the facility's hour of day (``day:hod``, code "HH": one row an hour, 24 a day; days kept
before split each hour into "HH/1" for data calls and "HH/0" for others, and are read alike) and a
``day:ready`` row naming the zone the day was cut in (a day of another zone is cut again). A page
sums its whole days from those rows, the hours of today from the hourly rows, and counts only the
current hour from the calls: a fixed amount of work per day shown, however busy the line was.

Records requests. The range's records figures (closed, on time, days to close, denials, received,
extended) are kept only per facility day, in the same day rows (``day:closed``, ``day:denied``,
``day:received``), counted from the requests when the day is kept (``count_requests_afresh``): a
month's view counts only today's requests, not the 5,500 closed in a month at a million calls.

Forgetting. A flush that adds, changes or deletes a call, a call's substance or a referral forgets
the hours of the calls concerned (a call whose start time changed: the old hour too), and the kept days
that may hold them (every day starting in the 26 hours up to each such hour). A flush that adds or
deletes a records request, or changes a column its figures depend on (``REQUEST_COLUMNS``), forgets
the kept days that may hold its receipt or closing, before and after. A bulk
statement on those tables through the session (the retention purge) forgets every hour; the next
view counts again. Anything else that writes those tables must call ``forget_all``.

Races. Keeping and forgetting take one lock (the write lock on SQLite, an advisory lock on
PostgreSQL) and a fill counts the calls after taking it, so a fill can never keep counts older than
an edit that committed before it, nor outlive an edit that commits after it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    case,
    cast,
    delete,
    event,
    extract,
    func,
    insert,
    literal,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, attributes
from sqlalchemy.sql.expression import Select

from intake.admin.models import DashboardHour, DashboardHourReady
from intake.calls.models import Call, CallStatus, CallSubstance, CallType, Referral
from intake.database import take_write_lock
from intake.db_types import UTCDateTime
from intake.extensions import db
from intake.records.models import RecordsRequest, RequestStatus
from intake.resources.models import Resource

HOUR = timedelta(hours=1)
TYPE, RISK, SUBSTANCE, REFERRAL = "type", "risk", "substance", "referral"
HOURLY = (TYPE, RISK, SUBSTANCE, REFERRAL)
DAY = "day:"  # the figures of a kept day: "day:type" ... "day:referral", "day:hod", "day:ready"
HOUR_OF_DAY, READY = DAY + "hod", DAY + "ready"
# The records requests' figures of a kept day (only ever kept per facility day, never per hour):
# requests closed that day by "<facility days from receipt>/<1 on time, 0 late>", denied (and still
# denied) by reason code, received by "1" (deadline extended) or "0".
CLOSED, DENIED, RECEIVED = "closed", "denied", "received"
REQUEST_FIGURES = (CLOSED, DENIED, RECEIVED)
# What a records request's figures depend on: a flush changing one of these forgets its days.
REQUEST_COLUMNS = ("received_at", "closed_at", "due_on", "status", "decision_reason", "extended_days")
LONGEST_DAY = timedelta(hours=26)  # a facility day lasts 23 to 25 hours; a little more, to be safe
WATCHED = {Call.__table__.name, CallSubstance.__table__.name, Referral.__table__.name,
           RecordsRequest.__table__.name}
_PG_LOCK = 7_220_432  # pg_advisory_xact_lock key (the audit trail uses 7_220_431)


def hour_bucket(column: Any) -> ColumnElement[datetime]:
    """The UTC hour a timestamp falls in, read back as an aware datetime.

    The stored value is naive UTC (``UTCDateTime``): SQLite keeps it as ISO text, so ``strftime``
    cuts it to the hour; PostgreSQL truncates it with ``date_trunc``. The constants are literal
    SQL so the same expression can be grouped on."""
    if db.session.get_bind().dialect.name == "postgresql":
        expr = func.date_trunc(literal_column("'hour'"), column)
    else:
        expr = func.strftime(literal_column("'%Y-%m-%d %H:00:00'"), column)
    return type_coerce(expr, UTCDateTime)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_SECONDS = 86400


@functools.lru_cache(maxsize=64)
def zone_offsets(zone: ZoneInfo, start: datetime, end: datetime) -> tuple[tuple[datetime, int], ...]:
    """The zone's offset from UTC in seconds over ``[start, end)``: (from, offset) pairs, the first
    from ``start``, one more at each change of the clocks (found to the second)."""
    def offset(moment: datetime) -> int:
        delta = moment.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    found = [(start, offset(start))]
    step = timedelta(hours=6)  # clocks change at most twice a year, never twice in six hours
    moment = start
    while moment < end:
        later = min(moment + step, end)
        if offset(later) != found[-1][1]:
            low, high = moment, later  # the change is in (low, high]: halve to the second
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == found[-1][1] else (low, middle)
            found.append((high.replace(microsecond=0), offset(high)))
        moment = later
    return tuple(found)


def _epoch_seconds(column: Any) -> ColumnElement[int]:
    """Seconds since 1970 of a stored timestamp (naive UTC), as a whole number."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", column)), BigInteger)  # floor: never round up to the next day
    return cast(func.strftime(literal_column("'%s'"), column), Integer)


def local_day_number(column: Any, zone: ZoneInfo, start: datetime, end: datetime) -> ColumnElement[int]:
    """The facility's calendar day of a timestamp, as days since 1970-01-01, computed in SQL: the
    zone's offset in force at the moment (a CASE over the clock changes of ``[start, end)``; only
    values in that span are right) added to its seconds since 1970, divided by a day. Exact across
    daylight-saving changes, on SQLite (which has no zone database) as on PostgreSQL."""
    offsets = zone_offsets(zone, start.astimezone(UTC), end.astimezone(UTC))
    shift: Any = literal(offsets[0][1])
    if len(offsets) > 1:
        shift = case(*((column >= moment, literal(seconds)) for moment, seconds in reversed(offsets[1:])),
                     else_=literal(offsets[0][1]))
    return (_epoch_seconds(column) + shift) // _DAY_SECONDS


def date_day_number(column: Any) -> ColumnElement[int]:
    """A DATE column as days since 1970-01-01."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column - literal_column("DATE '1970-01-01'")
    return cast(func.julianday(column) - literal_column("2440587.5"), Integer)


def grouped_select(inner: Select[Any]) -> Select[Any]:
    """``SELECT <every column of inner>, COUNT(*) FROM (inner) GROUP BY <them>``.

    Grouping over a subquery lets the bucket expressions carry bound parameters: PostgreSQL
    cannot match a parameter in the select list with a second copy of it in GROUP BY."""
    sub = inner.subquery()
    keys = list(sub.c)
    return select(*keys, func.count().label("n")).group_by(*keys)


def grouped(inner: Select[Any]) -> list[Any]:
    return list(db.session.execute(grouped_select(inner)))


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class HourlyCounts:
    """Counts of a span: per hour, data calls and other calls (for the volume), and totals per
    (figure, code)."""

    volume_by_hour: dict[tuple[datetime, bool], int] = field(default_factory=dict)
    totals: dict[tuple[str, str], int] = field(default_factory=dict)
    # From kept days: data and other calls per facility day, and per facility hour of day.
    volume_by_day: dict[tuple[date, bool], int] = field(default_factory=dict)
    volume_by_local_hour: dict[int, int] = field(default_factory=dict)

    def add(self, hour: datetime, figure: str, code: str, n: int) -> None:
        if figure == TYPE:
            key = (hour, code == CallType.DATA)
            self.volume_by_hour[key] = self.volume_by_hour.get(key, 0) + n
        self.totals[figure, code] = self.totals.get((figure, code), 0) + n


@functools.lru_cache(maxsize=32)
def _afresh_statements(dialect: str, start: datetime, end: datetime) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """``count_afresh``'s three statements for one span, built once: a view asks the same span (the
    current hour to the range's end) until the hour turns, and building them (with their cache keys)
    was a fifth of the dashboard's time (make profile). ``dialect``: ``hour_bucket`` differs by database."""
    in_span = (Call.started_at >= start, Call.started_at < end)
    # Drafts are dropped in Python rather than in SQL: given ``status = 'final'`` the planner prefers
    # the (status, started_at) index and reads every call's row for its type and risk.
    calls = grouped_select(
        select(hour_bucket(Call.started_at).label("hour"), Call.call_type.label("kind"),
               Call.status.label("status"), Call.risk_level.label("level")).where(*in_span))
    substances = grouped_select(
        select(hour_bucket(Call.started_at).label("hour"), CallSubstance.substance.label("substance"))
        .join(Call, Call.id == CallSubstance.call_id).where(Call.status == CallStatus.FINAL, *in_span))
    referrals = grouped_select(
        select(hour_bucket(Call.started_at).label("hour"), Resource.kind.label("kind"),
               Referral.status.label("status"))
        .join(Referral, Referral.resource_id == Resource.id).join(Call, Call.id == Referral.call_id)
        .where(Call.status == CallStatus.FINAL, *in_span))
    return calls, substances, referrals


def count_afresh(start: datetime, end: datetime) -> list[tuple[datetime, str, str, int]]:
    """(hour, figure, code, n) for the finalized calls that started in ``[start, end)``: three
    grouped queries, the first answered from the ``ix_calls_dashboard`` index alone on SQLite."""
    calls, substances, referrals = _afresh_statements(db.session.get_bind().dialect.name, start, end)
    rows: list[tuple[datetime, str, str, int]] = []
    for hour, kind, status, level, n in db.session.execute(calls):
        if status != CallStatus.FINAL:
            continue
        rows.append((hour, TYPE, str(kind), n))
        if kind == CallType.DATA:  # a hang-up is not screened: it would only swell "none"
            rows.append((hour, RISK, str(level), n))
    for hour, substance, n in db.session.execute(substances):
        rows.append((hour, SUBSTANCE, str(substance), n))
    for hour, kind, status, n in db.session.execute(referrals):
        rows.append((hour, REFERRAL, f"{kind}/{status}", n))
    # Types are merged (a type's risk rows were split by level, its type rows were not).
    merged: dict[tuple[datetime, str, str], int] = {}
    for hour, figure, code, n in rows:
        merged[hour, figure, code] = merged.get((hour, figure, code), 0) + n
    return [(hour, figure, code, n) for (hour, figure, code), n in merged.items()]


# Requests closed in a span were received at most this long before it, nearly always: their facility
# days are computed in SQL. The few received earlier are folded here, hour by hour.
RECEIVED_IN_SQL = timedelta(days=366)


def _day_of(number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(number))


@functools.lru_cache(maxsize=32)
def _requests_afresh_statements(dialect: str, start: datetime, end: datetime,
                                zone: ZoneInfo) -> tuple[Select[Any], Select[Any]]:
    """``count_requests_afresh``'s two statements for one span and zone, built once (as
    ``_afresh_statements``: the zone's offsets are written into them, so the span is part of the key)."""
    r = RecordsRequest
    in_range = (r.closed_at >= start, r.closed_at < end)
    bound = start - RECEIVED_IN_SQL
    closed_day = local_day_number(r.closed_at, zone, start, end)
    # One read of the span's closed requests: those received since ``bound`` grouped by (day, days to
    # close, on time); for the older ones those are NULL and their hours and due date are grouped instead;
    # the denied ones (still denied) also by reason. (A separate read of the denials by status let SQLite
    # seek every denial ever made through the (status, received_at) index: 17 ms at a million calls.)
    recent = r.received_at >= bound
    took = case((recent, closed_day - local_day_number(r.received_at, zone, bound, end)), else_=None).label("took")
    on_time = case((closed_day <= date_day_number(r.due_on), 1), else_=0).label("on_time")
    old_received = type_coerce(case((recent, None), else_=hour_bucket(r.received_at)), UTCDateTime).label("received")
    old_closed = type_coerce(case((recent, None), else_=hour_bucket(r.closed_at)), UTCDateTime).label("closed")
    old_due = case((recent, None), else_=r.due_on).label("due_on")
    denied = case((r.status == RequestStatus.DENIED, func.coalesce(r.decision_reason, "")), else_=None).label("denied")
    closed = grouped_select(
        select(closed_day.label("day"), took, on_time, old_received, old_closed, old_due, denied).where(*in_range))
    received_day = local_day_number(r.received_at, zone, start, end).label("day")
    extended = case((r.extended_days > 0, 1), else_=0).label("extended")
    received = grouped_select(select(received_day, extended).where(r.received_at >= start, r.received_at < end))
    return closed, received


def count_requests_afresh(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[date, str, str, int]]:
    """(facility day, figure, code, n) of the records requests closed, denied and received in
    ``[start, end)``: two grouped queries however many days the span holds, read from the covering
    indexes of migration 0018 (``ix_records_requests_closed_took``, ``..._received_extended``).

    The facility's day of each moment is computed in SQL (``local_day_number``: the zone's offsets as
    a CASE over the few clock changes of the span), so one row comes back per (day, days to close,
    on time), however many requests closed (5,500 a month at a million calls). Requests received more
    than ``RECEIVED_IN_SQL`` before the span are grouped by (UTC hour received, UTC hour closed, due
    date) and folded here."""
    closed, received = _requests_afresh_statements(db.session.get_bind().dialect.name, start, end, zone)
    rows: dict[tuple[date, str, str], int] = {}

    def add(day: date, figure: str, code: str, n: int) -> None:
        rows[day, figure, code] = rows.get((day, figure, code), 0) + n

    for day, took_days, in_time, received_hour, closed_hour, due_on, reason, n in db.session.execute(closed):
        if reason is not None:
            add(_day_of(day), DENIED, reason, n)
        if took_days is not None:
            add(_day_of(day), CLOSED, f"{int(took_days)}/{1 if in_time else 0}", n)
            continue
        closed_on = closed_hour.astimezone(zone).date()
        days_taken = (closed_on - received_hour.astimezone(zone).date()).days
        add(closed_on, CLOSED, f"{days_taken}/{1 if closed_on <= due_on else 0}", n)
    for day, flag, n in db.session.execute(received):
        add(_day_of(day), RECEIVED, str(int(flag)), n)
    return [(day, figure, code, n) for (day, figure, code), n in rows.items()]


def _lock() -> None:
    """Serialise keeping and forgetting (see the module's docstring)."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
    elif connection.dialect.name == "sqlite":
        take_write_lock(connection)


def _spans(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours as runs ``[first, last + 1 h)``."""
    spans: list[list[datetime]] = []
    for hour in sorted(hours):
        if spans and spans[-1][1] == hour:
            spans[-1][1] = hour + HOUR
        else:
            spans.append([hour, hour + HOUR])
    return [(a, b) for a, b in spans]


def _ready_in(start: datetime, end: datetime) -> set[datetime]:
    return set(db.session.execute(select(DashboardHourReady.hour).where(
        DashboardHourReady.hour >= start, DashboardHourReady.hour < end)).scalars())


def _readiness(start: datetime, end: datetime, midnights: list[datetime], zone: ZoneInfo | None) -> tuple[int, int]:
    """(hours of ``[start, end)`` kept, days of ``midnights`` kept for ``zone``): the usual case is all of
    them, and one statement of two counts tells it (two statements were a round trip more a view)."""
    hours = select(func.count()).select_from(DashboardHourReady).where(
        DashboardHourReady.hour >= start, DashboardHourReady.hour < end).scalar_subquery()
    days: Any = literal(0)
    if midnights and zone is not None:
        days = select(func.count()).select_from(DashboardHour).where(
            DashboardHour.hour.in_(midnights), DashboardHour.figure == READY,
            DashboardHour.code == zone.key).scalar_subquery()
    found = db.session.execute(select(hours, days)).one()
    return int(found[0]), int(found[1])


def _keep(start: datetime, end: datetime) -> None:
    """Count and keep every hour of ``[start, end)`` (complete hours) not kept yet."""
    wanted = {start + i * HOUR for i in range(int((end - start) / HOUR))}
    _lock()
    missing = wanted - _ready_in(start, end)  # again: another view may have kept them meanwhile
    for a, b in _spans(missing):
        rows = [{"hour": h, "figure": f, "code": c, "n": n} for h, f, c, n in count_afresh(a, b)]
        if rows:
            db.session.execute(insert(DashboardHour), rows)
        db.session.execute(insert(DashboardHourReady), [{"hour": h} for h in sorted(missing) if a <= h < b])
    db.session.commit()


def facility_days(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The facility days wholly inside ``[start, end)``, as (midnight, next midnight) in UTC."""
    local = start.astimezone(zone)
    day = local.date() if local.timetz().replace(tzinfo=None) == time.min else local.date() + timedelta(days=1)
    days: list[tuple[datetime, datetime]] = []
    midnight = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    while True:
        day += timedelta(days=1)
        following = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
        if following > end:
            return days
        days.append((midnight, following))
        midnight = following


def _days_ready(midnights: list[datetime], zone: ZoneInfo) -> set[datetime]:
    if not midnights:
        return set()
    return {hour for hour, code in db.session.execute(
        select(DashboardHour.hour, DashboardHour.code).where(DashboardHour.hour.in_(midnights),
                                                             DashboardHour.figure == READY))
        if code == zone.key}


def _day_rows(days: list[tuple[datetime, datetime]], zone: ZoneInfo) -> list[dict[str, Any]]:
    """The kept rows of facility days, summed from their kept hours (all of them kept already): one
    read of those hours whatever the number of days."""
    sums: dict[tuple[datetime, str, str], int] = {}
    firsts = sorted(first for first, _following in days)
    hours = db.session.execute(select(DashboardHour.hour, DashboardHour.figure, DashboardHour.code, DashboardHour.n)
                               .where(DashboardHour.hour >= firsts[0], DashboardHour.hour < max(b for _a, b in days),
                                      DashboardHour.figure.in_(HOURLY)))
    starts = {first: following for first, following in days}
    for hour, figure, code, n in hours:
        local = hour.astimezone(zone)
        first = datetime.combine(local.date(), time.min, tzinfo=zone).astimezone(UTC)
        if first not in starts:
            continue  # an hour of a day kept already, between two that are not
        keys = [(first, DAY + figure, code)]
        if figure == TYPE:
            keys.append((first, HOUR_OF_DAY, f"{local.hour:02d}"))
        for key in keys:
            sums[key] = sums.get(key, 0) + int(n)
    # The records requests' figures of the same days, counted from the requests (a few statements).
    for day, figure, code, n in count_requests_afresh(firsts[0], max(b for _a, b in days), zone):
        first = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
        if first in starts:
            sums[first, DAY + figure, code] = sums.get((first, DAY + figure, code), 0) + n
    rows = [{"hour": first, "figure": figure, "code": code, "n": n}
            for (first, figure, code), n in sorted(sums.items())]
    return rows + [{"hour": first, "figure": READY, "code": zone.key, "n": 1} for first in firsts]


def _keep_days(days: list[tuple[datetime, datetime]], zone: ZoneInfo) -> None:
    """Sum and keep every facility day of ``days`` (whose hours are all kept) not kept yet for ``zone``:
    a fixed number of statements, however many days and calls."""
    midnights = [first for first, _following in days]
    _lock()
    ready = _days_ready(midnights, zone)  # again: another view may have kept them meanwhile
    missing = [(first, following) for first, following in days if first not in ready]
    if missing:
        # Also a day cut in another zone (the setting changed) that starts at the same moment.
        db.session.execute(delete(DashboardHour).where(DashboardHour.hour.in_([a for a, _b in missing]),
                                                       DashboardHour.figure.like(DAY + "%")))
        db.session.execute(insert(DashboardHour), _day_rows(missing, zone))
    db.session.commit()


def counts(start: datetime, end: datetime, now: datetime, timezone: str | None = None) -> HourlyCounts:
    """Counts of ``[start, end)`` (whole UTC hours): with ``timezone``, the facility days wholly kept
    summed from their day rows; the other kept hours summed from the hourly rows; the current hour
    and any later ones counted afresh. Keeps the complete hours and days not kept yet first."""
    current = floor_hour(now)
    kept_end = max(start, min(end, current))
    zone = ZoneInfo(timezone) if timezone else None
    days = facility_days(start, kept_end, zone) if zone is not None else []
    hours_kept, days_kept = _readiness(start, kept_end, [first for first, _following in days], zone)
    if hours_kept != int((kept_end - start) / HOUR):  # the usual case: all kept, nothing to count
        _keep(start, kept_end)
    if days and zone is not None and days_kept != len(days):
        _keep_days(days, zone)
    result = HourlyCounts()
    spans = [(start, days[0][0]), (days[-1][1], kept_end)] if days else [(start, kept_end)]
    for a, b in spans:
        if b > a:
            _add_kept_hours(result, a, b)
    if days and zone is not None:
        _add_kept_days(result, [first for first, _following in days], zone)
    if end > kept_end:
        for hour, figure, code, n in count_afresh(kept_end, end):
            result.add(hour, figure, code, n)
    if zone is not None:
        # The records requests' figures: kept days (above), and the rest of the range (today, and the
        # edges of a range that does not start or end on a kept day) counted from the requests.
        edges = [(start, days[0][0]), (days[-1][1], end)] if days else [(start, end)]
        for a, b in edges:
            if b > a:
                for _day, figure, code, n in count_requests_afresh(a, b, zone):
                    result.totals[figure, code] = result.totals.get((figure, code), 0) + n
    return result


def _by_day_of(figure: str) -> ColumnElement[datetime]:
    """The row's hour for the rows of ``figure``, NULL for the others: grouped on, those rows stay one
    per hour (or day) and the others are summed over the span (one statement gives both)."""
    return type_coerce(case((DashboardHour.figure == figure, DashboardHour.hour), else_=None), UTCDateTime)


def _add_kept_hours(result: HourlyCounts, start: datetime, end: datetime) -> None:
    """The kept hours' rows, summed in SQL in one statement: the types per hour (for the volume, a few
    rows an hour), every other figure summed over the span."""
    inner = select(_by_day_of(TYPE).label("hour"), DashboardHour.figure.label("figure"),
                   DashboardHour.code.label("code"), DashboardHour.n.label("n")) \
        .where(DashboardHour.hour >= start, DashboardHour.hour < end, DashboardHour.figure.in_(HOURLY)).subquery()
    keys = (inner.c.hour, inner.c.figure, inner.c.code)
    for hour, figure, code, n in db.session.execute(select(*keys, func.sum(inner.c.n)).group_by(*keys)):
        if hour is not None:
            key = (hour, code == CallType.DATA.value)
            result.volume_by_hour[key] = result.volume_by_hour.get(key, 0) + int(n)
        result.totals[figure, code] = result.totals.get((figure, code), 0) + int(n)


def _add_kept_days(result: HourlyCounts, midnights: list[datetime], zone: ZoneInfo) -> None:
    """The kept days' rows, summed in SQL in one statement (three cost 40 % more, ``make profile``): the
    types per day (for the volume), every other figure summed over the days; a few hundred rows back
    whatever the number of calls and requests."""
    figures = [DAY + f for f in (*HOURLY, *REQUEST_FIGURES)] + [HOUR_OF_DAY]
    inner = select(_by_day_of(DAY + TYPE).label("day"), DashboardHour.figure.label("figure"),
                   DashboardHour.code.label("code"), DashboardHour.n.label("n")) \
        .where(DashboardHour.hour.in_(midnights), DashboardHour.figure.in_(figures)).subquery()
    keys = (inner.c.day, inner.c.figure, inner.c.code)
    for midnight, figure, code, n in db.session.execute(select(*keys, func.sum(inner.c.n)).group_by(*keys)):
        if figure == HOUR_OF_DAY:
            hour = int(code.split("/", 1)[0])  # "HH" (or "HH/1", "HH/0": days kept by an earlier version)
            result.volume_by_local_hour[hour] = result.volume_by_local_hour.get(hour, 0) + int(n)
            continue
        if midnight is not None:
            key_day = (midnight.astimezone(zone).date(), code == CallType.DATA.value)
            result.volume_by_day[key_day] = result.volume_by_day.get(key_day, 0) + int(n)
        key = (figure.removeprefix(DAY), code)
        result.totals[key] = result.totals.get(key, 0) + int(n)


# --- Forgetting ---------------------------------------------------------------------------------

def forget_all() -> None:
    """Forget every kept hour (in the current transaction)."""
    _lock()
    db.session.execute(delete(DashboardHourReady))
    db.session.execute(delete(DashboardHour))


def _forget(session: Session, hours: set[datetime], day_hours: set[datetime]) -> None:
    """Forget the kept ``hours`` and every kept day that may hold one of them or of ``day_hours``
    (the hours of records requests, which are only ever kept per day)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
    elif connection.dialect.name == "sqlite":
        take_write_lock(connection)
    listed = sorted(hours)
    table = DashboardHour.__table__
    if listed:
        connection.execute(delete(DashboardHourReady.__table__).where(DashboardHourReady.__table__.c.hour.in_(listed)))
        connection.execute(delete(table).where(table.c.hour.in_(listed)))
    # The kept days that may hold those hours: every day starting in the 26 hours up to each.
    for first, following in _spans(hours | day_hours):
        connection.execute(delete(table).where(table.c.hour > first - LONGEST_DAY, table.c.hour < following,
                                               table.c.figure.like(DAY + "%")))


def _request_changed(request: RecordsRequest) -> bool:
    """Whether a flush may change the request's figures: a column they depend on was set (a request
    edited in another way, or merely marked dirty, forgets nothing). Unloaded columns are not loaded."""
    return any(attributes.get_history(request, name, passive=attributes.PASSIVE_NO_INITIALIZE).has_changes()
               for name in REQUEST_COLUMNS)


def _hours_touched(session: Session) -> tuple[set[datetime], set[datetime]]:
    """(hours of calls, hours of records requests) whose figures the flush may change: a request's
    hours are those of its receipt and closing, as stored (read from the table: an attribute set
    while unloaded has no old value in its history) and as they will be."""
    hours: set[datetime] = set()
    request_hours: set[datetime] = set()
    call_ids: set[int] = set()
    request_ids: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Call):
            history = attributes.get_history(obj, "started_at")
            hours.update(floor_hour(t) for t in (*history.added, *history.unchanged, *history.deleted)
                         if t is not None)
        elif isinstance(obj, CallSubstance | Referral) and obj.call_id is not None:
            call_ids.add(obj.call_id)
        elif isinstance(obj, RecordsRequest) and (obj in session.new or obj in session.deleted
                                                  or _request_changed(obj)):
            if obj not in session.deleted:
                request_hours.update(floor_hour(t) for t in (obj.received_at, obj.closed_at) if t is not None)
            if obj.id is not None and obj not in session.new:
                request_ids.add(obj.id)
    with session.no_autoflush:
        if call_ids:
            hours.update(floor_hour(t) for t in session.execute(
                select(Call.started_at).where(Call.id.in_(sorted(call_ids)))).scalars() if t is not None)
        if request_ids:
            for stored in session.execute(select(RecordsRequest.received_at, RecordsRequest.closed_at)
                                          .where(RecordsRequest.id.in_(sorted(request_ids)))):
                request_hours.update(floor_hour(t) for t in stored if t is not None)
    return hours, request_hours


def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    # Read before the flush: a deleted call's row (and its start) is gone after it.
    hours, request_hours = _hours_touched(session)
    session.info["dashboard_hours"] = session.info.get("dashboard_hours", set()) | hours
    session.info["dashboard_request_hours"] = session.info.get("dashboard_request_hours", set()) | request_hours


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    hours = session.info.pop("dashboard_hours", set())
    request_hours = session.info.pop("dashboard_request_hours", set())
    # The current hour is never kept (nor the day it is in), so a call logged now forgets nothing.
    current = floor_hour(datetime.now(UTC))
    hours = {h for h in hours if h < current}
    request_hours = {h for h in request_hours if h < current}
    if hours or request_hours:
        _forget(session, hours, request_hours)


def _on_orm_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in WATCHED and not state.session.info.get("dashboard_forgetting"):
        state.session.info["dashboard_forgetting"] = True
        try:
            forget_all()
        finally:
            state.session.info.pop("dashboard_forgetting", None)


def register() -> None:
    """Listen on every session (once, however many apps are made)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _on_orm_execute)
