"""CSV exports of the call log and of records requests, for a range of the facility's days.

Coded, non-identifying columns only: never a name, phone number, note, address, date of birth or
message, and never a whole ``Call`` or ``RecordsRequest`` row (which would decrypt them). Rows are
read in keyset batches and written as they come, so an export of a million calls holds one batch
in memory. ``safe_cell`` and ``csv_lines`` are public: any CSV this app writes should go through them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, or_, select

from intake.audit.services import record
from intake.calls.models import Call, CallStatus, CallSubstance, FollowUp, Referral
from intake.extensions import db
from intake.records.models import RecordsRequest

BATCH_SIZE = 1000
MAX_DAYS = 366
DEFAULT_DAYS = 30
_FLUSH_AT = 64 * 1024  # characters buffered before a chunk is handed to the server
# A spreadsheet treats a cell starting with one of these as a formula (or, for tab and CR, may
# strip them and then see one): such cells get a leading apostrophe (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportRangeError(ValueError):
    """A date range the exports refuse; the message is for the person who typed it."""


@dataclass(frozen=True)
class DateRange:
    """Facility days ``first`` to ``last``, both inclusive."""

    first: date
    last: date

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """``[start, end)`` in UTC: midnight at the facility starting ``first`` and ending ``last``."""
        zone = ZoneInfo(timezone)
        start = datetime.combine(self.first, time.min, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        return start, end

    def filename(self, kind: str) -> str:
        return f"{kind}-{self.first.isoformat()}-to-{self.last.isoformat()}.csv"

    def audit_details(self) -> dict[str, str]:
        return {"date_from": self.first.isoformat(), "date_to": self.last.isoformat()}


def check_range(first: date | None, last: date | None, too_long: str | None = None) -> DateRange:
    """The range, or ``ExportRangeError`` when a date is missing, the range is reversed or too long.

    ``too_long`` replaces the export's wording of the last refusal for other pages that take a range
    (the dashboard shows figures, it exports nothing)."""
    if first is None or last is None:
        raise ExportRangeError(_("Enter both a start date and an end date."))
    if last < first:
        raise ExportRangeError(_("The end date is before the start date."))
    if (last - first).days + 1 > MAX_DAYS:
        raise ExportRangeError(too_long or _("Export at most %(days)d days at once.", days=MAX_DAYS))
    return DateRange(first, last)


def default_range(today: date) -> DateRange:
    """The last 30 days, today included."""
    return DateRange(today - timedelta(days=DEFAULT_DAYS - 1), today)


# --- Writing CSV ------------------------------------------------------------------------------

def safe_cell(value: Any) -> str:
    """One cell as text, defused: ``None`` is empty, and text a spreadsheet would run as a formula
    (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) gets a leading ``'``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The header and the rows as CSV text (RFC 4180, CRLF), every cell through ``safe_cell``,
    in chunks of about 64 KB: a generator for a streamed response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        if buffer.tell() >= _FLUSH_AT:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _flag(value: bool | None) -> str:
    """``yes``/``no``; empty for a question not asked."""
    if value is None:
        return ""
    return "yes" if value else "no"


def _code(value: Any) -> str:
    return "" if value is None else str(value)


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


# --- Calls ------------------------------------------------------------------------------------

CALL_HEADER = (
    "id", "started_at", "ended_at", "duration_seconds", "call_type", "channel", "relationship", "zip", "state",
    "age_range", "substances", "overdose_risk", "suicidal_thoughts", "suicidal_intent", "suicide_plan",
    "access_to_means", "recent_attempt", "medical_danger", "risk_level", "safety_988", "safety_911",
    "safety_warm_transfer", "safety_plan", "urgent", "consent_callback", "consent_voicemail", "consent_text",
    "disposition", "has_followup", "referral_count",
)


def _call_batch(start: datetime, end: datetime, after: tuple[datetime, int] | None) -> Sequence[Any]:
    """Up to ``BATCH_SIZE`` finalized calls in ``[start, end)`` after ``after``, oldest first: plain columns
    only, in the order of the ``(started_at, id)`` index."""
    referral_count = (select(func.count(Referral.id)).where(Referral.call_id == Call.id)
                      .correlate(Call).scalar_subquery())
    stmt = select(
        Call.id, Call.started_at, Call.ended_at, Call.duration_seconds, Call.call_type, Call.channel,
        Call.relationship_to_person, Call.zip, Call.state, Call.age_range, Call.overdose_risk,
        Call.suicidal_thoughts, Call.suicidal_intent, Call.suicide_plan, Call.access_to_means, Call.recent_attempt,
        Call.medical_danger, Call.risk_level, Call.safety_988, Call.safety_911, Call.safety_warm_transfer,
        Call.safety_plan, Call.urgent, Call.consent_callback, Call.consent_voicemail, Call.consent_text,
        Call.disposition, exists().where(FollowUp.call_id == Call.id).label("has_followup"),
        referral_count.label("referral_count"),
    ).where(Call.status == CallStatus.FINAL, Call.started_at >= start, Call.started_at < end)
    if after is not None:
        stmt = stmt.where(or_(Call.started_at > after[0], and_(Call.started_at == after[0], Call.id > after[1])))
    return db.session.execute(stmt.order_by(Call.started_at, Call.id).limit(BATCH_SIZE)).all()


