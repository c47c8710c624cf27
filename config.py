"""Configuration classes.

Order of precedence: class defaults, then the environment (read by ``load_environment`` when the
app is created, never at import time), then an explicit test override passed to ``create_app``.
Secrets come only from the environment; in development they are generated once into
``instance/secrets.json`` (mode 0600) so a newcomer needs nothing to start.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# Values that must never be used outside development and tests.
INSECURE_SECRET_KEYS = frozenset({"", "dev", "change-me", "changeme", "secret", "test"})


class Config:
    """Defaults shared by every environment."""

    ENV_NAME = "base"
    DEBUG = False
    TESTING = False

    SECRET_KEY: str | None = None
    # Field-encryption keys: "kid:base64key,kid:base64key"; the first encrypts, all decrypt.
    DATA_KEYS: str | None = None
    # Key for the HMAC blind indexes (exact-match lookups on encrypted fields).
    BLIND_INDEX_KEY: str | None = None
    # Audit-trail keys, "kid:base64key,kid:base64key" (docs/security.md, "Audit trail"): the first
    # links new events, checkpoints and anchors; all verify. The database never holds them.
    AUDIT_KEYS: str | None = None
    # Where the signed head of the audit chain is written (on every purge and by `audit verify
    # --anchor`); default instance/audit-anchors.jsonl. Keep it where the database's users cannot write.
    AUDIT_ANCHOR_PATH: str | None = None
    # When set, every anchor is also e-mailed here (the privacy officer keeps them outside the database).
    PRIVACY_OFFICER_EMAIL: str | None = None
    # PostgreSQL: the only role (besides the tables' owner) that may write audit checkpoints and
    # delete purged audit events; the retention job connects as it (docs/deploy.md).
    AUDIT_PURGE_ROLE = "intake_purge"
    # Production refuses to start with an unsafe setting unless this names it ("HSTS_ENABLED,DATABASE_URL");
    # each one allowed is logged at start. Only the settings in OVERRIDABLE can be named.
    INTAKE_ALLOW_INSECURE = ""

    SQLALCHEMY_DATABASE_URI: str | None = None
    # hide_parameters: SQL errors and logs never carry the values of a statement.
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    # How long a SQLite writer waits for the write lock before giving up (a 503). SQLite's wait is not
    # a queue: a writer retries with growing sleeps, and on a busy machine an unlucky one waited more
    # than 5 s while sixteen others took turns (tests/test_concurrency.py). 15 s stays well inside
    # gunicorn's 30 s request timeout.
    SQLITE_BUSY_TIMEOUT_MS = 15000
    REDIS_URL: str | None = None

    FACILITY_NAME = "The Canyon at Peace Park"
    # Times typed into forms are read in this zone; everything is stored in UTC.
    FACILITY_TIMEZONE = "America/Los_Angeles"
    HELPLINE_NUMBER = "1-800-555-0100"  # 555-01xx is reserved for fiction; set the real one.
    RECORDS_EMAIL: str | None = None
    # The treatment building burned on this day (Woolsey Fire); no stay can end after it.
    FACILITY_CLOSED_ON = "2018-11-10"

    # Letters (intake/records/letters.py; docs/configuration.md, "Letters"). Each letter carries the
    # facility's return address and a named privacy contact; a letter about an inspection says where
    # and how it happens (the building is gone). Multi-line values: real line breaks or "\n".
    # Unset here so production names its own; `flask security-check` lists each one missing.
    FACILITY_RETURN_ADDRESS: str | None = None
    PRIVACY_CONTACT_NAME: str | None = None  # a person's name, or a role title ("Privacy Officer")
    PRIVACY_CONTACT_TITLE: str | None = None
    PRIVACY_CONTACT_PHONE: str | None = None
    PRIVACY_CONTACT_EMAIL: str | None = None  # unset: PRIVACY_OFFICER_EMAIL
    INSPECTION_ADDRESS: str | None = None
    INSPECTION_INSTRUCTIONS: str | None = None

    # Records-request clocks (intake/records/clocks.py): which policy table computes due dates,
    # the internal target for releases to a third party, holidays on top of the California
    # list (ISO dates, comma-separated; facility closures, for instance), and when "due soon" starts.
    RECORDS_CLOCK_POLICY = "california"
    RECORDS_THIRD_PARTY_TARGET_DAYS = 30
    RECORDS_EXTRA_HOLIDAYS = ""
    RECORDS_DUE_SOON_DAYS = 3
    # Documents: the largest file one upload may carry (checked on the upload routes only; the
    # app-wide MAX_CONTENT_LENGTH stays small), and how long and how many times the requester
    # may download a document released to them.
    RECORDS_UPLOAD_MAX_BYTES = 10 * 1024 * 1024
    RECORDS_DOWNLOAD_DAYS = 30
    RECORDS_DOWNLOAD_LIMIT = 5
    # A secure link to a third party's copy (intake/records/recipient.py) lasts RECORDS_DOWNLOAD_DAYS
    # and gives RECORDS_DOWNLOAD_LIMIT downloads, like the requester's; this many wrong access codes
    # lock it (the records office sends a new one).
    RECIPIENT_CODE_ATTEMPTS = 5
    # Fees for a copy of records, in cents (intake/records/fees.py). California Health & Safety
    # Code §123110 caps paper copies at $0.25 a page and copies from microfilm at $0.50 a page;
    # an electronic copy has a flat fee, all-inclusive (no postage on top). HIPAA allows no fee for
    # searching or retrieving (45 CFR 164.524(c)(4)), so California's "clerical costs" of locating
    # records stay 0 (the app refuses to start otherwise). Postage is entered per paper estimate.
    RECORDS_FEE_PAGE_CENTS = 25
    RECORDS_FEE_MICROFILM_PAGE_CENTS = 50
    RECORDS_FEE_ELECTRONIC_FLAT_CENTS = 650
    RECORDS_FEE_CLERICAL_CENTS = 0  # must stay 0: no search or retrieval fee (45 CFR 164.524(c)(4))
    # "flat": OCR's all-inclusive flat fee, at most $6.50; "actual" / "average": the facility computed
    # its actual or average cost of an electronic copy, which may then be the flat amount.
    RECORDS_FEE_ELECTRONIC_COST_BASIS = "flat"
    # Quality review (intake/review/): how many finalized data calls of each operator the weekly
    # sample puts on the supervisors' queue (besides every high-risk call); 0 turns the sample off.
    REVIEW_SAMPLE_SIZE = 2

    # Sessions: cookie-based, invalidated server-side through the user's session version.
    SESSION_COOKIE_NAME = "intake_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    SESSION_IDLE_TIMEOUT = timedelta(minutes=15)
    # Every signed-in page warns this long before the idle timeout, with a "Stay signed in" button
    # (WCAG 2.2.1 Timing Adjustable; intake/static/js/session.js).
    SESSION_IDLE_WARNING = timedelta(minutes=2)
    SESSION_ABSOLUTE_TIMEOUT_STAFF = timedelta(hours=8)
    SESSION_ABSOLUTE_TIMEOUT_REQUESTER = timedelta(hours=1)
    PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
    REMEMBER_COOKIE_DURATION = timedelta(seconds=0)

    WTF_CSRF_TIME_LIMIT = 3600
    # Flask-WTF's extra check on HTTPS wants a Referer naming this host, but every page sends
    # ``Referrer-Policy: no-referrer``, so browsers send none and every POST behind the TLS proxy
    # would fail. The token (in the SameSite=Strict, __Host- session cookie) is the CSRF defence.
    WTF_CSRF_SSL_STRICT = False
    MAX_CONTENT_LENGTH = 1 * 1024 * 1024  # raised per upload route in later steps
    MAX_FORM_MEMORY_SIZE = 64 * 1024
    PREFERRED_URL_SCHEME = "http"
    HSTS_ENABLED = False
    # How many reverse proxies stand in front of the app (nginx: 1). Their X-Forwarded-For and
    # X-Forwarded-Proto are believed for that many hops (werkzeug's ProxyFix), so rate limits and the
    # audit trail see the visitor's address. 0: no forwarded header is believed (anyone can send one).
    TRUSTED_PROXY_COUNT = 0

    # argon2id, SECURITY.md: t=2, m=19 MiB, p=1.
    ARGON2_TIME_COST = 2
    ARGON2_MEMORY_COST = 19 * 1024
    ARGON2_PARALLELISM = 1

    BOOTSTRAP_SERVE_LOCAL = True
    BABEL_DEFAULT_LOCALE = "en"
    LANGUAGES = ("en", "es")

    RATELIMIT_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = False
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_KEY_PREFIX = "intake"
    # Per client address, on the POSTs that guess secrets or send mail.
    RATELIMIT_LOGIN = "10 per minute;100 per hour"
    RATELIMIT_MFA = "10 per 5 minutes"
    RATELIMIT_REGISTER = "5 per hour"
    RATELIMIT_RESET = "5 per hour"
    # Records requests and messages from requesters: room for a person correcting a refused form
    # several times, not for a script filling the queue.
    RATELIMIT_RECORDS = "10 per minute;60 per hour"
    # Access codes typed on a recipient's link page (each link also locks after RECIPIENT_CODE_ATTEMPTS).
    RATELIMIT_RECIPIENT = "10 per minute;30 per hour"

    # Lockout: this many failures in a row lock the account; each lock lasts twice the one before.
    LOCKOUT_THRESHOLD = 10
    LOCKOUT_BASE_SECONDS = 15 * 60
    LOCKOUT_MAX_SECONDS = 24 * 3600

    # Staff sign in with a TOTP code. Only development may turn this off (a banner says so).
    MFA_DISABLED = False
    MFA_ISSUER = "Canyon at Peace Park intake"

    # The address links in e-mails point to (no trailing slash).
    PUBLIC_BASE_URL = "http://127.0.0.1:5000"

    # Outgoing mail. Without MAIL_SERVER, `flask outbox send` prints messages to the console.
    MAIL_SERVER: str | None = None
    MAIL_PORT = 587
    MAIL_USE_STARTTLS = True
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER = "records@intake.invalid"
    MAIL_MESSAGE_ID_DOMAIN = "intake.invalid"
    MAIL_TIMEOUT_SECONDS = 20
    OUTBOX_MAX_ATTEMPTS = 8
    OUTBOX_LEASE_SECONDS = 600
    # Who hears that a service or a timer job failed (``flask alert``, run by systemd's OnFailure=):
    # e-mail addresses, comma-separated, sent straight over SMTP (MAIL_*), not through the outbox.
    ALERT_EMAIL: str | None = None
    # /metrics answers only "Authorization: Bearer <METRICS_TOKEN>"; without a token it is a 404.
    METRICS_TOKEN: str | None = None
    # Logs: one JSON object a line (production) or plain text (development, tests); the level.
    LOG_FORMAT: str | None = None  # None: json in production, text elsewhere
    LOG_LEVEL = "INFO"
    # Optional error reports through sentry-sdk; bodies, cookies, headers and form data are removed.
    SENTRY_DSN: str | None = None
    SENTRY_ENVIRONMENT: str | None = None


class _DemoLetterSettings:
    """Demo letter settings for development and tests: a role title, not an invented person's name;
    555-01xx numbers and .invalid addresses, which reach no one."""

    FACILITY_RETURN_ADDRESS: str | None = "Records custodian\nP.O. Box 0000 (demo address)\nMalibu, CA 90265"
    PRIVACY_CONTACT_NAME: str | None = "Privacy Officer"
    PRIVACY_CONTACT_TITLE: str | None = "Privacy and records office"
    PRIVACY_CONTACT_PHONE: str | None = "1-800-555-0101"
    PRIVACY_CONTACT_EMAIL: str | None = "privacy@intake.invalid"
    INSPECTION_ADDRESS: str | None = ("Office of the records custodian (demo address)\n"
                                      "100 Example Road, Suite 5\nVentura, CA 93001")
    INSPECTION_INSTRUCTIONS: str | None = ("By appointment only: call 1-800-555-0101 on a working day to choose a "
                                           "time. Please bring a photo ID.")


class DevelopmentConfig(_DemoLetterSettings, Config):
    ENV_NAME = "development"


class TestConfig(_DemoLetterSettings, Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "test-only-" + "x" * 40
    # Two fixed test keys (not used anywhere else): the first encrypts.
    DATA_KEYS = (
        "t2:" + base64.urlsafe_b64encode(b"\x02" * 32).decode()
        + ",t1:" + base64.urlsafe_b64encode(b"\x01" * 32).decode()
    )
    BLIND_INDEX_KEY = base64.urlsafe_b64encode(b"\x03" * 32).decode()
    AUDIT_KEYS = "t4:" + base64.urlsafe_b64encode(b"\x04" * 32).decode()
    # Cheaper hashing keeps the suite fast; production parameters are tested explicitly.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    RATELIMIT_ENABLED = False


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_NAME = "__Host-intake_session"
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_SAMESITE = "Strict"
    PREFERRED_URL_SCHEME = "https"
    HSTS_ENABLED = True


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestConfig,
    "production": ProductionConfig,
}

# Environment variables read at app creation: name -> parser.
_ENV_STR = (
    "SECRET_KEY", "DATA_KEYS", "BLIND_INDEX_KEY", "AUDIT_KEYS", "AUDIT_ANCHOR_PATH", "PRIVACY_OFFICER_EMAIL",
    "AUDIT_PURGE_ROLE", "INTAKE_ALLOW_INSECURE", "REDIS_URL", "HELPLINE_NUMBER",
    "FACILITY_NAME", "FACILITY_TIMEZONE", "RECORDS_EMAIL", "SESSION_COOKIE_NAME", "PUBLIC_BASE_URL",
    "MAIL_SERVER", "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_DEFAULT_SENDER", "MAIL_MESSAGE_ID_DOMAIN",
    "FACILITY_CLOSED_ON", "RECORDS_CLOCK_POLICY", "RECORDS_EXTRA_HOLIDAYS", "RATELIMIT_KEY_PREFIX",
    "ALERT_EMAIL", "METRICS_TOKEN", "LOG_FORMAT", "LOG_LEVEL", "SENTRY_DSN", "SENTRY_ENVIRONMENT",
    "RECORDS_FEE_ELECTRONIC_COST_BASIS", "FACILITY_RETURN_ADDRESS", "PRIVACY_CONTACT_NAME", "PRIVACY_CONTACT_TITLE",
    "PRIVACY_CONTACT_PHONE", "PRIVACY_CONTACT_EMAIL", "INSPECTION_ADDRESS", "INSPECTION_INSTRUCTIONS",
)
_ENV_BOOL = ("SESSION_COOKIE_SECURE", "HSTS_ENABLED", "DEBUG", "RATELIMIT_ENABLED", "MAIL_USE_STARTTLS",
             "MFA_DISABLED")
_ENV_INT = ("MAIL_PORT", "MAIL_TIMEOUT_SECONDS", "OUTBOX_MAX_ATTEMPTS", "OUTBOX_LEASE_SECONDS",
            "RECORDS_THIRD_PARTY_TARGET_DAYS", "RECORDS_DUE_SOON_DAYS",
            "RECORDS_UPLOAD_MAX_BYTES", "RECORDS_DOWNLOAD_DAYS", "RECORDS_DOWNLOAD_LIMIT",
            "RECIPIENT_CODE_ATTEMPTS", "RECORDS_FEE_PAGE_CENTS", "RECORDS_FEE_MICROFILM_PAGE_CENTS",
            "RECORDS_FEE_ELECTRONIC_FLAT_CENTS",
            "RECORDS_FEE_CLERICAL_CENTS", "REVIEW_SAMPLE_SIZE", "TRUSTED_PROXY_COUNT", "SQLITE_BUSY_TIMEOUT_MS")


def _parse_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def normalize_database_url(url: str) -> str:
    """Make every PostgreSQL URL use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_environment(config: dict[str, Any], environ: dict[str, str] | None = None) -> None:
    """Copy the documented environment variables into ``config``."""
    env = os.environ if environ is None else environ
    for name in _ENV_STR:
        if env.get(name):
            config[name] = env[name]
    for name in _ENV_BOOL:
        if name in env:
            config[name] = _parse_bool(env[name])
    for name in _ENV_INT:
        if env.get(name):
            config[name] = int(env[name])
    if "FLASK_DEBUG" in env:  # what the flask CLI itself obeys; gunicorn must obey it too
        config["DEBUG"] = _parse_bool(env["FLASK_DEBUG"])
    if env.get("DATABASE_URL"):
        config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(env["DATABASE_URL"])
    if config.get("REDIS_URL") and config.get("RATELIMIT_STORAGE_URI") == "memory://":
        config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"]


