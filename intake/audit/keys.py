"""The audit trail's keys (``AUDIT_KEYS``): HMACs that only the app's hosts can compute.

``AUDIT_KEYS`` is a list like ``DATA_KEYS``: ``kid:base64key,kid:base64key``, the newest first.
The first key links new events, signs checkpoints and anchors; every key listed verifies what it
signed. Each master key is split into three keys with HMAC-SHA256 and a fixed label, so a link
can never be passed off as a checkpoint or an anchor signature, and the other way round.

The database holds key ids, never keys: whoever can write rows but does not have the key cannot
make a link, a checkpoint or an anchor that verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from flask import current_app

from intake.security.crypto import KeyConfigError, parse_keys

LINK, CHECKPOINT, ANCHOR = "link", "checkpoint", "anchor"
_LABELS = {LINK: b"intake.audit.link.v1", CHECKPOINT: b"intake.audit.checkpoint.v1", ANCHOR: b"intake.audit.anchor.v1"}


class UnknownAuditKey(KeyConfigError):
    """A row names a key id that ``AUDIT_KEYS`` does not list."""


@dataclass(frozen=True)
class AuditKeys:
    """The derived keys of every configured master key, in the configured order (newest first)."""

    order: tuple[str, ...]
    _keys: dict[tuple[str, str], bytes]

    @classmethod
    def parse(cls, spec: str) -> AuditKeys:
        parsed = parse_keys(spec)
        keys = {(kid, use): hmac.new(raw, label, hashlib.sha256).digest()
                for kid, raw in parsed for use, label in _LABELS.items()}
        return cls(tuple(kid for kid, _raw in parsed), keys)

    @property
    def active(self) -> str:
        return self.order[0]

    def rank(self, kid: str) -> int:
        """0 for the newest key, 1 for the one before it …; raises ``UnknownAuditKey``."""
        try:
            return self.order.index(kid)
        except ValueError:
            raise UnknownAuditKey(f"key id {kid!r} is not in AUDIT_KEYS") from None

    def mac(self, use: str, kid: str, message: bytes) -> str:
        """HMAC-SHA256 (hex) of ``message`` under key ``kid``'s key for ``use``."""
        key = self._keys.get((kid, use))
        if key is None:
            raise UnknownAuditKey(f"key id {kid!r} is not in AUDIT_KEYS")
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def check(self, use: str, kid: str, message: bytes, expected: str) -> bool:
        """True when ``expected`` is the MAC of ``message`` (constant-time); False for an unknown key id."""
        try:
            return hmac.compare_digest(self.mac(use, kid, message), expected or "")
        except UnknownAuditKey:
            return False


def audit_keys() -> AuditKeys:
    return current_app.extensions["intake_audit_keys"]
