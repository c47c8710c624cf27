"""My account: change password (this browser stays, the others end), recent sign-ins, new
recovery codes for staff, hostile input, locks and rate limits."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.auth.mfa import new_recovery_codes, use_recovery_code
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.security.passwords import verify_password
from intake.users.models import RecoveryCode, Role, User
from tests.conftest import FULL_ADMIN, PASSWORD, csrf_token, login, make_app, sql_statements, totp_code

NEW = "a fresh and different passphrase 9"
WRONG_CURRENT = "That is not your current password."
HEALTH_WORDS = ("medical", "clonazepam", "klonopin", "benzodiazepine", "treatment", "patient", "addiction", "drug",
                "substance", "suicid", "overdose")
FLASH_RE = re.compile(r'<div class="alert alert-(\w+)" role="status">(.*?)</div>', re.S)


# --- helpers (also used by test_invitations and test_admin_users) ----------------------------

def outbox(app) -> list[OutboxMessage]:
    with app.app_context():
        messages = db.session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
        for message in messages:  # decrypt while the session is open
            _ = (message.recipient, message.body)
        db.session.expunge_all()
        return messages


def audit(app, action: str | None = None) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.seq)
        if action:
            query = query.where(AuditEvent.action == action)
        rows = db.session.execute(query).scalars().all()
        db.session.expunge_all()
        return rows


def fetch_user(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        _ = user.email
        db.session.expunge(user)
        return user


def flashes(page: str) -> list[tuple[str, str]]:
    return [(category, html.unescape(text.strip())) for category, text in FLASH_RE.findall(page)]


def field_error(page: str, field: str) -> str:
    match = re.search(rf'<div id="{field}-error"[^>]*>(.*?)</div>', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip() if match else ""


def change(client, current=PASSWORD, new=NEW, confirm=None, token=None):
    data = {"current_password": current, "password": new, "confirm": new if confirm is None else confirm,
            "csrf_token": token or csrf_token(client, "/account/password")}
    return client.post("/account/password", data=data)


def client_from(app, address: str):
    """A test client whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def signed_in(client) -> bool:
    return client.get("/account").status_code == 200


# --- change password -------------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.REQUESTER, Role.OPERATOR])
def test_change_password_keeps_this_browser_and_ends_every_other(app, make_user, role):
    user = make_user(role)
    this, other = app.test_client(), app.test_client()
    assert login(this, user.email).status_code == 302
    assert login(other, user.email).status_code == 302
    assert signed_in(this) and signed_in(other)

    page = this.get("/account/password").get_data(as_text=True)
    assert 'autocomplete="current-password"' in page and 'for="confirm"' in page
    response = change(this)
    assert response.status_code == 302 and response.headers["Location"] == "/account"

    account = this.get("/account")
    assert account.status_code == 200  # this browser stays signed in, with the new session version
    assert ("success", "Your password is changed. You are still signed in here; every other session has ended.") \
        in flashes(account.get_data(as_text=True))
    assert other.get("/account").status_code == 302  # the other one is signed out

    stored = fetch_user(app, user.id)
    assert stored.session_version == user.session_version + 1
    assert stored.password_changed_at > user.password_changed_at
    with app.app_context():
        assert verify_password(stored.password_hash, NEW)
        assert not verify_password(stored.password_hash, PASSWORD)
    [changed] = audit(app, "password.changed")
    assert changed.actor_id == user.id and changed.object_id == str(user.id)

    [notice] = outbox(app)
    assert notice.kind == "password_changed" and notice.recipient == user.email
    assert "Your password was changed" in notice.body and "If this was not you" in notice.body
    assert not any(word in (notice.subject + notice.body).lower() for word in HEALTH_WORDS)


def test_after_a_change_only_the_new_password_signs_in(app, make_user):
    user = make_user(Role.REQUESTER)
    client = app.test_client()
    login(client, user.email)
    change(client)
    old = login(app.test_client(), user.email, PASSWORD)
    assert old.status_code == 200 and "The e-mail address or password is not right." in old.get_data(as_text=True)
    new = login(app.test_client(), user.email, NEW)
    assert new.status_code == 302 and new.headers["Location"] == "/my/requests/"


def test_a_change_does_not_stretch_the_absolute_timeout(app, make_user):
    """The absolute limit still counts from the real sign-in (requesters: 1 hour), not the change."""
    user = make_user(Role.REQUESTER)
    client = app.test_client()
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        login(client, user.email)
        for minutes in (10, 20, 30, 40, 50):
            clock.move_to(start + timedelta(minutes=minutes))
            assert signed_in(client), minutes
        assert change(client).status_code == 302
        clock.move_to(start + timedelta(minutes=58))
        assert signed_in(client)
        clock.move_to(start + timedelta(minutes=62))
        assert not signed_in(client)  # had the change restarted the clock, this would still be 200


