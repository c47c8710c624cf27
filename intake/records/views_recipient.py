"""A third party's copy through HTTP: the recipient's public page (blueprint ``recipient_copy``)
and staff's sending, withdrawing and re-sending of the link (blueprint ``recipient_links``).

The recipient's page, ``/copy/<token>``, needs no account: the link and the access code (sent
separately) are the credentials. A GET only shows the code form (mail scanners fetch links and must
change nothing); the code is posted (rate-limited per address, and the link locks after
``RECIPIENT_CODE_ATTEMPTS`` wrong codes); a right code marks this browser's session for that link,
and the files are downloaded from the page while the link lasts. An unknown token is 404, a link that
no longer works 410, each with a page that says what to do. The token is in the path, so the log
redaction replaces it (the route's argument is called ``token``; ``log_redaction.TOKEN_PREFIXES``
names ``/copy/`` for gunicorn's master too). The page is in the recipient's language (the one chosen
for them on the request), unless they chose another with the site's language switch.

Staff send the link from the request's page: the gate decides, the Disclosure is written, the
e-mail queued; the access code is then shown once: on a page to read it out on the telephone, or
on the printable cover letter for post. Neither is ever shown again (only its hash is kept).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response

from intake.db_types import utcnow
from intake.extensions import db
from intake.i18n import COOKIE as LANGUAGE_COOKIE
from intake.i18n import supported
from intake.permissions import Permission, require
from intake.records import consents, deadlines, documents, recipient, views_queue
from intake.records.common import RequestInvalid, RequestRefused, VersionConflict
from intake.records.labels import FILE_KIND_LABELS
from intake.records.models import CodeChannel, RecipientLink, RecordsRequest
from intake.records.recipient_forms import AccessCodeForm, RevokeLinkForm, resend_link_form, send_link_form

bp = Blueprint("recipient_copy", __name__)
staff_bp = Blueprint("recipient_links", __name__)

SESSION_KEY = "recipient_copy"  # {link uid: when the right code was typed (ISO)}
OPEN_FOR = timedelta(minutes=30)  # how long a right code lets this browser download
LETTER_CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'; sandbox")
_MESSAGES = {
    "revoked": lambda: _("The records office has withdrawn this link. If you still need the records, contact the "
                         "records office."),
    "locked": lambda: _("This link is locked because a wrong access code was entered too many times. Contact the "
                        "records office: they can send you a new link and a new code."),
    "expired": lambda: _("This link has expired. Contact the records office if you still need the records."),
    "used_up": lambda: _("The records have been downloaded as many times as this link allows. Contact the records "
                         "office if you need them again."),
    "purged": lambda: _("This file is no longer stored. Contact the records office if you still need it."),
}


# --- The recipient -------------------------------------------------------------------------------

def _language(link: RecipientLink | None) -> str:
    """The language the recipient chose with the site's switch, else the one chosen for them on the request."""
    return (supported(request.cookies.get(LANGUAGE_COOKIE))
            or (supported(link.language) if link is not None else None) or "en")


def _not_found() -> tuple[str, int]:
    return render_template("records/recipient/unavailable.html", message=_(
        "This link is not valid. Check that you opened the whole link from the e-mail, or contact the records "
        "office."), link_language=_language(None)), 404


def _unavailable(link: RecipientLink, reason: str) -> tuple[str, int]:
    with force_locale(_language(link)):
        return render_template("records/recipient/unavailable.html", message=_MESSAGES[reason](),
                               link_language=_language(link)), 410


def _opened(link: RecipientLink) -> bool:
    """Whether this browser typed the right code for this link in the last ``OPEN_FOR``."""
    when = (session.get(SESSION_KEY) or {}).get(link.uid)
    if not isinstance(when, str):
        return False
    try:
        opened = datetime.fromisoformat(when)
    except ValueError:
        return False
    return link.opened_at is not None and utcnow() - opened < OPEN_FOR


def _remember(link: RecipientLink) -> None:
    kept = {uid: when for uid, when in (session.get(SESSION_KEY) or {}).items() if isinstance(when, str)}
    kept = dict(list(kept.items())[-4:])  # a handful at most
    kept[link.uid] = utcnow().isoformat()
    session[SESSION_KEY] = kept


