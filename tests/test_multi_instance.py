"""Several stateless app instances on one PostgreSQL and one Redis (DESIGN.md, "Scale-out").

Two gunicorn instances (gunicorn.conf.py, ``INTAKE_CONFIG=production``, the same fresh secrets,
2 workers each, on two ports) serve a PostgreSQL database this module creates and drops, with
rate-limit counters in Redis under a key prefix of its own. Nothing a person does depends on which
instance answers:

- a sign-in started on one instance (password) is finished on the other (code), and the session
  works on both;
- a sign-out on one instance ends the session on the other (the cookie copied before sign-out
  is refused there);
- the login rate limit is counted once for both: 10 attempts spread over A and B, and the 11th is
  refused by either;
- the lockout counts failures made on both;
- two ``flask outbox send`` processes started at once against one SMTP server (aiosmtpd) deliver
  every queued message exactly once (counted by Message-ID), each of them sending some.

Needs the local PostgreSQL (``TEST_DATABASE_URL``, or the default the suite uses) and Redis
(127.0.0.1:6379): skipped locally when one is missing, a failure in CI (``CI=true``).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pyotp
import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import select

import config
from intake import create_app
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.models import OutboxMessage, OutboxStatus
from intake.notify.services import queue_email
from intake.users.models import Role
from intake.users.services import create_user
from tests.conftest import CSRF_RE, PASSWORD, PG_BASE_URL, ROOT, need_service, postgres_available, redis_prefix

sys.path.insert(0, str(ROOT / "scripts"))  # the crash test's gunicorn handling and HTTP client
from crash_harness import PostgresDatabase, Server, Visitor, free_port  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/12"
WRONG = "The e-mail address or password is not right."
MESSAGES = 60


@dataclass
class Cluster:
    env: dict[str, str]
    workdir: Path
    ports: tuple[int, int]
    servers: tuple[Server, Server]
    app: Flask  # in this process, on the same database and keys: for setting up and checking
    prefix: str  # the instances' rate-limit keys in Redis

    def visitor(self, which: int) -> Visitor:
        return Visitor(self.ports[which])

    def reset_rate_limits(self) -> None:
        delete_rate_limit_keys(self.prefix)


def delete_rate_limit_keys(prefix: str) -> None:
    import redis

    store = redis.Redis.from_url(REDIS_URL)
    try:
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)
    finally:
        store.close()


def _services() -> None:
    import redis

    if not postgres_available(PG_BASE_URL):
        need_service("PostgreSQL", f"nothing answers at {PG_BASE_URL}")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError as exc:
        need_service("Redis", str(exc))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    _services()
    workdir = tmp_path_factory.mktemp("multi")
    # A database of this module's own, named from the process id (never from input), dropped afterwards.
    database = PostgresDatabase(PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://", 1),
                                f"intake_multi_{os.getpid()}")
    url = database.create()
    prefix = redis_prefix("multi")
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLASK_DEBUG", "DEBUG", "FLASK_APP", "DATABASE_URL", "REDIS_URL")
           and not k.startswith("GUNICORN_")}
    env.update({
        "INTAKE_CONFIG": "production", "DATABASE_URL": url, "REDIS_URL": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix,
        # Fresh for this run, and the same for every instance: that is what makes a cookie good anywhere.
        "SECRET_KEY": secrets.token_urlsafe(48), "DATA_KEYS": "multi1:" + config.new_data_key(),
        "BLIND_INDEX_KEY": config.new_data_key(), "AUDIT_KEYS": "multiaudit1:" + config.new_data_key(),
        "GUNICORN_ACCESS_LOG": "-",
    })
    servers: list[Server] = []
    local_app = None
    try:
        subprocess.run([sys.executable, "-m", "flask", "--app", "intake", "db", "upgrade"], cwd=ROOT,
                       env={**env, "INTAKE_INSTANCE_PATH": str(workdir / "cli")}, check=True, capture_output=True,
                       timeout=120)
        ports = (free_port(), free_port())
        for name, port in zip("ab", ports, strict=True):
            folder = workdir / name
            folder.mkdir()
            server = Server({**env, "INTAKE_INSTANCE_PATH": str(folder / "instance")}, port, 2, folder / "gunicorn.log")
            server.start()
            servers.append(server)
        for server in servers:
            server.wait_healthy()
        os.environ["INTAKE_INSTANCE_PATH"] = str(workdir / "local")
        local_app = create_app("testing", overrides={
            "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": env["SECRET_KEY"], "DATA_KEYS": env["DATA_KEYS"],
            "BLIND_INDEX_KEY": env["BLIND_INDEX_KEY"], "AUDIT_KEYS": env["AUDIT_KEYS"]})
        yield Cluster(env, workdir, ports, (servers[0], servers[1]), local_app, prefix)
    finally:
        for server in servers:
            server.stop()
        if local_app is not None:
            with local_app.app_context():
                db.session.remove()
                db.engine.dispose()
        delete_rate_limit_keys(prefix)
        database.drop()


def make_account(cluster: Cluster, role: Role) -> tuple[str, str | None]:
    """A verified account; staff get an enrolled authenticator. Returns (e-mail, TOTP secret)."""
    email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.org"
    with cluster.app.app_context():
        user = create_user(email, role, PASSWORD, display_name="Multi Instance" if role.is_staff else None)
        secret = None
        if user.is_staff:
            secret = user.mfa_secret = pyotp.random_base32()
            user.mfa_enrolled_at = utcnow()
        db.session.commit()
    return email, secret


def csrf(visitor: Visitor, path: str) -> str:
    status, _, text = visitor.send("GET", path)
    match = CSRF_RE.search(text)
    assert status == 200 and match, f"no form on {path} (HTTP {status})"
    return match.group(1) or match.group(2)


def sign_in_across(cluster: Cluster) -> tuple[Visitor, str]:
    """An operator types the password on instance A and the code on instance B."""
    email, secret = make_account(cluster, Role.OPERATOR)
    visitor = cluster.visitor(0)
    status, location, _ = visitor.send("POST", "/login", {"email": email, "password": PASSWORD,
                                                          "csrf_token": csrf(visitor, "/login")})
    assert (status, location) == (302, "/login/mfa")
    visitor.port = cluster.ports[1]  # the pending sign-in lives in the signed cookie, not in a process
    status, location, _ = visitor.send("POST", "/login/mfa", {"code": pyotp.TOTP(secret).now(),
                                                              "csrf_token": csrf(visitor, "/login/mfa")})
    assert status == 302 and location == "/calls/new", (status, location)  # where an operator's work starts
    return visitor, email


def account_page(cluster: Cluster, cookies: dict[str, str], which: int) -> tuple[int, str, str]:
    return Visitor(cluster.ports[which], dict(cookies)).send("GET", "/account")


def test_a_session_made_on_one_instance_works_on_the_other(cluster):
    visitor, email = sign_in_across(cluster)
    assert any(name.startswith("__Host-") for name in visitor.cookies)  # the production cookie
    for which in (0, 1):
        status, _, text = account_page(cluster, visitor.cookies, which)
        assert status == 200 and email in text


def test_a_sign_out_on_one_instance_is_honoured_by_the_other(cluster):
    visitor, email = sign_in_across(cluster)
    copied = dict(visitor.cookies)  # what a thief, or a second tab, still holds after the sign-out
    assert account_page(cluster, copied, 1)[0] == 200
    visitor.port = cluster.ports[0]
    status, location, _ = visitor.send("POST", "/logout", {"csrf_token": csrf(visitor, "/account")})
    assert (status, location) == (302, "/")
    for which in (1, 0):
        status, location, text = account_page(cluster, copied, which)
        assert status == 302 and location.startswith("/login"), (which, status, location)
        assert email not in text


def test_the_login_rate_limit_is_counted_once_for_every_instance(cluster):
    cluster.reset_rate_limits()  # earlier sign-ins from 127.0.0.1 used some of this minute's allowance
    codes = []
    for attempt in range(12):
        visitor = cluster.visitor(attempt % 2)
        codes.append(visitor.send("POST", "/login", {"email": "nobody@example.org", "password": "not the password",
                                                     "csrf_token": csrf(visitor, "/login")})[0])
    # RATELIMIT_LOGIN in production: 10 a minute per address. Each instance saw only 5 or 6 attempts.
    assert codes == [200] * 10 + [429, 429]
    cluster.reset_rate_limits()


def test_failures_on_both_instances_lock_the_account(cluster):
    email, _ = make_account(cluster, Role.REQUESTER)
    cluster.reset_rate_limits()
    for attempt in range(10):  # LOCKOUT_THRESHOLD failures, half on each instance
        visitor = cluster.visitor(attempt % 2)
        status, _, text = visitor.send("POST", "/login", {"email": email, "password": "not the password at all",
                                                          "csrf_token": csrf(visitor, "/login")})
        assert status == 200 and WRONG in text
    cluster.reset_rate_limits()  # so that what refuses the right password next is the lock, not the limit
    for which in (0, 1):
        visitor = cluster.visitor(which)
        status, _, text = visitor.send("POST", "/login", {"email": email, "password": PASSWORD,
                                                          "csrf_token": csrf(visitor, "/login")})
        assert status == 200 and WRONG in text, (which, status)
    cluster.reset_rate_limits()


def test_access_log_lines_carry_no_token_and_no_query_string(cluster):
    token = "IjQyIg." + secrets.token_urlsafe(16)
    assert Visitor(cluster.ports[0]).send("GET", f"/reset/{token}?email=someone%40example.org")[0] == 400
    deadline = time.monotonic() + 10
    while "/reset/[token]" not in (log := cluster.servers[0].log_path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the worker writes the line just after the answer
    assert '"GET /reset/[token] HTTP/1.1" 400' in log
    requests = [line for line in log.splitlines() if '"GET /' in line or '"POST /' in line]
    assert requests and not [line for line in requests if "?" in line]
    assert token not in log and "someone" not in log


# --- two outbox senders ---------------------------------------------------------------------------

class GatedRecorder:
    """An SMTP server that keeps the Message-ID of everything it accepts. The first message waits
    until a second one is being delivered at the same time (so both senders are surely at work
    together), then everything flows, a little slowly, so that their claims interleave."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []
        self.in_flight = 0
        self.overlapped = False
        self._both: asyncio.Event | None = None

    async def handle_DATA(self, server, session, envelope):
        if self._both is None:
            self._both = asyncio.Event()
        self.in_flight += 1
        if self.in_flight >= 2:
            self.overlapped = True
            self._both.set()
        try:
            await asyncio.wait_for(self._both.wait(), timeout=20)
        except TimeoutError:
            pass  # the test then fails on "overlapped", with every message still counted
        await asyncio.sleep(0.01)
        email = message_from_bytes(envelope.original_content, policy=default_policy)
        self.message_ids.append(str(email["Message-ID"]))
        self.in_flight -= 1
        return "250 Message accepted for delivery"


