"""Column types shared by every model."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Enum
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always returned timezone-aware (UTC).

    SQLite keeps no time zone, PostgreSQL's ``timestamp without time zone`` neither; storing UTC
    everywhere and attaching the zone on the way out gives one behaviour on both.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def coded_enum(enum: type[StrEnum], name: str, length: int = 32) -> Enum:
    """A portable enum column: VARCHAR plus a named CHECK constraint, storing the values."""
    return Enum(enum, native_enum=False, length=length, create_constraint=True, name=name,
                values_callable=lambda values: [v.value for v in values], validate_strings=True)
