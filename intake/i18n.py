"""The reader's language: chosen on any page, remembered, and followed by later e-mails and letters.

Which language a page is in, first match wins:

1. an explicit choice: the ``lang`` cookie the switch sets (``en`` or ``es``, one year), or, for a
   signed-in person without that cookie, the preference stored on their account;
2. the browser's ``Accept-Language``;
3. English (``BABEL_DEFAULT_LOCALE``).

The switch (``POST /language``, a plain form in the page header that works without JavaScript)
sets the cookie, stores the choice on a signed-in account, and sends the reader back to the page
they were on (a path on this site, nothing else). Signing in with the cookie set stores it on the
account too, so the account always holds the latest explicit choice.

E-mails and letters are written in their recipient's language, also from CLI jobs that run
outside any request: ``recipient_locale(user)`` wraps the code that composes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from babel import Locale
from babel.numbers import format_currency
from flask import Blueprint, Flask, abort, current_app, g, has_app_context, has_request_context, redirect, request
from flask_babel import force_locale, format_date, get_locale
from flask_login import current_user, user_logged_in
from werkzeug.wrappers import Response

from intake.extensions import db

bp = Blueprint("language", __name__)

COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 60 * 60  # one year
NEXT_MAX_LENGTH = 2_000  # a longer "next" is not a page of ours: the switch goes home instead
# How each language names itself on the switch.
NATIVE_NAMES = {"en": "English", "es": "Español"}
# Numbers and money in Spanish follow US usage ("$6.50", not "6,50 US$"): the readers live in the US.
NUMBER_LOCALES = {"es": "es_US"}


def languages() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


def supported(code: Any) -> str | None:
    """``code`` when it names a language of the site, else None (cookies and forms are untrusted)."""
    return code if isinstance(code, str) and code in languages() else None


def select_locale() -> str | None:
    """Flask-Babel's locale selector: the order in the module docstring. None means the default."""
    if not has_request_context():
        return None  # CLI and background work: the default, unless force_locale says otherwise
    if staff_only_page():
        return "en"  # the staff's pages are written in English only: one language per page, declared
    chosen = supported(request.cookies.get(COOKIE))
    if chosen:
        return chosen
    # Only a user already loaded for this request: never query here (error pages ask for the
    # locale too, also when the database is down).
    user = g.get("_login_user")
    stored = supported(getattr(user, "locale", None)) if getattr(user, "is_authenticated", False) else None
    if stored:
        return stored
    return request.accept_languages.best_match(languages())


# Pages only staff open, written in English only (docs/development.md, "Languages"): rendered in
# English whatever the reader chose, so that no page mixes two languages and <html lang> is true.
# The requester's pages (/my/...), the public pages and the account pages follow the reader's choice.
STAFF_ONLY_PREFIXES = ("/calls", "/queue/", "/admin", "/followups", "/resources")


def staff_only_page() -> bool:
    """A staff page read by staff. Anyone else there reads a refusal, in their own language."""
    if not has_request_context() or not request.path.startswith(STAFF_ONLY_PREFIXES):
        return False
    user = g.get("_login_user")  # only a user already loaded: never query here
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


def current_language() -> str:
    """The two-letter language of what is being rendered now (for ``<html lang>``)."""
    locale = get_locale()
    return locale.language if locale is not None else current_app.config["BABEL_DEFAULT_LOCALE"]


def locale_for(user: Any) -> str:
    """The language to write to ``user`` in: their stored preference; else, when they are the one
    reading this request's pages (or nobody is signed in, as on the reset and registration pages),
    the language of those pages; else the default."""
    stored = supported(getattr(user, "locale", None))
    if stored:
        return stored
    if has_request_context():
        reader = g.get("_login_user")
        if reader is None or not reader.is_authenticated or reader.id == getattr(user, "id", None):
            return current_language()
    return current_app.config["BABEL_DEFAULT_LOCALE"]


@contextmanager
def recipient_locale(user: Any) -> Iterator[str]:
    """Compose an e-mail, a letter or a timeline text for ``user`` in their language."""
    code = locale_for(user)
    with force_locale(code):
        yield code


def page_locale() -> str | None:
    """The language a new account starts with: the one its registration pages were read in."""
    return current_language() if has_request_context() else None


# --- Formatting --------------------------------------------------------------------------------

def format_money(cents: int) -> str:
    """An amount in US dollars, written the way readers of the current language expect."""
    language = current_language() if has_app_context() else "en"
    return format_currency(cents / 100, "USD", locale=NUMBER_LOCALES.get(language, language))


def format_iso_date(value: str | date | None, style: str = "long") -> str:
    """A date stored as ISO text (the request's encrypted dates), in the reader's language.

    Text that is not a date is shown as it is rather than failing the page."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return value
    else:
        day = value
    return str(format_date(day, style))


# --- The switch --------------------------------------------------------------------------------

def local_path(target: Any) -> str | None:
    """``target`` if it is a path on this site ("/records?x=1"), else None: never another host, a
    scheme (``javascript:``), a backslash trick or control characters."""
    if not isinstance(target, str) or not target.startswith("/") or len(target) > NEXT_MAX_LENGTH:
        return None
    if target.startswith(("//", "/\\")) or any(ch == "\\" or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def this_page() -> str:
    """The current page as the switch's ``next``: path and query string, when that is local."""
    path = request.path
    if request.query_string:
        path += "?" + request.query_string.decode("latin-1")
    return local_path(path) or "/"


def switch_choices() -> list[tuple[str, str]]:
    """The languages the reader can switch to from this page, each named in itself."""
    if staff_only_page():
        return []  # English only here: the switch would change nothing (the account page has it)
    here = current_language()
    return [(code, NATIVE_NAMES.get(code) or (Locale.parse(code).get_display_name(code) or code).capitalize())
            for code in languages() if code != here]


@bp.route("/language", methods=["POST"])
def switch() -> Response:
    """Remember the language chosen (cookie; and the account, when signed in); back to the page."""
    code = supported(request.form.get("lang"))
    if code is None:
        abort(400)  # not a language of the site: the error page says to use the site's buttons
    response = redirect(local_path(request.form.get("next")) or "/", code=303)
    response.set_cookie(COOKIE, code, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="Lax",
                        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]))
    if current_user.is_authenticated and current_user.locale != code:
        current_user.locale = code
        db.session.commit()
    return response


def _adopt_choice_at_sign_in(sender: Flask, user: Any, **extra: Any) -> None:
    """A reader who chose a language before signing in keeps it: it becomes the account's
    preference (the sign-in view commits with the rest of the sign-in)."""
    if not has_request_context():
        return
    chosen = supported(request.cookies.get(COOKIE))
    if chosen and getattr(user, "locale", None) != chosen:
        user.locale = chosen


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    user_logged_in.connect(_adopt_choice_at_sign_in)  # blinker connects one function once
    app.jinja_env.globals.update(current_language=current_language, switch_choices=switch_choices,
                                 this_page=this_page, format_money=format_money)
    app.jinja_env.filters["isodate"] = format_iso_date
