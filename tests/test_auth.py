"""Sign-in, sign-out, sessions and their timeouts, and hostile input on the sign-in form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.security.passwords import make_hasher, password_problems
from intake.users.models import Role, User
from intake.users.services import disable_user
from tests.conftest import FULL_ADMIN, PASSWORD, csrf_token, login

WRONG = "The e-mail address or password is not right."


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def audit_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def session_cookie(client) -> str:
    cookie = client.get_cookie("intake_session")
    assert cookie is not None
    return cookie.value


def test_sign_in_lands_on_the_roles_work_and_is_audited(app, client, make_user):
    user = make_user(Role.OPERATOR)
    response = login(client, user.email)
    assert response.status_code == 302 and response.headers["Location"] == "/calls/new"
    page = client.get("/account").get_data(as_text=True)
    assert user.email in page and "Helpline operator" in page
    assert audit_actions(app)[-1] == "login.success"
    assert "This is your first sign-in." in page
    with app.app_context():
        first = db.session.get(User, user.id).last_login_at
        assert first is not None
    again = app.test_client()
    login(again, user.email)
    page = again.get("/account").get_data(as_text=True)
    shown = first.astimezone(ZoneInfo("America/Los_Angeles"))  # the facility's clock, labelled
    assert shown.strftime("%Y-%m-%d %H:%M %Z") in page and "first sign-in" not in page


@pytest.mark.parametrize("roles,landing", [
    ([Role.OPERATOR], "/calls/new"),
    ([Role.SUPERVISOR], "/calls/urgent"),
    ([Role.RECORDS_CLERK], "/queue/requests/"),
    ([Role.PRIVACY_OFFICER], "/admin/audit/"),
    ([Role.ADMIN], "/admin/"),
    ([Role.REQUESTER], "/my/requests/"),
    # Several roles: the first of theirs in that order.
    ([Role.ADMIN, Role.PRIVACY_OFFICER], "/admin/audit/"),
    ([Role.RECORDS_CLERK, Role.SUPERVISOR], "/calls/urgent"),
    (list(FULL_ADMIN), "/calls/new"),
])
def test_each_role_lands_on_its_work(app, client, make_user, roles, landing):
    user = make_user(roles)
    response = login(client, user.email)
    assert response.status_code == 302 and response.headers["Location"] == landing
    assert client.get(landing).status_code == 200
    # Signed in already, /login sends them there too.
    assert client.get("/login").headers["Location"] == landing


def test_email_is_case_insensitive(client, make_user):
    make_user(FULL_ADMIN, email="Case.Person@Example.org")
    assert login(client, "case.person@EXAMPLE.ORG").status_code == 302


def test_unknown_account_and_wrong_password_look_the_same(app, client, make_user, monkeypatch):
    user = make_user(Role.REQUESTER)
    calls = []

    class CountingHasher:
        def __init__(self, inner):
            self.inner = inner

        def verify(self, stored, password):
            calls.append(1)
            return self.inner.verify(stored, password)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setitem(app.extensions, "intake_hasher", CountingHasher(app.extensions["intake_hasher"]))

    wrong = login(client, user.email, "not the right password")
    unknown = login(client, "nobody-here@example.org", "not the right password")
    assert wrong.status_code == unknown.status_code == 200
    assert WRONG in wrong.get_data(as_text=True) and WRONG in unknown.get_data(as_text=True)
    # Same work on both paths: one argon2 verification each, so timing does not tell them apart.
    assert len(calls) == 2
    assert audit_actions(app)[-2:] == ["login.failure", "login.failure"]
    with app.app_context():
        details = db.session.execute(select(AuditEvent.details).order_by(AuditEvent.seq.desc())).scalars().first()
    assert "nobody-here" not in details  # the typed address is never stored


def test_disabled_account_cannot_sign_in(app, client, make_user):
    user = make_user(Role.OPERATOR, active=False)
    response = login(client, user.email)
    assert response.status_code == 200 and WRONG in response.get_data(as_text=True)
    assert client.get("/account").status_code == 302


def test_new_session_on_sign_in(client, make_user):
    user = make_user(FULL_ADMIN)
    with client.session_transaction() as sess:
        sess["planted_before_login"] = "attacker-value"
    login(client, user.email)
    with client.session_transaction() as sess:
        assert "planted_before_login" not in sess
        assert "_auth_at" in sess and "_user_id" in sess


def test_sign_out_ends_the_session_on_the_server(app, client, make_user):
    user = make_user(FULL_ADMIN)
    login(client, user.email)
    old_cookie = session_cookie(client)
    token = csrf_token(client, "/account")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "You are signed out." in client.get("/").get_data(as_text=True)
    assert "logout" in audit_actions(app)

    replay = app.test_client()
    replay.set_cookie("intake_session", old_cookie)
    response = replay.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_sign_out_needs_post_and_a_csrf_token(client, make_user):
    login(client, make_user(FULL_ADMIN).email)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/account").status_code == 200  # still signed in


def test_disabled_users_old_cookie_stops_working(app, client, make_user):
    user = make_user(Role.OPERATOR)
    login(client, user.email)
    assert client.get("/account").status_code == 200
    with app.app_context():
        disable_user(db.session.get(User, user.id))
        db.session.commit()
    before = audit_count(app)
    response = client.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert audit_count(app) == before  # a dead cookie writes nothing


@pytest.mark.parametrize("target,expected", [
    ("/account", "/account"),
    ("/account?tab=1", "/account?tab=1"),
    ("https://evil.example/phish", "/admin/"),
    ("//evil.example/phish", "/admin/"),
    ("/\\evil.example", "/admin/"),
    ("javascript:alert(1)", "/admin/"),
    ("/%0d%0aSet-Cookie:x=1", "/%0d%0aSet-Cookie:x=1"),
    ("", "/admin/"),
])
def test_next_is_kept_on_this_site(client, make_user, target, expected):
    """A safe ``next`` wins; anything else lands on the role's work (an admin: the hub)."""
    user = make_user(Role.ADMIN)
    response = login(client, user.email, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_protected_page_sends_visitor_to_sign_in_and_back(client, make_user):
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Faccount"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="next" type="hidden" value="/account"' in page


def test_idle_timeout_after_15_minutes(client, make_user):
    user = make_user(FULL_ADMIN)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        login(client, user.email)
        clock.move_to(start + timedelta(minutes=14))
        assert client.get("/account").status_code == 200  # activity resets the idle clock
        clock.move_to(start + timedelta(minutes=28))
        assert client.get("/account").status_code == 200
        clock.move_to(start + timedelta(minutes=44))
        response = client.get("/account")
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
        assert "inactivity" in client.get("/login").get_data(as_text=True)


@pytest.mark.parametrize("role,limit_hours", [(Role.ADMIN, 8), (Role.OPERATOR, 8), (Role.REQUESTER, 1)])
def test_absolute_timeout_even_when_active(app, client, make_user, role, limit_hours):
    user = make_user(role)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        login(client, user.email)
        minutes = 0
        while minutes + 10 < limit_hours * 60:
            minutes += 10
            clock.move_to(start + timedelta(minutes=minutes))
            assert client.get("/account").status_code == 200, f"signed out early at {minutes} min"
        clock.move_to(start + timedelta(hours=limit_hours, minutes=1))
        response = client.get("/account")
        assert response.status_code == 302
    assert audit_actions(app)[-1] == "logout"


def test_rehash_on_sign_in_when_parameters_change(app, client, make_user):
    user = make_user(FULL_ADMIN)
    with app.app_context():
        old_hash = db.session.get(User, user.id).password_hash
    assert "m=1024,t=1" in old_hash
    app.extensions["intake_hasher"] = make_hasher(2, 19 * 1024, 1)  # production parameters
    assert login(client, user.email).status_code == 302
    with app.app_context():
        new_hash = db.session.get(User, user.id).password_hash
    assert new_hash != old_hash and "$argon2id$" in new_hash and "m=19456,t=2,p=1" in new_hash


def test_production_hash_parameters():
    from config import ProductionConfig

    hasher = make_hasher(ProductionConfig.ARGON2_TIME_COST, ProductionConfig.ARGON2_MEMORY_COST,
                         ProductionConfig.ARGON2_PARALLELISM)
    assert hasher.hash("x" * 12).startswith("$argon2id$v=19$m=19456,t=2,p=1$")


# --- hostile and malformed input: clear answer, never a 500, nothing written -----------------

def post_login(client, **data):
    return client.post("/login", data=data)


def test_missing_csrf_token_is_refused_and_writes_nothing(app, client, make_user):
    user = make_user(FULL_ADMIN)
    before = audit_count(app)
    response = post_login(client, email=user.email, password=PASSWORD)
    assert response.status_code == 400
    assert "form has expired" in response.get_data(as_text=True)
    assert audit_count(app) == before
    assert client.get("/account").status_code == 302


def test_wrong_csrf_token_is_refused(app, client, make_user):
    user = make_user(FULL_ADMIN)
    csrf_token(client)
    response = post_login(client, email=user.email, password=PASSWORD, csrf_token="forged-token")
    assert response.status_code == 400


@pytest.mark.parametrize("email,password,message", [
    ("", PASSWORD, "Enter your e-mail address."),
    ("not-an-address", PASSWORD, "Enter an e-mail address like"),
    ("a" * 250 + "@example.org", PASSWORD, "too long"),
    ("x@example.org", "", "Enter your password."),
    ("x@example.org", "p" * 129, "at most 128"),
    ("nul\x00byte@example.org", PASSWORD, "Enter an e-mail address like"),
    ("<script>alert(1)</script>@example.org", PASSWORD, "Enter an e-mail address like"),
    ("' OR 1=1 --@example.org", PASSWORD, "Enter an e-mail address like"),
])
def test_malformed_sign_in_fields(app, client, email, password, message):
    before = audit_count(app)
    response = post_login(client, email=email, password=password, csrf_token=csrf_token(client))
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in body
    assert "<script>alert(1)</script>" not in body  # echoed input is escaped
    assert audit_count(app) == before


def test_oversized_field_gets_a_message(client):
    response = client.post("/login", data={"email": "x" * 200_000, "password": "y", "csrf_token": csrf_token(client)})
    assert response.status_code == 400
    assert "too long" in response.get_data(as_text=True)


def test_oversized_body_is_refused(client):
    response = client.post("/login", data={"email": "x" * 2_000_000, "password": "y", "csrf_token": csrf_token(client)})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)


