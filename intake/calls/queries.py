"""Reading the call log: the filtered list, one call with its parts, the repeat-caller lookup,
the urgent queue and "who viewed this call". No HTTP here; the views commit.

Lists select plain columns (never whole ``Call`` rows, which would decrypt names and notes
nobody is shown), page by keyset on ``(started_at, id)`` and never count the table. Operator
e-mail addresses and substances come in one extra query each per page, never one per row.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, String, and_, bindparam, exists, func, or_, select, type_coerce

from intake import clock
from intake.audit.services import ObjectEvent, object_history, record, with_emails
from intake.calls.escalation import may_watch, urgent_rows
from intake.calls.models import (
    Call,
    CallStatus,
    CallSubstance,
    Disposition,
    EmergencyDisclosure,
    FollowUp,
    RiskLevel,
    Substance,
)
from intake.calls.phones import PHONE_INDEX_PURPOSE, normalise_phone
from intake.db_types import utcnow
from intake.extensions import db
from intake.pagination import BadCursor, MomentCursor  # noqa: F401 - BadCursor: the views catch it from here
from intake.permissions import Permission, can
from intake.resources.models import Resource
from intake.security.crypto import keyring
from intake.users.services import emails_by_id, names_by_id, staff_people

PAGE_SIZE = 50
LOOKUP_LIMIT = 50
VIEWERS_LIMIT = 50
URGENT_LIMIT = 50


# A page's last row: (started_at, id).
Cursor = MomentCursor


@dataclass(frozen=True)
class CallFilters:
    """What the list is narrowed to; ``None`` means any."""

    date_from: date | None = None
    date_to: date | None = None  # inclusive
    operator_id: int | None = None
    risk: RiskLevel | None = None
    substance: Substance | None = None
    disposition: Disposition | None = None
    has_followup: bool | None = None


@dataclass(slots=True)
class CallRow:
    """One line of a call list: coded fields only, never a name, phone or note."""

    id: int
    started_at: datetime
    operator_id: int
    call_type: str
    risk_level: str
    disposition: str | None
    is_draft: bool
    has_followup: bool
    urgent: bool = False
    operator_name: str | None = None  # as colleagues know them (display name)
    substances: list[str] = field(default_factory=list)


@dataclass
class CallPage:
    rows: list[CallRow]
    next_cursor: str | None


def _visible_to(viewer: Any) -> Any:
    """Finalized calls, and the viewer's own drafts."""
    return or_(Call.status == CallStatus.FINAL,
               and_(Call.status == CallStatus.DRAFT, Call.operator_id == viewer.id))


def _has_followup() -> Any:
    return exists().where(FollowUp.call_id == Call.id)


def _row_select() -> Select[Any]:
    # Whether a row has a follow-up is asked in _complete, for the page's rows only: as an EXISTS
    # here, PostgreSQL plans it for every row the scan might read (a million), picks a hash of the
    # whole followups table, and builds it for each page (40-80 ms at 1,000,000 calls; make bench).
    # The coded columns come as the codes they are stored as (``type_coerce``: no CAST in the SQL), not
    # as enums turned back into codes: a page of rows converted 200 values it only wrote out again.
    codes = (type_coerce(column, String).label(column.key)
             for column in (Call.call_type, Call.risk_level, Call.disposition, Call.status))
    return select(Call.id, Call.started_at, Call.operator_id, *codes, Call.urgent)


def _day_start(day: date) -> datetime:
    """Midnight at the facility starting ``day`` (the list's dates are the facility's days), in UTC."""
    return datetime.combine(day, time.min, tzinfo=clock.zone()).astimezone(UTC)


# The page's follow-ups and substances: built once, the page's ids bound (an expanding IN).
_FOLLOWED_UP = select(FollowUp.call_id).where(FollowUp.call_id.in_(bindparam("ids", expanding=True))).distinct()
_SUBSTANCES = (select(CallSubstance.call_id, CallSubstance.substance)
               .where(CallSubstance.call_id.in_(bindparam("ids", expanding=True)))
               .order_by(CallSubstance.call_id, CallSubstance.substance))


