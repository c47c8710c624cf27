"""An admin keeps the resource directory in a real browser: a refused entry explained next to its
field, a saved one, marked verified, found by search; each page passes the accessibility check."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BrowserLog, check_accessibility, save_screenshot
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_admin_adds_verifies_and_finds_a_resource(page: Page, make_user, browser_log: BrowserLog) -> None:
    admin = make_user("admin")
    main = page.get_by_role("main")
    nav = page.get_by_role("navigation", name="Main")

    page.goto("/login")
    page.get_by_label("E-mail address").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(path_is("/login/mfa"))
    page.get_by_label("Code").fill(pyotp.TOTP(admin.mfa_secret).now())
    main.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(path_is("/admin/"))  # an admin starts at the hub

    nav.get_by_role("link", name="Resources").click()
    expect(page.get_by_role("heading", level=1, name="Resource directory")).to_be_visible()
    check_accessibility(page)
    main.get_by_role("link", name="Add a resource").click()
    expect(page).to_have_url(path_is("/resources/new"))
    check_accessibility(page)

    page.get_by_label("Name", exact=True).fill("Malibu Detox Center")
    page.get_by_label("Kind of service").select_option(label="Detox")
    page.get_by_label("Phone").fill("(310) 555-0100")
    page.get_by_label("Website").fill("javascript:alert(1)")
    page.get_by_label("ZIP code").fill("90265")
    page.get_by_label("Medi-Cal").check()
    main.get_by_role("button", name="Save").click()
    website = page.get_by_label("Website")
    expect(website).to_have_attribute("aria-invalid", "true")
    expect(website).to_have_accessible_description(re.compile("Enter a web address starting with https://"))
    # A refused form answers 400, which the browser logs as a failed load: that one is expected.
    errors = browser_log.take_errors()
    assert len(errors) == 1 and "400" in errors[0] and "/resources/new" in errors[0], errors
    check_accessibility(page)

    website.fill("https://detox.example.org")
    main.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/resources/\d+$"))
    expect(page.get_by_role("heading", level=1, name="Malibu Detox Center")).to_be_visible()
    expect(main.get_by_text("not verified in over a year")).to_be_visible()
    check_accessibility(page)

    main.get_by_role("button", name="Mark verified today").click()
    expect(main.get_by_text("Marked as verified today.")).to_be_visible()
    expect(main.get_by_text("not verified in over a year")).to_have_count(0)
    save_screenshot(page, "resource-detail")

    main.get_by_role("link", name="Resource directory").click()
    page.get_by_label("Name, city or ZIP code").fill("MALIBU")
    main.get_by_role("button", name="Search").click()
    row = main.get_by_role("row", name=re.compile("Malibu Detox Center"))
    expect(row).to_be_visible()
    expect(row.get_by_role("link", name="(310) 555-0100")).to_have_attribute("href", "tel:3105550100")
    check_accessibility(page)
    save_screenshot(page, "resource-list")
