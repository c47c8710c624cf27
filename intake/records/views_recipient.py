"""A third party's copy through HTTP: the recipient's public page (blueprint ``recipient_copy``).
Staff send, withdraw and re-send the link from the request's page (``intake.records.page.recipient_links``).

The recipient's page, ``/copy/<token>``, needs no account: the link and the access code (sent
separately) are the credentials. A GET only shows the code form (mail scanners fetch links and must
change nothing); the code is posted (rate-limited per address, and the link locks after
``RECIPIENT_CODE_ATTEMPTS`` wrong codes); a right code marks this browser's session for that link,
and the files are downloaded from the page while the link lasts. An unknown token is 404, a link that
no longer works 410, each with a page that says what to do. The token is in the path, so the log
redaction replaces it (the route's argument is called ``token``; ``log_redaction.TOKEN_PREFIXES``
names ``/copy/`` for gunicorn's master too). The page is in the recipient's language (the one chosen
for them on the request), unless they chose another with the site's language switch.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from intake.db_types import utcnow
from intake.extensions import db
from intake.i18n import COOKIE as LANGUAGE_COOKIE
from intake.i18n import supported
from intake.records import consents, deadlines, documents, recipient
from intake.records.labels import FILE_KIND_LABELS
from intake.records.models import RecipientLink, RecordsRequest
from intake.records.recipient_forms import AccessCodeForm

bp = Blueprint("recipient_copy", __name__)

SESSION_KEY = "recipient_copy"  # {link uid: when the right code was typed (ISO)}
OPEN_FOR = timedelta(minutes=30)  # how long a right code lets this browser download
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
