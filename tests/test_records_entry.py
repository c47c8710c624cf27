"""Requests received on paper, by fax, in person or after a call, entered by records staff
(``/queue/requests/new``): the true receipt time starts the clock (H&S 123110; 45 CFR 164.524(b)(2)),
never in the future; the scanned request is kept; no account is needed (letters by post, in the
language chosen); an account can be linked later; bad and hostile input is refused with nothing lost."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime
from io import BytesIO

import pytest
import time_machine
from sqlalchemy import func, select

from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records.documents import content_of
from intake.records.models import Channel, FileKind, RecordsRequest, RequestDocument, Visibility
from intake.users.models import Role

from .conftest import csrf_token, login

# Noon in Los Angeles on Monday 2026-06-15.
NOON = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% a scanned letter\n%%EOF\n"
ADDRESS = "12 Oak Lane\nBakersfield, CA 93301"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOON, tick=False):
        yield


@pytest.fixture()
def clerk(app, make_user):
    user = make_user(Role.RECORDS_CLERK)
    browser = app.test_client()
    assert login(browser, user.email).status_code == 302
    browser.user = user
    return browser


def fields(**changes) -> dict:
    data = {"received_at": "2026-06-10T09:30", "channel": "mail", "requester_language": "es",
            "patient_name": "Jordan Example", "patient_dob-day": "17", "patient_dob-month": "5",
            "patient_dob-year": "1980", "stay_from": "2017-03-01",
            "stay_to": "2017-04-15", "relationship_to_patient": "self", "request_type": "copy", "scope": "everything",
            "record_format": "paper", "delivery": "mail", "mail_address": ADDRESS, "attest": "y",
            "attestation_name": "Jordan Example", "recipient_language": "en"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def post(browser, scan: bytes | None = PDF, **changes):
    data = fields(**changes)
    data["csrf_token"] = csrf_token(browser, "/queue/requests/new")
    if scan is not None:
        data["scan"] = (BytesIO(scan), "scan.pdf")
    return browser.post("/queue/requests/new", data=data, content_type="multipart/form-data")


def only_request(app) -> RecordsRequest:
    with app.app_context():
        req = db.session.execute(select(RecordsRequest)).scalar_one()
        db.session.expunge(req)
        return req


def count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(RecordsRequest)).scalar_one()


def test_hsc_123110_a_mailed_request_runs_from_its_true_receipt_time(app, clerk):
    """Received by post on Wednesday 10 June (09:30 Pacific), entered on Monday 15: the 15 days of
    H&S 123110 run from the 10th (due the 25th), not from the day it was typed in."""
    page = clerk.get("/queue/requests/new")
    assert page.status_code == 200 and 'type="datetime-local"' in page.get_data(as_text=True)
    response = post(clerk)
    assert response.status_code == 303
    req = only_request(app)
    assert req.owner_id is None and req.channel == Channel.MAIL and req.entered_by_id == clerk.user.id
    assert req.received_at == datetime(2026, 6, 10, 16, 30, tzinfo=UTC)  # 09:30 PDT
    assert req.due_on == date(2026, 6, 25) and req.mail_address == ADDRESS
    assert req.requester_language == "es" and req.recipient_language == "en"
    with app.app_context():
        docs = db.session.execute(select(RequestDocument).where(RequestDocument.request_id == req.id)
                                  .order_by(RequestDocument.id)).scalars().all()
        scan = next(d for d in docs if d.kind == FileKind.REQUEST_SCAN)
        assert scan.visibility == Visibility.INTERNAL and content_of(scan) == PDF
        letter = next(d for d in docs if d.kind == FileKind.LETTER)
        text = content_of(letter).decode()
        # Printed and posted in the language chosen, to the postal address, about a paper request.
        assert 'lang="es"' in text and "12 Oak Lane" in text and "por correo" in text
        assert db.session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0  # no e-mail
    detail = html.unescape(clerk.get(response.headers["Location"]).get_data(as_text=True))
    assert "By post" in detail and "entered by" in detail and 'id="no-account"' in detail
    assert "Link a requester account to this request" in detail


@pytest.mark.parametrize("when, message", [
    ("2026-06-15T13:00", "cannot be in the future"),  # an hour from now, Pacific time
    ("2025-01-01T09:00", "more than a year ago"),
    ("", "Enter the date and time the request was received"),
    ("yesterday", "Enter the date and time the request was received"),
    ("2026-02-30T09:00", "Enter the date and time the request was received"),
    ("2026-06-10T09:30:00+00:00", "Enter the date and time the request was received"),
])
def test_the_receipt_time_is_real_and_never_in_the_future(app, clerk, when, message):
    response = post(clerk, received_at=when)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400 and message in body and count(app) == 0
    assert "Jordan Example" in body  # nothing typed is lost


def test_the_scan_the_address_and_the_channel_are_required(app, clerk):
    response = post(clerk, scan=None, mail_address="", channel="portal")
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400 and count(app) == 0
    assert "Attach the scanned request" in body and "letters go by post" in body
    assert "Choose how the request arrived" in body


def test_a_scan_that_is_not_a_pdf_or_image_is_refused(app, clerk):
    response = post(clerk, scan=b"MZ\x90\x00 an executable")
    assert response.status_code == 400 and "Only PDF, PNG and JPEG" in response.get_data(as_text=True)
    assert count(app) == 0


HOSTILE = "<script>alert(1)</script>'; DROP TABLE records_requests; --"


def test_hostile_text_is_stored_as_text_and_escaped(app, clerk):
    response = post(clerk, patient_name=f"Jordan {HOSTILE}", mail_address=f"{HOSTILE}\nSomewhere",
                    details=HOSTILE)
    assert response.status_code == 303
    body = clerk.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert only_request(app).patient_name == f"Jordan {HOSTILE}"


def test_control_characters_and_oversize_text_are_refused(app, clerk):
    response = post(clerk, patient_name="Jordan\x00Example", details="x" * 50_000)
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "invisible control characters" in body and "under" in body
    assert count(app) == 0


def test_a_forged_form_without_csrf_is_refused(app, clerk):
    data = fields()
    data["scan"] = (BytesIO(PDF), "scan.pdf")
    assert clerk.post("/queue/requests/new", data=data, content_type="multipart/form-data").status_code == 400
    assert count(app) == 0


def test_only_records_staff_enter_requests(app, make_user):
    for roles in ([Role.OPERATOR], [Role.PRIVACY_OFFICER], [Role.ADMIN]):
        browser = app.test_client()
        login(browser, make_user(roles).email)
        assert browser.get("/queue/requests/new").status_code == 403
    requester = app.test_client()
    login(requester, make_user(Role.REQUESTER).email)
    assert requester.get("/queue/requests/new").status_code == 403


def test_an_account_is_linked_later_and_then_follows_the_request(app, clerk, make_user):
    post(clerk)
    req = only_request(app)
    path = f"/queue/requests/{req.reference}"
    someone = make_user(Role.REQUESTER, email="paper.requester@example.org")
    staff = make_user(Role.RECORDS_CLERK, email="not-a-requester@example.org")
    token = csrf_token(clerk, path)
    for email, message in (("nobody@example.org", "No active requester account"),
                           (str(staff.email), "No active requester account"), ("not an address", "e-mail address")):
        bad = clerk.post(f"{path}/account", data={"csrf_token": token, "account-version": req.version,
                                                  "account-email": email})
        assert bad.status_code == 400 and message in html.unescape(bad.get_data(as_text=True))
    ok = clerk.post(f"{path}/account", data={"csrf_token": token, "account-version": req.version,
                                             "account-email": "Paper.Requester@example.org"})
    assert ok.status_code == 302
    assert only_request(app).owner_id == someone.id
    mine = app.test_client()
    login(mine, someone.email)
    assert mine.get(f"/my/requests/{req.reference}").status_code == 200
    again = clerk.post(f"{path}/account", data={"csrf_token": token, "account-version": req.version + 1,
                                                "account-email": "paper.requester@example.org"})
    assert again.status_code == 400 and "already belongs" in again.get_data(as_text=True)


def test_a_staff_entered_third_party_request_asks_the_recipients_language(app, clerk):
    response = post(clerk, request_type="third_party", recipient_name="Dr. Ana Ruiz",
                    recipient_address="1 Main St\nFresno", purpose="Continuing care", recipient_language="es")
    assert response.status_code == 303
    assert only_request(app).recipient_language == "es"
    bad = post(clerk, request_type="third_party", recipient_name="Dr. Ana Ruiz", recipient_address="1 Main St",
               purpose="Care", recipient_language="fr")
    assert bad.status_code == 400
