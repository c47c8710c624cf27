"""``/admin/``: the administration areas the signed-in staff member may use, one line each.

The list is data: an area whose endpoint is not registered, or whose permission the user lacks,
is left out, so the page never links to something that answers 403 or 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from intake.ops.attention import attention
from intake.permissions import Permission, can, can_any, require

bp = Blueprint("admin", __name__, url_prefix="/admin")


@dataclass(frozen=True)
class Area:
    endpoint: str
    permissions: tuple[Permission, ...]  # any one of them opens the area
    title: str
    summary: str


AREAS = (
    Area("admin_dashboard.index", (Permission.DASHBOARD_HELPLINE, Permission.DASHBOARD_RECORDS), _l("Dashboard"),
         _l("Calls and records requests in figures, for a date range.")),
    Area("admin_users.index", (Permission.USERS_MANAGE,), _l("Users"),
         _l("Invite staff, change roles, disable and re-enable accounts, unlock, reset a second factor.")),
    Area("admin_review.index", (Permission.QUALITY_REVIEW,), _l("Quality review"),
         _l("High-risk calls and a weekly sample of each operator's calls, scored with feedback.")),
    Area("archive_admin.index", (Permission.ARCHIVE_MANAGE,), _l("Archive index"),
         _l("Find former patients' records by MRN, or by name and date of birth.")),
    Area("admin_audit.index", (Permission.AUDIT_VIEW,), _l("Audit trail"),
         _l("Who saw and changed what, filtered; the chain's verification; an export.")),
    Area("disclosures.index", (Permission.DISCLOSURES_REPORT,), _l("Emergency disclosures"),
         _l("Every caller disclosure made in a medical emergency (42 CFR 2.51), with a CSV download.")),
    Area("admin_exports.index", (Permission.EXPORT,), _l("Exports"),
         _l("Coded call fields and records requests as CSV, for a date range.")),
    Area("admin_notices.index", (Permission.NOTICES_EDIT,), _l("Site notices"),
         _l("The notices shown on the public pages, with their dates.")),
    Area("resources.index", (Permission.RESOURCES_EDIT,), _l("Resource directory"),
         _l("The programs and services operators refer callers to: add, correct, retire, mark verified.")),
    Area("admin_retention.index", (Permission.RETENTION_MANAGE,), _l("Retention"),
         _l("How long each kind of data is kept, legal holds, and what the purge would remove.")),
)


def areas_for(user) -> list[tuple[Area, str]]:
    """The areas ``user`` may open, with their URLs, in the order above."""
    views = current_app.view_functions
    return [(area, url_for(area.endpoint)) for area in AREAS
            if area.endpoint in views and can_any(user, area.permissions)]


@bp.route("/")
@require(Permission.ADMIN_HUB)
def index() -> str:
    """The areas this person's roles open (a supervisor, a records clerk, a privacy officer and an
    admin each see theirs), and for administrators what failed lately (e-mails given up on, job runs)."""
    found = attention() if can(current_user, Permission.USERS_MANAGE) else None
    return render_template("admin/index.html", areas=areas_for(current_user), attention=found)
