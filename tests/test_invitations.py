"""Staff invitations: the admin page and the CLI invite, the link sets a password and leads to MFA
enrolment, nothing is reachable before enrolment, links work once, expire and resist tampering."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.security.passwords import verify_password
from intake.users.invitations import InvitationRefused, invite_command, invite_staff
from intake.users.models import Role, User
from intake.users.services import AccountError, find_by_email
from tests.conftest import csrf_token, login, make_app
from tests.test_account import HEALTH_WORDS, audit, field_error, flashes, outbox

CHOSEN = "an invited staff passphrase 5"
NO_LONGER_VALID = "This invitation link is no longer valid"
EXPIRED = "This invitation has expired"
SETUP_KEY = re.compile(r'aria-label="Setup key">([A-Z2-7]+)</code>')


def invite(client, email, role="operator", name="Sam Invitee", **extra):
    """Post the invitation form; ``role`` is one role or a list of them ("" ticks none)."""
    roles = role if isinstance(role, list) else [role] if role else []
    data = {"email": email, "display_name": name, "roles": roles,
            "csrf_token": csrf_token(client, "/admin/users/invite"), **extra}
    return client.post("/admin/users/invite", data=data)


def invitation_path(app, email) -> str:
    mails = [m for m in outbox(app) if m.kind == "staff_invitation" and m.recipient == email]
    assert len(mails) == 1, "expected one invitation e-mail"
    base = re.escape(app.config["PUBLIC_BASE_URL"])
    links = re.findall(base + r"(/invite/[^\s]+)", mails[0].body)
    assert len(links) == 1, mails[0].body
    return links[0]


def accept(client, path, password=CHOSEN, confirm=None, token_page=None):
    data = {"password": password, "confirm": password if confirm is None else confirm,
            "csrf_token": csrf_token(client, token_page or path)}
    return client.post(path, data=data)


def counts(app) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(db.session.execute(select(func.count()).select_from(model)).scalar_one()
                     for model in (User, OutboxMessage, AuditEvent))


def stored(app, email) -> User | None:
    with app.app_context():
        user = find_by_email(email)
        if user is not None:
            db.session.expunge(user)
        return user


# --- inviting --------------------------------------------------------------------------------

def test_an_admin_invites_by_the_page_and_an_email_carries_the_link(app, admin_client):
    form = admin_client.get("/admin/users/invite").get_data(as_text=True)
    offered = re.findall(r'<input[^>]*name="roles"[^>]*value="([a-z_]+)">', form)
    assert offered == ["operator", "supervisor", "records_clerk", "privacy_officer", "admin"]
    assert 'value="requester"' not in form and 'name="display_name"' in form
    response = invite(admin_client, "new.operator@example.org", name="  José   Núñez-O’Brien ")
    assert response.status_code == 302
    user = stored(app, "new.operator@example.org")
    assert response.headers["Location"] == f"/admin/users/{user.id}"
    assert user.roles == {Role.OPERATOR} and user.password_hash is None and user.email_verified_at is None
    assert user.display_name == "José Núñez-O’Brien"
    assert user.active and user.mfa_enrolled_at is None

    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert ("success", f"Account #{user.id} invited. The e-mail with the link is on its way.") in flashes(page)

    [mail] = outbox(app)
    assert mail.kind == "staff_invitation" and mail.recipient == "new.operator@example.org"
    assert "You have been invited to the helpline and records system of The Canyon at Peace Park." in mail.body
    assert invitation_path(app, "new.operator@example.org").startswith("/invite/")
    assert admin_client.admin.email not in mail.body  # who invited is not named
    assert not any(word in (mail.subject + mail.body).lower() for word in HEALTH_WORDS)
    [row] = audit(app, "user.invited")
    assert row.actor_id == admin_client.admin.id and row.object_id == str(user.id)
    assert json.loads(row.details) == {"roles": ["operator"]}
    assert "new.operator" not in row.details and "Núñez" not in row.details


def test_the_invitee_cannot_sign_in_before_accepting(app, admin_client):
    invite(admin_client, "waiting@example.org")
    for password in ("", "anything at all 123", "None"):
        response = login(app.test_client(), "waiting@example.org", password)
        assert response.status_code in (200, 400)
        assert response.headers.get("Location") is None


def test_the_link_sets_the_password_then_enrolment_then_signs_in(app, admin_client):
    invite(admin_client, "new.admin@example.org", role="admin")
    path = invitation_path(app, "new.admin@example.org")
    client = app.test_client()

    page = client.get(path)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "new.admin@example.org" in body
    assert 'autocomplete="new-password"' in body and 'for="confirm"' in body
    assert stored(app, "new.admin@example.org").password_hash is None  # a GET changes nothing

    response = accept(client, path)
    assert response.status_code == 302 and response.headers["Location"] == "/mfa/setup"
    user = stored(app, "new.admin@example.org")
    with app.app_context():
        assert verify_password(user.password_hash, CHOSEN)
    assert user.email_verified_at is not None and user.password_changed_at is not None
    [accepted] = audit(app, "user.invitation_accepted")
    assert accepted.actor_id == user.id

    # Nothing is reachable before enrolment is finished.
    for page_path in ("/account", "/admin/users/", "/account/password", "/account/recovery-codes"):
        assert client.get(page_path).headers["Location"].startswith("/login"), page_path

    setup = client.get("/mfa/setup").get_data(as_text=True)
    secret = SETUP_KEY.search(setup).group(1)
    done = client.post("/mfa/setup", data={"code": pyotp.TOTP(secret).now(),
                                           "csrf_token": csrf_token(client, "/mfa/setup")})
    assert done.status_code == 200 and "only time these codes are shown" in done.get_data(as_text=True)
    assert client.get("/account").status_code == 200
    assert client.get("/admin/users/").status_code == 200
    [success] = [row for row in audit(app, "login.success") if row.actor_id == user.id]
    assert success.object_id == str(user.id) and json.loads(success.details) == {"method": "totp_enrolment"}

    # The link worked once.
    again = app.test_client().get(path)
    assert again.status_code == 400 and NO_LONGER_VALID in again.get_data(as_text=True)


def test_the_link_a_second_time_is_refused_with_a_clear_page(app, admin_client):
    invite(admin_client, "twice@example.org")
    path = invitation_path(app, "twice@example.org")
    first = app.test_client()
    assert accept(first, path).status_code == 302
    hash_after_first = stored(app, "twice@example.org").password_hash
    for method in ("GET", "POST"):
        other = app.test_client()
        if method == "GET":
            response = other.get(path)
        else:
            response = accept(other, path, password="someone else's passphrase", token_page="/login")
        assert response.status_code == 400, method
        assert NO_LONGER_VALID in response.get_data(as_text=True)
    assert stored(app, "twice@example.org").password_hash == hash_after_first
    assert json.loads(audit(app, "user.invitation_refused")[-1].details) == {"reason": "invalid"}


def test_an_unenrolled_invitee_who_returns_later_must_enrol(app, admin_client):
    """Password set, enrolment abandoned: the next sign-in leads to enrolment again, not in."""
    invite(admin_client, "later@example.org")
    accept(app.test_client(), invitation_path(app, "later@example.org"))
    response = login(app.test_client(), "later@example.org", CHOSEN)
    assert response.headers["Location"] == "/mfa/setup"


def test_an_expired_link_is_refused(app, admin_client):
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        invite(admin_client, "slow@example.org")
        path = invitation_path(app, "slow@example.org")
        client = app.test_client()
        clock.move_to(start + timedelta(hours=71))
        assert client.get(path).status_code == 200  # 3 days by default
        clock.move_to(start + timedelta(hours=73))
        response = client.get(path)
        assert response.status_code == 400 and EXPIRED in response.get_data(as_text=True)
        token = csrf_token(client, "/login")  # CSRF tokens last an hour; take a fresh one
        posted = client.post(path, data={"password": CHOSEN, "confirm": CHOSEN, "csrf_token": token})
        assert posted.status_code == 400
    assert stored(app, "slow@example.org").password_hash is None
    assert json.loads(audit(app, "user.invitation_refused")[-1].details) == {"reason": "expired"}


def test_the_lifetime_follows_the_setting(app, admin_client):
    app.config["TOKEN_MAX_AGE_INVITATION"] = 60
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        invite(admin_client, "quick@example.org")
        path = invitation_path(app, "quick@example.org")
        clock.move_to(start + timedelta(seconds=61))
        assert app.test_client().get(path).status_code == 400


def _tampered(path: str) -> list[str]:
    token = path.removeprefix("/invite/")
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    return ["/invite/" + flipped, "/invite/" + token[:-5], "/invite/x" + token, "/invite/" + "A" * 5000,
            "/invite/%00", "/invite/%3Cscript%3E", "/invite/" + token + "%00"]


def test_tampered_links_are_refused_never_a_500(app, admin_client):
    invite(admin_client, "target@example.org")
    path = invitation_path(app, "target@example.org")
    before = stored(app, "target@example.org").password_hash
    for bad in _tampered(path):
        client = app.test_client()
        get = client.get(bad)
        assert get.status_code == 400, bad
        assert "<script>" not in get.get_data(as_text=True)
        post = client.post(bad, data={"password": CHOSEN, "confirm": CHOSEN, "csrf_token": csrf_token(client)})
        assert post.status_code == 400, bad
    assert stored(app, "target@example.org").password_hash == before


def test_an_invitation_link_is_not_a_reset_link_and_vice_versa(app, admin_client):
    invite(admin_client, "mixed@example.org")
    token = invitation_path(app, "mixed@example.org").removeprefix("/invite/")
    assert app.test_client().get(f"/reset/{token}").status_code == 400


@pytest.mark.parametrize("password,confirm,field,message", [
    ("short", None, "password", "Use at least 8 characters"),
    ("password123", None, "password", "one of the most common"),
    (CHOSEN, CHOSEN + "x", "confirm", "The two passwords are not the same."),
    ("x" * 129, None, "password", "Passwords are at most 128 characters."),
    ("bad\x00password here", None, "password", "invisible control characters"),
    ("", "", "password", "Choose a password."),
])
def test_a_bad_password_keeps_the_link_working(app, admin_client, password, confirm, field, message):
    invite(admin_client, "careful@example.org")
    path = invitation_path(app, "careful@example.org")
    client = app.test_client()
    response = accept(client, path, password=password, confirm=confirm)
    assert response.status_code == 400
    assert message in field_error(response.get_data(as_text=True), field)
    assert stored(app, "careful@example.org").password_hash is None
    assert audit(app, "user.invitation_accepted") == []
    assert accept(client, path).status_code == 302  # still usable


def test_the_e_mail_address_is_refused_as_the_password(app, admin_client):
    invite(admin_client, "mirror.image@example.org")
    path = invitation_path(app, "mirror.image@example.org")
    response = accept(app.test_client(), path, password="mirror.image@example.org")
    assert response.status_code == 400 and "e-mail address" in field_error(response.get_data(as_text=True), "password")


def test_accepting_needs_the_csrf_token(app, admin_client):
    invite(admin_client, "nocsrf@example.org")
    path = invitation_path(app, "nocsrf@example.org")
    response = app.test_client().post(path, data={"password": CHOSEN, "confirm": CHOSEN})
    assert response.status_code == 400
    assert stored(app, "nocsrf@example.org").password_hash is None


def test_accepting_signs_out_whoever_was_signed_in_here(app, admin_client):
    invite(admin_client, "shared.pc@example.org")
    path = invitation_path(app, "shared.pc@example.org")
    assert "This browser is signed in to another account" in admin_client.get(path).get_data(as_text=True)
    assert accept(admin_client, path).headers["Location"] == "/mfa/setup"
    assert admin_client.get("/admin/users/").headers["Location"].startswith("/login")


def test_with_mfa_turned_off_accepting_signs_in(tmp_path, app, admin_client):
    invite(admin_client, "dev.staff@example.org")
    path = invitation_path(app, "dev.staff@example.org")
    dev = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "dev", MFA_DISABLED=True)
    client = dev.test_client()
    response = accept(client, path)
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert client.get("/account").status_code == 200
    assert json.loads(audit(app, "login.success")[-1].details) == {"method": "invitation"}


# --- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["Taken.Person@example.org", "taken.person@EXAMPLE.ORG",
                                   "  taken.person@example.org "])
def test_an_existing_address_is_refused_and_nothing_is_created(app, admin_client, make_user, typed):
    make_user(Role.REQUESTER, email="taken.person@example.org")
    before = counts(app)
    response = invite(admin_client, typed)
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "email") == \
        "An account with this e-mail address already exists."
    assert counts(app) == before


NAME_CHARACTERS = "A name has letters, spaces and the punctuation names use ( ' - . , ) only."


@pytest.mark.parametrize("email,role,name,field,message", [
    ("patient@example.org", "requester", "Sam", "roles", "Choose roles from the list."),
    ("someone@example.org", "superuser", "Sam", "roles", "Choose roles from the list."),
    ("someone@example.org", ["operator", "superuser"], "Sam", "roles", "Choose roles from the list."),
    ("someone@example.org", "", "Sam", "roles", "Choose at least one role."),
    ("someone@example.org", "o" * 5000, "Sam", "roles", "Choose roles from the list."),
    ("<script>alert(1)</script>", "operator", "Sam", "email", "Enter an e-mail address like name@example.org."),
    ("a\x00b@example.org", "operator", "Sam", "email", "Enter an e-mail address like name@example.org."),
    ("x" * 250 + "@example.org", "operator", "Sam", "email", "That is too long for an e-mail address."),
    ("", "operator", "Sam", "email", "Enter an e-mail address."),
    ("not an address", "admin", "Sam", "email", "Enter an e-mail address like name@example.org."),
    ("someone@example.org", "operator", "", "display_name", "Enter the name colleagues know them by."),
    ("someone@example.org", "operator", "   ", "display_name", "Enter the name colleagues know them by."),
    ("someone@example.org", "operator", "<script>alert(1)</script>", "display_name", NAME_CHARACTERS),
    ("someone@example.org", "operator", "Sam\x00Spade", "display_name", NAME_CHARACTERS),
    ("someone@example.org", "operator", "Sam\u202eSpade", "display_name", NAME_CHARACTERS),
    ("someone@example.org", "operator", "R2D2", "display_name", NAME_CHARACTERS),
    ("someone@example.org", "operator", "'; DROP TABLE users; --", "display_name", NAME_CHARACTERS),
    ("someone@example.org", "operator", "-- .", "display_name", NAME_CHARACTERS),
    ("someone@example.org", "operator", "S" * 81, "display_name", "Use at most 80 characters."),
])
def test_bad_invitations_get_a_message_and_create_nothing(app, admin_client, email, role, name, field, message):
    before = counts(app)
    response = invite(admin_client, email, role=role, name=name)
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in field_error(body, field)
    assert "<script>alert(1)</script>" not in body
    assert counts(app) == before


def test_inviting_needs_the_csrf_token(app, admin_client):
    before = counts(app)
    response = admin_client.post("/admin/users/invite", data={"email": "a@example.org", "roles": "operator",
                                                              "display_name": "Sam"})
    assert response.status_code == 400 and counts(app) == before


def test_only_admins_invite(app, client, login_as):
    login_as(Role.OPERATOR)
    before = counts(app)
    response = client.post("/admin/users/invite", data={"email": "a@example.org", "roles": "operator",
                                                        "display_name": "Sam",
                                                        "csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 403 and counts(app) == before


def test_invite_staff_as_a_plain_function(app, ctx, make_user):
    make_user(Role.OPERATOR, email="exists@example.org")
    with pytest.raises(AccountError, match="already exists"):
        invite_staff("EXISTS@example.org", Role.ADMIN, actor=None, display_name="Sam")
    with pytest.raises(InvitationRefused, match="former patients"):
        invite_staff("patient@example.org", Role.REQUESTER, actor=None, display_name="Sam")
    with pytest.raises(InvitationRefused, match="former patients"):
        invite_staff("patient@example.org", [Role.OPERATOR, Role.REQUESTER], actor=None, display_name="Sam")
    with pytest.raises(InvitationRefused) as refused:
        invite_staff("x@@example.org", Role.OPERATOR, actor=None, display_name="Sam")
    assert refused.value.field == "email"
    with pytest.raises(InvitationRefused) as refused:
        invite_staff("nameless@example.org", Role.OPERATOR, actor=None)
    assert refused.value.field == "display_name"
    with pytest.raises(InvitationRefused) as refused:
        invite_staff("roleless@example.org", [], actor=None, display_name="Sam")
    assert refused.value.field == "roles"
    user = invite_staff("fresh@example.org", "admin,records_clerk", actor=None, display_name="Fresh Face")
    assert user.id is not None and user.password_hash is None
    assert user.ordered_roles == [Role.RECORDS_CLERK, Role.ADMIN] and user.display_name == "Fresh Face"


# --- command line ----------------------------------------------------------------------------

@pytest.fixture()
def cli(app, runner):
    """``flask users invite``: attached to the users group here until intake/cli.py registers it."""
    from intake.cli import users_cli

    if "invite" not in users_cli.commands:
        users_cli.add_command(invite_command)
    return lambda *args: runner.invoke(args=["users", "invite", *args])


def test_cli_invite_creates_the_account_and_queues_the_email(app, cli):
    result = cli("--email", "cli.operator@example.org", "--name", "Cli Operator", "--role", "operator")
    assert result.exit_code == 0, result.output
    user = stored(app, "cli.operator@example.org")
    assert f"Invited account #{user.id} (operator)" in result.output
    assert user.display_name == "Cli Operator"
    assert "/invite/" not in result.output  # the link goes only to the invitee
    assert invitation_path(app, "cli.operator@example.org").startswith("/invite/")
    [row] = audit(app, "user.invited")
    assert row.actor_id is None and row.object_id == str(user.id)


@pytest.mark.parametrize("roles", [["--role", "supervisor", "--role", "records_clerk"],
                                   ["--role", "records_clerk,supervisor"], ["--role", " supervisor , records_clerk"]])
def test_cli_invite_gives_several_roles(app, cli, roles):
    result = cli("--email", "two.hats@example.org", "--name", "Two Hats", *roles)
    assert result.exit_code == 0, result.output
    assert "(supervisor, records_clerk)" in result.output
    assert stored(app, "two.hats@example.org").ordered_roles == [Role.SUPERVISOR, Role.RECORDS_CLERK]
    [row] = audit(app, "user.invited")
    assert json.loads(row.details) == {"roles": ["supervisor", "records_clerk"]}


@pytest.mark.parametrize("args,code,message", [
    (["--email", "p@example.org", "--name", "P", "--role", "requester"], 1,
     "Only staff are invited; former patients create their own accounts."),
    (["--email", "p@example.org", "--name", "P", "--role", "operator,requester"], 1, "former patients"),
    (["--email", "p@example.org", "--name", "P", "--role", "root"], 2, "'root' is not a role"),
    (["--email", "p@example.org", "--name", "P", "--role", ","], 2, "give at least one role"),
    (["--email", "p@example.org", "--name", "P"], 2, "Missing option '--role'"),
    (["--email", "p@example.org", "--role", "operator"], 2, "Missing option '--name'"),
    (["--email", "p@example.org", "--name", "<b>P</b>", "--role", "operator"], 1, NAME_CHARACTERS),
    (["--email", "not-an-address", "--name", "P", "--role", "admin"], 1,
     "Enter an e-mail address like name@example.org."),
    (["--email", "exists@example.org", "--name", "P", "--role", "admin"], 1,
     "An account with this e-mail address already exists."),
])
def test_cli_invite_refuses_bad_input(app, cli, make_user, args, code, message):
    make_user(Role.REQUESTER, email="exists@example.org")
    before = counts(app)
    result = cli(*args)
    assert result.exit_code == code
    assert message in result.output
    assert counts(app) == before


# --- rate limit ------------------------------------------------------------------------------

def test_accepting_is_rate_limited(tmp_path, app):
    limited = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "limited", RATELIMIT_ENABLED=True,
                       RATELIMIT_RESET="2 per minute")
    client = limited.test_client()
    token = csrf_token(client)
    statuses = [client.post("/invite/forged", data={"password": CHOSEN, "confirm": CHOSEN, "csrf_token": token})
                .status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    assert client.get("/invite/forged").status_code == 400  # reading is not limited
