"""Self-service account rules: registration, e-mail verification and password reset.

Plain functions, free of HTTP: each checks its rule, changes state, queues its e-mail and writes
its audit event in the caller's transaction; the view commits once. None of them lets the caller
tell whether an address has an account: the views show one page whatever happened, and the
outcome reaches only the owner of the address, by e-mail.

E-mails carry links and nothing else of substance: never health information, never a name,
never a word about records. Links are built on ``PUBLIC_BASE_URL``, never on the Host header of
the request, so a forged Host cannot point a reset link at someone else's server.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from flask_babel import format_timedelta
from sqlalchemy import delete, insert, literal, select
from sqlalchemy.exc import IntegrityError

from intake.audit.services import record
from intake.auth.models import PasswordResetRequest
from intake.auth.services import clear_failures
from intake.database import affected_rows
from intake.db_types import utcnow
from intake.extensions import db
from intake.i18n import page_locale, recipient_locale
from intake.notify.mail import send_mail
from intake.notify.services import public_url
from intake.security.passwords import hash_password, password_problems
from intake.security.tokens import Purpose, make_token, max_age
from intake.users.models import Role, User, UserRole
from intake.users.services import AccountError, email_index, end_all_sessions, find_by_email

# Outbox ``kind`` of each message this module sends.
MAIL_VERIFY = "verify_email"
MAIL_ACCOUNT_EXISTS = "account_exists"
MAIL_RESET = "reset_password"
MAIL_PASSWORD_CHANGED = "password_changed"


class PasswordRejected(ValueError):
    """The password breaks the policy; ``problems`` are messages to show next to the field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Registration(StrEnum):
    """What ``register_requester`` did. Never shown to the person registering."""

    CREATED = "created"  # a new, unverified requester account; a verification link went out
    EXISTING = "existing"  # the address already had an account; its owner was told, nothing created


def link_lifetime(purpose: Purpose) -> str:
    """How long a link of this purpose works, in words ("2 days", "1 hour")."""
    return format_timedelta(timedelta(seconds=max_age(purpose)), threshold=1)


def register_requester(email: str, password: str) -> Registration:
    """Self-registration of a former patient (or their representative).

    The password is checked first, for every address, so its verdict says nothing about
    whether the address is taken. A new address gets an unverified requester account and a
    verification link; an address that already has an account gets no second account: its
    owner is told by e-mail instead (a disabled account is told that it is closed).

    Every address costs the same work, in the same order, so neither the answer nor the time it
    takes tells them apart (tests/test_security_findings.py compares the statements and hash calls):
    one argon2 hash; one INSERT of the account in a savepoint, which the unique index on the address
    refuses when it is taken (also when someone registers it at this very instant); one lookup; one
    e-mail queued; one audit event.

    Raises ``PasswordRejected`` before anything is written.
    """
    problems = password_problems(password, email)
    if problems:
        raise PasswordRejected(problems)
    email = email.strip()
    password_hash = hash_password(password)
    created = _insert_requester(email, password_hash)
    user = find_by_email(email)
    if user is None:  # the address's account went away between the insert and the lookup
        raise AccountError("the account could not be created; try again")
    if created:
        _send_verification_link(user)
        record("account.registered", actor=user, object_type="user", object_id=user.id,
               details={"role": Role.REQUESTER.value})
        return Registration.CREATED
    _send_account_exists_notice(user)
    record("account.register_existing", object_type="user", object_id=user.id,
           details={"notice_sent": True, "active": bool(user.active)})
    return Registration.EXISTING


def _insert_requester(email: str, password_hash: str) -> bool:
    """Insert an unverified requester account in a savepoint; False when the address is taken.

    The role row is written by one statement run for every address (for a taken one it names no
    account and inserts nothing), so a new address costs the same statements as a taken one."""
    now = utcnow()
    new_id = 0
    try:
        with db.session.begin_nested():
            user = User(email=email, email_index=email_index(email), password_hash=password_hash,
                        password_changed_at=now, email_verified_at=None,
                        locale=page_locale())  # the language the registration pages were read in
            db.session.add(user)
            db.session.flush()
            new_id = user.id
    except IntegrityError:
        user = None
    db.session.execute(insert(UserRole).from_select(
        ["user_id", "role"], select(User.id, literal(Role.REQUESTER.value)).where(User.id == new_id)))
    if user is not None:
        db.session.expire(user)  # the lookup that follows loads it, and its role, as for a taken address
    return new_id != 0


def resend_verification(user: User) -> bool:
    """Send a fresh verification link; False (and nothing sent) when the address is verified.

    Earlier links keep working until they expire or one of them is used.
    """
    if user.email_verified_at is not None:
        return False
    _send_verification_link(user)
    record("account.verification_resent", actor=user, object_type="user", object_id=user.id)
    return True