def new_data_key() -> str:
    """A fresh 256-bit key in the DATA_KEYS format's base64 encoding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


DEVELOPMENT_SECRETS = ("SECRET_KEY", "DATA_KEYS", "BLIND_INDEX_KEY", "AUDIT_KEYS")


def _new_development_secret(name: str) -> str:
    if name == "SECRET_KEY":
        return secrets.token_urlsafe(48)
    if name == "DATA_KEYS":
        return "dev1:" + new_data_key()
    if name == "AUDIT_KEYS":
        return "devaudit1:" + new_data_key()
    return new_data_key()


def ensure_development_secrets(instance_path: str) -> dict[str, str]:
    """Create (once) and return the development secrets kept in ``instance/secrets.json``.

    The file is created with mode 0600 before anything is written to it, so the keys are
    never readable by other users, even briefly. A file from an older version that lacks a
    secret added since (``AUDIT_KEYS``) gets it added, the others kept as they are.
    """
    path = Path(instance_path) / "secrets.json"
    if path.exists():
        values = json.loads(path.read_text(encoding="utf-8"))
        missing = [name for name in DEVELOPMENT_SECRETS if not values.get(name)]
        if not missing:
            return values
        values.update({name: _new_development_secret(name) for name in missing})
        fresh = path.with_name(f".secrets-{secrets.token_hex(4)}.json")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(values, handle, indent=2)
        os.replace(fresh, path)
        return values
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {name: _new_development_secret(name) for name in DEVELOPMENT_SECRETS}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(values, handle, indent=2)
    return values


# Settings production refuses to start with when unsafe, unless INTAKE_ALLOW_INSECURE names them
# (a test harness on plain HTTP or SQLite, say). The secrets and MFA_DISABLED can never be overridden.
OVERRIDABLE = ("DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_NAME", "HSTS_ENABLED",
               "DATABASE_URL")
_FATAL = ("SECRET_KEY", "DATA_KEYS", "BLIND_INDEX_KEY", "AUDIT_KEYS", "MFA_DISABLED", "INTAKE_ALLOW_INSECURE",
          *OVERRIDABLE)


def _problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Every setting that would be unsafe in production: (the setting, a human-readable line)."""
    problems: list[tuple[str, str]] = []
    if config.get("DEBUG"):
        problems.append(("DEBUG", "DEBUG is on: the debugger would expose code and data."))
    secret = config.get("SECRET_KEY") or ""
    if secret in INSECURE_SECRET_KEYS or secret.startswith("test-only-") or len(secret) < 32:
        problems.append(("SECRET_KEY", "SECRET_KEY is missing, a known default or shorter than 32 characters."))
    problems.extend(_key_problems(config))
    if not config.get("SESSION_COOKIE_SECURE"):
        problems.append(("SESSION_COOKIE_SECURE",
                         "SESSION_COOKIE_SECURE is off: the session cookie would travel over plain HTTP."))
    if not config.get("SESSION_COOKIE_HTTPONLY"):
        problems.append(("SESSION_COOKIE_HTTPONLY",
                         "SESSION_COOKIE_HTTPONLY is off: scripts in the page could read the session cookie."))
    if not str(config.get("SESSION_COOKIE_NAME", "")).startswith("__Host-"):
        problems.append(("SESSION_COOKIE_NAME", "SESSION_COOKIE_NAME lacks the __Host- prefix."))
    if not config.get("HSTS_ENABLED"):
        problems.append(("HSTS_ENABLED", "HSTS_ENABLED is off: browsers would not be told to insist on HTTPS."))
    if str(config.get("SQLALCHEMY_DATABASE_URI") or "").startswith("sqlite"):
        problems.append(("DATABASE_URL", "The database is SQLite: production uses PostgreSQL (DATABASE_URL)."))
    if config.get("MFA_DISABLED"):
        problems.append(("MFA_DISABLED", "MFA_DISABLED is on: staff would sign in with a password alone."))
    if not str(config.get("PUBLIC_BASE_URL") or "").startswith("https://"):
        problems.append(("PUBLIC_BASE_URL",
                         "PUBLIC_BASE_URL is not https: links in e-mails would travel over plain HTTP."))
    if not config.get("MAIL_SERVER"):
        problems.append(("MAIL_SERVER", "MAIL_SERVER is not set: no e-mail (verification, reset, invitations) "
                                        "would be delivered."))
    elif config.get("MAIL_USERNAME") and not config.get("MAIL_USE_STARTTLS"):
        problems.append(("MAIL_USE_STARTTLS", "MAIL_USE_STARTTLS is off while MAIL_USERNAME is set: the mail "
                                              "password would travel in clear."))
    if str(config.get("RATELIMIT_STORAGE_URI") or "").startswith("memory://"):
        problems.append(("REDIS_URL", "REDIS_URL is not set: rate limits are counted per process, not shared by "
                                      "every instance."))
    if not config.get("TRUSTED_PROXY_COUNT"):
        problems.append(("TRUSTED_PROXY_COUNT",
                         "TRUSTED_PROXY_COUNT is 0: behind the TLS proxy every visitor would have the proxy's address "
                         "(one rate limit for everyone, no real address in the audit trail). Set it to the number "
                         "of proxies in front of the app (1 for nginx alone)."))
    return problems


