"""Account services: create, find, change roles, staff identity, disable, re-enable. Each writes
its audit event; callers commit.

The rules an administrator cannot break: nobody changes their own roles or disables their own
account, and the last active holder of ``admin`` can neither lose it nor be disabled (someone
must still be able to run the accounts). The last-admin check reads the active administrators in
the same transaction as the change, right before it is flushed, with the rows locked (see
``_lock_admins_and``), so two administrators removing each other at the same moment cannot
leave the facility with none. A requester's account holds ``requester`` only: former patients
never become staff, nor staff requesters.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, func, or_, select

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.security.crypto import aad_for, keyring
from intake.security.passwords import hash_password, password_problems
from intake.users.labels import US_STATES
from intake.users.models import STAFF_ROLES, LicenceType, Role, User, UserRole, role_order

EMAIL_INDEX_PURPOSE = "user.email"
EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit
DISPLAY_NAME_MAX = 80
LICENCE_NUMBER_MAX = 20
# Letters of any script with their accents, and the punctuation names use; nothing else.
_NAME_PUNCTUATION = frozenset(" '’‘-.,()")
_LICENCE_NUMBER_RE = re.compile(r"^[A-Z0-9](?:[A-Z0-9 .\-]*[A-Z0-9])?$")


class AccountError(ValueError):
    """A rule stopped the account change; the message is safe to show."""


class IdentityError(AccountError):
    """A staff identity field is not acceptable; ``field`` names the form field it belongs to."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_index(email: str) -> str:
    return keyring().blind_index(EMAIL_INDEX_PURPOSE, normalize_email(email))


def find_by_email(email: str) -> User | None:
    return db.session.execute(select(User).where(User.email_index == email_index(email))).scalar_one_or_none()


# --- roles -------------------------------------------------------------------------------------

def parse_roles(value: Role | str | Iterable[Role | str]) -> list[Role]:
    """Roles from a role, a comma-separated text ("operator,admin") or several of either, in the
    roles' order. Raises ``AccountError`` naming an unknown role."""
    items: list[Any] = [value] if isinstance(value, (str, Role)) else list(value)
    names = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    roles = []
    for name in names:
        try:
            roles.append(Role(name))
        except ValueError as exc:
            choices = ", ".join(r.value for r in Role)
            raise AccountError(_("Unknown role %(role)s; choose from %(choices)s.", role=repr(name[:40]),
                                 choices=choices)) from exc
    return role_order(roles)


def check_role_set(roles: Iterable[Role]) -> list[Role]:
    """At least one role, and ``requester`` only alone. Returns the roles in order."""
    ordered = role_order(roles)
    if not ordered:
        raise AccountError(_("Choose at least one role."))
    if Role.REQUESTER in ordered and len(ordered) > 1:
        raise AccountError(_("A records requester's account holds no staff role: former patients never become "
                             "staff, nor staff requesters."))
    return ordered


def role_values(roles: Iterable[Role]) -> list[str]:
    return [role.value for role in role_order(roles)]


# --- staff identity ----------------------------------------------------------------------------

def clean_display_name(raw: str | None) -> str | None:
    """The display name as stored: trimmed, inner spaces collapsed, Unicode NFC; None when empty.
    Raises ``IdentityError`` for control characters, digits or symbols, or over 80 characters."""
    text = unicodedata.normalize("NFC", raw or "")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") and ch not in "\t " for ch in text):
        raise IdentityError(_("A name has letters, spaces and the punctuation names use ( ' - . , ) only."),
                            "display_name")
    text = " ".join(text.split())
    if not text:
        return None
    if len(text) > DISPLAY_NAME_MAX:
        raise IdentityError(_("Use at most %(max)d characters.", max=DISPLAY_NAME_MAX), "display_name")
    allowed = all(unicodedata.category(ch)[0] in "LM" or ch in _NAME_PUNCTUATION for ch in text)
    if not allowed or not any(unicodedata.category(ch)[0] == "L" for ch in text):
        raise IdentityError(_("A name has letters, spaces and the punctuation names use ( ' - . , ) only."),
                            "display_name")
    return text


def require_display_name(raw: str | None) -> str:
    name = clean_display_name(raw)
    if name is None:
        raise IdentityError(_("Enter the name colleagues know them by; staff are named by it on every page."),
                            "display_name")
    return name


