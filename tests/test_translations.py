"""English and Spanish (intake/i18n.py, intake/translations/es).

- The catalogue: every string marked in a requester-facing file has its Spanish, not fuzzy, with the
  same placeholders; the strings are extracted from the source here, so a new string fails this
  file until it is translated.
- Choosing: the ``lang`` cookie, a signed-in person's stored choice, Accept-Language, English; the
  switch on every page (a plain form), its cookie, and its ``next`` (a path on this site, only).
- Writing later: e-mails and letters follow the recipient's language, also outside any request.
- Dates and money in the reader's language.
- The /records guide in plain words: its facts match the settings, and its English stays at about an
  eighth-grade reading level (Flesch-Kincaid).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
import time_machine
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask_babel import force_locale, format_date
from sqlalchemy import select

from intake.auth.account_services import send_reset_links
from intake.extensions import db
from intake.i18n import COOKIE_MAX_AGE, format_money, local_path
from intake.notify.models import OutboxMessage
from intake.records import common, fees, services
from intake.records.documents import content_of
from intake.records.models import EventKind, FileKind, RecordsRequest, RequestDocument, RequestEvent
from intake.records.timeline import describe
from intake.records.workflow import Email
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, PASSWORD, csrf_token, login

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "intake" / "translations" / "es" / "LC_MESSAGES" / "messages.po"
COMPILED = CATALOGUE.with_suffix(".mo")

# The files whose strings a former patient (or someone acting for one) can read: the public pages,
# signing in, registering and resetting a password, the account page, the portal, consents, letters,
# error pages, e-mails, and the forms and messages of the modules behind them. Staff-only modules
# (the queue, calls, admin) may stay English.
REQUESTER_FACING = (
    "templates/base.html", "templates/errors/", "templates/_macros/", "templates/public/", "templates/auth/",
    "templates/account/", "templates/records/portal/", "templates/records/consent/", "templates/records/letters/",
    "templates/records/_fee_table.html", "templates/email/",
    "intake/i18n.py", "intake/errors.py", "intake/forms.py", "intake/public/", "intake/auth/", "intake/users/",
    "intake/security/", "intake/notify/", "intake/admin/notices.py",
    "intake/records/portal_forms.py", "intake/records/consent_forms.py", "intake/records/document_forms.py",
    "intake/records/labels.py", "intake/records/letters.py", "intake/records/fees.py", "intake/records/deadlines.py",
    "intake/records/clocks.py", "intake/records/common.py", "intake/records/consents.py",
    "intake/records/documents.py", "intake/records/services.py", "intake/records/submission.py",
    "intake/records/workflow.py", "intake/records/page/portal.py", "intake/records/page/consents.py",
    "intake/records/page/documents.py", "intake/records/page/fees.py", "intake/records/professionals.py",
    "intake/records/disclosures.py", "intake/records/page/professionals.py", "intake/records/professional_forms.py",
    # A third party's copy: the recipient's page, e-mail and cover letter (templates/records/letters/ above).
    "templates/records/recipient/", "intake/records/recipient.py", "intake/records/views_recipient.py",
    "intake/records/recipient_forms.py",
    "intake/records/timeline.py", "templates/records/_timeline.html",
)
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}  # as `make translations` (Makefile)
PLACEHOLDER = re.compile(r"%(?:\([A-Za-z_][A-Za-z0-9_]*\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")


def _id(message_id: str | tuple[str, ...] | list[str]) -> str | tuple[str, ...]:
    return message_id if isinstance(message_id, str) else tuple(message_id)


@pytest.fixture(scope="module")
def used_strings() -> dict[str | tuple[str, ...], set[str]]:
    """Every marked string of the requester-facing files, extracted from the source as `make
    translations` does (babel.cfg, the same keywords), with the files that use it."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str | tuple[str, ...], set[str]] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(ROOT, method_map, options_map,
                                                                        keywords=KEYWORDS):
        path = filename.replace("\\", "/")
        if path.startswith(REQUESTER_FACING):
            key = _id(message)
            if isinstance(key, tuple):  # ngettext: (singular, plural); the count is no message
                key = tuple(part for part in key if part)
            found.setdefault(key, set()).add(path)
    return found


