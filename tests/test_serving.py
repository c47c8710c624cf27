"""Serving in production: which forwarded headers are believed (TRUSTED_PROXY_COUNT, ProxyFix),
sign-in behind a TLS proxy, and gunicorn.conf.py (worker count, access-log redaction, one clear
refusal without production secrets)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config as GunicornConfig
from sqlalchemy import select

import config
from intake import RefusedToStart
from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.users.models import Role
from tests.conftest import PASSWORD, ROOT, csrf_token, make_app

VISITOR, OTHER_VISITOR, PROXY = "203.0.113.7", "198.51.100.23", "10.0.0.5"


def proxied_app(app, tmp_path: Path, count: int, **overrides):
    """Another app on the test's database, with rate limits on (in memory, so fresh counters)."""
    return make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / f"proxied{count}", TRUSTED_PROXY_COUNT=count,
                    RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="2 per minute", **overrides)


def failed_login(client, forwarded_for: str | None = None, **environ) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    data = {"email": "nobody@example.org", "password": "not the password", "csrf_token": csrf_token(client)}
    return client.post("/login", data=data, headers=headers, environ_base={"REMOTE_ADDR": PROXY, **environ}).status_code


def last_audited_address(app) -> str | None:
    with app.app_context():
        address = db.session.execute(select(AuditEvent.ip_address).order_by(AuditEvent.seq.desc())).scalars().first()
        db.session.rollback()
        return address


# --- forwarded headers ---------------------------------------------------------------------------

def test_without_a_trusted_proxy_a_forwarded_for_header_changes_nothing(app, tmp_path):
    served = proxied_app(app, tmp_path, 0)
    client = served.test_client()
    assert failed_login(client, VISITOR) == 200
    assert last_audited_address(served) == PROXY  # the peer, not what the header claims
    # The header cannot buy a fresh rate-limit counter either: both "visitors" are the peer.
    assert failed_login(client, OTHER_VISITOR) == 200
    assert failed_login(client, "192.0.2.99") == 429


def test_behind_one_trusted_proxy_the_visitors_address_counts(app, tmp_path):
    served = proxied_app(app, tmp_path, 1)
    client = served.test_client()
    assert failed_login(client, VISITOR) == 200
    assert last_audited_address(served) == VISITOR
    assert failed_login(client, VISITOR) == 200
    assert failed_login(client, VISITOR) == 429  # this visitor's limit...
    assert failed_login(client, OTHER_VISITOR) == 200  # ...is not the next one's
    # Only the hop the proxy added is believed: a value the visitor sent in front of it is not.
    assert failed_login(client, f"{VISITOR}, {OTHER_VISITOR}") == 200
    assert last_audited_address(served) == OTHER_VISITOR


def test_behind_the_tls_proxy_a_sign_in_post_without_a_referer_succeeds(app, tmp_path, make_user):
    """Pages send ``Referrer-Policy: no-referrer``, so browsers post forms without a Referer;
    over HTTPS Flask-WTF's strict referrer check would refuse every one of them."""
    user = make_user(Role.REQUESTER)
    served = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "tls", TRUSTED_PROXY_COUNT=1)
    client = served.test_client()
    headers = {"X-Forwarded-For": VISITOR, "X-Forwarded-Proto": "https"}
    page = client.get("/login", headers=headers)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    token = csrf_token(client)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token},
                           headers=headers)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert client.get("/account", headers=headers).status_code == 200


def test_the_forwarded_scheme_is_believed_only_from_a_trusted_proxy(app, tmp_path):
    seen = {}
    for count in (0, 1):
        served = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / f"scheme{count}", TRUSTED_PROXY_COUNT=count)

        @served.before_request
        def remember(count=count) -> None:
            from flask import request

            seen[count] = (request.scheme, request.remote_addr, request.host)

        served.test_client().get("/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": VISITOR,
                                                      "X-Forwarded-Host": "evil.example"})
    assert seen[0] == ("http", "127.0.0.1", "localhost")
    assert seen[1] == ("https", VISITOR, "localhost")  # X-Forwarded-Host is never believed


@pytest.mark.parametrize("count", [-1, 6, True, "1"])
def test_a_bad_proxy_count_refuses_to_start(tmp_path, count):
    with pytest.raises(RefusedToStart, match="TRUSTED_PROXY_COUNT"):
        make_app(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path / "instance", TRUSTED_PROXY_COUNT=count)