def unsafe_settings(config: dict[str, Any]) -> list[str]:
    """Every setting that would be unsafe in production, as human-readable lines."""
    return [text for _setting, text in _problems(config)]


def _key_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    from intake.security.crypto import KeyConfigError, parse_keys  # local: config must not import the app eagerly

    for name, test_raw in (("DATA_KEYS", None), ("AUDIT_KEYS", b"\x04" * 32)):
        try:
            keys = parse_keys(config.get(name) or "")
            if any((kid.startswith("t") and kid[1:].isdigit()) or raw == test_raw for kid, raw in keys):
                problems.append((name, f"{name} contains the test keys."))
        except KeyConfigError as exc:
            problems.append((name, f"{name} is missing or invalid: {exc}"))
    try:
        raw = base64.urlsafe_b64decode((config.get("BLIND_INDEX_KEY") or "").encode())
        if len(raw) < 32:
            raise ValueError
        if raw == b"\x03" * 32:
            problems.append(("BLIND_INDEX_KEY", "BLIND_INDEX_KEY is the test key."))
    except ValueError:
        problems.append(("BLIND_INDEX_KEY", "BLIND_INDEX_KEY is missing or not 32 bytes of URL-safe base64."))
    return problems


def allowed_insecure(config: dict[str, Any]) -> set[str]:
    """The settings ``INTAKE_ALLOW_INSECURE`` names ("HSTS_ENABLED, DATABASE_URL")."""
    return {part.strip().upper() for part in str(config.get("INTAKE_ALLOW_INSECURE") or "").split(",") if part.strip()}


def secret_problems(config: dict[str, Any]) -> list[str]:
    """What stops production from starting at all: missing or test secrets, MFA off, and debug, insecure
    cookies, HSTS off, SQLite or a cookie name without ``__Host-`` unless ``INTAKE_ALLOW_INSECURE`` names
    that setting. One line per problem."""
    named = allowed_insecure(config)
    problems = [f"INTAKE_ALLOW_INSECURE names {name}, which it cannot allow (only {', '.join(OVERRIDABLE)})."
                for name in sorted(named - set(OVERRIDABLE))]
    allowed = named & set(OVERRIDABLE)
    for setting, text in _problems(config):
        if setting in _FATAL and setting not in allowed:
            hint = f" (INTAKE_ALLOW_INSECURE={setting} allows it, for a test only)" if setting in OVERRIDABLE else ""
            problems.append(text + hint)
    return problems


def insecure_but_allowed(config: dict[str, Any]) -> list[str]:
    """The unsafe settings production starts with because ``INTAKE_ALLOW_INSECURE`` names them (logged at start)."""
    allowed = allowed_insecure(config) & set(OVERRIDABLE)
    return [text for setting, text in _problems(config) if setting in allowed]


def startup_warnings(config: dict[str, Any]) -> list[str]:
    """The unsafe settings that do not stop production (``flask security-check`` lists them too)."""
    return [text for setting, text in _problems(config) if setting not in _FATAL]


