"""The User model."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import Boolean, Enum, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

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

    def get_id(self) -> str:
        # Flask-Login stores this in the session; the version makes old cookies worthless.
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # Flask-Login
        return bool(self.active)

    @property
    def is_staff(self) -> bool:
        return Role(self.role).is_staff

    def __repr__(self) -> str:  # never the e-mail address
        return f"<User {self.id} {self.role}>"