def _with_extras(page: Select[Any]) -> Select[Any]:
    """``page`` (a ``_row_select`` with its order and limit) read again with each row's follow-up
    flag and substances, in the same statement: the extras are asked for the page's rows only (the
    outer query), so neither database plans them for the rows the page's scan skips (see
    ``_row_select``), and the page costs one query where it cost three (make profile)."""
    rows = page.subquery("page")
    followed = exists().where(FollowUp.call_id == rows.c.id).label("has_followup")
    # The codes joined by commas (no code holds one); their order is set when they are split.
    substances = (select(func.aggregate_strings(CallSubstance.substance, ","))
                  .where(CallSubstance.call_id == rows.c.id).scalar_subquery().label("substances"))
    return select(rows, followed, substances).order_by(rows.c.started_at.desc(), rows.c.id.desc())


def _complete_page(raw: Sequence[Any], names: dict[int, str]) -> list[CallRow]:
    """Rows from ``_with_extras``, with operator names (``names``, else one query)."""
    draft = CallStatus.DRAFT.value
    rows = [CallRow(r.id, r.started_at, r.operator_id, r.call_type, r.risk_level, r.disposition, r.status == draft,
                    bool(r.has_followup), bool(r.urgent), None, sorted(r.substances.split(",")) if r.substances else [])
            for r in raw]
    operators = {row.operator_id for row in rows}
    if not operators <= names.keys():
        names = staff_names(operators)
    for row in rows:
        row.operator_name = names.get(row.operator_id)
    return rows


def _complete(raw: Sequence[Any], names: dict[int, str] | None = None) -> list[CallRow]:
    """Rows from a column select, with operator names, follow-ups and substances in one query each
    (the names from ``names`` when it holds them all: the list's operator filter has just read them)."""
    draft = CallStatus.DRAFT.value
    rows = [CallRow(r.id, r.started_at, r.operator_id, str(r.call_type), str(r.risk_level),
                    None if r.disposition is None else str(r.disposition), r.status == draft, False, bool(r.urgent))
            for r in raw]
    if not rows:
        return rows
    operators = {row.operator_id for row in rows}
    if names is None or not operators <= names.keys():
        names = staff_names(operators)
    by_id = {row.id: row for row in rows}
    ids = {"ids": list(by_id)}
    for call_id in db.session.execute(_FOLLOWED_UP, ids).scalars():
        by_id[call_id].has_followup = True
    for call_id, substance in db.session.execute(_SUBSTANCES, ids):
        by_id[call_id].substances.append(str(substance))
    for row in rows:
        row.operator_name = names.get(row.operator_id)
    return rows


def staff_names(user_ids: Iterable[int | None]) -> dict[int, str]:
    """How pages name the given staff (display name, else e-mail address), in one query."""
    return names_by_id(user_ids)


def staff_choices() -> list[tuple[int, str]]:
    """Staff as (id, name) for the operator filter, by name."""
    return [(person.id, person.name) for person in staff_people(active_only=False)]


