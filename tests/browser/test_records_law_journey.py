"""A records clerk enters a request that came by post (received days ago, the scanned letter attached,
a postal address, no account), checks the identity against the archive, mails the copy and prints the
letter that goes with it; the due date runs from the true receipt day. A second journey mails records to
a third party under a paper consent read side by side with the request, and the disclosure is logged at
that moment. axe checks every page visited."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask_babel import format_date
from playwright.sync_api import Page, expect
from sqlalchemy import select

from intake import clock
from intake.db_types import utcnow
from intake.extensions import db
from intake.records import deadlines
from intake.records.models import Channel, Disclosure, RecordsRequest, RequestStatus
from tests.browser.conftest import check_accessibility
from tests.browser.test_records_journey import sign_in
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% the scanned letter\n%%EOF\n"


def the_request(app: Flask) -> RecordsRequest:
    with app.app_context():
        req = db.session.execute(select(RecordsRequest)).scalar_one()
        db.session.expunge(req)
        return req


def enter_mailed_request(page: Page, app: Flask, scan, received_local: str, request_type_label: str,
                         **third_party: str) -> RecordsRequest:
    main = page.get_by_role("main")
    page.goto("/queue/requests/")
    main.get_by_role("link", name="Enter a request received on paper").click()
    expect(page.get_by_role("heading", level=1, name="Enter a request received on paper")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("Received on (date and time, facility time)").fill(received_local)
    page.get_by_role("radio", name="By post", exact=True).check()
    page.get_by_label("The scanned request (PDF, PNG or JPEG)").set_input_files(str(scan))
    page.get_by_label("The patient's full name").fill("Jordan Example")
    dob = page.get_by_role("group", name="The patient's date of birth")
    dob.get_by_label("Day").fill("17")
    dob.get_by_label("Month").fill("5")
    dob.get_by_label("Year").fill("1980")
    page.get_by_label("I am the patient", exact=True).check()
    page.get_by_label("Postal address").fill("12 Oak Lane\nBakersfield, CA 93301")
    page.get_by_label(request_type_label).check()
    for label, value in third_party.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("radio", name="Paper").check()
    page.get_by_role("radio", name="By post to an address I give").check()
    page.get_by_label("The written request is signed by the requester").check()
    page.get_by_label("The name as signed on the request").fill("Jordan Example")
    main.get_by_role("button", name="Enter the request").click()
    expect(page.get_by_role("heading", level=1, name=re.compile(r"^Request RR-"))).to_be_visible()
    return the_request(app)


def verify(page: Page, patient_id: int) -> None:
    main = page.get_by_role("main")
    main.get_by_role("button", name="Start the identity check").click()
    verify = main.locator("form", has=page.get_by_role("button", name="Record the identity as verified"))
    verify.get_by_label("How the identity was verified").select_option("notarized_form")
    verify.get_by_label("The archive record this request is about").select_option(str(patient_id))
    verify.get_by_role("button", name="Record the identity as verified").click()
    expect(main.locator("#request-status")).to_have_text("Being prepared")


def test_a_mailed_request_entered_by_staff_to_a_mailed_copy_with_its_letter(page: Page, app: Flask, make_user,
                                                                            archive_patient, tmp_path,
                                                                            browser_log) -> None:
    clerk = make_user("records_clerk")
    patient_id = archive_patient(mrn="CPP-000123")
    scan = tmp_path / "letter-scan.pdf"
    scan.write_bytes(PDF)
    main = page.get_by_role("main")
    with app.app_context():
        received = clock.to_local(utcnow() - timedelta(days=4)).replace(hour=9, minute=30)
    sign_in(page, clerk.email, PASSWORD, clerk.mfa_secret)

    # A future receipt time is refused, and nothing typed is lost.
    page.goto("/queue/requests/new")
    page.get_by_label("Received on (date and time, facility time)").fill(
        (received + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("The patient's full name").fill("Jordan Example")
    main.get_by_role("button", name="Enter the request").click()
    expect(main).to_contain_text("cannot be in the future")
    expect(page.get_by_label("The patient's full name")).to_have_value("Jordan Example")
    check_accessibility(page)
    assert browser_log.take_errors()  # the 400 answer

    req = enter_mailed_request(page, app, scan, received.strftime("%Y-%m-%dT%H:%M"),
                               "A copy of my records (or the patient's, as their representative)")
    assert req.owner_id is None and req.channel == Channel.MAIL
    with app.test_request_context():
        due = deadlines.due_date(req)
        assert due.received_on == received.date()
        expect(main.locator("#due-explained")).to_contain_text(format_date(received.date()))
    expect(main.locator("#no-account")).to_contain_text("letters go by post")
    expect(main.locator("#documents-table")).to_contain_text("letter-scan.pdf")
    check_accessibility(page)

    verify(page, patient_id)
    deliver = main.locator("form", has=page.get_by_role("button", name="Record the delivery"))
    deliver.get_by_role("radio", name="Sent by post").check()
    deliver.get_by_role("button", name="Record the delivery").click()
    expect(main.locator("#delivery")).to_be_visible()
    main.get_by_role("button", name="Complete the request").click()
    expect(main.locator("#request-status")).to_have_text("Completed")
    check_accessibility(page)

    # The letter to post with the copy: to the postal address, printable.
    main.locator("#letters").get_by_role("link", name="Your records", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Your records")).to_be_visible()
    expect(page.locator("#recipient-address")).to_contain_text("12 Oak Lane")
    expect(page.get_by_text("Sent by post")).to_be_visible()
    with app.app_context():
        assert db.session.get(RecordsRequest, req.id).status == RequestStatus.FULFILLED
        # The patient's own copy is not a disclosure to anyone else: nothing for the accounting.
        assert db.session.execute(select(Disclosure)).first() is None


def test_records_mailed_to_a_third_party_under_a_paper_consent_are_logged_when_they_leave(
        page: Page, app: Flask, make_user, archive_patient, tmp_path, browser_log) -> None:
    clerk = make_user("records_clerk")
    patient_id = archive_patient(mrn="CPP-000456")
    scan = tmp_path / "letter-scan.pdf"
    scan.write_bytes(PDF)
    main = page.get_by_role("main")
    with app.app_context():
        received = clock.to_local(utcnow() - timedelta(days=2)).replace(hour=10, minute=0)
    sign_in(page, clerk.email, PASSWORD, clerk.mfa_secret)
    req = enter_mailed_request(page, app, scan, received.strftime("%Y-%m-%dT%H:%M"),
                               "Send a copy to someone else (a doctor, lawyer, insurer…)",
                               **{"Who should receive the copy": "Harbor Clinic",
                                  "The recipient's address": "1 Harbor Way\nOakland, CA 94607",
                                  "What the records are for": "Continuing care"})
    verify(page, patient_id)
    expect(main.locator("#gate-problem")).to_contain_text("no signed consent")

    paper = main.locator("details", has_text="Enter a consent received on paper")
    paper.locator("summary").click()
    paper.get_by_label("How much and what kind of information may be disclosed").fill("All records of my stay")
    paper.get_by_role("checkbox", name=re.compile("^I understand that I can revoke")).check()
    paper.get_by_label("…or it ends when this event happens").fill("The end of my treatment at Harbor Clinic")
    paper.get_by_label("Signature: type your full name").fill("Jordan Example")
    with app.app_context():
        paper.get_by_label("Date signed (as written on the paper)").fill(deadlines.today().isoformat())
    paper.get_by_role("button", name="Record the paper consent").click()
    expect(main.locator("#consent-comparison")).to_be_visible()
    expect(main.locator("#consent-comparison [data-differs=yes]")).to_have_count(0)
    check_accessibility(page)

    deliver = main.locator("form", has=page.get_by_role("button", name="Record the delivery"))
    deliver.get_by_role("radio", name="Sent by post").check()
    deliver.get_by_role("button", name="Record the delivery").click()  # not confirmed: refused
    expect(main).to_contain_text("side by side")
    assert browser_log.take_errors()  # the 400 answer
    deliver = main.locator("form", has=page.get_by_role("button", name="Record the delivery"))
    deliver.get_by_role("radio", name="Sent by post").check()
    deliver.get_by_role("checkbox", name=re.compile("^I read the consent beside this request")).check()
    deliver.get_by_role("button", name="Record the delivery").click()
    expect(main.locator("#consent-disclosures")).to_contain_text("Harbor Clinic")
    check_accessibility(page)
    main.locator("#letters").get_by_role("link", name="Records sent to you", exact=True).click()
    expect(page.locator("#redisclosure-notice")).to_contain_text("42 CFR part 2")
    expect(page.locator("#consent-scope")).to_contain_text("All records of my stay")
    expect(page).not_to_have_url(path_is(f"/queue/requests/{req.reference}"))
    with app.app_context():
        [logged] = db.session.execute(select(Disclosure)).scalars().all()
        assert (logged.basis, logged.channel, logged.recipient_name, logged.archived_patient_id) == (
            "consent", "mail", "Harbor Clinic", patient_id)
        assert logged.notice_version == "2024" and logged.notice_language == "en"
