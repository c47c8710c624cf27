"""A former patient registers, confirms the address from the e-mailed link, and resets a forgotten
password, in a real browser with an accessibility check of every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from intake.auth.account_services import send_reset_links
from tests.browser.conftest import check_accessibility
from tests.test_registration import link_path, outbox

pytestmark = pytest.mark.browser
PW = "a brand new registration passphrase"


@pytest.mark.browser
def test_register_verify_reset_pages(page: Page, app, browser_log) -> None:
    main = page.get_by_role("main")
    page.goto("/login")
    check_accessibility(page)
    main.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", level=1, name="Create an account")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("E-mail address").fill("browser.person@example.org")
    page.get_by_label("Password", exact=True).fill(PW)
    page.get_by_label("Password again").fill(PW + "x")
    main.get_by_role("button", name="Create account").click()
    expect(page.get_by_label("Password again")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password again")).to_have_accessible_description("The two passwords are not the same.")
    check_accessibility(page)
    assert browser_log.take_errors()
    page.get_by_label("Password", exact=True).fill(PW)
    page.get_by_label("Password again").fill(PW)
    main.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1, name="Check your e-mail")).to_be_visible()
    check_accessibility(page)

    page.goto("/login")
    page.get_by_label("E-mail address").fill("browser.person@example.org")
    page.get_by_label("Password").fill(PW)
    main.get_by_role("button", name="Sign in").click()
    # A requester starts at their requests, which explain the confirmation and offer a new link.
    expect(page).to_have_url(re.compile(r"/my/requests/$"))
    expect(main.locator("#verify-first")).to_be_visible()
    expect(main.get_by_role("button", name="Send the link again")).to_be_visible()
    check_accessibility(page)
    main.get_by_role("button", name="Send the link again").click()
    expect(main.get_by_role("status").first).to_contain_text("We sent a new link")
    check_accessibility(page)

    path = link_path(app, outbox(app)[-1].body)
    page.goto(path)
    check_accessibility(page)
    main.get_by_role("button", name="Confirm my e-mail address").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(main.get_by_role("button", name="Send the link again")).to_have_count(0)
    page.goto(path)
    expect(page.get_by_role("heading", level=1, name="This link cannot be used")).to_be_visible()
    check_accessibility(page)
    assert browser_log.take_errors()

    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    page.goto("/login")
    main.get_by_role("link", name="Forgot your password?").click()
    check_accessibility(page)
    page.get_by_label("E-mail address of your account").fill("browser.person@example.org")
    main.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("heading", level=1, name="Check your e-mail")).to_be_visible()
    check_accessibility(page)
    with app.app_context():
        send_reset_links()  # what `flask outbox send` does first on each pass
    path = link_path(app, outbox(app)[-1].body, "/reset/")
    page.goto(path)
    check_accessibility(page)
    page.get_by_label("Password", exact=True).fill("another fine passphrase")
    page.get_by_label("Password again").fill("another fine passphrase")
    main.get_by_role("button", name="Save the new password").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(main.get_by_role("status")).to_contain_text("Your password is changed")
    page.goto("/records")
    check_accessibility(page)

    # The new password signs in; the registration is verified, so no banner is left.
    page.goto("/login")
    page.get_by_label("E-mail address").fill("browser.person@example.org")
    page.get_by_label("Password").fill("another fine passphrase")
    main.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/my/requests/$"))
    expect(main.locator("#verify-first")).to_have_count(0)
    page.goto("/account")
    expect(main.get_by_text("browser.person@example.org")).to_be_visible()
