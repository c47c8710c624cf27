"""The audit review: the trail with filters, keyset pages, chain verification and a CSV export.

Viewing needs ``AUDIT_VIEW``; the export needs ``EXPORT`` as well. Every view, verification and
export is itself audited, with the filters used but never a person's address (an account is
named by its number). Lists page by ``seq`` (``?before=<seq>``) and never count the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select, false, select, text
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as WerkzeugResponse

from intake.admin import exports
from intake.admin.audit_forms import CALL_REF_RE, NOBODY, REQUEST_REF_RE, AuditFilterForm
from intake.audit.models import AuditEvent
from intake.audit.services import record, verify_chain
from intake.extensions import db
from intake.forms import ConfirmForm
from intake.permissions import Permission, can, refuse, require
from intake.records.common import OBJECT_TYPE as REQUEST_OBJECT_TYPE
from intake.records.models import RecordsRequest
from intake.users.models import User
from intake.users.services import staff_accounts, users_by_id

bp = Blueprint("admin_audit", __name__, url_prefix="/admin/audit")

PAGE_SIZE = 50
EXPORT_BATCH = 1000
MAX_SEQ = 2**31 - 1
FILTER_KEYS = ("person", "reference", "action", "object_type", "object_id", "date_from", "date_to")
_SEQ_RE = re.compile(r"^[0-9]{1,10}$")
CSV_HEADER = ("seq", "occurred_at_utc", "actor_id", "actor_email", "actor_role", "action", "object_type",
              "object_id", "ip_address", "details", "hash", "actor_name", "object_reference")
# How the trail's object types read on the page (others show their code).
OBJECT_LABELS = {"call": "call", REQUEST_OBJECT_TYPE: "request", "user": "account", "followup": "follow-up",
                 "resource": "resource", "notice": "notice", "call_review": "call review",
                 "archived_patient": "archived patient", "retention_policy": "retention policy",
                 "audit_checkpoint": "audit checkpoint"}
# Only these columns are ever put into the distinct-values query below (never user input).
_DISTINCT_COLUMNS = frozenset({"action", "object_type"})


class BadFilter(ValueError):
    """The query string cannot be turned into filters; the message is safe to show."""


@dataclass(frozen=True)
class AuditFilters:
    actor_id: int | None = None
    nobody: bool = False  # events without a signed-in actor (system, anonymous visitors)
    no_match: bool = False  # the person or reference asked for does not exist: nothing can match
    reference_unknown: bool = False  # (the reference)
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None  # UTC, inclusive
    until: datetime | None = None  # UTC, exclusive

    def describe(self, form: AuditFilterForm) -> dict[str, Any]:
        """The filters for the audit trail's own record: values that are not confidential only."""
        used: dict[str, Any] = {}
        if self.nobody:
            used["person"] = "system"
        elif self.actor_id is not None:
            used["actor_id"] = self.actor_id
        elif self.no_match:
            used["person"] = "no such account"
        if form.reference.data:
            used["reference"] = form.reference.data.upper()  # a request's RR- reference or a call number
        for key in ("action", "object_type", "object_id"):
            if getattr(self, key):
                used[key] = getattr(self, key)
        if form.date_from.data:
            used["date_from"] = form.date_from.data.isoformat()
        if form.date_to.data:
            used["date_to"] = form.date_to.data.isoformat()
        return used


@dataclass(frozen=True)
class EventRow:
    seq: int
    occurred_at: datetime  # in the facility's time zone
    actor_id: int | None
    actor_email: str | None
    actor_role: str | None
    action: str
    object_type: str | None
    object_id: str | None
    object_url: str | None
    actor_name: str | None  # display name (the e-mail beside it)
    object_label: str | None  # "RR-2026-MZ6R", "call #208", "account Test Operator (op@…)"
    ip_address: str | None
    details: str


