"""Reading the staff queue of records requests: the tabs, filters and keyset pages of the list,
and the people named on one request's page. No HTTP here; the views commit.

The list selects plain coded columns (never whole ``RecordsRequest`` rows, which would decrypt
patient names nobody is shown), pages by keyset on ``(due_on, id)`` (the indexes
``(is_open, due_on, id)``, ``(status, due_on, id)`` and ``(assignee_id, is_open, due_on, id)``
serve it) and never counts the table. Assignee e-mails come in one extra query per page.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select

from intake.audit.services import ObjectEvent, object_history, with_emails
from intake.extensions import db
from intake.pagination import BadCursor, decode_cursor, encode_cursor
from intake.permissions import Permission, roles_with
from intake.records import clocks
from intake.records.common import OBJECT_TYPE
from intake.records.models import RecordsRequest, RequestEvent, RequestStatus, RequestType
from intake.users.services import Person, names_by_id, staff_accounts, staff_people

PAGE_SIZE = 50
VIEWERS_LIMIT = 50
REFERENCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,32}$")
# The reference read over the phone and printed on letters (intake/records/submission.py).
HUMAN_REF_RE = re.compile(r"^RR-[0-9]{4}-[A-Z0-9]{4,8}$")


class Tab(StrEnum):
    UNASSIGNED = "unassigned"
    MINE = "mine"
    VERIFYING = "verifying"
    DUE_TODAY = "due_today"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    AWAITING = "awaiting"
    CLOSED = "closed"


@dataclass(frozen=True)
class Cursor:
    """The last row of a page: the next page starts strictly after it."""

    due_on: date
    id: int

    def encode(self) -> str:
        return encode_cursor(self.due_on.toordinal(), self.id)

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse an opaque cursor; anything malformed raises ``BadCursor``."""
        ordinal, row_id = decode_cursor(text)
        if not date(1900, 1, 1).toordinal() <= ordinal <= date(2999, 12, 31).toordinal():
            raise BadCursor("out of range")
        return cls(date.fromordinal(ordinal), row_id)


@dataclass(frozen=True)
class QueueFilters:
    """What the list is narrowed to; ``None`` means any. ``assignee_id`` is a staff member's id."""

    request_type: RequestType | None = None
    status: RequestStatus | None = None
    assignee_id: int | None = None


@dataclass
class QueueRow:
    """One line of the queue: coded fields only, never a name or anything the requester wrote."""

    id: int
    human_ref: str
    reference: str
    request_type: RequestType
    status: RequestStatus
    received_on: date
    due_on: date
    assignee_id: int | None
    urgency: clocks.Urgency | None
    assignee_name: str | None = None  # staff are named by their display name


@dataclass
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None


def _row_select() -> Select[Any]:
    r = RecordsRequest
    return select(r.id, r.human_ref, r.reference, r.request_type, r.status, r.is_open, r.due_on, r.assignee_id,
                  r.paused_since, r.received_at)


def _tab_where(stmt: Select[Any], tab: Tab) -> Select[Any]:
    """``stmt`` narrowed to ``tab``, its moments bound (``_tab_values``): the statements are built once
    (``functools.lru_cache`` below) and their values bound per request, as building a statement cost
    more than running it (the records queue's counts and list, make profile)."""
    r = RecordsRequest
    if tab is Tab.UNASSIGNED:
        return stmt.where(r.is_open.is_(True), r.assignee_id.is_(None))
    if tab is Tab.MINE:
        return stmt.where(r.assignee_id == bindparam("viewer_id"), r.is_open.is_(True))
    if tab is Tab.VERIFYING:
        return stmt.where(r.status == RequestStatus.VERIFYING)
    if tab is Tab.DUE_TODAY:
        return stmt.where(r.is_open.is_(True), r.due_on == bindparam("today", type_=r.due_on.type))
    if tab is Tab.DUE_SOON:  # after today (today's have their own tab)
        return stmt.where(r.is_open.is_(True), r.due_on > bindparam("today", type_=r.due_on.type),
                          r.due_on <= bindparam("soon_until", type_=r.due_on.type))
    if tab is Tab.OVERDUE:
        return stmt.where(r.is_open.is_(True), r.due_on < bindparam("today", type_=r.due_on.type))
    if tab is Tab.AWAITING:
        return stmt.where(r.status == RequestStatus.AWAITING_REQUESTER)
    return stmt.where(r.is_open.is_(False))


