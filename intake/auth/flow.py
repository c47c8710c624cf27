"""The steps of signing in, kept in the session between requests.

After the password, a staff member is *pending*: the session holds who they are, which step is
next (``mfa`` or ``enrol``), where to go afterwards and when the password was checked. Nothing
else is reachable in that state: Flask-Login does not know the user until the last step calls
``finish_sign_in``. A pending state lives 5 minutes and dies with the user's session version.

It is also bound to the second-factor state it started from (a keyed fingerprint of when the
account enrolled, like the reset links' fingerprints in ``intake/security/tokens.py``): a sign-in
paused at enrolment dies the moment the account enrols anywhere else, so it can neither show the
now-active secret nor enrol again and replace the owner's recovery codes.
"""

from __future__ import annotations

import hmac
import time

from flask import session
from flask_login import login_user

from intake.auth.services import complete_sign_in
from intake.extensions import db
from intake.security.crypto import keyring
from intake.security.sessions import start_session
from intake.users.models import User

PENDING = "_pending_auth"
PENDING_TTL_SECONDS = 300
MFA, ENROL = "mfa", "enrol"


def _fingerprint(user: User) -> str:
    """Keyed hash of the account's second-factor state (enrolled or not, and since when)."""
    return keyring().blind_index("auth.pending", f"{user.id}|{user.mfa_enrolled_at}")[:32]


def begin_pending(user: User, stage: str, next_url: str | None = None) -> None:
    """Start a fresh session holding only the pending sign-in."""
    session.clear()
    session[PENDING] = {"uid": user.id, "sv": user.session_version, "stage": stage, "fp": _fingerprint(user),
                        "at": int(time.time()), "next": next_url}


def pending_user(stage: str) -> User | None:
    """The user waiting at ``stage``, if that state is present, fresh and still valid."""
    state = session.get(PENDING)
    if not isinstance(state, dict) or state.get("stage") != stage:
        return None
    if int(time.time()) - int(state.get("at", 0)) > PENDING_TTL_SECONDS:
        session.pop(PENDING, None)
        return None
    user = db.session.get(User, state.get("uid"))
    if (user is None or not user.active or user.session_version != state.get("sv")
            or not hmac.compare_digest(str(state.get("fp", "")), _fingerprint(user))):
        session.pop(PENDING, None)
        return None
    return user


def pending_next() -> str | None:
    state = session.get(PENDING)
    return state.get("next") if isinstance(state, dict) else None


def finish_sign_in(user: User, method: str) -> None:
    """Every factor passed: a brand-new session for ``user`` (the caller commits)."""
    complete_sign_in(user, method)
    session.clear()  # never carry anything from before sign-in into the new session
    login_user(user)
    start_session()
