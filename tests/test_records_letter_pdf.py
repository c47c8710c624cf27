"""Letters as PDF files and the facility's details on every letter.

- The PDF of a stored letter (staff and the requester): ``%PDF``, the reference in it, served as an
  attachment with a safe file name under the letter's policy and ``no-store``, audited like the page.
- Made without fetching anything: the fetcher refuses every URL, and nothing is opened.
- Without WeasyPrint's libraries: the PDF link answers a clear page, HTML letters still work, and
  ``flask security-check`` and ``/readyz`` say so.
- Every letter carries the return address, the recipient's postal address and the privacy contact,
  and no on-screen wording, in English and Spanish; an inspection letter says where and how.
- The letter settings are checked at start-up and listed by ``security-check`` when missing.
"""

from __future__ import annotations

import json
import re
import subprocess  # nosec B404
import sys
import urllib.request
import zlib
from types import SimpleNamespace

import pytest
from sqlalchemy import select

import config
from intake import RefusedToStart
from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.records import letter_pdf, letters
from intake.records.models import FileKind, NoRecordsReason, RecordsRequest, RequestDocument, RequestStatus
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, LICENCE, ROOT, login, make_app, need_service


@pytest.fixture(autouse=True)
def _weasyprint() -> None:
    """Skipped locally, failed in CI, where WeasyPrint's libraries are missing (.ci/run installs them)."""
    if not letter_pdf.available():
        need_service("WeasyPrint", str(letter_pdf.unavailable_reason()))


def _load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def _letter(app, ref: str, kind: str = "acknowledgment") -> tuple[str, str, str]:
    """(uid, human reference, stored html) of the request's letter of that kind."""
    with app.app_context():
        req = _load(ref)
        for doc in db.session.execute(select(RequestDocument).where(
                RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.LETTER)).scalars():
            if letters.kind_of(doc) == kind:
                from intake.records.documents import content_of
                return doc.uid, req.human_ref, content_of(doc).decode("utf-8")
    raise AssertionError(f"no {kind} letter")


def text_of(html: str) -> str:
    body = html.split("<body>", 1)[-1]
    return " ".join(re.sub(r"<[^>]+>", " ", body).replace("&#39;", "'").replace("&amp;", "&").split())


def pdf_mentions(pdf: bytes, text: str) -> bool:
    """Whether ``text`` is in the PDF's metadata (the title: the letter's title and reference), which
    WeasyPrint writes as UTF-16 hex inside compressed object streams (the page text itself is glyph
    codes). Every stream is inflated; pypdf is not a dependency, so nothing more is parsed."""
    parts = [pdf]
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        # A decompressor object, not zlib.decompress: a stream whose last byte happens to be "\r" loses
        # it to the pattern above, and the object still gives back everything before it.
        try:
            parts.append(zlib.decompressobj().decompress(stream))
        except zlib.error:
            continue
    whole = b"\n".join(parts)
    return text.encode("utf-16-be").hex().encode() in whole.lower() or text.encode() in whole


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "other": make_user(Role.REQUESTER),
            "admin": make_user(FULL_ADMIN, licence=LICENCE)}


# --- The PDF ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["requester", "staff"])
def test_the_letter_as_pdf_for_the_requester_and_staff(app, client, people, make_request, who):
    ref = make_request(people["requester"])
    uid, human_ref, _html = _letter(app, ref)
    user = people["requester"] if who == "requester" else people["admin"]
    assert login(client, user.email).status_code == 302
    base = f"/my/requests/{ref}" if who == "requester" else f"/queue/requests/{ref}"
    page = client.get(base).get_data(as_text=True)
    assert f'href="{base}/letters/{uid}/pdf"' in page  # the PDF link next to the letter's
    response = client.get(f"{base}/letters/{uid}/pdf")
    assert response.status_code == 200
    pdf = response.get_data()
    assert pdf.startswith(b"%PDF-") and pdf_mentions(pdf, human_ref)
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{human_ref}-acknowledgment.pdf"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    with app.app_context():
        audit = db.session.execute(select(AuditEvent).where(AuditEvent.action == "request.letter_viewed")).scalar_one()
        details = json.loads(audit.details)
        assert details == {"document_id": details["document_id"], "by": who, "format": "pdf"}
        assert audit.actor_id == user.id and "Jordan" not in audit.details


def test_the_pdf_of_someone_elses_letter_or_a_guess_is_404(app, client, people, make_request):
    mine = make_request(people["requester"])
    theirs = make_request(people["other"])
    their_uid, _ref, _html = _letter(app, theirs)
    assert login(client, people["requester"].email).status_code == 302
    for path in (f"/my/requests/{theirs}/letters/{their_uid}/pdf", f"/my/requests/{mine}/letters/{their_uid}/pdf",
                 f"/my/requests/{mine}/letters/AAAAAAAAAAAAAAAAAAAAAA/pdf", f"/my/requests/{mine}/letters/x/pdf",
                 f"/my/requests/{mine}/letters/{'x' * 300}/pdf"):
        assert client.get(path).status_code == 404, path
    with app.app_context():
        assert db.session.execute(select(AuditEvent).where(
            AuditEvent.action == "request.letter_viewed")).first() is None


def test_the_pdf_keeps_the_language_the_letter_was_sent_in(app, client, people, make_request):
    with app.app_context():
        db.session.get(User, people["requester"].id).locale = "es"
        db.session.commit()
    ref = make_request(people["requester"])
    uid, human_ref, html = _letter(app, ref)
    assert '<html lang="es">' in html and "Contacto de privacidad" in html
    with app.app_context():
        db.session.get(User, people["requester"].id).locale = "en"  # the reader changes language later
        db.session.commit()
    assert login(client, people["requester"].email).status_code == 302
    pdf = client.get(f"/my/requests/{ref}/letters/{uid}/pdf").get_data()
    assert pdf_mentions(pdf, "Hemos recibido su solicitud") or pdf_mentions(pdf, human_ref)
    assert pdf_mentions(pdf, human_ref)


def test_the_pdf_filename_is_safe():
    assert letter_pdf.pdf_filename("acknowledgment", "RR-2026-MZ6R") == "RR-2026-MZ6R-acknowledgment.pdf"
    assert letter_pdf.pdf_filename(None, "RR-2026-MZ6R") == "RR-2026-MZ6R-letter.pdf"
    hostile = letter_pdf.pdf_filename('x"; filename=evil.exe\r\n../', 'RR/../"\\')
    assert re.fullmatch(r"[A-Za-z0-9-]+\.pdf", hostile), hostile


# --- Nothing fetched ----------------------------------------------------------------------------

HOSTILE_HTML = """<!doctype html><html><head><title>RR-2026-TEST</title>
<link rel="stylesheet" href="https://example.org/a.css">
<style>@import url("http://169.254.169.254/latest/meta-data/"); body { background: url(file:///etc/passwd); }
@font-face { font-family: X; src: url(https://example.org/x.woff2); } p { font-family: X; }</style></head>
<body><p>RR-2026-TEST</p><img src="http://example.org/pixel.png"><img src="data:image/png;base64,iVBORw0KGgo=">
<iframe src="file:///etc/shadow"></iframe><object data="ftp://example.org/x"></object></body></html>"""


def test_the_pdf_fetches_no_url(monkeypatch):
    opened: list[str] = []
    real_open = urllib.request.OpenerDirector.open

    def spy(self, url, *args, **kwargs):
        opened.append(str(getattr(url, "full_url", url)))
        return real_open(self, url, *args, **kwargs)

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", spy)
    fetcher = letter_pdf.refusing_fetcher()
    pdf = letter_pdf.render_pdf(HOSTILE_HTML, fetcher=fetcher)
    assert pdf.startswith(b"%PDF-") and pdf_mentions(pdf, "RR-2026-TEST")
    assert opened == []  # no opener ran: not for http, https, file, data or ftp
    refused = " ".join(fetcher.refused)
    for url in ("https://example.org/a.css", "169.254.169.254", "file:///etc/passwd", "http://example.org/pixel.png",
                "https://example.org/x.woff2"):
        assert url in refused, url
    assert b"/etc/passwd" not in pdf and b"root:" not in pdf


def test_the_fetcher_refuses_every_scheme():
    fetcher = letter_pdf.refusing_fetcher()
    for url in ("http://example.org/", "https://example.org/", "file:///etc/passwd", "data:text/css,p{}",
                "ftp://example.org/x"):
        with pytest.raises(letter_pdf.FetchRefused):
            fetcher(url)
    assert len(fetcher.refused) == 5


# --- Without WeasyPrint ------------------------------------------------------------------------

def test_without_weasyprint_the_pdf_link_explains_and_html_letters_work(app, client, people, make_request,
                                                                          monkeypatch):
    ref = make_request(people["requester"])
    uid, _human_ref, _html = _letter(app, ref)
    monkeypatch.setattr(letter_pdf, "_load", lambda: (None, "OSError: cannot load library 'libpango-1.0-0'"))
    monkeypatch.setattr(letter_pdf, "_installed_problem", lambda: "OSError: cannot find the pango-1.0 libraries")
    assert login(client, people["requester"].email).status_code == 302
    response = client.get(f"/my/requests/{ref}/letters/{uid}/pdf")
    assert response.status_code == 503 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "The PDF file cannot be made right now" in page
    assert f'href="/my/requests/{ref}/letters/{uid}"' in page  # the printable page instead
    assert "sandbox" not in response.headers["Content-Security-Policy"]  # an app page, not a letter
    assert client.get(f"/my/requests/{ref}/letters/{uid}").status_code == 200
    result = app.test_cli_runner().invoke(args=["security-check"])
    assert "PDF letters cannot be made" in result.output and "libpango-1.0-0" in result.output
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["letter_pdf"] == "unavailable"
    with pytest.raises(letter_pdf.PdfUnavailable):
        letter_pdf.render_pdf("<p>x</p>")


def test_readyz_asks_without_loading_weasyprint_into_the_worker(tmp_path):
    """Every worker answers /readyz; importing WeasyPrint there cost each one 37 MB and half a second.
    A fresh interpreter answers it and must still not hold WeasyPrint, and must say what loading it says."""
    script = (
        "import json, sys\n"
        "from tests.conftest import make_app\n"
        "from intake.records import letter_pdf\n"
        f"app = make_app('sqlite:///{tmp_path / 'ready.sqlite3'}', __import__('pathlib').Path('{tmp_path}'))\n"
        "said = app.test_client().get('/readyz').get_json()['checks']['letter_pdf']\n"
        "loaded = 'weasyprint' in sys.modules\n"
        "print(json.dumps([said, loaded, letter_pdf.unavailable_reason() is None]))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,  # nosec B603
                          timeout=120, check=True)
    said, loaded, loads = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded is False
    assert said == ("available" if loads else "unavailable")


def test_a_missing_system_library_is_named_without_loading_weasyprint(monkeypatch):
    monkeypatch.setattr(letter_pdf.ctypes.util, "find_library", lambda name: None if name == "pango-1.0" else name)
    letter_pdf._installed_problem.cache_clear()
    try:
        assert letter_pdf._installed_problem() == "OSError: cannot find the pango-1.0 libraries"
    finally:
        letter_pdf._installed_problem.cache_clear()


# --- What every letter carries ---------------------------------------------------------------------

def test_every_letter_carries_the_return_address_the_recipients_address_and_the_privacy_contact(
        app, people, make_request):
    ref = make_request(people["requester"], delivery="mail", mail_address="1 Main St\nOjai, CA 93023")
    _uid, _ref, html = _letter(app, ref)
    words = text_of(html)
    for line in config.setting_lines(app.config["FACILITY_RETURN_ADDRESS"]):
        assert line in words
    assert '<address id="recipient-address">' in html and "1 Main St<br>Ojai, CA 93023" in html
    privacy = re.search(r'<div class="privacy" id="privacy-contact">.*?</div>', html, re.S).group(0)
    for name in ("PRIVACY_CONTACT_NAME", "PRIVACY_CONTACT_TITLE", "PRIVACY_CONTACT_PHONE", "PRIVACY_CONTACT_EMAIL"):
        assert app.config[name] in privacy, name


def test_the_privacy_contacts_email_falls_back_to_the_privacy_officers(app, people, make_request):
    app.config.update(PRIVACY_CONTACT_EMAIL=None, PRIVACY_OFFICER_EMAIL="officer@intake.invalid",
                      PRIVACY_CONTACT_TITLE="Privacy Officer", PRIVACY_CONTACT_NAME="Privacy Officer")
    _uid, _ref, html = _letter(app, make_request(people["requester"]))
    privacy = text_of(html.split('id="privacy-contact"', 1)[1])
    assert "officer@intake.invalid" in privacy
    assert "Privacy Officer, Privacy Officer" not in privacy  # a role title given as the name: said once


def test_a_letter_without_the_settings_still_renders(app, people, make_request):
    for name, _longest, _lines in config.LETTER_TEXT_SETTINGS:
        app.config[name] = None
    app.config["PRIVACY_OFFICER_EMAIL"] = None
    _uid, _ref, html = _letter(app, make_request(people["requester"], request_type="inspection"))
    assert 'id="return-address"' not in html and 'id="privacy-contact"' not in html
    assert "We will arrange the inspection with you by appointment" in text_of(html)


def test_an_inspection_letter_says_where_and_how(app, people, make_request):
    _uid, _ref, html = _letter(app, make_request(people["requester"], request_type="inspection"))
    section = text_of(html.split('id="inspection"', 1)[1].split("</div>", 1)[0] + "</div>")
    for line in config.setting_lines(app.config["INSPECTION_ADDRESS"]):
        assert line in section
    assert app.config["INSPECTION_INSTRUCTIONS"] in section
    assert "building no longer exists" in section
    # A copy (not an inspection) says nothing about inspecting.
    _uid, _ref, copy = _letter(app, make_request(people["requester"]))
    assert 'id="inspection"' not in copy


def test_an_inspection_letter_without_the_settings_offers_an_appointment_or_an_electronic_copy(
        app, people, make_request):
    app.config.update(INSPECTION_ADDRESS=None, INSPECTION_INSTRUCTIONS=None)
    _uid, _ref, html = _letter(app, make_request(people["requester"], request_type="inspection"))
    section = text_of(html.split('id="inspection"', 1)[1].split("</div>", 1)[0] + "</div>")
    assert "by appointment" in section and "secure electronic copy" in section
    assert "privacy contact named at the end of this letter" in section
    result = app.test_cli_runner().invoke(args=["security-check"])
    assert "INSPECTION_ADDRESS or INSPECTION_INSTRUCTIONS is not set" in result.output


# --- No on-screen wording, in either language ------------------------------------------------------

# Words that only make sense on a screen: a letter is printed and posted.
ON_SCREEN = re.compile(r"\b(button|buttons|click|clicking|tap|screen|this page|botón|botones|clic|pulse|pantalla|"
                       r"esta página)\b", re.I)