def _tab_values(viewer: Any, today: date, soon_days: int) -> dict[str, Any]:
    """The values ``_tab_where``'s statements bind."""
    return {"viewer_id": viewer.id, "today": today, "soon_until": today + timedelta(days=soon_days)}


def _filter_where(stmt: Select[Any], shape: tuple[bool, bool, bool]) -> Select[Any]:
    """``stmt`` narrowed by the filters that are set (``shape``: type, status, assignee), values bound."""
    r = RecordsRequest
    by_type, by_status, by_assignee = shape
    if by_type:
        stmt = stmt.where(r.request_type == bindparam("request_type"))
    if by_status:
        stmt = stmt.where(r.status == bindparam("status"))
    if by_assignee:
        stmt = stmt.where(r.assignee_id == bindparam("assignee_id"))
    return stmt


@functools.lru_cache(maxsize=128)
def _list_statement(tab: Tab, shape: tuple[bool, bool, bool], after: bool, page_size: int) -> Select[Any]:
    """One tab's page for one shape of filters (which are set, not their values), built once."""
    r = RecordsRequest
    stmt = _filter_where(_tab_where(_row_select(), tab), shape)
    if after:
        after_due = bindparam("after_due", type_=r.due_on.type)
        stmt = stmt.where(or_(r.due_on > after_due, and_(r.due_on == after_due, r.id > bindparam("after_id"))))
    # The unassigned tab's rows all have a NULL assignee: ordering by it too changes nothing but lets
    # PostgreSQL read them in the order of (assignee_id, is_open, due_on, id), as SQLite does
    # (``IS NULL`` is no equality to its planner): the first page without sorting every unassigned
    # request (2,895 open at a million calls: 2.1 -> 0.04 ms, EXPLAIN ANALYZE).
    order = (r.assignee_id, r.due_on, r.id) if tab is Tab.UNASSIGNED else (r.due_on, r.id)
    return stmt.order_by(*order).limit(page_size + 1)


def _complete(raw: Sequence[Any], today: date, soon_days: int, day_of: Any) -> list[QueueRow]:
    """Rows from a column select, with the assignees' e-mails in one query."""
    rows = []
    for r in raw:
        # The coded columns come as their enums (coded_enum); waiting for the requester included: the clock never stops.
        rows.append(QueueRow(r.id, r.human_ref, r.reference, r.request_type, r.status, day_of(r.received_at), r.due_on,
                             r.assignee_id, clocks.urgency(r.due_on, today, soon_days) if r.is_open else None))
    names = names_by_id(row.assignee_id for row in rows)
    if names:
        for row in rows:
            row.assignee_name = names.get(row.assignee_id) if row.assignee_id is not None else None
    return rows


def list_requests(viewer: Any, tab: Tab, filters: QueueFilters, *, today: date, soon_days: int,
                  day_of: Any, after: Cursor | None = None, page_size: int = PAGE_SIZE) -> QueuePage:
    """One page of a tab, soonest due first, strictly after ``after``.

    ``day_of`` turns a UTC moment into the facility's day (``deadlines.facility_day``). Fetches
    ``page_size + 1`` rows to learn whether another page exists, without counting.
    """
    values = _tab_values(viewer, today, soon_days)
    values.update(request_type=filters.request_type, status=filters.status, assignee_id=filters.assignee_id)
    if after is not None:
        values.update(after_due=after.due_on, after_id=after.id)
    shape = (filters.request_type is not None, filters.status is not None, filters.assignee_id is not None)
    raw = db.session.execute(_list_statement(tab, shape, after is not None, page_size), values).all()
    rows = _complete(raw[:page_size], today, soon_days, day_of)
    next_cursor = Cursor(rows[-1].due_on, rows[-1].id).encode() if len(raw) > page_size else None
    return QueuePage(rows, next_cursor)


