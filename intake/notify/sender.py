"""Delivering the outbox: claim a due message, send it over SMTP (or print it), record the outcome.

Every state change is its own committed transaction, so a crash at any point loses nothing:

1. ``claim_due`` moves a message from ``pending`` to ``sending`` with a conditional UPDATE
   (``WHERE id = :id AND status = 'pending'``) and commits before any SMTP traffic. Two senders
   running at once cannot both win: the loser's UPDATE matches no row. On PostgreSQL the
   candidates are read with ``SELECT … FOR UPDATE SKIP LOCKED``, so several senders (one per app
   server, say) each lock different rows and never queue behind one another's claim; the
   conditional UPDATE then always matches. SQLite has no row locks (and serialises writers with
   ``BEGIN IMMEDIATE`` anyway): there the compare-and-set alone decides.
2. ``deliver`` talks to the SMTP server. Nothing in the database changes meanwhile.
3. The outcome (``sent``; ``pending`` again with a later ``next_attempt_at``; or ``failed``) is
   committed at once.

The one unavoidable window: the server accepted the message and the sender died before step 3
committed. The row stays ``sending``; once its claim is older than ``OUTBOX_LEASE_SECONDS`` the
next sender takes it back and sends it again with the same Message-ID, which lets the receiving
side recognise the duplicate. Any other crash re-sends nothing that was accepted.

Nothing here writes the recipient, the subject or the body to a log or to ``last_error``: the
error is the exception's class and the SMTP reply code, never the server's reply text (servers
often quote the address back). The console "delivery" without MAIL_SERVER prints whole messages,
so it is for development only; production refuses it.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import click
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import and_, or_

from intake.database import affected_rows
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 60
BACKOFF_MAX_SECONDS = 3600
DEFAULT_PASS_LIMIT = 100

# Any control character (CR and LF above all) would let a value start a header of its own.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
# An RFC 3463 enhanced status code ("5.1.1") is safe to keep; the rest of a reply is not.
_ENHANCED_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


class DeliveryError(Exception):
    """One attempt failed. ``reason`` is safe to store: it never holds an address or content.

    ``permanent``: this message can never be delivered (bad address, refused with 5xx): fail now.
    ``server_down``: the server (or our configuration of it) is the problem, not the message:
    retry this one later and stop the pass, since the next message would fail the same way.
    """

    def __init__(self, reason: str, *, permanent: bool = False, server_down: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent
        self.server_down = server_down


class MailNotConfigured(RuntimeError):
    """Production without MAIL_SERVER: printing would put sign-in links into service logs."""


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed

    def __str__(self) -> str:
        return f"sent {self.sent}, retried {self.retried}, failed {self.failed}"


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: 1, 2, 4, ... minutes, at most an hour."""
    exponent = min(max(attempts - 1, 0), 20)  # 2**20 minutes is far past the cap already
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2**exponent, BACKOFF_MAX_SECONDS))


# --- claiming --------------------------------------------------------------------------------

def claim_due(limit: int = 1, now: datetime | None = None) -> list[int]:
    """Claim up to ``limit`` due messages for this sender and commit; return their ids.

    Due: ``pending`` with ``next_attempt_at <= now``, or ``sending`` with a claim older than
    ``OUTBOX_LEASE_SECONDS`` (its sender died; the dead attempt is counted, and a message that
    has used up its attempts that way goes to ``failed`` instead of being claimed).
    """
    now = now or utcnow()
    stale_before = now - timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])
    max_attempts = current_app.config["OUTBOX_MAX_ATTEMPTS"]
    locks_rows = db.session.get_bind().dialect.name == "postgresql"
    claimed: list[int] = []
    while len(claimed) < limit:
        query = (
            db.select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.claimed_at, OutboxMessage.attempts)
            .where(or_(
                and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now),
                and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_at < stale_before),
            ))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit - len(claimed))
        )
        if locks_rows:
            # Rows another sender is claiming right now are skipped, not waited for; the locks
            # last until the commit below, when the claims are visible to everyone.
            query = query.with_for_update(skip_locked=True)
        candidates = db.session.execute(query).all()
        if not candidates:
            break
        # Every candidate leaves the WHERE above (claimed, failed, or taken by another sender),
        # so selecting again makes progress and ends.
        for row in candidates:
            if _try_claim(row.id, row.status, row.claimed_at, row.attempts, now, max_attempts):
                claimed.append(row.id)
    db.session.commit()
    return claimed