@functools.lru_cache(maxsize=256)
def _list_statement(shape: tuple[bool, ...], has_followup: bool | None, page_size: int) -> Select[Any]:
    """The list's statement for one shape of filters (which are set, not their values: those are
    bound), built once: building a statement costs about what running it does (make profile)."""
    date_from, date_to, operator, risk, substance, disposition, before = shape
    stmt = _row_select().where(or_(Call.status == CallStatus.FINAL, and_(
        Call.status == CallStatus.DRAFT, Call.operator_id == bindparam("viewer_id"))))
    if date_from:
        stmt = stmt.where(Call.started_at >= bindparam("from_at"))
    if date_to:
        stmt = stmt.where(Call.started_at < bindparam("to_at"))
    if operator:
        stmt = stmt.where(Call.operator_id == bindparam("operator_id"))
    if risk:
        stmt = stmt.where(Call.risk_level == bindparam("risk"))
    if disposition:
        stmt = stmt.where(Call.disposition == bindparam("disposition"))
    if substance:
        stmt = stmt.join(CallSubstance, and_(CallSubstance.call_id == Call.id,
                                             CallSubstance.substance == bindparam("substance")))
    if has_followup is not None:
        stmt = stmt.where(_has_followup() if has_followup else ~_has_followup())
    if before:
        # The first bound is implied by the second but is what lets the database seek into
        # (started_at, id): with the OR alone, SQLite walks the index from the newest call and
        # skips every row above the cursor (140 ms at 900,000 rows deep; make bench).
        at = bindparam("before_at", type_=Call.started_at.type)
        stmt = stmt.where(Call.started_at <= at, or_(Call.started_at < at, and_(
            Call.started_at == at, Call.id < bindparam("before_id", type_=Call.id.type))))
    return _with_extras(stmt.order_by(Call.started_at.desc(), Call.id.desc()).limit(page_size + 1))


def list_calls(viewer: Any, filters: CallFilters, before: Cursor | None = None,
               page_size: int = PAGE_SIZE, names: dict[int, str] | None = None) -> CallPage:
    """One page of the call list, newest first, strictly before ``before``.

    Fetches ``page_size + 1`` rows to learn whether another page exists, without counting.
    ``names``: staff names already read (id -> name), used for the rows' operators when it has them all.
    """
    values: dict[str, Any] = {"viewer_id": viewer.id}
    if filters.date_from is not None:
        values["from_at"] = _day_start(filters.date_from)
    if filters.date_to is not None:
        values["to_at"] = _day_start(filters.date_to) + timedelta(days=1)
    for name, value in (("operator_id", filters.operator_id), ("risk", filters.risk),
                        ("substance", filters.substance), ("disposition", filters.disposition)):
        if value is not None:
            values[name] = value
    if before is not None:
        values.update(before_at=before.at, before_id=before.id)
    shape = (filters.date_from is not None, filters.date_to is not None, filters.operator_id is not None,
             filters.risk is not None, filters.substance is not None, filters.disposition is not None,
             before is not None)
    raw = db.session.execute(_list_statement(shape, filters.has_followup, page_size), values).all()
    rows = _complete_page(raw[:page_size], names or {})
    next_cursor = Cursor(rows[-1].started_at, rows[-1].id).encode() if len(raw) > page_size else None
    return CallPage(rows, next_cursor)


def get_call(viewer: Any, call_id: int) -> Call | None:
    """The call, if the viewer may see it: finalized calls, one's own drafts, and any draft for
    those who may edit any call. ``None`` means "answer 404"."""
    call = db.session.get(Call, call_id)
    if call is None:
        return None
    if call.status == CallStatus.DRAFT and call.operator_id != viewer.id \
            and not can(viewer, Permission.CALLS_EDIT_ANY) and not may_watch(viewer, call):
        return None
    return call


@dataclass
class CallParts:
    """What the detail page shows besides the call's own columns."""

    followups: list[FollowUp]
    disclosures: list[EmergencyDisclosure]
    resource_names: dict[int, str]
    people: dict[int, str]


def call_parts(call: Call) -> CallParts:
    """Follow-ups, disclosures, referral resource names and staff e-mails: a fixed number of queries."""
    followups = list(db.session.execute(
        select(FollowUp).where(FollowUp.call_id == call.id).order_by(FollowUp.due_at)).scalars())
    disclosures = list(db.session.execute(
        select(EmergencyDisclosure).where(EmergencyDisclosure.call_id == call.id)
        .order_by(EmergencyDisclosure.disclosed_at)).scalars())
    resource_ids = sorted({r.resource_id for r in call.referrals})
    names: dict[int, str] = {}
    if resource_ids:
        names = dict(db.session.execute(select(Resource.id, Resource.name)
                                        .where(Resource.id.in_(resource_ids))).tuples().all())
    people = staff_names([call.operator_id, call.urgent_reviewed_by_id]
                             + [f.assignee_id for f in followups if f.assignee_id]
                             + [d.recorded_by_id for d in disclosures]
                             + [d.disclosed_by_id for d in disclosures if d.disclosed_by_id])
    return CallParts(followups, disclosures, names, people)