@pytest.fixture(scope="module")
def spanish():
    with open(CATALOGUE, "rb") as po:
        return read_po(po, locale="es")


def placeholders(text: str) -> list[str]:
    return sorted(match for match in PLACEHOLDER.findall(text) if match != "%%")


def test_the_requester_facing_files_are_found(used_strings):
    """A guard for the guard: the extraction really reads those files (a wrong path would pass
    everything below by finding nothing)."""
    files = set().union(*used_strings.values())
    for expected in ("templates/public/records.html", "templates/base.html", "intake/records/letters.py",
                     "intake/records/common.py", "templates/records/portal/detail.html", "intake/auth/forms.py"):
        assert expected in files, expected
    assert len(used_strings) > 600
    assert "Requesting your medical records" in used_strings


def untranslated(used: dict, catalogue) -> list[str]:
    """What a reader of Spanish would see in English: strings absent from the catalogue, fuzzy
    (changed since they were translated) or without a translation (any plural form)."""
    problems = []
    for message_id, files in sorted(used.items(), key=lambda item: str(item[0])):
        entry = catalogue.get(message_id if isinstance(message_id, str) else message_id[0])
        where = ", ".join(sorted(files))
        if entry is None:
            problems.append(f"not in the catalogue ({where}): {message_id!r}")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy ({where}): {message_id!r}")
        translations = entry.string if isinstance(entry.string, tuple | list) else (entry.string,)
        if not all(translations):
            problems.append(f"no Spanish ({where}): {message_id!r}")
    return problems


def test_every_requester_facing_string_has_its_spanish(used_strings, spanish):
    problems = untranslated(used_strings, spanish)
    assert not problems, f"{len(problems)} strings need Spanish (make translations, then edit " \
                         f"{CATALOGUE.relative_to(ROOT)}):\n" + "\n".join(problems)


def test_placeholders_are_the_same_in_english_and_spanish(spanish):
    problems = []
    for entry in spanish:
        if not entry.id or not entry.string:
            continue
        ids = (entry.id,) if isinstance(entry.id, str) else tuple(entry.id)
        strings = (entry.string,) if isinstance(entry.string, str) else tuple(entry.string)
        wanted = placeholders(ids[-1])
        for text in strings:
            if text and placeholders(text) != wanted:
                problems.append(f"{ids[0]!r}: {placeholders(text)} instead of {wanted}")
    # Babel's own checks (python-format and plural forms), as `pybabel compile` runs them.
    for entry, errors in spanish.check():
        problems.extend(f"{entry.id!r}: {error}" for error in errors)
    assert not problems, "\n".join(problems)


def test_the_catalogue_compiles_and_the_compiled_copy_is_current(spanish):
    write_mo(BytesIO(), spanish)  # raises on a catalogue that cannot compile
    assert COMPILED.exists(), "intake/translations/es/LC_MESSAGES/messages.mo is missing: make test compiles it"
    assert COMPILED.stat().st_mtime >= CATALOGUE.stat().st_mtime, \
        "messages.mo is older than messages.po: make test (or make run) compiles it again"


def test_a_missing_empty_or_fuzzy_translation_is_caught(used_strings):
    """The check above can fail: each way a string can be left in English is reported."""
    with open(CATALOGUE, "rb") as po:
        catalogue = read_po(po, locale="es")
    catalogue.delete("Requesting your medical records")
    catalogue["What it costs"].string = ""
    catalogue["If we say no"].flags.add("fuzzy")
    problems = "\n".join(untranslated(used_strings, catalogue))
    assert "not in the catalogue (templates/public/records.html): 'Requesting your medical records'" in problems
    assert "no Spanish (templates/public/records.html): 'What it costs'" in problems
    assert "fuzzy (templates/public/records.html): 'If we say no'" in problems


# --- Choosing the language --------------------------------------------------------------------

def page(client, path: str = "/", **headers) -> str:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def test_english_by_default(client):
    text = page(client)
    assert '<html lang="en">' in text and "We are not accepting patients" in text