def test_the_proxy_count_comes_from_the_environment():
    values = {"TRUSTED_PROXY_COUNT": 0}
    config.load_environment(values, {"TRUSTED_PROXY_COUNT": "2", "RATELIMIT_KEY_PREFIX": "intake-staging"})
    assert values == {"TRUSTED_PROXY_COUNT": 2, "RATELIMIT_KEY_PREFIX": "intake-staging"}


def test_security_check_names_a_missing_proxy_setting():
    def problems(count: int) -> list[str]:
        return [p for p in config.unsafe_settings({"TRUSTED_PROXY_COUNT": count}) if "TRUSTED_PROXY_COUNT" in p]

    assert problems(0) and "number of proxies" in problems(0)[0]
    assert problems(1) == []


# --- gunicorn.conf.py ---------------------------------------------------------------------------

def load_gunicorn_conf(monkeypatch, **env: str) -> dict:
    for name in ("GUNICORN_BIND", "GUNICORN_WORKERS", "GUNICORN_TIMEOUT", "GUNICORN_ACCESS_LOG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_defaults_are_local_and_sized_by_the_cpus(monkeypatch):
    conf = load_gunicorn_conf(monkeypatch)
    cpus = len(os.sched_getaffinity(0))
    assert conf["workers"] == min(2 * cpus + 1, 12)
    assert conf["bind"] == ["127.0.0.1:8000"]
    assert conf["wsgi_app"] == "intake:create_app()"
    assert conf["forwarded_allow_ips"] == "" and conf["accesslog"] is None
    assert "%(q)s" not in conf["access_log_format"] and "%(r)s" not in conf["access_log_format"]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert load_gunicorn_conf(monkeypatch)["workers"] == 12  # capped


def test_gunicorn_settings_from_the_environment(monkeypatch):
    conf = load_gunicorn_conf(monkeypatch, GUNICORN_BIND="10.0.0.2:8000, unix:/run/intake/app.sock",
                              GUNICORN_WORKERS="3", GUNICORN_TIMEOUT="60", GUNICORN_ACCESS_LOG="-")
    assert conf["bind"] == ["10.0.0.2:8000", "unix:/run/intake/app.sock"]
    assert (conf["workers"], conf["timeout"], conf["accesslog"]) == (3, 60, "-")
    for bad in ("0", "many", "-2"):
        with pytest.raises(RuntimeError, match="GUNICORN_WORKERS"):
            load_gunicorn_conf(monkeypatch, GUNICORN_WORKERS=bad)


@pytest.mark.parametrize("path, query, logged", [
    ("/reset/IjEyMyI.abc-def_ghi", "", "/reset/[token]"),
    ("/register/verify/IjEyMyI.abc", "", "/register/verify/[token]"),
    ("/invite/IjEyMyI.abc", "next=/x", "/invite/[token]"),
    ("/admin/users/", "email=someone%40example.org", "/admin/users/"),
    ("/calls/12", "", "/calls/12"),
])
def test_access_log_lines_never_hold_a_token_or_a_query_string(monkeypatch, path, query, logged):
    conf = load_gunicorn_conf(monkeypatch)
    cfg = GunicornConfig()
    cfg.set("access_log_format", conf["access_log_format"])
    logger = conf["RedactingLogger"](cfg)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"{path}?{query}" if query else path, "PATH_INFO": path,
               "QUERY_STRING": query, "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": VISITOR,
               "HTTP_REFERER": f"https://records.example.org{path}"}
    resp = SimpleNamespace(status="200 OK", sent=10, headers=[])
    req = SimpleNamespace(headers=[("COOKIE", "__Host-intake_session=abc"), ("USER-AGENT", "test")])
    atoms = logger.atoms(resp, req, environ, timedelta(milliseconds=3))
    line = conf["access_log_format"] % atoms
    assert logged in line and VISITOR in line
    assert "IjEyMyI" not in str(atoms) and "example.org" not in str(atoms) and "abc" not in str(atoms)
    assert atoms["r"] == f"GET {logged} HTTP/1.1" and atoms["q"] == ""
    assert not [name for name in atoms if name.startswith("{")]  # no header, cookie or environ value


def test_gunicorn_without_production_secrets_refuses_with_one_message(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SECRET_KEY", "DATA_KEYS", "BLIND_INDEX_KEY", "DATABASE_URL", "FLASK_DEBUG")}
    env.update(INTAKE_CONFIG="production", INTAKE_INSTANCE_PATH=str(tmp_path / "instance"),
               GUNICORN_BIND="127.0.0.1:0", GUNICORN_WORKERS="2")
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Error: Refusing to start in production:" in done.stderr
    assert "SECRET_KEY" in done.stderr and "DATA_KEYS" in done.stderr and "BLIND_INDEX_KEY" in done.stderr
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr
