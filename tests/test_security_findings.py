"""Findings 2 to 9 of the penetration test (issue 18), each replayed by a test that plays the attacker
and now fails to succeed; where the database matters, on SQLite and on PostgreSQL. Finding 1 (the
audit trail) is tests/test_audit_attacks.py.

2. tokens of e-mailed links in the application log      6. account enumeration by the work done
3. a sign-in paused at enrolment outliving the enrolment  7. production starting with unsafe settings
4. one TOTP code accepted twice at the same moment       8. CR/LF in a path forging log lines
5. the lockout overrun by simultaneous wrong passwords   9. `make run` printing tokens and looked-up addresses
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.client import HTTPConnection
from types import SimpleNamespace

import pyotp
import pytest
from flask import Flask, request
from sqlalchemy import func, select
from werkzeug.serving import make_server

import config
from intake import RefusedToStart, create_app
from intake.audit.models import AuditEvent
from intake.auth.account_services import send_reset_links
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.permissions import Permission, require
from intake.security import log_redaction
from intake.users.invitations import invite_staff
from intake.users.models import RecoveryCode, Role, User
from tests.conftest import PASSWORD, ROOT, csrf_token, login, sql_statements, totp_code
from tests.test_config_and_cli import GOOD_PRODUCTION

PLANTED = "planted.canary+7@example.org"
NEW_PASSWORD = "a brand new passphrase 31"
WRONG = "The e-mail address or password is not right."


# --- capturing every log line ----------------------------------------------------------------------

class Lines(logging.Handler):
    """A handler that keeps each formatted line, as a log file would hold it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def captured_logs(app: Flask) -> Iterator[Lines]:
    """A handler on the root logger (the app's, werkzeug's and every other logger reach it), given
    the redacting filter the way the app gives it to every handler (``log_redaction.install``)."""
    handler, root = Lines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    log_redaction.install(app)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def mail_to(app: Flask, recipient: str, kind: str) -> OutboxMessage:
    with app.app_context():
        messages = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == kind)
                                      .order_by(OutboxMessage.id)).scalars().all()
        found = [m for m in messages if m.recipient == recipient]
        assert found, f"no {kind} e-mail to {recipient}"
        _ = found[-1].body
        db.session.expunge(found[-1])
        return found[-1]


def link_token(body: str, prefix: str) -> str:
    match = re.search(re.escape(prefix) + r"([^\s/]+)", body)
    assert match, body
    return match.group(1)


# --- 2. tokens in the application log --------------------------------------------------------------

def token_routes(app: Flask) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules() if log_redaction.secret_arguments(rule.arguments)}


def _recipient_link(app: Flask, admin: User, reference: str) -> tuple[str, str]:
    """A recipient's secure link on the request (under a disclosure written for it): (token, file uid)."""
    from intake.db_types import utcnow
    from intake.records import documents, recipient
    from intake.records.models import CodeChannel, Disclosure, DisclosureBasis, RecordsRequest, Visibility

    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        actor = db.session.get(User, admin.id)
        doc = documents.store_document(req, "released_record", "r.pdf", b"%PDF-1.4\n", actor, Visibility.INTERNAL)
        disclosure = Disclosure(request_id=req.id, basis=DisclosureBasis.CONSENT, channel="recipient_link",
                                recipient_name="Clinic", description="Records", purpose="Care",
                                disclosed_by_id=admin.id)
        db.session.add(disclosure)
        db.session.flush()
        with app.test_request_context():
            sent = recipient.make_link(req, disclosure, actor, "clinic@example.org", CodeChannel.PHONE, [doc.id],
                                       utcnow())
        db.session.commit()
        return sent.token, doc.uid