def test_a_wrong_current_password_counts_as_a_failure_and_changes_nothing(app, client, make_user):
    user = make_user(Role.OPERATOR)
    login(client, user.email)
    response = change(client, current="not my password at all")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_error(page, "current_password") == WRONG_CURRENT
    stored = fetch_user(app, user.id)
    assert stored.password_hash == user.password_hash and stored.session_version == user.session_version
    assert stored.failed_logins == 1
    [failure] = audit(app, "login.failure")
    assert json.loads(failure.details) == {"reason": "wrong_current_password"}
    assert audit(app, "password.changed") == [] and outbox(app) == []
    assert signed_in(client)


LONG = "x" * 129
HUGE = "y" * 10_000


@pytest.mark.parametrize("new,confirm,field,message", [
    ("short", None, "password", "Use at least 8 characters"),
    ("password123", None, "password", "one of the most common"),
    (NEW, NEW + " but different", "confirm", "The two passwords are not the same."),
    (LONG, None, "password", "Passwords are at most 128 characters."),
    (HUGE, None, "password", "Passwords are at most 128 characters."),
    ("nul\x00inside the passphrase", None, "password", "invisible control characters"),
    ("", None, "password", "Choose a password."),
    (PASSWORD, None, "password", "different from your current one"),
])
def test_bad_new_passwords_are_refused_next_to_the_field(app, client, make_user, new, confirm, field, message):
    user = make_user(Role.REQUESTER)
    login(client, user.email)
    response = change(client, new=new, confirm=confirm)
    assert response.status_code == 400
    assert message in field_error(response.get_data(as_text=True), field)
    stored = fetch_user(app, user.id)
    assert stored.password_hash == user.password_hash and stored.session_version == user.session_version
    assert stored.failed_logins == 0  # the current password was right (or never checked)
    assert audit(app, "password.changed") == [] and outbox(app) == []
    assert signed_in(client)


def test_the_e_mail_address_is_refused_as_a_new_password(app, client, make_user):
    user = make_user(Role.REQUESTER, email="someone.long@example.org")
    login(client, user.email)
    response = change(client, new="someone.long@example.org")
    assert response.status_code == 400
    assert "e-mail address" in field_error(response.get_data(as_text=True), "password")


def test_hostile_current_password_is_never_reflected_and_never_a_500(app, client, make_user):
    user = make_user(Role.REQUESTER)
    login(client, user.email)
    for current in ("<script>alert(1)</script>", "' OR 1=1 --", "\x00", "z" * 5000):
        response = change(client, current=current)
        body = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "<script>alert(1)</script>" not in body and "z" * 200 not in body
    assert fetch_user(app, user.id).password_hash == user.password_hash


def test_change_password_needs_the_csrf_token(app, client, make_user):
    user = make_user(Role.REQUESTER)
    login(client, user.email)
    response = client.post("/account/password", data={"current_password": PASSWORD, "password": NEW, "confirm": NEW})
    assert response.status_code == 400
    assert fetch_user(app, user.id).password_hash == user.password_hash
    assert audit(app, "password.changed") == []


def test_change_password_is_for_signed_in_users_only(client):
    assert client.get("/account/password").headers["Location"].startswith("/login")


def test_too_many_wrong_current_passwords_lock_and_sign_out(app, client, make_user):
    app.config["LOCKOUT_THRESHOLD"] = 3
    user = make_user(Role.OPERATOR)
    login(client, user.email)
    assert change(client, current="wrong one").status_code == 400
    assert change(client, current="wrong two").status_code == 400
    third = change(client, current="wrong three")
    assert third.status_code == 302 and third.headers["Location"] == "/login"
    assert not signed_in(client)
    stored = fetch_user(app, user.id)
    assert stored.locked_until is not None and stored.password_hash == user.password_hash
    assert [m.kind for m in outbox(app)] == ["account_locked"]
    assert audit(app, "account.locked")
    # The lock holds at the sign-in page too, even with the right password.
    assert login(app.test_client(), user.email).status_code == 200


# --- recent sign-ins -------------------------------------------------------------------------

def sign_in_table(page: str) -> list[list[str]]:
    body = re.search(r'<table class="table table-sm" aria-labelledby="sign-ins-heading">(.*?)</table>', page, re.S)
    assert body, "no sign-in table"
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", body.group(1))
    return [list(row) for row in rows]


def test_recent_sign_ins_show_this_users_last_ten_newest_first(app, make_user):
    me, someone = make_user(Role.REQUESTER), make_user(Role.REQUESTER)
    for n in range(1, 13):
        assert login(client_from(app, f"10.0.0.{n}"), me.email).status_code == 302
    login(client_from(app, "203.0.113.77"), someone.email)
    viewer = client_from(app, "10.0.0.99")
    login(viewer, me.email)

    rows = sign_in_table(viewer.get("/account").get_data(as_text=True))
    addresses = [row[1] for row in rows]
    assert addresses == ["10.0.0.99"] + [f"10.0.0.{n}" for n in range(12, 3, -1)]
    assert "203.0.113.77" not in addresses
    assert all(row[2] == "Password" for row in rows)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d P[SD]T", row[0]) for row in rows)  # the facility's clock


def test_staff_sign_ins_name_the_second_factor(app, client, make_user):
    user = make_user(FULL_ADMIN)
    login(client, user.email)
    page = client.get("/account").get_data(as_text=True)
    assert sign_in_table(page)[0][2] == "Password and authenticator code"


