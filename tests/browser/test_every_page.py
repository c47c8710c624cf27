"""Every page of the app, in English and Spanish, at desktop width and at phone width (360 px).

The pages come from ``app.url_map``: every GET route is either visited or listed in ``EXCLUDED``
with the reason it is not a page, so a new page cannot be missed (its test fails until it is
visited). Each page is opened as the least privileged role ``tests/test_authorization.py``'s
EXPECTED lets in, with URL arguments taken from real seeded objects (records requests in every
state, documents, letters, calls, follow-ups, resources, notices, reviews, archive entries...),
so it shows real content. On each visit:

- axe-core finds no serious or critical violation (moderate and minor ones are listed in pytest's
  warnings summary);
- nothing scrolls sideways: ``document.documentElement.scrollWidth <= window.innerWidth`` on every
  page (staff pages included), and on public and portal pages no element reaches past the viewport
  (content inside a scrolling ``.table-responsive`` box may: that box is how a wide table works on a
  phone);
- ``<html lang>`` is the language the app chose for the ``lang`` cookie;
- no id is used twice, and every ``label[for]`` names a form control in its own form
  (``html_checks.LABELS_AND_IDS_SCRIPT``);
- at 360 px a full-page screenshot goes to ``test-artifacts/pages/`` (gitignored).

The HTML each page was served with (desktop width, both languages; error pages and forms in their
error state too) is kept, and the last test runs the W3C Nu HTML Checker once over all of it
(``html_checks.nu_errors``): any error fails, with the page, line and message.

Error pages (400, 403, 404) and one form in its error state per form macro are checked the same
way, plus the form rules: each invalid field has ``aria-invalid="true"`` and an
``aria-describedby`` naming its message, an error summary links to every invalid field, and
focus starts on the summary.

One browser, one context per role (signed in once, again only if the session timed out), and
one seeded database for the module: the whole walk takes a few minutes.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import Flask, url_for
from flask_babel import get_locale
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from intake import demo
from intake.admin.notices import create_notice
from intake.archive.models import ArchivedPatient
from intake.calls.followups import create_followup
from intake.calls.models import Call, CallStatus, FollowUp, RiskLevel
from intake.calls.services import start_call
from intake.db_types import utcnow
from intake.extensions import db
from intake.i18n import STAFF_ONLY_PREFIXES
from intake.records import documents, fees
from intake.records.clocks import local_day
from intake.records.models import FileKind, RecordsRequest, RequestDocument, RequestStatus
from intake.records.services import record_delivery
from intake.records.submission import submit_request
from intake.resources.models import Resource
from intake.review.models import CallReview, ReviewStatus
from intake.review.services import draw_weekly_sample, last_full_week
from intake.security.tokens import Purpose, make_token
from intake.users.invitations import invite_staff
from intake.users.models import Role, User
from intake.users.services import create_user
from tests.browser.conftest import (
    ACTION_TIMEOUT_MS,
    ARTIFACTS,
    NAVIGATION_TIMEOUT_MS,
    BrowserLog,
    axe_violations,
    describe_violations,
    save_screenshot,
    serving,
)
from tests.browser.html_checks import LABELS_AND_IDS_SCRIPT, nu_errors
from tests.conftest import (
    FULL_ADMIN,
    PASSWORD,
    PG_URL,
    fresh_database,
    make_app,
    totp_code,
    truncate_postgres,
    valid_submission,
)
from tests.test_authorization import EXPECTED

pytestmark = pytest.mark.browser

LANGUAGES = ("en", "es")
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 360, "height": 740}}
FAILING_IMPACTS = ("serious", "critical")
SCREENSHOTS = ARTIFACTS / "pages"

# GET routes that are not pages a person reads, each with the reason. Everything else is visited.
EXCLUDED: dict[str, str] = {
    "static": "the app's own CSS, scripts and icons, not pages",
    "bootstrap.static": "Bootstrap's CSS and scripts, not pages",
    "public.healthz": "a JSON health check for load balancers and monitoring",
    "public.readyz": "a JSON readiness check for load balancers and orchestrators",
    "metrics.metrics": "Prometheus metrics for the monitoring system, behind a token",
    "resources.search_json": "JSON for the call form's resource picker (the picker is checked on the call form)",
    "admin_audit.export": "a CSV download of the audit trail",
    "admin_exports.calls_csv": "a CSV download (coded call fields)",
    "admin_exports.requests_csv": "a CSV download (coded request fields)",
    "my_requests.download": "a file download (PDF, PNG or JPEG) the requester saves",
    "request_queue.download": "a file download (PDF, PNG or JPEG) staff save",
    "recipient_copy.download": "a file download (PDF, PNG or JPEG) a third party's recipient saves",
    "my_requests.letter_pdf": "a stored letter as a PDF file the requester saves (its page is visited; the PDF "
                                  "is checked in tests/test_records_letter_pdf.py)",
    "request_queue.letter_pdf": "a stored letter as a PDF file staff save (its page is visited; the PDF is "
                                     "checked in tests/test_records_letter_pdf.py)",
    "disclosures.export": "a CSV download (every emergency disclosure)",
    "calls_intake.live": "JSON the call form polls for supervisors' notes",
}

ROLE_ORDER = ("anonymous", "requester", "operator", "admin")
# The matrix's columns each walking account stands for: the walk's admin holds every staff role (as
# migration 0010 left the admins of before), so it may open what any staff column may.
MATRIX_COLUMNS = {"anonymous": ("anonymous",), "requester": ("requester",), "operator": ("operator",),
                  "admin": ("operator", "supervisor", "records_clerk", "privacy_officer", "admin", "multi")}
# Half-way through signing in (password given, second factor not yet): the only pages they see.
PENDING_PAGES = {"auth.mfa": "mfa", "auth.mfa_setup": "mfa_setup"}
REQUEST_STATES = ("submitted", "verifying", "in_review", "awaiting_requester", "fulfilled", "partially_fulfilled",
                  "denied", "no_records", "withdrawn", "review_requested", "review_decided")
# Pages worth seeing more than once: a request's page in each state, a call as its operator and
# as an admin (who also sees who viewed it), the account page of a requester and of staff.
VARIANTS: dict[str, tuple[str, ...]] = {
    "my_requests.detail": REQUEST_STATES + ("third_party",),
    "request_queue.detail": REQUEST_STATES + ("third_party",),
    "my_requests.letter": ("acknowledgment", "denial"),
    "request_queue.letter": ("acknowledgment", "denial"),
    "calls.detail": ("", "admin"),
    "auth.account": ("", "admin"),
}
ROLE_VARIANTS = {"admin": "admin"}  # a variant of this name is seen by that role
# Stored letters are documents in the language they were written in; they carry their own lang.
OWN_LANGUAGE = frozenset({"my_requests.letter", "request_queue.letter"})
STAFF_ROLES = frozenset({"operator", "admin"})


# --- The route list, from the URL map -----------------------------------------------------------

@cache
def get_endpoints() -> tuple[str, ...]:
    """Every endpoint with a GET rule, read from the URL map of an app built for the purpose (no
    database is touched: building the app does no I/O besides its instance folder)."""
    before = os.environ.get("INTAKE_INSTANCE_PATH")
    try:
        with tempfile.TemporaryDirectory(prefix="intake-routes-") as instance:
            app = make_app("sqlite://", Path(instance))
            endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())}
    finally:  # make_app points this at the folder: put back what was there
        if before is None:
            os.environ.pop("INTAKE_INSTANCE_PATH", None)
        else:
            os.environ["INTAKE_INSTANCE_PATH"] = before
    return tuple(sorted(endpoints))


def page_ids() -> list[tuple[str, str]]:
    """(endpoint, variant) for every page to visit: the URL map's GET routes less EXCLUDED."""
    return [(endpoint, variant) for endpoint in get_endpoints() if endpoint not in EXCLUDED
            for variant in VARIANTS.get(endpoint, ("",))]


