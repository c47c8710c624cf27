"""Password hashing (argon2id) and the password policy.

Policy (SECURITY.md, ASVS 6.2): 8 to 128 characters, no composition rules, no truncation, and
never one of the common passwords shipped in ``data/common-passwords.txt`` or the account's own
e-mail address.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from importlib import resources
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from flask_babel import lazy_gettext as _l

MIN_LENGTH = 8
MAX_LENGTH = 128

# A hash of a random password, verified when the account does not exist, so an unknown
# e-mail address costs the same time as a wrong password.
_DUMMY_PASSWORD = "not-a-real-account-password"


@lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def _give_back_memory() -> None:
    """Return the freed heap to the system after an argon2 hash or check. Each one allocates the memory
    cost (19 MiB) and frees it; after the first, glibc serves it from the heap and keeps it, so a worker
    that handled a sign-in stayed ~19 MB larger for good (the benchmark's largest worker, 141 or 155 MB by
    which worker signed the visitors in, before this work and after it alike; measured in one process:
    12 MB, 31 MB after three checks, 12 MB after ``malloc_trim``)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def make_hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID)


def hasher() -> PasswordHasher:
    return current_app.extensions["intake_hasher"]


def hash_password(password: str) -> str:
    try:
        return hasher().hash(password)
    finally:
        _give_back_memory()


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
    finally:
        _give_back_memory()


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
