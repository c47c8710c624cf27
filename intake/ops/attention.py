"""What needs an administrator's attention: e-mails the outbox gave up on and job runs that failed.

Shown on the admin hub and, for the admins, in the daily digest. Coded columns only: an e-mail is
its kind, attempts, error code and dates (never its recipient or body, which are encrypted anyway),
a job run its job, host, exit code or exception class and dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select

from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.models import OutboxMessage, OutboxStatus
from intake.ops.jobs import recent_failures
from intake.ops.models import JobRun
from intake.users.models import Role
from intake.users.services import staff_accounts

LOOK_BACK = timedelta(days=7)
SHOWN = 10


@dataclass(frozen=True)
class FailedMessage:
    id: int
    kind: str
    attempts: int
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True)
class Attention:
    since: datetime
    failed_message_count: int
    failed_messages: list[FailedMessage]
    failed_runs: list[JobRun]

    @property
    def empty(self) -> bool:
        return not self.failed_message_count and not self.failed_runs


def attention(now: datetime | None = None) -> Attention:
    """Failures of the last ``LOOK_BACK``: three small queries over indexed columns."""
    since = (now or utcnow()) - LOOK_BACK
    failed = (OutboxMessage.status == OutboxStatus.FAILED, OutboxMessage.next_attempt_at >= since)
    count = db.session.execute(select(func.count()).select_from(OutboxMessage).where(*failed)).scalar_one()
    rows = db.session.execute(
        select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.attempts, OutboxMessage.last_error,
               OutboxMessage.created_at).where(*failed).order_by(OutboxMessage.next_attempt_at.desc()).limit(SHOWN)).all()
    messages = [FailedMessage(*row) for row in rows]
    return Attention(since, count, messages, recent_failures(since, SHOWN))


def admin_emails() -> set[str]:
    """The e-mail addresses of the active administrators (who read the digest's failures)."""
    return {str(user.email) for user in staff_accounts(active_only=True, roles=[Role.ADMIN]) if user.email}


def digest_section(found: Attention) -> str:
    """The digest's lines for the admins ('' when nothing failed)."""
    if found.empty:
        return ""
    lines = [_("Needs attention (last 7 days):")]
    if found.failed_message_count:
        lines.append(_("- %(n)d e-mail(s) could not be delivered (flask outbox status; the admin hub lists them).",
                       n=found.failed_message_count))
    for run in found.failed_runs:
        lines.append(_("- job %(job)s %(status)s at %(when)s UTC on %(host)s (%(detail)s)", job=run.job,
                       status=run.status.value, when=run.started_at.strftime("%Y-%m-%d %H:%M"), host=run.host,
                       detail=run.detail or "-"))
    return "\n".join(lines)