def role_for(endpoint: str, variant: str) -> str:
    """Who opens the page: a pending sign-in for the second-factor pages, the variant's role, or
    the least privileged role EXPECTED lets through (200; 400 or 404 on the matrix's made-up
    URL arguments also means "let in, then told the object is not there")."""
    if endpoint in PENDING_PAGES:
        return PENDING_PAGES[endpoint]
    if variant in ROLE_VARIANTS:
        return ROLE_VARIANTS[variant]
    expected = EXPECTED.get((endpoint, "GET"))
    if expected is None:
        pytest.fail(f"{endpoint} has no row in tests/test_authorization.py EXPECTED")
    for role in ROLE_ORDER:
        if any(expected[column] in (200, 400, 404) for column in MATRIX_COLUMNS[role]):
            return role
    pytest.fail(f"no role may open {endpoint} (EXPECTED: {expected}); add it to PENDING_PAGES or EXCLUDED")


def is_public_or_portal(role: str) -> bool:
    return role not in STAFF_ROLES


# --- The seeded world -----------------------------------------------------------------------------

@dataclass
class World:
    """One seeded database served on a real socket, and the URL arguments of real objects."""

    app: Flask
    base_url: str
    users: dict[str, User]
    args: dict[tuple[str, str], dict]  # (endpoint, variant) -> URL arguments
    browser: Browser | None = None
    contexts: dict[str, BrowserContext] = field(default_factory=dict)
    pages: dict[str, Page] = field(default_factory=dict)
    log: BrowserLog | None = None  # the current test's, so the console guard sees this page too
    chosen_locale: dict[str, str] = field(default_factory=dict)
    served: dict[str, str] = field(default_factory=dict)  # page name -> the HTML it was served with
    last_html: str = ""

    def on_console(self, message) -> None:
        if self.log is not None:
            self.log.on_console(message)

    def on_page_error(self, error) -> None:
        if self.log is not None:
            self.log.on_page_error(error)

    def url(self, endpoint: str, variant: str = "") -> str:
        if (endpoint, variant) not in self.args and self._has_arguments(endpoint):
            pytest.fail(f"no seeded URL arguments for {endpoint} {variant!r}: add them in seed() "
                        "or list the route in EXCLUDED with a reason")
        with self.app.test_request_context():
            return url_for(endpoint, **self.args.get((endpoint, variant), {}))

    def _has_arguments(self, endpoint: str) -> bool:
        return any(rule.arguments for rule in self.app.url_map.iter_rules(endpoint))

    def page_for(self, role: str) -> Page:
        """The role's page (its own context, so cookies never mix), signed in on first use."""
        if role not in self.pages:
            assert self.browser is not None
            context = self.browser.new_context(base_url=self.base_url, locale="en-US", viewport=WIDTHS["desktop"])
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
            context.on("console", self.on_console)
            page = context.new_page()
            page.on("pageerror", self.on_page_error)
            self.contexts[role], self.pages[role] = context, page
            self.sign_in(role)
        return self.pages[role]

    def sign_in(self, role: str) -> None:
        """Through the real forms; staff give a code; a pending role stops after the password."""
        if role == "anonymous":
            return
        page, user = self.pages[role], self.users[role]
        self.set_language(role, "en")
        page.goto("/login")
        page.get_by_label("E-mail address").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("main").get_by_role("button", name="Sign in").click()
        if role in ("mfa", "mfa_setup"):
            expect(page).to_have_url(re.compile(r"/login/mfa$" if role == "mfa" else r"/mfa/setup$"))
            return
        if user.is_staff:
            expect(page).to_have_url(re.compile(r"/login/mfa$"))
            page.get_by_label("Code").fill(totp_code(self.app.test_client(), user.email))
            page.get_by_role("main").get_by_role("button", name="Continue").click()
        # Each lands on its work (intake.permissions.LANDING): not the sign-in pages any more.
        expect(page).not_to_have_url(re.compile(r"/login(/mfa)?$"))

    def set_language(self, role: str, lang: str) -> None:
        self.contexts[role].add_cookies([{"name": "lang", "value": lang, "url": self.base_url}])

    def open(self, role: str, path: str, lang: str, width: str, expect_status: int = 200) -> Page:
        """Open ``path`` as ``role`` in ``lang`` at ``width``; sign in again if the session ended."""
        page = self.page_for(role)
        page.set_viewport_size(WIDTHS[width])
        for attempt in range(2):
            if role in ("mfa", "mfa_setup"):
                self.sign_in(role)  # a pending sign-in lives 5 minutes: start a fresh one each time
            self.set_language(role, lang)
            response = page.goto(path)
            assert response is not None
            landed = urlsplit(page.url).path
            if attempt == 0 and role != "anonymous" and landed == "/login" and urlsplit(path).path != "/login":
                self.sign_in(role)  # idle timeout: sign in again and retry once
                continue
            break
        assert response.status == expect_status, f"GET {path} as {role}: {response.status}, landed on {page.url}"
        assert urlsplit(page.url).path == urlsplit(path).path, f"GET {path} as {role} was sent to {page.url}"
        self.last_html = response.text()
        return page

    def open_document(self, role: str, path: str, width: str) -> Page:
        """A stored letter: served under a sandbox policy that runs no script at all (so neither
        can axe), it is fetched with the role's cookies and its own markup checked in a blank page."""
        page = self.page_for(role)
        page.set_viewport_size(WIDTHS[width])
        response = self.contexts[role].request.get(path)
        assert response.status == 200, f"GET {path} as {role}: {response.status}"
        assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
        assert "sandbox" in response.headers["content-security-policy"]
        self.last_html = response.text()
        page.goto("about:blank")
        page.set_content(self.last_html)
        return page

    def close(self) -> None:
        for context in self.contexts.values():
            context.close()


