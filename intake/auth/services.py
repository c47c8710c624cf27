"""Authentication rules, free of HTTP so they can be tested directly."""

from __future__ import annotations

from intake.audit.services import record
from intake.db_types import utcnow
from intake.security.passwords import hash_password, needs_rehash, verify_password
from intake.users.models import User
from intake.users.services import end_all_sessions, find_by_email


def authenticate(email: str, password: str) -> User | None:
    """Return the user when the e-mail and password match an active account, else None.

    Unknown address, wrong password and disabled account take the same path and the same
    time (one argon2 verification each), and the caller shows one message for all three.
    Every outcome is audited; the address typed is never stored.
    """
    user = find_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        reason = "unknown_account" if user is None else ("wrong_password" if not ok else "disabled")
        record("login.failure", object_type="user" if user else None, object_id=user.id if user else None,
               details={"reason": reason})
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.previous_login_at, user.last_login_at = user.last_login_at, utcnow()
    record("login.success", actor=user, object_type="user", object_id=user.id)
    return user


def sign_out_everywhere(user: User) -> None:
    """Logout: end this and every other session of the user, on the server."""
    end_all_sessions(user)
    record("logout", actor=user, object_type="user", object_id=user.id, details={"reason": "user"})
