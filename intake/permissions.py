"""Who may do what: permissions as data, one pure predicate, one decorator, deny by default.

Roles are rows of ``ROLE_PERMISSIONS``; a person may hold several roles and has the union of
their permissions. Every endpoint either appears in ``PUBLIC_ENDPOINTS`` or is wrapped in
``@require(...)``; ``enforce_declared_policy`` refuses any other endpoint with 403, so a route
that forgot its policy is closed, not open.

Where one old permission covered work that two roles now split, it was split: the dashboard
(helpline figures for supervisors, records figures for the records office), and the records
queue (``REQUESTS_VIEW`` to read it, ``REQUESTS_QUEUE`` to work it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, request
from flask_login import current_user
from werkzeug.exceptions import Forbidden

from intake.extensions import login_manager
from intake.users.models import Role, role_order


class Permission(StrEnum):
    SIGNED_IN = "signed_in"  # any authenticated account: own account page, sign out
    OWN_SECOND_FACTOR = "own_second_factor"  # staff: manage their own authenticator and recovery codes
    CALLS_LOG = "calls.log"  # log calls and edit one's own (the edit window: intake/calls/policy.py)
    CALLS_VIEW = "calls.view"  # the call list, call pages, the repeat-caller lookup
    CALLS_EDIT_ANY = "calls.edit_any"  # edit anyone's call, open others' live drafts
    CALLS_URGENT_QUEUE = "calls.urgent_queue"  # supervisors: high and imminent calls (drafts too) to review
    CALLER_CONTACT_REVEAL = "calls.contact_reveal"  # show a caller's phone and name, with a reason (audited)
    FOLLOWUPS_WORK = "followups.work"
    RESOURCES_USE = "resources.use"
    RESOURCES_EDIT = "resources.edit"
    REQUESTS_OWN = "requests.own"  # follow one's own records requests
    REQUESTS_SUBMIT = "requests.submit"  # file a new one: needs a verified e-mail address
    REQUESTS_VIEW = "requests.view"  # read the records queue, request pages and letters (changes nothing)
    REQUESTS_QUEUE = "requests.queue"  # work records requests: move, message, documents, fees, consents
    ARCHIVE_MANAGE = "archive.manage"  # the archive patient index
    USERS_MANAGE = "users.manage"  # accounts: invite, roles, identity, disable, unlock, reset MFA
    SETTINGS_EDIT = "settings.edit"  # the facility's settings pages
    ADMIN_HUB = "admin.hub"  # /admin/, listing the administration areas one may open
    DASHBOARD_HELPLINE = "dashboard.helpline"  # the helpline's figures
    DASHBOARD_RECORDS = "dashboard.records"  # the records office's figures
    AUDIT_VIEW = "audit.view"  # the audit review, "who viewed this" panels, chain verification
    DISCLOSURES_REPORT = "disclosures.report"  # disclosure reports and accountings of disclosures
    EXPORT = "export"  # CSV exports (coded call fields, requests, the audit trail)
    NOTICES_EDIT = "notices.edit"
    QUALITY_REVIEW = "quality.review"
    RETENTION_MANAGE = "retention.manage"


_STAFF = frozenset({Permission.SIGNED_IN, Permission.OWN_SECOND_FACTOR})

_OPERATOR = _STAFF | {
    Permission.CALLS_LOG,
    Permission.CALLS_VIEW,
    Permission.CALLER_CONTACT_REVEAL,
    Permission.FOLLOWUPS_WORK,
    Permission.RESOURCES_USE,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Helpline staff: their calls, the call list, follow-ups, the resource directory; no records.
    Role.OPERATOR: _OPERATOR,
    # What operators may, plus the urgent queue (live drafts included), any call, quality review
    # and the helpline's dashboard.
    Role.SUPERVISOR: _OPERATOR | {
        Permission.CALLS_EDIT_ANY,
        Permission.CALLS_URGENT_QUEUE,
        Permission.QUALITY_REVIEW,
        Permission.DASHBOARD_HELPLINE,
        Permission.ADMIN_HUB,
    },
    # The records office: the queue (including requests it enters from paper, fax or a visit),
    # the archive index, documents, letters, fees, its dashboard. No call log, no accounts, no exports.
    Role.RECORDS_CLERK: _STAFF | {
        Permission.REQUESTS_VIEW,
        Permission.REQUESTS_QUEUE,
        Permission.ARCHIVE_MANAGE,
        Permission.DASHBOARD_RECORDS,
        Permission.ADMIN_HUB,
    },
    # HIPAA / Part 2 privacy officer: the audit review, disclosure reports, exports; elsewhere
    # read-only: the records queue and request pages (not their uploaded documents) and both
    # dashboards. Not the call log: what a caller told the helpline is not needed to answer for
    # who read it (the audit trail) or what was disclosed (the disclosure report); and never the
    # caller's contact details.
    Role.PRIVACY_OFFICER: _STAFF | {
        Permission.AUDIT_VIEW,
        Permission.DISCLOSURES_REPORT,
        Permission.EXPORT,
        Permission.REQUESTS_VIEW,
        Permission.DASHBOARD_HELPLINE,
        Permission.DASHBOARD_RECORDS,
        Permission.ADMIN_HUB,
    },
    # The facility's administrators: accounts and roles, settings, site notices, the resource
    # directory, retention. Other work comes with the other roles (a person may hold several).
    Role.ADMIN: _STAFF | {
        Permission.USERS_MANAGE,
        Permission.SETTINGS_EDIT,
        Permission.NOTICES_EDIT,
        Permission.RESOURCES_USE,
        Permission.RESOURCES_EDIT,
        Permission.RETENTION_MANAGE,
        Permission.ADMIN_HUB,
    },
    Role.REQUESTER: frozenset({Permission.SIGNED_IN, Permission.REQUESTS_OWN, Permission.REQUESTS_SUBMIT}),
}

# Where each role's work starts after signing in (when the sign-in carried no ``next``). A person
# holding several roles lands on the first of theirs in this order.
LANDING: tuple[tuple[Role, str], ...] = (
    (Role.OPERATOR, "calls_intake.start"),
    (Role.SUPERVISOR, "calls.urgent"),
    (Role.RECORDS_CLERK, "request_queue.index"),
    (Role.PRIVACY_OFFICER, "admin_audit.index"),
    (Role.ADMIN, "admin.index"),
    (Role.REQUESTER, "my_requests.index"),
)

# Endpoints anyone may reach, signed in or not. Everything else needs @require.
PUBLIC_ENDPOINTS = frozenset({
    "static",
    "bootstrap.static",
    "public.index",
    "public.records_guide",
    "public.healthz",
    "public.readyz",
    "metrics.metrics",  # its own check: the METRICS_TOKEN bearer token (intake/ops/metrics.py)
    "language.switch",  # choosing the language of the pages (intake/i18n.py)
    "auth.login",
    "auth.mfa",  # these two check the pending sign-in held in the session themselves
    "auth.mfa_setup",
    "registration.register",
    "registration.verify_email",  # the signed link is the credential
    "reset.request_link",
    "reset.choose_password",  # the signed link is the credential
    "invitations.accept",  # the signed link is the credential
    # A third party's copy: the link and the access code sent separately are the credentials.
    "recipient_copy.open_link",
    "recipient_copy.enter_code",
    "recipient_copy.download",
})

# Object ownership rules: for these permissions an object must belong to the user.
_OWNED = frozenset({Permission.REQUESTS_OWN})
# Permissions that need the account's e-mail address to be verified.
_NEEDS_VERIFIED_EMAIL = frozenset({Permission.REQUESTS_SUBMIT})


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    """The union of the permissions of ``roles`` (read from the table each time, so the table
    stays the one source; a few set unions at most)."""
    granted: frozenset[Permission] = frozenset()
    for role in roles:
        granted = granted | ROLE_PERMISSIONS.get(role, frozenset())
    return granted


def _roles_of(user: Any) -> frozenset[Role]:
    found = set()
    for role in getattr(user, "roles", ()) or ():
        try:
            found.add(Role(role))
        except ValueError:
            continue  # a role this code does not know grants nothing
    return frozenset(found)


def can(user: Any, permission: Permission, obj: Any = None) -> bool:
    """Pure predicate: may ``user`` exercise ``permission`` (on ``obj``, when given)?"""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if permission not in permissions_of(_roles_of(user)):
        return False
    if permission in _NEEDS_VERIFIED_EMAIL and getattr(user, "email_verified_at", None) is None:
        return False
    if obj is not None and permission in _OWNED:
        return getattr(obj, "owner_id", None) == user.id
    return True


def can_any(user: Any, permissions: Iterable[Permission]) -> bool:
    return any(can(user, permission) for permission in permissions)


def roles_with(permissions: Iterable[Permission]) -> list[Role]:
    """The roles that hold any of ``permissions``, in the roles' order (for "who may do this")."""
    wanted = set(permissions)
    return role_order(role for role, granted in ROLE_PERMISSIONS.items() if granted & wanted)