def call_viewers(call: Call, limit: int = VIEWERS_LIMIT) -> list[ObjectEvent]:
    """The latest audit events about this call (views, reveals, edits), newest first, with the
    actors' e-mail addresses loaded in one query."""
    events = object_history("call", call.id, limit)
    emails = emails_by_id(e.actor_id for e in events)
    return with_emails(events, emails)


def record_view(call: Call, viewer: Any) -> None:
    """Audit one view of a call's page."""
    record("call.viewed", actor=viewer, object_type="call", object_id=call.id)


def record_reveal(call: Call, viewer: Any, reason_code: str) -> None:
    """Audit a reveal of the caller's contact details: the reason's code only, never free text."""
    record("call.contact_revealed", actor=viewer, object_type="call", object_id=call.id,
           details={"reason": reason_code})


def lookup_by_phone(viewer: Any, phone: str, limit: int = LOOKUP_LIMIT) -> list[CallRow]:
    """Earlier calls from the same number (exact match on the blind index), newest first, and
    an audit event that records only how many matched: never the number or its index."""
    digits = normalise_phone(phone)
    index = keyring().blind_index(PHONE_INDEX_PURPOSE, digits)
    raw = db.session.execute(
        _row_select().where(_visible_to(viewer), Call.caller_phone_index == index)
        .order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)
    ).all()
    rows = _complete(raw)
    record("call.phone_lookup", actor=viewer, details={"matches": len(rows)})
    return rows


@dataclass(frozen=True)
class RepeatCaller:
    count: int  # earlier calls found (at most LOOKUP_LIMIT)
    last_id: int | None
    last_risk: str | None


def repeat_caller(viewer: Any, phone: str, exclude_id: int | None = None, limit: int = LOOKUP_LIMIT) -> RepeatCaller:
    """Has this number called before? Found by the blind index (exact match, nothing decrypted) and
    audited like a lookup: how many matched, never the number."""
    index = keyring().blind_index(PHONE_INDEX_PURPOSE, normalise_phone(phone))
    stmt = select(Call.id, Call.risk_level).where(_visible_to(viewer), Call.caller_phone_index == index)
    if exclude_id is not None:
        stmt = stmt.where(Call.id != exclude_id)
    raw = db.session.execute(stmt.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)).all()
    record("call.phone_lookup", actor=viewer, details={"matches": len(raw), "from": "intake_form"})
    return RepeatCaller(len(raw), raw[0].id if raw else None, str(raw[0].risk_level) if raw else None)


def urgent_queue(limit: int = URGENT_LIMIT) -> list[CallRow]:
    """Urgent calls nobody has reviewed yet, live drafts included: imminent first, then high, then
    oldest first (``escalation.urgent_rows``)."""
    return _complete(urgent_rows(limit))


class NotUrgent(ValueError):
    """The call is not on the urgent queue (not urgent, not final, or reviewed already)."""


def mark_urgent_reviewed(call: Call, reviewer: Any) -> None:
    """Take a call off the urgent queue: who reviewed it and when, audited; flushed, not committed."""
    if not call.urgent or call.urgent_reviewed_at is not None:
        raise NotUrgent(call.id)
    call.urgent_reviewed_at = utcnow()
    call.urgent_reviewed_by_id = reviewer.id
    record("call.urgent_reviewed", actor=reviewer, object_type="call", object_id=call.id)
    db.session.flush()