def distinct_values(column: str) -> list[str]:
    """The distinct non-null values of an indexed column, by walking the index from one value to
    the next (a "loose index scan"): one lookup per value, however long the trail is."""
    if column not in _DISTINCT_COLUMNS:
        raise ValueError(column)
    # The column name comes from the fixed _DISTINCT_COLUMNS set checked above, never from input.
    sql = text(
        f"WITH RECURSIVE t(v) AS (SELECT MIN({column}) FROM audit_events "  # nosec B608
        f"UNION ALL SELECT (SELECT MIN({column}) FROM audit_events WHERE {column} > t.v) FROM t WHERE t.v IS NOT NULL) "
        "SELECT v FROM t WHERE v IS NOT NULL"
    )
    return [row[0] for row in db.session.execute(sql)]


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["FACILITY_TIMEZONE"])


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def filter_form(args: MultiDict) -> AuditFilterForm:
    """The filter form bound to the query string, its selects offering what the trail holds."""
    form = AuditFilterForm(MultiDict((k, v) for k, v in args.items(multi=True) if k in FILTER_KEYS))
    people = [(str(u.id), f"{u.name} ({u.email})" if u.display_name else str(u.email))
              for u in staff_accounts(active_only=False)]
    chosen = form.person.data or ""
    if chosen and chosen.lstrip("#").isdigit() and chosen.lstrip("#") not in {v for v, _label in people}:
        people.append((chosen, _("account #%(id)s", id=chosen.lstrip("#"))))  # a requester's, from the users page
    form.person.choices = [("", _("Anyone")), ("system", _("System or anonymous"))] + people
    form.action.choices = [("", _("Any"))] + [(a, a) for a in distinct_values("action")]
    form.object_type.choices = [("", _("Any"))] + [(t, t) for t in distinct_values("object_type")]
    return form


def filters_from(form: AuditFilterForm) -> AuditFilters:
    """Validated filters, or ``BadFilter``. A person is an account number (or "system")."""
    if not form.validate():
        raise BadFilter(_("Some filters are not valid. Correct them and filter again."))
    actor_id, nobody, no_match = None, False, False
    person = (form.person.data or "").strip()  # Optional() lets a blank of spaces through as "no filter"
    if person.lower() in NOBODY:
        nobody = True
    elif person:
        user = db.session.get(User, int(person.lstrip("#")))
        if user is None:
            no_match = True
        else:
            actor_id = user.id
    object_type, object_id = form.object_type.data or None, form.object_id.data or None
    reference = (form.reference.data or "").upper()
    reference_unknown = False
    if REQUEST_REF_RE.match(reference):
        found = db.session.execute(select(RecordsRequest.id).where(RecordsRequest.human_ref == reference)).scalar()
        object_type, object_id = REQUEST_OBJECT_TYPE, str(found) if found is not None else None
        reference_unknown = found is None
    elif reference:
        call = CALL_REF_RE.match(reference)
        assert call is not None  # the form's shape check passed
        object_type, object_id = "call", str(int(call.group(1)))
    zone = _zone()
    return AuditFilters(
        actor_id=actor_id, nobody=nobody, no_match=no_match or reference_unknown,
        reference_unknown=reference_unknown,
        action=form.action.data or None, object_type=object_type, object_id=object_id,
        since=_day_start(form.date_from.data, zone) if form.date_from.data else None,
        until=_day_start(form.date_to.data + timedelta(days=1), zone) if form.date_to.data else None,
    )


def before_param(raw: str | None) -> int | None:
    """The keyset cursor ``?before=<seq>``: absent means the newest; anything else but a seq is refused."""
    if raw is None or raw == "":
        return None
    if not _SEQ_RE.match(raw) or not 1 <= int(raw) <= MAX_SEQ:
        raise BadFilter(_("That page link is not valid. Start again from the first page."))
    return int(raw)


def _select(filters: AuditFilters) -> Select[Any]:
    stmt = select(AuditEvent.seq, AuditEvent.occurred_at, AuditEvent.actor_id, AuditEvent.actor_role,
                  AuditEvent.action, AuditEvent.object_type, AuditEvent.object_id, AuditEvent.ip_address,
                  AuditEvent.details, AuditEvent.hash)
    if filters.no_match:
        return stmt.where(false())
    if filters.nobody:
        stmt = stmt.where(AuditEvent.actor_id.is_(None))
    elif filters.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == filters.actor_id)
    if filters.action:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.object_type:
        stmt = stmt.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        stmt = stmt.where(AuditEvent.object_id == filters.object_id)
    if filters.since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < filters.until)
    return stmt


def fetch(filters: AuditFilters, before: int | None, size: int) -> list[Any]:
    """Up to ``size`` events older than ``before`` (newest first), as plain rows."""
    stmt = _select(filters)
    if before is not None:
        stmt = stmt.where(AuditEvent.seq < before)
    return list(db.session.execute(stmt.order_by(AuditEvent.seq.desc()).limit(size)).all())


