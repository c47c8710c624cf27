"""Licensed professionals on a request, through HTTP (blueprint ``request_professionals``).

Staff record an outside professional's clinical denial or review, with the written decision attached
(45 CFR 164.524(a)(3), (d)(4)); the patient designates a licensed professional to receive the records
after a denial on clinical grounds (H&S 123115(b)), online on their request or through staff from
their letter. Requester routes answer 404 for a request that is not theirs; staff forms carry the
request's version like every queue form.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from intake.extensions import db
from intake.permissions import Permission, require
from intake.records import documents, professionals
from intake.records.common import RequestInvalid, RequestRefused, VersionConflict
from intake.records.models import RecordsRequest
from intake.records.page import portal, staff
from intake.records.page.blueprint import actor, portal_bp, queue_bp
from intake.records.professional_forms import DesignateForm, StaffDesignateForm, decision_form

ROLES = ("denial", "review")


@queue_bp.post("/<reference>/professional/<role>")
@require(Permission.REQUESTS_QUEUE)
def record_decision(reference: str, role: str) -> Response | tuple[str, int]:
    """Record an outside licensed professional's clinical denial or review, with the written decision."""
    req = staff.load_request(reference)
    if role not in ROLES:
        abort(404)
    form = decision_form(role, formdata=request.form)
    if not form.validate_on_submit():
        return staff.invalid_form(req, form)
    file = form.file.data
    data = None
    if isinstance(file, FileStorage) and (file.filename or file.content_length):
        data = (file.filename, file.stream.read(documents.upload_limit() + 1))
    if data is not None and len(data[1]) > documents.upload_limit():
        form.file.errors = [_("That file is too large: the limit is %(mb)s MB.",
                              mb=documents.megabytes(documents.upload_limit()))]
        return staff.render_request(req, posted=form, status=413)

    def change() -> None:
        professionals.record_decision(req, actor(), role, form.values(), data, expected_version=form.version.data)

    return staff.save_change(reference, form, change,
                             _("%(ref)s: the outside professional's decision is recorded.", ref=req.human_ref))


@queue_bp.post("/<reference>/designate", endpoint="designate")
@require(Permission.REQUESTS_QUEUE)
def designate_staff(reference: str) -> Response | tuple[str, int]:
    """Enter the professional the patient designated in writing (H&S 123115(b))."""
    req = staff.load_request(reference)
    form = StaffDesignateForm(prefix="designate")
    if not form.validate_on_submit():
        return staff.invalid_form(req, form)

    def change() -> None:
        professionals.designate(req, actor(), form.values(), expected_version=form.version.data)

    return staff.save_change(reference, form, change,
                             _("%(ref)s: the designated professional is recorded.", ref=req.human_ref))


def _designate_page(req: RecordsRequest, form: DesignateForm, status: int = 200,
                    page_error: str | None = None) -> tuple[str, int]:
    html = render_template("records/portal/designate.html", req=req, form=form, page_error=page_error,
                           current=professionals.designated(req),
                           possible=professionals.clinical_denial_stands(req))
    return html, status


@portal_bp.route("/<reference>/designate", methods=["GET", "POST"], endpoint="designate")
@require(Permission.REQUESTS_OWN)
def designate_mine(reference: str) -> Response | tuple[str, int]:
    """The patient names a licensed professional to receive the records instead of them, after a
    denial on clinical grounds (H&S 123115(b))."""
    req = portal.load_own_request(reference)
    if request.method == "GET":
        return _designate_page(req, DesignateForm(formdata=None))
    form = DesignateForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _designate_page(req, form, 400)
    human_ref = req.human_ref
    try:
        professionals.designate(req, actor(), form.values())
    except RequestInvalid as exc:
        db.session.rollback()
        req = portal.load_own_request(reference)
        top = []
        for name, message in exc.errors.items():
            field = getattr(form, name, None)
            if field is not None and hasattr(field, "errors"):
                field.errors = [*field.errors, message]
            else:
                top.append(message)
        return _designate_page(req, form, 400, " ".join(top) or None)
    except (RequestRefused, VersionConflict):
        db.session.rollback()
        abort(404)
    db.session.commit()
    flash(_("Request %(ref)s: the professional you designated is recorded. We will send the records to them.",
            ref=human_ref), "success")
    return redirect(url_for("my_requests.detail", reference=reference), 303)
