"""Requester registration and e-mail verification: accounts, links, no enumeration, hostile input,
audit and rate limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.auth.account_services import PasswordRejected, Registration, register_requester
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.permissions import Permission, can
from intake.users.models import Role, User
from intake.users.services import find_by_email
from tests.conftest import PASSWORD, csrf_token, login

NEW_PASSWORD = "a brand new registration passphrase"
SENT = "Check your e-mail"
NOT_VALID = "This link cannot be used"
EXPIRED = "This link has expired"
CSRF_FIELD = re.compile(r'<input[^>]*name="csrf_token"[^>]*>')


# --- helpers --------------------------------------------------------------------------------

def register(client, email, password=NEW_PASSWORD, confirm=None, **extra):
    data = {"email": email, "password": password, "confirm": password if confirm is None else confirm,
            "csrf_token": csrf_token(client, "/register"), **extra}
    return client.post("/register", data=data)


def outbox(app) -> list[OutboxMessage]:
    with app.app_context():
        messages = db.session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
        for message in messages:  # decrypt while the session is open
            _ = (message.recipient, message.body)
        db.session.expunge_all()
        return messages


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def counts(app) -> tuple[int, int, int]:
    return count(app, User), count(app, OutboxMessage), count(app, AuditEvent)


def audit_rows(app) -> list[tuple[str, str | None, str]]:
    with app.app_context():
        rows = db.session.execute(
            select(AuditEvent.action, AuditEvent.object_id, AuditEvent.details).order_by(AuditEvent.seq)
        ).all()
        return [tuple(row) for row in rows]


def user_by_email(app, email) -> User | None:
    with app.app_context():
        user = find_by_email(email)
        if user is not None:
            db.session.expunge(user)
        return user


def link_path(app, body: str, kind: str = "/register/verify/") -> str:
    """The path of the one link of this kind in an e-mail body (links are absolute)."""
    base = app.config["PUBLIC_BASE_URL"]
    links = re.findall(re.escape(base) + r"(" + re.escape(kind) + r"[^\s]+)", body)
    assert len(links) == 1, body
    return links[0]


def verification_path(app, email) -> str:
    mails = [m for m in outbox(app) if m.kind == "verify_email" and m.recipient == email]
    assert mails, "no verification e-mail queued"
    return link_path(app, mails[-1].body)


def field_error(html: str, field: str) -> str:
    match = re.search(rf'<div id="{field}-error"[^>]*>(.*?)</div>', html, re.S)
    return match.group(1) if match else ""


NONCE = re.compile(r' nonce="[A-Za-z0-9_-]+"')


def without_csrf(html: str) -> str:
    """The page without what differs on every response whoever asks: the form token and the
    scripts' CSP nonce."""
    return NONCE.sub("", CSRF_FIELD.sub("", html))


# --- registration ---------------------------------------------------------------------------

def test_registration_creates_an_unverified_requester_who_can_sign_in_but_not_submit(app, client):
    response = register(client, "new.person@example.org")
    assert response.status_code == 200
    assert SENT in response.get_data(as_text=True)

    user = user_by_email(app, "new.person@example.org")
    assert user is not None and user.roles == {Role.REQUESTER} and user.active
    assert user.email_verified_at is None
    assert can(user, Permission.REQUESTS_OWN)
    assert not can(user, Permission.REQUESTS_SUBMIT)

    assert login(client, "new.person@example.org", NEW_PASSWORD).status_code == 302
    page = client.get("/account").get_data(as_text=True)
    assert "Please confirm your e-mail address" in page and "Send the link again" in page


def test_the_verification_email_carries_the_link_and_nothing_else(app, client):
    register(client, "mail.check@example.org")
    [message] = outbox(app)
    assert message.kind == "verify_email"
    assert message.recipient == "mail.check@example.org"
    assert message.subject == "Confirm your e-mail address for The Canyon at Peace Park"
    path = link_path(app, message.body)
    assert path.startswith("/register/verify/") and len(path) > 60
    assert "If this was not you" in message.body
    lowered = message.body.lower()
    for word in ("record", "patient", "treatment", "addiction", "drug", NEW_PASSWORD):
        assert word not in lowered


