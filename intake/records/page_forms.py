"""The forms on a records request's page, built in the view layer for both blueprints (the queue's
page and the requester's): the services give the page its data only (``page_context``), never a
form. ``posted`` keeps a form the user just sent, with its text and errors, in its place on the page
("upload", "action", "delivery", "recipient", "resend"): the views hand it over explicitly, never through ``g``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from intake.records import consents
from intake.records import document_forms as documents
from intake.records.consent_forms import PaperConsentForm, RevokeForm, StaffRevokeForm
from intake.records.fee_forms import FeeForm
from intake.records.models import RecordsRequest, RequestStatus, RequestType
from intake.records.recipient_forms import resend_link_form, send_link_form


def request_page_forms(req: RecordsRequest, *, staff: bool, posted: Mapping[str, Any] | None = None
                       ) -> dict[str, Any]:
    """Template variables: the documents', fees' and consent's forms for ``req``'s page."""
    posted = posted or {}
    third_party = req.request_type == RequestType.THIRD_PARTY
    if not staff:
        forms: dict[str, Any] = {"upload_form": posted.get("upload") or documents.requester_upload_form()}
        if third_party:
            forms["consent_revoke_form"] = RevokeForm(formdata=None)
        return forms
    # Only the forms the page can draw for the request as it stands (queue/_fees.html, _consent.html,
    # _document_forms.html, _recipient.html): an estimate and a paper consent while the request is
    # open, a delivery and a recipient's link while it is in review; the others are None. Building
    # them for every state cost ~1 ms of CPU a view (make profile PAGE=staff_request); a form just
    # posted is always kept.
    version = req.version
    in_review = req.status == RequestStatus.IN_REVIEW
    forms = {
        "upload_form": posted.get("upload") or documents.staff_upload_form(version),
        "action_form": posted.get("action") or documents.DocumentActionForm(formdata=None, version=version),
        "delivery_form": posted.get("delivery") or (documents.delivery_form(version) if in_review else None),
        "fee_form": FeeForm(prefix="fee", formdata=None, version=version) if req.is_open else None,
    }
    if third_party:
        forms["consent_paper_form"] = (PaperConsentForm(prefix="consent", formdata=None, version=version,
                                                        data=consents.prefill(req)) if req.is_open else None)
        # A revocation received in writing, recorded by staff (42 CFR 2.31(a)(6)).
        forms["consent_staff_revoke_form"] = StaffRevokeForm(prefix="revoke", formdata=None, version=version)
        # The recipient's secure link (``recipient``): send, send again.
        forms["recipient_form"] = posted.get("recipient") or (send_link_form(version) if in_review else None)
        forms["resend_form"] = posted.get("resend") or resend_link_form(version)
    return forms
