"""``/admin/retention/``: the retention policies, their legal holds, a preview of the purge, and
the archive patients past their retention date (``RETENTION_MANAGE``).

A plain page load never counts rows: the preview (a POST) does, on request. The purge itself runs
from the command line (``flask retention purge``), in batches, so no request holds a long
transaction.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from intake.admin.retention import (
    MAX_DAYS,
    RULES,
    DataKind,
    PolicyInvalid,
    last_purges,
    past_retention,
    plan,
    policies,
    update_policy,
)
from intake.admin.retention_forms import PolicyForm, PreviewForm
from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.pagination import BadCursor, decode_cursor, encode_cursor
from intake.permissions import Permission, require
from intake.records.clocks import local_day

bp = Blueprint("admin_retention", __name__, url_prefix="/admin/retention")

PAGE_SIZE = 50


def _actor():
    return current_user._get_current_object()


def _today() -> date:
    return local_day(utcnow(), current_app.config["FACILITY_TIMEZONE"])


def _kind(raw: str) -> DataKind:
    try:
        return DataKind(raw)
    except ValueError:
        abort(404)


def _index(preview: list | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("admin/retention/index.html", policies=policies(), last=last_purges(), preview=preview,
                           preview_form=PreviewForm(), zone=current_app.config["FACILITY_TIMEZONE"]), status


@bp.get("/")
@require(Permission.RETENTION_MANAGE)
def index() -> tuple[str, int]:
    """The four policies: period, hold, cutoff date and when each kind was last purged."""
    return _index()


@bp.post("/preview")
@require(Permission.RETENTION_MANAGE)
def preview() -> tuple[str, int]:
    """What a purge would remove now, per kind (a dry run: counts only, nothing changes)."""
    if not PreviewForm().validate_on_submit():
        abort(400)
    results = plan()
    return _index(preview=results)


def _edit_page(kind: DataKind, form: PolicyForm, status: int = 200) -> tuple[str, int]:
    return render_template("admin/retention/edit.html", kind=kind, rule=RULES[kind], policy=policies()[kind],
                           form=form, max_days=MAX_DAYS), status


@bp.route("/<kind>", methods=["GET", "POST"])
@require(Permission.RETENTION_MANAGE)
def edit(kind: str) -> Response | tuple[str, int]:
    """Change one kind's period and legal hold; bad input comes back with the reason next to
    the field and a 400."""
    data_kind = _kind(kind)
    if request.method == "GET":
        current = policies()[data_kind]
        form = PolicyForm(formdata=None, keep_days=current.keep_days, legal_hold=current.legal_hold,
                          hold_reason=current.hold_reason or "")
        return _edit_page(data_kind, form)
    form = PolicyForm()
    if not form.validate_on_submit():
        return _edit_page(data_kind, form, 400)
    try:
        update_policy(data_kind, form.keep_days.data, form.legal_hold.data, form.hold_reason.data, _actor())
    except PolicyInvalid as exc:
        db.session.rollback()
        for name, message in exc.errors.items():
            getattr(form, name).errors = [*getattr(form, name).errors, message]
        return _edit_page(data_kind, form, 400)
    db.session.commit()
    flash(_("Saved: %(kind)s.", kind=RULES[data_kind].label), "success")
    return redirect(url_for("admin_retention.index"), 303)


@bp.get("/archive")
@require(Permission.RETENTION_MANAGE)
def archive() -> tuple[str, int]:
    """Former patients whose records are past their retention date, oldest first, for review:
    the archive record number and the date only. The listing is audited."""
    raw = request.args.get("after")
    after = None
    if raw:
        try:
            ordinal, row_id = decode_cursor(raw)
            after = (date.fromordinal(ordinal), row_id)
        except (BadCursor, ValueError, OverflowError):
            return render_template("admin/retention/archive.html", rows=[], next_after=None, first_page=False,
                                   problem=_("That page link is not valid. Start again from the first page."),
                                   today=_today()), 400
    today = _today()
    rows = past_retention(today, after, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_after = encode_cursor(rows[-1].retention_until.toordinal(), rows[-1].patient_id) if more else None
    record("archive.retention_listed", actor=_actor(), object_type="archived_patient",
           details={"shown": len(rows), "page": "next" if after else "first", "before": today.isoformat()})
    db.session.commit()
    return render_template("admin/retention/archive.html", rows=rows, next_after=next_after, first_page=after is None,
                           problem=None, today=today), 200