def test_the_browser_language_picks_spanish(client):
    text = page(client, "/", **{"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in text and "No estamos aceptando pacientes" in text
    assert "We are not accepting patients" not in text


def test_the_cookie_beats_the_browser(client):
    client.set_cookie("lang", "en")
    assert '<html lang="en">' in page(client, "/", **{"Accept-Language": "es"})
    client.set_cookie("lang", "es")
    text = page(client, "/records", **{"Accept-Language": "en-US"})
    assert '<html lang="es">' in text and "Cómo pedir sus expedientes médicos" in text


@pytest.mark.parametrize("value", ["fr", "ES", "es;x", "", "e" * 300])
def test_a_cookie_naming_no_language_of_ours_is_ignored(client, value):
    client.set_cookie("lang", value)
    assert '<html lang="es">' in page(client, "/", **{"Accept-Language": "es"})
    assert '<html lang="en">' in page(client, "/", **{"Accept-Language": "de"})


def switch(client, lang: str | None = "es", next_path: str | None = "/records", token: bool = True):
    data = {}
    if token:
        data["csrf_token"] = csrf_token(client, "/")
    if lang is not None:
        data["lang"] = lang
    if next_path is not None:
        data["next"] = next_path
    return client.post("/language", data=data)


def lang_cookie(response) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("lang="):
            return header
    return None


def test_the_switch_remembers_the_choice_for_a_year_and_goes_back(client):
    response = switch(client, "es", "/records?x=1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/records?x=1"
    cookie = lang_cookie(response)
    assert cookie is not None and cookie.startswith("lang=es;")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= attributes and "secure" not in attributes
    assert f"Max-Age={COOKIE_MAX_AGE}" in cookie and COOKIE_MAX_AGE == 365 * 24 * 3600
    assert "SameSite=Lax" in cookie and "Path=/" in cookie
    text = page(client, "/records")
    assert '<html lang="es">' in text and "Qué necesita" in text
    back = switch(client, "en", "/")
    assert lang_cookie(back).startswith("lang=en;")
    assert '<html lang="en">' in page(client, "/")


def test_the_cookie_is_secure_where_the_session_cookie_is(app, client):
    app.config["SESSION_COOKIE_SECURE"] = True  # as in production
    cookie = lang_cookie(switch(client, "es", "/"))
    assert "Secure" in cookie


HOSTILE_NEXT = [
    "//evil.example", "//evil.example/records", "https://evil.example", "http://evil.example/", "javascript:alert(1)",
    "JaVaScRiPt:alert(1)", "/\\evil.example", "\\\\evil.example", "/records\r\nSet-Cookie: x=1", "/\tjavascript",
    "evil.example", "data:text/html,<script>alert(1)</script>", "/" + "a" * 5000, "", "https:/evil.example",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT, ids=lambda value: repr(value[:40]))
def test_the_switch_goes_only_to_a_path_of_this_site(client, target):
    response = switch(client, "es", target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert lang_cookie(response).startswith("lang=es;")  # the choice still counts


def test_local_path_accepts_paths_and_nothing_else():
    assert local_path("/my/requests/AbC?tab=1") == "/my/requests/AbC?tab=1"
    assert local_path("/") == "/"
    for value in HOSTILE_NEXT + [None, 42, ["/"]]:
        assert local_path(value) is None, value


def test_a_missing_next_goes_home(client):
    response = switch(client, "es", None)
    assert response.status_code == 303 and response.headers["Location"] == "/"


@pytest.mark.parametrize("lang", ["fr", "", "EN", "es-ES", "<script>", None])
def test_an_unknown_language_is_refused_with_a_page_and_no_cookie(client, lang):
    response = switch(client, lang, "/records")
    assert response.status_code == 400
    assert lang_cookie(response) is None
    assert "Something in that request was not right" in response.get_data(as_text=True)


def test_the_switch_needs_the_form_token_and_a_post(client):
    response = switch(client, "es", "/", token=False)
    assert response.status_code == 400 and lang_cookie(response) is None
    assert client.get("/language").status_code == 405


def switch_form(text: str) -> str:
    match = re.search(r'<form method="post" action="/language"[^>]*>(.*?)</form>', text, re.S)
    assert match, "no language switch on the page"
    return match.group(1)


@pytest.mark.parametrize("path", ["/", "/records", "/login", "/register", "/reset", "/records?a=1&b=%C3%A9"])
def test_every_page_has_the_switch_and_it_returns_to_that_page(client, path):
    form = switch_form(page(client, path))
    assert 'name="csrf_token"' in form
    assert f'<input type="hidden" name="next" value="{html.escape(path)}">' in form
    assert re.search(r'<button type="submit" name="lang" value="es" lang="es"[^>]*>Español</button>', form)
    spanish = switch_form(page(client, path, **{"Accept-Language": "es"}))
    assert re.search(r'<button type="submit" name="lang" value="en" lang="en"[^>]*>English</button>', spanish)


def test_the_error_pages_have_the_switch_too(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert 'value="/no-such-page"' in switch_form(response.get_data(as_text=True))
    spanish = client.get("/no-such-page", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="es">' in spanish and "Página no encontrada" in spanish


# --- A signed-in person's choice, and what is sent to them later --------------------------------

def stored_locale(app, user_id: int) -> str | None:
    with app.app_context():
        return db.session.get(User, user_id).locale


def test_a_signed_in_requester_s_choice_is_stored_and_followed_on_any_device(app, client, make_user):
    user = make_user(Role.REQUESTER)
    assert stored_locale(app, user.id) is None
    assert login(client, user.email).status_code == 302
    switch(client, "es", "/account")
    assert stored_locale(app, user.id) == "es"
    other_device = app.test_client()  # no cookie, a browser asking for English
    assert login(other_device, user.email).status_code == 302
    text = page(other_device, "/my/requests/", **{"Accept-Language": "en-US"})
    assert '<html lang="es">' in text and "Mis solicitudes de expedientes" in text


def test_signing_in_with_a_choice_made_before_stores_it(app, client, make_user):
    user = make_user(Role.REQUESTER)
    switch(client, "es", "/login")
    assert login(client, user.email).status_code == 302
    assert stored_locale(app, user.id) == "es"


def test_an_e_mail_queued_outside_any_request_is_in_the_recipient_s_language(app, client, make_user,
                                                                             make_request):
    user = make_user(Role.REQUESTER)
    reference = make_request(user)
    assert login(client, user.email).status_code == 302
    switch(client, "es", "/")
    with app.app_context():  # a CLI job: no request, no browser
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        common.notify_requester(req, None, Email.UPDATE)
        db.session.commit()
        message = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "records_update")
                                     .order_by(OutboxMessage.id.desc())).scalars().first()
        human_ref = req.human_ref
    assert message.subject == f"Hay novedades en su solicitud de expedientes {human_ref}"
    assert "Inicie sesión para leerlas" in message.body and "Sign in" not in message.body
    # Someone who never chose gets English from the same job.
    other = make_user(Role.REQUESTER)
    other_ref = make_request(other)
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == other_ref)).scalar_one()
        common.notify_requester(req, None, Email.UPDATE)
        db.session.commit()
        message = db.session.execute(select(OutboxMessage).order_by(OutboxMessage.id.desc())).scalars().first()
    assert message.subject.startswith("Your records request")


def test_registering_in_spanish_keeps_spanish_for_the_account_and_its_e_mail(app, client):
    client.set_cookie("lang", "es")
    data = {"email": "requester-es@example.org", "password": PASSWORD, "confirm": PASSWORD,
            "csrf_token": csrf_token(client, "/register")}
    response = client.post("/register", data=data)
    assert response.status_code == 200 and "Revise su correo electrónico" in response.get_data(as_text=True)
    with app.app_context():
        user = db.session.execute(select(User).order_by(User.id.desc())).scalars().first()
        assert user.locale == "es"
        message = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "verify_email")).scalar_one()
    assert message.subject.startswith("Confirme su dirección de correo electrónico")
    assert "El enlace funciona durante 2 días" in message.body