def clean_licence(licence_type: str | None, number: str | None, state: str | None
                  ) -> tuple[LicenceType | None, str | None, str | None]:
    """A professional licence as stored: all three parts, or none. Raises ``IdentityError``."""
    kind = (licence_type or "").strip()
    number = " ".join((number or "").split()).upper()
    state = (state or "").strip().upper()
    if not kind and not number and not state:
        return None, None, None
    try:
        parsed = LicenceType(kind) if kind else None
    except ValueError as exc:
        raise IdentityError(_("Choose a licence type from the list."), "licence_type") from exc
    if parsed is None:
        raise IdentityError(_("Choose the licence type, or clear the number and state for no licence."),
                            "licence_type")
    if not number:
        raise IdentityError(_("Enter the licence number, or clear the type and state for no licence."),
                            "licence_number")
    if len(number) > LICENCE_NUMBER_MAX or not _LICENCE_NUMBER_RE.match(number):
        raise IdentityError(_("A licence number has letters, digits, spaces, dots and hyphens, at most "
                              "%(max)d characters.", max=LICENCE_NUMBER_MAX), "licence_number")
    if not state:
        raise IdentityError(_("Choose the state that issued the licence, or clear the type and number for no "
                              "licence."), "licence_state")
    if state not in US_STATES:
        raise IdentityError(_("Choose a state from the list (two letters, e.g. CA)."), "licence_state")
    return parsed, number, state


def licensed(user: Any) -> bool:
    """Whether ``user`` is an active staff member with a professional licence on record (type,
    number and issuing state). The records-law rules ask this before a decision only a licensed
    professional may make (a denial on clinical grounds, 45 CFR 164.524(a)(3)); which licence
    types qualify for which decision is theirs to add."""
    return bool(getattr(user, "is_staff", False) and getattr(user, "active", False)
                and user.licence_type and user.licence_number and user.licence_state)


def set_identity(user: User, actor: Any, display_name: str | None, licence_type: str | None = None,
                 licence_number: str | None = None, licence_state: str | None = None) -> list[str]:
    """Change a staff account's display name and professional licence; returns the names of the
    fields that changed (audited as ``user.identity_changed`` with those names, never the values).

    Refused (``AccountError``, nothing changed): a requester's account (no staff identity), a
    missing or malformed name, an incomplete or malformed licence, and a change to the actor's own
    licence (their own name they may correct).
    """
    if not user.is_staff:
        raise AccountError(_("Account #%(id)d is a records requester's account; it has no staff name or "
                             "licence.", id=user.id))
    name = require_display_name(display_name)
    kind, number, state = clean_licence(licence_type, licence_number, licence_state)
    wanted = {"display_name": name, "licence_type": kind, "licence_number": number, "licence_state": state}
    changed = [field for field, value in wanted.items() if (getattr(user, field) or None) != value]
    if not changed:
        return []
    # A licence lets its holder make decisions only a licensed professional may make: someone
    # else records it (and checks it with the licensing board), never its holder.
    if _is_self(user, actor) and any(field.startswith("licence_") for field in changed):
        raise IdentityError(_("Another administrator records your own licence, after checking it with the "
                              "licensing board."), "licence_type")
    for field in changed:
        setattr(user, field, wanted[field])
    db.session.flush()
    record("user.identity_changed", actor=actor, object_type="user", object_id=user.id,
           details={"fields": changed})
    return changed


# --- accounts ----------------------------------------------------------------------------------

def create_user(email: str, role: Role | str | Iterable[Role | str], password: str, actor: Any = None,
                verified: bool = True, display_name: str | None = None) -> User:
    """Create an active account with a strength-checked password (argon2id hash).

    ``role`` is one role or several (a staff member may hold several; a requester only
    ``requester``). Staff need a display name. Accounts an administrator creates count as
    verified; self-registration passes ``verified=False`` and the owner confirms the address by a link.
    """
    roles = check_role_set(parse_roles(role))
    staff = any(r.is_staff for r in roles)
    name = require_display_name(display_name) if staff else None
    email = email.strip()
    problems = password_problems(password, email)
    if problems:
        raise AccountError(" ".join(problems))
    if find_by_email(email) is not None:
        raise AccountError("an account with this e-mail address already exists")
    now = utcnow()
    user = User(email=email, email_index=email_index(email), roles=roles, display_name=name,
                password_hash=hash_password(password), password_changed_at=now,
                email_verified_at=now if verified else None)
    db.session.add(user)
    db.session.flush()
    record("user.created", actor=actor, object_type="user", object_id=user.id,
           details={"roles": role_values(roles)})
    return user


def _admin_ids() -> Any:
    return select(UserRole.user_id).where(UserRole.role == Role.ADMIN)


