"""A staff member's first sign-in in a real browser: password, authenticator enrolment with the
key shown on the page, recovery codes shown once, then the account page."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import check_accessibility, save_screenshot
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_first_staff_sign_in_enrols_an_authenticator(page: Page, make_user) -> None:
    operator = make_user("operator", mfa=False)
    main = page.get_by_role("main")

    page.goto("/login")
    page.get_by_label("E-mail address").fill(operator.email)
    page.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(path_is("/mfa/setup"))
    expect(page.get_by_role("heading", level=1, name="Set up your second factor")).to_be_visible()
    qr = page.get_by_role("img", name=re.compile("QR code"))
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.naturalWidth") > 0  # the SVG data URI really renders under the CSP
    check_accessibility(page)
    save_screenshot(page, "mfa-setup")

    # A wrong code is explained next to the field.
    page.get_by_label("Code").fill("000000")
    main.get_by_role("button", name="Confirm").click()
    expect(main.get_by_text("That code is not right")).to_be_visible()
    check_accessibility(page)

    secret = page.get_by_label("Setup key").inner_text().strip()
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    main.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", level=1, name="Your recovery codes")).to_be_visible()
    expect(main.locator("ol.recovery-codes li")).to_have_count(10)
    check_accessibility(page)
    save_screenshot(page, "recovery-codes")
    main.get_by_role("link", name=re.compile("continue")).click()

    expect(page).to_have_url(path_is("/calls/new"))  # an operator starts at "Log a call"
    page.goto("/account")
    expect(main.get_by_text(operator.email)).to_be_visible()
