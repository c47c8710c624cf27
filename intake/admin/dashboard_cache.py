"""The dashboard's call figures kept per hour, so the page costs about the same at a million calls.

The call figures (calls by type, which also gives the volume; risk levels; substances; referrals)
count finalized calls by the UTC hour they started. Counting them afresh reads every call of the
range, so the page grew with the helpline's history (0.9 s at a million calls; ``make bench``).
Instead, once an hour is over its counts are kept in ``dashboard_call_hours`` and the hour is
marked in ``dashboard_hours_ready``; the page sums kept counts in SQL and counts afresh only what
is not kept: the hours of a range nobody has looked at yet, hours changed since, and the current
hour (never kept, it is still filling).

Forgetting. A flush that adds, changes or deletes a call, a call's substance or a referral forgets
the hours of the calls concerned (a call whose start time changed: the old hour too). A bulk
statement on those tables through the session (the retention purge) forgets every hour; the next
view counts again. Anything else that writes those tables must call ``forget_all``.

Races. Keeping and forgetting take one lock (the write lock on SQLite, an advisory lock on
PostgreSQL) and a fill counts the calls after taking it, so a fill can never keep counts older than
an edit that committed before it, nor outlive an edit that commits after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, event, func, insert, literal_column, select, type_coerce
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, attributes
from sqlalchemy.sql.expression import Select

from intake.admin.models import DashboardHour, DashboardHourReady
from intake.calls.models import Call, CallStatus, CallSubstance, CallType, Referral
from intake.database import take_write_lock
from intake.db_types import UTCDateTime
from intake.extensions import db
from intake.resources.models import Resource

HOUR = timedelta(hours=1)
TYPE, RISK, SUBSTANCE, REFERRAL = "type", "risk", "substance", "referral"
WATCHED = {Call.__table__.name, CallSubstance.__table__.name, Referral.__table__.name}
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


def grouped(inner: Select[Any]) -> list[Any]:
    """``SELECT <every column of inner>, COUNT(*) FROM (inner) GROUP BY <them>``.

    Grouping over a subquery lets the bucket expressions carry bound parameters: PostgreSQL
    cannot match a parameter in the select list with a second copy of it in GROUP BY."""
    sub = inner.subquery()
    keys = list(sub.c)
    return list(db.session.execute(select(*keys, func.count().label("n")).group_by(*keys)))


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class HourlyCounts:
    """Counts of a span: per hour, data calls and other calls (for the volume), and totals per
    (figure, code)."""

    volume_by_hour: dict[tuple[datetime, bool], int] = field(default_factory=dict)
    totals: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, hour: datetime, figure: str, code: str, n: int) -> None:
        if figure == TYPE:
            key = (hour, code == CallType.DATA)
            self.volume_by_hour[key] = self.volume_by_hour.get(key, 0) + n
        self.totals[figure, code] = self.totals.get((figure, code), 0) + n


def count_afresh(start: datetime, end: datetime) -> list[tuple[datetime, str, str, int]]:
    """(hour, figure, code, n) for the finalized calls that started in ``[start, end)``: four
    grouped queries, the first answered from the ``ix_calls_dashboard`` index alone on SQLite."""
    in_span = (Call.started_at >= start, Call.started_at < end)
    rows: list[tuple[datetime, str, str, int]] = []
    # Drafts are dropped here rather than in SQL: given ``status = 'final'`` the planner prefers
    # the (status, started_at) index and reads every call's row for its type and risk.
    for hour, kind, status, level, n in grouped(
            select(hour_bucket(Call.started_at).label("hour"), Call.call_type.label("kind"),
                   Call.status.label("status"), Call.risk_level.label("level")).where(*in_span)):
        if status != CallStatus.FINAL:
            continue
        rows.append((hour, TYPE, str(kind), n))
        if kind == CallType.DATA:  # a hang-up is not screened: it would only swell "none"
            rows.append((hour, RISK, str(level), n))
    for hour, substance, n in grouped(
            select(hour_bucket(Call.started_at).label("hour"), CallSubstance.substance.label("substance"))
            .join(Call, Call.id == CallSubstance.call_id).where(Call.status == CallStatus.FINAL, *in_span)):
        rows.append((hour, SUBSTANCE, str(substance), n))
    for hour, kind, status, n in grouped(
            select(hour_bucket(Call.started_at).label("hour"), Resource.kind.label("kind"),
                   Referral.status.label("status"))
            .join(Referral, Referral.resource_id == Resource.id).join(Call, Call.id == Referral.call_id)
            .where(Call.status == CallStatus.FINAL, *in_span)):
        rows.append((hour, REFERRAL, f"{kind}/{status}", n))
    # Types are merged (a type's risk rows were split by level, its type rows were not).
    merged: dict[tuple[datetime, str, str], int] = {}
    for hour, figure, code, n in rows:
        merged[hour, figure, code] = merged.get((hour, figure, code), 0) + n
    return [(hour, figure, code, n) for (hour, figure, code), n in merged.items()]


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


def _keep(start: datetime, end: datetime) -> None:
    """Count and keep every hour of ``[start, end)`` (complete hours) not kept yet."""
    wanted = {start + i * HOUR for i in range(int((end - start) / HOUR))}
    ready = db.session.execute(select(func.count()).select_from(DashboardHourReady).where(
        DashboardHourReady.hour >= start, DashboardHourReady.hour < end)).scalar_one()
    if ready == len(wanted):  # the usual case: one count, no row of hours to read
        return
    _lock()
    missing = wanted - _ready_in(start, end)  # again: another view may have kept them meanwhile
    for a, b in _spans(missing):
        rows = [{"hour": h, "figure": f, "code": c, "n": n} for h, f, c, n in count_afresh(a, b)]
        if rows:
            db.session.execute(insert(DashboardHour), rows)
        db.session.execute(insert(DashboardHourReady), [{"hour": h} for h in sorted(missing) if a <= h < b])
    db.session.commit()


def counts(start: datetime, end: datetime, now: datetime) -> HourlyCounts:
    """Counts of ``[start, end)`` (whole UTC hours): kept hours summed in SQL, the current hour
    and any later ones counted afresh. Keeps the complete hours not kept yet first."""
    current = floor_hour(now)
    kept_end = max(start, min(end, current))
    if kept_end > start:
        _keep(start, kept_end)
    result = HourlyCounts()
    in_kept = (DashboardHour.hour >= start, DashboardHour.hour < kept_end)
    # At most two rows an hour (data, other): 1,440 for 30 days however busy the line was.
    is_data = case((DashboardHour.code == CallType.DATA.value, 1), else_=0).label("is_data")
    volume = select(DashboardHour.hour.label("hour"), is_data, DashboardHour.n.label("n")) \
        .where(DashboardHour.figure == TYPE, *in_kept).subquery()
    for hour, flag, n in db.session.execute(
            select(volume.c.hour, volume.c.is_data, func.sum(volume.c.n)).group_by(volume.c.hour, volume.c.is_data)):
        result.volume_by_hour[hour, bool(flag)] = int(n)
    for figure, code, n in db.session.execute(
            select(DashboardHour.figure, DashboardHour.code, func.sum(DashboardHour.n))
            .where(*in_kept).group_by(DashboardHour.figure, DashboardHour.code)):
        result.totals[figure, code] = int(n)
    if end > kept_end:
        for hour, figure, code, n in count_afresh(kept_end, end):
            result.add(hour, figure, code, n)
    return result


# --- Forgetting ---------------------------------------------------------------------------------

def forget_all() -> None:
    """Forget every kept hour (in the current transaction)."""
    _lock()
    db.session.execute(delete(DashboardHourReady))
    db.session.execute(delete(DashboardHour))


def _forget(session: Session, hours: set[datetime]) -> None:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
    elif connection.dialect.name == "sqlite":
        take_write_lock(connection)
    listed = sorted(hours)
    connection.execute(delete(DashboardHourReady.__table__).where(DashboardHourReady.__table__.c.hour.in_(listed)))
    connection.execute(delete(DashboardHour.__table__).where(DashboardHour.__table__.c.hour.in_(listed)))


def _hours_touched(session: Session) -> set[datetime]:
    hours: set[datetime] = set()
    call_ids: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Call):
            history = attributes.get_history(obj, "started_at")
            hours.update(floor_hour(t) for t in (*history.added, *history.unchanged, *history.deleted)
                         if t is not None)
        elif isinstance(obj, CallSubstance | Referral) and obj.call_id is not None:
            call_ids.add(obj.call_id)
    if call_ids:
        with session.no_autoflush:
            hours.update(floor_hour(t) for t in session.execute(
                select(Call.started_at).where(Call.id.in_(sorted(call_ids)))).scalars() if t is not None)
    return hours


def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    # Read before the flush: a deleted call's row (and its start) is gone after it.
    session.info["dashboard_hours"] = session.info.get("dashboard_hours", set()) | _hours_touched(session)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    hours = session.info.pop("dashboard_hours", set())
    # The current hour is never kept, so a call logged now forgets nothing.
    hours = {h for h in hours if h < floor_hour(datetime.now(UTC))}
    if hours:
        _forget(session, hours)


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
