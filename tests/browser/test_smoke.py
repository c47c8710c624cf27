"""Smoke journeys through a real browser: public pages, sign-in, account, sign-out.

Each page visited is also checked with axe-core, and the console guard in conftest.py fails the
test on any browser error, so a Content-Security-Policy violation cannot slip through.
"""

from __future__ import annotations

import re

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import BrowserLog, check_accessibility, save_screenshot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

WRONG_CREDENTIALS = "The e-mail address or password is not right."


def path_is(path: str) -> re.Pattern[str]:
    """Match a full URL whose path is exactly ``path`` (any query string)."""
    return re.compile(r"^https?://[^/]+" + re.escape(path) + r"(\?.*)?$")


@pytest.mark.browser
def test_public_pages_sign_in_and_out(page: Page, app: Flask, make_user) -> None:
    admin = make_user("admin")
    number = app.config["HELPLINE_NUMBER"]
    assert number, "the helpline number must be configured"
    nav = page.get_by_role("navigation", name="Main")
    main = page.get_by_role("main")

    # Home: the closure notice and the helpline number, as a working tel: link.
    page.goto("/")
    expect(page.get_by_role("heading", level=1, name="We are not accepting patients")).to_be_visible()
    helpline = main.locator(".helpline-number").get_by_role("link", name=number, exact=True)
    expect(helpline).to_be_visible()
    expect(helpline).to_have_attribute("href", "tel:" + re.sub(r"[^\d+]", "", number))
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()
    check_accessibility(page)
    save_screenshot(page, "home")

    # The records guide, reached from the home page.
    main.get_by_role("link", name="How to request your records").click()
    expect(page).to_have_url(path_is("/records"))
    expect(page.get_by_role("heading", level=1, name="Requesting your medical records")).to_be_visible()
    check_accessibility(page)

    # Sign in.
    nav.get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(path_is("/login"))
    page.get_by_label("E-mail address").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()

    # Staff enter the code from their authenticator app.
    expect(page).to_have_url(path_is("/login/mfa"))
    expect(page.get_by_role("heading", level=1, name="Enter your code")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("Code").fill(pyotp.TOTP(admin.mfa_secret).now())
    main.get_by_role("button", name="Continue").click()

    # An admin starts at the hub; the account page names the user who signed in.
    expect(page).to_have_url(path_is("/admin/"))
    expect(page.get_by_role("heading", level=1, name="Administration")).to_be_visible()
    nav.get_by_role("link", name="My account").click()
    expect(page).to_have_url(path_is("/account"))
    expect(page.get_by_role("heading", level=1, name="My account")).to_be_visible()
    expect(main.get_by_text(admin.email, exact=True)).to_be_visible()
    expect(main.get_by_text("Administrator", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Sign in")).to_have_count(0)
    check_accessibility(page)
    save_screenshot(page, "account")

    # Sign out: back home, told so, and signed out for real.
    nav.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(path_is("/"))
    expect(main.get_by_role("status")).to_have_text("You are signed out.")
    expect(nav.get_by_role("button", name="Sign out")).to_have_count(0)
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()

    page.goto("/account")
    expect(page).to_have_url(path_is("/login"))
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    expect(page.get_by_label("E-mail address")).to_be_visible()
    expect(page.get_by_text(admin.email)).to_have_count(0)


@pytest.mark.browser
def test_wrong_password_is_explained_next_to_the_form(page: Page, make_user) -> None:
    admin = make_user("admin")
    page.goto("/login")
    page.get_by_label("E-mail address").fill(admin.email)
    password = page.get_by_label("Password")
    password.fill(PASSWORD + " but wrong")
    password.press("Enter")  # the form submits from the keyboard

    main = page.get_by_role("main")
    expect(main.get_by_text(WRONG_CREDENTIALS, exact=True)).to_be_visible()
    expect(page).to_have_url(path_is("/login"))
    # The message is tied to the field, so a screen reader announces it with the password input.
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description(WRONG_CREDENTIALS)
    expect(page.get_by_label("E-mail address")).to_have_value(admin.email)
    expect(page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out")).to_have_count(0)
    check_accessibility(page)


@pytest.mark.browser
def test_csp_blocks_inline_script_and_the_guard_sees_it(page: Page, browser_log: BrowserLog) -> None:
    """The harness's own check: the app's CSP refuses an injected inline script, and that refusal
    reaches the console guard (otherwise every test above would pass blind to CSP errors)."""
    page.goto("/")
    with page.expect_console_message(lambda m: m.type == "error" and "Content Security Policy" in m.text):
        page.evaluate("""() => {
            const s = document.createElement('script');
            s.textContent = 'window.__inlineRan = true';
            document.body.appendChild(s);
        }""")
    assert page.evaluate("() => window.__inlineRan") is None, "an inline script ran despite the CSP"
    errors = browser_log.take_errors()
    assert any("Content Security Policy" in e for e in errors), errors