def test_a_password_reset_asked_in_english_is_written_in_the_owner_s_language(app, client, make_user):
    user = make_user(Role.REQUESTER)
    with app.app_context():
        db.session.get(User, user.id).locale = "es"
        db.session.commit()
    data = {"email": user.email, "csrf_token": csrf_token(client, "/reset")}
    assert client.post("/reset", data=data, headers={"Accept-Language": "en"}).status_code == 200
    with app.app_context():
        send_reset_links()  # what `flask outbox send` does first, outside any request
        message = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "reset_password")).scalar_one()
    assert message.subject.startswith("Restablezca su contraseña")


NOON = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)  # noon in Los Angeles


def letters_of(app, reference: str) -> list[str]:
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        docs = db.session.execute(select(RequestDocument).where(
            RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.LETTER)
            .order_by(RequestDocument.id)).scalars()
        return [content_of(doc).decode("utf-8") for doc in docs]


def test_a_spanish_requester_s_letters_are_in_spanish_also_when_staff_cause_them(app, make_user, make_request):
    requester, admin = make_user(Role.REQUESTER), make_user(FULL_ADMIN)
    with app.app_context():
        db.session.get(User, requester.id).locale = "es"
        db.session.commit()
    with time_machine.travel(NOON, tick=False):
        reference = make_request(requester, now=NOON, request_type="accounting")
        with app.test_request_context("/queue/requests/", headers={"Accept-Language": "en-US"}):
            req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
            services.extend(req, db.session.get(User, admin.id), "Los expedientes están en un depósito externo.")
            db.session.commit()
            event = db.session.execute(select(RequestEvent).where(
                RequestEvent.request_id == req.id, RequestEvent.kind == EventKind.EXTENDED)).scalar_one()
            notice, staff_reads = describe(event, "es").text or "", describe(event, "en").text or ""
    acknowledgment, extension = letters_of(app, reference)
    assert '<html lang="es">' in acknowledgment and '<html lang="en">' not in acknowledgment
    assert "Recibimos su solicitud de expedientes el 15 de junio de 2026" in acknowledgment
    assert "(informe de divulgaciones)" in acknowledgment and "Estimado/a" in acknowledgment
    assert "La norma da 60 días naturales" in acknowledgment
    assert "We received" not in acknowledgment and "Dear" not in acknowledgment
    new_due = date(2026, 6, 15) + timedelta(days=60 + 30)  # the accounting's 60 days and one extension
    with app.test_request_context("/"), force_locale("es"):
        new_due_words, new_due_short = format_date(new_due, "long"), format_date(new_due)
    assert '<html lang="es">' in extension and "Necesitamos más tiempo" in extension
    assert new_due_words in extension and "de septiembre de 2026" in new_due_words
    # The timeline notice is worded when read: Spanish for the requester, though staff wrote it in
    # English, and English for staff (their pages are English).
    assert notice.startswith("Necesitamos más tiempo para completar su solicitud") and new_due_short in notice
    assert staff_reads.startswith("We need more time to complete your request.")
    assert "sept" in new_due_short


