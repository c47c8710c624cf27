"""Phone numbers: one normalisation for storing the blind index and for looking it up.

The intake form and the repeat-caller lookup must agree byte for byte, or a caller who rings
again is never found: both call ``normalise_phone`` and index the result under the purpose
``PHONE_INDEX_PURPOSE``.
"""

from __future__ import annotations

PHONE_INDEX_PURPOSE = "call.phone"
_ASCII_DIGITS = frozenset("0123456789")


def normalise_phone(text: str) -> str:
    """Only the ASCII digits of ``text``: "(805) 555-0142", "805.555.0142" and "+1 805 555 0142"
    all give "8055550142".

    A leading North American country code ("1" before ten digits) is dropped so the same line
    written with or without it matches. Other Unicode digits are ignored, never folded.
    """
    digits = "".join(ch for ch in text or "" if ch in _ASCII_DIGITS)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits


def mask_phone(text: str | None) -> str:
    """``•••-•••-1234``: the last four digits only, for pages shown before a reveal."""
    digits = normalise_phone(text or "")
    return "•••-•••-" + digits[-4:] if len(digits) >= 4 else "•••"


def display_phone(text: str | None) -> str:
    """A stored number as people read it: "(805) 555-0142" for ten digits, else as stored."""
    digits = normalise_phone(text or "")
    if len(digits) == 10:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return text or ""