def test_the_account_page_reads_the_sign_ins_in_one_query(app, client, make_user):
    user = make_user(Role.REQUESTER)
    for _ in range(3):
        login(app.test_client(), user.email)
    login(client, user.email)
    with sql_statements(app) as statements:
        page = client.get("/account").get_data(as_text=True)
    assert len(sign_in_table(page)) == 4
    assert len([s for s in statements if "audit_events" in s]) == 1


def test_the_account_page_offers_sign_out_everywhere(client, login_as):
    login_as(Role.REQUESTER)
    page = client.get("/account").get_data(as_text=True)
    assert "Signing out ends every session of your account, on this and every other device." in page
    assert re.search(r'<form method="post" action="/logout">\s*<input type="hidden" name="csrf_token"', page)
    assert "Sign out everywhere</button>" in page
    assert 'href="/account/password"' in page
    assert "recovery code" not in page  # requesters have none


# --- recovery codes --------------------------------------------------------------------------

def give_codes(app, user_id) -> list[str]:
    with app.app_context():
        codes = new_recovery_codes(db.session.get(User, user_id))
        db.session.commit()
        return codes


def regenerate(client, code):
    return client.post("/account/recovery-codes",
                       data={"code": code, "csrf_token": csrf_token(client, "/account/recovery-codes")})


def test_new_recovery_codes_need_a_fresh_totp_and_replace_the_old_ones(app, client, make_user):
    user = make_user(Role.OPERATOR)
    old = give_codes(app, user.id)
    login(client, user.email)
    with app.app_context():
        use_recovery_code(db.session.get(User, user.id), old[0])
        db.session.commit()
    account = client.get("/account").get_data(as_text=True)
    assert "You have 9 unused recovery codes." in account and 'href="/account/recovery-codes"' in account

    wrong = regenerate(client, "000000")
    assert wrong.status_code == 400 and "That code is not right" in field_error(wrong.get_data(as_text=True), "code")
    assert fetch_user(app, user.id).failed_logins == 1
    # A recovery code cannot mint new recovery codes.
    assert regenerate(client, old[1]).status_code == 400
    assert audit(app, "mfa.recovery_codes_regenerated") == []

    response = regenerate(client, totp_code(client, user.email))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "only time these codes are shown" in page
    assert ("success", "New recovery codes made. Your old codes no longer work.") in flashes(page)
    new = re.findall(r"<code>([A-Z2-9]{5}-[A-Z2-9]{5})</code>", page)
    assert len(set(new)) == 10 and not set(new) & set(old)
    with app.app_context():
        stored = db.session.get(User, user.id)
        assert not use_recovery_code(stored, old[1])
        assert use_recovery_code(stored, new[0])
        assert len(db.session.execute(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all()) == 10
        db.session.rollback()
    [row] = audit(app, "mfa.recovery_codes_regenerated")
    assert row.actor_id == user.id
    assert "You have 10 unused recovery codes." in client.get("/account").get_data(as_text=True)


def test_the_same_totp_code_cannot_be_used_twice(app, client, make_user):
    user = make_user(FULL_ADMIN)
    login(client, user.email)
    code = totp_code(client, user.email)
    assert regenerate(client, code).status_code == 200
    assert regenerate(client, code).status_code == 400


@pytest.mark.parametrize("code", ["", "<b>123456</b>", "12\x0034", "9" * 33, "' OR 1=1 --"])
def test_malformed_codes_are_a_400_never_a_500(app, client, make_user, code):
    user = make_user(Role.OPERATOR)
    old = give_codes(app, user.id)
    login(client, user.email)
    response = regenerate(client, code)
    assert response.status_code == 400 and "<b>123456</b>" not in response.get_data(as_text=True)
    with app.app_context():
        assert use_recovery_code(db.session.get(User, user.id), old[0])  # the old codes still work
        db.session.rollback()


def test_recovery_codes_need_csrf(app, client, make_user):
    user = make_user(Role.OPERATOR)
    login(client, user.email)
    assert client.post("/account/recovery-codes", data={"code": totp_code(client, user.email)}).status_code == 400
    assert audit(app, "mfa.recovery_codes_regenerated") == []


def test_requesters_have_no_recovery_codes(client, login_as):
    login_as(Role.REQUESTER)
    assert client.get("/account/recovery-codes").status_code == 403


# --- rate limits -----------------------------------------------------------------------------

def test_password_changes_and_code_entry_are_rate_limited(tmp_path, app, make_user):
    limited = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "limited", RATELIMIT_ENABLED=True,
                       RATELIMIT_MFA="2 per minute")
    user = make_user(Role.OPERATOR)
    client = limited.test_client()
    login(client, user.email)
    token = csrf_token(client, "/account/password")
    statuses = [change(client, current="wrong", token=token).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    codes = [client.post("/account/recovery-codes", data={"code": "000000", "csrf_token": token}).status_code
             for _ in range(3)]
    assert codes == [400, 400, 429]
    assert client.get("/account/password").status_code == 200  # reading the form is never limited
