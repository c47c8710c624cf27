"""A third party's copy reaches its recipient (issue 19): a one-time secure link by e-mail, the access
code by telephone or on a posted cover letter, the recipient's public page, and the attacker's tries
(wrong codes, a used or expired link, another request's token or file, the token in the logs)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import consents, documents, recipient
from intake.records.models import (
    DeliveryMethod,
    Disclosure,
    FileKind,
    RecipientLink,
    RecordsRequest,
    Visibility,
)
from intake.security.log_redaction import TOKEN_MARK, RedactingFilter, rules_from_url_map
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, LICENCE, csrf_token, login
from .test_records_consents import THIRD_PARTY
from .test_records_gate import act, paper_consent, verified

NOON = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n% the records of the 2017 stay\n"
RECIPIENT = "ana.ruiz@clinic.example.org"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "admin": make_user(FULL_ADMIN, licence=LICENCE)}


def signed_in(app, user: User):
    browser = app.test_client()
    assert login(browser, user.email).status_code == 302
    return browser


def ready(app, make_request, people, archive_patient, **fields) -> str:
    """A verified third-party request with a complete consent and the records added."""
    ref = make_request(people["requester"], **{**THIRD_PARTY, **fields})
    verified(app, ref, people["admin"], archive_patient())
    paper_consent(app, ref, people["admin"])
    act(app, ref, lambda req: documents.store_document(
        req, FileKind.RELEASED_RECORD, "records-2017.pdf", PDF, db.session.get(User, people["admin"].id),
        Visibility.INTERNAL))
    return ref


def send(browser, app, ref: str, channel: str = "phone", email: str = RECIPIENT, confirmed: bool = True):
    version = act(app, ref, lambda req: req.version)
    data = {"recipient-email": email, "recipient-code_channel": channel, "recipient-version": str(version),
            "recipient-csrf_token": csrf_token(browser, "/account")}
    if confirmed:
        data["recipient-consent_confirmed"] = "y"
    return browser.post(f"/queue/requests/{ref}/recipient-link", data=data)


def sent_link(app) -> str:
    """The path of the link in the newest e-mail to the recipient."""
    with app.app_context():
        message = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "recipient_link")
                                     .order_by(OutboxMessage.id.desc())).scalars().first()
        assert message is not None and message.recipient == RECIPIENT
        match = re.search(r"https?://[^/\s]+(/copy/[A-Za-z0-9_-]{43})", message.body)
        assert match, message.body
        return match.group(1)


def shown_code(response) -> str:
    text = response.get_data(as_text=True)
    match = re.search(r'id="access-code"[^>]*>([A-Z0-9]{4}-[A-Z0-9]{4})<', text)
    assert match, text
    return match.group(1)


def links(app) -> list[RecipientLink]:
    with app.app_context():
        rows = db.session.execute(select(RecipientLink).order_by(RecipientLink.id)).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def open_with(app, path: str, code: str):
    visitor = app.test_client()
    visitor.get(path)
    response = visitor.post(path, data={"code": code, "csrf_token": csrf_token(visitor, path)})
    return visitor, response


def file_paths(page: str) -> list[str]:
    return re.findall(r'href="(/copy/[^"]+/files/[^"]+)"', page)


# --- The pure rules ------------------------------------------------------------------------------

def test_hipaa_164_312_a_link_works_only_unrevoked_unlocked_unexpired_and_within_its_downloads():
    later = NOON + timedelta(days=1)
    assert recipient.link_problem(False, False, later, NOON, 0, 5) is None
    assert recipient.link_problem(True, False, later, NOON, 0, 5) == "revoked"
    assert recipient.link_problem(False, True, later, NOON, 0, 5) == "locked"
    assert recipient.link_problem(False, False, NOON, NOON, 0, 5) == "expired"
    assert recipient.link_problem(False, False, later, NOON, 5, 5) == "used_up"


def test_access_codes_are_read_aloud_safely_and_typed_loosely():
    code = recipient.new_code()
    assert len(code) == recipient.CODE_LENGTH and set(code) <= set(recipient.CODE_ALPHABET)
    assert not set("0O1IL2Z5S8B") & set(recipient.CODE_ALPHABET)
    assert recipient.normalize_code(" acde-34 67 ") == "ACDE3467"
    assert recipient.show_code("ACDE3467") == "ACDE-3467"


# --- Sending -------------------------------------------------------------------------------------

def test_cfr2_32_sending_the_link_writes_one_disclosure_and_mails_the_link_without_the_code(
        app, make_request, people, archive_patient):
    ref = ready(app, make_request, people, archive_patient)
    admin = signed_in(app, people["admin"])
    response = send(admin, app, ref)
    assert response.status_code == 200
    code = shown_code(response)
    path = sent_link(app)
    with app.app_context():
        [disclosure] = db.session.execute(select(Disclosure)).scalars().all()
        assert (disclosure.channel, disclosure.redisclosure_notice) == ("recipient_link", True)
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()
        assert req.delivery_method == DeliveryMethod.RECIPIENT_LINK and req.delivered_at is not None
        message = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "recipient_link")).scalar_one()
        assert code not in message.body and code.replace("-", "") not in message.body
        assert consents.NOTICE_2024.text["en"].split("\n")[0] in message.body
    [link] = links(app)
    # Only keyed hashes are stored: neither the token nor the code is in the row.
    token = path.rsplit("/", 1)[1]
    assert token not in (link.token_hash, link.code_hash) and code.replace("-", "") not in link.code_hash
    assert len(link.token_hash) == 64 and link.disclosure_id == disclosure.id
    # The staff page shows the link's state, never the code again.
    page = admin.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert "recipient-links" in page and "Sent; not opened yet" in page and code not in page


def test_the_code_by_post_is_printed_on_a_cover_letter_with_the_notice(app, make_request, people, archive_patient):
    ref = ready(app, make_request, people, archive_patient, recipient_language="es")
    response = send(signed_in(app, people["admin"]), app, ref, channel="post")
    assert response.status_code == 200
    text = html.unescape(response.get_data(as_text=True))
    assert '<html lang="es">' in text and "Dr. Ana Ruiz" in text and "records-2017.pdf" in text
    assert consents.NOTICE_2024.text["es"].split("\n")[0] in text
    assert consents.NOTICE_2024.text["en"].split("\n")[0] in text
    assert "sandbox" in response.headers["Content-Security-Policy"]
    code = shown_code(response)
    _visitor, opened = open_with(app, sent_link(app), code)
    assert opened.status_code == 303
    with app.app_context():
        message = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "recipient_link")).scalar_one()
        assert "correo postal" in message.body or "por correo" in message.body  # the e-mail in Spanish


def test_the_generic_delivery_form_cannot_record_a_link_without_making_one(app, make_request, people,
                                                                          archive_patient):
    ref = ready(app, make_request, people, archive_patient)
    admin = signed_in(app, people["admin"])
    version = act(app, ref, lambda req: req.version)
    response = admin.post(f"/queue/requests/{ref}/delivery", data={
        "delivery-method": "recipient_link", "delivery-version": str(version), "delivery-consent_confirmed": "y",
        "delivery-csrf_token": csrf_token(admin, "/account")})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Disclosure)) == 0


@pytest.mark.parametrize(("fields", "message"), [
    ({"email": "not an address"}, "like name@example.org"),
    ({"email": "<script>@x"}, "like name@example.org"),
    ({"email": "a" * 300 + "@example.org"}, "too long"),
    ({"channel": "carrier-pigeon"}, "Choose how the access code reaches the recipient."),
    ({"confirmed": False}, "consent"),
])
def test_bad_and_hostile_input_to_the_send_form_sends_nothing(app, make_request, people, archive_patient, fields,
                                                              message):
    ref = ready(app, make_request, people, archive_patient)
    admin = signed_in(app, people["admin"])
    response = send(admin, app, ref, **fields)
    assert response.status_code == 400
    assert message in html.unescape(response.get_data(as_text=True))
    assert links(app) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Disclosure)) == 0
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == "recipient_link")) == 0


def test_no_link_without_the_records_to_send(app, make_request, people, archive_patient):
    ref = make_request(people["requester"], **THIRD_PARTY)
    verified(app, ref, people["admin"], archive_patient())
    paper_consent(app, ref, people["admin"])
    response = send(signed_in(app, people["admin"]), app, ref)
    assert response.status_code == 400 and "Add the records to send" in response.get_data(as_text=True)
    assert links(app) == []


def test_a_revoked_consent_stops_the_link_being_sent(app, make_request, people, archive_patient):
    ref = ready(app, make_request, people, archive_patient)
    act(app, ref, lambda req: setattr(consents.current_consent(req), "revoked_at", NOON))
    response = send(signed_in(app, people["admin"]), app, ref)
    assert response.status_code == 400
    assert links(app) == []


# --- The recipient -------------------------------------------------------------------------------

def test_the_recipient_opens_the_link_with_the_code_and_downloads_counted_and_audited(
        app, make_request, people, archive_patient):
    ref = ready(app, make_request, people, archive_patient)
    code = shown_code(send(signed_in(app, people["admin"]), app, ref))
    path = sent_link(app)
    visitor = app.test_client()
    first = visitor.get(path)
    assert first.status_code == 200 and "Enter your access code" in first.get_data(as_text=True)
    assert "records-2017.pdf" not in first.get_data(as_text=True)  # nothing named before the code
    assert links(app)[0].opened_at is None  # a GET (a mail scanner) changes nothing
    response = visitor.post(path, data={"code": code.lower().replace("-", " "),
                                        "csrf_token": csrf_token(visitor, path)})
    assert response.status_code == 303
    page = visitor.get(path).get_data(as_text=True)
    assert "records-2017.pdf" in page and "redisclosure-notice" in page
    paths = file_paths(page)
    assert len(paths) == 2  # the records and the cover letter with the notice
    got = visitor.get(paths[0])
    assert got.status_code == 200 and got.data == PDF and got.headers["Content-Disposition"].startswith("attachment")
    [link] = links(app)
    assert link.download_count == 1 and link.opened_at is not None
    with app.app_context():
        actions = db.session.execute(select(AuditEvent.action).where(
            AuditEvent.action.like("recipient_link.%")).order_by(AuditEvent.seq)).scalars().all()
        assert actions == ["recipient_link.sent", "recipient_link.opened", "recipient_link.downloaded"]
        assert db.session.scalar(select(func.count()).select_from(Disclosure)) == 1  # written once, at release
    staff_page = signed_in(app, people["admin"]).get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert "Downloaded" in staff_page and "1 of 5" in staff_page


def test_wrong_codes_lock_the_link(app, make_request, people, archive_patient):
    app.config["RECIPIENT_CODE_ATTEMPTS"] = 3
    ref = ready(app, make_request, people, archive_patient)
    code = shown_code(send(signed_in(app, people["admin"]), app, ref))
    path = sent_link(app)
    attacker = app.test_client()
    statuses = []
    for _ in range(3):
        response = attacker.post(path, data={"code": "AAAA-AAAA", "csrf_token": csrf_token(attacker, path)})
        statuses.append(response.status_code)
    assert statuses == [400, 400, 410]
    assert "locked" in attacker.get(path).get_data(as_text=True)
    # Even the right code does nothing now; the office sends a new link and code.
    late = attacker.post(path, data={"code": code, "csrf_token": csrf_token(app.test_client(), "/login")})
    assert late.status_code in (400, 410)
    [link] = links(app)
    assert link.locked_at is not None and link.failed_attempts == 3 and link.opened_at is None


def test_the_code_form_is_rate_limited(tmp_path, app, make_request, people, archive_patient):
    from tests.conftest import make_app

    ref = ready(app, make_request, people, archive_patient)
    send(signed_in(app, people["admin"]), app, ref)
    path = sent_link(app)
    limited = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "limited", RATELIMIT_ENABLED=True,
                       RATELIMIT_RECIPIENT="2 per minute", RECIPIENT_CODE_ATTEMPTS=20)
    attacker = limited.test_client()
    token = csrf_token(attacker, path)
    statuses = [attacker.post(path, data={"code": "AAAA-AAAA", "csrf_token": token}).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    assert attacker.get(path).status_code == 200  # reading the page is never limited


def test_a_used_up_expired_or_withdrawn_link_says_so(app, make_request, people, archive_patient, frozen):
    app.config["RECORDS_DOWNLOAD_LIMIT"] = 1
    ref = ready(app, make_request, people, archive_patient)
    admin = signed_in(app, people["admin"])
    code = shown_code(send(admin, app, ref))
    path = sent_link(app)
    visitor, _opened = open_with(app, path, code)
    [first, _letter] = file_paths(visitor.get(path).get_data(as_text=True))
    assert visitor.get(first).status_code == 200
    again = visitor.get(first)
    assert again.status_code == 410 and "as many times as this link allows" in again.get_data(as_text=True)
    # A new link (new code) for the same disclosure; the old one is withdrawn.
    [old] = links(app)
    version = act(app, ref, lambda req: req.version)
    resent = admin.post(f"/queue/requests/{ref}/recipient-links/{old.uid}/resend", data={
        "resend-code_channel": "phone", "resend-version": str(version),
        "resend-csrf_token": csrf_token(admin, "/account")})
    assert resent.status_code == 200
    new_code, new_path = shown_code(resent), sent_link(app)
    assert new_path != path and visitor.get(path).status_code == 410
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Disclosure)) == 1
    # Expired: the day after the download period.
    frozen.move_to(NOON + timedelta(days=app.config["RECORDS_DOWNLOAD_DAYS"], seconds=1))
    expired = app.test_client().get(new_path)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    assert new_code


def test_staff_withdraw_a_link(app, make_request, people, archive_patient):
    ref = ready(app, make_request, people, archive_patient)
    admin = signed_in(app, people["admin"])
    code = shown_code(send(admin, app, ref))
    path = sent_link(app)
    [link] = links(app)
    version = act(app, ref, lambda req: req.version)
    response = admin.post(f"/queue/requests/{ref}/recipient-links/{link.uid}/revoke", data={
        "revoke-link-version": str(version), "revoke-link-csrf_token": csrf_token(admin, "/account")})
    assert response.status_code == 303
    _visitor, opened = open_with(app, path, code)
    assert opened.status_code == 410 and "withdrawn" in opened.get_data(as_text=True)


def test_an_unknown_or_malformed_token_and_another_requests_file_are_not_found(
        app, make_request, people, archive_patient):
    ref = ready(app, make_request, people, archive_patient)
    other = ready(app, make_request, people, archive_patient)
    admin = signed_in(app, people["admin"])
    code = shown_code(send(admin, app, ref))
    path = sent_link(app)
    shown_code(send(admin, app, other))
    other_path = sent_link(app)
    for bad in ("/copy/" + "A" * 43, "/copy/short", path[:-1] + ("B" if path[-1] != "B" else "C")):
        response = app.test_client().get(bad)
        assert response.status_code == 404 and "This link is not valid" in response.get_data(as_text=True)
    # The other request's file through this link: not found; this link's code on the other link: wrong.
    visitor, _ = open_with(app, path, code)
    other_visitor, wrong = open_with(app, other_path, code)
    assert wrong.status_code == 400
    with app.app_context():
        other_req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == other)).scalar_one()
        other_doc = db.session.execute(select(documents.RequestDocument).where(
            documents.RequestDocument.request_id == other_req.id)).scalars().first()
        assert other_doc is not None
        uid = other_doc.uid
    assert visitor.get(f"{path}/files/{uid}").status_code == 404
    # A file path without having typed the code in this browser: back to the code form.
    assert app.test_client().get(f"{path}/files/{uid}").status_code in (303, 404)


def test_the_requesters_page_says_the_copy_was_sent_and_offers_no_download(app, make_request, people,
                                                                          archive_patient):
    ref = ready(app, make_request, people, archive_patient)
    send(signed_in(app, people["admin"]), app, ref)
    page = signed_in(app, people["requester"]).get(f"/my/requests/{ref}").get_data(as_text=True)
    assert 'id="recipient-sent"' in page and "Dr. Ana Ruiz" in page
    assert "/copy/" not in page and "records-2017.pdf" not in page and "/documents/" not in page


def test_the_recipient_page_is_in_the_recipients_language(app, make_request, people, archive_patient):
    ref = ready(app, make_request, people, archive_patient, recipient_language="es")
    send(signed_in(app, people["admin"]), app, ref)
    page = app.test_client().get(sent_link(app)).get_data(as_text=True)
    assert '<html lang="es"' in page and "código de acceso" in page
    chose = app.test_client()
    chose.set_cookie("lang", "en")  # the site's language switch: their own choice wins
    assert '<html lang="en"' in chose.get(sent_link(app)).get_data(as_text=True)


def test_the_links_token_never_reaches_a_log(app, make_request, people, archive_patient):
    ref = ready(app, make_request, people, archive_patient)
    send(signed_in(app, people["admin"]), app, ref)
    path = sent_link(app)
    token = path.rsplit("/", 1)[1]
    line = f'203.0.113.9 "GET {path}/files/abc HTTP/1.1" 200 and "POST {path} HTTP/1.1" 303'
    # With the app's routes (every handler), and with the prefixes alone (gunicorn's master).
    for log_filter in (RedactingFilter(rules_from_url_map(app.url_map)), RedactingFilter()):
        redacted = log_filter.redact(line)
        assert token not in redacted and f"/copy/{TOKEN_MARK}" in redacted
    with app.app_context():
        details = " ".join(db.session.execute(select(AuditEvent.details)).scalars().all())
        assert token not in details and RECIPIENT not in details


@pytest.mark.parametrize(("typed", "message"), [
    ("", "Enter the access code the records office gave you."),
    ("   ", "Enter the access code the records office gave you."),
    ("A" * 5000, "Enter the access code the records office gave you."),
    ("<script>alert(1)</script>", "That access code is not right."),
    ("' OR 1=1 --", "That access code is not right."),
    ("ACDE\x00-3467", "That access code is not right."),
])
def test_bad_and_hostile_codes_get_a_clear_message_and_nothing_opens(app, make_request, people, archive_patient,
                                                                      typed, message):
    ref = ready(app, make_request, people, archive_patient)
    send(signed_in(app, people["admin"]), app, ref)
    path = sent_link(app)
    visitor = app.test_client()
    response = visitor.post(path, data={"code": typed, "csrf_token": csrf_token(visitor, path)})
    raw = response.get_data(as_text=True)
    text = html.unescape(raw)
    assert response.status_code == 400 and message in text and "<script>alert" not in raw
    assert 'name="code"' in text  # the form is still there to try again
    [link] = links(app)
    assert link.opened_at is None and link.download_count == 0


def test_a_code_post_without_its_csrf_token_is_refused(app, make_request, people, archive_patient):
    ref = ready(app, make_request, people, archive_patient)
    code = shown_code(send(signed_in(app, people["admin"]), app, ref))
    response = app.test_client().post(sent_link(app), data={"code": code})
    assert response.status_code == 400
    assert links(app)[0].opened_at is None


def test_the_code_is_stored_nowhere(app, make_request, people, archive_patient):
    """Neither the telephone page's code nor the posted letter's is kept: not in a document, the
    outbox, the audit trail or the link's row (only its keyed hash)."""
    ref = ready(app, make_request, people, archive_patient)
    admin = signed_in(app, people["admin"])
    phone = shown_code(send(admin, app, ref)).replace("-", "")
    [link] = links(app)
    version = act(app, ref, lambda req: req.version)
    letter = admin.post(f"/queue/requests/{ref}/recipient-links/{link.uid}/resend", data={
        "resend-code_channel": "post", "resend-version": str(version),
        "resend-csrf_token": csrf_token(admin, "/account")})
    posted = shown_code(letter).replace("-", "")
    with app.app_context():
        stored = [documents.content_of(doc).decode("utf-8", "replace") for doc in db.session.execute(
            select(documents.RequestDocument)).scalars()]
        stored += [m.body for m in db.session.execute(select(OutboxMessage)).scalars()]
        stored += [d or "" for d in db.session.execute(select(AuditEvent.details)).scalars()]
        stored += [f"{r.token_hash} {r.code_hash}" for r in db.session.execute(select(RecipientLink)).scalars()]
    for code in (phone, posted):
        assert not any(code in text or f"{code[:4]}-{code[4:]}" in text for text in stored)
