"""``flask records digest``: the daily e-mail to the staff who work the records queue.

One message per active account with ``REQUESTS_QUEUE``, listing the open requests that are
overdue or due soon (``RECORDS_DUE_SOON_DAYS``) by their phone reference, type, state, due date
and assignee. It never names a patient or says anything about their health: the columns read
are the coded ones, never the encrypted fields. A request waiting for the requester is listed
like any other: its clock never stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from werkzeug.routing import BuildError

from intake.audit.services import record
from intake.extensions import db
from intake.notify.mail import send_mail
from intake.notify.services import public_url
from intake.ops.attention import admin_emails, attention, digest_section
from intake.ops.jobs import periodic_job
from intake.permissions import Permission, roles_with
from intake.records.deadlines import today
from intake.records.labels import STAFF_STATUS_LABELS, TYPE_SHORT
from intake.records.models import RecordsRequest
from intake.users.services import emails_by_id, staff_accounts

records_cli = AppGroup("records", help="Records requests: the staff digest.")

DIGEST_KIND = "records_digest"
DIGEST_LIMIT = 500  # a digest longer than this says how many more there are


@dataclass(frozen=True)
class DigestLine:
    human_ref: str
    type_label: str
    status_label: str
    due_on: date
    days_overdue: int
    assignee: str | None

    @property
    def overdue(self) -> bool:
        return self.days_overdue > 0


def due_lines(on: date, due_soon_days: int) -> tuple[list[DigestLine], int]:
    """Open, running requests due on or before ``on + due_soon_days``, most overdue first; and
    how many there are in all (the list stops at ``DIGEST_LIMIT``). Two queries: the requests'
    coded columns, then the assignees' e-mail addresses."""
    horizon = on + timedelta(days=due_soon_days)
    where = (RecordsRequest.is_open.is_(True), RecordsRequest.due_on <= horizon)
    rows = db.session.execute(
        select(RecordsRequest.id, RecordsRequest.human_ref, RecordsRequest.request_type, RecordsRequest.status,
               RecordsRequest.due_on, RecordsRequest.assignee_id)
        .where(*where).order_by(RecordsRequest.due_on, RecordsRequest.id).limit(DIGEST_LIMIT + 1)).all()
    total = len(rows)
    if total > DIGEST_LIMIT:
        total = db.session.execute(select(db.func.count()).select_from(RecordsRequest).where(*where)).scalar_one()
        rows = rows[:DIGEST_LIMIT]
    emails = emails_by_id(row.assignee_id for row in rows)
    lines = [DigestLine(row.human_ref, str(TYPE_SHORT[row.request_type]),
                        str(STAFF_STATUS_LABELS[row.status]), row.due_on,
                        max(0, (on - row.due_on).days), emails.get(row.assignee_id)) for row in rows]
    return lines, total


def queue_staff() -> list[str]:
    """E-mail addresses of the active accounts that work the records queue."""
    users = staff_accounts(active_only=True, roles=roles_with([Permission.REQUESTS_QUEUE]))
    return [str(user.email) for user in users if user.email]


def _line_text(line: DigestLine, on: date) -> str:
    if line.overdue:
        when = ngettext("%(num)d day overdue", "%(num)d days overdue", line.days_overdue)
    elif line.due_on == on:
        when = _("due today")
    else:
        when = ngettext("due in %(num)d day", "due in %(num)d days", (line.due_on - on).days)
    who = line.assignee or _("unassigned")
    return f"- {line.human_ref} | {line.type_label} | {line.status_label} | " + _(
        "due %(day)s (%(when)s) | %(who)s", day=line.due_on.isoformat(), when=when, who=who)


def digest_body(lines: list[DigestLine], total: int, on: date) -> str:
    overdue = [line for line in lines if line.overdue]
    soon = [line for line in lines if not line.overdue]
    parts = [_("Records requests on %(day)s.", day=on.isoformat())]
    if not lines:
        parts.append(_("No open request is overdue or due soon."))
    if overdue:
        parts.append(_("Overdue (%(n)d):", n=len(overdue)) + "\n" + "\n".join(_line_text(x, on) for x in overdue))
    if soon:
        parts.append(_("Due soon (%(n)d):", n=len(soon)) + "\n" + "\n".join(_line_text(x, on) for x in soon))
    if total > len(lines):
        parts.append(_("…and %(n)d more; see the queue.", n=total - len(lines)))
    try:
        parts.append(_("Open the queue: %(link)s", link=public_url("request_queue.index")))
    except BuildError:
        pass
    parts.append(_("For privacy this e-mail lists references only; sign in to read a request."))
    return "\n\n".join(parts) + "\n"


@records_cli.command("digest")
@click.option("--always", is_flag=True, help="Send the digest even when nothing is overdue or due soon.")
@periodic_job("records-digest", once_a_day=True)
def digest_command(always: bool) -> None:
    """E-mail each records admin the requests that are overdue or due soon (references only)."""
    on = today()
    lines, total = due_lines(on, int(current_app.config["RECORDS_DUE_SOON_DAYS"]))
    overdue = sum(1 for line in lines if line.overdue)
    soon = len(lines) - overdue
    # Failed e-mails and job runs, for the administrators among the recipients (intake/ops/attention.py).
    failures = digest_section(attention())
    if not lines and not always and not failures:
        click.echo("Nothing is overdue or due soon: no digest sent.")
        return
    workers = set(queue_staff()) if (lines or always) else set()
    # The failures go to the administrators, whether or not they also work the records queue.
    admins = admin_emails() if failures else set()
    recipients = sorted(workers | admins)
    if not recipients:
        click.echo("No active account works the records queue: no digest sent.", err=True)
        return
    body = digest_body(lines, total, on)
    for email in recipients:
        # templates/email/records_digest.txt: staff read English (the CLI's language, the default).
        send_mail("records_digest", email, kind=DIGEST_KIND, overdue=overdue, soon=soon,
                  digest=body if email in workers else "", failures=failures if email in admins else "")
    record("request.digest", details={"recipients": len(recipients), "overdue": overdue, "due_soon": soon})
    db.session.commit()
    click.echo(f"queued {len(recipients)} digests: {overdue} overdue, {soon} due soon")