def verify_email(user: User) -> bool:
    """Mark the address as proven (the owner opened the link). False when it already was.

    Verification is what allows a requester to submit records requests.
    """
    if user.email_verified_at is not None:
        return False
    user.email_verified_at = utcnow()
    record("account.email_verified", actor=user, object_type="user", object_id=user.id,
           details={"via": "link"})
    return True


def request_password_reset(email: str) -> None:
    """Queue a reset link for ``email``, doing exactly the same work whatever the address.

    Nothing is looked up while the visitor waits: the address is stored (encrypted) and the request
    audited, without the address, in the same two statements for every address, so the answer and
    its timing cannot tell whether an account exists. ``send_reset_links`` (run by ``flask outbox
    send``, every 30 seconds as a service) looks the address up and queues the link, or nothing.
    """
    db.session.add(PasswordResetRequest(email=email.strip()))
    db.session.flush()
    record("password.reset_requested")


def send_reset_links(limit: int = 200, now: datetime | None = None) -> int:
    """Resolve the queued reset requests, oldest first: a link for an active account with the
    address, nothing for an unknown address or a disabled account, nothing either for a request
    older than a link's lifetime (the sender was down). Each request is claimed by deleting it, so
    two senders never handle one twice, and audited with its outcome (never the address). Commits
    each one; returns how many links were queued."""
    now = now or utcnow()
    too_old = now - timedelta(seconds=max_age(Purpose.RESET_PASSWORD))
    queued = 0
    ids = db.session.execute(select(PasswordResetRequest.id).order_by(PasswordResetRequest.id)
                             .limit(limit)).scalars().all()
    for request_id in ids:
        pending = db.session.get(PasswordResetRequest, request_id)
        claimed = affected_rows(db.session.execute(delete(PasswordResetRequest)
                                                   .where(PasswordResetRequest.id == request_id)
                                                   .execution_options(synchronize_session=False)))
        if pending is None or claimed != 1:
            db.session.rollback()  # another sender has it
            continue
        db.session.expunge(pending)
        user = find_by_email(pending.email)
        if pending.requested_at < too_old:
            result = "expired"
        elif user is None:
            result = "unknown_account"
        elif not user.active:
            result = "disabled"
        else:
            _send_reset_link(user)
            result, queued = "link_sent", queued + 1
        record("password.reset_resolved", object_type="user" if user else None, object_id=user.id if user else None,
               details={"result": result})
        db.session.commit()
    return queued


def _send_reset_link(user: User) -> None:
    link = public_url("reset.choose_password", token=make_token(user, Purpose.RESET_PASSWORD))
    with recipient_locale(user):  # the lifetime in the owner's language too
        lifetime = link_lifetime(Purpose.RESET_PASSWORD)
    send_mail("reset_password", user, kind=MAIL_RESET, link=link, lifetime=lifetime)


def reset_password(user: User, new_password: str) -> None:
    """Set a new password from a reset link, and end every session of the account.

    The reset signs nobody in: staff still pass their second factor at the next sign-in. Any
    sign-in lock is lifted (the owner proved they read mail at the address), and for the same
    reason an unverified address counts as verified from now on. The owner is told by e-mail.

    Raises ``PasswordRejected`` (nothing changed) when the new password breaks the policy.
    """
    if not user.active:
        raise AccountError("this account is disabled")
    problems = password_problems(new_password, user.email)
    if problems:
        raise PasswordRejected(problems)
    now = utcnow()
    user.password_hash = hash_password(new_password)
    user.password_changed_at = now
    end_all_sessions(user)
    clear_failures(user)
    verified_now = user.email_verified_at is None
    if verified_now:
        user.email_verified_at = now
    send_mail("password_reset_done", user, kind=MAIL_PASSWORD_CHANGED, reset_link=public_url("reset.request_link"))
    record("password.reset", actor=user, object_type="user", object_id=user.id,
           details={"email_verified_now": verified_now})


def _send_verification_link(user: User) -> None:
    link = public_url("registration.verify_email", token=make_token(user, Purpose.VERIFY_EMAIL))
    with recipient_locale(user):  # the lifetime in the owner's language too
        lifetime = link_lifetime(Purpose.VERIFY_EMAIL)
    send_mail("verify_email", user, kind=MAIL_VERIFY, link=link, lifetime=lifetime)


def _send_account_exists_notice(owner: User) -> None:
    if not owner.active:
        send_mail("account_exists_closed", owner, kind=MAIL_ACCOUNT_EXISTS)
        return
    send_mail("account_exists", owner, kind=MAIL_ACCOUNT_EXISTS, sign_in=public_url("auth.login"),
              reset_link=public_url("reset.request_link"))
