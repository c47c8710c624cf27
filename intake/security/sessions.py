"""Session lifetime rules: idle and absolute timeouts, and loading the user by session version.

The session cookie is signed (Flask's default) and holds the user id *with* the user's session
version; bumping the version on the server (logout, disable, password change) makes every
cookie issued before worthless. Timestamps in the cookie enforce the idle timeout (15 minutes)
and the absolute one (8 hours for staff, 1 hour for requesters) without a write per request.
"""

from __future__ import annotations

import time

from flask import Flask, current_app, flash, request, session
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from intake.audit.services import record
from intake.extensions import db, login_manager
from intake.security.headers import STATIC_ENDPOINTS
from intake.users.models import User

AUTH_AT = "_auth_at"
SEEN_AT = "_seen_at"
_TOUCH_EVERY = 30  # seconds: refresh the idle clock at most this often


@login_manager.user_loader
def load_user(user_key: str) -> User | None:
    user_id, sep, version = user_key.partition(":")
    if not sep or not user_id.isdigit() or not version.isdigit():
        return None
    # One statement: the account and its roles (a join), as every page needs both.
    user = db.session.execute(
        select(User).options(joinedload(User.role_rows)).where(User.id == int(user_id))
    ).unique().scalar_one_or_none()
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
    expired = (
        not isinstance(auth_at, int) or not isinstance(seen_at, int)
        or now - seen_at > idle or now - auth_at > absolute_limit_seconds(current_user)
    )
    if expired:
        end_current_session(reason="timeout")
        flash(_("Your session ended after a period of inactivity or its maximum length. Please sign in again."),
              "info")
        return
    if now - seen_at >= _TOUCH_EVERY:
        session[SEEN_AT] = now


def end_current_session(reason: str) -> None:
    """Sign out in this browser and audit it (the audit row is committed here: no view runs after)."""
    user = current_user._get_current_object()
    record("logout", actor=user, object_type="user", object_id=user.id, details={"reason": reason})
    db.session.commit()
    logout_user()
    session.clear()


def init_app(app: Flask) -> None:
    app.before_request(check_timeouts)
