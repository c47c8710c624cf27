"""An admin gives a cost estimate from the queue page (first with a mistake); the requester reads
it, with the promise that records are never held back for an unpaid bill, and opens the
acknowledgment letter as a printable page (its own strict policy: the console guard fails the
test on any CSP violation). axe checks the app's pages."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import check_accessibility
from tests.browser.test_records_journey import sign_in, sign_out, the_request
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_estimate_and_letter(page: Page, app: Flask, make_user, make_request, browser_log) -> None:
    admin = make_user("records_clerk")
    requester = make_user("requester")
    make_request(requester)
    req = the_request(app)
    main = page.get_by_role("main")

    sign_in(page, admin.email, PASSWORD, admin.mfa_secret)
    page.goto(f"/queue/requests/{req.reference}")
    fees = main.locator("#fees")
    fees.locator("summary", has_text="Give an estimate").click()  # folded: fees are not a step of the common case
    fees.get_by_label("How the fee is worked out").select_option("paper")
    fees.get_by_role("button", name="Record the cost estimate").click()  # no page count: refused, kept
    expect(fees.get_by_label("Number of pages (for per-page copies)")).to_have_attribute("aria-invalid", "true")
    assert browser_log.take_errors()  # the 400 answer
    check_accessibility(page)
    fees = main.locator("#fees")
    fees.get_by_label("Number of pages (for per-page copies)").fill("42")
    fees.get_by_label("Postage in US dollars (if the copy is mailed)").fill("3.50")
    fees.get_by_role("button", name="Record the cost estimate").click()
    expect(main.locator("#fee-total")).to_have_text("$14.00")
    check_accessibility(page)
    sign_out(page)

    sign_in(page, requester.email, PASSWORD)
    page.goto(f"/my/requests/{req.reference}")
    expect(main.locator("#fee-total")).to_have_text("$14.00")
    expect(main.locator("#never-withheld")).to_contain_text("We never hold back your records")
    check_accessibility(page)
    main.locator("#letters").get_by_role("link", name="We received your request", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/my/requests/{re.escape(req.reference)}/letters/[A-Za-z0-9_-]+$"))
    expect(page.get_by_role("heading", level=1, name="We received your request")).to_be_visible()
    expect(page.locator("body")).to_contain_text(req.human_ref)
    assert not browser_log.errors, browser_log.errors
