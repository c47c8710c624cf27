"""Password hashing (argon2id) and the password policy.

Policy (SECURITY.md, ASVS 6.2): 8 to 128 characters, no composition rules, no truncation, and
never one of the common passwords shipped in ``data/common-passwords.txt`` or the account's own
e-mail address.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from flask_babel import lazy_gettext as _l

MIN_LENGTH = 8
MAX_LENGTH = 128

# A hash of a random password, verified when the account does not exist, so an unknown
# e-mail address costs the same time as a wrong password.
_DUMMY_PASSWORD = "not-a-real-account-password"


def make_hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID)


def hasher() -> PasswordHasher:
    return current_app.extensions["intake_hasher"]


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an absent hash still costs one verification."""
    ph = hasher()
    if stored_hash is None:
        stored_hash = current_app.extensions["intake_dummy_hash"]
        password = password + "\x00never-matches"
    try:
        return ph.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return hasher().check_needs_rehash(stored_hash)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("intake.security").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def password_problems(password: str, email: str | None = None) -> list[str]:
    """Why ``password`` is not acceptable; empty when it is."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(str(_l("Use at least %(n)d characters (15 or more is better).", n=MIN_LENGTH)))
    if len(password) > MAX_LENGTH:
        problems.append(str(_l("Use at most %(n)d characters.", n=MAX_LENGTH)))
    lowered = password.lower()
    if lowered in common_passwords():
        problems.append(str(_l("This password is one of the most common ones; choose another.")))
    if email and lowered in {email.lower(), email.lower().split("@", 1)[0]}:
        problems.append(str(_l("Do not use your e-mail address as your password.")))
    return problems
