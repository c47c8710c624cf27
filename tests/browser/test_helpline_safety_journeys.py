"""Helpline safety in a real browser (issue 16):

- the browser evaluates the server's own rule table: every row of tests/test_risk_rules.py (the bypasses
  included) and a few hundred random forms give the same answer in both;
- the live level follows the answers without a round trip (autosave blocked);
- an operator logs an imminent call while a supervisor, in a second browser, sees it on the urgent queue
  before it is finalized, opens it read-only and leaves a note the operator reads on the form;
- a callback takes at most three actions;
- the directory answers "who takes Medi-Cal near this caller", on its page and in the call form's picker;
- the idle-timeout dialog warns, keeps the session, and a form posted after the session ended comes back.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask, url_for
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from intake.calls.models import Call, CallStatus, EmergencyDisclosure, FollowUp, FollowUpStatus, RiskLevel
from intake.calls.risk import evaluate
from intake.extensions import db
from intake.permissions import landing_endpoint
from intake.resources.models import Resource, ResourceKind
from tests.browser.conftest import (
    ACTION_TIMEOUT_MS,
    NAVIGATION_TIMEOUT_MS,
    BrowserLog,
    check_accessibility,
    save_screenshot,
    serving,
)
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD, fresh_database, make_app, totp_code
from tests.test_followups import make_followup
from tests.test_risk_rules import CASES, random_facts

pytestmark = pytest.mark.browser


def sign_in(page: Page, app: Flask, user, landing: str | re.Pattern[str] | None = None) -> None:
    """Through the real forms; the code is a TOTP step not used yet (a second sign-in may follow).
    Without ``landing`` the page must be where the user's first role starts (intake.permissions.LANDING)."""
    if landing is None:
        with app.test_request_context():
            landing = url_for(landing_endpoint(user))
    main = page.get_by_role("main")
    page.get_by_label("E-mail address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(totp_code(SimpleNamespace(application=app), user.email))
    main.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(landing if isinstance(landing, re.Pattern) else path_is(landing))


def start_call(page: Page) -> int:
    page.goto("/calls/new")
    page.get_by_role("main").get_by_role("button", name="Start a call").click()
    expect(page).to_have_url(re.compile(r"/calls/\d+/edit$"))
    return int(re.search(r"/calls/(\d+)/edit", page.url).group(1))


def answer(page: Page, question: str, value: str) -> None:
    page.get_by_role("group", name=question).get_by_label(value, exact=True).check()


# --- the browser and the server read one table -------------------------------------------------

def test_the_browser_computes_what_the_server_computes_on_every_row(page: Page, app: Flask, make_user) -> None:
    operator = make_user("operator")
    page.goto("/login")
    sign_in(page, app, operator)
    start_call(page)
    cases = [(name, given) for name, given, _level, _unanswered in CASES]
    rng = random.Random(16)
    cases += [(f"random-{i}", random_facts(rng)) for i in range(300)]
    browser_answers = page.evaluate(
        """(all) => {
             const table = JSON.parse(document.getElementById('risk-rules').textContent);
             return all.map((f) => window.intakeRisk.evaluate(table, f));
           }""",
        [given.as_json() for _name, given in cases])
    mismatches = [(name, evaluate(given).as_json(), got) for (name, given), got in zip(cases, browser_answers,
                                                                                        strict=True)
                  if evaluate(given).as_json() != got]
    assert not mismatches, mismatches[:5]


def test_the_level_follows_the_answers_without_a_round_trip(page: Page, app: Flask, make_user) -> None:
    operator = make_user("operator")
    page.goto("/login")
    sign_in(page, app, operator)
    call_id = start_call(page)
    held = []  # every autosave is held back until the end: the panel gets no help from the server
    page.route(re.compile(r".*/calls/\d+/draft$"), lambda route: held.append(route))
    level = page.locator("#risk-level")
    expect(level).to_have_text("None")
    started = time.monotonic()
    page.get_by_label("Clonazepam (Klonopin)").check()
    page.get_by_role("group", name="Withdrawal symptoms").get_by_label("Suicidal thoughts").check()
    expect(level).to_have_text("High")  # thoughts reported, intent and the rest not asked yet
    assert time.monotonic() - started < 1.0
    expect(page.locator("#risk-required")).to_contain_text("Intent to act on them?")
    expect(page.locator(".risk-protocol[data-level='high']")).to_be_visible()
    expect(page.locator(".risk-protocol[data-level='high']")).to_contain_text("Stay on the line")
    for question in ("Suicidal thoughts?", "Intent to act on them?", "A plan?", "Access to means?",
                     "A recent attempt?"):
        answer(page, question, "Yes" if question == "Suicidal thoughts?" else "No")
    expect(level).to_have_text("Moderate")
    page.get_by_label("Alcohol").check()
    expect(page.locator("#overdose-flag")).to_be_visible()
    expect(page.locator("#risk-required")).to_contain_text("Medical danger now")
    answer(page, "Medical danger now (seizures, severe withdrawal, overdose signs)?", "Yes")
    expect(level).to_have_text("Imminent")
    expect(page.locator("#risk-panel")).to_have_class(re.compile(r"\brisk-imminent\b"))
    expect(page.locator(".risk-protocol[data-level='imminent']")).to_contain_text("Call 911")
    # The panel stays in view while the form scrolls to its end.
    page.get_by_label("Notes").scroll_into_view_if_needed()
    expect(page.locator("#risk-panel")).to_be_in_viewport()
    check_accessibility(page)
    save_screenshot(page, "risk-panel-imminent")
    with app.app_context():
        assert db.session.get(Call, call_id).risk_level == RiskLevel.NONE  # nothing reached the server
    assert held, "the form tried to save"
    for route in held:
        route.continue_()


# --- live escalation: two browsers ---------------------------------------------------------------

def test_a_supervisor_sees_an_imminent_call_before_it_is_finalized(page: Page, app: Flask, make_user,
                                                                   browser: Browser, live_server: str,
                                                                   browser_log: BrowserLog) -> None:
    operator = make_user("operator")
    supervisor = make_user("supervisor")
    page.goto("/login")
    sign_in(page, app, operator)
    call_id = start_call(page)
    page.get_by_label("Caller is").select_option("self")
    page.get_by_label("Clonazepam (Klonopin)").check()
    page.get_by_label("Opioids").check()
    page.get_by_role("group", name="Withdrawal symptoms").get_by_label("Slow or shallow breathing").check()
    expect(page.locator("#risk-level")).to_have_text("Imminent")
    expect(page.locator("#autosave-status")).to_contain_text("Draft saved")  # saved at once: escalated

    context = browser.new_context(base_url=live_server, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    context.on("console", browser_log.on_console)
    boss = context.new_page()
    try:
        boss.goto("/login")
        sign_in(boss, app, supervisor)
        nav = boss.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name=re.compile(r"Urgent\s+1\s+waiting"))).to_be_visible()
        nav.get_by_role("link", name=re.compile("Urgent")).click()
        row = boss.locator("tr", has=boss.locator(f"a[href='/calls/{call_id}']"))
        expect(row).to_contain_text("live: on the line now")
        expect(row).to_contain_text(operator.display_name)
        expect(row).to_contain_text("Imminent")
        check_accessibility(boss)
        row.get_by_role("link").first.click()
        expect(boss.locator("#live-banner")).to_be_visible()
        boss.get_by_label("Note to the operator").fill("Stay with them; I am calling 911 on line 2.")
        boss.get_by_role("button", name="Send note").click()
        expect(boss.get_by_role("status").first).to_contain_text("Note sent")
        save_screenshot(boss, "supervisor-live-call")
    finally:
        context.close()

    # The operator reads the note on the form (polled), records the disclosure and finalizes.
    expect(page.locator("#supervisor-notes")).to_contain_text("I am calling 911 on line 2", timeout=30_000)
    answer(page, "Medical danger now (seizures, severe withdrawal, overdose signs)?", "Yes")
    page.get_by_label("911 called").check()
    page.get_by_label("Medical personnel who received it (name)").fill("Dispatcher Ramos")
    page.get_by_label("Their affiliation (agency or health care facility)").fill("County EMS")
    page.get_by_label("Nature of the emergency").fill("Overdose in progress: slow breathing")
    page.get_by_label("Disposition").select_option("emergency_dispatched")
    page.get_by_role("button", name="Finalize call").click()
    expect(page).to_have_url(path_is("/calls/new"))
    with app.app_context():
        call = db.session.get(Call, call_id)
        assert call.status == CallStatus.FINAL and call.risk_level == RiskLevel.IMMINENT and call.urgent
        disclosure = db.session.execute(select(EmergencyDisclosure)).scalar_one()
        assert disclosure.disclosed_by_id == operator.id and disclosure.affiliation == "County EMS"


