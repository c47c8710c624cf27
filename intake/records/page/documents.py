"""Documents on a records request, through HTTP: uploads (requester and staff), release and
withdrawal, downloads, and recording how the records were delivered.

The requester's routes live under /my/requests/<reference>/ (their own request, else 404) and the
staff's under /queue/requests/<reference>/. A document is named by its random uid and looked up
*within* the request, so a uid from another request is 404 like a guessed one. Files are always
served as attachments, never shown inline, and every download is audited.

Uploads are the only routes that accept a large body: the blueprint raises the request's size
limit for them before anything reads the form (the CSRF check included), so the application-wide
limit stays small everywhere else and a body past the cap gets the 413 page before it is read.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from intake.extensions import db
from intake.permissions import Permission, require
from intake.records import documents, services
from intake.records.common import RequestInvalid, RequestRefused, VersionConflict
from intake.records.document_forms import (
    DocumentActionForm,
    delivery_form,
    requester_upload_form,
    staff_upload_form,
)
from intake.records.labels import DELIVERY_METHOD_LABELS
from intake.records.models import RecordsRequest, RequestDocument
from intake.records.page import portal, staff
from intake.records.page.blueprint import actor, portal_bp, queue_bp

_UNAVAILABLE = {
    "revoked": (410, lambda: _("The records office has withdrawn this document. If you still need it, write to "
                               "them from your request's page.")),
    "expired": (410, lambda: _("The download period for this document has ended. Write to the records office "
                               "from your request's page if you still need it.")),
    "used_up": (410, lambda: _("This document has been downloaded as many times as allowed. Write to the records "
                               "office from your request's page if you need it again.")),
    "own_upload": (403, lambda: _("For your privacy, documents you sent us cannot be downloaded again. The records "
                                  "office has them.")),
    "purged": (410, lambda: _("This document is no longer available: its download period ended long ago and the "
                              "copy was deleted. Write to the records office from your request's page if you need "
                              "the records again.")),
}


def _read(file: FileStorage | None) -> bytes | None:
    """The uploaded bytes, reading at most one byte past the cap (None when nothing was chosen)."""
    if not isinstance(file, FileStorage) or (not file.filename and not file.content_length):
        return None
    return file.stream.read(documents.upload_limit() + 1)


def _too_large() -> str:
    return _("That file is too large: the limit is %(mb)s MB.", mb=documents.megabytes(documents.upload_limit()))


def _attachment(doc: RequestDocument, data: bytes) -> Response:
    """The file as a download: never inline, never sniffed, never cached."""
    response = Response(data, content_type=doc.content_type)
    response.headers["Content-Disposition"] = documents.content_disposition(doc)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- The requester -----------------------------------------------------------------------------

def _portal_again(reference: str, form: Any, page_error: str | None, status: int) -> tuple[str, int]:
    db.session.rollback()
    return portal.render_own_request(portal.load_own_request(reference), page_error=page_error,
                                           status=status, documents_posted={"upload": form})


@portal_bp.post("/<reference>/documents", endpoint="upload")
@require(Permission.REQUESTS_OWN)
def upload_mine(reference: str) -> Response | tuple[str, int]:
    """The requester sends a photo ID, proof of authority, or a document asked for."""
    req = portal.load_own_request(reference)
    form = requester_upload_form(posted=True)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return portal.render_own_request(req, status=400, documents_posted={"upload": form})
    data = _read(form.file.data)
    if data is None:
        form.file.errors = [_("Choose the file to send.")]
        return _portal_again(reference, form, None, 400)
    if len(data) > documents.upload_limit():
        form.file.errors = [_too_large()]
        return _portal_again(reference, form, None, 413)
    human_ref = req.human_ref
    try:
        # While the office waits on the requester, the document is their answer (``services.reply``'s way).
        answered = services.answer_with_document(req, actor(), form.kind.data, form.file.data.filename, data)
    except (RequestInvalid, RequestRefused) as exc:
        errors = exc.errors if isinstance(exc, RequestInvalid) else {"file": _("This request takes no documents.")}
        staff.attach_errors(form, errors)
        # Also at the top: the form is not on the page any more once the request is closed.
        return _portal_again(reference, form, " ".join(str(m) for m in errors.values()), 400)
    except VersionConflict:
        return _portal_again(reference, form, _(
            "The records office changed this request while you were sending. Check the page and send again."), 409)
    db.session.commit()
    if answered:
        flash(_("Thank you: your document was received, and we are working on request %(ref)s again.",
                ref=human_ref), "success")
    else:
        flash(_("Thank you: your document was received."), "success")
    return redirect(url_for("my_requests.detail", reference=reference), 303)


def _unavailable(req: RecordsRequest, reason: str) -> tuple[str, int]:
    status, message = _UNAVAILABLE[reason]
    return render_template("records/portal/download_unavailable.html", req=req, message=message()), status


@portal_bp.get("/<reference>/documents/<doc_uid>", endpoint="download")
@require(Permission.REQUESTS_OWN)
def download_mine(reference: str, doc_uid: str) -> Response | tuple[str, int]:
    """Download a document released to the requester, while it is neither withdrawn, expired nor
    used up; each download takes one of its downloads and is audited."""
    req = portal.load_own_request(reference)
    doc = documents.document_of(req, doc_uid)
    if doc is None:
        abort(404)
    try:
        data = documents.take_download(req, doc, actor())
    except documents.DownloadRefused as exc:
        db.session.rollback()
        if exc.reason not in _UNAVAILABLE:
            abort(404)
        return _unavailable(portal.load_own_request(reference), exc.reason)
    db.session.commit()
    return _attachment(doc, data)


# --- Staff -------------------------------------------------------------------------------------

def _staff_again(reference: str, key: str, form: Any, page_error: str | None, status: int) -> tuple[str, int]:
    db.session.rollback()
    req = staff.load_request(reference)
    form.version.data = req.version  # the page now shows the current request
    form.version.raw_data = [str(req.version)]
    return staff.render_request(req, page_error=page_error, status=status, documents_posted={key: form})


@queue_bp.post("/<reference>/documents", endpoint="upload")
@require(Permission.REQUESTS_QUEUE)
def upload_staff(reference: str) -> Response | tuple[str, int]:
    """Add released records (to release afterwards) or internal working papers."""
    req = staff.load_request(reference)
    form = staff_upload_form(posted=True)
    if not form.validate_on_submit():
        return staff.invalid_document_form(req, "upload", form)
    data = _read(form.file.data)
    if data is None:
        form.file.errors = [_("Choose the file to add.")]
        return _staff_again(reference, "upload", form, None, 400)
    if len(data) > documents.upload_limit():
        form.file.errors = [_too_large()]
        return _staff_again(reference, "upload", form, None, 413)
    try:
        documents.upload(req, actor(), form.kind.data, form.file.data.filename, data)
    except RequestInvalid as exc:
        return _staff_again(reference, "upload", form, staff.attach_errors(form, exc.errors), 400)
    db.session.commit()
    flash(_("%(ref)s: document added.", ref=req.human_ref), "success")
    return redirect(url_for("request_queue.detail", reference=reference), 303)


def _document(req: RecordsRequest, doc_uid: str) -> RequestDocument:
    doc = documents.document_of(req, doc_uid)
    if doc is None:
        abort(404)
    return doc


def _document_action(reference: str, doc_uid: str, change: Any, done: str) -> Response | tuple[str, int]:
    req = staff.load_request(reference)
    doc = _document(req, doc_uid)
    form = DocumentActionForm()
    if not form.validate_on_submit():
        return staff.invalid_document_form(req, "action", form)
    return staff.save_change(reference, form,
                                   lambda: change(req, doc, actor(), expected_version=form.version.data),
                                   done % {"ref": req.human_ref}, documents_posted={"action": form})


@queue_bp.post("/<reference>/documents/<doc_uid>/release")
@require(Permission.REQUESTS_QUEUE)
def release(reference: str, doc_uid: str) -> Response | tuple[str, int]:
    """Make released records (or a letter) downloadable by the requester, for a limited time
    and number of downloads; the requester is told by e-mail (without content)."""
    return _document_action(reference, doc_uid, documents.release,
                            _("%(ref)s: document released; the requester is notified."))


@queue_bp.post("/<reference>/documents/<doc_uid>/revoke", endpoint="revoke_document")
@require(Permission.REQUESTS_QUEUE)
def revoke(reference: str, doc_uid: str) -> Response | tuple[str, int]:
    """Withdraw a released document: its downloads stop at once."""
    return _document_action(reference, doc_uid, documents.revoke, _("%(ref)s: document withdrawn."))


@queue_bp.get("/<reference>/documents/<doc_uid>", endpoint="download")
@require(Permission.REQUESTS_QUEUE)
def download_staff(reference: str, doc_uid: str) -> Response | tuple[str, int]:
    """Staff download any document of the request (audited; no counter)."""
    req = staff.load_request(reference)
    doc = _document(req, doc_uid)
    try:
        data = documents.staff_download(req, doc, actor())
    except documents.DownloadRefused:
        db.session.rollback()
        return render_template("records/queue/document_purged.html", req=staff.load_request(reference)), 410
    db.session.commit()
    return _attachment(doc, data)


@queue_bp.post("/<reference>/delivery")
@require(Permission.REQUESTS_QUEUE)
def delivery(reference: str) -> Response | tuple[str, int]:
    """Record how the records were handed over (download, post, pick-up, inspection)."""
    req = staff.load_request(reference)
    form = delivery_form(posted=True)
    if not form.validate_on_submit():
        return staff.invalid_document_form(req, "delivery", form)
    if form.method.data not in {code.value for code in DELIVERY_METHOD_LABELS}:
        form.method.errors = [_("Choose how the records were delivered.")]
        return staff.invalid_document_form(req, "delivery", form)
    def change() -> None:
        services.record_delivery(req, actor(), form.method.data, form.note.data,
                                 expected_version=form.version.data,
                                 consent_confirmed=bool(form.consent_confirmed.data))

    return staff.save_change(reference, form, change, _("%(ref)s: delivery recorded.", ref=req.human_ref),
                                   documents_posted={"delivery": form})

