"""Configuration rules, the production refusal, ``security-check`` and the users CLI."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

import config
from intake import RefusedToStart, create_app
from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.users.models import Role, User
from intake.users.services import find_by_email
from tests.conftest import FULL_ADMIN, PASSWORD, login, make_app

GOOD_PRODUCTION = {
    "SECRET_KEY": "p" * 48,
    "DATA_KEYS": "prod1:" + config.new_data_key(),
    "BLIND_INDEX_KEY": config.new_data_key(),
    "AUDIT_KEYS": "audit1:" + config.new_data_key(),
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "PUBLIC_BASE_URL": "https://records.example.org",
    "MAIL_SERVER": "smtp.example.org",
    "TRUSTED_PROXY_COUNT": "1",
    "FACILITY_RETURN_ADDRESS": "Records custodian\\nP.O. Box 100\\nMalibu, CA 90265",
    "PRIVACY_CONTACT_NAME": "Privacy Officer", "PRIVACY_CONTACT_PHONE": "1-800-555-0101",
    "PRIVACY_CONTACT_EMAIL": "privacy@example.org", "INSPECTION_ADDRESS": "Suite 5\\n100 Example Road",
    "INSPECTION_INSTRUCTIONS": "By appointment: call 1-800-555-0101.",
}


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    for name in ("SECRET_KEY", "DATA_KEYS", "BLIND_INDEX_KEY", "AUDIT_KEYS", "INTAKE_ALLOW_INSECURE", "DATABASE_URL",
                 "REDIS_URL", "DEBUG", "AUDIT_ANCHOR_PATH", "PRIVACY_OFFICER_EMAIL",
                 "SESSION_COOKIE_SECURE", "HSTS_ENABLED", "INTAKE_CONFIG", "FLASK_DEBUG", "MFA_DISABLED",
                 "PUBLIC_BASE_URL", "MAIL_SERVER", "MAIL_USERNAME", "MAIL_USE_STARTTLS", "TRUSTED_PROXY_COUNT",
                 *(name for name, _longest, _lines in config.LETTER_TEXT_SETTINGS)):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INTAKE_INSTANCE_PATH", str(tmp_path / "instance"))
    return monkeypatch


def test_production_refuses_to_start_without_real_secrets(clean_env):
    with pytest.raises(RefusedToStart) as refused:
        create_app("production")
    message = str(refused.value)
    assert "SECRET_KEY" in message and "DATA_KEYS" in message and "BLIND_INDEX_KEY" in message


def test_production_refuses_default_and_test_secrets(clean_env):
    clean_env.setenv("SECRET_KEY", "changeme")
    clean_env.setenv("DATA_KEYS", config.TestConfig.DATA_KEYS)
    clean_env.setenv("BLIND_INDEX_KEY", config.TestConfig.BLIND_INDEX_KEY)
    with pytest.raises(RefusedToStart) as refused:
        create_app("production")
    assert "test keys" in str(refused.value) and "SECRET_KEY" in str(refused.value)


@pytest.mark.parametrize("overrides, name", [
    ({"RECORDS_CLOCK_POLICY": "texas"}, "RECORDS_CLOCK_POLICY"),
    ({"RECORDS_EXTRA_HOLIDAYS": "2026-12-24, Christmas Eve"}, "RECORDS_EXTRA_HOLIDAYS"),
    ({"FACILITY_CLOSED_ON": "10 November 2018"}, "FACILITY_CLOSED_ON"),
    ({"RECORDS_DUE_SOON_DAYS": -1}, "RECORDS_DUE_SOON_DAYS"),
])
def test_bad_records_settings_refuse_to_start_in_any_environment(tmp_path, overrides, name):
    with pytest.raises(RefusedToStart, match=name):
        make_app(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path / "instance", **overrides)


def test_records_settings_from_the_environment(clean_env):
    clean_env.setenv("RECORDS_CLOCK_POLICY", "hipaa")
    clean_env.setenv("RECORDS_EXTRA_HOLIDAYS", "2026-12-24")
    clean_env.setenv("RECORDS_DUE_SOON_DAYS", "5")
    app = create_app("development")
    assert app.config["RECORDS_CLOCK_POLICY"] == "hipaa"
    assert app.config["RECORDS_EXTRA_HOLIDAYS"] == "2026-12-24" and app.config["RECORDS_DUE_SOON_DAYS"] == 5


def test_production_refuses_to_start_with_mfa_off(clean_env):
    for name, value in GOOD_PRODUCTION.items():
        clean_env.setenv(name, value)
    clean_env.setenv("MFA_DISABLED", "true")
    with pytest.raises(RefusedToStart, match="MFA_DISABLED"):
        create_app("production")


def test_security_check_passes_a_proper_production_setup(clean_env):
    for name, value in GOOD_PRODUCTION.items():
        clean_env.setenv(name, value)
    app = create_app("production")
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    result = app.test_cli_runner().invoke(args=["security-check"])
    assert result.exit_code == 0, result.output
    assert "No unsafe setting" in result.output


def test_security_check_lists_every_unsafe_setting(clean_env):
    for name, value in GOOD_PRODUCTION.items():
        clean_env.setenv(name, value)
    clean_env.setenv("FLASK_DEBUG", "1")
    clean_env.setenv("SESSION_COOKIE_SECURE", "false")
    clean_env.setenv("DATABASE_URL", "sqlite:////tmp/x.sqlite3")
    clean_env.delenv("REDIS_URL")
    clean_env.setenv("PUBLIC_BASE_URL", "http://records.example.org")
    clean_env.setenv("MAIL_USERNAME", "mailer")
    clean_env.setenv("MAIL_USE_STARTTLS", "false")
    clean_env.setenv("INTAKE_ALLOW_INSECURE", "DEBUG,SESSION_COOKIE_SECURE,DATABASE_URL")
    app = create_app("production")
    result = app.test_cli_runner().invoke(args=["security-check"])
    assert result.exit_code == 1
    for expected in ("DEBUG is on", "SESSION_COOKIE_SECURE is off", "SQLite", "REDIS_URL", "PUBLIC_BASE_URL",
                     "MAIL_USE_STARTTLS is off"):
        assert expected in result.output


def test_security_check_flags_development_settings(clean_env):
    app = create_app("development")
    result = app.test_cli_runner().invoke(args=["security-check"])
    assert result.exit_code == 1
    assert "SESSION_COOKIE_SECURE" in result.output and "HSTS" in result.output


def test_development_generates_its_secrets_once_with_mode_0600(clean_env, tmp_path):
    first = create_app("development")
    path = tmp_path / "instance" / "secrets.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = create_app("development")
    for name in ("SECRET_KEY", "DATA_KEYS", "BLIND_INDEX_KEY", "AUDIT_KEYS"):
        assert first.config[name] == second.config[name] and len(first.config[name]) >= 32
    assert first.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///") \
        and first.config["SQLALCHEMY_DATABASE_URI"].endswith("instance/intake.sqlite3")


def test_an_older_secrets_file_gets_the_audit_key_added_and_keeps_the_rest(clean_env, tmp_path):
    import json

    path = tmp_path / "instance" / "secrets.json"
    path.parent.mkdir()
    older = {"SECRET_KEY": "s" * 48, "DATA_KEYS": "dev1:" + config.new_data_key(),
             "BLIND_INDEX_KEY": config.new_data_key()}
    path.write_text(json.dumps(older))
    os.chmod(path, 0o600)
    app = create_app("development")
    kept = json.loads(path.read_text())
    assert {name: kept[name] for name in older} == older and kept["AUDIT_KEYS"].startswith("devaudit1:")
    assert app.config["AUDIT_KEYS"] == kept["AUDIT_KEYS"] and app.config["SECRET_KEY"] == "s" * 48
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("url,expected", [
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_database_url_normalisation(url, expected):
    assert config.normalize_database_url(url) == expected


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}", tmp_path / "instance")
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 15000
        db.engine.dispose()


def test_the_busy_timeout_is_read_from_the_environment(tmp_path):
    settings: dict = {}
    config.load_environment(settings, {"SQLITE_BUSY_TIMEOUT_MS": "20000"})
    assert settings["SQLITE_BUSY_TIMEOUT_MS"] == 20000
    app = make_app(f"sqlite:///{tmp_path / 'timeout.sqlite3'}", tmp_path / "instance", **settings)
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 20000
        db.engine.dispose()


def test_sqlite_write_transactions_begin_immediate(tmp_path):
    """Two connections: the second writer waits for the first instead of failing with
    "database is locked" after having read (the reason for BEGIN IMMEDIATE)."""
    app = make_app(f"sqlite:///{tmp_path / 'tx.sqlite3'}", tmp_path / "instance",
                   SQLITE_BUSY_TIMEOUT_MS=100)
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        first = db.engine.connect()
        first.begin()
        first.execute(text("SELECT count(*) FROM t"))  # a read already holds the write lock
        second = db.engine.connect()
        with pytest.raises(OperationalError, match="locked"):
            second.begin()  # BEGIN IMMEDIATE itself waits (here: 100 ms) rather than a later write failing
        first.rollback()
        first.close()
        second.close()
        db.engine.dispose()


# --- users CLI ------------------------------------------------------------------------------

def test_users_create_reads_the_password_from_stdin(app, runner, client):
    result = runner.invoke(args=["users", "create", "--email", "First.Admin@example.org", "--name", "First Admin",
                                 "--role", "admin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "Created account #1 (admin)" in result.output
    assert PASSWORD not in result.output
    assert login(client, "first.admin@example.org").status_code == 302
    with app.app_context():
        actions = db.session.execute(select(AuditEvent.action)).scalars().all()
    assert "user.created" in actions


@pytest.mark.parametrize("password,message", [
    ("short", "at least 8"),
    ("password123", "most common"),
    ("x" * 129, "at most 128"),
])
def test_users_create_refuses_weak_passwords(app, runner, password, message):
    result = runner.invoke(args=["users", "create", "--email", "a@example.org", "--name", "A Person",
                                 "--role", "operator"], input=password + "\n")
    assert result.exit_code == 1
    assert message in result.output
    with app.app_context():
        assert find_by_email("a@example.org") is None


def test_users_create_refuses_a_duplicate_regardless_of_case(app, runner, make_user):
    make_user(Role.OPERATOR, email="dup@example.org")
    result = runner.invoke(args=["users", "create", "--email", "DUP@example.org", "--name", "Dup", "--role", "admin"],
                           input=PASSWORD + "\n")
    assert result.exit_code == 1 and "already exists" in result.output


def test_users_create_refuses_an_unknown_role(runner):
    result = runner.invoke(args=["users", "create", "--email", "a@example.org", "--name", "A", "--role", "root"],
                           input=PASSWORD + "\n")
    assert result.exit_code == 2 and "'root' is not a role" in result.output


@pytest.mark.parametrize("roles", [["--role", "operator", "--role", "records_clerk"],
                                   ["--role", "records_clerk,operator"]])
def test_users_create_gives_several_roles(app, runner, roles):
    result = runner.invoke(args=["users", "create", "--email", "two@example.org", "--name", "Two Roles", *roles],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "(operator, records_clerk)" in result.output
    with app.app_context():
        user = find_by_email("two@example.org")
        assert user.ordered_roles == [Role.OPERATOR, Role.RECORDS_CLERK] and user.display_name == "Two Roles"


@pytest.mark.parametrize("args,message", [
    (["--role", "operator"], "Staff accounts need a name: add --name 'First Last'."),
    (["--role", "operator", "--name", "  "], "Staff accounts need a name"),
    (["--role", "admin", "--name", "Robert'); DROP TABLE users;--"], "--name: A name has letters"),
    (["--role", "requester,operator"], "former patients never become staff"),
])
def test_users_create_refuses_before_asking_for_a_password(app, runner, args, message):
    """Refusals that need no password come before the password prompt."""
    result = runner.invoke(args=["users", "create", "--email", "x@example.org", *args], input=PASSWORD + "\n")
    assert result.exit_code == 1 and message in result.output
    with app.app_context():
        assert find_by_email("x@example.org") is None


def test_a_requester_account_needs_no_name(app, runner):
    result = runner.invoke(args=["users", "create", "--email", "former@example.org", "--role", "requester"],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = find_by_email("former@example.org")
        assert user.roles == {Role.REQUESTER} and user.display_name is None


def test_users_disable_ends_sessions(app, runner, client, make_user):
    user = make_user(Role.OPERATOR, email="leaving@example.org")
    login(client, user.email)
    assert client.get("/account").status_code == 200
    result = runner.invoke(args=["users", "disable", "--email", "Leaving@Example.org"])
    assert result.exit_code == 0, result.output
    assert client.get("/account").status_code == 302
    with app.app_context():
        assert db.session.get(User, user.id).active is False
        assert "user.disabled" in db.session.execute(select(AuditEvent.action)).scalars().all()
    again = runner.invoke(args=["users", "disable", "--email", "leaving@example.org"])
    assert again.exit_code == 1 and "already disabled" in again.output
    missing = runner.invoke(args=["users", "disable", "--email", "nobody@example.org"])
    assert missing.exit_code == 1 and "no account" in missing.output


def test_users_status_prints_the_first_admin_command(runner, make_user):
    result = runner.invoke(args=["users", "status"])
    assert "users create --email you@example.org --name 'Your Name' --role admin" in result.output
    # The command names this environment's flask (make run VENV=.venv-3.12 has no .venv/bin/flask).
    here = os.path.relpath(Path(sys.executable).parent / "flask")
    assert f"    {here} --app intake users create" in result.output
    make_user(FULL_ADMIN)
    assert "1 active admin" in runner.invoke(args=["users", "status"]).output


def test_keys_generate_prints_a_usable_key(runner):
    from intake.security.crypto import parse_keys

    result = runner.invoke(args=["keys", "generate"])
    assert parse_keys("k1:" + result.output.strip())[0][0] == "k1"
