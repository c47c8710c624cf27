"""Documents on records requests through HTTP and the services: uploads checked by content and
size, who may reach which route, release, download limits (count, expiry, withdrawal, a race for
the last download), download headers, audit without file names, the encrypted bytes, recording
the delivery, and key rotation in small batches for document contents."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import event, select, text

from intake.audit.models import AuditEvent
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import common, documents, services
from intake.records.models import (
    DocumentContent,
    EventKind,
    FileKind,
    RecordsRequest,
    RequestDocument,
    RequestEvent,
    Visibility,
)
from intake.records.services import MoveInput
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, csrf_token, login, make_app

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% secret-clinical-canary\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 40
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 40
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
CANARY_NAME = "Jordan-Example-discharge.pdf"


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "other": make_user(Role.REQUESTER),
            "admin": make_user(FULL_ADMIN), "operator": make_user(Role.OPERATOR)}


def _load(ref: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()


def _user(user: User) -> User:
    return db.session.get(User, user.id)


def version(app, ref: str) -> int:
    with app.app_context():
        return _load(ref).version


def verify(app, ref: str, admin: User, archive_patient) -> None:
    """Identity verified against the archive: the request is in review."""
    pid = archive_patient()
    with app.app_context():
        req = _load(ref)
        services.transition(req, "verifying", _user(admin))
        services.transition(req, "in_review", _user(admin), MoveInput(verification_method="photo_id",
                                                                      archived_patient_id=pid))
        db.session.commit()


def docs(app, ref: str, letters: bool = False) -> list[RequestDocument]:
    """The request's documents, oldest first; without the letters the workflow stores by itself."""
    with app.app_context():
        query = select(RequestDocument).where(RequestDocument.request_id == _load(ref).id)
        if not letters:
            query = query.where(RequestDocument.kind != FileKind.LETTER)
        rows = list(db.session.execute(query.order_by(RequestDocument.id)).scalars())
        for row in rows:
            db.session.expunge(row)
        return rows


def audit_rows(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                       .order_by(AuditEvent.seq)).scalars())
        for row in rows:
            db.session.expunge(row)
        return [row for row in rows if '"kind":"letter"' not in row.details]  # letters the workflow stores


def portal_upload(client, ref: str, data: bytes | None, kind: str = "photo_id", filename: str = "id.pdf",
                  csrf: bool = True):
    form: dict = {"upload-kind": kind}
    if data is not None:
        from io import BytesIO
        form["upload-file"] = (BytesIO(data), filename)
    if csrf:
        form["upload-csrf_token"] = csrf_token(client, "/account")
    return client.post(f"/my/requests/{ref}/documents", data=form, content_type="multipart/form-data")


def staff_upload(client, app, ref: str, data: bytes, kind: str = "released_record", filename: str = "records.pdf"):
    from io import BytesIO
    return client.post(f"/queue/requests/{ref}/documents", content_type="multipart/form-data", data={
        "upload-kind": kind, "upload-file": (BytesIO(data), filename), "upload-version": str(version(app, ref)),
        "upload-csrf_token": csrf_token(client, "/account")})


def doc_action(client, app, ref: str, uid: str, action: str, ver: int | None = None):
    return client.post(f"/queue/requests/{ref}/documents/{uid}/{action}", data={
        "version": str(ver if ver is not None else version(app, ref)), "csrf_token": csrf_token(client, "/account")})


def record_delivery(client, app, ref: str, method: str, note: str = "", ver: int | None = None):
    return client.post(f"/queue/requests/{ref}/delivery", data={
        "delivery-method": method, "delivery-note": note,
        "delivery-version": str(ver if ver is not None else version(app, ref)),
        "delivery-csrf_token": csrf_token(client, "/account")})


def signed_in(app, user: User):
    fresh = app.test_client()
    assert login(fresh, user.email).status_code == 302
    return fresh


