"""Staff send a third party's copy by a secure link from the request's page, withdraw a link and
send a new one (the recipient's own page is ``views_recipient``).

The gate decides, the Disclosure is written, the e-mail queued; the access code is then shown once:
on a page to read it out on the telephone, or on the printable cover letter for post. Neither is
ever shown again (only its hash is kept).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response

from intake.extensions import db
from intake.permissions import Permission, require
from intake.records import recipient
from intake.records.common import RequestInvalid, RequestRefused, VersionConflict
from intake.records.models import CodeChannel, RecipientLink, RecordsRequest
from intake.records.page import staff
from intake.records.page.blueprint import actor, queue_bp
from intake.records.recipient_forms import RevokeLinkForm, resend_link_form, send_link_form


def _again(reference: str, key: str, form: Any, page_error: str | None, status: int) -> tuple[str, int]:
    db.session.rollback()
    return staff.render_request(staff.load_request(reference), page_error=page_error, status=status,
                                documents_posted={key: form})


def _shown_once(req: RecordsRequest, sent: recipient.Sent) -> Response | tuple[str, int]:
    """The access code, shown once: a page to read it out, or the cover letter to print and post."""
    if sent.link.code_channel == CodeChannel.POST:
        response = Response(recipient.cover_letter(req, sent), content_type="text/html; charset=utf-8")
        response.letter_policy = True  # type: ignore[attr-defined]  # the letters' own policy (page/fees.py)
        return response
    return render_template("records/recipient/code.html", req=req, link=sent.link,
                           code=recipient.show_code(sent.code)), 200


def _run(reference: str, key: str, form: Any, change: Any) -> Response | tuple[str, int]:
    try:
        sent = change()
        db.session.commit()
    except (VersionConflict, StaleDataError):
        return _again(reference, key, form, staff.conflict_message(), 409)
    except RequestInvalid as exc:
        db.session.rollback()
        return staff.render_request(staff.load_request(reference), page_error=staff.attach_errors(form, exc.errors),
                                    status=400, documents_posted={key: form})
    except RequestRefused:
        return _again(reference, key, form, "That step is not possible for this request as it stands now. "
                      "Nothing was changed.", 409)
    if sent is None:
        return redirect(url_for("request_queue.detail", reference=reference), 303)
    return _shown_once(staff.load_request(reference), sent)


@queue_bp.post("/<reference>/recipient-link", endpoint="send_recipient_link")
@require(Permission.REQUESTS_QUEUE)
def send(reference: str) -> Response | tuple[str, int]:
    """Release the records to the recipient by a secure link; show the access code once."""
    req = staff.load_request(reference)
    form = send_link_form(posted=True)
    if not form.validate_on_submit():
        return staff.invalid_document_form(req, "recipient", form)
    return _run(reference, "recipient", form, lambda: recipient.send_link(
        req, actor(), form.email.data, form.code_channel.data, expected_version=form.version.data,
        consent_confirmed=bool(form.consent_confirmed.data)))


def _link(req: RecordsRequest, link_uid: str) -> RecipientLink:
    link = recipient.link_of(req, link_uid)
    if link is None:
        abort(404)
    return link


@queue_bp.post("/<reference>/recipient-links/<link_uid>/revoke", endpoint="revoke_recipient_link")
@require(Permission.REQUESTS_QUEUE)
def revoke(reference: str, link_uid: str) -> Response | tuple[str, int]:
    """Withdraw a link: it stops working at once."""
    req = staff.load_request(reference)
    link = _link(req, link_uid)
    form = RevokeLinkForm(prefix="revoke-link")
    if not form.validate_on_submit():
        return staff.invalid_document_form(req, "revoke-link", form)

    def change() -> None:
        recipient.revoke(req, link, actor(), expected_version=form.version.data)
        flash(f"{req.human_ref}: the recipient's link is withdrawn.", "success")

    return _run(reference, "revoke-link", form, change)


@queue_bp.post("/<reference>/recipient-links/<link_uid>/resend", endpoint="resend_recipient_link")
@require(Permission.REQUESTS_QUEUE)
def resend(reference: str, link_uid: str) -> Response | tuple[str, int]:
    """A new link and a new code for the same disclosure; the old link stops working."""
    req = staff.load_request(reference)
    link = _link(req, link_uid)
    form = resend_link_form(posted=True)
    if not form.validate_on_submit():
        return staff.invalid_document_form(req, "resend", form)
    return _run(reference, "resend", form, lambda: recipient.resend(
        req, link, actor(), form.code_channel.data, expected_version=form.version.data))
