"""Consent to disclose to a third party (42 CFR §2.31): the requester signs or revokes it on their
request, staff enter one received on paper.

Requester routes answer 404 for a request that is not theirs (as ``my_requests`` does); the staff
route carries the request's version like every queue form. Flash messages name the short
reference at most, never what the consent says.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from intake.extensions import db
from intake.permissions import Permission, require
from intake.records import consents
from intake.records.common import RequestInvalid, RequestRefused, VersionConflict
from intake.records.consent_forms import ConsentForm, PaperConsentForm, RevokeForm, StaffRevokeForm
from intake.records.models import RecordsRequest, RequestType
from intake.records.page import portal, staff
from intake.records.page.blueprint import actor, portal_bp, queue_bp


def _own_third_party(reference: str) -> RecordsRequest:
    """The user's own request to send records to a third party; 404 for anything else."""
    req = portal.load_own_request(reference)
    if req.request_type != RequestType.THIRD_PARTY:
        abort(404)
    return req


def _render_form(req: RecordsRequest, form: ConsentForm, page_error: str | None = None,
                 status: int = 200) -> tuple[str, int]:
    html = render_template("records/consent/sign.html", req=req, form=form, page_error=page_error,
                           representative=consents.is_representative(req),
                           current=consents.current_consent(req))
    return html, status


@portal_bp.route("/<reference>/consent", methods=["GET", "POST"], endpoint="sign_consent")
@require(Permission.REQUESTS_OWN)
def sign(reference: str) -> Response | tuple[str, int]:
    """The consent form, prefilled from the request; signing it supersedes any earlier consent."""
    req = _own_third_party(reference)
    if request.method == "GET":
        form = ConsentForm(formdata=None, data=consents.prefill(req))
        if not req.is_open:
            return _render_form(req, form, page_error=_("This request is closed: a consent can no longer be "
                                                        "added to it."), status=200)
        return _render_form(req, form)
    form = ConsentForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _render_form(req, form, status=400)
    human_ref = req.human_ref
    try:
        consents.sign(req, actor(), form.values())
    except RequestInvalid as exc:
        db.session.rollback()
        req = _own_third_party(reference)
        portal.attach_errors(form, exc.errors)
        return _render_form(req, form, page_error=" ".join(str(m) for m in form.general_errors) or None, status=400)
    except (RequestRefused, VersionConflict):
        db.session.rollback()
        abort(404)
    db.session.commit()
    flash(_("Your consent for request %(ref)s is signed.", ref=human_ref), "success")
    return redirect(url_for("my_requests.detail", reference=reference), 303)


@portal_bp.post("/<reference>/consent/revoke", endpoint="revoke_consent")
@require(Permission.REQUESTS_OWN)
def revoke(reference: str) -> Response | tuple[str, int]:
    """Revoke the consent in force (the box must be ticked)."""
    req = _own_third_party(reference)
    form = RevokeForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return portal.render_own_request(req, page_error=" ".join(str(e) for e in form.confirm.errors),
                                               status=400)
    human_ref = req.human_ref
    try:
        consents.revoke(req, actor())
    except (RequestInvalid, RequestRefused) as exc:
        db.session.rollback()
        message = " ".join(str(m) for m in exc.errors.values()) if isinstance(exc, RequestInvalid) else None
        return portal.render_own_request(_own_third_party(reference), status=400, page_error=message or _(
            "There is no consent in force on this request to revoke."))
    db.session.commit()
    flash(_("Your consent for request %(ref)s is revoked. Nothing more will be disclosed under it.",
            ref=human_ref), "success")
    return redirect(url_for("my_requests.detail", reference=reference), 303)


@queue_bp.post("/<reference>/consent", endpoint="enter_consent")
@require(Permission.REQUESTS_QUEUE)
def enter_paper(reference: str) -> Response | tuple[str, int]:
    """Staff enter a consent received on paper, as written; it supersedes any earlier consent."""
    req = staff.load_request(reference)
    if req.request_type != RequestType.THIRD_PARTY:
        abort(404)
    form = PaperConsentForm(prefix="consent")
    if not form.validate_on_submit():
        return staff.invalid_form(req, form)

    def change() -> None:
        consents.enter_paper(req, actor(), form.values(), expected_version=form.version.data)

    return staff.save_change(reference, form, change, _("%(ref)s: the paper consent is recorded.",
                                                        ref=req.human_ref))


@queue_bp.post("/<reference>/consent/revoke", endpoint="revoke_consent")
@require(Permission.REQUESTS_QUEUE)
def revoke_staff(reference: str) -> Response | tuple[str, int]:
    """Staff record a revocation the requester sent in writing (42 CFR 2.31(a)(6))."""
    req = staff.load_request(reference)
    if req.request_type != RequestType.THIRD_PARTY:
        abort(404)
    form = StaffRevokeForm(prefix="revoke")
    if not form.validate_on_submit():
        return staff.invalid_form(req, form)

    def change() -> None:
        consents.revoke(req, actor(), expected_version=form.version.data)

    return staff.save_change(reference, form, change, _("%(ref)s: the revocation is recorded; nothing more is "
                                                        "disclosed under that consent.", ref=req.human_ref))
