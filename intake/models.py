"""Every model, imported in one place so the metadata (and so Alembic) sees them all."""

from intake.audit.models import AuditEvent
from intake.calls.models import (
    Call,
    CallSubstance,
    CallTask,
    EmergencyDisclosure,
    FollowUp,
    FollowUpAttempt,
    Referral,
)
from intake.notify.models import OutboxMessage, OutboxStatus
from intake.records.models import RecordsRequest, RequestEvent
from intake.resources.models import Resource
from intake.users.models import RecoveryCode, Role, User

__all__ = [
    "AuditEvent", "Call", "CallSubstance", "CallTask", "EmergencyDisclosure", "FollowUp", "FollowUpAttempt",
    "OutboxMessage", "OutboxStatus", "RecordsRequest", "RecoveryCode", "Referral", "RequestEvent", "Resource",
    "Role", "User",
]