@pytest.fixture()
def released(app, people, make_request, archive_patient):
    """A verified request with one released PDF; returns (reference, document uid, requester client, admin client)."""
    ref = make_request(people["requester"])
    verify(app, ref, people["admin"], archive_patient)
    admin = signed_in(app, people["admin"])
    assert staff_upload(admin, app, ref, PDF, filename=CANARY_NAME).status_code == 303
    uid = docs(app, ref)[0].uid
    assert doc_action(admin, app, ref, uid, "release").status_code == 302
    return ref, uid, signed_in(app, people["requester"]), admin


# --- Uploads: what is accepted ------------------------------------------------------------------

@pytest.mark.parametrize("data,content_type,name", [
    (PDF, "application/pdf", "scan.pdf"), (PNG, "image/png", "photo.png"), (JPEG, "image/jpeg", "photo.jpeg")])
def test_each_allowed_type_is_accepted_and_stored_encrypted(app, client, people, make_request, data, content_type,
                                                           name):
    ref = make_request(people["requester"])
    login(client, people["requester"].email)
    response = portal_upload(client, ref, data, filename=name)
    assert response.status_code == 303
    assert "document was received" in client.get(response.headers["Location"]).get_data(as_text=True)
    [doc] = docs(app, ref)
    assert (doc.kind, doc.visibility, doc.content_type) == (FileKind.PHOTO_ID, Visibility.REQUESTER, content_type)
    assert doc.size_bytes == len(data) and doc.sha256 == hashlib.sha256(data).hexdigest()
    assert len(doc.uid) >= 22 and doc.filename == name
    with app.app_context():
        raw = db.session.execute(text("SELECT data FROM request_document_contents WHERE id = :i"),
                                 {"i": doc.id}).scalar_one()
        raw_name = db.session.execute(text("SELECT filename FROM request_documents WHERE id = :i"),
                                      {"i": doc.id}).scalar_one()
        assert raw.startswith("t2:") and base64.b64encode(data).decode() not in raw
        assert name not in raw_name
        assert documents.content_of(db.session.get(RequestDocument, doc.id)) == data
        event_kinds = [e.kind for e in db.session.execute(select(RequestEvent).where(
            RequestEvent.request_id == _load(ref).id)).scalars()]
        assert EventKind.DOCUMENT in event_kinds
    [audit] = audit_rows(app, "document.uploaded")
    assert '"kind":"photo_id"' in audit.details and f'"size":{len(data)}' in audit.details
    assert name not in audit.details
    page = client.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert name in page and "cannot be downloaded again" in page


@pytest.mark.parametrize("data,name,message", [
    (EXE, "invoice.pdf", "Only PDF, PNG and JPEG"),
    (HTML, "id.png", "Only PDF, PNG and JPEG"),
    (b"GIF89a" + b"\x00" * 20, "id.gif", "Only PDF, PNG and JPEG"),
    (b"", "empty.pdf", "Choose the file"),
])
def test_other_content_is_refused_whatever_its_name(app, client, people, make_request, data, name, message):
    ref = make_request(people["requester"])
    login(client, people["requester"].email)
    response = portal_upload(client, ref, data, filename=name)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert docs(app, ref) == [] and audit_rows(app, "document.uploaded") == []


