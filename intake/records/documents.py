"""Records requests: documents on a request, their release to the requester and their download.

A document's bytes are sealed in ``DocumentContent`` (base64 inside the encrypted envelope, one
row per document), so listing documents never reads them. What a file *is* is decided from its
first bytes (PDF, PNG, JPEG), never from its name or the browser's word; the name shown is cleaned
and the only identifier anywhere is the random ``uid``.

A released document can be downloaded by the requester until it expires and at most
``max_downloads`` times; the count is taken by one conditional UPDATE, so two downloads racing
for the last one cannot both win. Every upload, release, revocation and download is audited with
codes and numbers only (never a file name).

Like the other services these change state, write the timeline and the audit trail and
``flush()``; the view commits once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from intake.audit.models import AuditEvent
from intake.audit.services import record
from intake.database import affected_rows
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, can
from intake.records import disclosures
from intake.records.common import (
    OBJECT_TYPE,
    RequestInvalid,
    RequestRefused,
    add_event,
    check_version,
    notify_requester,
    ready_told,
)
from intake.records.labels import DELIVERY_METHOD_LABELS, FILE_KIND_LABELS
from intake.records.models import (
    DeliveryMethod,
    DocumentContent,
    EventCode,
    EventKind,
    FileKind,
    RecordsRequest,
    RequestDocument,
    RequestStatus,
    Visibility,
)
from intake.records.workflow import Actor, Email, actor_for, one_mail_per_event
from intake.users.services import emails_by_id

FILENAME_MAX = 120
LATEST_DOWNLOADS = 10
# The first bytes of each allowed type, and what the file is served as.
SIGNATURES = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)
EXTENSIONS = {content_type: ext for _, content_type, ext in SIGNATURES} | {"text/html": ".html"}
REQUESTER_KINDS: tuple[FileKind, ...] = (FileKind.PHOTO_ID, FileKind.PROOF_OF_AUTHORITY, FileKind.REQUESTER_OTHER)
STAFF_KINDS: tuple[FileKind, ...] = (FileKind.RELEASED_RECORD, FileKind.INTERNAL)
RELEASABLE_KINDS = (FileKind.RELEASED_RECORD, FileKind.LETTER)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class DownloadRefused(Exception):
    """The requester may not download this document now; ``reason`` says why (a code)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- Checking what is uploaded -----------------------------------------------------------------

def upload_limit() -> int:
    return int(current_app.config["RECORDS_UPLOAD_MAX_BYTES"])


def sniff(data: bytes) -> str | None:
    """The content type of an allowed file, from its first bytes; None for anything else."""
    for magic, content_type, _ext in SIGNATURES:
        if data.startswith(magic):
            return content_type
    return None


