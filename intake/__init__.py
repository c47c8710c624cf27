"""intake: helpline call log and medical-records requests for a closed treatment facility."""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask, abort, request
from flask_babel import format_timedelta, get_locale
from werkzeug.middleware.proxy_fix import ProxyFix

import config as config_module
from intake import (
    catalogues,
    clock,
    errors,
    forms,
    frame,
    i18n,
    listing,
    models,  # noqa: F401 - registers every model with the metadata
    translating,
)
from intake.admin import dashboard_cache
from intake.admin.audit import bp as admin_audit_bp
from intake.admin.dashboard_views import bp as admin_dashboard_bp
from intake.admin.export_views import bp as admin_exports_bp
from intake.admin.hub import bp as admin_bp
from intake.admin.notice_views import bp as admin_notices_bp
from intake.admin.retention_views import bp as admin_retention_bp
from intake.admin.users import bp as admin_users_bp
from intake.archive.views import bp as archive_admin_bp
from intake.audit.keys import AuditKeys
from intake.auth.account import bp as account_bp
from intake.auth.registration import bp as registration_bp
from intake.auth.reset import bp as reset_bp
from intake.auth.views import bp as auth_bp
from intake.calls.views_disclosures import bp as disclosures_bp
from intake.calls.views_followups import bp as followups_bp
from intake.calls.views_intake import bp as calls_intake_bp
from intake.calls.views_list import bp as calls_bp
from intake.cli import register_cli
from intake.database import configure_engine, end_reading
from intake.extensions import babel, bootstrap, csrf, db, login_manager, migrate
from intake.navigation import main_menu
from intake.ops import logs, metrics
from intake.permissions import Permission, can, enforce_declared_policy
from intake.public.views import bp as public_bp
from intake.records import timeline as records_timeline
from intake.records.page import portal_bp, queue_bp
from intake.records.views_recipient import bp as recipient_copy_bp
from intake.resources.views import bp as resources_bp
from intake.review.views import bp as admin_review_bp
from intake.security import headers, ratelimits, sessions
from intake.security.crypto import KeyConfigError, KeyRing
from intake.security.passwords import make_hasher
from intake.users.invitation_views import bp as invitations_bp
from intake.users.labels import ROLE_SUMMARIES, licence_label, role_label, roles_label

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RefusedToStart(click.ClickException, RuntimeError):
    """A setting, a secret or a compiled translation catalogue the app needs is missing or wrong.

    A ``ClickException``, so ``flask …`` prints it as one "Error: …" message (exit 1) instead of a
    traceback; gunicorn.conf.py does the same for the server."""


