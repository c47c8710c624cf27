"""An operator takes a high-risk call with the keyboard alone: starts it, fills the form (Tab,
typing, Space on checkboxes, arrows in radio groups), picks a referral through the directory
search, records a safety action, consent and a follow-up, and finalizes. Locators only assert."""

from __future__ import annotations

import re

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from intake.calls.models import Call, CallStatus, FollowUp, Referral, RiskLevel
from intake.extensions import db
from intake.resources.models import Resource, ResourceKind
from tests.browser.conftest import check_accessibility, save_screenshot
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

FOCUSED = ("() => { const e = document.activeElement; if (!e) { return ''; }"
           " return e.id || (e.tagName === 'BUTTON' ? e.value : e.name) || e.tagName; }")


def tab_to(page: Page, target: str, limit: int = 80) -> None:
    """Press Tab until the focused element's id (a button's value, or a name) is ``target``."""
    for _ in range(limit):
        if page.evaluate(FOCUSED) == target:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target!r}; focus is on {page.evaluate(FOCUSED)!r}")


def test_an_operator_logs_a_high_risk_call_with_the_keyboard(page: Page, app: Flask, make_user) -> None:
    operator = make_user("operator")
    with app.app_context():
        detox = Resource(name="Bay Area Benzodiazepine Detox", kind=ResourceKind.DETOX, city="Oakland")
        db.session.add(detox)
        db.session.commit()
        detox_id = detox.id
    main = page.get_by_role("main")

    page.goto("/login")
    page.get_by_label("E-mail address").fill(operator.email)
    page.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(path_is("/login/mfa"))
    page.get_by_label("Code").fill(pyotp.TOTP(operator.mfa_secret).now())
    main.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(path_is("/calls/new"))  # an operator starts at "Log a call"

    page.goto("/account")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Log a call").click()
    expect(page).to_have_url(path_is("/calls/new"))
    expect(page.get_by_role("heading", level=1, name="Log a call")).to_be_visible()
    check_accessibility(page)

    # "Start a call" has the focus: Enter starts the call.
    expect(main.get_by_role("button", name="Start a call")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/calls/\d+/edit$"))
    call_id = int(re.search(r"/calls/(\d+)/edit", page.url).group(1))
    expect(page.locator("#call-timer")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    expect(page.get_by_label("Channel")).to_be_focused()  # the first field
    check_accessibility(page)

    tab_to(page, "relationship_to_person")
    page.keyboard.type("Self")
    tab_to(page, "zip")
    page.keyboard.type("94110")
    page.keyboard.press("Tab")
    page.keyboard.type("CA")
    expect(page.locator("#autosave-status")).to_contain_text("Draft saved")  # autosave after a pause
    # A screen reader hears the first save (a polite live region)...
    expect(page.locator("#autosave-announce")).to_contain_text("Draft saved")
    expect(page.locator("#autosave-announce")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#autosave-status")).not_to_have_attribute("aria-live", re.compile("."))
    page.evaluate("""() => { window.announcements = 0;
      new MutationObserver(() => { window.announcements += 1; }).observe(
        document.getElementById('autosave-announce'), {childList: true, characterData: true, subtree: true}); }""")
    saves_before = int(page.locator("#autosave-status").get_attribute("data-reports") or "0")

    tab_to(page, "substances-0")  # Clonazepam (Klonopin), listed first
    page.keyboard.press("Space")
    expect(page.locator("#overdose-flag")).to_be_hidden()
    tab_to(page, "substances-2")  # Alcohol
    page.keyboard.press("Space")
    # ...but not every save after each pause in typing: the next one shows, silently.
    page.wait_for_function("(n) => Number(document.getElementById('autosave-status').dataset.reports) > n",
                           arg=saves_before)
    assert page.evaluate("() => window.announcements") == 0
    expect(page.locator("#overdose-flag")).to_be_visible()
    expect(page.locator("#overdose-flag")).to_contain_text("Overdose risk")

    tab_to(page, "suicidal_intent-0")  # the group's checked radio ("Not asked")
    page.keyboard.press("ArrowRight")  # Yes
    expect(page.get_by_role("group", name="Intent to act on them?").get_by_label("Yes")).to_be_checked()
    # Co-use makes the medical-danger question required (the panel asks for it): answered No.
    expect(page.locator("#risk-required")).to_contain_text("Medical danger now")
    tab_to(page, "medical_danger-0")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    danger = page.get_by_role("group", name=re.compile("Medical danger now"))
    expect(danger.get_by_label("No", exact=True)).to_be_checked()
    expect(page.locator("#risk-required")).to_be_hidden()
    tab_to(page, "safety_988")
    page.keyboard.press("Space")
    expect(page.get_by_label("988 Suicide & Crisis Lifeline")).to_be_checked()
    expect(page.locator("#risk-level")).to_have_text("High")  # computed in the browser as the answer is given

    tab_to(page, "referral-search")
    page.keyboard.type("Benzo")
    result = main.get_by_role("button", name=re.compile("Add Bay Area Benzodiazepine Detox"))
    expect(result).to_be_visible()
    page.keyboard.press("Tab")
    expect(result).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Status of the referral to Bay Area Benzodiazepine Detox")).to_be_focused()
    expect(page.locator(f"input[name=referral_resource_id][value='{detox_id}']")).to_have_count(1)

    tab_to(page, "consent_callback")
    page.keyboard.press("Space")
    tab_to(page, "safe_times")
    page.keyboard.type("Weekdays after 6 pm")
    tab_to(page, "followup_due_at")
    page.keyboard.type("12012030")  # month, day, year
    page.keyboard.press("Tab")
    page.keyboard.type("1000A")  # hour, minute, AM
    expect(page.get_by_label("Follow-up due")).to_have_value("2030-12-01T10:00")

    tab_to(page, "disposition")
    page.keyboard.type("Crisis")
    tab_to(page, "notes")
    page.keyboard.type("Wants a supervised Klonopin taper; safety plan agreed.")
    check_accessibility(page)  # with the referral row, the overdose alert and the risk shown
    save_screenshot(page, "call-form-filled")
    tab_to(page, "finalize")
    page.keyboard.press("Enter")

    expect(page).to_have_url(path_is("/calls/new"))
    expect(main.get_by_role("status").first).to_have_text(f"Call #{call_id} finalized.")
    check_accessibility(page)
    save_screenshot(page, "call-finalized")

    with app.app_context():
        call = db.session.get(Call, call_id)
        assert call.status == CallStatus.FINAL and call.urgent is True
        assert call.risk_level == RiskLevel.HIGH and call.overdose_risk is True and call.safety_988 is True
        assert call.zip == "94110" and call.state == "CA" and call.consent_callback is True
        assert call.disposition == "crisis_deescalated"
        assert db.session.execute(select(Referral.resource_id)).scalars().all() == [detox_id]
        followup = db.session.execute(select(FollowUp)).scalar_one()
        assert followup.call_id == call_id