def _staff(email: str, role: Role | tuple[Role, ...], enrolled: bool = True) -> User:
    user = create_user(email, role, PASSWORD, verified=True, display_name="Every Page")
    if enrolled:
        user.mfa_secret = pyotp.random_base32()
        user.mfa_enrolled_at = utcnow()
    return user


def _recipient_link(app: Flask, admin: User, req: RecordsRequest) -> str:
    """A link e-mailed to ``req``'s recipient under a disclosure written for it; returns its token."""
    from intake.records import recipient
    from intake.records.models import CodeChannel, Disclosure, DisclosureBasis

    doc = documents.upload(req, admin, "released_record", "records-for-the-clinic.pdf", b"%PDF-1.4\n% copy\n")
    disclosure = Disclosure(request_id=req.id, basis=DisclosureBasis.CONSENT, channel="recipient_link",
                            recipient_name="Harbor Clinic (demo)", description="Records of the stay",
                            purpose="Continuing care", redisclosure_notice=True, disclosed_by_id=admin.id)
    db.session.add(disclosure)
    db.session.flush()
    with app.test_request_context():
        sent = recipient.make_link(req, disclosure, admin, "harbor-clinic@example.org", CodeChannel.PHONE, [doc.id],
                                   utcnow())
    db.session.commit()
    return sent.token


def seed(app: Flask) -> tuple[dict[str, User], dict[tuple[str, str], dict]]:
    """Real objects of every kind, made through the services (and the demo seeder)."""
    args: dict[tuple[str, str], dict] = {}
    with app.app_context():
        # One account per role the walk signs in as, two half-way through signing in, and the
        # accounts behind real links (e-mail confirmation, password reset, staff invitation).
        users = {
            "admin": _staff("every-page-admin@example.org", FULL_ADMIN),
            "operator": _staff("every-page-operator@example.org", Role.OPERATOR),
            "requester": create_user("every-page-requester@example.org", Role.REQUESTER, PASSWORD, verified=True),
            "mfa": _staff("every-page-mfa@example.org", Role.OPERATOR),
            "mfa_setup": _staff("every-page-mfa-setup@example.org", Role.OPERATOR, enrolled=False),
        }
        second_admin = _staff("every-page-admin2@example.org", FULL_ADMIN)
        unverified = create_user("every-page-unverified@example.org", Role.REQUESTER, PASSWORD)
        resetting = create_user("every-page-reset@example.org", Role.REQUESTER, PASSWORD, verified=True)
        db.session.flush()
        invited = invite_staff("every-page-invited@example.org", Role.OPERATOR, users["admin"],
                               display_name="Every Page Invitee")
        db.session.commit()
        args[("registration.verify_email", "")] = {"token": make_token(unverified, Purpose.VERIFY_EMAIL)}
        args[("reset.choose_password", "")] = {"token": make_token(resetting, Purpose.RESET_PASSWORD)}
        args[("invitations.accept", "")] = {"token": make_token(invited, Purpose.INVITATION)}

        # Calls, follow-ups, resources (the demo seeder: invented, coded, with referrals and reviews).
        result = app.test_cli_runner().invoke(
            args=["demo", "seed", "--calls", "60", "--resources", "8", "--requests", "0", "--seed", "8"])
        assert result.exit_code == 0, result.output
        operator, admin, requester = users["operator"], users["admin"], users["requester"]

        # Records requests of the page's requester, one in every state, moved by the workflow.
        rng = random.Random(8)  # nosec B311 - invented data, the same every run
        now = utcnow()
        counts: Counter = Counter()
        admins = [admin, second_admin]
        by_state: dict[str, RecordsRequest] = {}
        for i, state in enumerate(REQUEST_STATES):
            # The index spreads the open ones over overdue, due soon and on track.
            demo.build_request(rng, 900 + i, RequestStatus(state), i, now, requester, admins, counts)
            db.session.commit()
            by_state[state] = db.session.execute(
                select(RecordsRequest).where(RecordsRequest.owner_id == requester.id)
                .order_by(RecordsRequest.id.desc()).limit(1)).scalar_one()
        # A release to someone else, whose consent is not signed yet (the consent page shows its form).
        third = submit_request(requester, valid_submission(
            request_type="third_party", recipient_name="Harbor Clinic (demo)",
            recipient_address="1 Harbor Way, Oakland, CA 94607", purpose="Continuing care"))
        by_state["third_party"] = third
        # The request being prepared carries documents both ways and a cost estimate.
        working = by_state["in_review"]
        documents.upload(working, requester, "photo_id", "my-photo-id-with-a-rather-long-file-name.pdf",
                         b"%PDF-1.4\n% every page\n")
        record_pdf = documents.upload(working, admin, "released_record", "records-2017.pdf",
                                      b"%PDF-1.4\n% records\n")
        documents.release(working, record_pdf, admin)
        fees.give_estimate(working, admin, "paper", 40, 120)
        db.session.commit()
        if by_state["fulfilled"].delivered_at is None:
            record_delivery(by_state["fulfilled"], admin, "mail")
        db.session.commit()
        for state, req in by_state.items():
            args[("my_requests.detail", state)] = {"reference": req.reference}
            args[("request_queue.detail", state)] = {"reference": req.reference}
        args[("my_requests.sign_consent", "")] = {"reference": third.reference}
        # A secure link to the third party's copy (its public page asks for the access code).
        args[("recipient_copy.open_link", "")] = {"token": _recipient_link(app, admin, third)}
        args[("my_requests.designate", "")] = {"reference": by_state["denied"].reference}

        def letter(req: RecordsRequest, newest: bool) -> str:
            order = RequestDocument.id.desc() if newest else RequestDocument.id
            return db.session.execute(select(RequestDocument.uid).where(
                RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.LETTER)
                .order_by(order).limit(1)).scalar_one()

        for endpoint in ("my_requests.letter", "request_queue.letter"):
            args[(endpoint, "acknowledgment")] = {"reference": by_state["submitted"].reference,
                                                  "doc_uid": letter(by_state["submitted"], newest=False)}
            args[(endpoint, "denial")] = {"reference": by_state["denied"].reference,
                                          "doc_uid": letter(by_state["denied"], newest=True)}
        patient_id = db.session.execute(select(ArchivedPatient.id).order_by(ArchivedPatient.id)).scalars().first()
        args[("archive_admin.detail", "")] = {"patient_id": patient_id}

        # A call with much on its page: the highest risk with a follow-up; the operator's draft.
        rich = db.session.execute(
            select(Call).join(FollowUp, FollowUp.call_id == Call.id).where(Call.status == CallStatus.FINAL)
            .order_by(Call.risk_level.in_((RiskLevel.HIGH, RiskLevel.IMMINENT)).desc(), Call.id)).scalars().first()
        args[("calls.detail", "")] = args[("calls.detail", "admin")] = {"call_id": rich.id}
        # An open follow-up with a number to call back: its page shows all its forms at once (reveal,
        # callback, attempt, assign, close), two with an "outcome" and two with a "note".
        consenting = Call(operator_id=operator.id, status=CallStatus.FINAL, consent_callback=True,
                          consent_voicemail=True, safe_wording="Ask for Sam; say it is the pharmacy.",
                          safe_times="Weekdays after 6 pm", caller_phone="4155550134")
        db.session.add(consenting)
        db.session.flush()
        followup = create_followup(consenting, utcnow() + timedelta(hours=2), None, actor=None)
        db.session.commit()
        args[("followups.detail", "")] = {"followup_id": followup.id}
        draft_id = start_call(operator)
        db.session.commit()
        args[("calls_intake.edit", "")] = {"call_id": draft_id}
        resource_id = db.session.execute(select(Resource.id).order_by(Resource.id)).scalars().first()
        for endpoint in ("resources.detail", "resources.edit"):
            args[(endpoint, "")] = {"resource_id": resource_id}

        # A site notice (on the public pages too) and the quality-review queue, one review scored.
        today = local_day(utcnow(), app.config["FACILITY_TIMEZONE"])
        notice, _ = create_notice({"kind": "information", "title": "Office closed on Friday",
                                   "title_es": "Oficina cerrada el viernes",
                                   "body": "The records office is closed on Friday; the helpline is open.",
                                   "body_es": "La oficina de expedientes cierra el viernes; la línea de ayuda "
                                              "sigue abierta.",
                                   "starts_on": today, "ends_on": today + timedelta(days=7)}, admin, today)
        args[("admin_notices.edit", "")] = {"notice_id": notice.id}
        week = last_full_week()
        for back in range(4):
            draw_weekly_sample(week - timedelta(weeks=back), 2, admin)
        db.session.commit()
        review = db.session.execute(select(CallReview).where(CallReview.status == ReviewStatus.OPEN)
                                    .order_by(CallReview.id)).scalars().first()
        args[("admin_review.detail", "")] = {"review_id": review.id}
        args[("admin_users.detail", "")] = {"user_id": users["operator"].id}
        args[("admin_retention.edit", "")] = {"kind": "call_text"}
        db.session.commit()
        for user in users.values():
            db.session.refresh(user)
            db.session.expunge(user)
    return users, args


