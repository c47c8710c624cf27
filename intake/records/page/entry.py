"""Requests received on paper, by fax, in person or after a call: records staff enter them
(``/queue/requests/new``) with their true receipt time and the scanned request, and link a
requester's account later. ``REQUESTS_QUEUE`` for both. The new-request route is the one route of
this blueprint that takes a file: its body limit is raised before the form (and its CSRF token) is read.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from intake import clock
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, require
from intake.records import documents, submission
from intake.records.common import RequestInvalid
from intake.records.entry_forms import LinkAccountForm, StaffRequestForm
from intake.records.page import staff
from intake.records.page.blueprint import actor, queue_bp


def _page(form: StaffRequestForm, status: int = 200) -> tuple[str, int]:
    return render_template("records/queue/new.html", form=form, closed_on=submission.closure_date(),
                           upload_limit_mb=documents.megabytes(documents.upload_limit())), status


def _attach(form: StaffRequestForm, errors: dict[str, str]) -> None:
    general = []
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is None or not hasattr(field, "errors"):
            general.append(message)
        elif message not in field.errors:
            field.errors = list(field.errors) + [message]
    form.general_errors = general


def _scan(form: StaffRequestForm) -> tuple[str | None, bytes] | None:
    file = form.scan.data
    if not isinstance(file, FileStorage) or (not file.filename and not file.content_length):
        return None
    data = file.stream.read(documents.upload_limit() + 1)
    return (file.filename, data) if data else None


@queue_bp.route("/new", methods=["GET", "POST"])
@require(Permission.REQUESTS_QUEUE)
def new() -> Response | tuple[str, int]:
    """Enter a written request received by post, fax, in person or after a phone call."""
    form = StaffRequestForm()
    if not form.is_submitted():
        return _page(form)
    shape_ok = form.validate()
    if "csrf_token" in form.errors:
        abort(400)
    received_at = clock.parse_local(form.received_at.data)
    scan = _scan(form)
    data = form.submission()
    if not shape_ok:
        problems = submission.entry_problems(data, received_at, utcnow(), scan[1] if scan else None)
        _attach(form, {k: v for k, v in problems.items() if not getattr(form, k, None) or not getattr(form, k).errors})
        return _page(form, 400)
    if scan is not None and len(scan[1]) > documents.upload_limit():
        _attach(form, {"scan": _("That file is too large: the limit is %(mb)s MB.",
                                 mb=documents.megabytes(documents.upload_limit()))})
        return _page(form, 413)
    try:
        req = submission.enter_request(actor(), data, received_at, scan)
    except RequestInvalid as exc:
        db.session.rollback()
        _attach(form, exc.errors)
        return _page(form, 400)
    reference, human_ref = req.reference, req.human_ref
    db.session.commit()
    flash(_("%(ref)s entered; its acknowledgment letter is ready to print and post.", ref=human_ref), "success")
    return redirect(url_for("request_queue.detail", reference=reference), 303)


@queue_bp.post("/<reference>/account")
@require(Permission.REQUESTS_QUEUE)
def link_account(reference: str) -> Response | tuple[str, int]:
    """Link the requester's account to a request entered from paper."""
    req = staff.load_request(reference)
    form = LinkAccountForm(prefix="account")
    if not form.validate_on_submit():
        return staff.invalid_form(req, form)

    def change() -> None:
        submission.link_account(req, actor(), form.email.data, expected_version=form.version.data)

    return staff.save_change(reference, form, change, _("%(ref)s: the requester's account is linked.",
                                                        ref=req.human_ref))
