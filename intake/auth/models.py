"""The PasswordResetRequest model: a reset asked for at ``/reset``, waiting for the sender."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.db_types import UTCDateTime, utcnow
from intake.extensions import Model
from intake.security.crypto import EncryptedText, new_uid


class PasswordResetRequest(Model):
    """The address typed at ``/reset`` (encrypted), kept only until ``flask outbox send`` resolves it.

    ``/reset`` stores every request the same way, whatever the address, and does nothing else: no
    account is looked up while the visitor waits, so neither the answer nor its timing can tell
    whether the address has an account. The sender looks the address up, queues the link (or
    nothing) and deletes the row (``intake.auth.account_services.send_reset_links``).
    """

    __tablename__ = "password_reset_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    email: Mapped[str] = mapped_column(EncryptedText)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:  # never the address
        return f"<PasswordResetRequest {self.id}>"