# --- a callback in three actions -----------------------------------------------------------------

def test_a_callback_takes_at_most_three_actions(page: Page, app: Flask, make_user) -> None:
    operator = make_user("operator")
    followup_id = make_followup(app, operator.id, due_in=timedelta(minutes=-30))
    with app.app_context():
        db.session.get(FollowUp, followup_id).call.caller_phone = "4155550134"
        db.session.commit()
    page.goto("/login")
    sign_in(page, app, operator)
    page.goto("/followups/")
    actions = 0
    main = page.get_by_role("main")

    main.get_by_role("button", name=f"Call back #{followup_id}").click()  # 1: show the number
    actions += 1
    tel = page.locator("#callback-tel")
    expect(tel).to_have_attribute("href", "tel:4155550134")
    expect(page.locator("#safe-wording")).to_be_visible()
    check_accessibility(page)
    page.route("tel:*", lambda route: route.abort())  # the phone app is not part of the test
    with page.expect_event("request"):
        tel.click()  # 2: dial
    actions += 1
    page.get_by_role("button", name="Reached the caller · close").click()  # 3: record and close
    actions += 1
    expect(page).to_have_url(path_is("/followups/"))
    expect(main.get_by_role("status").first).to_contain_text("closed")
    assert actions <= 3
    with app.app_context():
        followup = db.session.get(FollowUp, followup_id)
        assert followup.status == FollowUpStatus.DONE and followup.attempts == 1


