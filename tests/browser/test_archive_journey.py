"""An admin works with the archive index in a real browser: a search with missing terms explained
next to the field, a search that finds a patient, the patient's page, a refused and a saved edit,
and the verification step of a request with its candidates table and MRN lookup; each page passes
the accessibility check."""

from __future__ import annotations

import re

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from intake.extensions import db
from intake.records import services
from intake.records.models import RecordsRequest, RequestStatus
from intake.users.models import User
from tests.browser.conftest import BrowserLog, check_accessibility
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_admin_searches_edits_and_verifies_against_the_archive(
        page: Page, app: Flask, make_user, make_request, archive_patient, browser_log: BrowserLog) -> None:
    admin = make_user("records_clerk")
    patient_id = archive_patient(mrn="JR-100", former_names="Stone, Jordan")
    other_id = archive_patient(mrn="JR-200", last_name="Unrelated", first_name="Pat")
    ref = make_request(make_user("requester"))
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()
        services.transition(req, RequestStatus.VERIFYING, db.session.get(User, admin.id))
        db.session.commit()
    main = page.get_by_role("main")
    nav = page.get_by_role("navigation", name="Main")

    page.goto("/login")
    page.get_by_label("E-mail address").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(pyotp.TOTP(admin.mfa_secret).now())
    main.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(path_is("/queue/requests/"))  # a records clerk starts at the queue

    nav.get_by_role("link", name="Archive").click()
    expect(page.get_by_role("heading", level=1, name="Archive index")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("Last name (current or former)").fill("Stone")
    main.get_by_role("button", name="Search").click()
    expect(page.get_by_label("Date of birth")).to_have_accessible_description(re.compile("Enter the date of birth too"))
    assert len(browser_log.take_errors()) == 1  # the refused search answered 400
    check_accessibility(page)
    page.get_by_label("Date of birth").fill("1980-05-17")
    main.get_by_role("button", name="Search").click()
    expect(page).to_have_url(path_is("/admin/archive/"))  # the terms stay out of the URL
    check_accessibility(page)
    main.get_by_role("link", name="JR-100").click()
    expect(page).to_have_url(path_is(f"/admin/archive/{patient_id}"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Archive record #{patient_id}")
    check_accessibility(page)

    page.get_by_label("Discharged on (optional)").fill("2019-01-01")
    main.get_by_role("button", name="Save changes").click()
    expect(page.get_by_label("Discharged on (optional)")).to_have_attribute("aria-invalid", "true")
    assert len(browser_log.take_errors()) == 1
    check_accessibility(page)
    page.get_by_label("Discharged on (optional)").fill("2017-04-20")
    main.get_by_role("button", name="Save changes").click()
    expect(main.get_by_text(f"Archive record #{patient_id} saved.")).to_be_visible()

    page.goto(f"/queue/requests/{ref}")
    expect(main.get_by_text("Archive records that may be this patient")).to_be_visible()
    check_accessibility(page)
    main.locator("summary", has_text="Look the record up by its MRN").click()
    page.get_by_label("Look up an MRN").fill("JR-200")
    main.get_by_role("button", name="Look up").click()
    expect(page).to_have_url(re.compile(rf"/queue/requests/{ref}\?archive={other_id}"))
    expect(main.get_by_text("MRN lookup")).to_be_visible()
    check_accessibility(page)
