"""Cost estimates and letters through HTTP (blueprint ``request_fees``, full paths).

Staff give an estimate from the queue page (version-checked like every form there). Staff and the
requester read a stored letter as its own printable page: the letter is HTML the app rendered
itself (autoescaped), served with a policy that forbids scripts and every outside resource, in a
sandbox, with ``nosniff``. Each letter is also a PDF file (``.../letters/<uid>/pdf``, made by
``letter_pdf`` from the stored page, fetching nothing), served as an attachment under the same
policy and audited the same way. Someone else's request, or a document that is not a letter, is 404.
"""

from __future__ import annotations

import re

from flask import abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from intake.audit.services import record
from intake.extensions import db
from intake.permissions import Permission, require
from intake.records import common, fees, letter_pdf, letters
from intake.records.documents import content_of
from intake.records.fee_forms import FeeForm
from intake.records.letters import CONTENT_TYPE
from intake.records.models import FileKind, RecordsRequest, RequestDocument, Visibility
from intake.records.page import portal, staff
from intake.records.page.blueprint import actor, portal_bp, queue_bp

UID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# A stored letter may style itself and nothing else: no script, no image, no font, no form, no frame.
# Pages that are letters: stored ones, and the cover letter that carries a recipient's access code.
LETTER_ENDPOINTS = frozenset({"request_queue.letter", "my_requests.letter", "request_queue.letter_pdf",
                              "my_requests.letter_pdf", "request_queue.send_recipient_link",
                              "request_queue.resend_recipient_link"})
LETTER_CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'; sandbox")


@queue_bp.post("/<reference>/fee-estimate", endpoint="fee_estimate")
@require(Permission.REQUESTS_QUEUE)
def estimate(reference: str) -> Response | tuple[str, int]:
    """Give a cost estimate (the newest one counts); the requester sees it and is told there is news."""
    req = staff.load_request(reference)
    form = FeeForm(prefix="fee")
    if not form.validate_on_submit():
        return staff.invalid_form(req, form)

    def change() -> None:
        staff.check_version(req, form)
        fees.give_estimate(req, actor(), form.basis.data, form.pages.data, form.postage_cents(),
                           waiver_reason=form.waiver_reason.data, expected_version=form.version.data)

    return staff.save_change(reference, form, change,
                             _("%(ref)s: cost estimate saved; the requester is notified.", ref=req.human_ref))


def _find_letter(req: RecordsRequest, doc_uid: str, staff: bool) -> RequestDocument:
    """The letter ``doc_uid`` on this request that this viewer may read; 404 for anything else."""
    if not UID_RE.fullmatch(doc_uid):
        abort(404)
    query = select(RequestDocument).where(RequestDocument.request_id == req.id, RequestDocument.uid == doc_uid,
                                          RequestDocument.kind == FileKind.LETTER)
    if not staff:
        query = query.where(RequestDocument.visibility == Visibility.REQUESTER, RequestDocument.revoked_at.is_(None))
    doc = db.session.execute(query).scalar_one_or_none()
    if doc is None:
        abort(404)
    return doc


def _audit_view(req: RecordsRequest, doc: RequestDocument, staff: bool, fmt: str) -> None:
    record("request.letter_viewed", actor=actor(), object_type=common.OBJECT_TYPE, object_id=req.id,
           details={"document_id": doc.id, "by": "staff" if staff else "requester", "format": fmt})
    db.session.commit()


def _letter(req: RecordsRequest, doc_uid: str, staff: bool) -> Response:
    """The stored letter as its own page, audited; 404 for anything that is not a letter on this
    request that this viewer may read."""
    doc = _find_letter(req, doc_uid, staff)
    body = content_of(doc)
    _audit_view(req, doc, staff, "html")
    response = Response(body, status=200, content_type=CONTENT_TYPE)
    response.letter_policy = True  # type: ignore[attr-defined]  # read by _letter_policy below
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    return response


def _letter_pdf(req: RecordsRequest, doc_uid: str, staff: bool, html_endpoint: str) -> Response | tuple[str, int]:
    """The stored letter as a PDF file to save or print (made from the stored page, so in the
    language it was sent in), audited like the page, under the same policy and headers. Where
    WeasyPrint cannot load, a page says so and links the printable page (503)."""
    doc = _find_letter(req, doc_uid, staff)
    if not letter_pdf.available():
        current_app.logger.warning("letters: PDF unavailable (%s)", letter_pdf.unavailable_reason())
        html_url = url_for(html_endpoint, reference=req.reference, doc_uid=doc.uid)
        return render_template("records/letters/pdf_unavailable.html", html_url=html_url), 503
    body = letter_pdf.render_pdf(content_of(doc).decode("utf-8"))
    _audit_view(req, doc, staff, "pdf")
    response = Response(body, status=200, content_type=letter_pdf.CONTENT_TYPE)
    response.letter_policy = True  # type: ignore[attr-defined]
    response.headers["X-Content-Type-Options"] = "nosniff"
    filename = letter_pdf.pdf_filename(letters.kind_of(doc), req.human_ref)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@queue_bp.after_app_request
def _letter_policy(response: Response) -> Response:
    """Put the letter's own policy in place of the app's page policy (which allows the app's
    scripts and no inline style). Runs after the app's security headers are set, because this
    blueprint is registered before them; ``test_records_letters`` checks the header as sent."""
    if getattr(response, "letter_policy", False) and request.endpoint in LETTER_ENDPOINTS:
        response.headers["Content-Security-Policy"] = LETTER_CSP
    return response


@queue_bp.get("/<reference>/letters/<doc_uid>", endpoint="letter")
@require(Permission.REQUESTS_VIEW)
def staff_letter(reference: str, doc_uid: str) -> Response:
    """A letter stored on the request, printable (staff see every letter on it)."""
    return _letter(staff.load_request(reference), doc_uid, staff=True)


@portal_bp.get("/<reference>/letters/<doc_uid>", endpoint="letter")
@require(Permission.REQUESTS_OWN)
def my_letter(reference: str, doc_uid: str) -> Response:
    """A letter on the requester's own request, printable."""
    return _letter(portal.load_own_request(reference), doc_uid, staff=False)


@queue_bp.get("/<reference>/letters/<doc_uid>/pdf", endpoint="letter_pdf")
@require(Permission.REQUESTS_VIEW)
def staff_letter_pdf(reference: str, doc_uid: str) -> Response | tuple[str, int]:
    """A letter stored on the request, as a PDF file (staff see every letter on it)."""
    return _letter_pdf(staff.load_request(reference), doc_uid, staff=True,
                       html_endpoint="request_queue.letter")


@portal_bp.get("/<reference>/letters/<doc_uid>/pdf", endpoint="letter_pdf")
@require(Permission.REQUESTS_OWN)
def my_letter_pdf(reference: str, doc_uid: str) -> Response | tuple[str, int]:
    """A letter on the requester's own request, as a PDF file."""
    return _letter_pdf(portal.load_own_request(reference), doc_uid, staff=False,
                       html_endpoint="my_requests.letter")
