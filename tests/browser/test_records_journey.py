"""A former patient registers, confirms the address, asks for a copy of their records and sees it
acknowledged; an admin claims the request, starts the identity check and asks a question; the
requester answers and the request goes back to the admin. The due date shown on both sides is the
one California's rule gives (15 calendar days from receipt). axe checks every page visited."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from flask_babel import format_date
from playwright.sync_api import Page, expect
from sqlalchemy import select

from intake.extensions import db
from intake.records import deadlines
from intake.records.models import RecordsRequest, RequestStatus
from tests.browser.conftest import check_accessibility
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD
from tests.test_registration import link_path, outbox

pytestmark = pytest.mark.browser

REQUESTER_EMAIL = "former.patient@example.org"
REQUESTER_PW = "a long requester passphrase 7"


def sign_out(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()


def sign_in(page: Page, email: str, password: str, totp_secret: str | None = None) -> None:
    """Through the real forms; afterwards the person is on the page their roles start at."""
    main = page.get_by_role("main")
    page.goto("/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    main.get_by_role("button", name="Sign in").click()
    if totp_secret:
        expect(page).to_have_url(path_is("/login/mfa"))
        page.get_by_label("Code").fill(pyotp.TOTP(totp_secret).now())
        main.get_by_role("button", name="Continue").click()
    expect(page).not_to_have_url(re.compile(r"/login(/mfa)?$"))


def the_request(app: Flask) -> RecordsRequest:
    with app.app_context():
        req = db.session.execute(select(RecordsRequest)).scalar_one()
        db.session.expunge(req)
        return req


def expected_due(app: Flask, req: RecordsRequest, form: str) -> str:
    """The due date as a page prints it (``form``: "long" or "medium"), computed here from the
    receipt day and the rule."""
    with app.test_request_context():
        received = deadlines.facility_day(req.received_at)
        return format_date(received + timedelta(days=15), form)


def test_a_request_from_registration_to_an_answered_question(page: Page, app: Flask, make_user, browser_log) -> None:
    admin = make_user("records_clerk")
    main = page.get_by_role("main")

    # The requester registers and confirms the address from the e-mailed link.
    page.goto("/records")
    check_accessibility(page)
    page.goto("/register")
    page.get_by_label("E-mail address").fill(REQUESTER_EMAIL)
    page.get_by_label("Password", exact=True).fill(REQUESTER_PW)
    page.get_by_label("Password again").fill(REQUESTER_PW)
    main.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1, name="Check your e-mail")).to_be_visible()
    page.goto(link_path(app, outbox(app)[-1].body))
    main.get_by_role("button", name="Confirm my e-mail address").click()
    sign_in(page, REQUESTER_EMAIL, REQUESTER_PW)

    # ... and asks for a copy of their records.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My requests").click()
    expect(page.get_by_role("heading", level=1, name="My records requests")).to_be_visible()
    check_accessibility(page)
    main.get_by_role("link", name="Start a request").first.click()
    expect(page.get_by_role("heading", level=1, name="Request medical records")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("The patient's full name").fill("Jordan Example")
    dob = page.get_by_role("group", name="The patient's date of birth")
    dob.get_by_label("Day").fill("17")
    dob.get_by_label("Month").fill("5")
    dob.get_by_label("Year").fill("1980")
    page.get_by_label("Stay began, approximately (optional)").fill("2017-03-01")
    page.get_by_label("Stay ended, approximately (optional)").fill("2017-04-15")
    page.get_by_label("I am the patient", exact=True).check()
    page.get_by_role("radio", name=re.compile("^A copy of my records")).check()
    page.get_by_role("radio", name="Secure download from this site").check()
    # First without the signature: the form says what is missing and keeps the rest.
    main.get_by_role("button", name="Submit the request").click()
    expect(page.get_by_label("Type your full name as your signature")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("The patient's full name")).to_have_value("Jordan Example")
    check_accessibility(page)
    assert browser_log.take_errors()  # the 400 answer
    page.get_by_role("checkbox", name=re.compile("^I confirm that the information is true")).check()
    page.get_by_label("Type your full name as your signature").fill("Jordan Example")
    main.get_by_role("button", name="Submit the request").click()

    req = the_request(app)
    expect(page).to_have_url(path_is(f"/my/requests/{req.reference}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(req.human_ref)
    expect(main).to_contain_text("Received")
    due = expected_due(app, req, "long")
    expect(main.locator("#due")).to_contain_text(due)
    check_accessibility(page)
    acknowledgment = outbox(app)[-1]
    assert acknowledgment.recipient == REQUESTER_EMAIL and req.human_ref in acknowledgment.subject
    assert "Jordan" not in acknowledgment.body
    sign_out(page)

    # An admin finds it in the queue, claims it, starts the identity check and asks a question.
    sign_in(page, admin.email, PASSWORD, admin.mfa_secret)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Records queue").click()
    expect(page).to_have_url(path_is("/queue/requests/"))
    check_accessibility(page)
    main.get_by_role("link", name=req.human_ref).click()
    expect(page).to_have_url(path_is(f"/queue/requests/{req.reference}"))
    expect(main).to_contain_text("Jordan Example")
    expect(main).to_contain_text(expected_due(app, req, "medium"))
    check_accessibility(page)
    main.get_by_role("button", name="Assign the request to me").click()
    expect(main.get_by_role("status").first).to_be_visible()
    main.get_by_role("button", name="Start the identity check").click()
    expect(main).to_contain_text("Checking identity")
    check_accessibility(page)
    main.locator("summary", has_text="Send the question to the requester").click()  # folded: not the next step
    ask = main.locator("form", has=page.get_by_role("button", name="Send the question to the requester"))
    ask.get_by_role("textbox").fill("Please tell us the name you used during your stay.")
    ask.get_by_role("button", name="Send the question to the requester").click()
    expect(main).to_contain_text("Waiting for the requester")
    check_accessibility(page)
    assert outbox(app)[-1].kind == "records_action_needed"
    sign_out(page)

    # The requester answers; the request goes back to the identity check, due date unchanged.
    sign_in(page, REQUESTER_EMAIL, REQUESTER_PW)
    page.goto(f"/my/requests/{req.reference}")
    expect(main.get_by_role("heading", name="We need information from you")).to_be_visible()
    expect(main).to_contain_text("Please tell us the name you used during your stay.")
    check_accessibility(page)
    page.get_by_label("Your message").fill("I used the name Jordan Sample.")
    main.get_by_role("button", name="Send my answer").click()
    expect(main).to_contain_text("Checking identity")
    expect(main).to_contain_text("I used the name Jordan Sample.")
    expect(main.locator("#due")).to_contain_text(due)
    check_accessibility(page)
    with app.app_context():
        assert db.session.get(RecordsRequest, req.id).status == RequestStatus.VERIFYING


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_identity_archive_release_and_download(page: Page, app: Flask, make_user, make_request, archive_patient,
                                               tmp_path) -> None:
    """The requester sends a photo ID; the admin verifies it against the archive index, adds the
    records, releases them and records the delivery; the requester downloads them."""
    requester = make_user("requester")
    admin = make_user("records_clerk")
    ref = make_request(requester)
    patient_id = archive_patient(mrn="CPP-004711")
    req = the_request(app)
    main = page.get_by_role("main")
    id_scan = tmp_path / "my-id.png"
    id_scan.write_bytes(PNG)
    records_pdf = tmp_path / "records.pdf"
    records_pdf.write_bytes(PDF)

    sign_in(page, requester.email, PASSWORD)
    page.goto(f"/my/requests/{ref}")
    upload = main.locator("form", has=page.get_by_role("button", name="Send document"))
    upload.get_by_role("radio", name="Photo ID").check()
    upload.get_by_label("File (PDF, PNG or JPEG)").set_input_files(str(id_scan))
    upload.get_by_role("button", name="Send document").click()
    expect(main.get_by_text("my-id.png")).to_be_visible()
    check_accessibility(page)
    sign_out(page)

    sign_in(page, admin.email, PASSWORD, admin.mfa_secret)
    page.goto(f"/queue/requests/{ref}")
    main.get_by_role("button", name="Start the identity check").click()
    expect(main).to_contain_text("Checking identity")
    expect(main.get_by_role("table").filter(has_text="CPP-004711")).to_be_visible()  # the archive candidate
    check_accessibility(page)
    verify = main.locator("form", has=page.get_by_role("button", name="Record the identity as verified"))
    verify.get_by_label("How the identity was verified").select_option("photo_id")
    verify.get_by_label("The archive record this request is about").select_option(str(patient_id))
    verify.get_by_role("button", name="Record the identity as verified").click()
    expect(main.locator("#request-status")).to_have_text("Being prepared")

    add = main.locator("form", has=page.get_by_role("button", name="Add the document to the request"))
    add.get_by_role("radio", name="Released records").check()
    add.get_by_label("File (PDF, PNG or JPEG)").set_input_files(str(records_pdf))
    add.get_by_role("button", name="Add the document to the request").click()
    expect(main.get_by_role("link", name="records.pdf")).to_be_visible()
    records_row = main.get_by_role("row").filter(has_text="records.pdf")
    records_row.get_by_role("button", name="Release the records to the requester").click()
    deliver = main.locator("form", has=page.get_by_role("button", name="Record the delivery"))
    deliver.get_by_role("radio", name=re.compile("^Secure download")).check()
    deliver.get_by_role("button", name="Record the delivery").click()
    expect(main.locator("#delivery")).to_be_visible()
    main.get_by_role("button", name="Complete the request").click()
    expect(main.locator("#request-status")).to_have_text("Completed")
    check_accessibility(page)
    sign_out(page)

    sign_in(page, requester.email, PASSWORD)
    page.goto(f"/my/requests/{ref}")
    expect(main).to_contain_text("Completed")
    check_accessibility(page)
    with page.expect_download() as download_info:
        main.get_by_role("link", name=re.compile("^Download: records.pdf")).click()
    saved = tmp_path / "downloaded.pdf"
    download_info.value.save_as(saved)
    assert saved.read_bytes() == PDF
    with app.app_context():
        from intake.audit.models import AuditEvent

        actions = db.session.execute(select(AuditEvent.action)).scalars().all()
        assert actions.count("document.downloaded") == 1 and "document.released" in actions
        assert db.session.get(RecordsRequest, req.id).status == RequestStatus.FULFILLED


def test_a_requester_signs_and_revokes_a_third_party_consent(page: Page, app: Flask, make_user, make_request,
                                                              browser_log) -> None:
    """The consent page of a third-party request: a missing element is named, the signed consent
    shows on the request's page, and it can be revoked; axe checks each page."""
    requester = make_user("requester")
    ref = make_request(requester, request_type="third_party", recipient_name="Harbor Clinic",
                       recipient_address="1 Harbor Way, Oakland, CA 94607", purpose="Continuing care")
    main = page.get_by_role("main")
    sign_in(page, requester.email, PASSWORD)
    page.goto(f"/my/requests/{ref}")
    check_accessibility(page)
    main.get_by_role("link", name="Sign the consent").click()
    expect(page.get_by_role("heading", level=1, name="Consent to send your records to someone else")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("How much and what kind of information may be disclosed").fill(
        "Discharge summary and medication records from my 2017 stay")
    page.get_by_label("This consent ends on (date)").fill("2027-12-31")
    page.get_by_label("Signature: type your full name").fill("Jordan Example")
    main.get_by_role("button", name="Sign the consent").click()  # the revocation statement is not ticked
    expect(main.locator("[aria-invalid=true]").first).to_be_visible()
    check_accessibility(page)
    assert browser_log.take_errors()  # the 400 answer
    main.get_by_role("checkbox", name=re.compile("^I understand that I can revoke")).check()
    main.get_by_role("button", name="Sign the consent").click()
    expect(page).to_have_url(path_is(f"/my/requests/{ref}"))
    expect(main.locator("#consent")).to_contain_text("Harbor Clinic")
    check_accessibility(page)
    revoke = main.locator("form", has=page.get_by_role("button", name=re.compile("Revoke", re.I)))
    revoke.get_by_role("checkbox").check()
    revoke.get_by_role("button", name=re.compile("Revoke", re.I)).click()
    expect(main.locator("#consent")).to_contain_text(re.compile("revoked", re.I))
    check_accessibility(page)
