"""The focus indicator, measured: Tab through every control of two busy pages, the follow-up page
(five forms, and the blue navbar) and the records-request form (with the Español button), and at each stop read the
computed styles of the focused element: its outline (or ring) must be at least 2px wide and of at
least 3:1 against the background it is drawn on (WCAG 2.4.7, 2.4.11, 2.4.13, 1.4.11). The
Español / English button on the blue navbar once had a ring of 1.12:1, and inputs, selects,
checkboxes and radios kept Bootstrap's pale ring of about 1.4-2.1:1.

Also here: the page walk's own checks (``html_checks``) catch what they are for, on a page made
to fail them (two forms with one id, a label naming the other form's select, a <time> with
microseconds, a required select whose first option has a value).
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import check_accessibility
from tests.browser.html_checks import FOCUS_INDICATOR_SCRIPT, LABELS_AND_IDS_SCRIPT, focus_problem, nu_errors
from tests.browser.test_helpline_safety_journeys import sign_in
from tests.browser.test_smoke import path_is
from tests.conftest import FULL_ADMIN, PASSWORD
from tests.test_followups import make_followup

pytestmark = pytest.mark.browser

MAX_STOPS = 150  # more stops than any of these pages has: the walk ends when focus leaves the page


def tab_through(page: Page) -> list[dict]:
    """Tab from the top of the page until focus comes back around (or leaves the document); the
    focus indicator measured at every stop."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    stops: list[dict] = []
    seen: list[str] = []
    for _ in range(MAX_STOPS):
        page.keyboard.press("Tab")
        key = page.evaluate("""() => { const el = document.activeElement;
          if (!el || el === document.body) { return null; }
          const all = [...document.querySelectorAll('*')]; return String(all.indexOf(el)); }""")
        if seen and key == seen[-1]:
            continue  # a date box's own parts (month, day, year, its calendar button): one element
        if key is None or key in seen:
            break
        seen.append(key)
        stops.append(page.evaluate(FOCUS_INDICATOR_SCRIPT))
    return stops


def assert_focus_visible(stops: list[dict], where: str, expect_at_least: int) -> None:
    assert len(stops) >= expect_at_least, f"only {len(stops)} Tab stops on {where}"
    problems = [problem for stop in stops if (problem := focus_problem(stop))]
    assert not problems, f"focus indicators too faint on {where}:\n  " + "\n  ".join(problems)


def kinds(stops: list[dict]) -> set[str]:
    return {re.sub(r" id=[^ >]*", "", stop["describe"]).split(">")[0] + ">" for stop in stops}


def test_the_follow_up_page_shows_focus_on_every_control(page: Page, app: Flask, make_user) -> None:
    operator = make_user("operator")
    followup_id = make_followup(app, operator.id)
    page.goto("/login")
    sign_in(page, app, operator)
    page.goto(f"/followups/{followup_id}")
    expect(page.locator("#close-outcome")).to_be_visible()
    stops = tab_through(page)
    assert_focus_visible(stops, f"/followups/{followup_id}", expect_at_least=15)
    seen = kinds(stops)
    # The navbar's links (white on blue), links, selects, a text area, a checkbox, buttons.
    assert {"<button type=submit>", "<select type=select-one>", "<textarea type=textarea>",
            "<input type=checkbox>", "<a>"} <= seen, seen
    sign_out = next(stop for stop in stops if stop["describe"].endswith('"Sign out"'))
    assert sign_out["background"] == [13, 110, 253] and sign_out["contrast"] >= 3, sign_out
    # Each form's label names its own control: the close form's "Final outcome" is its own select.
    assert page.evaluate(LABELS_AND_IDS_SCRIPT) == []
    page.get_by_label("Final outcome (optional)").focus()
    expect(page.locator("#close-outcome")).to_be_focused()
    check_accessibility(page)


def test_the_records_request_form_shows_focus_on_every_control(page: Page, make_user) -> None:
    requester = make_user("requester")
    page.goto("/login")
    page.get_by_label("E-mail address").fill(requester.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(path_is("/my/requests/"))
    page.goto("/my/requests/new")
    stops = tab_through(page)
    assert_focus_visible(stops, "/my/requests/new", expect_at_least=20)
    seen = kinds(stops)
    assert {"<input type=text>", "<input type=radio>", "<input type=checkbox>", "<textarea type=textarea>",
            "<button type=submit>", "<input type=date>"} <= seen, seen
    # The Español button on the blue navbar (once 1.12:1).
    language = next(stop for stop in stops if stop["describe"].endswith('"Español"'))
    assert language["background"] == [13, 110, 253] and language["contrast"] >= 3, language
    # The date of birth is three labelled boxes, each filled in from the browser's own "bday".
    for part in ("day", "month", "year"):
        box = page.locator(f"#patient_dob-{part}")
        expect(box).to_have_attribute("autocomplete", f"bday-{part}")
        expect(box).to_have_attribute("inputmode", "numeric")
    expect(page.locator("#mail_address")).to_have_attribute("autocomplete", "street-address")
    expect(page.locator("#patient_name")).to_have_attribute("autocomplete", "name")
    check_accessibility(page)


BAD_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Two forms</title></head><body>
<form method="post" action="/a"><input type="hidden" id="csrf_token" name="csrf_token" value="1">
  <label for="outcome">Outcome</label>
  <select id="outcome" name="outcome" required><option value="reached">Reached</option></select></form>
<form method="post" action="/b"><input type="hidden" id="csrf_token" name="csrf_token" value="2">
  <label for="outcome">Final outcome</label>
  <select id="outcome" name="outcome"><option value="">None</option></select>
  <label for="elsewhere">A label for the other form</label>
  <time datetime="2026-12-07T07:00:32.981022+00:00">today</time></form>
<form><input id="elsewhere"></form>
</body></html>"""


def test_the_walks_checks_catch_what_they_are_for(page: Page) -> None:
    page.set_content(BAD_PAGE)
    problems = page.evaluate(LABELS_AND_IDS_SCRIPT)
    assert 'id="outcome" is used 2 times' in problems
    assert 'id="csrf_token" is used 2 times' in problems
    assert any("A label for the other form" in p and "another" in p for p in problems), problems
    messages = [error.message for error in nu_errors({"bad": BAD_PAGE})]
    assert any("Duplicate ID" in m and "outcome" in m for m in messages), messages
    assert any("fraction of a second" in m for m in messages), messages
    assert any("first child" in m and "option" in m for m in messages), messages
    assert nu_errors({"good": BAD_PAGE.split("<form", 1)[0] + "</body></html>"}) == []


def test_the_menus_drop_downs_show_focus_too(page: Page, app: Flask, make_user) -> None:
    """An administrator's menu is grouped into drop-downs: white menus opened from the blue navbar,
    whose items must not keep the navbar's white outline."""
    admin = make_user(FULL_ADMIN)
    page.goto("/login")
    sign_in(page, app, admin, landing=re.compile(r".*"))
    toggle = page.locator("header .dropdown-toggle").first
    toggle.focus()
    assert focus_problem(page.evaluate(FOCUS_INDICATOR_SCRIPT)) is None
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowDown")
    item = page.locator("header .dropdown-menu.show .dropdown-item").first
    expect(item).to_be_focused()
    focus = page.evaluate(FOCUS_INDICATOR_SCRIPT)
    assert focus_problem(focus) is None, focus_problem(focus)
    assert focus["background"] == [255, 255, 255] and focus["colour"] == [33, 37, 41], focus
