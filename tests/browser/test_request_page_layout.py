"""The staff request page at a glance (issue 19): a records clerk walks the common case (start the
identity check, verify, add the records, release them, record the delivery, complete) at 1280x800
from the next steps' links, and the page stays under 2,000 px tall at each step; at phone width
(390 px) nothing scrolls sideways. axe checks every step. Withdrawing asks a reason and a
confirmation."""

from __future__ import annotations

import os
import re

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from intake.extensions import db
from intake.records.models import RecordsRequest, RequestStatus
from tests.browser.conftest import check_accessibility
from tests.browser.test_records_journey import PDF, sign_in, the_request
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

MAX_HEIGHT = 2_000  # px at 1280 wide: the common case reads without scrolling past unrelated forms


def height(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollHeight"))


SECTION_HEIGHTS = """() => Array.from(document.querySelectorAll(
    'body > *, main section[id], main aside, main header, main details[id]'))
    .map(e => `${e.tagName.toLowerCase()}#${e.id}: ${Math.round(e.getBoundingClientRect().height)}`).join(', ')"""


def assert_compact(page: Page, step: str) -> None:
    page.wait_for_load_state("load")  # the stylesheet and scripts in place before measuring
    measured = height(page)
    if os.environ.get("PAGE_SHOTS"):  # a look at each step, outside the repository
        page.screenshot(path=f"{os.environ['PAGE_SHOTS']}/{step.replace(' ', '-')}.png", full_page=True)
    assert measured < MAX_HEIGHT, (f"the request page is {measured} px tall at 1280 wide at step “{step}” "
                                   f"({page.evaluate(SECTION_HEIGHTS)})")
    check_accessibility(page)


def assert_fits_a_phone(page: Page) -> None:
    """At 390 px nothing scrolls sideways (a wide table scrolls inside its own box)."""
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls {overflow} px sideways at 390 px"
    check_accessibility(page)
    page.set_viewport_size({"width": 1280, "height": 800})


def follow_step(page: Page, text: str) -> None:
    """Follow the next steps' link that says ``text`` (an in-page link)."""
    page.locator("#next-steps").get_by_role("link", name=re.compile(text)).click()


def test_the_common_case_fits_a_laptop_screen_at_each_step(page: Page, app: Flask, make_user, make_request,
                                                           archive_patient, tmp_path) -> None:
    clerk = make_user("records_clerk")
    requester = make_user("requester")
    ref = make_request(requester)
    patient_id = archive_patient(mrn="CPP-004711")
    records_pdf = tmp_path / "records.pdf"
    records_pdf.write_bytes(PDF)
    main = page.get_by_role("main")
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, clerk.email, PASSWORD, clerk.mfa_secret)

    page.goto(f"/queue/requests/{ref}")
    header = main.locator("#request-header")
    expect(header.locator("#request-status")).to_have_text("Received")
    expect(header.locator("#due-reason")).to_contain_text("calendar days")
    expect(header.locator("#assignee")).to_have_text("nobody")
    expect(page.get_by_role("navigation", name="Sections of this request")).to_be_visible()
    steps = main.locator("#next-steps")
    expect(steps.get_by_role("listitem")).to_have_count(2)  # claim, start the identity check
    # The actions stand beside the sections at 1280 wide.
    actions, sections = main.locator("#actions").bounding_box(), main.locator("#details").bounding_box()
    assert actions and sections and actions["x"] > sections["x"] + sections["width"] - 1
    assert actions["y"] < sections["y"] + sections["height"]
    assert_compact(page, "received")
    assert_fits_a_phone(page)

    follow_step(page, "Assign the request to yourself")
    main.get_by_role("button", name="Assign the request to me").click()
    expect(header.locator("#assignee")).to_have_text("me")
    follow_step(page, "Start the identity check")
    main.locator("#move-verifying").get_by_role("button", name="Start the identity check").click()
    expect(header.locator("#request-status")).to_have_text("Checking identity")
    assert_compact(page, "checking identity")

    follow_step(page, "record it as verified")
    verify = main.locator("#move-in_review")
    verify.get_by_label("How the identity was verified").select_option("photo_id")
    verify.get_by_label("The archive record this request is about").select_option(str(patient_id))
    verify.get_by_role("button", name="Record the identity as verified").click()
    expect(header.locator("#request-status")).to_have_text("Being prepared")
    assert_compact(page, "being prepared")
    assert_fits_a_phone(page)

    follow_step(page, "Add the records")
    add = main.locator("#add-document")
    add.get_by_role("radio", name="Released records").check()
    add.get_by_label("File (PDF, PNG or JPEG)").set_input_files(str(records_pdf))
    add.get_by_role("button", name="Add the document to the request").click()
    expect(main.get_by_role("link", name="records.pdf")).to_be_visible()
    assert_compact(page, "records added")

    follow_step(page, "Release the records")
    main.get_by_role("row").filter(has_text="records.pdf").get_by_role(
        "button", name="Release the records to the requester").click()
    expect(main.get_by_role("row").filter(has_text="records.pdf")).to_contain_text("Released until")
    assert_compact(page, "records released")

    follow_step(page, "Record the delivery")
    deliver = main.locator("form", has=page.get_by_role("button", name="Record the delivery"))
    deliver.get_by_role("radio", name=re.compile("^Secure download")).check()
    deliver.get_by_role("button", name="Record the delivery").click()
    expect(main.locator("#delivery")).to_be_visible()
    expect(steps.get_by_role("listitem")).to_have_count(2)  # a fee estimate (optional), complete
    assert_compact(page, "delivered")

    follow_step(page, "Complete the request")
    main.locator("#move-fulfilled").get_by_role("button", name="Complete the request").click()
    expect(header.locator("#request-status")).to_have_text("Completed")
    expect(main.locator("#move-in_review summary")).to_have_text("Reopen the request")  # folded: rare
    assert_compact(page, "completed")
    assert_fits_a_phone(page)
    with app.app_context():
        assert db.session.get(RecordsRequest, the_request(app).id).status == RequestStatus.FULFILLED


def test_withdrawing_asks_a_reason_and_a_confirmation(page: Page, app: Flask, make_user, make_request,
                                                      browser_log) -> None:
    clerk = make_user("records_clerk")
    ref = make_request(make_user("requester"))
    main = page.get_by_role("main")
    sign_in(page, clerk.email, PASSWORD, clerk.mfa_secret)
    page.goto(f"/queue/requests/{ref}")
    withdraw = main.locator("#move-withdrawn")
    withdraw.locator("summary").click()
    withdraw.get_by_label("Why is the request withdrawn?").select_option("other")
    withdraw.get_by_role("button", name="Withdraw the request").click()  # no words, no confirmation
    withdraw = main.locator("#move-withdrawn")
    expect(withdraw.get_by_label("I understand the request will be closed")).to_have_attribute("aria-invalid", "true")
    expect(withdraw.get_by_label("Why is the request withdrawn?")).to_have_value("other")
    assert browser_log.take_errors()  # the 400 answer
    check_accessibility(page)
    withdraw.get_by_label("In your words").fill("The requester wrote that they found their copy.")
    withdraw.get_by_label("I understand the request will be closed").check()
    withdraw.get_by_role("button", name="Withdraw the request").click()
    expect(main.locator("#request-status")).to_have_text("Withdrawn")
    expect(main.locator("#timeline")).to_contain_text("The requester wrote that they found their copy.")
    expect(main.locator("#next-steps")).to_contain_text("Reopen the request only if")
    check_accessibility(page)