def records_setting_problems(config: dict[str, Any]) -> list[str]:
    """Records-request settings that would make every due date wrong or every page fail."""
    from intake.records.clocks import (  # local: config must not import the app eagerly
        build_policies,
        parse_extra_holidays,
    )

    problems = []
    if config.get("RECORDS_CLOCK_POLICY") not in build_policies():
        problems.append(f"RECORDS_CLOCK_POLICY must be one of: {', '.join(sorted(build_policies()))}")
    try:
        parse_extra_holidays(config.get("RECORDS_EXTRA_HOLIDAYS") or "")
    except ValueError:
        problems.append("RECORDS_EXTRA_HOLIDAYS must be ISO dates (YYYY-MM-DD) separated by commas")
    try:
        date.fromisoformat(str(config.get("FACILITY_CLOSED_ON")))
    except ValueError:
        problems.append("FACILITY_CLOSED_ON must be an ISO date (YYYY-MM-DD)")
    # A paper copy to a third party has only the facility's own target; it never exceeds the federal
    # access clock (an electronic one the patient directs runs on that clock: 45 CFR 164.524(c)(3)(ii)).
    target = config.get("RECORDS_THIRD_PARTY_TARGET_DAYS")
    if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= 30:
        problems.append("RECORDS_THIRD_PARTY_TARGET_DAYS must be a whole number of days between 1 and 30 "
                        "(the facility's target for a paper copy to a third party; never longer than the 30 days "
                        "of 45 CFR 164.524(b)(2))")
    if not isinstance(config.get("RECORDS_DUE_SOON_DAYS"), int) or not 0 <= config["RECORDS_DUE_SOON_DAYS"] <= 365:
        problems.append("RECORDS_DUE_SOON_DAYS must be a whole number of days between 0 and 365")
    for name, low, high in (("RECORDS_UPLOAD_MAX_BYTES", 1024, 100 * 1024 * 1024), ("RECORDS_DOWNLOAD_DAYS", 1, 365),
                            ("RECORDS_DOWNLOAD_LIMIT", 1, 100), ("RECIPIENT_CODE_ATTEMPTS", 1, 20)):
        if not isinstance(config.get(name), int) or not low <= config[name] <= high:
            problems.append(f"{name} must be a whole number between {low} and {high}")
    # Fees in cents: the per-page rates may not exceed the California caps (§123110).
    for name, high in (("RECORDS_FEE_PAGE_CENTS", 25), ("RECORDS_FEE_MICROFILM_PAGE_CENTS", 50),
                       ("RECORDS_FEE_ELECTRONIC_FLAT_CENTS", 100_000), ("RECORDS_FEE_CLERICAL_CENTS", 100_000)):
        if not isinstance(config.get(name), int) or not 0 <= config[name] <= high:
            problems.append(f"{name} must be a whole number of cents between 0 and {high}")
    problems += fee_rule_problems(config)
    return problems


