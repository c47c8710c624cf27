"""The outbox sender, delivering through a real SMTP server (aiosmtpd) on 127.0.0.1.

Servers: ``Recorder`` keeps what arrived; ``Refuser`` answers a given reply to RCPT or DATA;
"down" is a free port where nothing listens.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import signal
import socket
import threading
import time
from email import message_from_bytes
from email.policy import default as default_policy
from types import SimpleNamespace

import pytest
import time_machine
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from intake.extensions import db
from intake.notify.cli import outbox_cli
from intake.notify.models import OutboxMessage, OutboxStatus
from intake.notify.sender import _try_claim, backoff, claim_due, send_due
from intake.notify.services import queue_email

RECIPIENT = "someone@example.org"
SENDER = "records@example.org"
BODY = "Your request has an update. Sign in to read it: https://records.example.org/r/abc"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


# --- SMTP servers ------------------------------------------------------------------------------

class Recorder:
    """Accepts everything and keeps each message that arrived."""

    def __init__(self) -> None:
        self.messages: list[SimpleNamespace] = []
        self.rcpt_calls = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_calls += 1
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(SimpleNamespace(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            email=message_from_bytes(envelope.original_content, policy=default_policy),
            authenticated=session.authenticated,
            tls=session.ssl is not None,
        ))
        return "250 Message accepted for delivery"


class Refuser(Recorder):
    """Answers ``reply`` at ``stage`` (RCPT or DATA), as a server would that refuses."""

    def __init__(self, stage: str, reply: str) -> None:
        super().__init__()
        self.stage, self.reply = stage, reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.stage == "RCPT":
            self.rcpt_calls += 1
            return self.reply
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        if self.stage == "DATA":
            return self.reply
        return await super().handle_DATA(server, session, envelope)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def smtp(app):
    """``smtp(handler=None, **aiosmtpd_options)`` starts a server and points the app at it."""
    controllers = []

    def start(handler=None, starttls: bool = False, **options):
        handler = handler or Recorder()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_STARTTLS=starttls,
                          MAIL_DEFAULT_SENDER=SENDER, MAIL_TIMEOUT_SECONDS=5)
        return handler

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture()
def server_down(app):
    """Point the app at a port where nothing listens."""
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_USE_STARTTLS=False,
                      MAIL_DEFAULT_SENDER=SENDER, MAIL_TIMEOUT_SECONDS=5)


@pytest.fixture()
def cli(app, runner):
    if "outbox" not in app.cli.commands:
        app.cli.add_command(outbox_cli)
    return lambda *args: runner.invoke(args=["outbox", *args])


# --- helpers -----------------------------------------------------------------------------------

def queue(recipient: str = RECIPIENT, subject: str = "Your records request", body: str = BODY) -> int:
    """Queue one message and commit, as a service and its view would."""
    message_id = queue_email(recipient, "records_update", subject, body).id
    db.session.commit()  # reading message.id after this would open a transaction again
    return message_id


def fetch(message_id: int) -> OutboxMessage:
    """The row as stored now, detached, with no transaction left open (SQLite locks at BEGIN)."""
    db.session.rollback()
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    db.session.expunge(message)
    db.session.rollback()
    return message


def set_row(message_id: int, **values) -> None:
    db.session.execute(db.update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values))
    db.session.commit()


# --- delivery ----------------------------------------------------------------------------------

def test_committed_message_arrives_once_with_the_right_headers(ctx, smtp):
    server = smtp()
    message_id = queue()
    stored = fetch(message_id)

    report = send_due()
    again = send_due()

    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    assert (again.sent, again.retried, again.failed) == (0, 0, 0)
    assert len(server.messages) == 1
    arrived = server.messages[0]
    assert arrived.mail_from == SENDER and arrived.rcpt_tos == [RECIPIENT]
    email = arrived.email
    assert email["To"] == RECIPIENT and email["From"] == SENDER
    assert email["Subject"] == "Your records request"
    assert email["Message-ID"] == stored.message_id
    assert email["Date"] and email["Auto-Submitted"] == "auto-generated"
    assert email.get_content_type() == "text/plain"
    assert email.get_content().strip() == BODY
    sent = fetch(message_id)
    assert sent.status == OutboxStatus.SENT and sent.sent_at is not None
    assert sent.attempts == 1 and sent.claimed_at is None and sent.last_error is None


def test_message_of_a_rolled_back_transaction_is_never_sent(ctx, smtp):
    server = smtp()
    queue_email(RECIPIENT, "records_update", "Your records request", BODY)
    db.session.rollback()

    report = send_due()

    assert report.sent == 0 and server.messages == [] and server.rcpt_calls == 0
    assert db.session.scalar(db.select(db.func.count()).select_from(OutboxMessage)) == 0


def test_server_down_keeps_the_message_and_a_later_pass_delivers_it_once(app, ctx, server_down):
    with time_machine.travel(START, tick=False) as clock:
        message_id = queue()
        report = send_due()

        assert (report.sent, report.retried, report.failed) == (0, 1, 0)
        waiting = fetch(message_id)
        assert waiting.status == OutboxStatus.PENDING and waiting.attempts == 1
        assert waiting.last_error and "ConnectionRefusedError" in waiting.last_error
        assert RECIPIENT not in waiting.last_error and "someone" not in waiting.last_error
        assert waiting.next_attempt_at == START + backoff(1) == START + dt.timedelta(seconds=60)

        # Not due yet: another pass does not even try (the server is up now).
        server = Recorder()
        controller = Controller(server, hostname="127.0.0.1", port=app.config["MAIL_PORT"])
        controller.start()
        try:
            assert send_due().sent == 0 and server.messages == []
            clock.shift(dt.timedelta(seconds=61))
            assert send_due().sent == 1
            assert send_due().sent == 0
        finally:
            controller.stop()

    assert len(server.messages) == 1
    delivered = fetch(message_id)
    assert delivered.status == OutboxStatus.SENT and delivered.attempts == 2
    assert server.messages[0].email["Message-ID"] == delivered.message_id


def test_server_down_stops_the_pass_after_the_first_failure(ctx, server_down):
    first, second = queue(), queue()

    report = send_due()

    assert report.retried == 1
    assert fetch(first).attempts == 1
    untouched = fetch(second)
    assert untouched.attempts == 0 and untouched.status == OutboxStatus.PENDING and untouched.last_error is None


def test_backoff_doubles_and_is_capped_at_an_hour():
    assert [backoff(n).total_seconds() for n in range(1, 10)] == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert backoff(500).total_seconds() == 3600


@pytest.mark.parametrize(("stage", "reply"), [
    ("RCPT", "451 4.3.0 <someone@example.org>: mailbox busy, try later"),
    ("DATA", "452 4.3.1 Insufficient system storage"),
])
def test_temporary_refusal_is_retried(ctx, smtp, stage, reply):
    server = smtp(Refuser(stage, reply))
    with time_machine.travel(START, tick=False) as clock:
        message_id = queue()

        assert send_due().retried == 1
        waiting = fetch(message_id)
        assert waiting.status == OutboxStatus.PENDING and waiting.attempts == 1
        assert waiting.last_error.startswith(f"{'recipient' if stage == 'RCPT' else 'message'} refused: SMTP 45")
        assert RECIPIENT not in waiting.last_error
        assert waiting.next_attempt_at == START + dt.timedelta(seconds=60)

        server.stage = "none"  # the server accepts from now on
        clock.shift(dt.timedelta(seconds=60))
        assert send_due().sent == 1
    assert len(server.messages) == 1 and fetch(message_id).status == OutboxStatus.SENT


@pytest.mark.parametrize(("stage", "reply"), [
    ("RCPT", "550 5.1.1 <someone@example.org>: Recipient address rejected"),
    ("DATA", "554 5.7.1 Message refused"),
])
def test_permanent_refusal_fails_at_once_and_is_never_retried(ctx, smtp, stage, reply):
    server = smtp(Refuser(stage, reply))
    with time_machine.travel(START, tick=False) as clock:
        message_id = queue()

        assert send_due().failed == 1
        failed = fetch(message_id)
        assert failed.status == OutboxStatus.FAILED and failed.attempts == 1
        assert "SMTP 5" in failed.last_error and "(permanent)" in failed.last_error
        assert RECIPIENT not in failed.last_error and "someone" not in failed.last_error

        server.stage = "none"
        clock.shift(dt.timedelta(days=2))
        assert send_due().sent == 0
    assert server.messages == [] and fetch(message_id).attempts == 1


def test_gives_up_after_max_attempts(app, ctx, smtp):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    server = smtp(Refuser("RCPT", "421 4.3.2 Service shutting down"))
    with time_machine.travel(START, tick=False) as clock:
        message_id = queue()
        outcomes = []
        for _ in range(3):
            report = send_due()
            outcomes.append((report.retried, report.failed))
            clock.shift(dt.timedelta(hours=2))
        calls_when_failed = server.rcpt_calls
        server.stage = "none"
        assert send_due().sent == 0

    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    failed = fetch(message_id)
    assert failed.status == OutboxStatus.FAILED and failed.attempts == 3 and failed.last_error
    assert calls_when_failed == 3 and server.rcpt_calls == 3 and server.messages == []


def test_starttls_required_but_not_offered_sends_nothing(ctx, smtp):
    server = smtp(starttls=True)  # aiosmtpd without a TLS context offers no STARTTLS
    message_id = queue()

    report = send_due()

    assert report.retried == 1 and server.messages == [] and server.rcpt_calls == 0
    waiting = fetch(message_id)
    assert waiting.status == OutboxStatus.PENDING and "STARTTLS" in waiting.last_error


def test_starttls_and_login_when_configured(app, ctx, smtp, tmp_path, monkeypatch):
    cert_file, key_file = _self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trusted by ssl.create_default_context()
    import ssl

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"mail password", handled=False)

    server = smtp(starttls=True, tls_context=tls, require_starttls=True, authenticator=authenticator,
                  auth_required=True)
    app.config.update(MAIL_USERNAME="intake", MAIL_PASSWORD="mail password")
    message_id = queue()

    assert send_due().sent == 1
    assert logins == [(b"intake", b"mail password")]
    assert len(server.messages) == 1 and server.messages[0].tls and server.messages[0].authenticated
    assert fetch(message_id).status == OutboxStatus.SENT


def test_wrong_password_is_a_server_problem_not_a_failed_message(app, ctx, smtp, tmp_path, monkeypatch):
    cert_file, key_file = _self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    import ssl

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    server = smtp(starttls=True, tls_context=tls, require_starttls=True, auth_required=True,
                  authenticator=lambda *args: AuthResult(success=False, handled=False))
    app.config.update(MAIL_USERNAME="intake", MAIL_PASSWORD="wrong")
    message_id = queue()

    assert send_due().retried == 1
    waiting = fetch(message_id)
    assert waiting.status == OutboxStatus.PENDING and waiting.last_error.startswith("SMTPAuthenticationError: SMTP 535")
    assert "wrong" not in waiting.last_error and server.messages == []


@pytest.mark.parametrize(("recipient", "reason"), [
    ("someone@example.org\r\nBcc: other@example.org", "recipient contains a control character"),
    ("someone@example.org\nBcc: other@example.org", "recipient contains a control character"),
    ("someone@example.org\r", "recipient contains a control character"),
    ("Someone <someone@example.org>", "recipient is not a valid address"),
    ("not an address", "recipient is not a valid address"),
])
def test_bad_recipient_never_becomes_a_header(ctx, smtp, recipient, reason):
    server = smtp()
    message_id = queue(recipient=recipient)

    report = send_due()

    assert report.failed == 1 and server.messages == [] and server.rcpt_calls == 0
    failed = fetch(message_id)
    assert failed.status == OutboxStatus.FAILED and failed.attempts == 1
    assert failed.last_error == reason


def test_subject_with_a_line_break_is_refused(ctx, smtp):
    server = smtp()
    message_id = queue(subject="Update\r\nBcc: other@example.org")

    assert send_due().failed == 1
    assert server.messages == [] and fetch(message_id).last_error == "subject contains a control character"


def test_without_mail_server_the_message_is_printed_and_marked_sent(app, ctx, cli):
    app.config["MAIL_SERVER"] = None
    message_id = queue()
    message_header = fetch(message_id).message_id

    result = cli("send")

    assert result.exit_code == 0, result.output
    assert f"To: {RECIPIENT}" in result.output and "Subject: Your records request" in result.output
    assert f"Message-ID: {message_header}" in result.output and BODY in result.output
    assert "Outbox: sent 1, retried 0, failed 0." in result.output
    assert fetch(message_id).status == OutboxStatus.SENT
    assert BODY not in cli("send").output  # printed once only


def test_production_without_mail_server_refuses_to_print(app, ctx, cli):
    app.config.update(MAIL_SERVER=None, ENV_NAME="production")
    message_id = queue()

    result = cli("send")

    assert result.exit_code == 1 and "MAIL_SERVER is not set" in result.output
    assert BODY not in result.output and RECIPIENT not in result.output
    untouched = fetch(message_id)
    assert untouched.status == OutboxStatus.PENDING and untouched.attempts == 0


def test_recipient_and_body_never_reach_logs_errors_or_output(ctx, smtp, cli, caplog):
    caplog.set_level(logging.DEBUG)
    server = smtp(Refuser("RCPT", "451 4.2.0 <someone@example.org> greylisted"))
    message_id = queue()

    first = cli("send")
    server.stage = "none"
    set_row(message_id, next_attempt_at=START)  # due again at once
    second = cli("send")

    assert "retried 1" in first.output and "sent 1" in second.output
    assert len(server.messages) == 1
    # Everything logged in this process except the test server's own log ("mail.log").
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
    assert f"outbox message {message_id} sent" in logged
    for text in (logged, first.output, second.output, fetch(message_id).last_error):
        assert RECIPIENT not in text and "someone" not in text and "Sign in to read it" not in text


# --- claiming ----------------------------------------------------------------------------------

def test_two_claimers_never_take_the_same_message(app, ctx):
    ids = {queue() for _ in range(20)}
    claims: list[list[int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def claimer() -> None:
        try:
            with app.app_context():  # its own session and connection
                start.wait()
                for _ in range(10):
                    claims.append(claim_due(3))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    claimed = [message_id for batch in claims for message_id in batch]
    assert sorted(claimed) == sorted(ids)  # every message once: none twice, none missed
    statuses = {fetch(i).status for i in ids}
    assert statuses == {OutboxStatus.SENDING}


def test_a_claim_that_lost_the_race_changes_nothing(app, ctx):
    message_id = queue()
    snapshot = fetch(message_id)  # what a second sender read, just before the first one claimed
    with app.app_context():
        assert claim_due(5) == [message_id]
    winner_claim = fetch(message_id).claimed_at

    now = dt.datetime.now(dt.UTC)
    assert not _try_claim(snapshot.id, snapshot.status, snapshot.claimed_at, snapshot.attempts, now, 8)
    db.session.commit()
    assert claim_due(5) == []
    assert fetch(message_id).claimed_at == winner_claim


def test_a_dead_senders_claim_is_taken_over_after_the_lease(app, ctx, smtp):
    server = smtp()
    lease = app.config["OUTBOX_LEASE_SECONDS"]
    with time_machine.travel(START, tick=False) as clock:
        stale, fresh = queue(), queue()
        set_row(stale, status=OutboxStatus.SENDING, claimed_at=START - dt.timedelta(seconds=lease + 1))
        set_row(fresh, status=OutboxStatus.SENDING, claimed_at=START - dt.timedelta(seconds=lease - 60))
        message_header = fetch(stale).message_id

        assert send_due().sent == 1
        assert fetch(fresh).status == OutboxStatus.SENDING  # its sender may still be at work
        clock.shift(dt.timedelta(seconds=61))
        assert send_due().sent == 1

    assert [m.email["Message-ID"] for m in server.messages][0] == message_header
    retaken = fetch(stale)
    assert retaken.status == OutboxStatus.SENT and retaken.attempts == 2  # the dead attempt counts
    assert "lease expired" in retaken.last_error
    assert len(server.messages) == 2


def test_a_stale_claim_on_its_last_attempt_fails_instead(app, ctx, smtp):
    server = smtp()
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    message_id = queue()
    set_row(message_id, status=OutboxStatus.SENDING, attempts=2,
            claimed_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))

    assert send_due().sent == 0
    failed = fetch(message_id)
    assert failed.status == OutboxStatus.FAILED and failed.attempts == 3 and server.messages == []


# --- command line ------------------------------------------------------------------------------

def test_send_watch_runs_the_given_number_of_passes(ctx, smtp, cli):
    server = smtp()
    queue()

    started = time.monotonic()
    result = cli("send", "--watch", "--interval", "0.05", "--max-passes", "2")

    assert result.exit_code == 0, result.output
    assert "Outbox: sent 1, retried 0, failed 0." in result.output
    assert "Stopped after 2 pass(es): sent 1, retried 0, failed 0." in result.output
    assert len(server.messages) == 1 and time.monotonic() - started < 5


def test_send_watch_stops_cleanly_on_sigterm(ctx, cli):
    fallback = []

    def fallback_handler(signum, frame):  # only reached if the command did not take SIGTERM itself
        fallback.append(signum)

    previous = signal.signal(signal.SIGTERM, fallback_handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        started = time.monotonic()
        # --max-passes only bounds the test should the signal be missed; it never comes into play.
        result = cli("send", "--watch", "--interval", "5", "--max-passes", "2")
        elapsed = time.monotonic() - started
        restored = signal.getsignal(signal.SIGTERM)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)

    assert result.exit_code == 0, result.output
    assert "Stopped after 1 pass(es)" in result.output
    assert elapsed < 3  # woken from its 5-second sleep
    assert fallback == []  # the command's own handler took the signal
    assert restored is fallback_handler  # and put back the one it found


def test_send_without_watch_reports_a_server_that_is_down(ctx, server_down, cli):
    queue()

    result = cli("send")

    assert result.exit_code == 0 and "Outbox: sent 0, retried 1, failed 0." in result.output


def test_status_counts_and_oldest_pending_age(ctx, cli):
    with time_machine.travel(START, tick=False) as clock:
        oldest = queue()
        clock.shift(dt.timedelta(minutes=30))
        newer, failed, sent = queue(), queue(), queue()
        set_row(failed, status=OutboxStatus.FAILED)
        set_row(sent, status=OutboxStatus.SENT)
        clock.shift(dt.timedelta(hours=1, minutes=35))

        result = cli("status")

    assert result.exit_code == 0, result.output
    assert "Outbox: pending 2, sending 0, sent 1, failed 1." in result.output
    assert "Oldest pending message: queued 2h 5m ago." in result.output
    set_row(oldest, status=OutboxStatus.SENT)
    set_row(newer, status=OutboxStatus.SENT)
    assert "No message is waiting." in cli("status").output


# --- a certificate for the STARTTLS tests ------------------------------------------------------

def _self_signed_certificate(folder):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file