def test_an_empty_file_is_refused_by_the_service_too(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        with pytest.raises(common.RequestInvalid, match="file"):
            documents.store_document(_load(ref), FileKind.PHOTO_ID, "x.pdf", b"", _user(people["requester"]),
                                     Visibility.REQUESTER)


def test_an_upload_just_over_the_cap_is_413_and_nothing_is_stored(app, client, people, make_request):
    app.config["RECORDS_UPLOAD_MAX_BYTES"] = 2048
    ref = make_request(people["requester"])
    login(client, people["requester"].email)
    response = portal_upload(client, ref, PDF + b"0" * (2049 - len(PDF)))
    assert response.status_code == 413
    assert "too large: the limit is" in response.get_data(as_text=True)
    assert docs(app, ref) == []
    exactly = portal_upload(client, ref, PDF + b"0" * (2048 - len(PDF)))
    assert exactly.status_code == 303 and len(docs(app, ref)) == 1


def test_a_huge_body_gets_the_413_page_without_being_read(app, client, people, make_request):
    app.config["RECORDS_UPLOAD_MAX_BYTES"] = 2048
    ref = make_request(people["requester"])
    login(client, people["requester"].email)
    response = portal_upload(client, ref, PDF + b"0" * 300_000)
    assert response.status_code == 413
    assert "That was too large" in response.get_data(as_text=True)
    assert docs(app, ref) == []


def test_the_upload_routes_alone_take_more_than_the_app_wide_limit(app, client, people, make_request):
    """A 2 MB scan passes on the upload route; the same body elsewhere is refused."""
    ref = make_request(people["requester"])
    login(client, people["requester"].email)
    big = PDF + b"0" * (2 * 1024 * 1024)
    assert portal_upload(client, ref, big).status_code == 303
    assert docs(app, ref)[0].size_bytes == len(big)
    from io import BytesIO
    elsewhere = client.post(f"/my/requests/{ref}/messages", content_type="multipart/form-data",
                            data={"body": "hello", "f": (BytesIO(big), "x.pdf"),
                                  "csrf_token": csrf_token(client, "/account")})
    assert elsewhere.status_code == 413


def test_hostile_file_names_are_cleaned_and_escaped(app, client, people, make_request):
    ref = make_request(people["requester"])
    login(client, people["requester"].email)
    hostile = "..\\..\\etc/passwd/<img src=x onerror=alert(1)>\x07\u202egpj.exe" + "a" * 300 + ".pdf"
    assert portal_upload(client, ref, PDF, filename=hostile).status_code == 303
    [doc] = docs(app, ref)
    assert doc.filename.startswith("<img src=x onerror=alert(1)>gpj.exe")
    assert not any(bad in doc.filename for bad in ("/", "\\", "\u202e", "\x07"))
    assert len(doc.filename) <= 120 and doc.filename.endswith(".pdf")
    page = client.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


@pytest.mark.parametrize("kind,message", [
    ("released_record", "Choose what kind of document"), ("nonsense'; DROP TABLE users;--", "Choose what kind"),
    ("", "Choose what kind of document")])
def test_a_requester_cannot_choose_a_staff_or_forged_kind(app, client, people, make_request, kind, message):
    ref = make_request(people["requester"])
    login(client, people["requester"].email)
    response = portal_upload(client, ref, PDF, kind=kind)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert docs(app, ref) == []


def test_missing_file_and_missing_csrf(app, client, people, make_request):
    ref = make_request(people["requester"])
    login(client, people["requester"].email)
    assert portal_upload(client, ref, None).status_code == 400
    assert portal_upload(client, ref, PDF, csrf=False).status_code == 400
    assert docs(app, ref) == []


def test_a_closed_request_takes_no_uploads(app, client, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        services.transition(_load(ref), "withdrawn", _user(people["requester"]))
        db.session.commit()
    login(client, people["requester"].email)
    response = portal_upload(client, ref, PDF)
    assert response.status_code == 400 and "closed" in response.get_data(as_text=True)
    assert docs(app, ref) == []


# --- Who reaches what ---------------------------------------------------------------------------

def test_access_on_every_document_route(app, people, make_request, released):
    ref, uid, requester, admin = released
    other, operator = signed_in(app, people["other"]), signed_in(app, people["operator"])
    mine = f"/my/requests/{ref}/documents/{uid}"
    queue = f"/queue/requests/{ref}/documents/{uid}"
    assert requester.get(mine).status_code == 200
    assert other.get(mine).status_code == 404
    assert operator.get(mine).status_code == 403 and admin.get(mine).status_code == 403
    assert admin.get(queue).status_code == 200
    assert requester.get(queue).status_code == 403 and operator.get(queue).status_code == 403
    assert portal_upload(other, ref, PDF).status_code == 404
    assert staff_upload(operator, app, ref, PDF).status_code == 403
    assert staff_upload(requester, app, ref, PDF).status_code == 403
    for action in ("release", "revoke"):
        assert doc_action(requester, app, ref, uid, action).status_code == 403
        assert doc_action(operator, app, ref, uid, action).status_code == 403
    assert record_delivery(requester, app, ref, "mail").status_code == 403
    # Guessed and malformed uids, and a uid from another request, are all simply not found.
    second = make_request(people["requester"])
    assert requester.get(f"/my/requests/{second}/documents/{uid}").status_code == 404
    assert admin.get(f"/queue/requests/{second}/documents/{uid}").status_code == 404
    assert doc_action(admin, app, second, uid, "revoke").status_code == 404
    for guess in ("0" * 32, "../../etc/passwd", uid.upper()):
        assert requester.get(f"/my/requests/{ref}/documents/{guess}").status_code == 404
        assert admin.get(f"/queue/requests/{ref}/documents/{guess}").status_code == 404


def test_requester_cannot_download_own_upload_or_internal_papers(app, client, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    requester = signed_in(app, people["requester"])
    admin = signed_in(app, people["admin"])
    portal_upload(requester, ref, PNG, filename="me.png")
    staff_upload(admin, app, ref, PDF, kind="internal", filename="notes.pdf")
    staff_upload(admin, app, ref, PDF, kind="released_record", filename="unreleased.pdf")
    own, internal, unreleased = docs(app, ref)
    response = requester.get(f"/my/requests/{ref}/documents/{own.uid}")
    assert response.status_code == 403 and "cannot be downloaded again" in response.get_data(as_text=True)
    assert requester.get(f"/my/requests/{ref}/documents/{internal.uid}").status_code == 404
    assert requester.get(f"/my/requests/{ref}/documents/{unreleased.uid}").status_code == 404
    page = requester.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert "notes.pdf" not in page and "unreleased.pdf" not in page
    # Staff open what the requester sent.
    staff = admin.get(f"/queue/requests/{ref}/documents/{own.uid}")
    assert staff.status_code == 200 and staff.data == PNG and staff.headers["Content-Type"] == "image/png"
    # Internal papers cannot be released.
    assert doc_action(admin, app, ref, internal.uid, "release").status_code == 400


# --- Release and download -----------------------------------------------------------------------

def test_release_needs_a_verified_identity(app, people, make_request):
    ref = make_request(people["requester"])
    admin = signed_in(app, people["admin"])
    staff_upload(admin, app, ref, PDF)
    response = doc_action(admin, app, ref, docs(app, ref)[0].uid, "release")
    assert response.status_code == 400 and "Verify the requester" in response.get_data(as_text=True)
    assert docs(app, ref)[0].released_at is None


def test_release_then_download_with_safe_headers(app, people, released):
    ref, uid, requester, admin = released
    [doc] = docs(app, ref)
    assert doc.max_downloads == 5 and doc.expires_at - doc.released_at == timedelta(days=30)
    with app.app_context():
        mail = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "records_ready")).scalar_one()
        assert "Jordan" not in mail.body and CANARY_NAME not in mail.body and CANARY_NAME not in mail.subject
    page = requester.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert f"/my/requests/{ref}/documents/{uid}" in page and "5 of 5 downloads left" in page
    response = requester.get(f"/my/requests/{ref}/documents/{uid}")
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Jordan-Example-discharge.pdf\"; filename*=UTF-8''Jordan-Example-discharge.pdf")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response.headers["Cache-Control"]
    assert docs(app, ref)[0].download_count == 1
    [audit] = audit_rows(app, "document.downloaded")
    assert f'"document_id":{doc.id}' in audit.details and CANARY_NAME not in audit.details
    assert audit.actor_id == people["requester"].id and audit.actor_role == "requester"
    for action in ("document.uploaded", "document.released", "document.downloaded"):
        assert all(CANARY_NAME not in row.details and "Jordan" not in row.details for row in audit_rows(app, action))