FEE_COST_BASES = ("flat", "actual", "average")
OCR_FLAT_FEE_CENTS = 650


def fee_rule_problems(config: dict[str, Any]) -> list[str]:
    """Fee settings the federal rules forbid, each with its rule named (refused at start-up).

    - 45 CFR 164.524(c)(4) allows a fee only for labour for copying, supplies and postage: never for
      searching for or retrieving records. RECORDS_FEE_CLERICAL_CENTS is the facility's "locating and
      preparing" charge (H&S 123110's clerical costs), so it must be 0.
    - HHS OCR's guidance on access fees: a flat fee for an electronic copy may be at most $6.50, all
      inclusive, unless the facility computed its actual or average cost; a higher flat fee needs
      RECORDS_FEE_ELECTRONIC_COST_BASIS to say which it computed.
    """
    problems = []
    clerical = config.get("RECORDS_FEE_CLERICAL_CENTS")
    if isinstance(clerical, int) and clerical > 0:
        problems.append("RECORDS_FEE_CLERICAL_CENTS must be 0: a fee for locating or retrieving records is not "
                        "allowed (45 CFR 164.524(c)(4) allows only labour for copying, supplies and postage)")
    basis = config.get("RECORDS_FEE_ELECTRONIC_COST_BASIS", "flat")
    if basis not in FEE_COST_BASES:
        problems.append("RECORDS_FEE_ELECTRONIC_COST_BASIS must be one of: " + ", ".join(FEE_COST_BASES))
    flat = config.get("RECORDS_FEE_ELECTRONIC_FLAT_CENTS")
    if isinstance(flat, int) and flat > OCR_FLAT_FEE_CENTS and basis == "flat":
        problems.append("RECORDS_FEE_ELECTRONIC_FLAT_CENTS above 650 ($6.50) needs RECORDS_FEE_ELECTRONIC_COST_BASIS="
                        "actual or average: HHS OCR's guidance allows a flat fee for an electronic copy of at most "
                        "$6.50, all-inclusive, unless the facility computed its actual or average cost "
                        "(45 CFR 164.524(c)(4))")
    return problems


