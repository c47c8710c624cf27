"""An administrator's day in a real browser: the admin hub, the dashboard with its figures and a
refused reversed range, disabling a signed-in operator (whose open session ends at once), and the
audit trail filtered down to that action. Every page passes the accessibility check."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from intake.calls.models import Call, CallStatus, CallType, RiskLevel
from intake.db_types import utcnow
from intake.extensions import db
from tests.browser.conftest import BrowserLog, check_accessibility
from tests.browser.test_smoke import path_is
from tests.conftest import FULL_ADMIN, PASSWORD

pytestmark = pytest.mark.browser


def sign_in(page: Page, user, landing: str = "/calls/new") -> None:
    main = page.get_by_role("main")
    page.goto("/login")
    page.get_by_label("E-mail address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(pyotp.TOTP(user.mfa_secret).now())
    main.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(path_is(landing))  # where the first of their roles starts


def test_admin_reads_the_dashboard_disables_an_operator_and_finds_it_in_the_audit_trail(
        page: Page, browser: Browser, live_server: str, app: Flask, make_user, browser_log: BrowserLog) -> None:
    admin = make_user(FULL_ADMIN)  # the dashboard, the users and the audit trail: every staff role
    operator = make_user("operator")
    with app.app_context():
        started = utcnow() - timedelta(minutes=10)
        db.session.add(Call(operator_id=operator.id, status=CallStatus.FINAL, call_type=CallType.DATA,
                            started_at=started, ended_at=started + timedelta(minutes=8), finalized_at=started,
                            risk_level=RiskLevel.HIGH))
        db.session.commit()

    # The operator is signed in on another computer.
    elsewhere = browser.new_context(base_url=live_server, locale="en-US")
    try:
        operator_page = elsewhere.new_page()
        sign_in(operator_page, operator)
        operator_page.goto("/calls/")
        expect(operator_page).to_have_url(path_is("/calls/"))

        sign_in(page, admin)
        main = page.get_by_role("main")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
        expect(page.get_by_role("heading", level=1, name="Administration")).to_be_visible()
        check_accessibility(page)

        # The dashboard: a chart and its table for the call just logged.
        main.get_by_role("link", name="Dashboard").click()
        expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
        expect(page.get_by_role("img", name="Calls by type: data and non-data calls")).to_be_visible()
        types = page.get_by_role("table", name="Calls by type: data and non-data calls")
        expect(types.get_by_role("row", name="Call with data")).to_contain_text("1")
        check_accessibility(page)
        # A reversed range is explained on the page; no figures are shown for it.
        today = page.get_by_label("To (inclusive)").input_value()
        page.get_by_label("From").fill(today)
        page.get_by_label("To (inclusive)").fill("2026-01-01")
        main.get_by_role("button", name="Show").click()
        expect(page.get_by_role("alert")).to_contain_text("The end date is before the start date.")
        expect(page.get_by_role("table", name="Calls by type: data and non-data calls")).to_have_count(0)
        assert len(browser_log.take_errors()) == 1  # the refused range answered 400
        check_accessibility(page)

        # Disable the operator: their open session ends at once.
        page.goto("/admin/")
        main.get_by_role("link", name="Users").click()
        expect(page.get_by_role("heading", level=1, name="Users")).to_be_visible()
        check_accessibility(page)
        main.get_by_role("link", name=operator.email).click()
        expect(page.get_by_role("heading", level=1, name=f"Account #{operator.id}")).to_be_visible()
        check_accessibility(page)
        page.get_by_label("I understand that this signs them out everywhere at once.").check()
        main.get_by_role("button", name="Disable account").click()
        expect(page.get_by_text(f"Account #{operator.id} disabled.")).to_be_visible()
        check_accessibility(page)
        operator_page.goto("/calls/")
        expect(operator_page).to_have_url(path_is("/login"))

        # The audit trail, filtered to the admin's disabling.
        page.goto("/admin/")
        main.get_by_role("link", name="Audit trail").click()
        expect(page.get_by_role("heading", level=1, name="Audit trail")).to_be_visible()
        page.get_by_label("Person").select_option(str(admin.id))  # the staff, by name
        page.get_by_label("Action").select_option("user.disabled")
        main.get_by_role("button", name="Filter").click()
        rows = main.get_by_role("table").get_by_role("row")
        expect(rows).to_have_count(2)  # the header and the one event
        expect(rows.nth(1)).to_contain_text("user.disabled")
        expect(rows.nth(1)).to_contain_text(operator.display_name)  # the account, by its person's name
        check_accessibility(page)
    finally:
        elsewhere.close()
