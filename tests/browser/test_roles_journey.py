"""Each new role in a real browser: signed in through the real forms it lands on its work, the menu
shows its links and not the others', a page it may not open is a 403 that names the role needed and
the administrators to ask, and the privacy officer reads a request without a single form to change
it. Each page passes the accessibility check, at desktop and phone width."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BrowserLog, check_accessibility, save_screenshot
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

# role -> (where it lands, that page's heading, menu links it has, menu links it must not have,
#          a page it may not open, the role the refusal names)
JOURNEYS = {
    "supervisor": ("/calls/urgent", "Urgent calls to review", ("Log a call", "Calls", "Urgent", "Follow-ups", "Admin"),
                   ("Records queue", "Archive"), "/queue/requests/",
                   "This page needs one of these roles: Records clerk or Privacy officer."),
    "records_clerk": ("/queue/requests/", "Records queue", ("Records queue", "Archive", "Admin"),
                      ("Log a call", "Calls", "Urgent", "Follow-ups", "Resources"), "/calls/",
                      "This page needs one of these roles: Helpline operator or Helpline supervisor."),
    "privacy_officer": ("/admin/audit/", "Audit trail", ("Records queue", "Admin"),
                        ("Log a call", "Calls", "Urgent", "Follow-ups", "Archive", "Resources"), "/calls/",
                        "This page needs one of these roles: Helpline operator or Helpline supervisor."),
}


def sign_in(page: Page, user) -> None:
    main = page.get_by_role("main")
    page.goto("/login")
    page.get_by_label("E-mail address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(path_is("/login/mfa"))
    page.get_by_label("Code").fill(pyotp.TOTP(user.mfa_secret).now())
    main.get_by_role("button", name="Continue").click()


@pytest.mark.parametrize("role", sorted(JOURNEYS))
def test_each_new_role_lands_on_its_work_and_is_told_who_to_ask(page: Page, make_user, make_request,
                                                                browser_log: BrowserLog, role: str) -> None:
    landing, heading, links, not_links, refused, needed = JOURNEYS[role]
    make_user("admin", display_name="Test Administrator")
    reference = make_request(make_user("requester"))
    person = make_user(role, display_name="Test Staff Member")
    nav = page.get_by_role("navigation", name="Main")

    sign_in(page, person)
    expect(page).to_have_url(path_is(landing))
    expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
    for name in links:
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    for name in not_links:
        expect(nav.get_by_role("link", name=name, exact=True)).to_have_count(0)
    check_accessibility(page)
    save_screenshot(page, f"landing-{role}")

    page.goto(refused)
    main = page.get_by_role("main")
    expect(main.get_by_role("heading", level=1, name="You do not have access to this page")).to_be_visible()
    expect(main.locator("#refusal-roles")).to_have_text(needed)
    expect(main.locator("#refusal-ask")).to_contain_text("Test Administrator")
    assert len(browser_log.take_errors()) == 1  # the 403 answer
    check_accessibility(page)

    if role == "privacy_officer":
        # Read-only: the request's page, with no form that would change it.
        page.goto(f"/queue/requests/{reference}")
        expect(main.locator("#read-only")).to_be_visible()
        expect(main.locator("form[method='post'][action*='/queue/requests/']")).to_have_count(0)
        check_accessibility(page)

    # At phone width the menu folds behind one button, and opens to the role's links, one under the other.
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(landing)
    expect(nav.get_by_role("link", name=links[0], exact=True)).to_be_hidden()
    nav.get_by_role("button", name="Menu").click()
    for name in links:
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    check_accessibility(page)


def test_a_person_with_every_role_has_a_menu_on_one_line(page: Page, make_user, browser_log: BrowserLog) -> None:
    """Issue 19: at 1280 px the menu of someone holding every staff role fits one line, grouped by work;
    the groups open from the keyboard, and a count on a link shows on its group too."""
    everyone = make_user(["operator", "supervisor", "records_clerk", "privacy_officer", "admin"],
                         display_name="Test Every Role")
    nav = page.get_by_role("navigation", name="Main")
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, everyone)
    page.wait_for_load_state("load")  # the style sheets applied, on a loaded machine too
    one_line = """() => { const tops = [...document.querySelectorAll('#main-menu > ul > li')]
                              .map(i => i.getBoundingClientRect().top);
                          return tops.length >= 5 && Math.max(...tops) - Math.min(...tops) < 8; }"""
    page.wait_for_function(one_line)  # fails (times out) when the items wrap or stack
    height = page.eval_on_selector("nav.navbar", "n => n.getBoundingClientRect().height")
    save_screenshot(page, "menu-every-role-1280-closed")
    assert height < 80, height  # no second row of links
    for name in ("Helpline", "Records"):
        expect(nav.get_by_role("button", name=name)).to_be_visible()
    expect(nav.get_by_role("link", name="Urgent")).to_be_hidden()
    nav.get_by_role("button", name="Helpline").focus()
    page.keyboard.press("Enter")
    expect(nav.get_by_role("link", name="Urgent")).to_be_visible()
    check_accessibility(page)
    save_screenshot(page, "menu-every-role-1280")
    nav.get_by_role("link", name="Urgent").click()
    expect(page).to_have_url(path_is("/calls/urgent"))
    assert browser_log.take_errors() == []
