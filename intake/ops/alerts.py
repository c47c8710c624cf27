"""``flask alert UNIT``: tell the operators that a service or a timer job failed.

systemd starts ``intake-alert@<unit>.service`` through ``OnFailure=`` (deploy/systemd/), which runs
this. The e-mail goes straight over SMTP with the app's MAIL_* settings, not through the outbox: the
outbox sender, or the database, may be what failed. It names the unit, the host and the time and
says where to read more; it never carries a log line (those stay in the journal).
"""

from __future__ import annotations

import re
import socket
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import click
from flask import current_app
from flask.cli import with_appcontext

from intake.notify.sender import DeliveryError, smtp_send

# A systemd unit name: letters, digits and ":-_.@\" (an instance name is escaped by systemd).
UNIT_NAME = re.compile(r"[A-Za-z0-9:_.@\\-]{1,200}")


def alert_recipients(config) -> list[str]:
    return [part.strip() for part in str(config.get("ALERT_EMAIL") or "").split(",") if part.strip()]


def alert_message(unit: str, host: str, sender: str, recipients: list[str]) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Subject"] = f"[intake] {unit} failed on {host}"
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = make_msgid(domain=current_app.config["MAIL_MESSAGE_ID_DOMAIN"])
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(
        f"The systemd unit {unit} failed on {host} at {email['Date']}.\n\n"
        f"What it printed:   journalctl -u {unit} -n 100\n"
        f"Its state:         systemctl status {unit}\n"
        "Failed job runs and e-mails are also listed on the admin hub (/admin/) and in the daily digest.\n")
    return email


@click.command("alert")
@click.argument("unit")
@with_appcontext
def alert_command(unit: str) -> None:
    """E-mail ALERT_EMAIL that the systemd unit UNIT failed (systemd's OnFailure= runs this)."""
    if not UNIT_NAME.fullmatch(unit):
        raise click.BadParameter("not a systemd unit name", param_hint="UNIT")
    config = current_app.config
    host = socket.gethostname()
    line = f"ALERT: {unit} failed on {host}"
    click.echo(line, err=True)  # the journal has it even when the mail cannot go
    recipients = alert_recipients(config)
    if not recipients or not config.get("MAIL_SERVER"):
        click.echo("No alert e-mail sent: set ALERT_EMAIL and MAIL_SERVER.", err=True)
        sys.exit(1)
    sender = config["MAIL_DEFAULT_SENDER"]
    email = alert_message(unit, host, sender, recipients)
    failures = 0
    for recipient in recipients:
        try:
            smtp_send(email, parseaddr(sender)[1], recipient)
        except Exception as exc:  # noqa: BLE001 - SMTP, TLS or network: report each failure and go on
            failures += 1
            reason = exc.reason if isinstance(exc, DeliveryError) else type(exc).__name__
            click.echo(f"Alert e-mail not sent to recipient {recipients.index(recipient) + 1}: {reason}", err=True)
    if failures:
        sys.exit(1)
    click.echo(f"Alert e-mailed to {len(recipients)} recipient(s).")