def _every_letter(app, req: RecordsRequest) -> list[tuple[str, str]]:
    """(label, html) of every kind of letter for ``req``, with the facts each needs filled in."""
    disclosure = SimpleNamespace(recipient_name="Dr. Rivera", recipient_address="5 Clinic Way\nVentura, CA",
                                 description="Discharge summary", channel="mail")
    rendered = []
    variants = [
        ("acknowledgment", {}, {}), ("extension", {"reason": "Records are off-site"}, {}),
        ("information_request", {"message": "Please send a copy of your ID."}, {}),
        ("denial", {}, {"decision_reason": "endangerment", "status": RequestStatus.DENIED}),
        ("denial", {}, {"decision_reason": "psychotherapy_notes", "status": RequestStatus.DENIED}),
        ("no_records", {}, {"no_records_reason": NoRecordsReason.NOT_IN_INDEX}),
        ("no_records", {}, {"no_records_reason": NoRecordsReason.DESTROYED}),
        ("fulfilment", {}, {"status": RequestStatus.FULFILLED}),
        ("fulfilment", {}, {"status": RequestStatus.PARTIALLY_FULFILLED, "decision_reason": "some_records_lost"}),
        ("disclosure", {"disclosure": disclosure}, {}),
    ]
    for kind, context, fields in variants:
        saved = {name: getattr(req, name) for name in fields}
        for name, value in fields.items():
            setattr(req, name, value)
        rendered.append((f"{kind} {fields}", letters.render_letter(kind, req, **context)))
        for name, value in saved.items():
            setattr(req, name, value)
    return rendered


@pytest.mark.parametrize("language", ["en", "es"])
def test_no_letter_speaks_of_buttons_clicks_or_screens(app, people, make_request, language):
    """Every kind of letter, with an account and without, for a copy and an inspection, in both
    languages: nothing a printed letter cannot do ("use the button", "click")."""
    with app.app_context():
        db.session.get(User, people["requester"].id).locale = language
        db.session.commit()
    refs = [make_request(people["requester"]), make_request(people["requester"], request_type="inspection"),
            make_request(people["requester"], request_type="third_party", delivery="mail",
                         recipient_name="Dr. Rivera", recipient_address="5 Clinic Way", purpose="Care")]
    count = 0
    for ref in refs:
        with app.test_request_context():
            req = _load(ref)
            for owner in (req.owner_id, None):  # with an account; on paper, in the language staff chose
                req.owner_id, req.requester_language, req.recipient_language = owner, language, language
                for label, html in _every_letter(app, req):
                    assert f'<html lang="{language}">' in html, label
                    words = text_of(html)
                    found = ON_SCREEN.findall(words)
                    assert not found, f"{label} ({language}): {found}"
                    joined = re.findall(r"\w+[a-z]\.[A-Z¿]\w*", words)  # "page.The": a lost space between sentences
                    assert not joined, f"{label} ({language}): {joined}"
                    count += 1
            db.session.rollback()
    assert count == 60


def test_a_requester_without_an_account_is_not_sent_to_a_web_page(app, people, make_request):
    """A request entered from paper: the acknowledgment and the extension say "we will write" and
    "write or call", never "your request's page"."""
    ref = make_request(people["requester"])
    with app.test_request_context():
        req = _load(ref)
        req.owner_id, req.requester_language = None, "en"
        for kind, context in (("acknowledgment", {}), ("extension", {"reason": "Off-site"}),
                              ("information_request", {"message": "Your ID, please."})):
            words = text_of(letters.render_letter(kind, req, **context))
            assert "request's page" not in words and "portal" not in words, kind
        db.session.rollback()