# Counts above this show as "99+": an open queue this long is an emergency in itself.
COUNT_CAP = 99


WORKING_TABS = (Tab.UNASSIGNED, Tab.MINE, Tab.VERIFYING, Tab.DUE_TODAY, Tab.DUE_SOON, Tab.OVERDUE, Tab.AWAITING)


def tab_counts(viewer: Any, today: date, soon_days: int, cap: int = COUNT_CAP) -> dict[Tab, int]:
    """How many requests each working tab holds (the closed tab is not counted), at most ``cap + 1``
    each, never counting the table: one statement, one row, one column per tab counting the ids read
    from an index under the tab's own condition (``_tab_where``) with a limit. The work stays the same
    however many requests are open (summing a condition over every open request took 5 ms at 6,000
    open; make profile), and the database counts them: the 700 ids it returned at a million calls, to
    be counted here, were most of the page's growth from 10,000 calls (callgrind)."""
    row = db.session.execute(_counts_statement(cap), _tab_values(viewer, today, soon_days)).one()
    return {tab: min(row[i], cap + 1) for i, tab in enumerate(WORKING_TABS)}


@functools.lru_cache(maxsize=8)
def _counts_statement(cap: int) -> Select[Any]:
    """``tab_counts``' statement, built once per cap (its moments and the viewer bound)."""
    r = RecordsRequest
    return select(*[select(func.count()).select_from(_tab_where(select(r.id), tab).limit(cap + 1).subquery())
                    .scalar_subquery().label(f"n_{tab.value}") for tab in WORKING_TABS])


@functools.lru_cache(maxsize=8)
def _due_now_statement(cap: int) -> Select[Any]:
    r = RecordsRequest
    return select(r.id).where(r.is_open.is_(True), r.due_on <= bindparam("today", type_=r.due_on.type)).limit(cap + 1)


def due_now_count(today: date, cap: int = COUNT_CAP) -> int:
    """Open requests due today or overdue (the menu's count); waiting ones too: the clock never stops."""
    return len(db.session.execute(_due_now_statement(cap), {"today": today}).all())


def find_by_human_ref(text: str) -> RecordsRequest | None:
    """The request a colleague quotes ("RR-2026-MZ6R", any case, spaces trimmed), or None."""
    ref = (text or "").strip().upper()
    if not HUMAN_REF_RE.match(ref):
        return None
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.human_ref == ref)).scalar_one_or_none()


def queue_staff() -> list[Any]:
    """Active accounts that work the records queue (records clerks), by name: the assignee choices."""
    return staff_accounts(roles=roles_with([Permission.REQUESTS_QUEUE]))


def queue_people() -> list[Person]:
    """``queue_staff`` as ``Person`` (id, name, address): for a list page's filter, which needs no
    account loaded whole."""
    return staff_people(roles=roles_with([Permission.REQUESTS_QUEUE]))


@dataclass
class RequestParts:
    """What the detail page shows besides the request's own columns."""

    events: list[RequestEvent]
    people: dict[int, str]
    viewers: list[ObjectEvent] | None


def request_parts(req: RecordsRequest, events: list[RequestEvent], with_viewers: bool,
                  limit: int = VIEWERS_LIMIT, pending: ObjectEvent | None = None) -> RequestParts:
    """Actor and staff e-mails for the timeline and the request (and, for auditors, the latest
    audit events about it, ``pending`` first: this view, recorded once the page is drawn): one
    query for all the e-mail addresses."""
    history = ([pending] if pending else []) + object_history(OBJECT_TYPE, req.id, limit) if with_viewers else []
    history = history[:limit]
    ids: Iterable[int | None] = [e.actor_id for e in events] + [h.actor_id for h in history] + [
        req.assignee_id, req.verified_by_id, req.decided_by_id]
    people = names_by_id(ids)
    viewers = with_emails(history, people) if with_viewers else None
    return RequestParts(events, people, viewers)
