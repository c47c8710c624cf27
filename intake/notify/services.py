"""Queueing e-mail. The sender lives in ``intake.notify.sender``."""

from __future__ import annotations

import secrets

from flask import current_app

from intake.extensions import db
from intake.notify.models import OutboxMessage


def queue_email(recipient: str, kind: str, subject: str, body: str) -> OutboxMessage:
    """Add a message to the outbox in the caller's transaction (flushed, not committed).

    It goes out only if the caller commits, and then exactly once. ``subject`` and ``body`` must
    never contain health information or a name: say "sign in to read it" instead.
    """
    domain = current_app.config.get("MAIL_MESSAGE_ID_DOMAIN") or "intake.invalid"
    message = OutboxMessage(
        kind=kind,
        recipient=recipient,
        subject=subject,
        body=body,
        message_id=f"<{secrets.token_hex(16)}@{domain}>",
    )
    db.session.add(message)
    db.session.flush()
    return message


def public_url(endpoint: str, **values: object) -> str:
    """Absolute link for an e-mail: ``PUBLIC_BASE_URL`` followed by the endpoint's path.

    Built from the URL map, not from the request, so it works outside a request (CLI, tests)
    and never trusts the Host header. ``PUBLIC_BASE_URL`` includes any path prefix the site is
    served under.
    """
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path