def test_get_shows_a_button_and_changes_nothing_post_verifies(app, client):
    register(client, "verify.me@example.org")
    path = verification_path(app, "verify.me@example.org")
    before = counts(app)

    page = client.get(path)  # what a mail scanner does
    assert page.status_code == 200
    assert "Confirm my e-mail address" in page.get_data(as_text=True)
    assert user_by_email(app, "verify.me@example.org").email_verified_at is None
    assert counts(app) == before

    response = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "your e-mail address is confirmed" in client.get("/login").get_data(as_text=True)
    user = user_by_email(app, "verify.me@example.org")
    assert user.email_verified_at is not None
    assert can(user, Permission.REQUESTS_SUBMIT)
    assert "account.email_verified" in [row[0] for row in audit_rows(app)]


def test_a_used_link_is_refused_and_changes_nothing(app, client):
    register(client, "twice@example.org")
    path = verification_path(app, "twice@example.org")
    client.post(path, data={"csrf_token": csrf_token(client, path)})
    verified_at = user_by_email(app, "twice@example.org").email_verified_at
    assert verified_at is not None

    again = client.get(path)
    assert again.status_code == 400 and NOT_VALID in again.get_data(as_text=True)
    again = client.post(path, data={"csrf_token": csrf_token(client, "/register")})
    assert again.status_code == 400 and NOT_VALID in again.get_data(as_text=True)
    assert user_by_email(app, "twice@example.org").email_verified_at == verified_at
    assert audit_rows(app)[-1][0] == "account.verification_refused"


def test_verification_signed_in_returns_to_the_account_page(app, client):
    register(client, "signed.in@example.org")
    login(client, "signed.in@example.org", NEW_PASSWORD)
    path = verification_path(app, "signed.in@example.org")
    response = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    page = client.get("/account").get_data(as_text=True)
    assert "your e-mail address is confirmed" in page
    assert "Send the link again" not in page


def test_an_expired_link_is_refused_with_a_clear_message(app, client):
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        register(client, "late@example.org")
        path = verification_path(app, "late@example.org")
        clock.move_to(start + timedelta(hours=47, minutes=59))
        assert client.get(path).status_code == 200  # still fresh just before 48 hours
        clock.move_to(start + timedelta(hours=48, minutes=1))
        response = client.get(path)
        assert response.status_code == 400
        assert EXPIRED in response.get_data(as_text=True)
        response = client.post(path, data={"csrf_token": csrf_token(client, "/register")})
        assert response.status_code == 400 and EXPIRED in response.get_data(as_text=True)
    assert user_by_email(app, "late@example.org").email_verified_at is None
    assert audit_rows(app)[-1][2] == '{"reason":"expired"}'


def test_link_lifetime_follows_the_setting(app, client):
    app.config["TOKEN_MAX_AGE_VERIFY_EMAIL"] = 60
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        register(client, "short.lived@example.org")
        path = verification_path(app, "short.lived@example.org")
        clock.move_to(start + timedelta(seconds=61))
        assert EXPIRED in client.get(path).get_data(as_text=True)


def _tamper(path: str) -> str:
    """Change the first character of the signature. (Not the last: its low bits are base64
    padding, so some changes there decode to the very same signature.)"""
    cut = path.rindex(".") + 1
    return path[:cut] + ("A" if path[cut] != "A" else "B") + path[cut + 1:]


@pytest.mark.parametrize("mangle", [
    _tamper,
    lambda path: path.replace("/register/verify/", "/register/verify/x"),
    lambda path: "/register/verify/" + "A" * 5000,
    lambda path: "/register/verify/%00%3Cscript%3E",
    lambda path: "/register/verify/ñandú🌵",
    lambda path: path + ".extra",
])
def test_a_tampered_link_is_refused_never_a_500(app, client, mangle):
    register(client, "tamper@example.org")
    path = mangle(verification_path(app, "tamper@example.org"))
    response = client.get(path)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert NOT_VALID in body and "<script>" not in body
    response = client.post(path, data={"csrf_token": csrf_token(client, "/register")})
    assert response.status_code == 400 and NOT_VALID in response.get_data(as_text=True)
    assert user_by_email(app, "tamper@example.org").email_verified_at is None