def landing_endpoint(user: Any) -> str:
    """Where ``user`` starts after signing in: the work of the first of their roles in ``LANDING``
    (an operator logs a call, a supervisor opens the urgent queue, a records clerk the records
    queue, a privacy officer the audit review, an admin the administration hub, a requester their
    requests); their account page when they hold none of them."""
    held = _roles_of(user)
    for role, endpoint in LANDING:
        if role in held:
            return endpoint
    return "auth.account"


class Refused(Forbidden):
    """A 403 that knows which permissions would have allowed it (the error page names the roles
    holding them, ``intake.errors``)."""

    def __init__(self, permissions: Iterable[Permission]) -> None:
        super().__init__()
        self.permissions = tuple(permissions)


def refuse(*permissions: Permission) -> Refused:
    """``raise refuse(Permission.X)``: refuse the request, naming what it needed."""
    return Refused(permissions)


F = TypeVar("F", bound=Callable[..., Any])


def require(*permissions: Permission) -> Callable[[F], F]:
    """Declare and enforce the endpoint's policy: any one of ``permissions`` lets the user in.

    Anonymous visitors are sent to sign in; a signed-in user without the permission gets 403.
    Object-level checks (404 for what the user may not know exists) belong in the service that
    loads the object, through ``can(user, permission, obj)``.
    """
    if not permissions:
        raise TypeError("require() needs at least one permission")

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not can_any(current_user, permissions):
                raise refuse(*permissions)
            return view(*args, **kwargs)

        wrapped.required_permission = permissions[0]  # type: ignore[attr-defined]
        wrapped.required_permissions = permissions  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def required_permissions(endpoint: str | None) -> tuple[Permission, ...]:
    """The permissions ``@require`` declared on ``endpoint`` (empty for public or unknown ones)."""
    view = current_app.view_functions.get(endpoint or "")
    declared = getattr(view, "required_permissions", None)
    if declared is None:
        # A wrapper (the rate limiter) may copy only the first.
        first = getattr(view, "required_permission", None)
        declared = (first,) if first is not None else ()
    return tuple(declared)


def enforce_declared_policy() -> None:
    """``before_request`` hook: an endpoint with no declared policy is refused."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS:
        return  # unmatched URL: the router answers 404/405 itself
    view = current_app.view_functions.get(endpoint)
    if getattr(view, "required_permission", None) is None:
        current_app.logger.error("endpoint %s has no access policy; refused", endpoint)
        raise Forbidden()