def create_app(config: str | type | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    """Build the application: configuration, extensions, blueprints, CLI and error pages.

    ``config`` is a name ("development", "testing", "production") or a class; by default the
    ``INTAKE_CONFIG`` environment variable, else development. Nothing is read from the database
    here; the only files touched are ``instance/`` and, in development, its generated secrets.
    """
    name = config or os.environ.get("INTAKE_CONFIG", "development")
    config_class = config_module.CONFIGS[name] if isinstance(name, str) else name
    app = Flask(
        __name__,
        instance_path=os.environ.get("INTAKE_INSTANCE_PATH") or os.path.join(ROOT, "instance"),
        template_folder=os.path.join(ROOT, "templates"),
    )
    app.config.from_object(config_class)
    if not app.config["TESTING"]:
        config_module.load_environment(app.config)
    if overrides:
        app.config.update(overrides)
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    _complete_config(app)
    _trust_proxies(app)
    problems = catalogues.catalogue_problems(app.config, app.root_path)
    if problems:
        raise RefusedToStart("Refusing to start: " + "; ".join(problems))

    app.extensions["intake_keyring"] = KeyRing(app.config["DATA_KEYS"], app.config["BLIND_INDEX_KEY"])
    try:
        app.extensions["intake_audit_keys"] = AuditKeys.parse(app.config["AUDIT_KEYS"] or "")
    except KeyConfigError as exc:
        raise RefusedToStart(f"Refusing to start:\n- AUDIT_KEYS is missing or invalid: {exc}") from None
    hasher = make_hasher(app.config["ARGON2_TIME_COST"], app.config["ARGON2_MEMORY_COST"],
                         app.config["ARGON2_PARALLELISM"])
    app.extensions["intake_hasher"] = hasher
    app.extensions["intake_dummy_hash"] = hasher.hash(os.urandom(16).hex())

    metrics.init_app(app)  # first among the request hooks, so every request is timed
    _init_extensions(app)
    app.register_blueprint(public_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(registration_bp)
    app.register_blueprint(reset_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(invitations_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(admin_users_bp)
    app.register_blueprint(admin_audit_bp)
    app.register_blueprint(admin_dashboard_bp)
    app.register_blueprint(admin_exports_bp)
    app.register_blueprint(admin_notices_bp)
    app.register_blueprint(admin_retention_bp)
    app.register_blueprint(admin_review_bp)
    app.register_blueprint(archive_admin_bp)
    app.register_blueprint(calls_intake_bp)
    app.register_blueprint(calls_bp)
    app.register_blueprint(followups_bp)
    app.register_blueprint(disclosures_bp)
    app.register_blueprint(resources_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(queue_bp)
    app.register_blueprint(recipient_copy_bp)  # /copy/<token>: a third party's copy (public)
    clock.init_app(app)  # one clock for people: |local_time and friends (intake/clock.py)
    i18n.init_app(app)  # the language switch (/language) and the template helpers for languages
    forms.init_app(app)  # hidden_fields(form) and the other form helpers of the macros
    listing.init_app(app)  # rows of list pages: a link per row without url_for, codes as labels
    frame.init_app(app)  # base.html's header and footer, drawn once per state (intake/frame.py)
    records_timeline.init_app(app)  # timeline entries worded in the reader's language when drawn
    ratelimits.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    sessions.init_app(app)
    app.before_request(enforce_declared_policy)
    register_cli(app)
    app.jinja_env.globals.update(helpline_tel=_tel_href, get_locale=get_locale, format_timedelta=format_timedelta)
    app.jinja_env.globals.update(can=can, Permission=Permission)  # role-aware links in templates
    app.jinja_env.globals.update(main_menu=main_menu)  # the menu, grouped by work (intake/navigation.py)
    app.jinja_env.globals.update(role_label=role_label, roles_label=roles_label, licence_label=licence_label,
                                 role_summaries=list(ROLE_SUMMARIES.items()))
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    _configure_logging(app)
    return app


def _configure_logging(app: Flask) -> None:
    """Log lines to standard error (the journal under systemd), JSON or text with the request id, every
    handler behind the redacting filter (tokens, sensitive query values and control characters out:
    intake/security/log_redaction.py), Sentry when SENTRY_DSN is set (intake/ops/logs.py); and, in
    production, one warning per unsafe setting it runs with."""
    logs.init_app(app)
    if app.config["ENV_NAME"] == "production":
        for problem in config_module.insecure_but_allowed(app.config):
            app.logger.warning("Unsafe setting allowed by INTAKE_ALLOW_INSECURE: %s", problem)
        for problem in config_module.startup_warnings(app.config):
            app.logger.warning("Unsafe setting (flask security-check): %s", problem)


def _complete_config(app: Flask) -> None:
    """Database default, development secrets, and the production refusal."""
    cfg = app.config
    if not cfg.get("SQLALCHEMY_DATABASE_URI"):
        cfg["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(app.instance_path, "intake.sqlite3")
    if cfg["ENV_NAME"] == "development" and not all(cfg.get(k) for k in config_module.DEVELOPMENT_SECRETS):
        generated = config_module.ensure_development_secrets(app.instance_path)
        for key, value in generated.items():
            cfg[key] = cfg.get(key) or value
    if not cfg.get("AUDIT_ANCHOR_PATH"):
        cfg["AUDIT_ANCHOR_PATH"] = os.path.join(app.instance_path, "audit-anchors.jsonl")
    # Dates and times on pages are the facility's (Flask-Babel's |datetimeformat reads this).
    cfg.setdefault("BABEL_DEFAULT_TIMEZONE", cfg["FACILITY_TIMEZONE"])
    problems = (config_module.records_setting_problems(cfg) + config_module.review_setting_problems(cfg)
                + config_module.letter_setting_problems(cfg))
    if problems:
        raise RefusedToStart("Refusing to start:\n- " + "\n- ".join(problems))
    if cfg["ENV_NAME"] == "production":
        problems = config_module.secret_problems(cfg)
        if problems:
            raise RefusedToStart("Refusing to start in production:\n- " + "\n- ".join(problems))


def _trust_proxies(app: Flask) -> None:
    """Believe X-Forwarded-For and X-Forwarded-Proto for ``TRUSTED_PROXY_COUNT`` hops, and only then.

    Anyone can send those headers, so with the default 0 none is believed and ``remote_addr`` is
    the peer's address. Behind nginx (1) it is the visitor's: the rate limits' key and the audit
    trail's address. X-Forwarded-Host is never believed: the proxy passes the Host header itself.
    """
    count = app.config["TRUSTED_PROXY_COUNT"]
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 5:
        raise RefusedToStart("Refusing to start:\n- TRUSTED_PROXY_COUNT must be a whole number from 0 to 5")
    if count:
        # Flask's documented way to add WSGI middleware; mypy reads wsgi_app as a method (it is one, replaced).
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=0, x_port=0, x_prefix=0)


def _refuse_unnamed_fields() -> None:
    """A multipart part without a field name reaches the form as a ``None`` key, and Flask-WTF's
    CSRF check then fails with an error (a 500). No page of ours sends one: a 400. (Found by the fuzz.)"""
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and (None in request.form or None in request.files):
        abort(400)


def _end_reading(exc: BaseException | None) -> None:
    if exc is None and db.session.registry.has():
        end_reading(db.session())


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            configure_engine(engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
    dashboard_cache.register()
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"),
                     render_as_batch=True, compare_type=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the sign-in page explains itself
    login_manager.session_protection = None  # sessions are bound by version and timeouts instead
    app.teardown_request(_end_reading)  # before Flask-SQLAlchemy's teardown (of the app context) closes the session
    app.before_request(_refuse_unnamed_fields)  # before the CSRF check, which fails on them
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    translating.init_app(app)  # the catalogue found once per request; the templates' gettext (intake/translating.py)
    bootstrap.init_app(app)


def _tel_href(number: str) -> str:
    """``tel:`` link target for a displayed phone number."""
    return "tel:" + "".join(ch for ch in number if ch.isdigit() or ch == "+")