def _substances(call_ids: list[int]) -> dict[int, list[str]]:
    """Substance codes of a batch of calls, in one query."""
    found: dict[int, list[str]] = {}
    for call_id, substance in db.session.execute(
        select(CallSubstance.call_id, CallSubstance.substance)
        .where(CallSubstance.call_id.in_(call_ids)).order_by(CallSubstance.call_id, CallSubstance.substance)
    ):
        found.setdefault(call_id, []).append(str(substance))
    return found


def call_rows(period: DateRange, timezone: str) -> Iterator[list[str]]:
    """Every finalized call started in the period (facility days), oldest first, as CSV cells."""
    start, end = period.bounds(timezone)
    after: tuple[datetime, int] | None = None
    while True:
        batch = _call_batch(start, end, after)
        if not batch:
            return
        substances = _substances([r.id for r in batch])
        for r in batch:
            yield [
                str(r.id), _iso(r.started_at), _iso(r.ended_at), _code(r.duration_seconds), _code(r.call_type),
                _code(r.channel), _code(r.relationship_to_person), _code(r.zip), _code(r.state),
                _code(r.age_range), ";".join(substances.get(r.id, [])), _flag(r.overdose_risk),
                _flag(r.suicidal_thoughts), _flag(r.suicidal_intent), _flag(r.suicide_plan),
                _flag(r.access_to_means), _flag(r.recent_attempt), _flag(r.medical_danger), _code(r.risk_level),
                _flag(r.safety_988), _flag(r.safety_911), _flag(r.safety_warm_transfer), _flag(r.safety_plan),
                _flag(r.urgent), _flag(r.consent_callback), _flag(r.consent_voicemail), _flag(r.consent_text),
                _code(r.disposition), _flag(bool(r.has_followup)), str(r.referral_count or 0),
            ]
        if len(batch) < BATCH_SIZE:
            return
        after = (batch[-1].started_at, batch[-1].id)


# --- Records requests -------------------------------------------------------------------------

REQUEST_HEADER = (
    "human_ref", "request_type", "relationship", "status", "received_at", "due_on", "clock_policy",
    "extended_days", "paused_days", "closed_at", "on_time", "decision_reason", "no_records_reason",
    "delivery_method", "assignee_id",
)


def _request_batch(start: datetime, end: datetime, after_id: int) -> Sequence[Any]:
    """Up to ``BATCH_SIZE`` requests received in ``[start, end)`` with an id above ``after_id``.

    Keyset on the primary key: ``received_at`` has no index, and walking the id index from where
    the last batch stopped reads the table once in all, where ``ORDER BY received_at`` would sort
    it once per batch. Ids grow with arrival, so the file is in order of receipt all the same.
    """
    stmt = select(
        RecordsRequest.id, RecordsRequest.human_ref, RecordsRequest.request_type,
        RecordsRequest.relationship_to_patient, RecordsRequest.status, RecordsRequest.received_at,
        RecordsRequest.due_on, RecordsRequest.clock_policy, RecordsRequest.extended_days,
        RecordsRequest.paused_days, RecordsRequest.closed_at, RecordsRequest.decision_reason,
        RecordsRequest.no_records_reason, RecordsRequest.delivery_method, RecordsRequest.assignee_id,
    ).where(RecordsRequest.id > after_id, RecordsRequest.received_at >= start, RecordsRequest.received_at < end)
    return db.session.execute(stmt.order_by(RecordsRequest.id).limit(BATCH_SIZE)).all()


def request_rows(period: DateRange, timezone: str) -> Iterator[list[str]]:
    """Every request received in the period (facility days), as CSV cells. ``on_time`` is ``yes`` when
    it was closed on or before its due date (the facility's day), ``no`` when later, empty while open."""
    start, end = period.bounds(timezone)
    zone = ZoneInfo(timezone)
    after_id = 0
    while True:
        batch = _request_batch(start, end, after_id)
        if not batch:
            return
        for r in batch:
            on_time = None if r.closed_at is None else r.closed_at.astimezone(zone).date() <= r.due_on
            yield [
                r.human_ref, _code(r.request_type), _code(r.relationship_to_patient), _code(r.status),
                _iso(r.received_at), r.due_on.isoformat(), _code(r.clock_policy), str(r.extended_days or 0),
                str(r.paused_days or 0), _iso(r.closed_at), _flag(on_time), _code(r.decision_reason),
                _code(r.no_records_reason), _code(r.delivery_method), _code(r.assignee_id),
            ]
        if len(batch) < BATCH_SIZE:
            return
        after_id = batch[-1].id


# --- The two exports --------------------------------------------------------------------------

def export_calls(period: DateRange, actor: Any, timezone: str) -> Iterator[str]:
    """Audit the export (the range only), then return the CSV generator. The caller commits
    before streaming, so the audit event stands even if the download is cut short."""
    record("export.calls", actor=actor, details=period.audit_details())
    return csv_lines(CALL_HEADER, call_rows(period, timezone))


def export_requests(period: DateRange, actor: Any, timezone: str) -> Iterator[str]:
    """As ``export_calls``, for records requests."""
    record("export.requests", actor=actor, details=period.audit_details())
    return csv_lines(REQUEST_HEADER, request_rows(period, timezone))