def test_no_link_token_nor_planted_address_reaches_any_log_line(app, make_user, make_request):
    """Every route whose URL carries a token, driven through its failures (a bad token, a missing
    CSRF token, a real token with the CSRF check failing: the pen test's line), plus an unhandled
    error whose message holds the path: no captured line holds a token or the planted address, and
    the CSRF line names the endpoint. The pen test took over an invitation from that line alone."""

    @require(Permission.SIGNED_IN)
    def explode(token: str):
        raise RuntimeError(f"could not handle {request.path} for {PLANTED}")

    app.add_url_rule("/explode/<token>", "explode_token", explode)
    admin = make_user(Role.ADMIN)
    with captured_logs(app) as logs:
        with app.app_context():
            invite_staff(PLANTED, "operator", db.session.get(User, admin.id), display_name="Planted Person")
            db.session.commit()
        invitation = link_token(mail_to(app, PLANTED, "staff_invitation").body, "/invite/")
        visitor = app.test_client()
        visitor.post("/register", data={"email": "requester." + PLANTED, "password": NEW_PASSWORD,
                                        "confirm": NEW_PASSWORD, "csrf_token": csrf_token(visitor, "/register")})
        verification = link_token(mail_to(app, "requester." + PLANTED, "verify_email").body, "/register/verify/")
        visitor.post("/reset", data={"email": "requester." + PLANTED, "csrf_token": csrf_token(visitor, "/reset")})
        with app.app_context():
            send_reset_links()
        reset = link_token(mail_to(app, "requester." + PLANTED, "reset_password").body, "/reset/")
        copy_token, copy_file = _recipient_link(app, admin, make_request(make_user(Role.REQUESTER)))
        driven = {"invitations.accept": f"/invite/{invitation}",
                  "registration.verify_email": f"/register/verify/{verification}",
                  "reset.choose_password": f"/reset/{reset}",
                  "explode_token": f"/explode/{invitation}",
                  "recipient_copy.open_link": f"/copy/{copy_token}",
                  "recipient_copy.download": f"/copy/{copy_token}/files/{copy_file}"}
        # The code form shares the page's path (POST /copy/<token>), driven with it below.
        assert token_routes(app) == set(driven) | {"recipient_copy.enter_code"}, \
            "a route with a token is not driven by this test"
        attacker = app.test_client()
        for path in driven.values():
            attacker.get(path)
            attacker.post(path, data={"password": "x"})  # no CSRF token: the check fails and is logged
            attacker.post(path + "x", data={"csrf_token": csrf_token(attacker, "/login")})  # a bad token
            attacker.get(path + "%0D%0AINFO intake: forged")
        attacker.post("/login", data={"email": PLANTED, "password": "no csrf"})
        login(attacker, admin.email)
        assert attacker.get(f"/explode/{invitation}").status_code == 500
        attacker.get("/admin/users/", query_string={"email": PLANTED})
    text = logs.text
    assert "CSRF check failed on POST invitations.accept" in text
    assert "[token]" in text  # the exception's message, with the path, redacted
    assert "CSRF check failed on POST recipient_copy.enter_code" in text
    for secret in (invitation, verification, reset, copy_token, PLANTED, PLANTED.replace("@", "%40"),
                   "requester.planted"):
        assert secret not in text, secret
    assert not [line for line in logs.lines if line.startswith("INFO intake: forged")]


def test_the_filter_takes_tokens_addresses_and_sensitive_values_out_of_any_text():
    redact = log_redaction.RedactingFilter().redact
    assert redact('"GET /reset/eyJ1Ijoi.Zabc.sig HTTP/1.1" 200') == '"GET /reset/[token] HTTP/1.1" 200'
    assert redact("/register/verify/abc.def/") == "/register/verify/[token]/"
    assert redact("/invite%2Fabc.def") == "/invite%2F[token]"
    assert redact("/admin/users/?email=a%40b.org&role=admin") == "/admin/users/?email=[redacted]&role=admin"
    assert redact("/login?next=/reset/abc&x=1") == "/login?next=[redacted]&x=1"
    assert redact("mail to someone@example.org failed") == "mail to [email] failed"
    assert redact("a\r\nINFO forged\x1b[2J\u202eevil\x00") == "a\\r\\nINFO forged\\x1b[2J\\u202eevil\\x00"
    assert redact(redact("/reset/abc?code=123456\n")) == "/reset/[token]?code=[redacted]\\n"  # twice: the same
    assert redact("\x1b[33mGET /calls/ 200\x1b[0m") == "GET /calls/ 200"  # the dev server's colours go


# --- 3. a sign-in paused at enrolment -------------------------------------------------------------

def enrol_code(app: Flask, user_id: int) -> str:
    with app.app_context():
        return pyotp.TOTP(db.session.get(User, user_id).mfa_secret).now()


