"""Opaque keyset cursors: a page's last row as ``(sort key, id)`` in a URL-safe token.

Lists page by keyset ("strictly after the last row shown"), never by offset, so a page costs
the same at row ten and at row ten million. The token is only encoded, not signed: it names a
position in a list the viewer may read anyway, and anything malformed is refused here.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_ID = 2**31 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
_BODY_RE = re.compile(r"^(-?[0-9]{1,17})\.([0-9]{1,10})$")


class BadCursor(ValueError):
    """A cursor this app did not make."""


def encode_cursor(key: int, row_id: int) -> str:
    """The token for a row whose sort key (as an integer) is ``key``."""
    return base64.urlsafe_b64encode(f"{key}.{row_id}".encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> tuple[int, int]:
    """``(key, id)`` from a token; anything malformed raises ``BadCursor``."""
    if not _TOKEN_RE.match(text):
        raise BadCursor("shape")
    try:
        body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError) as exc:
        raise BadCursor("not base64") from exc
    match = _BODY_RE.match(body)
    if not match or int(match.group(2)) > MAX_ID:
        raise BadCursor("bad body")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class MomentCursor:
    """A position in a list sorted by a UTC timestamp, then id (the call list, the review queue):
    the timestamp travels as whole microseconds since 1970."""

    at: datetime
    id: int

    def encode(self) -> str:
        return encode_cursor((self.at - _EPOCH) // timedelta(microseconds=1), self.id)

    @classmethod
    def decode(cls, text: str) -> MomentCursor:
        """Parse an opaque cursor; anything malformed or outside the years 1900-2999 raises ``BadCursor``."""
        micros, row_id = decode_cursor(text)
        try:
            at = _EPOCH + timedelta(microseconds=micros)
        except OverflowError as exc:
            raise BadCursor("out of range") from exc
        if not 1900 <= at.year <= 2999:
            raise BadCursor("out of range")
        return cls(at, row_id)