def _lock_admins_and(user: User) -> list[User]:
    """Reload ``user`` and every active administrator, locked until the transaction ends, and
    return the active administrators.

    PostgreSQL: ``SELECT ... FOR UPDATE`` in id order. A second transaction removing an admin
    waits here until the first commits. Which of the locked accounts are admins is then read by
    a statement of its own, after the locks are held, so it sees what the first transaction
    committed (a subquery of the locking statement would still see the roles as they were when
    that statement began). Locking the target with the admins, always in id order, means two
    such transactions queue instead of deadlocking. An admin promoted meanwhile may be missed,
    which only errs towards refusing. SQLite ignores FOR UPDATE, but every transaction there
    begins with ``BEGIN IMMEDIATE`` (intake/database.py), so writers already run one at a time.
    ``populate_existing`` refreshes objects this session loaded earlier (the target, the actor).
    """
    rows = db.session.execute(
        select(User)
        .where(or_(and_(User.id.in_(_admin_ids()), User.active.is_(True)), User.id == user.id))
        .order_by(User.id)
        .with_for_update(of=User)
        .execution_options(populate_existing=True)
    ).scalars().all()
    ids = [u.id for u in rows]
    admin_ids = set(db.session.execute(
        select(UserRole.user_id).where(UserRole.role == Role.ADMIN, UserRole.user_id.in_(ids))).scalars())
    # The target's roles as committed now, for the rules that follow.
    db.session.refresh(user, ["role_rows"])
    return [u for u in rows if u.id in admin_ids and u.active]


def _refuse_removing_last_admin(user: User, admins: list[User]) -> None:
    if any(a.id == user.id for a in admins) and not any(a.id != user.id for a in admins):
        raise AccountError(_("Account #%(id)d is the last active administrator. Make another account an "
                             "administrator first, so someone can still manage the accounts.", id=user.id))


def _is_self(user: User, actor: Any) -> bool:
    return actor is not None and getattr(actor, "id", None) == user.id


def set_roles(user: User, roles: Iterable[Role | str], actor: Any) -> tuple[list[Role], list[Role]]:
    """Give a staff account exactly ``roles`` (one or several staff roles); its sessions end so
    the new permissions apply at once (the holder signs in again). Returns (added, removed).

    Refused (``AccountError``, nothing changed): no role, ``requester`` or an unknown role, a
    requester's account (former patients never become staff, nor staff requesters), the actor's
    own account, the roles it already has, and taking ``admin`` from the last active
    administrator. Audited as ``user.roles_changed`` with the roles before and after.
    """
    # A requester's role never changes, so this needs no lock; it comes first so that the refusal
    # names the real reason whatever roles were asked for.
    if not user.is_staff:
        raise AccountError(_("Account #%(id)d is a records requester's account; its roles cannot change.",
                             id=user.id))
    new_roles = role_order(parse_roles(roles))
    if not new_roles:
        raise AccountError(_("Choose at least one role."))
    if any(not role.is_staff for role in new_roles):
        raise AccountError(_("Choose staff roles only. Records requesters create their own accounts."))
    admins = _lock_admins_and(user)
    if _is_self(user, actor):
        raise AccountError(_("You cannot change your own roles. Ask another administrator."))
    old_roles = user.ordered_roles
    if old_roles == new_roles:
        raise AccountError(_("Account #%(id)d already has these roles; nothing changed.", id=user.id))
    if Role.ADMIN not in new_roles:
        _refuse_removing_last_admin(user, admins)
    added = [r for r in new_roles if r not in old_roles]
    removed = [r for r in old_roles if r not in new_roles]
    user.roles = new_roles
    end_all_sessions(user)
    db.session.flush()
    record("user.roles_changed", actor=actor, object_type="user", object_id=user.id,
           details={"from": role_values(old_roles), "to": role_values(new_roles)})
    return added, removed


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


def _active_admins_query() -> Any:
    return select(User).where(User.id.in_(_admin_ids()), User.active.is_(True))


def count_active_admins() -> int:
    return db.session.execute(
        select(func.count()).select_from(UserRole).join(User, User.id == UserRole.user_id)
        .where(UserRole.role == Role.ADMIN, User.active.is_(True))
    ).scalar_one()


def another_active_admin(user: User) -> bool:
    """Whether an active administrator other than ``user`` exists (one indexed row, no count)."""
    return db.session.execute(
        select(UserRole.user_id).join(User, User.id == UserRole.user_id)
        .where(UserRole.role == Role.ADMIN, User.active.is_(True), User.id != user.id).limit(1)
    ).first() is not None


def active_admins(limit: int = 20) -> list[User]:
    """The active administrators who can sign in (invitation accepted), by name: who to ask for
    a role. ``limit`` bounds the query."""
    query = _active_admins_query().where(User.password_hash.is_not(None)).order_by(User.id).limit(limit)
    return sorted(db.session.execute(query).scalars(), key=lambda user: user.name.lower())


