"""The signed-in user's own account security: change password, recent sign-ins, recovery codes.

Plain functions, free of HTTP: each checks its rule, changes state, queues its e-mail and writes
its audit event in the caller's transaction; the view commits once (and, after a password
change, signs this browser in again with the new session version).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.audit.services import record
from intake.auth.mfa import new_recovery_codes, verify_totp
from intake.auth.services import begin_attempt, clear_failures, end_attempt, is_locked, register_failure
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.mail import send_mail
from intake.notify.services import public_url
from intake.security.passwords import hash_password, password_problems, verify_password
from intake.users.models import User
from intake.users.services import end_all_sessions

RECENT_SIGN_INS = 10
MAIL_PASSWORD_CHANGED = "password_changed"


class AccountLocked(Exception):
    """Too many wrong passwords or codes: the account is locked and nothing more is tried."""


class WrongCurrentPassword(ValueError):
    """The current password typed is not right (the failure has been counted)."""


class WrongCode(ValueError):
    """The authenticator code is not right or was already used (the failure has been counted)."""


class NewPasswordRejected(ValueError):
    """The new password breaks the policy; ``problems`` are messages to show next to the field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SignIn:
    """One successful sign-in, as the account page shows it."""

    at: datetime  # UTC
    address: str | None
    method: str


def change_password(user: User, current: str, new: str) -> None:
    """Replace the password of a signed-in user who knows the current one.

    A wrong current password counts as a failed sign-in (the tenth in a row locks the account,
    and a locked account refuses even the right one). The new password must pass the policy and
    differ from the current one. On success every session of the user ends (the caller signs
    this browser in again), the change is audited and the owner is told by e-mail.

    Raises ``AccountLocked``, ``WrongCurrentPassword`` or ``NewPasswordRejected``; in the last
    two cases nothing about the password changed.
    """
    attempt = begin_attempt(user)  # counted before the password is checked (intake/auth/services.py)
    if attempt is None:
        record("password.change_refused", actor=user, object_type="user", object_id=user.id,
               details={"reason": "locked"})
        raise AccountLocked()
    if not verify_password(user.password_hash, current):
        register_failure(user, "wrong_current_password", attempt)
        if is_locked(user):
            raise AccountLocked()
        raise WrongCurrentPassword()
    end_attempt(user, attempt)
    problems = password_problems(new, user.email)
    if not problems and verify_password(user.password_hash, new):
        problems.append(_("Choose a password different from your current one."))
    if problems:
        raise NewPasswordRejected(problems)
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    clear_failures(user)  # the owner just proved the password, as a sign-in would
    end_all_sessions(user)
    record("password.changed", actor=user, object_type="user", object_id=user.id,
           details={"sessions_ended": True})
    _send_password_changed_notice(user)


def _send_password_changed_notice(user: User) -> None:
    send_mail("password_changed", user, kind=MAIL_PASSWORD_CHANGED, sign_in=public_url("auth.login"))


def recent_sign_ins(user: User, limit: int = RECENT_SIGN_INS) -> list[SignIn]:
    """The user's newest successful sign-ins from the audit trail, newest first (one query)."""
    rows = db.session.execute(
        select(AuditEvent.occurred_at, AuditEvent.ip_address, AuditEvent.details)
        .where(AuditEvent.actor_id == user.id, AuditEvent.action == "login.success")
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    ).all()
    return [SignIn(at=row.occurred_at, address=row.ip_address, method=_method(row.details)) for row in rows]


def _method(details: str) -> str:
    try:
        value = json.loads(details or "{}").get("method")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def regenerate_recovery_codes(user: User, code: str) -> list[str]:
    """Replace a staff member's recovery codes after a fresh authenticator code.

    Only a TOTP code counts here (a recovery code cannot mint new ones). A wrong code counts as
    a failure towards the lock. Returns the new codes, to be shown once; the old ones stop
    working at once.

    Raises ``AccountLocked`` or ``WrongCode`` (nothing changed).
    """
    attempt = begin_attempt(user)
    if attempt is None:
        record("mfa.recovery_codes_refused", actor=user, object_type="user", object_id=user.id,
               details={"reason": "locked"})
        raise AccountLocked()
    if not user.mfa_enrolled or not verify_totp(user, code):
        register_failure(user, "wrong_code", attempt)
        if is_locked(user):
            raise AccountLocked()
        raise WrongCode()
    end_attempt(user, attempt)
    codes = new_recovery_codes(user)
    record("mfa.recovery_codes_regenerated", actor=user, object_type="user", object_id=user.id,
           details={"count": len(codes)})
    return codes
