"""The User model."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from intake.db_types import UTCDateTime, utcnow
from intake.extensions import db
from intake.security.crypto import EncryptedText, new_uid


class Role(StrEnum):
    OPERATOR = "operator"
    ADMIN = "admin"
    REQUESTER = "requester"

    @property
    def is_staff(self) -> bool:
        return self in (Role.OPERATOR, Role.ADMIN)


class User(UserMixin, db.Model):
    """An account. The e-mail address is encrypted; ``email_index`` finds it (case-insensitive)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    email: Mapped[str] = mapped_column(EncryptedText)
    email_index: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, create_constraint=True, name="role",
             values_callable=lambda roles: [r.value for r in roles], validate_strings=True)
    )
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

    # The admin's staff list filters on role and pages by id.
    __table_args__ = (Index("ix_users_role_id", "role", "id"),)

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
    def is_staff(self) -> bool:
        return Role(self.role).is_staff

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def mfa_enrolled(self) -> bool:
        return self.mfa_enrolled_at is not None and self.mfa_secret is not None

    def __repr__(self) -> str:  # never the e-mail address
        return f"<User {self.id} {self.role}>"


class RecoveryCode(db.Model):
    """A one-time MFA recovery code, stored as a keyed hash; ``used_at`` spends it."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="recovery_codes")