def test_an_english_requester_s_letters_stay_english(app, make_user, make_request):
    with time_machine.travel(NOON, tick=False):
        reference = make_request(make_user(Role.REQUESTER), now=NOON)
    [acknowledgment] = letters_of(app, reference)
    assert '<html lang="en">' in acknowledgment and "June 15, 2026" in acknowledgment


# --- Dates and money --------------------------------------------------------------------------

def test_dates_and_money_follow_the_language(app):
    with app.test_request_context("/"):
        with force_locale("en"):
            assert format_date(date(2026, 6, 15), "long") == "June 15, 2026"
            assert format_money(123_450) == "$1,234.50" and format_money(25) == "$0.25"
        with force_locale("es"):
            assert format_date(date(2026, 6, 15), "long") == "15 de junio de 2026"
            # US usage for readers in the US: a dollar sign and a decimal point, not "1.234,50 US$".
            assert format_money(123_450) == "$1,234.50" and format_money(650) == "$6.50"
            assert fees.money(650) == "$6.50"


def test_the_portal_shows_dates_money_and_labels_in_spanish(app, client, make_user, make_request):
    requester, admin = make_user(Role.REQUESTER), make_user(FULL_ADMIN)
    with time_machine.travel(NOON, tick=False):
        reference = make_request(requester, now=NOON)
        with app.test_request_context("/"):
            req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
            fees.give_estimate(req, db.session.get(User, admin.id), "electronic_flat", None, 0)
            db.session.commit()
    assert login(client, requester.email).status_code == 302
    client.set_cookie("lang", "es")
    text = page(client, f"/my/requests/{reference}")
    assert "Copia electrónica, tarifa fija" in text and "$6.50" in text
    assert "30 de junio de 2026" in text  # due: 15 calendar days
    assert "17 de mayo de 1980" in text  # the date of birth, stored as ISO text
    assert "Recibida" in text and "Nunca retenemos sus expedientes" in text
    client.set_cookie("lang", "en")
    text = page(client, f"/my/requests/{reference}")
    assert "June 30, 2026" in text and "May 17, 1980" in text and "Electronic copy, flat fee" in text