def review_setting_problems(config: dict[str, Any]) -> list[str]:
    """Quality-review settings that would make the weekly sample fail or flood the queue."""
    size = config.get("REVIEW_SAMPLE_SIZE")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 50:
        return ["REVIEW_SAMPLE_SIZE must be a whole number of calls between 0 and 50"]
    return []


# --- Letters --------------------------------------------------------------------------------------
# (setting, longest value, lines it may have): what each letter setting may hold.
LETTER_TEXT_SETTINGS = (("FACILITY_RETURN_ADDRESS", 300, 6), ("PRIVACY_CONTACT_NAME", 120, 1),
                        ("PRIVACY_CONTACT_TITLE", 120, 1), ("PRIVACY_CONTACT_PHONE", 40, 1),
                        ("PRIVACY_CONTACT_EMAIL", 254, 1), ("INSPECTION_ADDRESS", 300, 6),
                        ("INSPECTION_INSTRUCTIONS", 600, 6))
_PHONE_CHARS = frozenset("0123456789+-()./ xXextEXT")
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def setting_lines(value: Any) -> list[str]:
    """A multi-line setting's lines: split at line breaks or at a written "\\n" (one line per
    environment variable is all systemd's and docker compose's files allow), blank lines dropped."""
    text = str(value or "").replace("\\n", "\n")
    return [line.strip() for line in text.splitlines() if line.strip()]