def test_download_file_names_are_ascii_with_a_utf8_version(app, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    verify(app, ref, people["admin"], archive_patient)
    admin = signed_in(app, people["admin"])
    staff_upload(admin, app, ref, PDF, filename="Dossier médical; <x>.exe")
    uid = docs(app, ref)[0].uid
    disposition = admin.get(f"/queue/requests/{ref}/documents/{uid}").headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Dossier_medical_x.pdf"; ')
    assert "filename*=UTF-8''Dossier%20m%C3%A9dical%3B%20%3Cx%3E.pdf" in disposition
    assert disposition.isascii()


def test_downloads_stop_when_the_count_is_used_up(app, people, make_request, archive_patient):
    app.config["RECORDS_DOWNLOAD_LIMIT"] = 2
    ref = make_request(people["requester"])
    verify(app, ref, people["admin"], archive_patient)
    admin = signed_in(app, people["admin"])
    staff_upload(admin, app, ref, PDF)
    uid = docs(app, ref)[0].uid
    doc_action(admin, app, ref, uid, "release")
    requester = signed_in(app, people["requester"])
    url = f"/my/requests/{ref}/documents/{uid}"
    assert [requester.get(url).status_code for _ in range(2)] == [200, 200]
    third = requester.get(url)
    assert third.status_code == 410 and "downloaded as many times as allowed" in third.get_data(as_text=True)
    assert docs(app, ref)[0].download_count == 2 and len(audit_rows(app, "document.downloaded")) == 2
    # Staff see the count and the latest downloads, with who downloaded.
    page = admin.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert "2 / 2" in page and "All downloads used" in page
    assert people["requester"].email in page.split('id="latest-downloads"')[1]


def test_downloads_stop_after_the_period(app, people, released):
    ref, uid, requester, _admin = released
    with app.app_context():
        req, doc = _load(ref), documents.document_of(_load(ref), uid)
        owner = _user(people["requester"])
        with time_machine.travel(utcnow() + timedelta(days=30, minutes=1), tick=False):
            with pytest.raises(documents.DownloadRefused) as refused:
                documents.take_download(req, doc, owner)
        assert refused.value.reason == "expired"
        db.session.rollback()
        with time_machine.travel(utcnow() + timedelta(days=29), tick=False):
            assert documents.take_download(_load(ref), doc, owner) == PDF
        db.session.commit()
    # Through the page: a release that ran out yesterday.
    with app.app_context():
        doc = db.session.get(RequestDocument, docs(app, ref)[0].id)
        doc.expires_at = utcnow() - timedelta(days=1)
        db.session.commit()
    response = requester.get(f"/my/requests/{ref}/documents/{uid}")
    assert response.status_code == 410 and "download period for this document has ended" in response.get_data(
        as_text=True)
    assert docs(app, ref)[0].download_count == 1


@pytest.mark.parametrize("action", ["revoke", "release"])
def test_a_huge_version_number_is_a_400_not_a_500(app, people, released, action):
    """Found by the fuzz (tests/fuzz): WTForms' NumberRange raised OverflowError on a 400-digit version."""
    ref, uid, requester, admin = released
    response = doc_action(admin, app, ref, uid, action, ver=int("9" * 400))
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_withdrawn_document_cannot_be_downloaded_and_can_be_released_again(app, people, released):
    ref, uid, requester, admin = released
    assert doc_action(admin, app, ref, uid, "revoke").status_code == 302
    response = requester.get(f"/my/requests/{ref}/documents/{uid}")
    assert response.status_code == 410 and "withdrawn" in response.get_data(as_text=True)
    assert "withdrawn by the records office" in requester.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert doc_action(admin, app, ref, uid, "revoke").status_code == 400  # nothing left to withdraw
    assert doc_action(admin, app, ref, uid, "release").status_code == 302
    assert requester.get(f"/my/requests/{ref}/documents/{uid}").status_code == 200


def test_a_stale_release_form_is_a_conflict(app, people, released):
    ref, uid, _requester, admin = released
    doc_action(admin, app, ref, uid, "revoke")
    old = version(app, ref)
    with app.app_context():
        services.claim(_load(ref), _user(people["admin"]))  # someone else saves the request meanwhile
        db.session.commit()
    response = doc_action(admin, app, ref, uid, "release", ver=old)
    assert response.status_code == 409 and "Someone else changed this request" in response.get_data(as_text=True)
    assert docs(app, ref)[0].revoked_at is not None


def test_two_downloads_racing_for_the_last_one(app, people, make_request, archive_patient):
    """Two sessions take the last download at the same moment: exactly one gets the file."""
    app.config["RECORDS_DOWNLOAD_LIMIT"] = 1
    ref = make_request(people["requester"])
    verify(app, ref, people["admin"], archive_patient)
    admin = signed_in(app, people["admin"])
    staff_upload(admin, app, ref, PDF)
    uid = docs(app, ref)[0].uid
    doc_action(admin, app, ref, uid, "release")
    barrier = threading.Barrier(2)
    results: list[str] = []

    def worker() -> None:
        with app.app_context():
            req = _load(ref)
            doc = documents.document_of(req, uid)
            owner = _user(people["requester"])
            db.session.commit()  # each holds a loaded copy saying one download is left
            barrier.wait()
            try:
                documents.take_download(req, doc, owner)
                db.session.commit()
                results.append("ok")
            except documents.DownloadRefused as exc:
                db.session.rollback()
                results.append(exc.reason)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "used_up"]
    assert docs(app, ref)[0].download_count == 1 and len(audit_rows(app, "document.downloaded")) == 1


