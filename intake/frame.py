"""The page's frame (``base.html``'s stylesheet links, header and footer), drawn once per state.

Every page draws the same frame around its content: the menu a person's roles open, the language
switch, the helpline number, the session dialog, the footer. Drawing it was about a fifth of the call
list's time (``make profile``: some fifty template calls, a dozen ``url_for`` and as many translations a
request). So ``{% call kept_frame(name, state) %}…{% endcall %}`` draws its body once per ``state``
and keeps the markup, per app (``app.extensions``: two apps never share a frame). The state is
everything the body reads: the language, the menu (its links, labels and counts), the settings shown.

The few values that change on every request (the CSRF token, this page's own address, the CSP nonce,
the sign-in-again link) are written into the body as markers (``frame_marks``) and put in the kept
markup at each request, escaped. A marker is plain letters, digits and hyphens, which escaping leaves
as they are; the frame holds no text a person typed, so no marker can come from anyone but the body.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from types import SimpleNamespace
from typing import Any

from flask import Flask, current_app, request, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from intake.i18n import current_language, this_page
from intake.security.headers import csp_nonce

FRAMES_MAX = 256  # a few kilobytes each (a chart's up to ~15): languages × menus × counts; cleared when full

_MARK_CSRF = "intake-frame-csrf-5c2f0e"
_MARK_NEXT = "intake-frame-next-9a71d4"
_MARK_NONCE = "intake-frame-nonce-3b8e62"
_MARK_SIGN_IN = "intake-frame-sign-in-e4d019"

# What the body writes where the request's own value goes ({{ frame_marks.csrf }} for csrf_token()).
frame_marks = SimpleNamespace(csrf=_MARK_CSRF, next=_MARK_NEXT, nonce=_MARK_NONCE, sign_in=_MARK_SIGN_IN)


def _sign_in_again() -> str:
    return url_for("auth.login", next=this_page())


# marker -> the request's value (each escaped when filled in); asked only when the body holds the marker.
_FILL: tuple[tuple[str, Callable[[], str]], ...] = (
    (_MARK_CSRF, generate_csrf), (_MARK_NEXT, this_page), (_MARK_NONCE, csp_nonce), (_MARK_SIGN_IN, _sign_in_again))


def fill(html: str) -> Markup:
    """The kept markup with this request's values in place of the markers."""
    for mark, value in _FILL:
        if mark in html:
            html = html.replace(mark, str(escape(value())))
    return Markup(html)  # nosec B704: the body is Jinja's escaped output; each filled value is escaped above


def kept_frame(name: str, state: Hashable, caller: Any) -> Markup:
    """The body of a ``{% call %}`` block, drawn once per ``(name, state)`` in this app, with this
    request's values filled in (see the docstring)."""
    frames: dict[tuple[str, Hashable], str] = current_app.extensions.setdefault("intake_frames", {})
    key = (name, state)
    html = frames.get(key)
    if html is None:
        if len(frames) >= FRAMES_MAX:
            frames.clear()
        html = frames[key] = str(caller())
    return fill(html)


def frame_state(*parts: Hashable) -> tuple[Hashable, ...]:
    """A frame's state: what the template passes (the menu, the switch's languages, ...) and what every
    frame reads (the language, the site's address, the settings it shows)."""
    config = current_app.config
    return (current_language(), request.script_root, config["FACILITY_NAME"], config["HELPLINE_NUMBER"], *parts)


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(kept_frame=kept_frame, frame_state=frame_state, frame_marks=frame_marks)
