"""Per-account lockout after repeated failures, and per-address rate limits (shared through Redis)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.users.models import Role, User
from tests.conftest import PASSWORD, ROOT, csrf_token, login, make_app, need_service, redis_prefix

WRONG = "The e-mail address or password is not right."


def attempt(client, email, password):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})


def fail_times(client, email, n):
    for _ in range(n):
        assert WRONG in attempt(client, email, "not the password at all").get_data(as_text=True)


def test_the_eleventh_attempt_is_refused_even_with_the_right_password(app, client, make_user):
    user = make_user(Role.REQUESTER)
    fail_times(client, user.email, 10)
    response = attempt(client, user.email, PASSWORD)
    assert response.status_code == 200 and WRONG in response.get_data(as_text=True)  # same message: no oracle
    assert client.get("/account").status_code == 302
    with app.app_context():
        locked = db.session.get(User, user.id)
        assert locked.locked_until is not None and locked.lockouts == 1
        assert "account.locked" in db.session.execute(select(AuditEvent.action)).scalars().all()
        notice = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "account_locked")).scalar_one()
        assert notice.recipient == user.email and "15 minutes" in notice.body


def test_nine_failures_then_success_resets_the_count(app, client, make_user):
    user = make_user(Role.REQUESTER)
    fail_times(client, user.email, 9)
    assert attempt(client, user.email, PASSWORD).status_code == 302
    with app.app_context():
        assert db.session.get(User, user.id).failed_logins == 0


def test_the_lock_ends_and_each_lock_lasts_longer(app, client, make_user):
    user = make_user(Role.REQUESTER)
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        fail_times(client, user.email, 10)
        clock.move_to(start + timedelta(minutes=14))
        assert attempt(client, user.email, PASSWORD).status_code == 200  # still locked
        clock.move_to(start + timedelta(minutes=16))
        fail_times(client, user.email, 10)  # lock over: ten more failures lock again, for 30 minutes
        clock.move_to(start + timedelta(minutes=16 + 29))
        assert attempt(client, user.email, PASSWORD).status_code == 200
        clock.move_to(start + timedelta(minutes=16 + 31))
        assert attempt(client, user.email, PASSWORD).status_code == 302
    with app.app_context():
        assert db.session.get(User, user.id).lockouts == 0  # a success forgets earlier locks


def test_wrong_codes_count_towards_the_lock(app, client, make_user):
    user = make_user(Role.OPERATOR)
    for _ in range(10):
        attempt(client, user.email, PASSWORD)
        response = client.post("/login/mfa", data={"code": "000000", "csrf_token": csrf_token(client, "/login/mfa")})
    assert response.headers["Location"] == "/login"  # the tenth wrong code ended the attempt
    assert login(app.test_client(), user.email).status_code == 200  # locked: refused with the right password


def test_unlock_by_cli(app, client, runner, make_user):
    user = make_user(Role.REQUESTER)
    fail_times(client, user.email, 10)
    result = runner.invoke(args=["users", "unlock", "--email", user.email])
    assert result.exit_code == 0
    assert attempt(client, user.email, PASSWORD).status_code == 302
    with app.app_context():
        assert "account.unlocked" in db.session.execute(select(AuditEvent.action)).scalars().all()


def test_unknown_addresses_never_lock_anything(app, client):
    fail_times(client, "nobody@example.org", 12)
    with app.app_context():
        assert db.session.execute(select(OutboxMessage)).first() is None


# --- rate limits ---------------------------------------------------------------------------

@pytest.fixture()
def limited_app(tmp_path, app):
    return make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "limited", RATELIMIT_ENABLED=True,
                    RATELIMIT_LOGIN="3 per minute", RATELIMIT_MFA="2 per minute")


def test_login_is_rate_limited_per_address(limited_app):
    client = limited_app.test_client()
    codes = [attempt(client, "x@example.org", "wrong password here").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert "Too many attempts" in attempt(client, "x@example.org", "y").get_data(as_text=True)
    assert client.get("/login").status_code == 200  # reading the form is never limited


def test_code_entry_is_rate_limited(limited_app, make_user):
    user = make_user(Role.OPERATOR)
    client = limited_app.test_client()
    attempt(client, user.email, PASSWORD)
    token = csrf_token(client, "/login/mfa")
    codes = [client.post("/login/mfa", data={"code": "000000", "csrf_token": token}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


REDIS_URL = "redis://127.0.0.1:6379/15"

SECOND_INSTANCE = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    os.environ["INTAKE_INSTANCE_PATH"] = {instance!r}
    from intake import create_app
    app = create_app("testing", overrides={{"SQLALCHEMY_DATABASE_URI": {db!r}, "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": {redis!r}, "RATELIMIT_KEY_PREFIX": {prefix!r}, "RATELIMIT_LOGIN": "3 per minute",
        "WTF_CSRF_ENABLED": False}})
    client = app.test_client()
    print(client.post("/login", data={{"email": "x@example.org", "password": "wrong password"}}).status_code)
""")


def test_limits_are_shared_by_two_app_instances_through_redis(tmp_path, app):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError as exc:
        need_service("Redis", str(exc))
    prefix = redis_prefix("lockout")
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    first = make_app(url, tmp_path / "one", RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL,
                     RATELIMIT_KEY_PREFIX=prefix, RATELIMIT_LOGIN="3 per minute", WTF_CSRF_ENABLED=False)
    client = first.test_client()
    for _ in range(3):  # the first instance uses the whole allowance...
        assert client.post("/login", data={"email": "x@example.org", "password": "wrong password"}).status_code == 200
    script = SECOND_INSTANCE.format(root=str(ROOT), instance=str(tmp_path / "two"), db=url, redis=REDIS_URL,
                                    prefix=prefix)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "429"  # ...so another process is refused at once
    store = redis.Redis.from_url(REDIS_URL)
    for key in store.scan_iter(f"*{prefix}*"):
        store.delete(key)


@pytest.mark.outage
def test_sign_in_still_answers_while_redis_is_down(tmp_path, app, make_user, caplog):
    """Rate-limit counters unreachable: the limit is not counted (logged), the page answers, and
    the account lockout (in the database) still counts every wrong password."""
    closed_port = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    down = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "down", RATELIMIT_ENABLED=True,
                    RATELIMIT_STORAGE_URI=closed_port, RATELIMIT_LOGIN="3 per minute", WTF_CSRF_ENABLED=False)
    user = make_user(Role.OPERATOR)
    client = down.test_client()
    codes = [client.post("/login", data={"email": user.email, "password": "wrong password here"}).status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 200]  # no 500, and no 429 either: nothing could be counted
    assert any("rate limit" in r.getMessage().lower() or "swallow" in r.getMessage().lower()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    with down.app_context():
        assert db.session.get(User, user.id).failed_logins == 4
    with down.app_context():
        db.session.remove()
        db.engine.dispose()
