"""Signed, expiring, single-use links (e-mail verification, password reset, staff invitation).

A token carries the user's ``uid`` and a fingerprint of the account state the link is meant to
change. Once that state changes (the address is verified, the password is set), the fingerprint
no longer matches and the link is dead: single use without storing tokens anywhere. The
fingerprint is a keyed hash, so the token reveals nothing about the account.
"""

from __future__ import annotations

from enum import StrEnum

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from intake.extensions import db
from intake.security.crypto import keyring
from intake.users.models import User


class Purpose(StrEnum):
    VERIFY_EMAIL = "verify-email"
    RESET_PASSWORD = "reset-password"
    INVITATION = "invitation"


# How long each kind of link works, in seconds (config may override: TOKEN_MAX_AGE_<NAME>).
DEFAULT_MAX_AGE = {
    Purpose.VERIFY_EMAIL: 48 * 3600,
    Purpose.RESET_PASSWORD: 3600,
    Purpose.INVITATION: 72 * 3600,
}


class TokenError(ValueError):
    """The link is not valid; ``expired`` says whether it was merely too old."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _state(user: User, purpose: Purpose) -> str:
    """The account state a link of this purpose is allowed to change."""
    if purpose is Purpose.VERIFY_EMAIL:
        return f"{user.email_index}|{user.email_verified_at}"
    if purpose is Purpose.RESET_PASSWORD:
        return f"{user.password_hash}|{user.active}"
    return f"{user.password_hash}|{user.mfa_enrolled_at}|{user.active}"


def _fingerprint(user: User, purpose: Purpose) -> str:
    return keyring().blind_index(f"token.{purpose.value}", _state(user, purpose))[:32]


def _serializer(purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"intake.{purpose.value}")


def max_age(purpose: Purpose) -> int:
    key = "TOKEN_MAX_AGE_" + purpose.name
    return int(current_app.config.get(key) or DEFAULT_MAX_AGE[purpose])


def make_token(user: User, purpose: Purpose) -> str:
    return _serializer(purpose).dumps({"u": user.uid, "f": _fingerprint(user, purpose)})


def read_token(token: str, purpose: Purpose) -> User:
    """The user the link was made for, if it is genuine, fresh, and still unused."""
    try:
        data = _serializer(purpose).loads(token, max_age=max_age(purpose))
    except SignatureExpired as exc:
        raise TokenError(expired=True) from exc
    except BadSignature as exc:
        raise TokenError() from exc
    if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("f"), str):
        raise TokenError()
    user = db.session.execute(select(User).where(User.uid == data["u"])).scalar_one_or_none()
    if user is None or not user.active or data["f"] != _fingerprint(user, purpose):
        raise TokenError()
    return user
