"""Staff invitations: an administrator (or the command line) invites a staff member by e-mail,
with their display name and one or several staff roles.

The invited account exists from the start, without a password and with an unverified address,
so nobody can sign in to it. The e-mail carries a signed link that works once (its fingerprint
covers the password hash and the MFA enrolment) and for ``TOKEN_MAX_AGE_INVITATION`` seconds
(3 days by default). Opening it lets the invitee choose a password and then enrol an
authenticator; only after that are they signed in.

An invitation whose link expired can be replaced by a password reset: the reset link goes to
the same address and leads to the same MFA enrolment at the first sign-in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import click
from email_validator import EmailNotValidError, validate_email
from flask.cli import with_appcontext
from flask_babel import format_timedelta
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.mail import send_mail
from intake.notify.services import public_url
from intake.security.passwords import hash_password, password_problems
from intake.security.tokens import Purpose, make_token, max_age
from intake.users.models import STAFF_ROLES, Role, User
from intake.users.services import (
    EMAIL_MAX_LENGTH,
    AccountError,
    IdentityError,
    email_index,
    find_by_email,
    parse_roles,
    require_display_name,
    role_values,
)

MAIL_INVITATION = "staff_invitation"


class InvitationRefused(AccountError):
    """``invite_staff`` refused; ``field`` names the form field the message belongs to."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class InvitationPasswordRejected(ValueError):
    """The invitee's chosen password breaks the policy; ``problems`` go next to the field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def invitation_link(user: User) -> str:
    """The absolute link in the invitation e-mail, built on ``PUBLIC_BASE_URL``.

    Built from the URL map rather than the request, so it works from the command line and never
    trusts a Host header.
    """
    return public_url("invitations.accept", token=make_token(user, Purpose.INVITATION))


def invite_staff(email: str, role: Role | str | Iterable[Role | str], actor: Any,
                 display_name: str | None = None) -> User:
    """Create a staff account (one or several staff roles, a display name) without a password
    and e-mail them a one-time link.

    Refuses (``InvitationRefused``, nothing written) no role, a role that is not a staff role, a
    missing or malformed name, an address that is not a plain e-mail address, and an address
    that already has an account of any kind. The e-mail says only that the recipient was invited
    to the facility's helpline and records system: no name, no health information.
    """
    try:
        roles = parse_roles(role)
    except AccountError as exc:
        raise InvitationRefused(_("Choose one or more staff roles from the list."), "roles") from exc
    if not roles:
        raise InvitationRefused(_("Choose at least one role."), "roles")
    if any(r not in STAFF_ROLES for r in roles):
        raise InvitationRefused(
            _("Only staff are invited; former patients create their own accounts."), "roles")
    try:
        name = require_display_name(display_name)
    except IdentityError as exc:
        raise InvitationRefused(str(exc), exc.field) from exc
    email = (email or "").strip()
    if len(email) > EMAIL_MAX_LENGTH or any(ord(ch) < 32 or ord(ch) == 127 for ch in email):
        raise InvitationRefused(_("Enter an e-mail address like name@example.org."), "email")
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvitationRefused(_("Enter an e-mail address like name@example.org."), "email") from exc
    if find_by_email(email) is not None:
        raise InvitationRefused(_("An account with this e-mail address already exists."), "email")
    user = User(email=email, email_index=email_index(email), roles=roles, display_name=name, password_hash=None,
                email_verified_at=None)
    try:
        # A savepoint: an invitation for the same address at this very moment loses on the
        # unique index and gets the same message, not a 500.
        with db.session.begin_nested():
            db.session.add(user)
    except IntegrityError as exc:
        raise InvitationRefused(_("An account with this e-mail address already exists."), "email") from exc
    record("user.invited", actor=actor, object_type="user", object_id=user.id, details={"roles": role_values(roles)})
    _send_invitation(user)
    return user


def _send_invitation(user: User) -> None:
    lifetime = format_timedelta(timedelta(seconds=max_age(Purpose.INVITATION)), threshold=1)
    send_mail("staff_invitation", user.email, kind=MAIL_INVITATION, link=invitation_link(user), lifetime=lifetime)


def accept_invitation(user: User, password: str) -> None:
    """Set the invitee's first password; opening the link also proved the e-mail address.

    Raises ``InvitationPasswordRejected`` (nothing changed) when the password breaks the policy.
    The caller then hands over to MFA enrolment (or signs in when MFA is turned off).
    """
    if user.password_hash is not None or not user.is_staff:
        raise AccountError("this invitation was already accepted")
    problems = password_problems(password, user.email)
    if problems:
        raise InvitationPasswordRejected(problems)
    now = utcnow()
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.email_verified_at = now
    record("user.invitation_accepted", actor=user, object_type="user", object_id=user.id,
           details={"roles": role_values(user.roles)})


def role_option(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Role]:
    """``--role`` as given on the command line: repeated, or several separated by commas."""
    roles = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            try:
                roles.append(Role(name))
            except ValueError as exc:
                raise click.BadParameter(f"{name!r} is not a role; choose from "
                                         f"{', '.join(r.value for r in Role)}") from exc
    if not roles:
        raise click.BadParameter("give at least one role")
    return roles


@click.command("invite")
@click.option("--email", required=True, help="The staff member's e-mail address (their sign-in name).")
@click.option("--name", "display_name", required=True, help="Their name, as colleagues and the audit trail know them.")
@click.option("--role", "roles", required=True, multiple=True, callback=role_option,
              help="A staff role (" + ", ".join(r.value for r in STAFF_ROLES) + "); repeat the option, or give "
                   "several separated by commas, for several roles.")
@with_appcontext
def invite_command(email: str, display_name: str, roles: list[Role]) -> None:
    """Invite a staff member: the account is created and an e-mail with a one-time link is queued."""
    try:
        user = invite_staff(email, roles, actor=None, display_name=display_name)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Invited account #{user.id} ({', '.join(role_values(user.roles))}). The invitation e-mail is in "
               "the outbox (delivered by `flask outbox send`).")