# --- No English left on the Spanish pages --------------------------------------------------------

def visible_text(markup: str) -> str:
    body = markup.split("<body", 1)[1]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.mark.parametrize("path", ["/", "/records", "/login", "/register", "/reset", "/no-such-page"])
def test_no_english_sentence_is_left_on_a_spanish_public_page(client, used_strings, path):
    response = client.get(path, headers={"Accept-Language": "es"})
    text = visible_text(response.get_data(as_text=True))
    leftovers = [message for message in used_strings
                 if isinstance(message, str) and len(message) > 24 and "%" not in message and message in text]
    assert not leftovers, leftovers


def test_no_english_sentence_is_left_on_the_spanish_portal(app, client, make_user, make_request, used_strings):
    requester = make_user(Role.REQUESTER)
    reference = make_request(requester, request_type="third_party", recipient_name="A clinic",
                             recipient_address="1 Main St", purpose="Continuing care")
    assert login(client, requester.email).status_code == 302
    client.set_cookie("lang", "es")
    for path in ("/my/requests/", "/my/requests/new", f"/my/requests/{reference}",
                 f"/my/requests/{reference}/consent", "/account", "/account/password"):
        text = visible_text(page(client, path))
        leftovers = [message for message in used_strings
                     if isinstance(message, str) and len(message) > 24 and "%" not in message and message in text]
        assert not leftovers, (path, leftovers)


# --- The helpline, one tap away ---------------------------------------------------------------

def test_the_helpline_is_a_tel_link_on_every_public_page_and_in_the_portal(app, client, make_user):
    tel = 'href="tel:' + re.sub(r"[^\d+]", "", app.config["HELPLINE_NUMBER"]) + '"'
    for lang in ("en", "es"):
        client.set_cookie("lang", lang)
        for path in ("/", "/records", "/login", "/register", "/reset"):
            assert page(client, path).count(tel) >= 2, (lang, path)  # the header and the footer
    assert login(client, make_user(Role.REQUESTER).email).status_code == 302
    for path in ("/my/requests/", "/my/requests/new", "/account"):
        assert page(client, path).count(tel) >= 2, path
    assert 'href="tel:911"' in page(client, "/") and 'href="tel:988"' in page(client, "/")


# --- The guide, in plain words ----------------------------------------------------------------

def syllables(word: str) -> int:
    """Syllables of an English word, by vowel groups (less a silent final e): the usual estimate."""
    letters = re.sub(r"[^a-z]", "", word.lower())
    if not letters:
        return 0
    count = len(re.findall(r"[aeiouy]+", letters))
    if letters.endswith("e") and not letters.endswith(("le", "ee", "ye")) and count > 1:
        count -= 1
    return max(1, count)


def flesch_kincaid_grade(text: str) -> float:
    """0.39 × words per sentence + 11.8 × syllables per word − 15.59 (Kincaid et al., 1975)."""
    sentences = [part for part in re.split(r"[.!?]+(?=\s|$)", text) if re.search(r"[A-Za-z]", part)]
    words = re.findall(r"[A-Za-z][A-Za-z'’]*", text)
    return 0.39 * len(words) / len(sentences) + 11.8 * sum(map(syllables, words)) / len(words) - 15.59