def _page(link: RecipientLink, form: AccessCodeForm, status: int = 200, problem: str | None = None
          ) -> tuple[str, int]:
    language = _language(link)
    with force_locale(language):
        req = db.session.get(RecordsRequest, link.request_id)
        notice = consents.notice_in_force(deadlines.facility_day(link.created_at))
        opened = _opened(link)
        html = render_template(
            "records/recipient/page.html", link=link, form=form, opened=opened, problem=problem,
            files=recipient.files_of(link) if opened else [], file_kind_labels=FILE_KIND_LABELS,
            notice_lines=consents.notice_text(notice, language), notice_citation=notice.citation,
            human_ref=req.human_ref if req is not None else "", link_language=language,
            left=link.max_downloads - link.download_count, token=request.view_args["token"]
            if request.view_args else "")
    return html, status


@bp.get("/copy/<token>")
def open_link(token: str) -> tuple[str, int]:
    """The access-code form, or the files once the code was typed in this browser."""
    link = recipient.find_by_token(token)
    if link is None:
        return _not_found()
    problem = recipient.problem_of(link)
    if problem is not None:
        return _unavailable(link, problem)
    return _page(link, AccessCodeForm(formdata=None))


@bp.post("/copy/<token>")
def enter_code(token: str) -> Response | tuple[str, int]:
    """Check the access code; a wrong one is counted and, at the limit, locks the link."""
    link = recipient.find_by_token(token)
    if link is None:
        return _not_found()
    with force_locale(_language(link)):
        form = AccessCodeForm()
        valid = form.validate_on_submit()
    if "csrf_token" in form.errors:
        abort(400)
    if not valid:
        return _page(link, form, 400)
    try:
        right = recipient.try_code(link, form.code.data)
    except recipient.LinkUnavailable as exc:
        db.session.commit()  # the lock and the attempt are kept
        return _unavailable(link, exc.reason)
    db.session.commit()
    if not right:
        left = recipient.attempts_left(link.failed_attempts, int(current_app.config["RECIPIENT_CODE_ATTEMPTS"]))
        with force_locale(_language(link)):
            form.code.data, form.code.raw_data = "", []  # a wrong code is not written back into the page
            form.code.errors = [_("That access code is not right. You can try %(n)d more times before the link "
                                  "locks.", n=left)]
        return _page(link, form, 400)
    _remember(link)
    return redirect(url_for("recipient_copy.open_link", token=token), 303)


@bp.get("/copy/<token>/files/<doc_uid>")
def download(token: str, doc_uid: str) -> Response | tuple[str, int]:
    """One file, once the code was typed in this browser: counted and audited."""
    link = recipient.find_by_token(token)
    if link is None:
        return _not_found()
    problem = recipient.problem_of(link)
    if problem is not None:
        return _unavailable(link, problem)
    if not _opened(link):
        return redirect(url_for("recipient_copy.open_link", token=token), 303)
    doc = recipient.file_of(link, doc_uid)
    if doc is None:
        abort(404)
    try:
        data = recipient.take_download(link, doc)
    except recipient.LinkUnavailable as exc:
        db.session.rollback()
        return _unavailable(link, exc.reason)
    db.session.commit()
    response = Response(data, content_type=doc.content_type)
    response.headers["Content-Disposition"] = documents.content_disposition(doc)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Staff ---------------------------------------------------------------------------------------

def _actor() -> Any:
    return current_user._get_current_object()


def _again(reference: str, key: str, form: Any, page_error: str | None, status: int) -> tuple[str, int]:
    db.session.rollback()
    return views_queue.render_request(views_queue.load_request(reference), page_error=page_error, status=status,
                                      documents_posted={key: form})


def _attach(form: Any, errors: dict[str, str]) -> str | None:
    top = []
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors") and name != "version":
            field.errors = list(field.errors) + [message]
        else:
            top.append(message)
    return " ".join(top) or None


def _conflict() -> str:
    return ("Someone else changed this request while you were working on it; here is the current version. "
            "Check and send again.")


