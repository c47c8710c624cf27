"""Opaque keyset cursors: a page's last row as ``(sort key, id)`` in a URL-safe token.

Lists page by keyset ("strictly after the last row shown"), never by offset, so a page costs
the same at row ten and at row ten million. The token is only encoded, not signed: it names a
position in a list the viewer may read anyway, and anything malformed is refused here.
"""

from __future__ import annotations

import base64
import binascii
import re

MAX_ID = 2**31 - 1
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