def letter_setting_problems(config: dict[str, Any]) -> list[str]:
    """Letter settings that would print wrongly on every letter (refused at start-up)."""
    problems = []
    for name, longest, max_lines in LETTER_TEXT_SETTINGS:
        value = config.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            problems.append(f"{name} must be text")
            continue
        text = value.replace("\\n", "\n")
        if any(ord(char) < 32 and char != "\n" or ord(char) == 127 for char in text):
            problems.append(f"{name} must not contain control characters")
        elif len(text) > longest or len(setting_lines(text)) > max_lines:
            problems.append(f"{name} must be at most {longest} characters"
                            + (f" on at most {max_lines} lines" if max_lines > 1 else " on one line"))
    phone = config.get("PRIVACY_CONTACT_PHONE")
    if isinstance(phone, str) and phone and (not set(phone) <= _PHONE_CHARS or sum(c.isdigit() for c in phone) < 7):
        problems.append("PRIVACY_CONTACT_PHONE must be a telephone number (digits, spaces, + - ( ) . /, \"ext\")")
    for name in ("PRIVACY_CONTACT_EMAIL", "PRIVACY_OFFICER_EMAIL"):
        email = config.get(name)
        if isinstance(email, str) and email and not _EMAIL_SHAPE.fullmatch(email):
            problems.append(f"{name} must be one e-mail address (name@domain)")
    return problems


def letter_setting_warnings(config: dict[str, Any]) -> list[str]:
    """Letter settings production should have (``flask security-check`` lists each missing one)."""
    warnings = []
    if not setting_lines(config.get("FACILITY_RETURN_ADDRESS")):
        warnings.append("FACILITY_RETURN_ADDRESS is not set: letters carry no return address.")
    missing = [name for name in ("PRIVACY_CONTACT_NAME", "PRIVACY_CONTACT_PHONE") if not config.get(name)]
    if not (config.get("PRIVACY_CONTACT_EMAIL") or config.get("PRIVACY_OFFICER_EMAIL")):
        missing.append("PRIVACY_CONTACT_EMAIL")
    if missing:
        warnings.append(f"{', '.join(missing)} not set: letters name no complete privacy contact.")
    if not setting_lines(config.get("INSPECTION_ADDRESS")) or not config.get("INSPECTION_INSTRUCTIONS"):
        warnings.append("INSPECTION_ADDRESS or INSPECTION_INSTRUCTIONS is not set: letters about an inspection say "
                        "only that it is arranged by appointment or by a secure electronic copy.")
    return warnings
