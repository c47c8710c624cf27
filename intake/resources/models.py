"""The Resource model: one program or service in the directory (public information, not PII)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from intake.db_types import UTCDateTime, coded_enum, utcnow
from intake.extensions import Model


class ResourceKind(StrEnum):
    DETOX = "detox"
    RESIDENTIAL = "residential"
    OUTPATIENT = "outpatient"
    DUAL_DIAGNOSIS = "dual_diagnosis"
    TAPER_SUPPORT = "taper_support"  # medication-assisted treatment / supervised benzodiazepine taper
    SUPPORT_GROUP = "support_group"
    CRISIS_LINE = "crisis_line"
    OTHER = "other"


class Resource(Model):
    __tablename__ = "resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ResourceKind] = mapped_column(coded_enum(ResourceKind, "resource_kind"), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    website: Mapped[str | None] = mapped_column(String(300))
    address: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(2))
    zip: Mapped[str | None] = mapped_column(String(5))
    hours: Mapped[str | None] = mapped_column(String(200))  # opening hours as the programme gives them
    # Codes from PAYERS, comma-separated ("medi_cal,private").
    payers: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    last_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


PAYERS = ("medi_cal", "medicare", "private", "tricare", "self_pay", "sliding_scale", "free")