def _shown_once(req: RecordsRequest, sent: recipient.Sent) -> Response | tuple[str, int]:
    """The access code, shown once: a page to read it out, or the cover letter to print and post."""
    if sent.link.code_channel == CodeChannel.POST:
        response = Response(recipient.cover_letter(req, sent), content_type="text/html; charset=utf-8")
        response.code_letter = True  # type: ignore[attr-defined]  # read by _letter_policy below
        return response
    return render_template("records/recipient/code.html", req=req, link=sent.link,
                           code=recipient.show_code(sent.code)), 200


def _run(reference: str, key: str, form: Any, change: Any) -> Response | tuple[str, int]:
    try:
        sent = change()
        db.session.commit()
    except (VersionConflict, StaleDataError):
        return _again(reference, key, form, _conflict(), 409)
    except RequestInvalid as exc:
        db.session.rollback()
        return views_queue.render_request(views_queue.load_request(reference), page_error=_attach(form, exc.errors),
                                          status=400, documents_posted={key: form})
    except RequestRefused:
        return _again(reference, key, form, "That step is not possible for this request as it stands now. "
                      "Nothing was changed.", 409)
    if sent is None:
        return redirect(url_for("request_queue.detail", reference=reference), 303)
    return _shown_once(views_queue.load_request(reference), sent)


def _invalid(req: RecordsRequest, key: str, form: Any) -> tuple[str, int]:
    if form.version.errors or "csrf_token" in form.errors:
        abort(400)  # the page always sends both; anything else is forged
    return views_queue.render_request(req, status=400, documents_posted={key: form})


@staff_bp.post("/queue/requests/<reference>/recipient-link")
@require(Permission.REQUESTS_QUEUE)
def send(reference: str) -> Response | tuple[str, int]:
    """Release the records to the recipient by a secure link; show the access code once."""
    req = views_queue.load_request(reference)
    form = send_link_form(posted=True)
    if not form.validate_on_submit():
        return _invalid(req, "recipient", form)
    return _run(reference, "recipient", form, lambda: recipient.send_link(
        req, _actor(), form.email.data, form.code_channel.data, expected_version=form.version.data,
        consent_confirmed=bool(form.consent_confirmed.data)))


def _link(req: RecordsRequest, link_uid: str) -> RecipientLink:
    link = recipient.link_of(req, link_uid)
    if link is None:
        abort(404)
    return link


@staff_bp.post("/queue/requests/<reference>/recipient-links/<link_uid>/revoke")
@require(Permission.REQUESTS_QUEUE)
def revoke(reference: str, link_uid: str) -> Response | tuple[str, int]:
    """Withdraw a link: it stops working at once."""
    req = views_queue.load_request(reference)
    link = _link(req, link_uid)
    form = RevokeLinkForm(prefix="revoke-link")
    if not form.validate_on_submit():
        return _invalid(req, "revoke-link", form)

    def change() -> None:
        recipient.revoke(req, link, _actor(), expected_version=form.version.data)
        flash(f"{req.human_ref}: the recipient's link is withdrawn.", "success")

    return _run(reference, "revoke-link", form, change)


@staff_bp.post("/queue/requests/<reference>/recipient-links/<link_uid>/resend")
@require(Permission.REQUESTS_QUEUE)
def resend(reference: str, link_uid: str) -> Response | tuple[str, int]:
    """A new link and a new code for the same disclosure; the old link stops working."""
    req = views_queue.load_request(reference)
    link = _link(req, link_uid)
    form = resend_link_form(posted=True)
    if not form.validate_on_submit():
        return _invalid(req, "resend", form)
    return _run(reference, "resend", form, lambda: recipient.resend(
        req, link, _actor(), form.code_channel.data, expected_version=form.version.data))


@staff_bp.after_app_request
def _letter_policy(response: Response) -> Response:
    """The printable cover letter styles itself and does nothing else (as stored letters do)."""
    if getattr(response, "code_letter", False) and request.endpoint in ("recipient_links.send",
                                                                         "recipient_links.resend"):
        response.headers["Content-Security-Policy"] = LETTER_CSP
    return response