def test_unicode_password_works(client, make_user):
    user = make_user(Role.REQUESTER, password="contraseña segura ñandú 🌵")
    assert login(client, user.email, "contraseña segura ñandú 🌵").status_code == 302


def test_no_truncation_of_long_passwords(client, make_user):
    password = "z" * 127 + "A"
    user = make_user(Role.REQUESTER, password=password)
    assert login(client, user.email, "z" * 127 + "B").status_code == 200
    assert login(client, user.email, password).status_code == 302


@pytest.mark.parametrize("password,ok", [
    ("short", False),
    ("password123", False),
    ("Password1", False),
    ("qwertyuiop", False),
    ("summer2024", False),
    ("x" * 129, False),
    ("eight ch", True),
    ("a fairly long passphrase", True),
])
def test_password_policy(app, password, ok):
    with app.test_request_context():
        assert (password_problems(password) == []) is ok


def test_email_as_password_is_refused(app):
    with app.test_request_context():
        assert password_problems("someone@example.org", "someone@example.org")
        assert password_problems("someone1", "Someone1@example.org")


def test_confidential_values_never_reach_the_logs(app, client, make_user, caplog):
    """Canary: an e-mail address and password typed in must not appear in any log line."""
    caplog.set_level("DEBUG")
    canary_email = "canary-7f2c9@example.org"
    user = make_user(Role.REQUESTER, email=canary_email, password="canary passphrase 7f2c9")
    login(client, canary_email, "wrong canary passphrase 7f2c9")
    login(client, canary_email, "canary passphrase 7f2c9")
    client.get("/account")
    client.get("/no-such-page-canary")
    assert user.id and "7f2c9" not in caplog.text


def _resident_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_password_check_gives_its_memory_back(app):
    """argon2 takes its memory cost (19 MiB in production) for each hash and check; a worker that
    handled sign-ins kept it for good (glibc serves it from the heap after the first), so the heap is
    handed back after each (``malloc_trim``)."""
    from intake.security import passwords

    if passwords._malloc_trim() is None:
        pytest.skip("no malloc_trim in this C library")
    with app.app_context():
        app.extensions["intake_hasher"] = passwords.make_hasher(1, 19 * 1024, 1)
        stored = passwords.hash_password("correct horse battery")
        before = _resident_mb()
        for attempt in ("wrong one", "correct horse battery", "another wrong"):
            passwords.verify_password(stored, attempt)
        assert _resident_mb() - before < 8
