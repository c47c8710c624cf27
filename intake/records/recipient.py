"""A third party's copy, delivered to the recipient: a one-time secure link by e-mail, its access
code by another way.

When staff release records to the recipient of a third-party request (or to the professional a
patient designated), ``send_link`` records the delivery through ``services.record_delivery``, so
the disclosure gate decides and writes the ``Disclosure`` (with its cover letter and §2.32 notice)
at that moment, once. It then makes a ``RecipientLink`` and e-mails the link to the recipient in
the recipient's language. The access code never travels with the link: the clerk reads it out on
the telephone (shown to them once), or it is printed on a cover letter sent by post.

The recipient's page (``views_recipient``, public) asks for the code, then offers the files. The
link expires after ``RECORDS_DOWNLOAD_DAYS`` and gives ``RECORDS_DOWNLOAD_LIMIT`` downloads;
``RECIPIENT_CODE_ATTEMPTS`` wrong codes lock it. Only keyed hashes (HMAC-SHA256 with the blind-index
key) of the token and of the code are stored, and codes are compared in constant time. Every
download is audited and counted on the link: the delivery of that one disclosure, never a new one.

Like the other services these flush; the view commits once. Audit details carry ids and codes,
never the token, the code or the address.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import select, update

from intake.audit.services import record
from intake.database import affected_rows
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.mail import send_mail
from intake.records import common, consents, deadlines, disclosures, documents, services
from intake.records.common import OBJECT_TYPE, RequestInvalid, RequestRefused, check_version
from intake.records.labels import DELIVERY_METHOD_LABELS
from intake.records.models import (
    CodeChannel,
    DeliveryMethod,
    Disclosure,
    FileKind,
    RecipientLink,
    RecordsRequest,
    RequestDocument,
    RequestStatus,
    RequestType,
)
from intake.records.workflow import Actor, actor_for
from intake.security.crypto import keyring

# Access codes: read out on the telephone or typed from a letter, so no letters or digits that are
# easily confused (0/O, 1/I/L, 2/Z, 5/S, 8/B). 8 characters of 24: about 36 bits, behind a lock
# after a few wrong tries and a rate limit.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY3467"
CODE_LENGTH = 8
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
EMAIL_MAX = 254
_TOKEN_PURPOSE, _CODE_PURPOSE = "recipient-link-token", "recipient-link-code"


class LinkUnavailable(Exception):
    """The link cannot be used now; ``reason`` says why (a code of ``link_problem``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Sent:
    """A link just made: the secrets exist only here (and in the e-mail for the token)."""

    link: RecipientLink
    token: str
    code: str


# --- The pure rules ------------------------------------------------------------------------------

def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(typed: str | None) -> str:
    """What the recipient typed, as compared: capitals, without spaces and dashes ("abcd-efgh")."""
    return re.sub(r"[\s\-‐-―]+", "", typed or "").upper()[:32]


def show_code(code: str) -> str:
    """The code as read out or printed: two groups of four."""
    return f"{code[:4]}-{code[4:]}"


def link_problem(revoked: bool, locked: bool, expires_at: datetime, now: datetime, downloads: int,
                 max_downloads: int) -> str | None:
    """Why a recipient's link cannot be used now (a code), or None.

    45 CFR 164.312(a)(1) and (d) (access control, person authentication) and 42 CFR 2.16 (security
    of records): the copy is reachable only by who holds both the link and the code sent separately,
    only for a limited time and number of downloads, and not after the office withdrew it or too many
    wrong codes were tried."""
    if revoked:
        return "revoked"
    if locked:
        return "locked"
    if expires_at <= now:
        return "expired"
    if downloads >= max_downloads:
        return "used_up"
    return None


def problem_of(link: RecipientLink, now: datetime | None = None) -> str | None:
    return link_problem(link.revoked_at is not None, link.locked_at is not None, link.expires_at, now or utcnow(),
                        link.download_count, link.max_downloads)


def attempts_left(failed: int, limit: int) -> int:
    return max(0, limit - failed)


def _token_hash(token: str) -> str:
    return keyring().blind_index(_TOKEN_PURPOSE, token)


def _code_hash(uid: str, code: str) -> str:
    return keyring().blind_index(_CODE_PURPOSE, f"{uid}:{normalize_code(code)}")


def code_matches(link: RecipientLink, typed: str | None) -> bool:
    """Constant-time comparison of the keyed hash of what was typed with the stored one."""
    return hmac.compare_digest(_code_hash(link.uid, typed or ""), link.code_hash)


def _attempt_limit() -> int:
    return int(current_app.config["RECIPIENT_CODE_ATTEMPTS"])


# --- Sending -------------------------------------------------------------------------------------

def clean_email(email: str | None) -> str:
    """The recipient's address, checked; ``RequestInvalid({"email": ...})`` otherwise."""
    email = (email or "").strip()
    if not email or len(email) > EMAIL_MAX or any(ch.isspace() for ch in email):
        raise RequestInvalid({"email": _("Enter the recipient's e-mail address, like name@example.org.")})
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise RequestInvalid({"email": _("Enter the recipient's e-mail address, like name@example.org.")}) from exc
    return email


def _channel(value: str | None) -> CodeChannel:
    try:
        return CodeChannel(value or "")
    except ValueError as exc:
        raise RequestInvalid({"code_channel": _("Choose how the access code reaches the recipient.")}) from exc


def _records_to_send(req: RecordsRequest) -> list[RequestDocument]:
    return list(db.session.execute(select(RequestDocument).where(
        RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.RELEASED_RECORD,
        RequestDocument.content_purged_at.is_(None)).order_by(RequestDocument.id)).scalars())


def _cover_letter(req: RecordsRequest) -> RequestDocument | None:
    """The disclosure letter the gate stored (the §2.32 notice and the consent's scope)."""
    letters = db.session.execute(select(RequestDocument).where(
        RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.LETTER)
        .order_by(RequestDocument.id.desc())).scalars()
    return next((doc for doc in letters if (doc.filename or "").startswith("disclosure-")), None)


def _latest_disclosure(req: RecordsRequest) -> Disclosure | None:
    return db.session.execute(select(Disclosure).where(Disclosure.request_id == req.id)
                              .order_by(Disclosure.id.desc()).limit(1)).scalar_one_or_none()


def make_link(req: RecordsRequest, disclosure: Disclosure, actor: Any, email: str, channel: CodeChannel,
               document_ids: list[int], now: datetime) -> Sent:
    """Make a link to ``document_ids`` for ``disclosure`` and e-mail it (needs a request context for the
    link's address); the caller audits. ``send_link`` and ``resend`` are the ways in."""
    token, code = secrets.token_urlsafe(32), new_code()
    link = RecipientLink(request_id=req.id, disclosure_id=disclosure.id, token_hash=_token_hash(token),
                         code_hash="", code_channel=channel, recipient_email=email,
                         language=req.recipient_language or "en",
                         document_ids=",".join(str(i) for i in document_ids), created_by_id=actor.id, created_at=now,
                         expires_at=now + timedelta(days=int(current_app.config["RECORDS_DOWNLOAD_DAYS"])),
                         max_downloads=int(current_app.config["RECORDS_DOWNLOAD_LIMIT"]), download_count=0,
                         failed_attempts=0)
    db.session.add(link)
    db.session.flush()  # the uid (from new_uid) is set by now
    link.code_hash = _code_hash(link.uid, code)
    with common.recipient_language(req):
        send_mail("recipient_link", email, kind="recipient_link", link=url_for(
            "recipient_copy.open_link", token=token, _external=True), recipient=disclosure.recipient_name,
            human_ref=req.human_ref, expires_on=format_date(deadlines.facility_day(link.expires_at), "long"),
            downloads=link.max_downloads, by_phone=channel == CodeChannel.PHONE,
            notice=consents.notice_text(consents.notice_in_force(deadlines.facility_day(now)),
                                        req.recipient_language or "en"),
            records_email=current_app.config.get("RECORDS_EMAIL"))
    db.session.flush()
    return Sent(link, token, code)


def send_link(req: RecordsRequest, actor: Any, email: str | None, code_channel: str | None,
              expected_version: int | None = None, consent_confirmed: bool = False,
              now: datetime | None = None) -> Sent:
    """Release the records to the recipient: record the delivery (the gate decides and writes the
    Disclosure), then make the link and e-mail it. Raises ``RequestInvalid`` with nothing done."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff send a recipient's link")
    check_version(req, expected_version)
    errors: dict[str, str] = {}
    address = channel = None
    try:
        address = clean_email(email)
    except RequestInvalid as exc:
        errors.update(exc.errors)
    try:
        channel = _channel(code_channel)
    except RequestInvalid as exc:
        errors.update(exc.errors)
    records = _records_to_send(req)
    if not records:
        errors["documents"] = _("Add the records to send (as released records) before sending the link.")
    if errors:
        raise RequestInvalid(errors)
    assert address is not None and channel is not None
    now = now or utcnow()
    services.record_delivery(req, actor, DeliveryMethod.RECIPIENT_LINK, expected_version=expected_version, now=now,
                             consent_confirmed=consent_confirmed, recipient_link=True)
    disclosure = _latest_disclosure(req)
    if disclosure is None or disclosure.disclosed_at != now:
        # The gate logs every disclosure to someone other than the patient; a link is never made for
        # the patient's own access (that is the requester's download).
        raise RequestInvalid({"method": _("A secure link goes to a recipient other than the patient only.")})
    letter = _cover_letter(req)
    ids = [doc.id for doc in records] + ([letter.id] if letter is not None else [])
    sent = make_link(req, disclosure, actor, address, channel, ids, now)
    record("recipient_link.sent", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"link_id": sent.link.id, "disclosure_id": disclosure.id, "code_channel": channel.value,
                    "files": len(ids)})
    return sent


def links_of(req: RecordsRequest) -> list[RecipientLink]:
    """The request's links, newest first."""
    return list(db.session.execute(select(RecipientLink).where(RecipientLink.request_id == req.id)
                                   .order_by(RecipientLink.id.desc())).scalars())


def link_of(req: RecordsRequest, uid: str) -> RecipientLink | None:
    """The link with this uid *on this request*."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,32}", uid or ""):
        return None
    return db.session.execute(select(RecipientLink).where(
        RecipientLink.uid == uid, RecipientLink.request_id == req.id)).scalar_one_or_none()


def _staff_only(actor: Any, req: RecordsRequest) -> None:
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff manage a recipient's link")


def revoke(req: RecordsRequest, link: RecipientLink, actor: Any, expected_version: int | None = None,
           now: datetime | None = None) -> RecipientLink:
    """Withdraw a link: it stops working at once (the disclosure stays in the accounting)."""
    _staff_only(actor, req)
    check_version(req, expected_version)
    if link.revoked_at is not None:
        raise RequestInvalid({"link": _("This link is withdrawn already.")})
    link.revoked_at, link.revoked_by_id = now or utcnow(), actor.id
    record("recipient_link.revoked", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"link_id": link.id, "disclosure_id": link.disclosure_id})
    db.session.flush()
    return link


def resend(req: RecordsRequest, link: RecipientLink, actor: Any, code_channel: str | None,
           expected_version: int | None = None, now: datetime | None = None) -> Sent:
    """A new link and a new code for the same disclosure (the old link is withdrawn): for a lost
    e-mail, a locked or expired link. Refused when the disclosure could not be made today (the
    consent revoked or expired since)."""
    _staff_only(actor, req)
    check_version(req, expected_version)
    channel = _channel(code_channel)
    ruling = disclosures.check(req, DeliveryMethod.RECIPIENT_LINK, consent_confirmed=True)
    if not ruling.lawful:
        raise RequestInvalid({"link": disclosures.problem_text(req, ruling)})
    disclosure = db.session.get(Disclosure, link.disclosure_id)
    if disclosure is None:  # pragma: no cover - a foreign key keeps it
        raise RequestInvalid({"link": _("This link's disclosure is not found.")})
    now = now or utcnow()
    if link.revoked_at is None:
        link.revoked_at, link.revoked_by_id = now, actor.id
    ids = [int(i) for i in link.document_ids.split(",") if i]
    sent = make_link(req, disclosure, actor, link.recipient_email, channel, ids, now)
    record("recipient_link.resent", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"link_id": sent.link.id, "replaces": link.id, "disclosure_id": disclosure.id,
                    "code_channel": channel.value})
    return sent


# --- The recipient -------------------------------------------------------------------------------

def find_by_token(token: str | None) -> RecipientLink | None:
    """The link a token opens, or None (a malformed token is never looked up)."""
    if not TOKEN_RE.fullmatch(token or ""):
        return None
    return db.session.execute(select(RecipientLink).where(
        RecipientLink.token_hash == _token_hash(token or ""))).scalar_one_or_none()


def try_code(link: RecipientLink, typed: str | None, now: datetime | None = None) -> bool:
    """Check the access code. A wrong one is counted by one conditional UPDATE (two racing guesses
    both count) and locks the link at the limit; raises ``LinkUnavailable`` when the link cannot be
    used. Audited either way (without what was typed)."""
    now = now or utcnow()
    problem = problem_of(link, now)
    if problem is not None:
        raise LinkUnavailable(problem)
    if code_matches(link, typed):
        first = link.opened_at is None
        if first:
            link.opened_at = now
        record("recipient_link.opened", object_type=OBJECT_TYPE, object_id=link.request_id,
               details={"link_id": link.id, "first": first})
        db.session.flush()
        return True
    db.session.execute(update(RecipientLink).where(RecipientLink.id == link.id, RecipientLink.locked_at.is_(None))
                       .values(failed_attempts=RecipientLink.failed_attempts + 1)
                       .execution_options(synchronize_session=False))
    db.session.refresh(link)
    locked = link.failed_attempts >= _attempt_limit()
    if locked and link.locked_at is None:
        link.locked_at = now
    record("recipient_link.locked" if locked else "recipient_link.code_refused", object_type=OBJECT_TYPE,
           object_id=link.request_id, details={"link_id": link.id, "failed": link.failed_attempts})
    db.session.flush()
    if locked:
        raise LinkUnavailable("locked")
    return False


def files_of(link: RecipientLink) -> list[RequestDocument]:
    """The files the link gives (fixed when it was sent), oldest first."""
    ids = [int(i) for i in link.document_ids.split(",") if i]
    if not ids:
        return []
    return list(db.session.execute(select(RequestDocument).where(
        RequestDocument.id.in_(ids), RequestDocument.request_id == link.request_id)
        .order_by(RequestDocument.id)).scalars())


def file_of(link: RecipientLink, doc_uid: str) -> RequestDocument | None:
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,32}", doc_uid or ""):
        return None
    return next((doc for doc in files_of(link) if doc.uid == doc_uid), None)


def take_download(link: RecipientLink, doc: RequestDocument, now: datetime | None = None) -> bytes:
    """One download: counted by a single conditional UPDATE (the last one goes to exactly one of two
    racing downloads), audited as the delivery of the link's disclosure; raises ``LinkUnavailable``."""
    now = now or utcnow()
    taken = affected_rows(db.session.execute(
        update(RecipientLink)
        .where(RecipientLink.id == link.id, RecipientLink.revoked_at.is_(None), RecipientLink.locked_at.is_(None),
               RecipientLink.expires_at > now, RecipientLink.download_count < RecipientLink.max_downloads,
               RecipientLink.opened_at.is_not(None))
        .values(download_count=RecipientLink.download_count + 1, last_download_at=now)
        .execution_options(synchronize_session=False)))
    db.session.refresh(link)
    if taken != 1:
        raise LinkUnavailable(problem_of(link, now) or "used_up")
    try:
        data = documents.content_of(doc)
    except documents.DownloadRefused as exc:
        raise LinkUnavailable("purged") from exc
    record("recipient_link.downloaded", object_type=OBJECT_TYPE, object_id=link.request_id,
           details={"link_id": link.id, "disclosure_id": link.disclosure_id, "document_id": doc.id,
                    "count": link.download_count})
    return data


def cover_letter(req: RecordsRequest, sent: Sent) -> str:
    """The printable cover letter that carries the access code by post, in the recipient's language:
    what was sent (by the link, to which address, until when), the code, and the §2.32 notice."""
    disclosure = db.session.get(Disclosure, sent.link.disclosure_id)
    config = current_app.config
    with common.recipient_language(req) as language:
        notice = consents.notice_in_force(deadlines.facility_day(sent.link.created_at))
        template = current_app.jinja_env.get_template("records/letters/recipient_cover.html")
        return template.render(
            lang=language, title=_("Your access code for the records sent to you"), facility=config["FACILITY_NAME"],
            records_email=config.get("RECORDS_EMAIL"), helpline=config.get("HELPLINE_NUMBER"),
            letter_date=format_date(deadlines.today(), "long"), human_ref=req.human_ref,
            patient_name=req.patient_name, addressee=disclosure.recipient_name if disclosure else None,
            address_lines=[line.strip() for line in ((disclosure.recipient_address if disclosure else "") or "")
                           .splitlines() if line.strip()],
            description=disclosure.description if disclosure else "", email=sent.link.recipient_email,
            files=[doc.filename for doc in files_of(sent.link)], code=show_code(sent.code),
            expires_on=format_date(deadlines.facility_day(sent.link.expires_at), "long"),
            downloads=sent.link.max_downloads, notice_lines=consents.notice_text(notice, language),
            notice_citation=notice.citation)


# --- The pages -----------------------------------------------------------------------------------

def status_of(link: RecipientLink, now: datetime | None = None) -> str:
    """One word for staff: sent, opened, downloaded, or why it no longer works."""
    problem = problem_of(link, now)
    if problem is not None:
        return problem
    if link.download_count:
        return "downloaded"
    return "opened" if link.opened_at is not None else "sent"


STATUS_LABELS = {
    "sent": "Sent; not opened yet", "opened": "Opened with the code; nothing downloaded yet",
    "downloaded": "Downloaded", "revoked": "Withdrawn", "locked": "Locked after too many wrong codes",
    "expired": "Expired", "used_up": "Every download used",
}


def page_context(req: Any, viewer: Any, staff: bool) -> dict[str, Any]:
    """The recipient's copy on the request's page: every link with its state for staff; for the
    requester only that the copy was sent, to whom, when and how (never the copy itself)."""
    context: dict[str, Any] = {"recipient_links": [], "recipient_sent": None, "recipient_offered": False}
    if req.request_type != RequestType.THIRD_PARTY:
        return context
    links = links_of(req)
    if not staff:
        if links:
            first = links[-1]
            disclosure = db.session.get(Disclosure, first.disclosure_id)
            context["recipient_sent"] = {
                "to": disclosure.recipient_name if disclosure is not None else "",
                "on": deadlines.facility_day(first.created_at),
                "how": DELIVERY_METHOD_LABELS[DeliveryMethod.RECIPIENT_LINK]}
        return context
    now = utcnow()
    rows = []
    for link in links:
        status = status_of(link, now)
        rows.append({"link": link, "status": status, "status_label": STATUS_LABELS[status]})
    context.update(recipient_links=rows, recipient_attempt_limit=_attempt_limit(),
                   recipient_offered=req.delivered_at is None and req.status == RequestStatus.IN_REVIEW,
                   recipient_files=len(_records_to_send(req)), recipient_channel_labels=CHANNEL_LABELS)
    return context


CHANNEL_LABELS = {CodeChannel.PHONE: "Telephone: I read the code out to the recipient",
                  CodeChannel.POST: "Post: the code is printed on a cover letter"}
