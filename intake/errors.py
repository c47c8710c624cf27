"""Error pages: a reference id the user can quote, never a stack trace."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from intake.extensions import db, login_manager
from intake.permissions import Permission, can_any, required_permissions, roles_with
from intake.users.labels import role_label
from intake.users.models import Role
from intake.users.services import active_admins

MESSAGES = {
    400: (_l("Something in that request was not right"), _l("Please go back, check what you entered and try again.")),
    403: (_l("You do not have access to this page"), _l("If you think you should, ask an administrator.")),
    404: (_l("Page not found"), _l("The page you asked for does not exist or is not available to you.")),
    405: (_l("That action is not allowed here"), _l("Please use the buttons and links on the site.")),
    413: (_l("That was too large"), _l("Please send less text or a smaller file.")),
    429: (_l("Too many attempts"), _l("Please wait a while before trying again.")),
    500: (_l("Something went wrong on our side"), _l("The problem has been logged. Please try again later.")),
    503: (_l("The service is temporarily unavailable"), _l("Please try again in a few minutes.")),
}
CSRF_MESSAGE = _l("This form has expired or did not come from this site. Please reload the page and try again.")


FALLBACK_PAGE = (
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>"
    "<body><main><h1>{title}</h1><p>Reference: {reference}</p></main></body></html>"
)


# nginx's $request_id (deploy/nginx/intake.conf) is 32 hex digits; other proxies use UUIDs.
_PROXY_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{8,64}")


def request_id() -> str:
    """This request's id: the one a trusted proxy sent (``TRUSTED_PROXY_COUNT`` > 0), so its log
    and the app's share it, else a new random one. Never a visitor's own choice."""
    rid = g.get("request_id")
    if rid is None:
        sent = request.headers.get("X-Request-Id", "") if current_app.config.get("TRUSTED_PROXY_COUNT") else ""
        rid = g.request_id = sent if _PROXY_REQUEST_ID.fullmatch(sent) else secrets.token_hex(6)
    return rid


STAFF_ONLY = _l("This page is for the facility's staff.")


@dataclass(frozen=True)
class Refusal:
    """What a 403 page tells a staff member: the roles that would open the page, and who gives roles."""

    roles: list[str]
    admins: list[str]
    requester_page: bool = False


def refusal_for(user: Any, needed: tuple[Permission, ...]) -> Refusal | None:
    """For a signed-in staff member refused for lack of a permission: the roles holding one of
    ``needed`` (in plain words) and the active administrators other than them, by name. None for
    anyone else, or when the refusal was not about a permission they lack (then the page says
    only that the page is not theirs)."""
    if not getattr(user, "is_authenticated", False) or not user.is_staff or not needed or can_any(user, needed):
        return None
    roles = roles_with(needed)
    if roles == [Role.REQUESTER]:
        return Refusal([], [], requester_page=True)
    admins = [admin.name for admin in active_admins() if admin.id != user.id]
    return Refusal([role_label(role) for role in roles], admins)


def _forbidden_page(error: HTTPException) -> tuple[str, int]:
    """The 403 page: to staff, the role the page needs and who to ask; to a requester or a
    visitor, only that the page is for the facility's staff."""
    try:
        user = current_user._get_current_object()
        if not getattr(user, "is_authenticated", False) or not user.is_staff:
            return _render(403, str(STAFF_ONLY))
        needed = tuple(getattr(error, "permissions", ()) or required_permissions(request.endpoint))
        refusal = refusal_for(user, needed)
    except Exception:  # noqa: BLE001 - the advice is a courtesy; the refusal itself must stand
        current_app.logger.exception("403 advice failed [ref %s]", request_id())
        refusal = None
    return _render(403, refusal=refusal)


def _render(code: int, detail: str | None = None, refusal: Refusal | None = None):
    title, text = MESSAGES.get(code, MESSAGES[500])
    if refusal is not None:
        text = None
    try:
        body = render_template("errors/error.html", code=code, title=title, text=detail or text,
                               refusal=refusal, reference=request_id())
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        current_app.logger.exception("error page failed to render [ref %s]", request_id())
        body = FALLBACK_PAGE.format(title=escape(str(title)), reference=request_id())
    return body, code


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        # The endpoint, never the path: the path of an e-mailed link holds its token.
        app.logger.info("CSRF check failed on %s %s [ref %s]", request.method, request.endpoint or "(no endpoint)",
                        request_id())
        return _render(400, str(CSRF_MESSAGE))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        if error.code == 403:
            return _forbidden_page(error)
        response = _render(error.code if error.code in MESSAGES else 500 if error.code >= 500 else 400)
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            return response[0], 405, {"Allow": ", ".join(error.valid_methods)}
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_down(error: Exception):
        app.logger.error("database unavailable [ref %s]: %s", request_id(), type(error).__name__)
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is already gone; nothing more to undo
            app.logger.debug("rollback after a database failure also failed")
        # Render as anonymous: loading the signed-in user would need the database again.
        g._login_user = login_manager.anonymous_user()
        return _render(503)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return http_error(error)
        app.logger.exception("unhandled error [ref %s]", request_id())
        return _render(500)

    @app.after_request
    def add_request_id(response):
        response.headers["X-Request-Id"] = request_id()
        return response