def test_a_sign_in_paused_at_enrolment_dies_when_the_account_enrols_elsewhere(app, make_user):
    user = make_user(Role.OPERATOR, mfa=False)
    stale, owner = app.test_client(), app.test_client()
    for client in (stale, owner):
        response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                               "csrf_token": csrf_token(client)})
        assert response.headers["Location"] == "/mfa/setup"
    assert stale.get("/mfa/setup").status_code == 200
    owner.get("/mfa/setup")
    shown = owner.post("/mfa/setup", data={"code": enrol_code(app, user.id),
                                           "csrf_token": csrf_token(owner, "/mfa/setup")})
    assert shown.status_code == 200 and "recovery" in shown.get_data(as_text=True).lower()
    with app.app_context():
        secret = db.session.get(User, user.id).mfa_secret
        codes = sorted(db.session.execute(select(RecoveryCode.code_hash)
                                          .where(RecoveryCode.user_id == user.id)).scalars())
    # The paused sign-in no longer shows the (now active) secret, nor enrols again.
    page = stale.get("/mfa/setup")
    assert page.status_code == 302 and page.headers["Location"] == "/login"
    assert secret not in page.get_data(as_text=True)
    again = stale.post("/mfa/setup", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_token(stale, "/login")})
    assert again.status_code == 302 and again.headers["Location"] == "/login"
    assert stale.get("/account").status_code == 302
    with app.app_context():
        assert sorted(db.session.execute(select(RecoveryCode.code_hash)
                                         .where(RecoveryCode.user_id == user.id)).scalars()) == codes
        assert [a for a in db.session.execute(select(AuditEvent.action)).scalars() if a == "mfa.enrolled"] == \
            ["mfa.enrolled"]


def run_at_once(calls: list) -> list:
    """Run each callable in its own thread, released together; return their results in order."""
    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        start.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_enrolments_at_once_enrol_once(backend_app, make_user_on):
    user = make_user_on(backend_app, Role.OPERATOR, mfa=False)
    clients = [backend_app.test_client() for _ in range(2)]
    for client in clients:
        client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
        client.get("/mfa/setup")
    with backend_app.app_context():
        totp = pyotp.TOTP(db.session.get(User, user.id).mfa_secret)
    steps = [int(time.time() // 30), int(time.time() // 30) + 1]  # two different, valid codes
    forms = [{"code": totp.generate_otp(step), "csrf_token": csrf_token(c, "/mfa/setup")}
             for c, step in zip(clients, steps, strict=True)]
    answers = run_at_once([lambda c=c, f=f: c.post("/mfa/setup", data=f)
                           for c, f in zip(clients, forms, strict=True)])
    # One shows its recovery codes; the other gets the form with an error, or (when it started after
    # the first had enrolled) is sent back to sign in.
    assert sum("Your recovery codes" in a.get_data(as_text=True) for a in answers) == 1
    with backend_app.app_context():
        enrolled = [a for a in db.session.execute(select(AuditEvent.action)).scalars() if a == "mfa.enrolled"]
        assert enrolled == ["mfa.enrolled"]
        assert db.session.execute(select(func.count()).select_from(RecoveryCode)).scalar_one() == 10


@pytest.fixture()
def make_user_on():
    """``make_user`` for an app of one's own (``backend_app``)."""
    from tests.conftest import PASSWORD as password

    def factory(application: Flask, role: Role, mfa: bool = True, email: str | None = None) -> SimpleNamespace:
        from intake.db_types import utcnow
        from intake.users.services import create_user

        with application.app_context():
            user = create_user(email or f"{role.value}.{secrets.token_hex(3)}@example.org", role, password,
                               display_name="Staff Member" if Role(role).is_staff else None)
            if mfa and user.is_staff:
                user.mfa_secret, user.mfa_enrolled_at = pyotp.random_base32(), utcnow()
            db.session.commit()
            return SimpleNamespace(id=user.id, email=user.email, mfa_secret=user.mfa_secret)

    return factory


# --- 4. one code, two sign-ins at once ---------------------------------------------------------------

def test_a_totp_code_works_once_under_concurrency(backend_app, make_user_on):
    """The pen test had one code accepted by two simultaneous sign-ins in 3 of 4 rounds."""
    for _round in range(3):
        user = make_user_on(backend_app, Role.OPERATOR)
        clients = [backend_app.test_client() for _ in range(2)]
        for client in clients:
            response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                                   "csrf_token": csrf_token(client)})
            assert response.headers["Location"] == "/login/mfa"
        code = totp_code(clients[0], user.email)
        forms = [{"code": code, "csrf_token": csrf_token(c, "/login/mfa")} for c in clients]
        answers = run_at_once([lambda c=c, f=f: c.post("/login/mfa", data=f) for c, f in zip(clients, forms,
                                                                                           strict=True)])
        signed_in = [a for a in answers if a.status_code == 302 and a.headers["Location"] == "/calls/new"]
        assert len(signed_in) == 1, [(a.status_code, a.headers.get("Location")) for a in answers]
        with backend_app.app_context():
            actions = db.session.execute(select(AuditEvent.action)
                                         .where(AuditEvent.object_id == str(user.id))).scalars()
            assert list(actions).count("login.success") == 1


# --- 5. the lockout under a flood of wrong passwords -----------------------------------------------

def test_forty_simultaneous_wrong_passwords_check_at_most_the_threshold(backend_app, make_user_on, monkeypatch):
    """The pen test had 22 of 40 wrong passwords checked before the lock held (threshold 10)."""
    import intake.auth.services as auth_services

    backend_app.config["WTF_CSRF_ENABLED"] = False
    user = make_user_on(backend_app, Role.REQUESTER)
    with backend_app.app_context():
        real_hash = db.session.get(User, user.id).password_hash
    checked, lock = [], threading.Lock()
    verify = auth_services.verify_password

    def counting(stored_hash, password):
        if stored_hash == real_hash:
            with lock:
                checked.append(password)
        return verify(stored_hash, password)

    monkeypatch.setattr(auth_services, "verify_password", counting)
    clients = [backend_app.test_client() for _ in range(40)]
    answers = run_at_once([lambda c=c, i=i: c.post("/login", data={"email": user.email, "password": f"wrong guess {i}"})
                           for i, c in enumerate(clients)])
    assert all(a.status_code == 200 and WRONG in a.get_data(as_text=True) for a in answers)
    threshold = backend_app.config["LOCKOUT_THRESHOLD"]
    assert 1 <= len(checked) <= threshold, len(checked)
    with backend_app.app_context():
        account = db.session.get(User, user.id)
        assert account.locked_until is not None and account.lockouts == 1
        failures = db.session.execute(select(AuditEvent.details).where(AuditEvent.action == "login.failure",
                                                                       AuditEvent.object_id == str(user.id))).scalars()
        reasons = [d for d in failures]
        assert sum('"wrong_password"' in d for d in reasons) == len(checked)
        assert sum('"locked"' in d for d in reasons) == 40 - len(checked)
    # And the right password is refused too while the lock lasts, without its hash being tried.
    before = len(checked)
    assert WRONG in clients[0].post("/login", data={"email": user.email, "password": PASSWORD}).get_data(as_text=True)
    assert len(checked) == before


# --- 6. enumeration by the work done ------------------------------------------------------------------

_SHAPE = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM|SELECT .*? FROM|SELECT|SAVEPOINT|RELEASE SAVEPOINT|"
                    r"ROLLBACK TO SAVEPOINT|BEGIN|COMMIT|ROLLBACK)\s*\"?(\w+)?", re.IGNORECASE | re.DOTALL)


def shape(statement: str) -> str:
    """A statement's kind and table: what it costs, whatever its values."""
    match = _SHAPE.match(statement)
    if match is None:
        return statement.split()[0].upper()
    verb = match.group(1).upper()
    verb = "SELECT FROM" if verb.startswith("SELECT ") else verb
    if verb in ("RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"):
        return "END SAVEPOINT"  # kept or undone: the same work
    if verb in ("SAVEPOINT", "BEGIN", "COMMIT", "ROLLBACK"):
        return verb
    return f"{verb} {match.group(2)}"


class CountingHasher:
    """The app's argon2 hasher, counting its calls."""

    def __init__(self, real) -> None:
        self.real, self.calls = real, []

    def hash(self, password):
        self.calls.append("hash")
        return self.real.hash(password)

    def verify(self, stored, password):
        self.calls.append("verify")
        return self.real.verify(stored, password)

    def check_needs_rehash(self, stored):
        return self.real.check_needs_rehash(stored)


def work(app: Flask, path: str, data: dict) -> tuple[list[str], list[str], int, str]:
    """The statements and hash calls one POST costs, its status and body (CSRF token excluded)."""
    client = app.test_client()
    form = {**data, "csrf_token": csrf_token(client, path)}
    hasher = CountingHasher(app.extensions["intake_hasher"])
    app.extensions["intake_hasher"] = hasher
    try:
        with sql_statements(app) as statements:
            response = client.post(path, data=form)
    finally:
        app.extensions["intake_hasher"] = hasher.real
    body = re.sub(r'name="csrf_token"[^>]*>', "", response.get_data(as_text=True))
    return [shape(s) for s in statements], hasher.calls, response.status_code, body


def test_register_does_the_same_work_whatever_the_address(backend_app, make_user_on):
    """The pen test measured /register 8 ms faster for an existing address. The statements and the
    hashing are now the same, in the same order, for a new address, a taken one and a closed account's."""
    taken = make_user_on(backend_app, Role.REQUESTER)
    closed = make_user_on(backend_app, Role.REQUESTER)
    with backend_app.app_context():
        db.session.get(User, closed.id).active = False
        db.session.commit()
    runs = {name: work(backend_app, "/register", {"email": email, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
            for name, email in (("new", "brand.new@example.org"), ("taken", taken.email), ("closed", closed.email))}
    shapes = {name: run[0] for name, run in runs.items()}
    assert shapes["new"] == shapes["taken"] == shapes["closed"], shapes
    assert any(s.startswith("INSERT INTO outbox_messages") for s in shapes["new"])  # mail queued in every case
    assert {name: run[1] for name, run in runs.items()} == {"new": ["hash"], "taken": ["hash"], "closed": ["hash"]}
    assert {run[2] for run in runs.values()} == {200} and len({run[3] for run in runs.values()}) == 1


def test_reset_does_the_same_work_whatever_the_address(backend_app, make_user_on):
    """The pen test measured /reset 3 ms slower for an existing address. Now no account is even
    looked up while the visitor waits: the sender resolves the request afterwards."""
    known = make_user_on(backend_app, Role.REQUESTER)
    closed = make_user_on(backend_app, Role.OPERATOR)
    with backend_app.app_context():
        db.session.get(User, closed.id).active = False
        db.session.commit()
    runs = {name: work(backend_app, "/reset", {"email": email})
            for name, email in (("known", known.email), ("unknown", "nobody.at.all@example.org"),
                                ("closed", closed.email))}
    shapes = {name: run[0] for name, run in runs.items()}
    assert shapes["known"] == shapes["unknown"] == shapes["closed"], shapes
    assert not any("users" in s for s in shapes["known"]) and not any("outbox" in s for s in shapes["known"])
    assert all(run[1] == [] for run in runs.values())
    assert {run[2] for run in runs.values()} == {200} and len({run[3] for run in runs.values()}) == 1
    with backend_app.app_context():
        assert send_reset_links() == 1  # afterwards, and only for the known address


# --- 7. production with unsafe settings -------------------------------------------------------------

@pytest.fixture()
def production_env(monkeypatch, tmp_path):
    for name in ("FLASK_DEBUG", "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_NAME", "HSTS_ENABLED",
                 "INTAKE_ALLOW_INSECURE", "MFA_DISABLED", "AUDIT_ANCHOR_PATH", "PRIVACY_OFFICER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in GOOD_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INTAKE_INSTANCE_PATH", str(tmp_path / "instance"))
    return monkeypatch


UNSAFE = [
    ("DEBUG", {"FLASK_DEBUG": "1"}, "DEBUG is on"),
    ("SESSION_COOKIE_SECURE", {"SESSION_COOKIE_SECURE": "0"}, "SESSION_COOKIE_SECURE is off"),
    ("HSTS_ENABLED", {"HSTS_ENABLED": "false"}, "HSTS_ENABLED is off"),
    ("DATABASE_URL", {"DATABASE_URL": "sqlite:////tmp/intake-unsafe.sqlite3"}, "The database is SQLite"),
    ("SESSION_COOKIE_NAME", {"SESSION_COOKIE_NAME": "intake_session"}, "SESSION_COOKIE_NAME lacks the __Host- prefix"),
]


@pytest.mark.parametrize("setting, env, words", UNSAFE)
def test_production_refuses_each_unsafe_setting_unless_an_override_names_it(production_env, caplog, setting, env,
                                                                           words):
    assert create_app("production")  # the good setup starts
    for name, value in env.items():
        production_env.setenv(name, value)
    with pytest.raises(RefusedToStart) as refused:
        create_app("production")
    lines = str(refused.value).splitlines()
    assert lines[0] == "Refusing to start in production:" and len(lines) == 2 and words in lines[1]
    assert f"INTAKE_ALLOW_INSECURE={setting}" in lines[1]
    production_env.setenv("INTAKE_ALLOW_INSECURE", "HSTS_ENABLED" if setting != "HSTS_ENABLED" else "DEBUG")
    with pytest.raises(RefusedToStart):  # naming another setting does not help
        create_app("production")
    production_env.setenv("INTAKE_ALLOW_INSECURE", setting)
    with caplog.at_level(logging.WARNING):
        assert create_app("production")
    assert any(r.levelname == "WARNING" and "allowed by INTAKE_ALLOW_INSECURE" in r.getMessage()
               and words in r.getMessage() for r in caplog.records)


def test_the_override_cannot_name_a_secret(production_env):
    production_env.setenv("SECRET_KEY", "changeme")
    production_env.setenv("INTAKE_ALLOW_INSECURE", "SECRET_KEY")
    with pytest.raises(RefusedToStart) as refused:
        create_app("production")
    assert "INTAKE_ALLOW_INSECURE names SECRET_KEY, which it cannot allow" in str(refused.value)
    assert "SECRET_KEY is missing, a known default" in str(refused.value)


def test_production_without_the_audit_key_refuses(production_env):
    production_env.delenv("AUDIT_KEYS")
    with pytest.raises(RefusedToStart, match="AUDIT_KEYS is missing"):
        create_app("production")
    production_env.setenv("AUDIT_KEYS", config.TestConfig.AUDIT_KEYS)
    with pytest.raises(RefusedToStart, match="AUDIT_KEYS contains the test keys"):
        create_app("production")


def test_make_serve_refuses_debug_with_one_line_per_problem(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "INTAKE_", "FLASK_"))}
    env.update(GOOD_PRODUCTION, INTAKE_CONFIG="production", INTAKE_INSTANCE_PATH=str(tmp_path / "instance"),
               FLASK_DEBUG="1", HSTS_ENABLED="0", GUNICORN_BIND="127.0.0.1:0", GUNICORN_WORKERS="1")
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Error: Refusing to start in production:" in done.stderr
    assert "- DEBUG is on" in done.stderr and "- HSTS_ENABLED is off" in done.stderr
    assert "Booting worker" not in done.stderr


