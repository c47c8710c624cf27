"""Staff second factor: TOTP at sign-in, enrolment with recovery codes, reuse refused, resets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.auth.mfa import reset_mfa
from intake.extensions import db
from intake.users.models import RecoveryCode, Role, User
from tests.conftest import FULL_ADMIN, PASSWORD, csrf_token, login, make_app, totp_code

WRONG_CODE = "That code is not right"


def password_step(client, email, password=PASSWORD):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})


def post_code(client, code, path="/login/mfa"):
    return client.post(path, data={"code": code, "csrf_token": csrf_token(client, path)})


def actions(app):
    with app.app_context():
        return list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def test_staff_need_a_code_after_the_password(app, client, make_user):
    user = make_user(Role.OPERATOR)
    response = password_step(client, user.email)
    assert response.headers["Location"] == "/login/mfa"
    assert client.get("/account").status_code == 302  # not signed in yet
    page = client.get("/login/mfa").get_data(as_text=True)
    assert "Enter your code" in page and 'autocomplete="one-time-code"' in page
    response = post_code(client, totp_code(client, user.email))
    assert response.status_code == 302 and response.headers["Location"] == "/calls/new"
    assert client.get("/account").status_code == 200
    assert actions(app)[-2:] == ["login.password_ok", "login.success"]


def test_requesters_sign_in_with_a_password_alone(client, make_user):
    user = make_user(Role.REQUESTER)
    response = password_step(client, user.email)
    assert response.headers["Location"] == "/my/requests/"


def test_a_code_works_only_once(app, client, make_user):
    user = make_user(FULL_ADMIN)
    password_step(client, user.email)
    code = totp_code(client, user.email)
    assert post_code(client, code).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    other = app.test_client()
    password_step(other, user.email)
    replay = post_code(other, code)
    assert replay.status_code == 200 and WRONG_CODE in replay.get_data(as_text=True)
    assert other.get("/account").status_code == 302


def test_codes_from_other_secrets_or_times_are_refused(client, make_user):
    user = make_user(FULL_ADMIN)
    password_step(client, user.email)
    stranger = pyotp.TOTP(pyotp.random_base32()).now()
    old = pyotp.TOTP(user.mfa_secret).at(datetime.now(UTC) - timedelta(minutes=5))
    for code in (stranger, old):
        response = post_code(client, code)
        assert response.status_code == 200 and WRONG_CODE in response.get_data(as_text=True)


@pytest.mark.parametrize("code,status", [
    ("", 400), ("12345", 200), ("abcdef", 200), ("1234567", 200), ("<b>123456</b>", 200),
    ("12\x0034", 200), ("٣٤٥٦٧٨", 200), ("9" * 33, 400), ("' OR 1=1 --", 200),
])
def test_malformed_codes_get_a_message_never_a_500(client, make_user, code, status):
    user = make_user(Role.OPERATOR)
    password_step(client, user.email)
    response = post_code(client, code)
    assert response.status_code == status
    body = response.get_data(as_text=True)
    assert "<b>123456</b>" not in body
    assert (WRONG_CODE in body) or ("Enter the code." in body) or ("too long" in body)


def test_mfa_step_without_a_password_step_goes_back_to_sign_in(client):
    assert client.get("/login/mfa").headers["Location"] == "/login"
    response = client.post("/login/mfa", data={"code": "123456", "csrf_token": csrf_token(client)})
    assert response.headers["Location"] == "/login"


def test_pending_sign_in_expires_after_five_minutes(client, make_user):
    user = make_user(Role.OPERATOR)
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        password_step(client, user.email)
        token = csrf_token(client, "/login/mfa")
        clock.move_to(start + timedelta(minutes=6))
        response = client.post("/login/mfa", data={"code": totp_code(client, user.email), "csrf_token": token})
        assert response.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302


def test_recovery_code_works_once(app, client, make_user):
    user = make_user(Role.OPERATOR, mfa=False)
    password_step(client, user.email)
    page = post_code(client, totp_code_for_enrolment(client, app, user.email), "/mfa/setup")
    codes = re.findall(r"<code>([A-Z2-9]{5}-[A-Z2-9]{5})</code>", page.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})

    second = app.test_client()
    password_step(second, user.email)
    response = post_code(second, codes[0].lower())  # case and dash do not matter
    assert response.headers["Location"] == "/calls/new"
    assert "9 remain" in second.get("/account").get_data(as_text=True)
    assert "mfa.recovery_code_used" in actions(app)

    third = app.test_client()
    password_step(third, user.email)
    again = post_code(third, codes[0])
    assert again.status_code == 200 and WRONG_CODE in again.get_data(as_text=True)


def totp_code_for_enrolment(client, app, email) -> str:
    """The secret shown on the enrolment page, read back from the page as a person would."""
    page = client.get("/mfa/setup").get_data(as_text=True)
    secret = re.search(r'aria-label="Setup key">([A-Z2-7]+)</code>', page).group(1)
    return pyotp.TOTP(secret).now()


def test_enrolment_before_any_staff_page(app, client, make_user):
    user = make_user(FULL_ADMIN, mfa=False)
    response = password_step(client, user.email)
    assert response.headers["Location"] == "/mfa/setup"
    assert client.get("/account").status_code == 302  # nothing is reachable before enrolment
    first = client.get("/mfa/setup").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in first and 'alt="QR code' in first
    secret = re.search(r'aria-label="Setup key">([A-Z2-7]+)</code>', first).group(1)
    assert secret in client.get("/mfa/setup").get_data(as_text=True)  # a reload shows the same key

    wrong = post_code(client, "000000", "/mfa/setup")
    assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)
    done = post_code(client, pyotp.TOTP(secret).now(), "/mfa/setup")
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "only time these codes are shown" in body
    codes = re.findall(r"<code>([A-Z2-9]{5}-[A-Z2-9]{5})</code>", body)
    assert client.get("/account").status_code == 200
    with app.app_context():
        stored = db.session.execute(select(RecoveryCode.code_hash)).scalars().all()
        assert len(stored) == 10
        assert not any(code.replace("-", "") in h or code in h for code in codes for h in stored)
        assert db.session.get(User, user.id).mfa_enrolled_at is not None
    assert "mfa.enrolled" in actions(app)


def test_admin_mfa_reset_ends_sessions_and_forces_enrolment(app, client, make_user):
    user = make_user(Role.OPERATOR)
    login(client, user.email)
    assert client.get("/account").status_code == 200
    with app.app_context():
        reset_mfa(db.session.get(User, user.id), actor=None)
        db.session.commit()
    assert client.get("/account").status_code == 302
    assert password_step(app.test_client(), user.email).headers["Location"] == "/mfa/setup"
    assert "mfa.reset" in actions(app)


def test_reset_mfa_cli(app, runner, make_user):
    user = make_user(Role.OPERATOR)
    result = runner.invoke(args=["users", "reset-mfa", "--email", user.email])
    assert result.exit_code == 0 and "reset" in result.output
    with app.app_context():
        assert db.session.get(User, user.id).mfa_secret is None


def test_development_may_turn_mfa_off_with_a_banner(tmp_path, app, make_user):
    dev = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "dev", MFA_DISABLED=True)
    client = dev.test_client()
    user = make_user(FULL_ADMIN)
    assert password_step(client, user.email).headers["Location"] == "/calls/new"
    assert "second sign-in factor for staff is turned off" in client.get("/").get_data(as_text=True)
    assert "turned off" not in app.test_client().get("/").get_data(as_text=True)