def _staff_query(columns: Iterable[Any], active_only: bool, limit: int, roles: Iterable[Role] | None) -> Any:
    wanted = [r for r in (roles if roles is not None else STAFF_ROLES)]
    # From the roles to the accounts (``ix_user_roles_role_user_id``): a few staff rows, however many
    # requesters have accounts (an EXISTS per account read every requester's: 2 ms at 2,000; make profile).
    holds = User.id.in_(select(UserRole.user_id).where(UserRole.role.in_(wanted)))
    query = select(*columns).where(holds).order_by(User.id).limit(limit)
    if active_only:
        query = query.where(User.active.is_(True))
    return query


@functools.lru_cache(maxsize=64)
def _staff_people_query(active_only: bool, limit: int, roles: tuple[Role, ...] | None) -> Any:
    """Built once per set of arguments: building costs about what running does (make profile)."""
    return _staff_query(_PERSON_COLUMNS, active_only, limit, roles)


def staff_accounts(active_only: bool = True, limit: int = 500, roles: Iterable[Role] | None = None) -> list[User]:
    """Staff accounts (holding any staff role, or any of ``roles`` when given), sorted by name
    (decrypted, so sorted here, not in SQL).

    The staff of a helpline is small; ``limit`` bounds the query all the same.
    """
    query = _staff_query([User], active_only, limit, roles)
    return sorted(db.session.execute(query).scalars(), key=lambda user: user.name.lower())


@dataclass(frozen=True)
class Person:
    """How pages name an account: its id, its name (display name, else address) and its address."""

    id: int
    name: str
    email: str


_PERSON_COLUMNS = (User.id, User.uid, User.email, User.display_name)
_PEOPLE_BY_ID = select(*_PERSON_COLUMNS).where(User.id.in_(bindparam("ids", expanding=True)))


# Staff names and addresses already opened, by their sealed text (a new name or key is a new entry):
# the staff lists of the list pages' filters opened a dozen envelopes on every view (make profile).
# Only staff accounts' are kept (``staff_people``), never a requester's.
_OPENED_STAFF: dict[tuple[str, str], str] = {}
_OPENED_STAFF_MAX = 4096


def _open(ring: Any, sealed: Any, aad: str, keep: bool) -> str:
    if not keep:
        return str(ring.open(sealed, aad))
    key = (str(sealed), aad)
    text = _OPENED_STAFF.get(key)
    if text is None:
        if len(_OPENED_STAFF) >= _OPENED_STAFF_MAX:
            _OPENED_STAFF.clear()
        text = _OPENED_STAFF[key] = str(ring.open(sealed, aad))
    return text


def _people(query: Any, params: dict[str, Any] | None = None, keep: bool = False) -> list[Person]:
    """``query`` selects ``_PERSON_COLUMNS``: only the two columns a name needs are opened, and no
    account is loaded whole (its roles, its other encrypted columns), as a list page needs. Plain
    columns, so the statement runs on the session's connection, without the ORM's machinery for
    entities (half the query's time; make profile). ``keep``: staff only (``_OPENED_STAFF``)."""
    ring = keyring()
    found = []
    table = User.__tablename__
    for row in db.session.connection().execute(query, params):
        email = _open(ring, row.email, aad_for(table, "email", row.uid), keep)
        name = _open(ring, row.display_name, aad_for(table, "display_name", row.uid), keep) \
            if row.display_name is not None else None
        found.append(Person(row.id, name or email, email))
    return found


def staff_people(active_only: bool = True, limit: int = 500, roles: Iterable[Role] | None = None) -> list[Person]:
    """The accounts of ``staff_accounts`` as ``Person`` (id, name, address), sorted by name."""
    wanted = tuple(roles) if roles is not None else None
    return sorted(_people(_staff_people_query(active_only, limit, wanted), keep=True),
                  key=lambda person: person.name.lower())


def people_by_id(user_ids: Iterable[int | None]) -> dict[int, Person]:
    """The given accounts as ``Person``, in one query."""
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return {person.id: person for person in _people(_PEOPLE_BY_ID, {"ids": ids})}


def emails_by_id(user_ids: Iterable[int | None]) -> dict[int, str]:
    """E-mail addresses (decrypted) of the given accounts, in one query."""
    return {user_id: person.email for user_id, person in people_by_id(user_ids).items()}


def names_by_id(user_ids: Iterable[int | None]) -> dict[int, str]:
    """How pages name the given accounts (display name, else e-mail address), in one query."""
    return {user_id: person.name for user_id, person in people_by_id(user_ids).items()}


def users_by_id(user_ids: Iterable[int | None]) -> dict[int, User]:
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    users = db.session.execute(select(User).where(User.id.in_(ids))).scalars().all()
    return {user.id: user for user in users}
