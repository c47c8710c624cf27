"""Archive patient index models.

One row per former patient whose records the facility holds. Everything that identifies the
patient is encrypted; two kinds of keyed blind index make exact lookups possible without
decrypting the table: ``mrn_index`` (the medical record number, unique: the import is idempotent
on it) and ``ArchiveMatchKey`` rows (normalized last name + date of birth, one per current or
former last name), which match a records request to its patient.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from intake.db_types import UTCDateTime, utcnow
from intake.extensions import Model
from intake.security.crypto import EncryptedText, new_uid

MRN_INDEX_PURPOSE = "archive-mrn"
MATCH_INDEX_PURPOSE = "archive-match"  # normalized last name + "|" + ISO date of birth


class ArchivedPatient(Model):
    __tablename__ = "archived_patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    mrn: Mapped[str] = mapped_column(EncryptedText)
    mrn_index: Mapped[str] = mapped_column(String(64), unique=True)
    last_name: Mapped[str] = mapped_column(EncryptedText)
    first_name: Mapped[str] = mapped_column(EncryptedText)
    former_names: Mapped[str | None] = mapped_column(EncryptedText)  # "Last, First; Last, First"
    dob: Mapped[str] = mapped_column(EncryptedText)  # ISO date
    admitted_on: Mapped[str | None] = mapped_column(EncryptedText)  # ISO date
    discharged_on: Mapped[str | None] = mapped_column(EncryptedText)  # ISO date
    record_location: Mapped[str | None] = mapped_column(EncryptedText)  # box, shelf, system
    custodian: Mapped[str | None] = mapped_column(EncryptedText)  # who holds the record
    retention_until: Mapped[date | None] = mapped_column(Date)  # "keep until", as typed (never below the floor)
    # The earliest lawful destruction date (``services.retention_floor``: H&S 123145 from discharge and
    # date of birth, six years after the last disclosure or request about the patient). Computed,
    # never typed; None until computed, and a record without one is never offered for destruction.
    retention_floor: Mapped[date | None] = mapped_column(Date)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)  # a hold always wins over any date
    hold_reason: Mapped[str | None] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    match_keys: Mapped[list[ArchiveMatchKey]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", passive_deletes=True, lazy="raise")

    __table_args__ = (Index("ix_archived_patients_retention", "retention_until", "id"),)


class ArchiveMatchKey(Model):
    """One blind index of (last name, date of birth) for a patient; a patient with former last
    names has one per name."""

    __tablename__ = "archive_match_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("archived_patients.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))

    patient: Mapped[ArchivedPatient] = relationship(back_populates="match_keys")

    __table_args__ = (
        UniqueConstraint("patient_id", "key"),
        Index("ix_archive_match_keys_key", "key", "patient_id"),
    )
