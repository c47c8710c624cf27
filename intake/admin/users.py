"""Admin pages for accounts: the staff list, exact-address lookup, invitations, unlock, MFA reset.

Every view needs ``USERS_MANAGE``. Requesters (former patients) are never listed: an account
that says someone was a patient is found only by its exact address, and that lookup, like the
page of a requester account, is audited. Flash messages name accounts by number, never by
address.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from intake.admin.forms import ActionForm, InviteForm, LookupForm
from intake.audit.services import record
from intake.auth.mfa import remaining_recovery_codes, reset_mfa
from intake.auth.services import is_locked, unlock
from intake.extensions import db
from intake.permissions import Permission, require
from intake.users.invitations import InvitationRefused, invite_staff
from intake.users.models import Role, User
from intake.users.services import STAFF_ROLES, find_by_email

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


def staff_page(after: int, size: int = PAGE_SIZE) -> tuple[list[User], int | None]:
    """One page of operators and admins with an id above ``after``, by id; and the next cursor."""
    rows = db.session.execute(
        select(User).where(User.role.in_(STAFF_ROLES), User.id > after).order_by(User.id).limit(size + 1)
    ).scalars().all()
    next_after = rows[size - 1].id if len(rows) > size else None
    return list(rows[:size]), next_after


@bp.route("/")
@require(Permission.USERS_MANAGE)
def index() -> str | tuple[str, int]:
    """Staff accounts, 50 a page (``?after=<id>``); or one account of any role by exact address."""
    lookup = LookupForm(request.args)
    if "email" in request.args:
        if not lookup.validate():
            return render_template("admin/users/index.html", lookup=lookup, looked_up=False, users=[],
                                   next_after=None, after=0), 400
        found = find_by_email(lookup.email.data)
        record("user.looked_up", actor=current_user._get_current_object(), object_type="user" if found else None,
               object_id=found.id if found else None, details={"found": found is not None})
        db.session.commit()
        return render_template("admin/users/index.html", lookup=lookup, looked_up=True, found=found,
                               users=[], next_after=None, after=0)
    after = _after_param()
    users, next_after = staff_page(after)
    return render_template("admin/users/index.html", lookup=lookup, looked_up=False, users=users,
                           next_after=next_after, after=after)


@bp.route("/invite", methods=["GET", "POST"])
@require(Permission.USERS_MANAGE)
def invite() -> Response | str | tuple[str, int]:
    """Invite an operator or admin by e-mail."""
    form = InviteForm()
    if form.validate_on_submit():
        try:
            user = invite_staff(form.email.data, form.role.data, current_user._get_current_object())
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


@bp.route("/<int(max=2147483647):user_id>")
@require(Permission.USERS_MANAGE)
def detail(user_id: int) -> str:
    """One account and the actions on it. Opening a requester's account is audited."""
    user = _load(user_id)
    if user.role == Role.REQUESTER:
        record("user.viewed", actor=current_user._get_current_object(), object_type="user", object_id=user.id)
        db.session.commit()
    codes_left = remaining_recovery_codes(user) if user.is_staff and user.mfa_enrolled else None
    return render_template("admin/users/detail.html", user=user, form=ActionForm(), codes_left=codes_left,
                           locked=is_locked(user), is_self=user.id == current_user.id)


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
