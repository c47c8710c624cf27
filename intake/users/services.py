"""Account services: create, find, disable. Each writes its audit event; callers commit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.security.crypto import keyring
from intake.security.passwords import hash_password, password_problems
from intake.users.models import Role, User

EMAIL_INDEX_PURPOSE = "user.email"
EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit


class AccountError(ValueError):
    """A rule stopped the account change; the message is safe to show."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_index(email: str) -> str:
    return keyring().blind_index(EMAIL_INDEX_PURPOSE, normalize_email(email))


def find_by_email(email: str) -> User | None:
    return db.session.execute(select(User).where(User.email_index == email_index(email))).scalar_one_or_none()


def create_user(email: str, role: Role | str, password: str, actor: Any = None, verified: bool = True) -> User:
    """Create an active account with a strength-checked password (argon2id hash).

    Accounts an administrator creates count as verified; self-registration passes
    ``verified=False`` and the owner confirms the address by a link.
    """
    try:
        role = Role(role)
    except ValueError as exc:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(r.value for r in Role)}") from exc
    email = email.strip()
    problems = password_problems(password, email)
    if problems:
        raise AccountError(" ".join(problems))
    if find_by_email(email) is not None:
        raise AccountError("an account with this e-mail address already exists")
    now = utcnow()
    user = User(email=email, email_index=email_index(email), role=role, password_hash=hash_password(password),
                password_changed_at=now, email_verified_at=now if verified else None)
    db.session.add(user)
    db.session.flush()
    record("user.created", actor=actor, object_type="user", object_id=user.id, details={"role": role.value})
    return user


def disable_user(user: User, actor: Any = None) -> None:
    """Deactivate an account and end all its sessions at once."""
    if not user.active:
        raise AccountError("this account is already disabled")
    user.active = False
    end_all_sessions(user)
    record("user.disabled", actor=actor, object_type="user", object_id=user.id)


def end_all_sessions(user: User) -> None:
    """Every cookie issued to ``user`` so far stops working on its next request."""
    user.session_version += 1


def count_active_admins() -> int:
    return db.session.execute(
        select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.active.is_(True))
    ).scalar_one()


STAFF_ROLES = (Role.OPERATOR, Role.ADMIN)


def staff_accounts(active_only: bool = True, limit: int = 500) -> list[User]:
    """Operators and admins, sorted by e-mail address (decrypted, so sorted here, not in SQL).

    The staff of a helpline is small; ``limit`` bounds the query all the same.
    """
    query = select(User).where(User.role.in_(STAFF_ROLES)).order_by(User.id).limit(limit)
    if active_only:
        query = query.where(User.active.is_(True))
    return sorted(db.session.execute(query).scalars(), key=lambda user: str(user.email).lower())


def emails_by_id(user_ids: Iterable[int | None]) -> dict[int, str]:
    """E-mail addresses (decrypted) of the given accounts, in one query."""
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    users = db.session.execute(select(User).where(User.id.in_(ids))).scalars().all()
    return {user.id: str(user.email) for user in users}