def _request_refs(raw: Sequence[Any]) -> dict[str, tuple[str, str]]:
    """(URL reference, human reference) of the records requests named on these rows, in one query."""
    ids = {int(r.object_id) for r in raw
           if r.object_type == REQUEST_OBJECT_TYPE and r.object_id and r.object_id.isdigit()
           and int(r.object_id) <= MAX_SEQ}
    if not ids:
        return {}
    found = db.session.execute(select(RecordsRequest.id, RecordsRequest.reference, RecordsRequest.human_ref)
                               .where(RecordsRequest.id.in_(ids))).all()
    return {str(row.id): (row.reference, row.human_ref) for row in found}


def _people(raw: Sequence[Any]) -> dict[int, User]:
    """The accounts these rows name, as actors or as objects, in one query."""
    ids: set[int | None] = {r.actor_id for r in raw}
    ids |= {int(r.object_id) for r in raw
            if r.object_type == "user" and r.object_id and r.object_id.isdigit() and int(r.object_id) <= MAX_SEQ}
    return users_by_id(ids)


def _person(user: User | None) -> str | None:
    if user is None:
        return None
    return f"{user.display_name} ({user.email})" if user.display_name else str(user.email)


def _object_label(row: Any, refs: dict[str, tuple[str, str]], people: dict[int, User]) -> str | None:
    """How a colleague would name the object: a request by its RR- reference, a call by its number,
    an account by the person's name and address; anything else by its kind and id."""
    if not row.object_type:
        return None
    object_id = row.object_id or ""
    if row.object_type == REQUEST_OBJECT_TYPE and object_id in refs:
        return refs[object_id][1]
    if row.object_type == "call" and object_id:
        return _("call #%(id)s", id=object_id)
    if row.object_type == "user" and object_id.isdigit() and int(object_id) <= MAX_SEQ:
        named = _person(people.get(int(object_id)))
        if named:
            return _("account %(who)s", who=named)
    return f"{OBJECT_LABELS.get(row.object_type, row.object_type)} {object_id}".strip()


def _object_url(row: Any, references: dict[str, tuple[str, str]]) -> str | None:
    object_id = row.object_id or ""
    # Only to the pages the reader may open (a privacy officer reads no call pages).
    if (row.object_type == "call" and object_id.isdigit() and int(object_id) <= MAX_SEQ
            and can(current_user, Permission.CALLS_VIEW)):
        return url_for("calls.detail", call_id=int(object_id))
    if (row.object_type == REQUEST_OBJECT_TYPE and object_id in references
            and can(current_user, Permission.REQUESTS_VIEW)):
        return url_for("request_queue.detail", reference=references[object_id][0])
    if (row.object_type == "user" and object_id.isdigit() and int(object_id) <= MAX_SEQ
            and can(current_user, Permission.USERS_MANAGE)):
        return url_for("admin_users.detail", user_id=int(object_id))
    return None


def complete(raw: Sequence[Any], *, links: bool = True) -> list[EventRow]:
    """Rows with the people they name (one query), the requests' references (one more) and links
    to their objects."""
    people = _people(raw)
    references = _request_refs(raw)
    zone = _zone()
    rows = []
    for r in raw:
        actor = people.get(r.actor_id) if r.actor_id is not None else None
        rows.append(EventRow(
            seq=r.seq, occurred_at=r.occurred_at.astimezone(zone), actor_id=r.actor_id,
            actor_email=str(actor.email) if actor is not None and actor.email else None,
            actor_name=actor.display_name if actor is not None else None,
            actor_role=r.actor_role, action=r.action, object_type=r.object_type, object_id=r.object_id,
            object_url=_object_url(r, references) if links else None, object_label=_object_label(r, references, people),
            ip_address=r.ip_address, details=r.details))
    return rows


def _render(form: AuditFilterForm, *, rows: list[EventRow], next_before: int | None, first_page: bool,
            problem: str | None = None, person_unknown: bool = False, reference_unknown: bool = False,
            status: int = 200) -> tuple[str, int]:
    args = {k: v for k, v in request.args.items() if k in FILTER_KEYS and v}
    return render_template("admin/audit/index.html", form=form, rows=rows, next_before=next_before,
                           first_page=first_page, problem=problem, person_unknown=person_unknown,
                           reference_unknown=reference_unknown,
                           filter_args=args, verify_form=ConfirmForm(),
                           may_export=can(current_user, Permission.EXPORT)), status


