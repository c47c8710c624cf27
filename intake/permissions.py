"""Who may do what: permissions as data, one pure predicate, one decorator, deny by default.

Adding a role (say, a records clerk) is an edit of ``ROLE_PERMISSIONS``. Every endpoint either
appears in ``PUBLIC_ENDPOINTS`` or is wrapped in ``@require(...)``; ``enforce_declared_policy``
refuses any other endpoint with 403, so a route that forgot its policy is closed, not open.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, request
from flask_login import current_user

from intake.users.models import Role


class Permission(StrEnum):
    SIGNED_IN = "signed_in"  # any authenticated account: own account page, sign out
    OWN_SECOND_FACTOR = "own_second_factor"  # staff: manage their own authenticator and recovery codes
    CALLS_LOG = "calls.log"
    CALLS_VIEW = "calls.view"
    CALLS_EDIT_ANY = "calls.edit_any"
    CALLS_URGENT_QUEUE = "calls.urgent_queue"  # supervisors: high and imminent calls to review
    CALLER_CONTACT_REVEAL = "calls.contact_reveal"
    FOLLOWUPS_WORK = "followups.work"
    RESOURCES_USE = "resources.use"
    RESOURCES_EDIT = "resources.edit"
    REQUESTS_OWN = "requests.own"  # follow one's own records requests
    REQUESTS_SUBMIT = "requests.submit"  # file a new one: needs a verified e-mail address
    REQUESTS_QUEUE = "requests.queue"  # work every records request
    ARCHIVE_MANAGE = "archive.manage"
    USERS_MANAGE = "users.manage"
    DASHBOARD_VIEW = "dashboard.view"
    AUDIT_VIEW = "audit.view"
    EXPORT = "export"
    NOTICES_EDIT = "notices.edit"
    QUALITY_REVIEW = "quality.review"
    RETENTION_MANAGE = "retention.manage"
    DISCLOSURES_REPORT = "disclosures.report"  # every emergency disclosure made (42 CFR 2.51), with CSV


_OPERATOR = frozenset({
    Permission.SIGNED_IN,
    Permission.OWN_SECOND_FACTOR,
    Permission.CALLS_LOG,
    Permission.CALLS_VIEW,
    Permission.CALLER_CONTACT_REVEAL,
    Permission.FOLLOWUPS_WORK,
    Permission.RESOURCES_USE,
})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: _OPERATOR,
    Role.ADMIN: _OPERATOR | {
        Permission.CALLS_EDIT_ANY,
        Permission.CALLS_URGENT_QUEUE,
        Permission.RESOURCES_EDIT,
        Permission.REQUESTS_QUEUE,
        Permission.ARCHIVE_MANAGE,
        Permission.USERS_MANAGE,
        Permission.DASHBOARD_VIEW,
        Permission.AUDIT_VIEW,
        Permission.EXPORT,
        Permission.NOTICES_EDIT,
        Permission.QUALITY_REVIEW,
        Permission.RETENTION_MANAGE,
        Permission.DISCLOSURES_REPORT,
    },
    Role.REQUESTER: frozenset({Permission.SIGNED_IN, Permission.REQUESTS_OWN, Permission.REQUESTS_SUBMIT}),
}

# Endpoints anyone may reach, signed in or not. Everything else needs @require.
PUBLIC_ENDPOINTS = frozenset({
    "static",
    "bootstrap.static",
    "public.index",
    "public.records_guide",
    "public.healthz",
    "language.switch",  # choosing the language of the pages (intake/i18n.py)
    "auth.login",
    "auth.mfa",  # these two check the pending sign-in held in the session themselves
    "auth.mfa_setup",
    "registration.register",
    "registration.verify_email",  # the signed link is the credential
    "reset.request_link",
    "reset.choose_password",  # the signed link is the credential
    "invitations.accept",  # the signed link is the credential
})

# Object ownership rules: for these permissions an object must belong to the user.
_OWNED = frozenset({Permission.REQUESTS_OWN})
# Permissions that need the account's e-mail address to be verified.
_NEEDS_VERIFIED_EMAIL = frozenset({Permission.REQUESTS_SUBMIT})


def can(user: Any, permission: Permission, obj: Any = None) -> bool:
    """Pure predicate: may ``user`` exercise ``permission`` (on ``obj``, when given)?"""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    try:
        granted = ROLE_PERMISSIONS.get(Role(user.role), frozenset())
    except ValueError:
        return False
    if permission not in granted:
        return False
    if permission in _NEEDS_VERIFIED_EMAIL and getattr(user, "email_verified_at", None) is None:
        return False
    if obj is not None and permission in _OWNED:
        return getattr(obj, "owner_id", None) == user.id
    return True


F = TypeVar("F", bound=Callable[..., Any])


def require(permission: Permission) -> Callable[[F], F]:
    """Declare and enforce the endpoint's policy.

    Anonymous visitors are sent to sign in; a signed-in user without the permission gets 403.
    Object-level checks (404 for what the user may not know exists) belong in the service that
    loads the object, through ``can(user, permission, obj)``.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not can(current_user, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def enforce_declared_policy() -> None:
    """``before_request`` hook: an endpoint with no declared policy is refused."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS:
        return  # unmatched URL: the router answers 404/405 itself
    view = current_app.view_functions.get(endpoint)
    if getattr(view, "required_permission", None) is None:
        current_app.logger.error("endpoint %s has no access policy; refused", endpoint)
        abort(403)
