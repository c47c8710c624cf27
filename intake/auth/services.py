"""Authentication rules, free of HTTP so they can be tested directly."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _

from intake.audit.services import record
from intake.db_types import utcnow
from intake.i18n import recipient_locale
from intake.notify.services import queue_email
from intake.security.passwords import hash_password, needs_rehash, verify_password
from intake.users.models import User
from intake.users.services import end_all_sessions, find_by_email


def is_locked(user: User) -> bool:
    return user.locked_until is not None and user.locked_until > utcnow()


def register_failure(user: User, reason: str) -> None:
    """Count a failed password or code; the threshold-th failure in a row locks the account.

    Each lock lasts twice as long as the one before (from LOCKOUT_BASE_SECONDS up to
    LOCKOUT_MAX_SECONDS) until a successful sign-in. The owner is told by e-mail, which
    the person guessing never sees.
    """
    cfg = current_app.config
    user.failed_logins = (user.failed_logins or 0) + 1
    record("login.failure", object_type="user", object_id=user.id, details={"reason": reason})
    if user.failed_logins < cfg["LOCKOUT_THRESHOLD"]:
        return
    user.lockouts = (user.lockouts or 0) + 1
    seconds = min(cfg["LOCKOUT_BASE_SECONDS"] * 2 ** (user.lockouts - 1), cfg["LOCKOUT_MAX_SECONDS"])
    user.locked_until = utcnow() + timedelta(seconds=seconds)
    user.failed_logins = 0
    record("account.locked", object_type="user", object_id=user.id,
           details={"minutes": seconds // 60, "lock_number": user.lockouts})
    facility = cfg["FACILITY_NAME"]
    with recipient_locale(user):  # the language the owner chose, where they chose one
        queue_email(
            user.email, "account_locked",
            _("Sign-in paused on your %(facility)s account", facility=facility),
            _("Someone tried to sign in to your %(facility)s account and got the password or code wrong "
              "%(n)d times in a row, so sign-in is paused for %(minutes)d minutes.",
              facility=facility, n=cfg["LOCKOUT_THRESHOLD"], minutes=seconds // 60) + "\n\n"
            + _("If this was you, wait and try again, or reset your password from the sign-in page.") + "\n"
            + _("If it was not you, reset your password and tell us by calling the number on our website.") + "\n",
        )


def clear_failures(user: User) -> None:
    user.failed_logins = 0
    user.lockouts = 0
    user.locked_until = None


def unlock(user: User, actor: User | None) -> None:
    """An administrator lifts a lock (and forgets the failures that led to it)."""
    clear_failures(user)
    record("account.unlocked", actor=actor, object_type="user", object_id=user.id)


def check_password(email: str, password: str) -> User | None:
    """First factor: the user when the address and password match an active, unlocked account.

    Unknown address, wrong password, disabled and locked accounts take the same path and the
    same time (one argon2 verification each) and the caller shows one message for all of them.
    Every outcome is audited; the address typed is never stored. A locked account refuses even
    the right password.
    """
    user = find_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None:
        record("login.failure", details={"reason": "unknown_account"})
        return None
    if not user.active:
        record("login.failure", object_type="user", object_id=user.id, details={"reason": "disabled"})
        return None
    if is_locked(user):
        record("login.failure", object_type="user", object_id=user.id, details={"reason": "locked"})
        return None
    if not ok:
        register_failure(user, "wrong_password")
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def complete_sign_in(user: User, method: str) -> None:
    """All factors passed: reset the failure count, stamp the sign-in, audit it."""
    clear_failures(user)
    user.previous_login_at, user.last_login_at = user.last_login_at, utcnow()
    record("login.success", actor=user, object_type="user", object_id=user.id, details={"method": method})


def sign_out_everywhere(user: User) -> None:
    """Logout: end this and every other session of the user, on the server."""
    end_all_sessions(user)
    record("logout", actor=user, object_type="user", object_id=user.id, details={"reason": "user"})