# --- Settings --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "name"), [
    ({"PRIVACY_CONTACT_PHONE": "call us"}, "PRIVACY_CONTACT_PHONE"),
    ({"PRIVACY_CONTACT_PHONE": "555"}, "PRIVACY_CONTACT_PHONE"),
    ({"PRIVACY_CONTACT_EMAIL": "privacy at example"}, "PRIVACY_CONTACT_EMAIL"),
    ({"PRIVACY_CONTACT_EMAIL": "a@b.org, c@d.org"}, "PRIVACY_CONTACT_EMAIL"),
    ({"PRIVACY_CONTACT_NAME": "Line one\nLine two"}, "PRIVACY_CONTACT_NAME"),
    ({"PRIVACY_CONTACT_TITLE": "x" * 121}, "PRIVACY_CONTACT_TITLE"),
    ({"FACILITY_RETURN_ADDRESS": "\n".join(["line"] * 7)}, "FACILITY_RETURN_ADDRESS"),
    ({"INSPECTION_ADDRESS": "Suite 5\x00"}, "INSPECTION_ADDRESS"),
    ({"INSPECTION_INSTRUCTIONS": "x" * 601}, "INSPECTION_INSTRUCTIONS"),
    ({"INSPECTION_INSTRUCTIONS": 12}, "INSPECTION_INSTRUCTIONS"),
])
def test_bad_letter_settings_refuse_to_start(tmp_path, overrides, name):
    assert any(name in problem for problem in config.letter_setting_problems(overrides))
    with pytest.raises(RefusedToStart, match=name):
        make_app(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path / "instance", **overrides)


def test_good_letter_settings_pass():
    good = {"FACILITY_RETURN_ADDRESS": "Records custodian\\nP.O. Box 1\\nMalibu, CA 90265",
            "PRIVACY_CONTACT_NAME": "Privacy Officer", "PRIVACY_CONTACT_PHONE": "+1 (805) 555-0101 ext. 12",
            "PRIVACY_CONTACT_EMAIL": "privacy@example.org", "INSPECTION_ADDRESS": "", "INSPECTION_INSTRUCTIONS": None}
    assert config.letter_setting_problems(good) == []
    assert config.setting_lines(good["FACILITY_RETURN_ADDRESS"]) == ["Records custodian", "P.O. Box 1",
                                                                    "Malibu, CA 90265"]


def test_letter_settings_come_from_the_environment():
    values: dict = {}
    config.load_environment(values, {"FACILITY_RETURN_ADDRESS": "P.O. Box 1\\nMalibu, CA", "PRIVACY_CONTACT_NAME": "A",
                                     "PRIVACY_CONTACT_TITLE": "B", "PRIVACY_CONTACT_PHONE": "805-555-0101",
                                     "PRIVACY_CONTACT_EMAIL": "p@example.org", "INSPECTION_ADDRESS": "Suite 5",
                                     "INSPECTION_INSTRUCTIONS": "Call first"})
    assert values["FACILITY_RETURN_ADDRESS"] == "P.O. Box 1\\nMalibu, CA" and values["INSPECTION_ADDRESS"] == "Suite 5"
    assert len(values) == 7


def test_security_check_lists_each_missing_letter_setting():
    assert config.letter_setting_warnings({name: getattr(config.TestConfig, name)
                                           for name, _l, _n in config.LETTER_TEXT_SETTINGS}) == []
    warnings = " ".join(config.letter_setting_warnings({}))
    for name in ("FACILITY_RETURN_ADDRESS", "PRIVACY_CONTACT_NAME", "PRIVACY_CONTACT_PHONE", "PRIVACY_CONTACT_EMAIL",
                 "INSPECTION_ADDRESS"):
        assert name in warnings
    assert "PRIVACY_CONTACT_EMAIL" not in " ".join(config.letter_setting_warnings(
        {"PRIVACY_OFFICER_EMAIL": "officer@example.org"}))


def test_production_defaults_name_no_one():
    """The demo values are for development and tests; production names its own (no invented person)."""
    for name, _longest, _lines in config.LETTER_TEXT_SETTINGS:
        assert getattr(config.ProductionConfig, name) is None
    assert config.DevelopmentConfig.PRIVACY_CONTACT_NAME == "Privacy Officer"
    assert "555-01" in config.DevelopmentConfig.PRIVACY_CONTACT_PHONE
    assert config.DevelopmentConfig.PRIVACY_CONTACT_EMAIL.endswith(".invalid")
