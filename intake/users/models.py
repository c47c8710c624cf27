"""The User model, its roles (a membership table: one person may hold several) and staff identity."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from intake.db_types import UTCDateTime, coded_enum, utcnow
from intake.extensions import Model
from intake.security.crypto import EncryptedText, new_uid


class Role(StrEnum):
    """The roles, in the order that decides where a person holding several lands after signing in
    (``intake.permissions.landing_endpoint``) and how their roles are listed."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    RECORDS_CLERK = "records_clerk"
    PRIVACY_OFFICER = "privacy_officer"
    ADMIN = "admin"
    REQUESTER = "requester"

    @property
    def is_staff(self) -> bool:
        return self is not Role.REQUESTER


STAFF_ROLES: tuple[Role, ...] = tuple(role for role in Role if role.is_staff)


class LicenceType(StrEnum):
    """Professional licences a staff member may hold (the records-law rules ask for a licensed
    professional in some decisions: 45 CFR 164.524(a)(3), California H&S 123115(b))."""

    MD = "MD"  # physician
    DO = "DO"  # osteopathic physician
    PSYD = "PsyD"  # psychologist
    PHD = "PhD"  # psychologist (licensed)
    LCSW = "LCSW"  # licensed clinical social worker
    LMFT = "LMFT"  # licensed marriage and family therapist
    LPCC = "LPCC"  # licensed professional clinical counselor
    RN = "RN"  # registered nurse
    NP = "NP"  # nurse practitioner
    OTHER = "other"


def role_order(roles: Iterable[Role]) -> list[Role]:
    """``roles`` in the order of the ``Role`` enum (landing order), without repeats."""
    wanted = set(roles)
    return [role for role in Role if role in wanted]


class UserRole(Model):
    """One role one account holds. A person may hold several; a requester's account holds only
    ``requester`` (former patients never become staff, nor staff requesters)."""

    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[Role] = mapped_column(coded_enum(Role, "role", length=16), primary_key=True)

    # "Every active admin", "everyone who works the records queue": by role, then account.
    __table_args__ = (Index("ix_user_roles_role_user_id", "role", "user_id"),)

    def __repr__(self) -> str:
        return f"<UserRole {self.user_id} {self.role}>"


class User(UserMixin, Model):
    """An account. The e-mail address is encrypted; ``email_index`` finds it (case-insensitive)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    email: Mapped[str] = mapped_column(EncryptedText)
    email_index: Mapped[str] = mapped_column(String(64), unique=True)
    # Staff identity: the name colleagues and the audit trail know them by (encrypted like the
    # address), and a professional licence where they hold one (a public register entry).
    display_name: Mapped[str | None] = mapped_column(EncryptedText)
    licence_type: Mapped[LicenceType | None] = mapped_column(coded_enum(LicenceType, "licence_type", length=8))
    licence_number: Mapped[str | None] = mapped_column(String(20))
    licence_state: Mapped[str | None] = mapped_column(String(2))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped to end every session of the user at once (logout, disable, password change).
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The sign-in before the current one, shown to the user so a stranger's use stands out.
    previous_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the owner proved they read mail at this address (link, invitation, or an admin).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The language the owner chose ("en", "es"; intake/i18n.py): pages, e-mails and letters follow it,
    # also when a CLI job writes to them. None: no choice yet (pages follow the browser).
    locale: Mapped[str | None] = mapped_column(String(8))

    # TOTP: the secret (encrypted), when enrolment was confirmed, and the last time step
    # accepted, so a code works once.
    mfa_secret: Mapped[str | None] = mapped_column(EncryptedText)
    mfa_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mfa_last_step: Mapped[int | None] = mapped_column(Integer)

    # Lockout: consecutive failures, the lock's end, and how many locks since the last success
    # (each lock lasts longer than the one before).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)

    # The roles, loaded with the user: in one statement by the session's user loader (a join),
    # in one more statement per batch of users elsewhere ("selectin"), never one per user.
    role_rows: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin", order_by=UserRole.role
    )
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )

    def get_id(self) -> str:
        # Flask-Login stores this in the session; the version makes old cookies worthless.
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # Flask-Login
        return bool(self.active)

    @property
    def roles(self) -> frozenset[Role]:
        """Every role this account holds."""
        return frozenset(Role(row.role) for row in self.role_rows)

    @roles.setter
    def roles(self, wanted: Iterable[Role | str]) -> None:
        """Hold exactly ``wanted``: rows of roles no longer held go, new ones are added. The rules
        (who may change whose roles, the last administrator) are ``intake.users.services``'."""
        target = {Role(role) for role in wanted}
        self.role_rows[:] = [row for row in self.role_rows if Role(row.role) in target]
        held = {Role(row.role) for row in self.role_rows}
        self.role_rows.extend(UserRole(role=role) for role in role_order(target - held))

    @property
    def ordered_roles(self) -> list[Role]:
        """The roles in the ``Role`` enum's order (for pages and messages)."""
        return role_order(self.roles)

    def has_role(self, *roles: Role | str) -> bool:
        """Whether this account holds any of ``roles``."""
        held = self.roles
        return any(Role(role) in held for role in roles)

    @property
    def is_staff(self) -> bool:
        return any(role.is_staff for role in self.roles)

    @property
    def name(self) -> str:
        """How pages name this person: the display name, else the e-mail address."""
        return str(self.display_name or self.email)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def mfa_enrolled(self) -> bool:
        # The secret is set before enrolment is confirmed and both are cleared together (intake/auth/mfa.py),
        # so the date alone answers: reading the secret would load and decrypt it on every page that asks.
        return self.mfa_enrolled_at is not None

    def __repr__(self) -> str:  # never the e-mail address
        rows = self.__dict__.get("role_rows") or []  # never a database query from a repr
        return f"<User {self.id} {','.join(sorted(str(row.role) for row in rows))}>"


class RecoveryCode(Model):
    """A one-time MFA recovery code, stored as a keyed hash; ``used_at`` spends it."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="recovery_codes")