def test_letters_are_stored_with_their_own_content_type(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        doc = documents.store_document(_load(ref), FileKind.LETTER, "cover-letter.html", b"<p>Dear requester</p>",
                                       _user(people["admin"]), Visibility.INTERNAL, content_type="text/html")
        db.session.commit()
        assert doc.content_type == "text/html" and documents.content_of(doc) == b"<p>Dear requester</p>"
    admin = signed_in(app, people["admin"])
    [letter] = [d for d in docs(app, ref, letters=True) if d.filename == "cover-letter.html"]
    response = admin.get(f"/queue/requests/{ref}/documents/{letter.uid}")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="cover-letter.html"')


# --- Delivery ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,label", [("mail", "Sent by post"), ("pickup", "Picked up"),
                                          ("inspection", "Inspected in person")])
def test_each_delivery_method_is_recorded(app, people, make_request, archive_patient, method, label):
    ref = make_request(people["requester"])
    verify(app, ref, people["admin"], archive_patient)
    admin = signed_in(app, people["admin"])
    assert 'name="delivery-method"' in admin.get(f"/queue/requests/{ref}").get_data(as_text=True)
    response = record_delivery(admin, app, ref, method, note="Tracking TRK<b>999</b>")
    assert response.status_code == 302
    with app.app_context():
        req = _load(ref)
        assert req.delivery_method.value == method and req.delivered_at is not None
        assert req.delivery_note == "Tracking TRK<b>999</b>"
    staff_page = admin.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert "TRK&lt;b&gt;999" in staff_page
    mine = signed_in(app, people["requester"]).get(f"/my/requests/{ref}").get_data(as_text=True)
    assert label in mine.split('id="delivery"')[1] and "TRK" not in mine


