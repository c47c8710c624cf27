"""The report of every emergency disclosure made from the helpline (42 CFR 2.51): a page, newest first,
and a CSV export. Both show who was told what, so both are audited; both need DISCLOSURES_REPORT."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, stream_with_context
from flask_login import current_user

from intake import clock
from intake.admin.exports import csv_lines
from intake.audit.services import record
from intake.calls.disclosures import Cursor, all_disclosures, disclosure_page
from intake.extensions import db
from intake.pagination import BadCursor
from intake.permissions import Permission, require

bp = Blueprint("disclosures", __name__, url_prefix="/admin/disclosures")


def _viewer() -> Any:
    return current_user._get_current_object()


@bp.route("/")
@require(Permission.DISCLOSURES_REPORT)
def index() -> tuple[str, int]:
    """Every emergency disclosure, newest first, 50 a page (``?before=``); audited."""
    before = None
    raw = request.args.get("before")
    if raw:
        try:
            before = Cursor.decode(raw)
        except BadCursor:
            return render_template("calls/disclosures.html", rows=[], next_before=None, first_page=False,
                                   problem=True), 400
    rows, following = disclosure_page(_viewer(), before)
    html = render_template("calls/disclosures.html", rows=rows, next_before=following, first_page=before is None,
                           problem=False)
    db.session.commit()
    return html, 200


HEADER = ("disclosure_id", "call_id", "disclosed_at ({zone})", "medical_personnel", "affiliation",
          "nature_of_emergency", "information_shared", "disclosed_by", "recorded_by")


def _lines() -> Any:
    zone_name = current_app.config["FACILITY_TIMEZONE"]
    header = [h.format(zone=zone_name) for h in HEADER]
    rows = ([r.id, r.call_id, clock.local_time(r.disclosed_at), r.disclosed_to, r.affiliation or "", r.reason,
             r.information, r.disclosed_by or "", r.recorded_by or ""] for r in all_disclosures())
    return csv_lines(header, rows)


@bp.route("/export.csv")
@require(Permission.DISCLOSURES_REPORT)
def export() -> Response:
    """Every disclosure as CSV (times in the facility's zone, named in the header), formula-safe;
    audited before the first row."""
    record("disclosures.exported", actor=_viewer())
    db.session.commit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(stream_with_context(_lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="emergency-disclosures-{stamp}.csv"',
                             "Cache-Control": "no-store"})