# --- the directory ---------------------------------------------------------------------------------

def test_who_takes_medi_cal_near_this_caller(page: Page, app: Flask, make_user) -> None:
    operator = make_user("operator")
    with app.app_context():
        db.session.add_all([
            Resource(name="Malibu Benzo Detox", kind=ResourceKind.DETOX, zip="90265", payers="medi_cal",
                     phone="(310) 555-0101", hours="24/7 admissions"),
            Resource(name="Mission Benzo Detox", kind=ResourceKind.DETOX, zip="94110", payers="medi_cal",
                     phone="(415) 555-0102", hours="Mon-Fri 8-5"),
            Resource(name="Westside Private Benzo Detox", kind=ResourceKind.DETOX, zip="90401", payers="private",
                     phone="(310) 555-0103"),
        ])
        db.session.commit()
    page.goto("/login")
    sign_in(page, app, operator)
    page.goto("/resources/")
    page.get_by_label("Accepts").select_option("medi_cal")
    page.get_by_label("Near ZIP code").fill("90401")
    page.get_by_label("Kind of service").select_option("detox")
    page.get_by_role("main").get_by_role("button", name="Search").click()
    rows = page.locator("tr.resource-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Malibu Benzo Detox")
    expect(rows.nth(0)).to_contain_text("24/7 admissions")
    expect(rows.nth(0)).to_contain_text("(310) 555-0101")
    expect(rows.nth(0).locator(".resource-distance")).to_have_text(re.compile(r"^\d+(\.\d)? mi$"))
    expect(rows.nth(1)).to_contain_text("Mission Benzo Detox")
    check_accessibility(page)

    # The call form's picker, with the caller's ZIP: nearest first, phone, hours and distance shown.
    start_call(page)
    page.get_by_label("ZIP code").fill("90401")
    page.get_by_label("Search the resource directory").fill("benzo")
    results = page.locator("#referral-results li")
    expect(results.first).to_contain_text("Westside Private Benzo Detox (Detox, 0.0 mi)")
    malibu = results.filter(has_text="Malibu Benzo Detox")
    expect(malibu).to_contain_text(re.compile(r"Detox, \d+(\.\d)? mi\)"))
    expect(malibu).to_contain_text("(310) 555-0101 · 24/7 admissions")


# --- sessions that warn and keep work --------------------------------------------------------------

