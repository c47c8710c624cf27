"""A former patient asks for their records with the keyboard alone: from the home page they sign
in, open "My requests", fill in and send the request form, and reach the request's status page,
then find it again from the list. Only Tab, Shift+Tab, Enter, Space, the arrow keys and typing are
used (no click, no fill, no goto after the first page), and every place Tab stops at shows where
the focus is.

A first try leaves the signature out: the form comes back with focus on its error summary, whose
link takes the keyboard to the field.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from intake.extensions import db
from intake.records.models import RecordsRequest, RequestStatus
from tests.browser.conftest import BrowserLog, check_accessibility
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

MAX_TABS = 80  # a page with more stops than this before the target is itself a problem

# What the focused element is and whether it shows it has focus: an outline (the browser's own
# focus ring included) or Bootstrap's focus shadow, and not hidden off-screen.
FOCUS_SCRIPT = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return {id: null, describe: 'nothing', visible: false}; }
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== 'none';
  const rect = el.getBoundingClientRect();
  const shown = rect.width > 0 && rect.height > 0 && style.visibility !== 'hidden';
  const words = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 50);
  if (el.matches('input[type=date]') && !el.matches(':focus')) {
    // The date field's own calendar button, inside the browser's shadow DOM, with its own focus ring.
    return {id: el.id, describe: `<input id=${el.id}> (its calendar button)`, visible: true};
  }
  return {
    id: el.id || null,
    describe: `<${el.tagName.toLowerCase()}${el.id ? ' id=' + el.id : ''}> "${words}"`,
    visible: (outline || shadow) && shown,
  };
}"""


class Keyboard:
    """Moves through a page with Tab alone, checking each stop shows its focus."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.stops: list[str] = []

    def focused(self) -> dict:
        return self.page.evaluate(FOCUS_SCRIPT)

    def is_on(self, selector: str) -> bool:
        return self.page.evaluate("(s) => document.activeElement.matches(s)", selector)

    def tab_to(self, selector: str, backwards: bool = False) -> None:
        """Press Tab (Shift+Tab) until the element matching ``selector`` has focus (it may have it
        already: the sign-in page starts on the e-mail field)."""
        self.page.wait_for_load_state()
        if self.is_on(selector):
            focus = self.focused()
            assert focus["visible"], f"focus is not visible on {focus['describe']} ({self.page.url})"
            return
        for _ in range(MAX_TABS):
            self.page.keyboard.press("Shift+Tab" if backwards else "Tab")
            focus = self.focused()
            self.stops.append(focus["describe"])
            assert focus["visible"], f"focus is not visible on {focus['describe']} ({self.page.url})"
            if self.is_on(selector):
                return
        raise AssertionError(f"{selector} cannot be reached with Tab on {self.page.url}; the stops were:\n  "
                             + "\n  ".join(self.stops[-MAX_TABS:]))

    def type_into(self, selector: str, text: str) -> None:
        self.tab_to(selector)
        self.page.keyboard.type(text)

    def activate(self, selector: str, key: str = "Enter") -> None:
        self.tab_to(selector)
        self.page.keyboard.press(key)


def the_request(app: Flask) -> RecordsRequest:
    with app.app_context():
        req = db.session.execute(select(RecordsRequest)).scalar_one()
        db.session.expunge(req)
        return req


def test_a_records_request_with_the_keyboard_alone(page: Page, app: Flask, make_user, browser_log: BrowserLog) -> None:
    requester = make_user("requester")
    keys = Keyboard(page)
    main = page.get_by_role("main")
    page.goto("/")

    # The skip link comes first and takes focus to the main content.
    keys.activate("a.skip-link")
    expect(page.locator("main")).to_be_focused()

    # Sign in from the header (Shift+Tab goes back up from the main content).
    keys.tab_to("header a[href='/login']", backwards=True)
    page.keyboard.press("Enter")
    expect(page).to_have_url(path_is("/login"))
    keys.type_into("#email", requester.email)
    keys.type_into("#password", PASSWORD)
    page.keyboard.press("Enter")  # sends the form from the password field
    expect(page).to_have_url(path_is("/my/requests/"))  # a requester starts at their requests

    # My requests, then "Start a request".
    keys.activate("nav a[href='/my/requests/']")
    expect(page).to_have_url(path_is("/my/requests/"))
    keys.activate("main a[href='/my/requests/new']")
    expect(page).to_have_url(path_is("/my/requests/new"))
    check_accessibility(page)

    # The form, in tab order.
    keys.type_into("#patient_name", "Jordan Example")
    # The date of birth: three boxes, day, month and year, in that order whatever the browser's locale.
    keys.type_into("#patient_dob-day", "17")
    keys.type_into("#patient_dob-month", "5")
    keys.type_into("#patient_dob-year", "1980")
    keys.tab_to("input[name=relationship_to_patient]")
    page.keyboard.press("Space")  # the first option: I am the patient
    expect(page.get_by_label("I am the patient", exact=True)).to_be_checked()
    keys.tab_to("input[name=request_type]")
    page.keyboard.press("Space")  # the first option: a copy of my records
    expect(page.get_by_role("radio", name=re.compile("^A copy of my records"))).to_be_checked()
    keys.tab_to("input[name=delivery]")
    page.keyboard.press("Space")  # the first option: secure download
    expect(page.get_by_role("radio", name="Secure download from this site")).to_be_checked()
    keys.tab_to("#attest")
    page.keyboard.press("Space")
    expect(page.locator("#attest")).to_be_checked()

    # Sent without the typed signature: focus lands on the summary; its link leads to the field.
    keys.activate("main button[type=submit]")
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    assert browser_log.take_errors()  # the refused form answers 400
    expect(page.locator("#patient_name")).to_have_value("Jordan Example")  # nothing typed is lost
    keys.activate(".error-summary a[href='#attestation_name']")
    signature = page.locator("#attestation_name")
    expect(signature).to_be_focused()
    expect(signature).to_have_attribute("aria-invalid", "true")
    page.keyboard.type("Jordan Example")
    page.keyboard.press("Enter")  # sends the form from the text field

    # The request's status page; focus is on the confirmation (a polite live region), not the top.
    expect(page).to_have_url(re.compile(r"/my/requests/[A-Za-z0-9_-]{22}$"))
    expect(page.locator("#flash-messages")).to_be_focused()
    expect(page.locator("#flash-messages [role=status]")).to_contain_text("has been received")
    req = the_request(app)
    expect(page).to_have_url(path_is(f"/my/requests/{req.reference}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(req.human_ref)
    expect(main.locator("#status")).to_have_text("Received")
    assert req.status == RequestStatus.SUBMITTED
    check_accessibility(page)

    # And again from the list of requests (back up from the confirmation, which has the focus).
    keys.tab_to("nav a[href='/my/requests/']", backwards=True)
    page.keyboard.press("Enter")
    expect(page).to_have_url(path_is("/my/requests/"))
    keys.activate(f"main a[href='/my/requests/{req.reference}']")
    expect(page).to_have_url(path_is(f"/my/requests/{req.reference}"))
    expect(main.locator("#status")).to_have_text("Received")