# --- 8. CR/LF in a path --------------------------------------------------------------------------

def test_a_crlf_in_an_app_log_argument_stays_on_its_line(app):
    with captured_logs(app) as logs:
        app.logger.warning("lookup of %s failed", "/calls/1\r\nINFO intake: admin exported everything")
    assert logs.lines == ["WARNING intake: lookup of /calls/1\\r\\nINFO intake: admin exported everything failed"]


def test_a_crlf_in_the_path_stays_on_its_access_log_line(tmp_path, monkeypatch):
    import runpy

    from gunicorn.config import Config as GunicornConfig

    monkeypatch.delenv("GUNICORN_ACCESS_LOG", raising=False)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = GunicornConfig()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", conf["access_log_format"])
    logger = conf["RedactingLogger"](cfg)
    path = "/x\r\n203.0.113.1 [01/Jan/2026:00:00:00 +0000] \"GET /admin/ HTTP/1.1\" 200 0 1ms"
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": path, "PATH_INFO": path, "QUERY_STRING": "",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "198.51.100.4"}
    logger.access(SimpleNamespace(status="404 NOT FOUND", sent=10, headers=[]), SimpleNamespace(headers=[]),
                  environ, timedelta(milliseconds=2))
    for handler in logger.access_log.handlers:
        handler.flush()
    lines = (tmp_path / "access.log").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("198.51.100.4 ") and "\\r\\n203.0.113.1" in lines[0]