def _try_claim(message_id: int, status: OutboxStatus, claimed_at: datetime | None, attempts: int,
               now: datetime, max_attempts: int) -> bool:
    """Compare-and-set one row from what we read to ``sending``; False if someone got there first."""
    if status == OutboxStatus.PENDING:
        guard = [OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now]
        return _update(message_id, guard, status=OutboxStatus.SENDING, claimed_at=now) == 1
    # A stale claim: compare on claimed_at too, so two senders cannot both take it over.
    guard = [OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_at == claimed_at]
    error = "sender stopped during an attempt (lease expired)"
    if attempts + 1 >= max_attempts:
        if _update(message_id, guard, status=OutboxStatus.FAILED, attempts=attempts + 1, claimed_at=None,
                   last_error=error) == 1:
            log.warning("outbox message %s failed: its sender stopped during the last attempt", message_id)
        return False
    if _update(message_id, guard, claimed_at=now, attempts=attempts + 1, last_error=error) != 1:
        return False
    log.warning("outbox message %s: its sender stopped during an attempt; sending again", message_id)
    return True


def _update(message_id: int, guard: list, **values) -> int:
    """A conditional UPDATE of unencrypted columns only; returns the number of rows changed."""
    statement = (
        db.update(OutboxMessage)
        .where(OutboxMessage.id == message_id, *guard)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(db.session.execute(statement))


# --- building and delivering -----------------------------------------------------------------

def build_email(message: OutboxMessage) -> tuple[EmailMessage, str, str]:
    """The e-mail for ``message``, its envelope sender and its envelope recipient.

    Raises a permanent ``DeliveryError`` for a value that must not become a header (a control
    character, an invalid address): no header is ever built from it.
    """
    sender_header = current_app.config["MAIL_DEFAULT_SENDER"] or ""
    envelope_from = parseaddr(sender_header)[1]
    if _CONTROL.search(sender_header) or "@" not in envelope_from:
        # Configuration, not this message: retry, so fixing the setting rescues the queue.
        raise DeliveryError("MAIL_DEFAULT_SENDER is not a valid address", server_down=True)
    recipient = message.recipient or ""
    if _CONTROL.search(recipient):
        raise DeliveryError("recipient contains a control character", permanent=True)
    try:
        valid = validate_email(recipient, check_deliverability=False)
    except EmailNotValidError:
        raise DeliveryError("recipient is not a valid address", permanent=True) from None
    to_address = valid.ascii_email or valid.normalized
    if _CONTROL.search(message.subject or ""):
        raise DeliveryError("subject contains a control character", permanent=True)
    if not _MESSAGE_ID.fullmatch(message.message_id or ""):
        raise DeliveryError("message id is malformed", permanent=True)

    email = EmailMessage()
    email["From"] = sender_header
    email["To"] = to_address
    email["Subject"] = message.subject
    email["Message-ID"] = message.message_id
    # When the message was ready to go (RFC 5322), so every retry is the identical message.
    email["Date"] = format_datetime(message.created_at)
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    email.set_content(message.body)
    return email, envelope_from, to_address


def deliver(message: OutboxMessage, echo: Callable[[str], None] | None = None) -> None:
    """Send one message; return on success, raise ``DeliveryError`` otherwise.

    Without MAIL_SERVER the message (headers and body) is printed through ``echo`` instead
    (``click.echo`` by default): development only, production refuses (``MailNotConfigured``).
    """
    config = current_app.config
    email, envelope_from, to_address = build_email(message)
    if not config.get("MAIL_SERVER"):
        if config.get("ENV_NAME") == "production":
            raise MailNotConfigured("MAIL_SERVER is not set; refusing to print e-mails in production")
        _print(email, echo or click.echo)
        return
    try:
        smtp_send(email, envelope_from, to_address)
    except DeliveryError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        # Our one recipient -> (code, reply); the address itself is the key and stays out.
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        raise _refusal("recipient refused", code, reply) from None
    except smtplib.SMTPDataError as exc:
        raise _refusal("message refused", exc.smtp_code, exc.smtp_error) from None
    except smtplib.SMTPResponseException as exc:
        # Greeting, HELO, AUTH, MAIL FROM: about the server or our settings, never this message.
        raise DeliveryError(_describe(type(exc).__name__, exc.smtp_code, exc.smtp_error), server_down=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        # Refused or dropped connections, timeouts, TLS failures, DNS.
        errno = getattr(exc, "errno", None)
        raise DeliveryError(type(exc).__name__ + (f" (errno {errno})" if errno else ""), server_down=True) from None


def smtp_send(email: EmailMessage, envelope_from: str, to_address: str) -> None:
    """One message over SMTP with the MAIL_* settings (STARTTLS required when set, never a fallback to clear)."""
    config = current_app.config
    host, port = config["MAIL_SERVER"], int(config["MAIL_PORT"])
    with smtplib.SMTP(host, port, timeout=config["MAIL_TIMEOUT_SECONDS"]) as smtp:
        smtp.ehlo()
        if config.get("MAIL_USE_STARTTLS"):
            if not smtp.has_extn("starttls"):
                # Never fall back to clear text: the body may hold a sign-in link.
                raise DeliveryError("STARTTLS required (MAIL_USE_STARTTLS) but not offered by the server",
                                    server_down=True)
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if config.get("MAIL_USERNAME"):
            if not smtp.has_extn("auth"):
                raise DeliveryError("MAIL_USERNAME is set but the server offers no AUTH", server_down=True)
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
        try:
            smtp.send_message(email, from_addr=envelope_from, to_addrs=[to_address])
        except smtplib.SMTPNotSupportedError:
            # Here it means: the address needs SMTPUTF8 and the server lacks it. (Elsewhere, as
            # from starttls() or login(), it is about the server and handled as such.)
            raise DeliveryError("SMTPNotSupportedError: the server cannot take this address (SMTPUTF8)",
                                permanent=True) from None


def _refusal(what: str, code: int, reply: bytes | str) -> DeliveryError:
    permanent = 500 <= code < 600
    return DeliveryError(_describe(what, code, reply) + (" (permanent)" if permanent else ""), permanent=permanent)


def _describe(what: str, code: int, reply: bytes | str) -> str:
    """``what: SMTP 550 5.1.1``: the codes only, since the reply text may quote the address."""
    text = reply.decode("ascii", "replace") if isinstance(reply, bytes) else str(reply)
    enhanced = _ENHANCED_CODE.match(text.strip())
    return f"{what}: SMTP {code}" + (f" {enhanced.group(0)}" if enhanced else "")


def _print(email: EmailMessage, echo: Callable[[str], None]) -> None:
    lines = [f"{name}: {value}" for name, value in email.items() if name != "Content-Transfer-Encoding"]
    echo("\n".join(["-" * 20 + " e-mail (MAIL_SERVER is not set) " + "-" * 20, *lines, "",
                    email.get_content().rstrip("\n"), "-" * 74]))


# --- one pass ---------------------------------------------------------------------------------

def send_due(limit: int = DEFAULT_PASS_LIMIT, echo: Callable[[str], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> SendReport:
    """Deliver due messages one by one (at most ``limit``) and return what happened.

    One message is claimed at a time, so the lease only has to cover one SMTP conversation.
    When the server is down or refuses our settings, the pass stops after the first failure:
    the other messages would fail the same way and keep their attempts for later.
    Raises ``MailNotConfigured`` (nothing changed) in production without MAIL_SERVER.
    """
    config = current_app.config
    if not config.get("MAIL_SERVER") and config.get("ENV_NAME") == "production":
        raise MailNotConfigured("MAIL_SERVER is not set; refusing to print e-mails in production")
    report = SendReport()
    for _ in range(limit):
        if should_stop is not None and should_stop():
            break
        claimed = claim_due(1)
        if not claimed:
            break
        outcome, server_down = _process(claimed[0], echo)
        if outcome is not None:
            setattr(report, outcome, getattr(report, outcome) + 1)
        if server_down:
            break
    return report


def _process(message_id: int, echo: Callable[[str], None] | None) -> tuple[str | None, bool]:
    """Attempt one claimed message and commit the outcome: ("sent"|"retried"|"failed"|None, stop)."""
    claim = db.session.execute(
        db.select(OutboxMessage.status, OutboxMessage.claimed_at, OutboxMessage.attempts)
        .where(OutboxMessage.id == message_id)
    ).one_or_none()
    if claim is None or claim.status != OutboxStatus.SENDING:
        db.session.rollback()
        return None, False
    attempts = claim.attempts + 1
    try:
        message = db.session.get_one(OutboxMessage, message_id, populate_existing=True)
        # End the transaction before talking to the server: on SQLite an open transaction holds
        # the write lock (BEGIN IMMEDIATE), and nobody should wait for a slow mail server.
        db.session.expunge(message)
        db.session.rollback()
        deliver(message, echo)
    except DeliveryError as exc:
        error = exc
    except MailNotConfigured:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug or an unreadable row must not stop the outbox
        error = DeliveryError(f"unexpected {type(exc).__name__}")
        log.error("outbox message %s: unexpected %s while sending", message_id, type(exc).__name__)
    else:
        # Delivered is the truth even if our claim was taken over meanwhile, so no claim guard.
        _update(message_id, [OutboxMessage.status != OutboxStatus.SENT], status=OutboxStatus.SENT,
                sent_at=utcnow(), attempts=attempts, claimed_at=None)
        db.session.commit()
        log.info("outbox message %s sent", message_id)
        return "sent", False

    db.session.rollback()
    give_up = error.permanent or attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]
    values = {"attempts": attempts, "last_error": error.reason, "claimed_at": None}
    if give_up:
        values["status"] = OutboxStatus.FAILED
    else:
        values.update(status=OutboxStatus.PENDING, next_attempt_at=utcnow() + backoff(attempts))
    # Only while the claim is still ours: a sender that took it over owns the outcome now.
    changed = _update(message_id, [OutboxMessage.status == OutboxStatus.SENDING,
                                   OutboxMessage.claimed_at == claim.claimed_at], **values)
    db.session.commit()
    if not changed:
        return None, error.server_down
    log.warning("outbox message %s %s after attempt %s: %s", message_id,
                "failed" if give_up else "will be retried", attempts, error.reason)
    return ("failed" if give_up else "retried"), error.server_down


# --- status -----------------------------------------------------------------------------------

@dataclass
class OutboxSummary:
    counts: dict[OutboxStatus, int]
    oldest_pending_created_at: datetime | None


def summarize() -> OutboxSummary:
    """How many messages are in each state, and when the oldest still pending one was queued."""
    rows = db.session.execute(
        db.select(OutboxMessage.status, db.func.count()).group_by(OutboxMessage.status)
    ).all()
    counts = {status: 0 for status in OutboxStatus}
    counts.update({OutboxStatus(status): n for status, n in rows})
    oldest = db.session.execute(
        db.select(db.func.min(OutboxMessage.created_at)).where(OutboxMessage.status == OutboxStatus.PENDING)
    ).scalar_one()
    db.session.rollback()
    return OutboxSummary(counts, oldest)
