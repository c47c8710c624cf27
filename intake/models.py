"""Every model, imported in one place so the metadata (and so Alembic) sees them all."""

from intake.admin.models import RetentionPolicy, SiteNotice
from intake.archive.models import ArchivedPatient, ArchiveMatchKey
from intake.audit.models import AuditCheckpoint, AuditEvent
from intake.auth.models import PasswordResetRequest
from intake.calls.models import (
    Call,
    CallSubstance,
    CallTask,
    EmergencyDisclosure,
    FollowUp,
    FollowUpAttempt,
    Referral,
    SupervisorNote,
)
from intake.notify.models import OutboxMessage, OutboxStatus
from intake.ops.models import JobRun
from intake.records.models import (
    Consent,
    Disclosure,
    DocumentContent,
    FeeEstimate,
    RecordsRequest,
    RequestDocument,
    RequestEvent,
)
from intake.resources.models import Resource
from intake.review.models import CallReview
from intake.users.models import RecoveryCode, Role, User

__all__ = [
    "ArchiveMatchKey", "ArchivedPatient", "AuditCheckpoint", "AuditEvent", "Call", "CallReview", "CallSubstance",
    "CallTask", "Consent", "Disclosure", "DocumentContent", "EmergencyDisclosure", "FeeEstimate", "FollowUp",
    "FollowUpAttempt", "JobRun", "OutboxMessage", "OutboxStatus", "PasswordResetRequest", "RecordsRequest",
    "RecoveryCode", "Referral", "RequestDocument", "RequestEvent", "Resource", "RetentionPolicy", "Role", "SiteNotice",
    "SupervisorNote", "User",
]
