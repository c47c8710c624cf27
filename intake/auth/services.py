"""Authentication rules, free of HTTP so they can be tested directly."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, update
from sqlalchemy.orm.attributes import set_committed_value

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.mail import send_mail
from intake.security.passwords import hash_password, needs_rehash, verify_password
from intake.users.models import User
from intake.users.services import end_all_sessions, find_by_email


def is_locked(user: User) -> bool:
    return user.locked_until is not None and user.locked_until > utcnow()


def begin_attempt(user: User) -> int | None:
    """Count one attempt at the password or a code *before* it is checked; return its number in the
    run of failures (1 for the first since the last success or lock), or None when it may not be
    checked at all: the account is locked, or attempts already used up its allowance.

    One atomic statement (``UPDATE … SET failed_logins = failed_logins + 1 … RETURNING``) counts it,
    so simultaneous attempts each get their own number and no update is lost; on PostgreSQL the row
    stays locked by this transaction until the caller commits, so the next attempt on the same
    account waits and then sees this one's outcome. The caller settles the attempt with
    ``register_failure`` (wrong), ``end_attempt`` (right, more steps to come) or ``clear_failures``
    (signed in). Of any number of simultaneous wrong guesses, at most ``LOCKOUT_THRESHOLD`` are checked.
    """
    threshold = current_app.config["LOCKOUT_THRESHOLD"]
    now = utcnow()
    row = db.session.execute(
        update(User).where(User.id == user.id, or_(User.locked_until.is_(None), User.locked_until <= now))
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins, User.lockouts, User.locked_until)
        .execution_options(synchronize_session=False)).first()
    if row is None:  # locked: read the lock as it stands now
        db.session.refresh(user, ["failed_logins", "lockouts", "locked_until"])
        return None
    for name in ("failed_logins", "lockouts", "locked_until"):
        set_committed_value(user, name, getattr(row, name))
    if row.failed_logins > threshold:
        # Only a lowered LOCKOUT_THRESHOLD gets here (the threshold-th failure locks): lock now, check nothing.
        _lock(user)
        return None
    return row.failed_logins


def end_attempt(user: User, attempt: int) -> None:
    """The attempt counted by ``begin_attempt`` was right (the password, before the second factor):
    it is not a failure. The row is still this transaction's, so the count is exactly as it left it."""
    user.failed_logins = max(attempt - 1, 0)


def register_failure(user: User, reason: str, attempt: int) -> None:
    """A failed password or code, already counted by ``begin_attempt`` as number ``attempt``: the
    threshold-th failure in a row locks the account.

    Each lock lasts twice as long as the one before (from LOCKOUT_BASE_SECONDS up to
    LOCKOUT_MAX_SECONDS) until a successful sign-in. The owner is told by e-mail, which
    the person guessing never sees.
    """
    record("login.failure", object_type="user", object_id=user.id, details={"reason": reason})
    if attempt >= current_app.config["LOCKOUT_THRESHOLD"]:
        _lock(user)


def refuse_locked(user: User, action: str = "login.failure", **details: object) -> None:
    """Audit an attempt that was not checked because the account is locked."""
    record(action, object_type="user", object_id=user.id, details={"reason": "locked", **details})


def _lock(user: User) -> None:
    cfg = current_app.config
    user.lockouts = (user.lockouts or 0) + 1
    seconds = min(cfg["LOCKOUT_BASE_SECONDS"] * 2 ** (user.lockouts - 1), cfg["LOCKOUT_MAX_SECONDS"])
    user.locked_until = utcnow() + timedelta(seconds=seconds)
    user.failed_logins = 0
    record("account.locked", object_type="user", object_id=user.id,
           details={"minutes": seconds // 60, "lock_number": user.lockouts})
    send_mail("account_locked", user, threshold=cfg["LOCKOUT_THRESHOLD"], minutes=seconds // 60)


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
    the right password: its hash is not even tried (a dummy one is, for the time).
    """
    user = find_by_email(email)
    if user is None:
        verify_password(None, password)
        record("login.failure", details={"reason": "unknown_account"})
        return None
    if not user.active:
        verify_password(None, password)
        record("login.failure", object_type="user", object_id=user.id, details={"reason": "disabled"})
        return None
    attempt = begin_attempt(user)
    if attempt is None:
        verify_password(None, password)
        refuse_locked(user)
        return None
    if not verify_password(user.password_hash, password):
        register_failure(user, "wrong_password", attempt)
        return None
    end_attempt(user, attempt)
    if user.password_hash and needs_rehash(user.password_hash):  # ok: the hash is there
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
