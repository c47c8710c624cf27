"""The exports page and the two CSV downloads (``EXPORT``).

A download's only inputs are two dates (GET: it changes nothing but the audit trail). A bad
range answers 400 with the exports page and the reason next to the form, never a CSV.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, stream_with_context
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SubmitField

from intake.admin.exports import (
    MAX_DAYS,
    DateRange,
    ExportRangeError,
    check_range,
    default_range,
    export_calls,
    export_requests,
)
from intake.db_types import utcnow
from intake.extensions import db
from intake.forms import IsoDateField
from intake.permissions import Permission, require
from intake.records.clocks import local_day

bp = Blueprint("admin_exports", __name__, url_prefix="/admin/exports")

EARLIEST = date(2000, 1, 1)
LATEST = date(2999, 12, 31)


def day_field(label: Any, field_id: str) -> IsoDateField:
    return IsoDateField(label, id=field_id, required=_l("Enter a date."), earliest=EARLIEST, latest=LATEST)


class RangeForm(FlaskForm):
    """Two facility days (GET, so no CSRF token). Field ids differ per form; the names do not."""

    class Meta:
        csrf = False

    range_error: str | None = None


class CallsExportForm(RangeForm):
    date_from = day_field(_l("From"), "calls-date-from")
    date_to = day_field(_l("To (inclusive)"), "calls-date-to")
    submit = SubmitField(_l("Download calls (CSV)"), id="calls-submit")


class RequestsExportForm(RangeForm):
    date_from = day_field(_l("From"), "requests-date-from")
    date_to = day_field(_l("To (inclusive)"), "requests-date-to")
    submit = SubmitField(_l("Download requests (CSV)"), id="requests-submit")


def _timezone() -> str:
    return str(current_app.config["FACILITY_TIMEZONE"])


def _blank_form(form_class: type[RangeForm]) -> RangeForm:
    period = default_range(local_day(utcnow(), _timezone()))
    return form_class(formdata=None, date_from=period.first, date_to=period.last)


def _page(calls: RangeForm | None = None, requests_: RangeForm | None = None) -> str:
    return render_template("admin/exports/index.html", calls_form=calls or _blank_form(CallsExportForm),
                           requests_form=requests_ or _blank_form(RequestsExportForm), max_days=MAX_DAYS)


@bp.route("/")
@require(Permission.EXPORT)
def index() -> str:
    """The two export forms, each preset to the last 30 days."""
    return _page()


def _download(form_class: type[RangeForm], kind: str,
              export: Callable[[DateRange, Any, str], Iterator[str]]) -> Response | tuple[str, int]:
    """Check the range, audit, commit, then stream the CSV; or the page with the reason and a 400."""
    form = form_class(request.args)
    period = None
    if form.validate():
        try:
            period = check_range(form.date_from.data, form.date_to.data)
        except ExportRangeError as exc:
            form.range_error = str(exc)
    if period is None:
        page = _page(calls=form) if kind == "calls" else _page(requests_=form)
        return page, 400
    chunks = export(period, current_user._get_current_object(), _timezone())
    db.session.commit()  # the audit event stands whether or not the download completes
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{period.filename(kind)}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/calls.csv")
@require(Permission.EXPORT)
def calls_csv() -> Response | tuple[str, int]:
    """Finalized calls started in the range (facility days): coded fields only."""
    return _download(CallsExportForm, "calls", export_calls)


@bp.route("/requests.csv")
@require(Permission.EXPORT)
def requests_csv() -> Response | tuple[str, int]:
    """Records requests received in the range (facility days): no names, dates of birth or messages."""
    return _download(RequestsExportForm, "requests", export_requests)