def clean_filename(name: str | None) -> str:
    """The name shown for a file: no folders, no control or invisible formatting characters
    (which could disguise ``exe.pdf`` as ``fdp.exe``), at most 120 characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    name = " ".join(_CONTROL.sub("", name).split()).strip(" .")
    if len(name) > FILENAME_MAX:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and 0 < len(ext) <= 8 else ""
        name = name[: FILENAME_MAX - len(ext) - (1 if ext else 0)].rstrip(" .") + ("." + ext if ext else "")
    return name or _("document")


def ascii_filename(doc: RequestDocument) -> str:
    """A name any browser saves safely: ASCII letters, digits, dot, dash and underscore, ending in
    the extension of the type actually stored."""
    stem = clean_filename(doc.filename).rsplit(".", 1)[0]
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or "document"
    return stem + EXTENSIONS.get(doc.content_type, "")


def content_disposition(doc: RequestDocument) -> str:
    """``attachment`` (never inline) with the ASCII name and the UTF-8 one (RFC 5987)."""
    fallback = ascii_filename(doc)
    name = clean_filename(doc.filename)
    ext = EXTENSIONS.get(doc.content_type, "")
    if ext and not name.lower().endswith(ext):
        name = name.rsplit(".", 1)[0] + ext
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# --- Storing -----------------------------------------------------------------------------------

def store_document(req: RecordsRequest, kind: FileKind | str, filename: str | None, data: bytes, actor: Any,
                   visibility: Visibility, content_type: str | None = None) -> RequestDocument:
    """Store one file on the request (sealed), with a timeline event and an audit event.

    The type is decided from the content; ``content_type`` is only for trusted content the app
    made itself (letters), which skips the sniffing, the upload cap and the timeline event.
    Raises ``RequestInvalid({"file": ...})`` for an empty, oversized or disallowed file, with
    nothing stored.
    """
    kind = FileKind(kind)
    trusted = content_type is not None
    if not data:
        raise RequestInvalid({"file": _("That file is empty. Choose the file again.")})
    if content_type is None:
        limit = upload_limit()
        if len(data) > limit:
            raise RequestInvalid({"file": _("That file is too large: the limit is %(mb)s MB.", mb=megabytes(limit))})
        content_type = sniff(data)
        if content_type is None:
            raise RequestInvalid({"file": _(
                "Only PDF, PNG and JPEG files can be uploaded, and this file is none of them (whatever its name "
                "says). Scan or save it as a PDF and try again.")})
    doc = RequestDocument(request_id=req.id, kind=kind, visibility=visibility, filename=clean_filename(filename),
                          content_type=content_type[:64], size_bytes=len(data),
                          sha256=hashlib.sha256(data).hexdigest(), uploaded_by_id=getattr(actor, "id", None))
    db.session.add(doc)
    db.session.flush()
    db.session.add(DocumentContent(id=doc.id, data=base64.b64encode(data).decode("ascii")))
    if trusted is False:
        # Uploads appear on the timeline; a letter the app wrote belongs to the move that made it,
        # whose own event already says what happened.
        from_requester = req.owner_id is not None and getattr(actor, "id", None) == req.owner_id
        add_event(req, EventKind.DOCUMENT, visibility, actor,
                  code=EventCode.DOCUMENT_FROM_REQUESTER if from_requester else EventCode.DOCUMENT_ADDED,
                  params={"kind": FileKind(kind).value})
    record("document.uploaded", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"document_id": doc.id, "kind": kind.value, "size": len(data)})
    db.session.flush()
    return doc


def megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):g}"


def upload(req: RecordsRequest, actor: Any, kind: str, filename: str | None, data: bytes) -> RequestDocument:
    """An upload through a page: the requester sends ID or papers asked for while the request is
    open; staff add released records or working papers."""
    who = actor_for(actor, req)
    if who is Actor.REQUESTER:
        if not req.is_open:
            raise RequestInvalid({"file": _("This request is closed, so it takes no more documents.")})
        allowed, visibility = REQUESTER_KINDS, Visibility.REQUESTER
    elif who is Actor.STAFF:
        allowed, visibility = STAFF_KINDS, Visibility.INTERNAL
    else:
        raise RequestRefused("not allowed to add documents to this request")
    if kind not in {k.value for k in allowed}:
        raise RequestInvalid({"kind": _("Choose what kind of document this is.")})
    return store_document(req, kind, filename, data, actor, visibility)


# --- Finding -----------------------------------------------------------------------------------

def documents_of(req: RecordsRequest, include_internal: bool) -> list[RequestDocument]:
    """The request's documents, oldest first (never their contents)."""
    query = select(RequestDocument).where(RequestDocument.request_id == req.id)
    if not include_internal:
        query = query.where(RequestDocument.visibility == Visibility.REQUESTER)
    return list(db.session.execute(query.order_by(RequestDocument.id)).scalars())


def document_of(req: RecordsRequest, uid: str) -> RequestDocument | None:
    """The document with this uid *on this request*; one from another request is not found."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,32}", uid or ""):
        return None
    return db.session.execute(select(RequestDocument).where(
        RequestDocument.uid == uid, RequestDocument.request_id == req.id)).scalar_one_or_none()


def content_of(doc: RequestDocument) -> bytes:
    """The document's bytes; ``DownloadRefused("purged")`` once retention deleted them."""
    content = db.session.get(DocumentContent, doc.id)
    if content is None:
        raise DownloadRefused("purged")
    return base64.b64decode(content.data)