SENT_RE = re.compile(r"Outbox: sent (\d+), retried (\d+), failed (\d+)\.")


def test_two_outbox_senders_at_once_deliver_every_message_exactly_once(cluster):
    with cluster.app.app_context():
        for n in range(MESSAGES):
            queue_email(f"requester{n}@example.org", "records_update", "Your records request has an update",
                        "Sign in to read it.")
        db.session.commit()
        # Every message due now (the lockout test's notice too): each must arrive once.
        expected = set(db.session.execute(
            select(OutboxMessage.message_id)
            .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= utcnow())).scalars())
        db.session.rollback()
    assert len(expected) >= MESSAGES

    handler = GatedRecorder()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        env = {**cluster.env, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(port), "MAIL_USE_STARTTLS": "false",
               "MAIL_DEFAULT_SENDER": "records@example.org", "MAIL_TIMEOUT_SECONDS": "30"}
        senders = []
        for name in ("one", "two"):
            senders.append(subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "intake", "outbox", "send", "--limit", "1000"],
                cwd=ROOT, env={**env, "INTAKE_INSTANCE_PATH": str(cluster.workdir / name)},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outputs = [sender.communicate(timeout=90) for sender in senders]
    finally:
        controller.stop()

    sent = []
    for sender, (out, err) in zip(senders, outputs, strict=True):
        assert sender.returncode == 0, err
        match = SENT_RE.search(out)
        assert match and match.group(2, 3) == ("0", "0"), out
        sent.append(int(match.group(1)))
    received = Counter(handler.message_ids)
    assert [mid for mid, n in received.items() if n > 1] == []  # nothing twice
    assert set(received) == expected  # nothing missed, nothing unknown
    assert sum(sent) == len(expected) and handler.overlapped and min(sent) > 0, sent  # both really took part
    with cluster.app.app_context():
        rows = db.session.execute(select(OutboxMessage.status, OutboxMessage.attempts)
                                  .where(OutboxMessage.message_id.in_(expected))).all()
        db.session.rollback()
    assert Counter(rows) == {(OutboxStatus.SENT, 1): len(expected)}
