"""Anchors: the chain's head, signed with the audit key and kept outside the database.

Someone who can delete rows could cut off the newest events and leave a chain that still links.
The anchor is what shows it: every retention purge and the daily ``flask audit verify --anchor``
append the head (its seq and hash, with the time) as one signed JSON line to ``AUDIT_ANCHOR_PATH``
(default ``instance/audit-anchors.jsonl``, mode 0600), and e-mail it to ``PRIVACY_OFFICER_EMAIL``
when that is set. ``flask audit verify`` then fails when the trail ends before the last anchored
event or that event no longer has the anchored hash. The file lives on the app's host: the
database's users cannot write it, and without the key nobody can write a line that verifies.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from intake.audit.keys import ANCHOR, audit_keys
from intake.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.mail import send_mail

MAIL_ANCHOR = "audit_anchor"


class AnchorError(ValueError):
    """The anchor file cannot be read or its last line is not signed with the audit key."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: datetime
    reason: str  # "purge", "verify", "restore"
    key_id: str
    signature: str = ""

    def content(self) -> bytes:
        body = {"seq": self.seq, "hash": self.hash, "at": self.at.isoformat(timespec="seconds"),
                "reason": self.reason, "kid": self.key_id}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def line(self) -> str:
        body = json.loads(self.content())
        body["sig"] = self.signature
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


def anchor_path() -> Path:
    return Path(current_app.config["AUDIT_ANCHOR_PATH"])


def head() -> tuple[int, str]:
    """The newest event's seq and hash (after a purge that left none: the checkpoint's)."""
    row = db.session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    if row is None:
        row = db.session.execute(select(AuditCheckpoint.through_seq, AuditCheckpoint.through_hash)
                                 .order_by(AuditCheckpoint.through_seq.desc()).limit(1)).first()
    return (row[0], row[1]) if row is not None else (0, GENESIS_HASH)


def parse_line(line: str) -> Anchor:
    """One line of the anchor file, checked against the audit keys; raises ``AnchorError``."""
    try:
        body = json.loads(line)
        anchor = Anchor(seq=int(body["seq"]), hash=str(body["hash"]), at=datetime.fromisoformat(body["at"]),
                        reason=str(body["reason"]), key_id=str(body["kid"]), signature=str(body["sig"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise AnchorError("the last line of the anchor file cannot be read") from exc
    if not audit_keys().check(ANCHOR, anchor.key_id, anchor.content(), anchor.signature):
        raise AnchorError("the last line of the anchor file is not signed with the audit key")
    return anchor


def last_anchor(path: Path | None = None) -> Anchor | None:
    """The newest anchor, or None when none was written yet; raises ``AnchorError``."""
    path = path or anchor_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorError(f"the anchor file cannot be read ({type(exc).__name__})") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    return parse_line(lines[-1]) if lines else None


def write_anchor(reason: str) -> Anchor:
    """Sign the current head and append it to the anchor file (and, when ``PRIVACY_OFFICER_EMAIL``
    is set, queue it to the privacy officer; the caller commits). Call it after the events it
    should cover are committed: an anchor of an event that was rolled back would fail every check."""
    keys = audit_keys()
    seq, hash_ = head()
    unsigned = Anchor(seq=seq, hash=hash_, at=utcnow().replace(microsecond=0), reason=reason, key_id=keys.active)
    anchor = Anchor(**{**unsigned.__dict__, "signature": keys.mac(ANCHOR, keys.active, unsigned.content())})
    path = anchor_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (anchor.line() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    officer = current_app.config.get("PRIVACY_OFFICER_EMAIL")
    if officer:
        send_mail("audit_anchor", officer, kind=MAIL_ANCHOR, seq=anchor.seq, line=anchor.line())
    return anchor