@pytest.fixture()
def short_session(template_db: str, tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """An app whose idle timeout is 24 seconds, with the warning 16 seconds before it."""
    app = make_app(fresh_database(template_db, tmp_path), tmp_path / "instance",
                   SESSION_IDLE_TIMEOUT=timedelta(seconds=24), SESSION_IDLE_WARNING=timedelta(seconds=16))
    with serving(app) as base_url:
        yield app, base_url
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_the_timeout_dialog_warns_keeps_the_session_and_keeps_the_form(short_session, browser: Browser,
                                                                      browser_log: BrowserLog, make_user) -> None:
    app, base_url = short_session
    from intake.users.services import create_user

    with app.app_context():
        requester = create_user("patient@example.org", "requester", PASSWORD, verified=True)
        db.session.commit()
        db.session.refresh(requester)
        db.session.expunge(requester)
    context = browser.new_context(base_url=base_url, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.on("console", browser_log.on_console)
    page = context.new_page()
    try:
        page.goto("/login")
        main = page.get_by_role("main")
        page.get_by_label("E-mail address").fill(requester.email)
        page.get_by_label("Password").fill(PASSWORD)
        main.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(path_is("/my/requests/"))
        page.goto("/my/requests/new")
        dialog = page.get_by_role("alertdialog", name="Are you still there?")
        expect(dialog).to_be_visible(timeout=20_000)  # 8 s after the page loaded
        expect(dialog.get_by_role("button", name="Stay signed in")).to_be_focused()
        check_accessibility(page)
        save_screenshot(page, "session-timeout-warning")
        dialog.get_by_role("button", name="Stay signed in").click()
        expect(dialog).to_be_hidden()

        # The server really kept the session: a page loads signed in after the old deadline has passed.
        page.get_by_label("The patient's full name").fill("Jordan Example")
        expect(dialog).to_be_visible(timeout=20_000)
        # Now let it end: the dialog says so, and what was typed is kept in the tab.
        ended = page.get_by_role("alertdialog", name="Your session has ended")
        expect(ended).to_be_visible(timeout=30_000)
        link = ended.get_by_role("link", name="Sign in again")
        expect(link).to_be_focused()
        link.click()
        expect(page).to_have_url(re.compile(r"/login\?next="))
        expect(page.get_by_role("main")).to_contain_text("Your session ended")
        page.get_by_label("E-mail address").fill(requester.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("main").get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/my/requests/new\?resumed=1$"))
        expect(page.locator("#session-resumed")).to_be_visible()
        expect(page.locator("#session-resumed")).to_contain_text("you had to sign in again")
        expect(page.get_by_label("The patient's full name")).to_have_value("Jordan Example")
    finally:
        context.close()


def test_a_call_form_sent_after_the_session_ended_comes_back_after_signing_in(short_session, browser: Browser,
                                                                              browser_log: BrowserLog,
                                                                              make_user) -> None:
    app, base_url = short_session
    with app.app_context():
        import pyotp

        from intake.db_types import utcnow
        from intake.users.services import create_user

        operator = create_user("op@example.org", "operator", PASSWORD, verified=True,
                               display_name="Test Operator Resumes")
        operator.mfa_secret = pyotp.random_base32()
        operator.mfa_enrolled_at = utcnow()
        db.session.commit()
        db.session.refresh(operator)
        _ = operator.role_rows  # loaded before the object leaves the session
        db.session.expunge(operator)
    context = browser.new_context(base_url=base_url, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.on("console", browser_log.on_console)
    # A laptop that slept: the page's timers never ran (no warning, no autosave), then a press on Save.
    context.add_init_script("window.setTimeout = function () { return 0; };"
                            " window.setInterval = function () { return 0; };")
    page = context.new_page()
    try:
        page.goto("/login")
        sign_in(page, app, operator)
        call_id = start_call(page)
        page.get_by_label("Notes").fill("Typed while the session ran out")
        time.sleep(26)  # past the 24-second idle timeout
        page.get_by_role("button", name="Save draft").click()
        expect(page).to_have_url(re.compile(r"/login\?next="))
        expect(page.get_by_role("main")).to_contain_text("Your session ended")
        sign_in(page, app, operator, landing=re.compile(rf"/calls/{call_id}/edit\?resumed=1$"))
        expect(page.get_by_label("Notes")).to_have_value("Typed while the session ran out")
        expect(page.locator("#session-resumed")).to_be_visible()
        with app.app_context():
            assert db.session.get(Call, call_id).notes is None  # it came back from the tab, not the server
    finally:
        context.close()