def availability(doc: RequestDocument, now: datetime | None = None) -> str | None:
    """Why a released document cannot be downloaded now (a code), or None when it can."""
    now = now or utcnow()
    if doc.content_purged_at is not None:
        return "purged"
    if doc.released_at is None:
        return "not_released"
    if doc.revoked_at is not None:
        return "revoked"
    if doc.expires_at is not None and doc.expires_at <= now:
        return "expired"
    if doc.max_downloads is not None and doc.download_count >= doc.max_downloads:
        return "used_up"
    return None


# --- Release -----------------------------------------------------------------------------------

def _staff_only(actor: Any, req: RecordsRequest) -> None:
    if actor_for(actor, req) is not Actor.STAFF:
        raise RequestRefused("only staff release documents")


def release(req: RecordsRequest, doc: RequestDocument, actor: Any, expected_version: int | None = None,
            now: datetime | None = None) -> RequestDocument:
    """Let the requester download ``doc`` for ``RECORDS_DOWNLOAD_DAYS`` days, at most
    ``RECORDS_DOWNLOAD_LIMIT`` times; they read it on their page and get an e-mail (no content)."""
    _staff_only(actor, req)
    check_version(req, expected_version)
    if doc.kind not in RELEASABLE_KINDS:
        raise RequestInvalid({"document": _("Only released records and letters can be given to the requester.")})
    if doc.content_purged_at is not None:
        raise RequestInvalid({"document": _("This file's contents were deleted under the retention policy. Add the "
                                            "records again to release them.")})
    if doc.kind == FileKind.RELEASED_RECORD:
        # Records released for the requester's download leave through the disclosure gate like any
        # other way: only as the patient's own access (a third party's and a designated professional's
        # copies go to them, by post, fax or hand-over).
        ruling = disclosures.check(req, DeliveryMethod.DOWNLOAD)
        if not ruling.lawful:
            raise RequestInvalid({"document": _("Verify the requester's identity before releasing records.")
                                  if ruling.problem == "not_verified" else disclosures.problem_text(req, ruling)})
    now = now or utcnow()
    if availability(doc, now) is None:
        raise RequestInvalid({"document": _("This document is already available to the requester.")})
    days = int(current_app.config["RECORDS_DOWNLOAD_DAYS"])
    email = one_mail_per_event(Email.READY, None, ready_told(req))  # before this release's own audit event
    doc.released_at, doc.revoked_at = now, None
    doc.expires_at = now + timedelta(days=days)
    doc.max_downloads = int(current_app.config["RECORDS_DOWNLOAD_LIMIT"])
    doc.download_count = 0
    doc.visibility = Visibility.REQUESTER
    add_event(req, EventKind.DOCUMENT, Visibility.REQUESTER, actor, code=EventCode.DOCUMENT_RELEASED,
              params={"kind": doc.kind.value, "days": days, "n": doc.max_downloads})
    record("document.released", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"document_id": doc.id, "kind": doc.kind.value, "days": days, "max_downloads": doc.max_downloads})
    if email is not None:
        notify_requester(req, None, email)
    db.session.flush()
    return doc


def revoke(req: RecordsRequest, doc: RequestDocument, actor: Any, expected_version: int | None = None,
           now: datetime | None = None) -> RequestDocument:
    """Withdraw a released document: downloads stop at once."""
    _staff_only(actor, req)
    check_version(req, expected_version)
    if doc.released_at is None or doc.revoked_at is not None:
        raise RequestInvalid({"document": _("This document is not released, so there is nothing to withdraw.")})
    doc.revoked_at = now or utcnow()
    add_event(req, EventKind.DOCUMENT, Visibility.REQUESTER, actor, code=EventCode.DOCUMENT_REVOKED,
              params={"kind": doc.kind.value})
    record("document.revoked", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"document_id": doc.id, "kind": doc.kind.value})
    db.session.flush()
    return doc


# --- Download ----------------------------------------------------------------------------------

