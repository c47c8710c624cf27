"""Password reset by e-mail link: no enumeration, single use, expiry, sessions ended, MFA kept,
hostile input, audit and rate limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.auth.account_services import PasswordRejected, request_password_reset, reset_password, send_reset_links
from intake.db_types import utcnow
from intake.extensions import db
from intake.users.models import Role, User
from intake.users.services import disable_user, find_by_email
from tests.conftest import PASSWORD, csrf_token, login
from tests.test_registration import (
    audit_rows,
    count,
    counts,
    field_error,
    link_path,
    outbox,
    without_csrf,
)

NEW = "a completely new passphrase 7"
SENT = "If an account uses the address you gave"
NOT_VALID = "This link cannot be used"
EXPIRED = "This link has expired"


def ask(client, email):
    """Ask for a link, then let the sender resolve the request (``flask outbox send`` does it every pass)."""
    response = client.post("/reset", data={"email": email, "csrf_token": csrf_token(client, "/reset")})
    with client.application.app_context():
        send_reset_links()
    return response


def reset_path(app, email) -> str:
    mails = [m for m in outbox(app) if m.kind == "reset_password" and m.recipient == email]
    assert mails, "no reset e-mail queued"
    return link_path(app, mails[-1].body, "/reset/")


def choose(client, path, password=NEW, confirm=None):
    return client.post(path, data={"password": password, "confirm": password if confirm is None else confirm,
                                   "csrf_token": csrf_token(client, "/reset")})


def test_known_and_unknown_addresses_get_the_same_answer(app, client, make_user):
    user = make_user(Role.REQUESTER, email="Known.Person@example.org")
    known = ask(client, "known.person@EXAMPLE.org")
    unknown = ask(app.test_client(), "nobody.here@example.org")
    assert known.status_code == unknown.status_code == 200
    assert SENT in known.get_data(as_text=True)
    assert without_csrf(known.get_data(as_text=True)) == without_csrf(unknown.get_data(as_text=True))
    [message] = outbox(app)
    assert message.kind == "reset_password" and message.recipient == user.email
    assert message.subject == "Reset your password for The Canyon at Peace Park"
    assert "If this was not you" in message.body
    lowered = message.body.lower()
    for word in ("record", "patient", "treatment", "addiction", "drug"):
        assert word not in lowered


def test_the_link_works_once(app, client, make_user):
    user = make_user(Role.REQUESTER)
    ask(client, user.email)
    path = reset_path(app, user.email)

    form = client.get(path)
    assert form.status_code == 200 and "Choose a new password" in form.get_data(as_text=True)
    response = choose(client, path)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "Your password is changed" in client.get("/login").get_data(as_text=True)
    changed_hash = _password_hash(app, user.id)

    again = client.get(path)
    assert again.status_code == 400 and NOT_VALID in again.get_data(as_text=True)
    again = choose(client, path, "yet another passphrase 8")
    assert again.status_code == 400 and NOT_VALID in again.get_data(as_text=True)
    assert _password_hash(app, user.id) == changed_hash
    assert audit_rows(app)[-1][0] == "password.reset_refused"


def _password_hash(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id).password_hash


def test_the_reset_ends_every_session_and_only_the_new_password_works(app, make_user):
    user = make_user(Role.REQUESTER)
    signed_in = app.test_client()
    assert login(signed_in, user.email).status_code == 302
    assert signed_in.get("/account").status_code == 200

    other = app.test_client()
    ask(other, user.email)
    assert choose(other, reset_path(app, user.email)).status_code == 302

    response = signed_in.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert other.get("/account").status_code == 302  # the reset signed nobody in
    assert login(app.test_client(), user.email, PASSWORD).status_code == 200
    assert login(app.test_client(), user.email, NEW).status_code == 302


def test_staff_still_need_their_second_factor_after_a_reset(app, client, make_user):
    operator = make_user(Role.OPERATOR)
    ask(client, operator.email)
    choose(client, reset_path(app, operator.email))
    assert client.get("/account").status_code == 302
    response = client.post("/login", data={"email": operator.email, "password": NEW,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/login/mfa"
    assert client.get("/account").status_code == 302  # not signed in until the code is given
    with app.app_context():
        assert db.session.get(User, operator.id).mfa_enrolled_at is not None


def test_the_owner_is_told_the_password_changed(app, client, make_user):
    user = make_user(Role.REQUESTER)
    ask(client, user.email)
    choose(client, reset_path(app, user.email))
    notice = outbox(app)[-1]
    assert notice.kind == "password_changed" and notice.recipient == user.email
    assert notice.subject == "Your password for The Canyon at Peace Park was changed"
    assert "If it was not you" in notice.body and NEW not in notice.body


def test_a_disabled_account_gets_nothing_and_its_old_links_die(app, client, make_user):
    user = make_user(Role.REQUESTER)
    ask(client, user.email)
    path = reset_path(app, user.email)
    with app.app_context():
        disable_user(db.session.get(User, user.id))
        db.session.commit()
    mails_before = len(outbox(app))

    response = ask(client, user.email)
    assert response.status_code == 200 and SENT in response.get_data(as_text=True)
    assert len(outbox(app)) == mails_before
    assert audit_rows(app)[-1][2] == '{"result":"disabled"}'
    assert client.get(path).status_code == 400
    assert choose(client, path).status_code == 400
    assert login(app.test_client(), user.email, NEW).status_code == 200


def test_using_one_link_kills_every_earlier_one(app, client, make_user):
    user = make_user(Role.REQUESTER)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        ask(client, user.email)
        first = reset_path(app, user.email)
        clock.move_to(start + timedelta(minutes=5))
        ask(client, user.email)
        second = reset_path(app, user.email)
        assert first != second
        assert client.get(first).status_code == 200  # asking again does not spend the first link
        assert choose(client, second).status_code == 302
        assert client.get(first).status_code == 400


def test_an_expired_link_is_refused(app, client, make_user):
    user = make_user(Role.REQUESTER)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        ask(client, user.email)
        path = reset_path(app, user.email)
        clock.move_to(start + timedelta(minutes=59))
        assert client.get(path).status_code == 200
        clock.move_to(start + timedelta(minutes=61))
        response = client.get(path)
        assert response.status_code == 400 and EXPIRED in response.get_data(as_text=True)
        assert choose(client, path).status_code == 400
    assert login(app.test_client(), user.email, PASSWORD).status_code == 302


@pytest.mark.parametrize("path", [
    "/reset/not-a-valid-link",
    "/reset/" + "A" * 5000,
    "/reset/%00%3Cscript%3E",
    "/reset/eyJ1IjoiYWJjIiwiZiI6Inh5eiJ9.ZZZZZZ.forgedsignatureAAAAAAAAAAAAAAAAA",
])
def test_a_forged_link_is_refused_never_a_500(app, client, path):
    response = client.get(path)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert NOT_VALID in body and "<script>" not in body
    assert choose(client, path).status_code == 400


def test_a_tampered_real_link_is_refused(app, client, make_user):
    user = make_user(Role.REQUESTER)
    ask(client, user.email)
    path = reset_path(app, user.email)
    cut = path.rindex(".") + 1  # the first character of the signature
    tampered = path[:cut] + ("A" if path[cut] != "A" else "B") + path[cut + 1:]
    assert client.get(tampered).status_code == 400
    assert choose(client, tampered).status_code == 400
    assert login(app.test_client(), user.email, PASSWORD).status_code == 302


@pytest.mark.parametrize("password,confirm,field,message", [
    ("password123", None, "password", "one of the most common"),
    ("short", None, "password", "at least 8"),
    ("p" * 129, None, "password", "at most 128"),
    (NEW, NEW + "!", "confirm", "The two passwords are not the same."),
    ("", "", "password", "Choose a password."),
    ("long enough\x00passphrase", None, "password", "control characters"),
])
def test_a_bad_new_password_changes_nothing(app, client, make_user, password, confirm, field, message):
    user = make_user(Role.REQUESTER)
    signed_in = app.test_client()
    login(signed_in, user.email)
    ask(client, user.email)
    path = reset_path(app, user.email)
    before = counts(app)

    response = choose(client, path, password, confirm)
    assert response.status_code == 400
    assert message in field_error(response.get_data(as_text=True), field)
    assert counts(app) == before
    assert signed_in.get("/account").status_code == 200  # no session was ended
    assert client.get(path).status_code == 200  # the link still works


def test_the_account_address_is_refused_as_the_new_password(app, client, make_user):
    user = make_user(Role.REQUESTER, email="samename@example.org")
    ask(client, user.email)
    response = choose(client, reset_path(app, user.email), "samename@example.org")
    assert response.status_code == 400
    assert "Do not use your e-mail address" in field_error(response.get_data(as_text=True), "password")


@pytest.mark.parametrize("email,message", [
    ("", "Enter your e-mail address."),
    ("not-an-address", "Enter an e-mail address like"),
    ("a" * 250 + "@example.org", "too long"),
    ("<script>alert(1)</script>@example.org", "Enter an e-mail address like"),
    ("nul\x00byte@example.org", "Enter an e-mail address like"),
    ("ñ" * 5000, "too long"),
])
def test_malformed_reset_requests(app, client, email, message):
    before = counts(app)
    response = ask(client, email)
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in field_error(body, "email")
    assert "<script>alert(1)</script>" not in body
    assert counts(app) == before


def test_reset_request_without_csrf_token_is_refused(app, client, make_user):
    user = make_user(Role.REQUESTER)
    before = counts(app)
    response = client.post("/reset", data={"email": user.email})
    assert response.status_code == 400 and "form has expired" in response.get_data(as_text=True)
    assert counts(app) == before


def test_a_reset_lifts_a_lock_and_confirms_the_address(app, client, make_user):
    user = make_user(Role.REQUESTER, verified=False)
    with app.app_context():
        account = db.session.get(User, user.id)
        account.locked_until = utcnow() + timedelta(hours=1)
        account.failed_logins = 3
        db.session.commit()
    ask(client, user.email)
    choose(client, reset_path(app, user.email))
    with app.app_context():
        account = db.session.get(User, user.id)
        assert account.locked_until is None and account.failed_logins == 0
        assert account.email_verified_at is not None
    assert audit_rows(app)[-1][2] == '{"email_verified_now":true}'
    assert login(app.test_client(), user.email, NEW).status_code == 302


def test_reset_requests_and_resets_are_audited_without_the_address(app, client, make_user):
    user = make_user(Role.REQUESTER, email="Audited.Person@example.org")
    ask(client, user.email)
    ask(client, "unknown.person@example.org")
    choose(client, reset_path(app, user.email))
    rows = audit_rows(app)
    # Asked: the same event whatever the address; resolved by the sender: who, and what happened.
    assert [(o, d) for a, o, d in rows if a == "password.reset_requested"] == [(None, "{}"), (None, "{}")]
    resolved = [(o, d) for a, o, d in rows if a == "password.reset_resolved"]
    assert resolved == [(str(user.id), '{"result":"link_sent"}'), (None, '{"result":"unknown_account"}')]
    assert ("password.reset", str(user.id)) in [(a, o) for a, o, _ in rows]
    with app.app_context():
        actor = db.session.execute(
            select(AuditEvent.actor_id).where(AuditEvent.action == "password.reset")).scalar_one()
        addresses = db.session.execute(
            select(AuditEvent.ip_address).where(AuditEvent.action.startswith("password."),
                                                AuditEvent.action != "password.reset_resolved")).scalars().all()
    assert actor == user.id
    assert addresses and set(addresses) == {"127.0.0.1"}  # the client's address is recorded
    for _action, _object, details in rows:
        lowered = details.lower()
        assert "audited.person" not in lowered and "unknown.person" not in lowered and "@" not in lowered
        assert NEW not in details


def test_the_services_as_plain_functions(app, ctx, make_user):
    user = make_user(Role.REQUESTER)
    request_password_reset(user.email)
    request_password_reset("no.such.person@example.org")
    db.session.commit()
    assert send_reset_links() == 1  # one link: the unknown address gets nothing
    assert send_reset_links() == 0  # each request is resolved once
    account = find_by_email(user.email)
    version = account.session_version
    with pytest.raises(PasswordRejected):
        reset_password(account, "qwertyuiop")
    assert account.session_version == version
    reset_password(account, NEW)
    assert account.session_version == version + 1
    db.session.commit()
    assert count(app, User) == 1


def test_a_request_the_sender_reaches_too_late_sends_nothing(app, ctx, make_user):
    user = make_user(Role.REQUESTER)
    request_password_reset(user.email)
    db.session.commit()
    assert send_reset_links(now=utcnow() + timedelta(minutes=61)) == 0  # the sender was down for an hour
    assert [m for m in outbox(app) if m.kind == "reset_password"] == []
    assert audit_rows(app)[-1][2] == '{"result":"expired"}'


def test_the_fourth_reset_request_from_one_address_is_refused(limited_app, make_user):
    user = make_user(Role.REQUESTER)
    client = limited_app.test_client()
    statuses = [ask(client, user.email).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert len([m for m in outbox(limited_app) if m.kind == "reset_password"]) == 3
    assert client.get("/reset").status_code == 200