def test_a_reset_link_does_not_verify_an_address(app, client):
    """Tokens are bound to their purpose: a link of one kind never works as another."""
    register(client, "purpose@example.org")
    path = verification_path(app, "purpose@example.org")
    response = client.get(path.replace("/register/verify/", "/reset/"))
    assert response.status_code == 400


@pytest.mark.parametrize("typed", ["Owner.Person@Example.org", "owner.person@example.org", "OWNER.PERSON@EXAMPLE.ORG",
                                   "  owner.person@example.org "])
def test_an_existing_address_gets_the_same_page_and_its_owner_a_notice(app, client, make_user, typed):
    owner = make_user(Role.REQUESTER, email="Owner.Person@Example.org")
    fresh = register(app.test_client(), "someone.new@example.org")
    before_users = count(app, User)
    taken = register(client, typed, password="a different passphrase 99")

    assert taken.status_code == fresh.status_code == 200
    assert without_csrf(taken.get_data(as_text=True)) == without_csrf(fresh.get_data(as_text=True))
    assert count(app, User) == before_users  # no second account
    notice = outbox(app)[-1]
    assert notice.kind == "account_exists"
    assert notice.recipient == "Owner.Person@Example.org"  # the stored address, not the typed one
    assert notice.subject == "You already have an account at The Canyon at Peace Park"
    assert "/reset" in notice.body and "/register/verify/" not in notice.body
    assert "a different passphrase 99" not in notice.body
    assert "If this was not you" in notice.body
    action, object_id, _details = audit_rows(app)[-1]
    assert (action, object_id) == ("account.register_existing", str(owner.id))
    # The owner's account is untouched: the old password still works, the new one does not.
    assert login(app.test_client(), owner.email, "a different passphrase 99").status_code == 200
    assert login(app.test_client(), owner.email, PASSWORD).status_code == 302


def test_a_staff_address_is_not_revealed_either(app, client, make_user):
    operator = make_user(Role.OPERATOR, email="staffer@example.org")
    response = register(client, "staffer@example.org")
    assert response.status_code == 200 and SENT in response.get_data(as_text=True)
    assert user_by_email(app, "staffer@example.org").roles == {Role.OPERATOR}
    assert [m.kind for m in outbox(app)] == ["account_exists"]
    assert outbox(app)[0].recipient == operator.email


def test_a_disabled_accounts_address_gets_the_same_page_and_a_closed_account_notice(app, client, make_user):
    """The same work as for any address (a notice queued); the notice says the account is closed."""
    make_user(Role.REQUESTER, email="gone@example.org", active=False)
    response = register(client, "gone@example.org")
    assert response.status_code == 200 and SENT in response.get_data(as_text=True)
    [notice] = outbox(app)
    assert (notice.kind, notice.recipient) == ("account_exists", "gone@example.org")
    assert "Your account there is closed" in notice.body and "/reset" not in notice.body
    assert audit_rows(app)[-1][0] == "account.register_existing"
    assert audit_rows(app)[-1][2] == '{"active":false,"notice_sent":true}'