@pytest.fixture(scope="module")
def world(template_db: str, tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[World]:
    base = tmp_path_factory.mktemp("every-page")
    url = fresh_database(template_db, base)
    app = make_app(url, base / "instance")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # this run's screenshots only, none left from an older one
    users, args = seed(app)
    with serving(app) as base_url:
        site = World(app=app, base_url=base_url, users=users, args=args, browser=browser)
        for lang in LANGUAGES:
            with app.test_request_context("/", headers={"Cookie": f"lang={lang}", "Accept-Language": "en-US"}):
                site.chosen_locale[lang] = str(get_locale())
        try:
            yield site
        finally:
            site.close()
    with app.app_context():
        db.session.remove()
        if PG_URL:
            truncate_postgres()
        db.engine.dispose()


@pytest.fixture()
def site(world: World, browser_log: BrowserLog) -> Iterator[World]:
    """The module's world, its browser console reporting to this test's guard."""
    world.log = browser_log
    try:
        yield world
    finally:
        world.log = None


# --- The checks -------------------------------------------------------------------------------------

OVERFLOW_SCRIPT = """() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const page = root.scrollWidth > window.innerWidth
    ? `the page is ${root.scrollWidth}px wide in a ${window.innerWidth}px window` : null;
  // Inside a box that scrolls (or clips) sideways, such as .table-responsive, wide content is fine.
  const contained = (el) => {
    for (let node = el.parentElement; node && node !== document.body; node = node.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(node).overflowX)) { return true; }
    }
    return false;
  };
  const sticksOut = (el) => {
    const rect = el.getBoundingClientRect();
    return rect.width > 0 && rect.height > 0 && (rect.right > width + 1 || rect.left < -1);
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.classList.length ? '.' + [...el.classList].join('.') : '');
  const elements = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (!sticksOut(el) || contained(el)) { continue; }
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.position === 'fixed') { continue; }
    const parent = el.parentElement;
    if (parent && parent !== document.body && sticksOut(parent) && !contained(parent)) { continue; }  // outermost only
    const rect = el.getBoundingClientRect();
    const words = (el.innerText || '').trim().replace(/\\s+/g, ' ').slice(0, 60);
    elements.push(`${name(el)} spans ${Math.round(rect.left)}..${Math.round(rect.right)}px `
      + `(viewport ${width}px): "${words}"`);
    if (elements.length >= 8) { break; }
  }
  return {page, elements};
}"""


# The page links the site's own stylesheet and the browser applied it (its rules are readable).
STYLESHEET_SCRIPT = """() => [...document.styleSheets].some((sheet) => {
  if (!sheet.href || !sheet.href.includes('/static/css/intake.css')) { return false; }
  try { return sheet.cssRules.length > 0; } catch (e) { return false; }
})"""


@dataclass
class Findings:
    """What a visit found, so one test reports every problem of its page at once."""

    where: str
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        if self.problems:
            pytest.fail(f"{self.where}:\n" + "\n".join(self.problems), pytrace=False)


class MinorAxeFinding(UserWarning):
    """A moderate or minor axe finding: reported (pytest's warnings summary), not failed."""


def check_page(site: World, page: Page, where: str, role: str, lang: str, width: str, shot: str,
               own_language: bool = False) -> Findings:
    findings = Findings(where)
    overflow = page.evaluate(OVERFLOW_SCRIPT)
    # No page may scroll sideways (the culprits are named); on the public pages and the portal, not
    # even one element may reach past the screen (staff pages may have a wide box that is cut off).
    found = [overflow["page"], *overflow["elements"]] if overflow["page"] else []
    if is_public_or_portal(role) and not found:
        found = overflow["elements"]
    if found:
        findings.problems.append("horizontal overflow:\n  " + "\n  ".join(found))
    violations = axe_violations(page)
    failing = [v for v in violations if v.get("impact") in FAILING_IMPACTS]
    if failing:
        findings.problems.append(describe_violations(page, failing))
    minor = [v for v in violations if v.get("impact") not in FAILING_IMPACTS]
    if minor:
        warnings.warn(MinorAxeFinding(f"{where}: {describe_violations(page, minor)}"), stacklevel=2)
    findings.problems.extend(page.evaluate(LABELS_AND_IDS_SCRIPT))
    if not own_language and not page.evaluate(STYLESHEET_SCRIPT):
        findings.problems.append("the site's stylesheet (css/intake.css, with the focus indicator) is not applied")
    if not own_language:
        got = page.evaluate("() => document.documentElement.lang")
        # Staff-only pages are in English for staff whatever they chose (intake/i18n.py), and say so;
        # anyone else refused there reads the refusal in their own language.
        staff_page = role in STAFF_ROLES and urlsplit(page.url).path.startswith(STAFF_ONLY_PREFIXES)
        wanted = "en" if staff_page else site.chosen_locale[lang]
        if got != wanted:
            findings.problems.append(f'<html lang="{got}">, but the page is in {wanted!r} for the lang={lang} cookie')
    if width == "phone":
        save_screenshot_in(page, shot)
    elif findings.problems:
        save_screenshot_in(page, "FAILED-" + shot)
    return findings


def save_screenshot_in(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return save_screenshot(page, "pages/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name))


# --- Every page ------------------------------------------------------------------------------------

def test_every_get_route_is_visited_or_excluded() -> None:
    """The list below the tests is the URL map; a stale exclusion (a route that is gone) fails too."""
    endpoints = set(get_endpoints())
    stale = set(EXCLUDED) - endpoints
    assert not stale, f"EXCLUDED names routes that no longer exist: {sorted(stale)}"
    assert not (set(VARIANTS) - endpoints), f"VARIANTS names routes that no longer exist: {set(VARIANTS) - endpoints}"
    visited = {endpoint for endpoint, _ in page_ids() if endpoint not in EXCLUDED}
    assert visited | set(EXCLUDED) == endpoints
    assert "public.index" in visited and "my_requests.detail" in visited


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(("endpoint", "variant"), page_ids(),
                         ids=[f"{e}[{v}]" if v else e for e, v in page_ids()])
def test_page(site: World, endpoint: str, variant: str, lang: str, width: str) -> None:
    role = role_for(endpoint, variant)
    path = site.url(endpoint, variant)
    if endpoint in OWN_LANGUAGE:
        page = site.open_document(role, path, width)
    else:
        page = site.open(role, path, lang, width)
    label = f"{endpoint}{'-' + variant if variant else ''}-{lang}"
    if width == "desktop":
        site.served[label] = site.last_html
    where = f"{endpoint} {variant} as {role}, {lang}, {width} ({path})"
    check_page(site, page, where, role, lang, width, label, own_language=endpoint in OWN_LANGUAGE).check()


# --- Error pages and forms in their error state ------------------------------------------------

ERROR_PAGES = {
    "404": ("anonymous", "/no-such-page", 404),
    "404-portal": ("requester", "/my/requests/AAAAAAAAAAAAAAAAAAAAAA", 404),
    "403": ("requester", "/admin/", 403),
    "400-link": ("anonymous", "/reset/not-a-valid-link", 400),
}


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", list(ERROR_PAGES))
def test_error_page(site: World, browser_log: BrowserLog, name: str, lang: str, width: str) -> None:
    role, path, status = ERROR_PAGES[name]
    page = site.open(role, path, lang, width, expect_status=status)
    if width == "desktop":
        site.served[f"error-{name}-{lang}"] = site.last_html
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    browser_log.take_errors()  # the browser logs the error status; that is the point here
    check_page(site, page, f"error page {name} as {role}, {lang}, {width}", role, lang, width,
               f"error-{name}-{lang}").check()


FORM_ERRORS_SCRIPT = """({fields, summarized}) => {
  const problems = [];
  const invalid = [...document.querySelectorAll('[aria-invalid="true"]')];
  if (fields && !invalid.length) { problems.push('no field is marked aria-invalid="true"'); }
  for (const el of invalid) {
    const ids = (el.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean);
    const texts = ids.map((id) => document.getElementById(id)).filter(Boolean)
      .map((node) => node.textContent.trim()).filter(Boolean);
    if (!texts.length) { problems.push(`#${el.id} is invalid but aria-describedby names no message`); }
  }
  const described = new Set();
  for (const el of document.querySelectorAll('[aria-describedby]')) {
    el.getAttribute('aria-describedby').split(/\\s+/).forEach((id) => described.add(id));
  }
  for (const message of document.querySelectorAll('.invalid-feedback')) {
    if (message.offsetParent !== null && !described.has(message.id)) {
      problems.push(`the message "${message.textContent.trim()}" is not tied to its field (aria-describedby)`);
    }
  }
  const summary = document.querySelector('.error-summary');
  if (!summarized) {
    if (summary) { problems.push('a form of one field has an error summary that repeats its message'); }
    if (document.activeElement !== invalid[0]) {
      problems.push(`focus is on ${document.activeElement.outerHTML.slice(0, 80)}, not on the invalid field`);
    }
    return problems;
  }
  if (!summary) {
    problems.push('no error summary (.error-summary) at the top of the form');
    return problems;
  }
  if (!summary.querySelector('[role="alert"]')) { problems.push('the error summary is not announced (role="alert")'); }
  const targets = [...summary.querySelectorAll('a[href^="#"]')].map((a) => a.getAttribute('href').slice(1));
  for (const el of invalid) {
    const group = el.closest('fieldset[id]');
    if (!targets.includes(el.id) && !(group && targets.includes(group.id))) {
      problems.push(`the error summary has no link to #${el.id}`);
    }
  }
  for (const id of targets) {
    if (!document.getElementById(id)) { problems.push(`the error summary links to #${id}, which is not on the page`); }
  }
  if (document.activeElement !== summary) {
    const active = document.activeElement;
    problems.push(`focus is on ${active ? active.outerHTML.slice(0, 80) : 'nothing'}, not on the error summary`);
  }
  return problems;
}"""


# The forms are filled by field id and sent with their own button, so the same steps work in
# every language.
def _send(page: Page) -> None:
    page.locator("main form button[type=submit]").last.click()


def _login_wrong_password(site: World, page: Page) -> None:
    page.locator("#email").fill(site.users["requester"].email)
    page.locator("#password").fill("not the password at all")
    _send(page)


def _register_mistakes(site: World, page: Page) -> None:
    page.locator("#email").fill("not-an-address")
    page.locator("#password").fill("short")
    page.locator("#confirm").fill("different")
    _send(page)


def _send_as_it_is(site: World, page: Page) -> None:
    _send(page)


def _reset_not_an_address(site: World, page: Page) -> None:
    page.locator("#email").fill("not an address")
    _send(page)


def _call_at_high_risk_without_safety_action(site: World, page: Page) -> None:
    """Finalize the operator's draft with thoughts, intent and a plan but no safety action, and
    without who is calling or the disposition: the summary links each problem, the safety actions'
    too (a group of checkboxes with no field of its own)."""
    for question in ("suicidal_thoughts", "suicidal_intent", "suicide_plan"):
        page.locator(f"input[name={question}][value=yes]").check()
    _send(page)


@dataclass(frozen=True)
class FormCase:
    role: str
    path: str  # or an endpoint whose URL comes from the seeded world
    what: str  # the macro (or hand-written markup) whose errors this case shows
    submit: Callable[[World, Page], None] | None = None  # None: the path itself is the refused form (GET)
    fields: bool = True  # False: a problem of the whole form, tied to no one field
    summarized: bool = True  # False: a form of one field, whose message next to it says it all
    status: int = 200


FORM_CASES = {
    "login": FormCase("anonymous", "/login", "render_form", _login_wrong_password),
    "register": FormCase("anonymous", "/register", "render_field with hints", _register_mistakes),
    "reset-request": FormCase("anonymous", "/reset", "a form of one field", _reset_not_an_address, summarized=False),
    "records-request": FormCase("requester", "/my/requests/new", "choice_group and checkbox", _send_as_it_is),
    "consent": FormCase("requester", "my_requests.sign_consent", "checkbox and render_field", _send_as_it_is),
    "resource": FormCase("admin", "/resources/new", "render_field and choice_group (staff)", _send_as_it_is),
    "staff-filter": FormCase("admin", "/admin/users/?role=bogus", "a select drawn by hand with field_errors",
                             status=400),
    "call-finalize": FormCase("operator", "calls_intake.edit", "the call form's own summary, checkbox groups",
                              _call_at_high_risk_without_safety_action),
    "dashboard-range": FormCase("admin", "/admin/dashboard?date_from=2026-02-01&date_to=2026-01-01",
                                "a problem of the whole form", fields=False, status=400),
}


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", list(FORM_CASES))
def test_form_in_error_state(site: World, browser_log: BrowserLog, name: str, lang: str, width: str) -> None:
    """A refused form: its problems are announced and tied to their fields, and focus starts on them."""
    case = FORM_CASES[name]
    path = case.path if case.path.startswith("/") else site.url(case.path)
    page = site.open(case.role, path, lang, width, expect_status=case.status)
    if case.submit is not None:
        with page.expect_navigation() as navigation:
            case.submit(site, page)
        response = navigation.value
        assert response is not None
        site.last_html = response.text()
    if width == "desktop":
        site.served[f"form-{name}-{lang}"] = site.last_html
    expect(page.locator("[aria-invalid=true], .error-summary").first).to_be_attached()
    page.wait_for_load_state("load")
    browser_log.take_errors()  # a refused form may answer 400, which the browser logs
    where = f"form {name} ({case.what}) with errors as {case.role}, {lang}, {width}"
    findings = check_page(site, page, where, case.role, lang, width, f"form-{name}-{lang}")
    findings.problems.extend(page.evaluate(FORM_ERRORS_SCRIPT, {"fields": case.fields, "summarized": case.summarized}))
    findings.check()


# --- The second engine: the Nu HTML Checker over everything served ---------------------------------

def test_served_html_is_valid(site: World) -> None:
    """Every page of the walk, in both languages (and the error pages and refused forms the tests
    above kept), passes the W3C Nu HTML Checker: no error at all. Pages the walk did not visit in
    this run (a run narrowed with -k) are fetched here first, so the check always covers them all."""
    for endpoint, variant in page_ids():
        for lang in LANGUAGES:
            label = f"{endpoint}{'-' + variant if variant else ''}-{lang}"
            if label in site.served:
                continue
            role, path = role_for(endpoint, variant), site.url(endpoint, variant)
            if endpoint in OWN_LANGUAGE:
                site.open_document(role, path, "desktop")
            else:
                site.open(role, path, lang, "desktop")
            site.served[label] = site.last_html
    # Each page a person can open has a title of its own (editing a call is not "Call #N", as viewing
    # it is): two pages (endpoints) never share one for the same role in a language. The same request
    # seen by its requester and by staff may share one: nobody opens both.
    by_title: dict[tuple[str, str, str], set[str]] = {}
    for label, html in site.served.items():
        if label.startswith(("error-", "form-")):
            continue
        rest, lang = label.rsplit("-", 1)
        endpoint, _, variant = rest.partition("-")
        title = re.search(r"<title>(.*?)</title>", html, re.S)
        key = (role_for(endpoint, variant), lang, title.group(1).strip() if title else "")
        by_title.setdefault(key, set()).add(endpoint)
    shared = {key: sorted(endpoints) for key, endpoints in by_title.items() if len(endpoints) > 1}
    assert not shared, "pages that share a title: " + "; ".join(
        f"{role} {lang} {title!r}: {', '.join(names)}" for (role, lang, title), names in sorted(shared.items()))
    errors = nu_errors(site.served)
    if errors:
        pages = sorted({error.page for error in errors})
        pytest.fail(f"the Nu HTML Checker found {len(errors)} error(s) on {len(pages)} of {len(site.served)} "
                    "pages:\n  " + "\n  ".join(str(error) for error in errors), pytrace=False)