def test_delivery_by_download_needs_a_released_document(app, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    verify(app, ref, people["admin"], archive_patient)
    admin = signed_in(app, people["admin"])
    refused = record_delivery(admin, app, ref, "download", note="kept text")
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "Release at least one document" in html and "kept text" in html
    with app.app_context():
        assert _load(ref).delivered_at is None
    staff_upload(admin, app, ref, PDF)
    doc_action(admin, app, ref, docs(app, ref)[0].uid, "release")
    assert record_delivery(admin, app, ref, "download").status_code == 302
    with app.app_context():
        assert _load(ref).delivery_method.value == "download"


def test_delivery_form_hostile_input(app, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    admin = signed_in(app, people["admin"])
    # Not in review yet: no form, and a post is refused with a message.
    assert 'name="delivery-method"' not in admin.get(f"/queue/requests/{ref}").get_data(as_text=True)
    early = record_delivery(admin, app, ref, "mail")
    assert early.status_code == 400 and "while the request is being prepared" in early.get_data(as_text=True)
    verify(app, ref, people["admin"], archive_patient)
    assert record_delivery(admin, app, ref, "carrier-pigeon").status_code == 400
    assert record_delivery(admin, app, ref, "").status_code == 400
    too_long = record_delivery(admin, app, ref, "mail", note="x" * 2001)
    assert too_long.status_code == 400 and "under 2000 characters" in too_long.get_data(as_text=True)
    assert admin.post(f"/queue/requests/{ref}/delivery", data={"delivery-method": "mail",
                                                               "delivery-version": "1"}).status_code == 400
    assert record_delivery(admin, app, ref, "mail", ver=10**12).status_code == 400
    with app.app_context():
        assert _load(ref).delivered_at is None


def test_a_stale_delivery_form_is_a_conflict_with_the_text_kept(app, people, make_request, archive_patient):
    ref = make_request(people["requester"])
    verify(app, ref, people["admin"], archive_patient)
    admin = signed_in(app, people["admin"])
    old = version(app, ref)
    with app.app_context():
        services.claim(_load(ref), _user(people["admin"]))
        db.session.commit()
    response = record_delivery(admin, app, ref, "pickup", note="Picked up by the patient's sister", ver=old)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Someone else changed this request" in html and "Picked up by the patient&#39;s sister" in html
    assert f'name="delivery-version" type="hidden" value="{version(app, ref)}"' in html
    with app.app_context():
        assert _load(ref).delivered_at is None


# --- Key rotation ---------------------------------------------------------------------------------

def test_key_rotation_reencrypts_document_contents_in_small_batches(tmp_path, app, people, make_request):
    from intake.security import keys

    assert keys.batch_size("request_document_contents") == 5 and keys.batch_size("users") == keys.BATCH
    ref = make_request(people["requester"])
    with app.app_context():
        req = _load(ref)
        for i in range(12):
            documents.store_document(req, FileKind.INTERNAL, f"p{i}.pdf", PDF + bytes([i]), None, Visibility.INTERNAL)
        db.session.commit()
        db.engine.dispose()
    new_key = base64.urlsafe_b64encode(b"\x22" * 32).decode()
    rotated = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "i2",
                       DATA_KEYS=f"new2:{new_key}," + app.config["DATA_KEYS"])
    with rotated.app_context():
        selects: list[str] = []

        def spy(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("SELECT") and "FROM request_document_contents" in statement:
                selects.append(statement)

        event.listen(db.engine, "before_cursor_execute", spy)
        try:
            result = rotated.test_cli_runner().invoke(args=["keys", "rotate"])
        finally:
            event.remove(db.engine, "before_cursor_execute", spy)
        assert result.exit_code == 0, result.output
        # 12 files and the acknowledgment letter: 5 + 5 + 3 rows, then an empty batch (500 a batch would take 2).
        assert "request_document_contents.data: 13 value(s) re-encrypted" in result.output
        assert len(selects) == 4
        raws = db.session.execute(text("SELECT data FROM request_document_contents")).scalars().all()
        assert len(raws) == 13 and all(raw.startswith("new2:") for raw in raws)
        contents = {base64.b64decode(c.data) for c in db.session.execute(select(DocumentContent)).scalars()}
        assert {PDF + bytes([i]) for i in range(12)} < contents
        db.engine.dispose()


def test_latest_downloads_on_the_staff_page_with_and_without_documents(app, people, make_request):
    """An auditor reads "nobody has downloaded" on a request without documents (no trail to search),
    and a staff download of a working document, once there is one (viewed many times in between)."""
    ref = make_request(people["requester"])
    admin = signed_in(app, people["admin"])
    for _ in range(3):
        page = admin.get(f"/queue/requests/{ref}").get_data(as_text=True)
        assert "Nobody has downloaded a document of this request yet." in page and 'id="latest-downloads"' not in page
    staff_upload(admin, app, ref, PDF, kind="internal")
    uid = docs(app, ref)[0].uid
    assert admin.get(f"/queue/requests/{ref}/documents/{uid}").status_code == 200
    page = admin.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert "Nobody has downloaded" not in page
    assert people["admin"].email in page.split('id="latest-downloads"')[1]
