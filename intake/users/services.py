"""Account services: create, find, change role, disable, re-enable. Each writes its audit event;
callers commit.

The rules an administrator cannot break: nobody changes their own role or disables their own
account, and the last active administrator can be neither demoted nor disabled (someone must
still be able to run the accounts). The last-admin check reads the active administrators in the
same transaction as the change, right before it is flushed, with the rows locked (see
``_lock_admins_and``), so two administrators removing each other at the same moment cannot
leave the facility with none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.security.crypto import keyring
from intake.security.passwords import hash_password, password_problems
from intake.users.models import Role, User

EMAIL_INDEX_PURPOSE = "user.email"
EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit
STAFF_ROLES = (Role.OPERATOR, Role.ADMIN)


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


def _lock_admins_and(user: User) -> list[User]:
    """Reload ``user`` and every active administrator, locked until the transaction ends, and
    return the active administrators.

    PostgreSQL: ``SELECT ... FOR UPDATE`` in id order. A second transaction removing an admin
    waits here until the first commits, then re-reads the rows the first changed, so it counts
    what is true now rather than what was true when it started (READ COMMITTED re-checks locked
    rows). Locking the target with the admins, always in id order, means two such transactions
    queue instead of deadlocking. An admin promoted meanwhile may be missed, which only errs
    towards refusing. SQLite ignores FOR UPDATE, but every transaction there begins with
    ``BEGIN IMMEDIATE`` (intake/database.py), so writers already run one at a time.
    ``populate_existing`` refreshes objects this session loaded earlier (the target, the actor).
    """
    rows = db.session.execute(
        select(User)
        .where(or_(and_(User.role == Role.ADMIN, User.active.is_(True)), User.id == user.id))
        .order_by(User.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalars().all()
    return [u for u in rows if u.role == Role.ADMIN and u.active]


def _refuse_removing_last_admin(user: User, admins: list[User]) -> None:
    if user.role == Role.ADMIN and user.active and not any(a.id != user.id for a in admins):
        raise AccountError(_("Account #%(id)d is the last active administrator. Make another account an "
                             "administrator first, so someone can still manage the accounts.", id=user.id))


def _is_self(user: User, actor: Any) -> bool:
    return actor is not None and getattr(actor, "id", None) == user.id


def change_role(user: User, role: Role | str, actor: Any) -> None:
    """Make a staff account an operator or an administrator; its sessions end so the new
    permissions apply at once (the holder signs in again).

    Refused (``AccountError``, nothing changed): a role other than operator or admin, a requester
    account (former patients never become staff, nor staff requesters), the actor's own account,
    the role it already has, and demoting the last active administrator. Audited as
    ``user.role_changed`` with the roles before and after.
    """
    # A requester's role never changes, so this needs no lock; it comes first so that the refusal
    # names the real reason whatever role was asked for.
    if not user.is_staff:
        raise AccountError(_("Account #%(id)d is a records requester's account; its role cannot change.",
                             id=user.id))
    try:
        new_role = Role(role)
    except ValueError as exc:
        raise AccountError(_("Choose operator or administrator.")) from exc
    if new_role not in STAFF_ROLES:
        raise AccountError(_("Choose operator or administrator. Records requesters create their own accounts."))
    admins = _lock_admins_and(user)
    if _is_self(user, actor):
        raise AccountError(_("You cannot change your own role. Ask another administrator."))
    old_role = Role(user.role)
    if old_role == new_role:
        raise AccountError(_("Account #%(id)d already has this role; nothing changed.", id=user.id))
    if new_role != Role.ADMIN:
        _refuse_removing_last_admin(user, admins)
    user.role = new_role
    end_all_sessions(user)
    record("user.role_changed", actor=actor, object_type="user", object_id=user.id,
           details={"from": old_role.value, "to": new_role.value})


def disable_user(user: User, actor: Any = None) -> None:
    """Deactivate an account and end all its sessions at once.

    Refused (``AccountError``, nothing changed): an account already disabled, the actor's own
    account, and the last active administrator (from the command line too, where the actor is
    None). Audited as ``user.disabled``.
    """
    admins = _lock_admins_and(user)
    if not user.active:
        raise AccountError(_("Account #%(id)d is already disabled.", id=user.id))
    if _is_self(user, actor):
        raise AccountError(_("You cannot disable your own account. Ask another administrator."))
    _refuse_removing_last_admin(user, admins)
    user.active = False
    end_all_sessions(user)
    record("user.disabled", actor=actor, object_type="user", object_id=user.id)


def enable_user(user: User, actor: Any) -> None:
    """Let a disabled account sign in again, with its existing password and second factor.

    The sessions it had stay ended (disabling bumped the session version). A sign-in lock is
    left as it is: the lock and the disable are separate facts with separate audited actions,
    and the admin page offers "Unlock" beside "Re-enable"; a lock also runs out by itself.
    Refused (``AccountError``) for an account that is not disabled. Audited as ``user.enabled``.
    """
    _lock_admins_and(user)
    if user.active:
        raise AccountError(_("Account #%(id)d is not disabled; nothing changed.", id=user.id))
    user.active = True
    record("user.enabled", actor=actor, object_type="user", object_id=user.id)


def end_all_sessions(user: User) -> None:
    """Every cookie issued to ``user`` so far stops working on its next request."""
    user.session_version += 1


def count_active_admins() -> int:
    return db.session.execute(
        select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.active.is_(True))
    ).scalar_one()


def another_active_admin(user: User) -> bool:
    """Whether an active administrator other than ``user`` exists (one indexed row, no count)."""
    return db.session.execute(
        select(User.id).where(User.role == Role.ADMIN, User.active.is_(True), User.id != user.id).limit(1)
    ).first() is not None


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