@bp.route("/")
@require(Permission.AUDIT_VIEW)
def index() -> tuple[str, int]:
    """The trail, newest first, 50 a page (``?before=<seq>``), filtered; each view is audited."""
    form = filter_form(request.args)
    try:
        before = before_param(request.args.get("before"))
        filters = filters_from(form)
    except BadFilter as exc:
        return _render(form, rows=[], next_before=None, first_page=False, problem=str(exc), status=400)
    raw = fetch(filters, before, PAGE_SIZE + 1)
    next_before = raw[PAGE_SIZE - 1].seq if len(raw) > PAGE_SIZE else None
    rows = complete(raw[:PAGE_SIZE])
    record("audit.viewed", actor=current_user._get_current_object(),
           details={"filters": filters.describe(form), "first_page": before is None})
    html = _render(form, rows=rows, next_before=next_before, first_page=before is None,
                   person_unknown=filters.no_match and not filters.reference_unknown,
                   reference_unknown=filters.reference_unknown)
    db.session.commit()
    return html


@bp.route("/verify", methods=["POST"])
@require(Permission.AUDIT_VIEW)
def verify() -> WerkzeugResponse:
    """Walk the whole chain now and say whether it is intact; the check itself is audited."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    actor = current_user._get_current_object()
    report = verify_chain()
    if actor not in db.session:  # the walk empties the session between batches; keep the signed-in account
        db.session.add(actor)
    record("audit.verified", actor=actor,
           details={"ok": report.ok, "checked": report.checked, "broken_at": report.broken_at})
    db.session.commit()
    if report.ok and report.checkpoint_seq:
        flash(_("The audit chain is intact: %(n)d events checked from the retention checkpoint after event "
                "%(seq)d (older events were purged); the newest hash is %(hash)s.",
                n=report.checked, seq=report.checkpoint_seq, hash=report.head_hash), "success")
    elif report.ok:
        flash(_("The audit chain is intact: %(n)d events checked; the newest hash is %(hash)s.",
                n=report.checked, hash=report.head_hash), "success")
    else:
        flash(_("The audit chain is broken at event %(seq)d: %(reason)s. %(n)d events before it are intact.",
                seq=report.broken_at or 0, reason=report.reason or "", n=report.checked), "danger")
    return redirect(url_for("admin_audit.index"))


def _rows(filters: AuditFilters, batch: int) -> Iterator[list[Any]]:
    """The filtered events, newest first, read in keyset batches so memory stays flat."""
    before = None
    while True:
        raw = fetch(filters, before, batch)
        if not raw:
            return
        people = _people(raw)
        references = _request_refs(raw)
        for r in raw:
            actor = people.get(r.actor_id) if r.actor_id is not None else None
            yield [r.seq, r.occurred_at.isoformat(timespec="seconds"), r.actor_id,
                   str(actor.email) if actor is not None and actor.email else "", r.actor_role, r.action,
                   r.object_type, r.object_id, r.ip_address, r.details, r.hash,
                   (actor.display_name or "") if actor is not None else "",
                   _object_label(r, references, people) or ""]
        before = raw[-1].seq


def csv_lines(filters: AuditFilters, batch: int = EXPORT_BATCH) -> Iterator[str]:
    """The filtered events as CSV, through the exports' formula-safe writer."""
    return exports.csv_lines(CSV_HEADER, _rows(filters, batch))


@bp.route("/export.csv")
@require(Permission.EXPORT)
def export() -> Response | tuple[str, int]:
    """The filtered trail as a CSV download; audited (with the filters) before the first row."""
    if not can(current_user, Permission.AUDIT_VIEW):
        raise refuse(Permission.AUDIT_VIEW)
    form = filter_form(request.args)
    try:
        filters = filters_from(form)
    except BadFilter as exc:
        return _render(form, rows=[], next_before=None, first_page=False, problem=str(exc), status=400)
    record("audit.exported", actor=current_user._get_current_object(), details={"filters": filters.describe(form)})
    db.session.commit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(stream_with_context(csv_lines(filters)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
                             "Cache-Control": "no-store"})
