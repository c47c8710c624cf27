"""Who may change a call: pure rules, used by the views and the services alike."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from intake.calls.models import Call, CallStatus
from intake.permissions import Permission, can

EDIT_WINDOW = timedelta(hours=24)


def can_edit_call(user: Any, call: Call, now: datetime) -> bool:
    """Admins always; the operator who logged it while it is a draft, and for 24 hours after
    it was finalized; nobody else."""
    if can(user, Permission.CALLS_EDIT_ANY):
        return True
    if not can(user, Permission.CALLS_LOG) or call.operator_id != getattr(user, "id", None):
        return False
    if call.status == CallStatus.DRAFT or call.finalized_at is None:
        return True
    return now - call.finalized_at <= EDIT_WINDOW
