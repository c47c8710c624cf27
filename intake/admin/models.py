"""Admin-owned data: the public site's notices, the retention policies and the dashboard's kept counts.

A ``SiteNotice`` is public text, so it is stored in clear. Its body is the admin's text after
``nh3`` reduced it to a small set of formatting tags; it is cleaned again when shown, so a row
written some other way cannot carry script onto a public page.

``RetentionPolicy`` holds one row per kind of data: how many days it is kept and whether a legal
hold stops every purge of it (a kind without a row uses the default in ``intake.admin.retention``).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from intake.db_types import UTCDateTime, coded_enum, utcnow
from intake.extensions import Model
from intake.security.crypto import EncryptedText, new_uid


class NoticeKind(StrEnum):
    CLOSURE = "closure"  # the facility is closed / not accepting patients
    SAFETY = "safety"  # e.g. a COVID-19 or wildfire-smoke notice
    INFORMATION = "information"  # office hours, a phone line change


class SiteNotice(Model):
    __tablename__ = "site_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[NoticeKind] = mapped_column(coded_enum(NoticeKind, "notice_kind", 16))
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)  # cleaned HTML (nh3), at most a few thousand characters
    # Spanish text, shown to visitors reading in Spanish; the English text when left empty.
    title_es: Mapped[str | None] = mapped_column(String(120))
    body_es: Mapped[str | None] = mapped_column(Text)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)  # shown through this day; open-ended when empty
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # The public pages ask for the notices current today.
    __table_args__ = (Index("ix_site_notices_current", "starts_on", "ends_on"),)

    def __repr__(self) -> str:
        return f"<SiteNotice {self.id} {self.kind}>"


class DataKind(StrEnum):
    CALL_TEXT = "call_text"  # a call's free text and contact details: stripped
    CALL_RECORD = "call_record"  # the call itself, with its coded fields: deleted
    RELEASED_DOCUMENT = "released_document"  # bytes of copies released to requesters: deleted
    AUDIT_EVENT = "audit_event"  # the audit trail (at least six years): oldest events deleted


class RetentionPolicy(Model):
    __tablename__ = "retention_policies"

    kind: Mapped[DataKind] = mapped_column(coded_enum(DataKind, "data_kind", 24), primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)  # binds the encrypted reason
    keep_days: Mapped[int] = mapped_column(Integer)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_reason: Mapped[str | None] = mapped_column(EncryptedText)  # may name a lawsuit or a party
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<RetentionPolicy {self.kind} {self.keep_days}d hold={self.legal_hold}>"


class DashboardHour(Model):
    """One kept count of the dashboard: finalized calls that started in ``hour`` (UTC, on the
    hour) counted under ``figure`` ("type", "risk", "substance" or "referral") and ``code``
    (a call type, a risk level, a substance, or "<resource kind>/<referral status>"); and the
    kept facility days' sums, figures starting with "day:" (the records requests' figures among them).
    Coded values only, like the page itself (intake/admin/dashboard_cache.py)."""

    __tablename__ = "dashboard_call_hours"

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    figure: Mapped[str] = mapped_column(String(16), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class DashboardHourReady(Model):
    """An hour whose counts are all in ``dashboard_call_hours`` (an hour with no call has none)."""

    __tablename__ = "dashboard_hours_ready"

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
