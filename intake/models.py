"""Every model, imported in one place so the metadata (and so Alembic) sees them all."""

from intake.audit.models import AuditEvent
from intake.notify.models import OutboxMessage, OutboxStatus
from intake.users.models import RecoveryCode, Role, User

__all__ = ["AuditEvent", "OutboxMessage", "OutboxStatus", "RecoveryCode", "Role", "User"]