def test_a_simultaneous_registration_of_the_same_address_is_not_a_500(app, make_user):
    """Two people register one new address at the same instant: the unique index lets one insert
    through and turns the other into the "existing" case, never a 500 or a second account."""
    import threading

    make_user(Role.ADMIN)  # the database is not empty
    clients = [app.test_client() for _ in range(2)]
    tokens = [csrf_token(c, "/register") for c in clients]
    start, answers = threading.Barrier(2), []

    def go(client, token):
        start.wait()
        answers.append(client.post("/register", data={"email": "race@example.org", "password": NEW_PASSWORD,
                                                      "confirm": NEW_PASSWORD, "csrf_token": token}).status_code)

    threads = [threading.Thread(target=go, args=pair) for pair in zip(clients, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [200, 200]
    assert len([u for u in (user_by_email(app, "race@example.org"),) if u]) == 1
    assert sorted(m.kind for m in outbox(app) if m.recipient == "race@example.org") == ["account_exists",
                                                                                       "verify_email"]
    actions = [row[0] for row in audit_rows(app)]
    assert actions.count("account.registered") == 1 and actions.count("account.register_existing") == 1


# --- malformed and hostile input: 400, the message at the field, nothing written ---------------

@pytest.mark.parametrize("email,password,confirm,field,message", [
    ("a@example.org", NEW_PASSWORD, NEW_PASSWORD + "x", "confirm", "The two passwords are not the same."),
    ("a@example.org", "password123", None, "password", "one of the most common"),
    ("a@example.org", "short", None, "password", "at least 8"),
    ("a@example.org", "p" * 129, None, "password", "at most 128"),
    ("long.name@example.org", "long.name@example.org", None, "password", "Do not use your e-mail address"),
    ("a@example.org", "", "", "password", "Choose a password."),
    ("a@example.org", NEW_PASSWORD, "", "confirm", "Type the password a second time."),
    ("", NEW_PASSWORD, None, "email", "Enter your e-mail address."),
    ("not-an-address", NEW_PASSWORD, None, "email", "Enter an e-mail address like"),
    ("a" * 250 + "@example.org", NEW_PASSWORD, None, "email", "too long"),
    ("ñ" * 300 + "@example.org", NEW_PASSWORD, None, "email", "too long"),
    ("<script>alert(1)</script>@example.org", NEW_PASSWORD, None, "email", "Enter an e-mail address like"),
    ("nul\x00byte@example.org", NEW_PASSWORD, None, "email", "Enter an e-mail address like"),
    ("a@example.org\r\nBcc: victim@example.org", NEW_PASSWORD, None, "email", "Enter an e-mail address like"),
    ("' OR 1=1 --@example.org", NEW_PASSWORD, None, "email", "Enter an e-mail address like"),
    ("a@example.org", "long enough\x00passphrase", None, "password", "control characters"),
    ("a@example.org", "🌵" * 129, None, "password", "at most 128"),
])
def test_malformed_registration(app, client, email, password, confirm, field, message):
    before = counts(app)
    response = register(client, email, password, confirm)
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in field_error(body, field)
    assert "<script>alert(1)</script>" not in body  # echoed input is escaped
    if password and password != email:
        assert password not in body  # passwords are never echoed back
    assert counts(app) == before


def test_an_oversized_field_gets_a_message(app, client):
    before = counts(app)
    response = register(client, "x" * 200_000)
    assert response.status_code == 400 and "too long" in field_error(response.get_data(as_text=True), "email")
    assert counts(app) == before


def test_registration_without_csrf_token_is_refused(app, client):
    before = counts(app)
    response = client.post("/register", data={"email": "a@example.org", "password": NEW_PASSWORD,
                                              "confirm": NEW_PASSWORD})
    assert response.status_code == 400
    assert "form has expired" in response.get_data(as_text=True)
    assert counts(app) == before


def test_a_weak_password_is_refused_the_same_way_for_a_taken_address(app, client, make_user):
    make_user(Role.REQUESTER, email="taken@example.org")
    free = register(app.test_client(), "free@example.org", "password123")
    taken = register(client, "taken@example.org", "password123")
    assert free.status_code == taken.status_code == 400
    assert field_error(free.get_data(as_text=True), "password") == field_error(taken.get_data(as_text=True), "password")
    assert outbox(app) == []


def test_signed_in_users_are_sent_to_their_account(client, login_as):
    login_as(Role.REQUESTER)
    response = client.get("/register")
    assert response.status_code == 302 and response.headers["Location"] == "/account"


# --- sending the link again -------------------------------------------------------------------

def test_an_unverified_requester_can_get_a_new_link(app, client):
    register(client, "again@example.org")
    login(client, "again@example.org", NEW_PASSWORD)
    response = client.post("/account/verify/resend", data={"csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert "We sent a new link" in client.get("/account").get_data(as_text=True)
    mails = [m for m in outbox(app) if m.kind == "verify_email"]
    assert len(mails) == 2
    assert audit_rows(app)[-1][0] == "account.verification_resent"

    newest = link_path(app, mails[1].body)
    client.post(newest, data={"csrf_token": csrf_token(client, newest)})
    assert user_by_email(app, "again@example.org").email_verified_at is not None
    oldest = link_path(app, mails[0].body)
    assert client.get(oldest).status_code == 400  # verifying spent every earlier link


def test_a_verified_user_gets_no_banner_and_no_mail(app, client, login_as):
    login_as(Role.REQUESTER)
    page = client.get("/account").get_data(as_text=True)
    assert "Send the link again" not in page
    response = client.post("/account/verify/resend", data={"csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 302
    assert "already confirmed" in client.get("/account").get_data(as_text=True)
    assert outbox(app) == []


def test_resend_needs_post_and_csrf(app, client):
    register(client, "csrf.resend@example.org")
    login(client, "csrf.resend@example.org", NEW_PASSWORD)
    assert client.get("/account/verify/resend").status_code == 405
    assert client.post("/account/verify/resend").status_code == 400
    assert len(outbox(app)) == 1


# --- audit ------------------------------------------------------------------------------------

def test_registration_and_verification_are_audited_without_the_address(app, client, make_user):
    make_user(Role.REQUESTER, email="Existing.Owner@example.org")
    register(client, "Audit.Me@example.org")
    register(app.test_client(), "existing.owner@example.org")
    path = verification_path(app, "Audit.Me@example.org")
    client.post(path, data={"csrf_token": csrf_token(client, path)})

    rows = audit_rows(app)
    actions = [row[0] for row in rows]
    for action in ("user.created", "account.registered", "account.register_existing", "account.email_verified"):
        assert action in actions
    user = user_by_email(app, "Audit.Me@example.org")
    assert ("account.registered", str(user.id)) in [(a, o) for a, o, _ in rows]
    for _action, _object, details in rows:
        lowered = details.lower()
        assert "audit.me" not in lowered and "existing.owner" not in lowered and "@" not in lowered
        assert NEW_PASSWORD not in details


# --- the service on its own, without HTTP -------------------------------------------------------

def test_register_requester_as_a_plain_function(app, ctx):
    assert register_requester("plain@example.org", NEW_PASSWORD) is Registration.CREATED
    db.session.commit()
    assert register_requester("PLAIN@example.org", NEW_PASSWORD) is Registration.EXISTING
    db.session.commit()
    with pytest.raises(PasswordRejected) as refused:
        register_requester("weak@example.org", "qwertyuiop")
    assert "most common" in " ".join(refused.value.problems)
    db.session.rollback()
    assert find_by_email("weak@example.org") is None
    assert [m.kind for m in db.session.execute(select(OutboxMessage)).scalars()] == ["verify_email", "account_exists"]


# --- rate limit -------------------------------------------------------------------------------

def test_the_fourth_registration_from_one_address_is_refused(limited_app):
    client = limited_app.test_client()
    statuses = [register(client, f"burst{n}@example.org").status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert "Too many attempts" in register(client, "burst9@example.org").get_data(as_text=True)
    assert user_by_email(limited_app, "burst3@example.org") is None
    assert user_by_email(limited_app, "burst2@example.org") is not None
    assert client.get("/register").status_code == 200  # only the POST is limited
    other = limited_app.test_client()
    response = other.post("/register", environ_base={"REMOTE_ADDR": "192.0.2.7"},
                          data={"email": "elsewhere@example.org", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                "csrf_token": csrf_token(other, "/register")})
    assert response.status_code == 200  # another address has its own budget


def test_sending_the_link_again_is_rate_limited(limited_app):
    client = limited_app.test_client()
    register(client, "resender@example.org")
    login(client, "resender@example.org", NEW_PASSWORD)
    token = csrf_token(client, "/account")
    statuses = [client.post("/account/verify/resend", data={"csrf_token": token}).status_code for _ in range(4)]
    assert statuses == [302, 302, 302, 429]
    assert len(outbox(limited_app)) == 4  # the registration mail and three resends