def guide_text(markup: str) -> str:
    """The guide's own words: from its first paragraph to the end of the page's main part, each list
    item, heading and paragraph ending a sentence."""
    part = markup.split('<div id="guide">', 1)[1].split("</main>", 1)[0]
    part = re.sub(r"</(li|p|h\d)>", ". ", part)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", part)).split())


def test_the_grade_formula_tells_plain_words_from_legal_ones():
    plain = "We tell you the cost first. We never hold back your records. Call us if you have a question."
    legal = ("Notwithstanding any other provision of law, a covered entity may deny an individual access to "
             "protected health information compiled in reasonable anticipation of, or for use in, a civil, "
             "criminal, or administrative action or proceeding, subject to applicable administrative review.")
    assert flesch_kincaid_grade(plain) < 4
    assert flesch_kincaid_grade(legal) > 15


def test_the_guide_reads_at_about_an_eighth_grade_level(client):
    text = guide_text(page(client, "/records"))
    assert len(text.split()) > 500  # the whole guide, not a fragment
    grade = flesch_kincaid_grade(text)
    assert grade <= 9, f"the /records guide reads at grade {grade:.1f}; use shorter sentences and words"


def test_the_guide_says_what_to_bring_how_identity_is_checked_how_long_and_what_it_costs(app, client):
    text = guide_text(page(client, "/records"))
    for fact in ("photo ID", "driver's license", "power of attorney", "date of birth", "list of former patients",
                 "We do not send or show any records until this check is done",
                 "The check does not stop the clock",
                 "A copy for you: within 15 days", "within 5 working days", "California holidays",
                 "we aim for 30 days", "within 60 days. We may need 30 more days, one time only",
                 "$0.25 a page", "$0.50 a page", "$6.50 in all", "appeal about public benefits", "U visa",
                 "VAWA petition", "never charge for the time it takes to find", "first list of disclosures",
                 "Send us a signed letter by mail or fax", "name your own licensed health professional",
                 "the next working day",
                 "We never hold back your records because a bill is unpaid",
                 "ask for a review", "licensed health professional", "hhs.gov/ocr/complaints",
                 "download them for 30 days, up to 5 times", "up to 10 MB"):
        assert fact in text, fact
    assert "for the work of finding" not in text  # never a search or retrieval fee


def test_the_guide_follows_the_settings(app, client):
    app.config.update(RECORDS_CLOCK_POLICY="hipaa", RECORDS_THIRD_PARTY_TARGET_DAYS=20, RECORDS_DOWNLOAD_DAYS=14,
                      RECORDS_FEE_ELECTRONIC_FLAT_CENTS=500)
    text = guide_text(page(client, "/records"))
    assert "or a visit to look at your records: within 30 days" in text
    assert "Federal law does not let us pause it" in text  # 45 CFR 164.524(b)(2): no tolling
    assert "within 15 days" not in text and "the clock stops" not in text
    assert "$5.00 in all" in text
    assert "we aim for 20 days" in text and "download them for 14 days" in text
    spanish = guide_text(page(client, "/records", **{"Accept-Language": "es"}))
    assert "$5.00 en total" in spanish and "20 días" in spanish


def test_staff_pages_are_english_and_say_so_whatever_the_reader_chose(app, client, login_as):
    """Issue 19: the staff's pages are written in English only; rendered in English and declared so,
    they never mix Spanish lines with English ones. The reader's own pages keep the choice."""
    login_as(FULL_ADMIN)
    client.set_cookie("lang", "es")
    for path in ("/calls/", "/queue/requests/", "/admin/", "/followups/", "/resources/"):
        page = client.get(path).get_data(as_text=True)
        assert '<html lang="en">' in page, path
        assert "Cerrar sesión" not in page and 'name="lang" value="en"' not in page, path  # no switch
    account = client.get("/account").get_data(as_text=True)
    assert '<html lang="es">' in account and 'name="lang" value="en"' in account