# --- 9 (and 2, 8 on the real servers): `make run` and `make serve` -------------------------------------

def _get(port: int, path: str, method: str = "GET") -> int:
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body="" if method == "POST" else None,
                     headers={"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {})
        status = conn.getresponse().status
        return status
    finally:
        conn.close()


ATTACK_PATHS = [
    ("GET", "/reset/IjEyMyI.ZmFrZQ.SECRETRESETTOKEN"),
    ("GET", "/register/verify/IjEyMyI.ZmFrZQ.SECRETVERIFYTOKEN"),
    ("POST", "/invite/IjEyMyI.ZmFrZQ.SECRETINVITETOKEN"),
    ("GET", "/admin/users/?email=" + PLANTED.replace("@", "%40").replace("+", "%2B")),
    ("GET", "/login?next=/reset/IjEyMyI.ZmFrZQ.SECRETNEXTTOKEN&email=" + PLANTED.replace("@", "%40")),
    ("GET", "/x%0D%0AFORGED-LINE%20admin%20signed%20in"),
]
SECRETS = ("SECRETRESETTOKEN", "SECRETVERIFYTOKEN", "SECRETINVITETOKEN", "SECRETNEXTTOKEN", "planted.canary")


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret
    assert not [line for line in text.splitlines() if line.startswith("FORGED-LINE")]


def test_make_run_prints_no_token_nor_looked_up_address(tmp_path):
    """``make run`` (``flask run``, werkzeug's development server, development settings): its request
    lines and the app's lines, as the console shows them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "FLASK_", "DATABASE_URL"))}
    env.update(INTAKE_INSTANCE_PATH=str(tmp_path / "instance"), PYTHONUNBUFFERED="1")
    flask = [sys.executable, "-m", "flask", "--app", "intake"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    port = _free_port()
    log_path = tmp_path / "console.log"
    with log_path.open("wb") as console:
        server = subprocess.Popen([*flask, "run", "--port", str(port)], cwd=ROOT, env=env, stdout=console,
                                  stderr=subprocess.STDOUT)
    try:
        _wait(port)
        for method, path in ATTACK_PATHS:
            _get(port, path, method)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log_path.read_text()
    assert "/reset/[token]" in text and "CSRF check failed on POST invitations.accept" in text, text
    assert_clean(text)


def test_make_serve_logs_no_token_nor_address_nor_forged_line(tmp_path):
    """``make serve`` (gunicorn.conf.py, production settings, the access log on): the access log and
    the error log (the app's lines) after the same requests."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from crash_harness import Server

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "INTAKE_", "FLASK_"))}
    env.update(GOOD_PRODUCTION, INTAKE_CONFIG="production", INTAKE_INSTANCE_PATH=str(tmp_path / "instance"),
               DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}", INTAKE_ALLOW_INSECURE="DATABASE_URL",
               REDIS_URL="", GUNICORN_ACCESS_LOG=str(tmp_path / "access.log"))
    env.pop("REDIS_URL")
    subprocess.run([sys.executable, "-m", "flask", "--app", "intake", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)
    server = Server(env, _free_port(), 1, tmp_path / "gunicorn.log")
    server.start()
    try:
        server.wait_healthy()
        for method, path in ATTACK_PATHS:
            _get(server.port, path, method)
    finally:
        server.stop()
    access, errors = (tmp_path / "access.log").read_text(), (tmp_path / "gunicorn.log").read_text()
    assert "/reset/[token]" in access and "/invite/[token]" in access, access
    assert "CSRF check failed on POST invitations.accept" in errors, errors
    assert "Unsafe setting allowed by INTAKE_ALLOW_INSECURE" in errors  # the override is logged at start
    assert_clean(access + "\n" + errors)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _get(port, "/healthz") == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the development server did not answer")


def test_the_development_server_in_process_redacts_its_request_lines(app):
    """The same as ``make run``, in this process: werkzeug's request handler and its logger."""
    with captured_logs(app) as logs:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            for method, path in ATTACK_PATHS:
                _get(server.server_port, path, method)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
    assert any("/reset/[token]" in line for line in logs.lines), logs.text
    assert_clean(logs.text)
