"""Session lifetime rules: idle and absolute timeouts, and loading the user by session version.

The session cookie is signed (Flask's default) and holds the user id *with* the user's session
version; bumping the version on the server (logout, disable, password change) makes every
cookie issued before worthless. Timestamps in the cookie enforce the idle timeout (15 minutes)
and the absolute one (8 hours for staff, 1 hour for requesters) without a write per request.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, flash, jsonify, redirect, request, session
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from flask_login.utils import login_url
from sqlalchemy import bindparam, select
from sqlalchemy.orm import defer, joinedload
from werkzeug.wrappers import Response

from intake.audit.services import record
from intake.extensions import db, login_manager
from intake.permissions import Permission, require
from intake.security.headers import STATIC_ENDPOINTS
from intake.users.models import User

AUTH_AT = "_auth_at"
SEEN_AT = "_seen_at"
_TOUCH_EVERY = 30  # seconds: refresh the idle clock at most this often (a quarter of the timeout if shorter)
RESUME_FIELD = "_resume_page"  # js/session.js adds it to a kept form: the page to come back to
RESUMED = "resumed"  # the query flag on that page after signing in again: put back what was typed

bp = Blueprint("session", __name__, url_prefix="/session")


# One statement: the account and its roles (a join), as every page needs both. Built once: building a
# statement with its options costs as much as running it (make profile, docs/benchmarks.md).
# The two secrets stay in the database until the sign-in or MFA pages read them (a deferred column is
# loaded, and opened, on first use): every request decrypted the MFA secret, which only those pages use
# (with the loading of the password hash, about a twentieth of a signed-in request; make profile).
_USER_WITH_ROLES = (select(User).options(joinedload(User.role_rows), defer(User.mfa_secret),
                                         defer(User.password_hash))
                    .where(User.id == bindparam("user_id")))


@login_manager.user_loader
def load_user(user_key: str) -> User | None:
    user_id, sep, version = user_key.partition(":")
    if not sep or not user_id.isdigit() or not version.isdigit() or len(user_id) > 12:
        return None
    user = db.session.execute(_USER_WITH_ROLES, {"user_id": int(user_id)}).unique().scalar_one_or_none()
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def start_session() -> None:
    """Stamp a freshly created session (call right after ``login_user``)."""
    now = int(time.time())
    session[AUTH_AT] = now
    session[SEEN_AT] = now


def absolute_limit_seconds(user: User) -> int:
    key = "SESSION_ABSOLUTE_TIMEOUT_STAFF" if user.is_staff else "SESSION_ABSOLUTE_TIMEOUT_REQUESTER"
    return int(current_app.config[key].total_seconds())


def check_timeouts() -> None:
    """``before_request``: end a session that was idle too long or has lived too long."""
    if request.endpoint in STATIC_ENDPOINTS or not current_user.is_authenticated:
        return
    now = int(time.time())
    auth_at, seen_at = session.get(AUTH_AT), session.get(SEEN_AT)
    idle = int(current_app.config["SESSION_IDLE_TIMEOUT"].total_seconds())
    if (
        not isinstance(auth_at, int) or not isinstance(seen_at, int)
        or now - seen_at > idle or now - auth_at > absolute_limit_seconds(current_user)
    ):
        end_current_session(reason="timeout")
        flash(_("Your session ended after a period of inactivity or its maximum length. Please sign in again."),
              "info")
        return
    if now - seen_at >= min(_TOUCH_EVERY, max(1, idle // 4)):
        session[SEEN_AT] = now


def end_current_session(reason: str) -> None:
    """Sign out in this browser and audit it (the audit row is committed here: no view runs after)."""
    user = current_user._get_current_object()
    record("logout", actor=user, object_type="user", object_id=user.id, details={"reason": reason})
    db.session.commit()
    logout_user()
    session.clear()


def idle_seconds() -> int:
    return int(current_app.config["SESSION_IDLE_TIMEOUT"].total_seconds())


def seconds_left() -> int | None:
    """How long this session has before the idle timeout ends it (None when nobody is signed in):
    what the page's timeout dialog counts down from (js/session.js)."""
    if not current_user.is_authenticated:
        return None
    seen_at = session.get(SEEN_AT)
    if not isinstance(seen_at, int):
        return None
    return max(0, idle_seconds() - (int(time.time()) - seen_at))


def session_template_values() -> dict[str, Any]:
    return {"session_seconds_left": seconds_left,
            "session_warning_seconds": lambda: int(current_app.config["SESSION_IDLE_WARNING"].total_seconds()),
            "session_idle_minutes": lambda: max(1, idle_seconds() // 60)}


def _resume_target() -> str | None:
    """The page a kept form came from (posted by js/session.js), as a path on this site, flagged so the
    page puts back what was typed; None when absent or not a plain local path."""
    page = request.form.get(RESUME_FIELD, "") if request.method == "POST" else ""
    parts = urlsplit(page)
    if not page.startswith("/") or page.startswith("//") or parts.scheme or parts.netloc \
            or any(ch in page for ch in "\\\r\n\t") or len(page) > 500:
        return None
    return f"{parts.path}?{parts.query + '&' if parts.query else ''}{RESUMED}=1"


def unauthorized() -> Response | tuple[Response, int]:
    """Sign-in needed: a script's request (JSON) gets 401, so it can tell "signed out" from "failed";
    a form posted after the session ended is sent, after signing in, back to its own page (not to the
    POST-only address it was sent to), where js/session.js puts back what was typed."""
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error="signed out"), 401
    target = _resume_target() or request.url
    return redirect(login_url(login_manager.login_view, next_url=target))


@bp.route("/keepalive", methods=["POST"])
@require(Permission.SIGNED_IN)
def keepalive() -> Response:
    """"Stay signed in": the idle clock starts again now (the request itself has already checked that
    the session is still alive)."""
    session[SEEN_AT] = int(time.time())
    return jsonify(seconds_left=idle_seconds())


def init_app(app: Flask) -> None:
    app.before_request(check_timeouts)
    login_manager.unauthorized_handler(unauthorized)
    app.context_processor(session_template_values)
    app.register_blueprint(bp)
