"""Admin pages for accounts: the staff list with filters, exact-address lookup, invitations,
roles (several per person), staff name and licence, disable and re-enable, unlock, MFA reset.

Every view needs ``USERS_MANAGE``. Requesters (former patients) are never listed: an account
that says someone was a patient is found only by its exact address, and that lookup, like the
page of a requester account, is audited. Flash messages name accounts by number, never by
address. The rules (not oneself, not the last active administrator) live in
``intake.users.services``; the page only hides the buttons they would refuse.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import ColumnElement, exists, select
from werkzeug.wrappers import Response

from intake.admin.forms import (
    ActionForm,
    DisableForm,
    IdentityForm,
    InviteForm,
    LookupForm,
    RolesForm,
    UserFilterForm,
)
from intake.audit.services import record
from intake.auth.mfa import remaining_recovery_codes, reset_mfa
from intake.auth.services import is_locked, unlock
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, require
from intake.users.invitations import InvitationRefused, invite_staff
from intake.users.labels import roles_label
from intake.users.models import STAFF_ROLES, Role, User, UserRole
from intake.users.services import (
    AccountError,
    IdentityError,
    another_active_admin,
    disable_user,
    enable_user,
    find_by_email,
    set_identity,
    set_roles,
)

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")

PAGE_SIZE = 50
MAX_ID = 2**31 - 1  # the largest id a 32-bit integer column holds; anything above is not an account
_AFTER_RE = re.compile(r"^[0-9]{1,10}$")


def _after_param() -> int:
    """The keyset cursor ``?after=<id>``: absent means the start; anything but an id is a 400."""
    raw = request.args.get("after")
    if raw is None or raw == "":
        return 0
    if not _AFTER_RE.match(raw) or int(raw) > MAX_ID:
        abort(400)
    return int(raw)


def _state_condition(state: str, now: datetime) -> ColumnElement[bool]:
    """The accounts that show the badge of ``state`` on the list (the badges can combine: a
    locked account is active too, an invitation can be disabled)."""
    if state == "active":
        return User.active.is_(True) & User.password_hash.is_not(None)
    if state == "disabled":
        return User.active.is_(False)
    if state == "locked":
        return User.locked_until > now
    if state == "invited":
        return User.password_hash.is_(None)
    raise ValueError(state)


def staff_page(after: int, size: int = PAGE_SIZE, role: str = "", state: str = "") -> tuple[list[User], int | None]:
    """One page of staff accounts with an id above ``after``, by id, filtered by a role they hold
    (any staff role when empty) and state; and the next cursor. Requesters never."""
    roles = [Role(role)] if role else list(STAFF_ROLES)
    holds = exists().where(UserRole.user_id == User.id, UserRole.role.in_(roles))
    query = select(User).where(holds, User.id > after)
    if state:
        query = query.where(_state_condition(state, utcnow()))
    rows = db.session.execute(query.order_by(User.id).limit(size + 1)).scalars().all()
    next_after = rows[size - 1].id if len(rows) > size else None
    return list(rows[:size]), next_after


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["FACILITY_TIMEZONE"])


def _render_index(lookup: LookupForm, filters: UserFilterForm, status: int = 200, **page: Any) -> tuple[str, int]:
    values = {"looked_up": False, "found": None, "users": [], "next_after": None, "after": 0, "problem": None,
              "filter_args": {}, **page}
    return render_template("admin/users/index.html", lookup=lookup, filters=filters, zone=_zone(), now=utcnow(),
                           **values), status


@bp.route("/")
@require(Permission.USERS_MANAGE)
def index() -> tuple[str, int]:
    """Staff accounts, 50 a page (``?after=<id>``), filtered by ``role`` and ``state``; or one
    account of any role by exact address (``?email=``, audited)."""
    lookup = LookupForm(request.args)
    filters = UserFilterForm(request.args)
    if "email" in request.args:
        if not lookup.validate():
            return _render_index(lookup, filters, 400)
        found = find_by_email(lookup.email.data)
        record("user.looked_up", actor=current_user._get_current_object(), object_type="user" if found else None,
               object_id=found.id if found else None, details={"found": found is not None})
        db.session.commit()
        return _render_index(lookup, filters, looked_up=True, found=found)
    if not filters.validate():
        return _render_index(lookup, filters, 400, problem=_("Some filters are not valid. Choose from the lists "
                                                             "and filter again."))
    after = _after_param()
    role, state = filters.role.data or "", filters.state.data or ""
    users, next_after = staff_page(after, role=role, state=state)
    filter_args = {key: value for key, value in (("role", role), ("state", state)) if value}
    return _render_index(lookup, filters, users=users, next_after=next_after, after=after, filter_args=filter_args)


@bp.route("/invite", methods=["GET", "POST"])
@require(Permission.USERS_MANAGE)
def invite() -> Response | str | tuple[str, int]:
    """Invite a staff member by e-mail, with their name and one or several roles."""
    form = InviteForm()
    if form.validate_on_submit():
        try:
            user = invite_staff(form.email.data, form.roles.data, current_user._get_current_object(),
                                display_name=form.display_name.data)
        except InvitationRefused as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("Account #%(id)d invited. The e-mail with the link is on its way.", id=user.id), "success")
            return redirect(url_for("admin_users.detail", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/users/invite.html", form=form), status


def _load(user_id: int) -> User:
    return db.get_or_404(User, user_id)


def _identity_form(user: User) -> IdentityForm:
    return IdentityForm(formdata=None, display_name=user.display_name or "",
                        licence_type=user.licence_type.value if user.licence_type else "",
                        licence_number=user.licence_number or "", licence_state=user.licence_state or "")


def _detail_page(user: User, status: int = 200, roles_form: RolesForm | None = None,
                 identity_form: IdentityForm | None = None, disable_form: DisableForm | None = None
                 ) -> tuple[str, int]:
    codes_left = remaining_recovery_codes(user) if user.is_staff and user.mfa_enrolled else None
    if roles_form is None:
        roles_form = RolesForm(formdata=None, roles=[role.value for role in user.ordered_roles if role.is_staff])
    if identity_form is None:
        identity_form = _identity_form(user)
    # Only the page's advice: the services decide again, with the rows locked.
    last_admin = user.has_role(Role.ADMIN) and user.active and not another_active_admin(user)
    return render_template("admin/users/detail.html", user=user, form=ActionForm(), codes_left=codes_left,
                           locked=is_locked(user), is_self=user.id == current_user.id, last_admin=last_admin,
                           roles_form=roles_form, identity_form=identity_form,
                           disable_form=disable_form or DisableForm(formdata=None), zone=_zone()), status


@bp.route("/<int(max=2147483647):user_id>")
@require(Permission.USERS_MANAGE)
def detail(user_id: int) -> tuple[str, int]:
    """One account and the actions on it. Opening a requester's account is audited."""
    user = _load(user_id)
    if not user.is_staff:
        record("user.viewed", actor=current_user._get_current_object(), object_type="user", object_id=user.id)
        db.session.commit()
    return _detail_page(user)


def _refused(exc: AccountError, user_id: int) -> Response:
    db.session.rollback()
    flash(str(exc), "warning")
    return redirect(url_for("admin_users.detail", user_id=user_id))


@bp.route("/<int(max=2147483647):user_id>/roles", methods=["POST"], endpoint="set_roles")
@require(Permission.USERS_MANAGE)
def set_roles_view(user_id: int) -> Response | tuple[str, int]:
    """Give a staff account its roles (one or several); its sessions end at once."""
    user = _load(user_id)
    form = RolesForm()
    # A requester's page has no roles form to show errors on; the service refuses with the reason.
    if user.is_staff and not form.validate_on_submit():
        return _detail_page(user, 400, roles_form=form)
    try:
        set_roles(user, form.roles.data or [], current_user._get_current_object())
    except AccountError as exc:
        return _refused(exc, user_id)
    db.session.commit()
    flash(_("Account #%(id)d now holds these roles: %(roles)s. Its sessions have ended; the new roles apply "
            "from its next sign-in.", id=user.id, roles=roles_label(user.roles)), "success")
    return redirect(url_for("admin_users.detail", user_id=user.id))


@bp.route("/<int(max=2147483647):user_id>/identity", methods=["POST"], endpoint="set_identity")
@require(Permission.USERS_MANAGE)
def set_identity_view(user_id: int) -> Response | tuple[str, int]:
    """Change a staff member's name and professional licence (audited with the field names only)."""
    user = _load(user_id)
    form = IdentityForm()
    if not user.is_staff:
        return _refused(AccountError(_("Account #%(id)d is a records requester's account; it has no staff name "
                                       "or licence.", id=user.id)), user_id)
    if not form.validate_on_submit():
        return _detail_page(user, 400, identity_form=form)
    try:
        changed = set_identity(user, current_user._get_current_object(), form.display_name.data,
                               form.licence_type.data, form.licence_number.data, form.licence_state.data)
    except IdentityError as exc:
        db.session.rollback()
        getattr(form, exc.field).errors.append(str(exc))
        return _detail_page(db.get_or_404(User, user_id), 400, identity_form=form)
    db.session.commit()
    if changed:
        flash(_("Name and licence of account #%(id)d saved.", id=user.id), "success")
    else:
        flash(_("Nothing changed on account #%(id)d.", id=user.id), "info")
    return redirect(url_for("admin_users.detail", user_id=user.id))


@bp.route("/<int(max=2147483647):user_id>/disable", methods=["POST"])
@require(Permission.USERS_MANAGE)
def disable(user_id: int) -> Response | tuple[str, int]:
    """Disable an account (after a ticked confirmation); every session of it ends at once."""
    user = _load(user_id)
    form = DisableForm()
    if not form.validate_on_submit():
        return _detail_page(user, 400, disable_form=form)
    try:
        disable_user(user, current_user._get_current_object())
    except AccountError as exc:
        return _refused(exc, user_id)
    db.session.commit()
    flash(_("Account #%(id)d disabled. Its sessions have ended and it cannot sign in.", id=user.id), "success")
    return redirect(url_for("admin_users.detail", user_id=user.id))


@bp.route("/<int(max=2147483647):user_id>/enable", methods=["POST"])
@require(Permission.USERS_MANAGE)
def enable(user_id: int) -> Response:
    """Let a disabled account sign in again (its old sessions stay ended)."""
    user = _load(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        enable_user(user, current_user._get_current_object())
    except AccountError as exc:
        return _refused(exc, user_id)
    db.session.commit()
    flash(_("Account #%(id)d re-enabled. It can sign in again.", id=user.id), "success")
    return redirect(url_for("admin_users.detail", user_id=user.id))


@bp.route("/<int(max=2147483647):user_id>/unlock", methods=["POST"])
@require(Permission.USERS_MANAGE)
def unlock_account(user_id: int) -> Response:
    """Lift a sign-in lock and forget the failures that led to it."""
    user = _load(user_id)
    if not is_locked(user) and not user.failed_logins:
        flash(_("Account #%(id)d is not locked; nothing changed.", id=user.id), "info")
    else:
        unlock(user, current_user._get_current_object())
        db.session.commit()
        flash(_("Account #%(id)d unlocked.", id=user.id), "success")
    return redirect(url_for("admin_users.detail", user_id=user.id))


@bp.route("/<int(max=2147483647):user_id>/reset-mfa", methods=["POST"])
@require(Permission.USERS_MANAGE)
def reset_second_factor(user_id: int) -> Response:
    """Forget a staff member's authenticator and recovery codes and end their sessions."""
    user = _load(user_id)
    if user.id == current_user.id:
        flash(_("You cannot reset your own second factor here. Ask another administrator."), "warning")
    elif not user.is_staff:
        flash(_("Account #%(id)d is not a staff account and has no second factor.", id=user.id), "warning")
    else:
        reset_mfa(user, current_user._get_current_object())
        db.session.commit()
        flash(_("Second factor reset for account #%(id)d; its sessions have ended. "
                "An authenticator is set up again at the next sign-in.", id=user.id), "success")
    return redirect(url_for("admin_users.detail", user_id=user.id))
