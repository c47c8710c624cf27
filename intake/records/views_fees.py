"""Cost estimates and letters through HTTP (blueprint ``request_fees``, full paths).

Staff give an estimate from the queue page (version-checked like every form there). Staff and the
requester read a stored letter as its own printable page: the letter is HTML the app rendered
itself (autoescaped), served with a policy that forbids scripts and every outside resource, in a
sandbox, with ``nosniff``. Someone else's request, or a document that is not a letter, is 404.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from intake.audit.services import record
from intake.extensions import db
from intake.permissions import Permission, require
from intake.records import common, fees, views_portal, views_queue
from intake.records.documents import content_of
from intake.records.fee_forms import FeeForm
from intake.records.letters import CONTENT_TYPE
from intake.records.models import FileKind, RecordsRequest, RequestDocument, Visibility

bp = Blueprint("request_fees", __name__)

UID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# A stored letter may style itself and nothing else: no script, no image, no font, no form, no frame.
LETTER_CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'; sandbox")


def _actor() -> Any:
    return current_user._get_current_object()


@bp.post("/queue/requests/<reference>/fee-estimate")
@require(Permission.REQUESTS_QUEUE)
def estimate(reference: str) -> Response | tuple[str, int]:
    """Give a cost estimate (the newest one counts); the requester sees it and is told there is news."""
    req = views_queue.load_request(reference)
    form = FeeForm(prefix="fee")
    if not form.validate_on_submit():
        return views_queue.invalid_form(req, form)

    def change() -> None:
        views_queue.check_version(req, form)
        fees.give_estimate(req, _actor(), form.basis.data, form.pages.data, form.postage_cents(),
                           waiver_reason=form.waiver_reason.data, expected_version=form.version.data)

    return views_queue.save_change(reference, form, change,
                             _("%(ref)s: cost estimate saved; the requester is notified.", ref=req.human_ref))


def _letter(req: RecordsRequest, doc_uid: str, staff: bool) -> Response:
    """The stored letter as its own page, audited; 404 for anything that is not a letter on this
    request that this viewer may read."""
    if not UID_RE.fullmatch(doc_uid):
        abort(404)
    query = select(RequestDocument).where(RequestDocument.request_id == req.id, RequestDocument.uid == doc_uid,
                                          RequestDocument.kind == FileKind.LETTER)
    if not staff:
        query = query.where(RequestDocument.visibility == Visibility.REQUESTER, RequestDocument.revoked_at.is_(None))
    doc = db.session.execute(query).scalar_one_or_none()
    if doc is None:
        abort(404)
    body = content_of(doc)
    record("request.letter_viewed", actor=_actor(), object_type=common.OBJECT_TYPE, object_id=req.id,
           details={"document_id": doc.id, "by": "staff" if staff else "requester"})
    db.session.commit()
    response = Response(body, status=200, content_type=CONTENT_TYPE)
    response.letter_policy = True  # type: ignore[attr-defined]  # read by _letter_policy below
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.after_app_request
def _letter_policy(response: Response) -> Response:
    """Put the letter's own policy in place of the app's page policy (which allows the app's
    scripts and no inline style). Runs after the app's security headers are set, because this
    blueprint is registered before them; ``test_records_letters`` checks the header as sent."""
    if getattr(response, "letter_policy", False) and request.endpoint in ("request_fees.staff_letter",
                                                                           "request_fees.my_letter"):
        response.headers["Content-Security-Policy"] = LETTER_CSP
    return response


@bp.get("/queue/requests/<reference>/letters/<doc_uid>")
@require(Permission.REQUESTS_VIEW)
def staff_letter(reference: str, doc_uid: str) -> Response:
    """A letter stored on the request, printable (staff see every letter on it)."""
    return _letter(views_queue.load_request(reference), doc_uid, staff=True)


@bp.get("/my/requests/<reference>/letters/<doc_uid>")
@require(Permission.REQUESTS_OWN)
def my_letter(reference: str, doc_uid: str) -> Response:
    """A letter on the requester's own request, printable."""
    return _letter(views_portal.load_own_request(reference), doc_uid, staff=False)