def take_download(req: RecordsRequest, doc: RequestDocument, actor: Any, now: datetime | None = None) -> bytes:
    """The requester downloads a released document: one of its downloads is taken by a single
    conditional UPDATE (so the last one goes to exactly one of two racing downloads), audited,
    and the bytes returned. Raises ``DownloadRefused`` with the reason otherwise."""
    if actor_for(actor, req) is not Actor.REQUESTER:
        raise RequestRefused("only the requester downloads through the portal")
    if doc.visibility != Visibility.REQUESTER:
        raise DownloadRefused("not_found")
    if doc.kind in REQUESTER_KINDS:
        raise DownloadRefused("own_upload")
    now = now or utcnow()
    taken = affected_rows(db.session.execute(
        update(RequestDocument)
        .where(RequestDocument.id == doc.id, RequestDocument.released_at.is_not(None),
               RequestDocument.revoked_at.is_(None), RequestDocument.content_purged_at.is_(None),
               or_(RequestDocument.expires_at.is_(None), RequestDocument.expires_at > now),
               or_(RequestDocument.max_downloads.is_(None),
                   RequestDocument.download_count < RequestDocument.max_downloads))
        .values(download_count=RequestDocument.download_count + 1)
        .execution_options(synchronize_session=False)
    ))
    db.session.refresh(doc)
    if taken != 1:
        raise DownloadRefused(availability(doc, now) or "used_up")
    record("document.downloaded", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"document_id": doc.id, "by": "requester", "count": doc.download_count})
    return content_of(doc)


def staff_download(req: RecordsRequest, doc: RequestDocument, actor: Any) -> bytes:
    """Staff open any document of the request (no counter), audited. Raises
    ``DownloadRefused("purged")`` when retention deleted its contents."""
    _staff_only(actor, req)
    if doc.content_purged_at is not None:
        raise DownloadRefused("purged")
    record("document.downloaded", actor=actor, object_type=OBJECT_TYPE, object_id=req.id,
           details={"document_id": doc.id, "by": "staff"})
    return content_of(doc)


@dataclass(frozen=True)
class Download:
    occurred_at: datetime
    document_id: int | None
    actor_id: int | None
    actor_role: str | None
    by: str | None


def latest_downloads(req: RecordsRequest, limit: int = LATEST_DOWNLOADS) -> list[Download]:
    """The latest downloads of the request's documents, from the audit trail (newest first)."""
    rows = db.session.execute(
        select(AuditEvent.occurred_at, AuditEvent.actor_id, AuditEvent.actor_role, AuditEvent.details)
        .where(AuditEvent.object_type == OBJECT_TYPE, AuditEvent.object_id == str(req.id),
               AuditEvent.action == "document.downloaded")
        .order_by(AuditEvent.seq.desc()).limit(limit)).all()
    result = []
    for row in rows:
        details = json.loads(row.details or "{}")
        result.append(Download(row.occurred_at, details.get("document_id"), row.actor_id, row.actor_role,
                               details.get("by")))
    return result


# --- The page ----------------------------------------------------------------------------------

def page_context(req: Any, viewer: Any, staff: bool) -> dict[str, Any]:
    """What the request's page (the requester's when ``staff`` is false, the queue's otherwise)
    needs from this module, as template variables (its forms are the view's: ``page_forms``)."""
    docs = documents_of(req, include_internal=staff)
    context: dict[str, Any] = {
        "documents": docs, "file_kind_labels": FILE_KIND_LABELS, "delivery_method_labels": DELIVERY_METHOD_LABELS,
        "document_problems": {d.id: availability(d) for d in docs}, "requester_kinds": REQUESTER_KINDS,
        "upload_limit_mb": megabytes(upload_limit()),
        "download_days": int(current_app.config["RECORDS_DOWNLOAD_DAYS"]),
        "download_limit": int(current_app.config["RECORDS_DOWNLOAD_LIMIT"]),
    }
    if not staff:
        context["may_upload"] = req.is_open
        return context
    context.update(
        delivery_offered=req.status == RequestStatus.IN_REVIEW,
        releasable_kinds=RELEASABLE_KINDS,
        downloads=None,
    )
    if can(viewer, Permission.AUDIT_VIEW):
        # A download is of one of the request's documents (their rows are never deleted, a purge
        # empties their contents only): a request without any has none to look for. The query reads
        # the request's whole trail when it finds fewer than its limit (the index ends in ``seq``, not
        # the action), and every view adds to that trail: ~10 ms of a staff view of a request seen
        # a few thousand times (make profile PAGE=staff_request).
        downloads = latest_downloads(req) if docs else []
        context["downloads"] = downloads
        context["download_people"] = emails_by_id([d.actor_id for d in downloads])
        context["document_names"] = {d.id: d.filename for d in docs}
    return context
