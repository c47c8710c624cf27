"""Second factor for staff: TOTP (pyotp), one-time recovery codes, and the admin's MFA reset."""

from __future__ import annotations

import hmac
import re
import secrets
import time

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from intake.audit.services import record
from intake.database import affected_rows
from intake.db_types import utcnow
from intake.extensions import db
from intake.security.crypto import keyring
from intake.users.models import RecoveryCode, User
from intake.users.services import end_all_sessions

RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by hand
_TOTP_RE = re.compile(r"^[0-9]{6}$")


def mfa_required(user: User) -> bool:
    """Staff need a second factor, unless development turned MFA off (with a banner)."""
    return user.is_staff and not current_app.config.get("MFA_DISABLED")


def ensure_secret(user: User) -> str:
    """The secret being enrolled: created once, so reloading the page shows the same QR code."""
    if user.mfa_secret is None:
        user.mfa_secret = pyotp.random_base32()
    return user.mfa_secret


def provisioning_uri(user: User) -> str:
    return pyotp.TOTP(ensure_secret(user)).provisioning_uri(
        name=user.email, issuer_name=current_app.config["MFA_ISSUER"])


def qr_data_uri(uri: str) -> str:
    """The QR code as an SVG data URI (allowed by the CSP's img-src; no external service)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def normalise_code(code: str) -> str:
    """Upper-case ASCII letters and digits only: spaces and dashes typed by people drop out,
    anything else (other scripts' digits, control characters) makes the code simply wrong."""
    return "".join(ch for ch in (code or "").upper() if ch.isascii() and ch.isalnum())


def verify_totp(user: User, code: str, now: float | None = None) -> bool:
    """True when ``code`` is the TOTP of the current step (or one step either side, for clock
    drift) and that step is newer than the last accepted one: each code works once, also when
    two requests bring it at the same moment (``consume_step``)."""
    code = normalise_code(code)
    if user.mfa_secret is None or not _TOTP_RE.match(code):
        return False
    totp = pyotp.TOTP(user.mfa_secret)
    current = int((time.time() if now is None else now) // totp.interval)
    for step in (current - 1, current, current + 1):
        if user.mfa_last_step is not None and step <= user.mfa_last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return consume_step(user, step)
    return False


def consume_step(user: User, step: int) -> bool:
    """Spend TOTP time step ``step`` in one conditional statement (``UPDATE … WHERE mfa_last_step <
    :step``): of two requests with the same code, the database lets exactly one change the row; the
    other (on PostgreSQL it waits for the first to commit, then re-reads the row) changes nothing
    and is refused. The step the session loaded earlier may be stale; this one is not."""
    changed = affected_rows(db.session.execute(
        update(User).where(User.id == user.id, or_(User.mfa_last_step.is_(None), User.mfa_last_step < step))
        .values(mfa_last_step=step).execution_options(synchronize_session=False)))
    if changed != 1:
        return False
    set_committed_value(user, "mfa_last_step", step)
    return True


def _code_hash(code: str) -> str:
    return keyring().blind_index("mfa.recovery", normalise_code(code))


def new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones; returns them for showing once."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_code_hash(raw)))
    db.session.flush()
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    """Spend one unused recovery code; True when it was valid. A code works exactly once."""
    if len(normalise_code(code)) != 10:
        return False
    result = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _code_hash(code),
               RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    return affected_rows(result) == 1


def remaining_recovery_codes(user: User) -> int:
    return len(db.session.execute(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).all())


def verify_second_factor(user: User, code: str) -> str | None:
    """'totp' or 'recovery_code' when the code is good, None otherwise."""
    if verify_totp(user, code):
        return "totp"
    if use_recovery_code(user, code):
        record("mfa.recovery_code_used", actor=user, object_type="user", object_id=user.id,
               details={"remaining": remaining_recovery_codes(user)})
        return "recovery_code"
    return None


def confirm_enrolment(user: User, code: str) -> list[str] | None:
    """Finish enrolment with a first valid code; returns the new recovery codes.

    Enrolment happens once: the account is marked enrolled by a conditional statement (``WHERE
    mfa_enrolled_at IS NULL``), so a second enrolment racing this one (another browser paused at
    the same step) changes nothing and gets None, and never replaces the recovery codes.
    """
    if user.mfa_secret is None or user.mfa_enrolled_at is not None or not verify_totp(user, code):
        return None
    now = utcnow()
    changed = affected_rows(db.session.execute(
        update(User).where(User.id == user.id, User.mfa_enrolled_at.is_(None))
        .values(mfa_enrolled_at=now).execution_options(synchronize_session=False)))
    if changed != 1:
        return None
    set_committed_value(user, "mfa_enrolled_at", now)
    record("mfa.enrolled", actor=user, object_type="user", object_id=user.id)
    return new_recovery_codes(user)


def reset_mfa(user: User, actor: User | None) -> None:
    """Forget the user's authenticator and codes and end their sessions; they enrol again at next sign-in."""
    user.mfa_secret = None
    user.mfa_enrolled_at = None
    user.mfa_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    end_all_sessions(user)
    record("mfa.reset", actor=actor, object_type="user", object_id=user.id)
