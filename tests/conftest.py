"""Shared fixtures: a migrated database per test (SQLite by default, PostgreSQL when
TEST_DATABASE_URL is set), the app, its clients, user factories and a sign-in helper.

In CI (CI=true) a service a test needs (PostgreSQL, Redis, Chromium) must be there: the test
fails instead of skipping.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from jinja2 import BytecodeCache
from sqlalchemy import create_engine, event, text
from werkzeug.routing import Rule

from intake import create_app
from intake.catalogues import compile_catalogues
from intake.db_types import utcnow
from intake.extensions import db as _db
from intake.users.models import STAFF_ROLES, Role, User
from intake.users.services import create_user, find_by_email, parse_roles

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("TEST_DATABASE_URL")
# Tests about PostgreSQL itself (migrations, outages, pg_dump) use this in both CI passes.
PG_BASE_URL = PG_URL or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "a long test passphrase 42"
# Under pytest-xdist (make test-fast) every worker is a process of its own: its own SQLite template
# (tmp_path_factory gives each worker its own folder), its own PostgreSQL schema and its own Redis
# keys, named after the worker ("gw0", "gw1"; "main" without xdist) and the process.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def redis_prefix(name: str) -> str:
    """A Redis key prefix no other worker, run or test uses (rate-limit keys of one test)."""
    return f"intake-{name}-{WORKER}-{os.getpid()}-{uuid.uuid4().hex}"


def pytest_configure(config: pytest.Config) -> None:
    """Compile the translation catalogues a .po is newer than (as make does), so a plain ``pytest``
    works too: the app refuses to start without them. Once, in the controlling process: the
    pytest-xdist workers start after it."""
    if not hasattr(config, "workerinput"):
        compile_catalogues(ROOT / "intake" / "translations")
# An administrator as migration 0011 leaves today's admins: every staff role (until then an admin
# had every staff right). Tests about one feature sign in as this; the route x role matrix
# (test_authorization.py) and the users pages' tests use the single roles.
FULL_ADMIN = STAFF_ROLES
# Professional licences for staff who make or review clinical denials (45 CFR 164.524(a)(3), (d)(4)).
LICENCE = ("LCSW", "LCS 12345", "CA")
OTHER_LICENCE = ("MD", "A98765", "CA")


def need_service(name: str, reason: str) -> None:
    """Skip locally, fail in CI, when a service a test needs is missing."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} not available: {reason}")


# The suite builds about two thousand apps, one per test, all alike. Two things each new app would
# do again are the bulk of a test's setup, so the test process does them once:
# - Werkzeug compiles a URL builder (Python source through ast and compile) for every rule of every
#   new app: about 80 ms of the 90 ms create_app takes. Rules with the same parts and defaults get
#   the same unbound builder; it is bound to each rule as Werkzeug binds its own.
# - Jinja compiles each template again in every new app's environment: a shared bytecode cache
#   (keyed by template name and source checksum, as Jinja's own caches are) loads it instead.
# Production builds one app per process, so neither applies there.
class _SharedBytecodeCache(BytecodeCache):
    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.store[bucket.key] = bucket.bytecode_to_string()


JINJA_BYTECODE = _SharedBytecodeCache()
_werkzeug_compile_builder = Rule._compile_builder
_builders: dict[tuple, object] = {}


def _shared_compile_builder(self: Rule, append_unknown: bool = True):
    # What the builder's code depends on: the rule's parsed parts and the defaults it folds into
    # constants (a dynamic part with a default), exactly as Werkzeug reads them.
    defaults = self.defaults or {}
    folded = tuple((data, self._converters[data].to_url(defaults[data]))
                   for dynamic, data in self._trace if dynamic and data in defaults)
    key = (append_unknown, tuple(self._trace), folded)
    builder = _builders.get(key)
    if builder is None:
        builder = _builders[key] = _werkzeug_compile_builder(self, append_unknown)
    return builder


Rule._compile_builder = _shared_compile_builder  # type: ignore[method-assign]


def make_app(database_url: str, instance: Path, **overrides) -> Flask:
    os.environ["INTAKE_INSTANCE_PATH"] = str(instance)
    application = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": database_url, **overrides})
    application.jinja_env.bytecode_cache = JINJA_BYTECODE
    return application


def postgres_schema_url(url: str, schema: str) -> str:
    """The same database, with ``schema`` first on the search path (one schema per test run,
    so two runs on one server never see each other's tables)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def recreate_schema(url: str, schema: str, drop_only: bool = False) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            if not drop_only:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()


def postgres_available(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Upgrade an empty database to head once per session; tests get a copy (or truncation)."""
    base = tmp_path_factory.mktemp("template")
    schema = None
    if PG_URL:
        if not postgres_available(PG_URL):
            pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL does not answer at {PG_URL}")
        schema = f"intake_test_{WORKER}_{os.getpid()}"
        recreate_schema(PG_URL, schema)
        url = postgres_schema_url(PG_URL, schema)
    else:
        url = f"sqlite:///{base / 'template.sqlite3'}"
    app = make_app(url, base / "instance")
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    yield url
    if schema:
        recreate_schema(PG_URL, schema, drop_only=True)


def fresh_database(template_db: str, folder: Path) -> str:
    """A database at the migrations' head for one test or module: on SQLite a copy of the template
    file in ``folder``; on PostgreSQL the run's schema itself (emptied afterwards by its user)."""
    if PG_URL:
        return template_db
    target = folder / "intake.sqlite3"
    shutil.copyfile(Path(template_db.removeprefix("sqlite:///")), target)
    return f"sqlite:///{target}"


@pytest.fixture()
def app(template_db: str, tmp_path: Path) -> Iterator[Flask]:
    application = make_app(fresh_database(template_db, tmp_path), tmp_path / "instance")
    yield application
    with application.app_context():
        _db.session.remove()
        if PG_URL:
            truncate_postgres()
            with _db.engine.begin() as conn:
                # Tests that play the attacker drop the append-only guard (``drop_append_only_guard``);
                # on the shared PostgreSQL schema the next test must find it back in place.
                for name, timing in (("audit_events_no_change", "BEFORE UPDATE OR DELETE"),
                                     ("audit_events_no_truncate", "BEFORE TRUNCATE")):
                    level = "STATEMENT" if "TRUNCATE" in timing else "ROW"
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON audit_events"))
                    conn.execute(text(f"CREATE TRIGGER {name} {timing} ON audit_events FOR EACH {level} "
                                      "EXECUTE FUNCTION audit_events_append_only()"))
        _db.engine.dispose()


def truncate_postgres() -> None:
    """Empty every table of the shared PostgreSQL schema (in an app context). The audit table and the
    retention checkpoints refuse TRUNCATE (append-only); the owner lifts that for the cleanup."""
    tables = ", ".join(t.name for t in reversed(_db.metadata.sorted_tables))
    with _db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        conn.execute(text("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER"))
        conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


@pytest.fixture()
def ctx(app: Flask) -> Iterator[None]:
    """An application context, for calling services directly."""
    with app.app_context():
        yield


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture()
def make_user(app: Flask):
    """Factory: ``make_user(FULL_ADMIN)`` creates and commits an account, returning it (detached).
    Several roles: ``make_user([Role.OPERATOR, Role.RECORDS_CLERK])`` (or "operator,records_clerk")."""
    counter = {"n": 0}

    def factory(role: Role | str | Iterable[Role | str] = Role.OPERATOR, email: str | None = None,
                password: str = PASSWORD, active: bool = True, mfa: bool = True, verified: bool = True,
                display_name: str | None = None, licence: tuple[str, str, str] | None = None) -> User:
        """Staff get an enrolled authenticator unless ``mfa=False``; ``user.mfa_secret`` holds it.
        ``licence=("LCSW", "12345", "CA")`` gives a staff account a professional licence (type, number,
        state), which clinical denials and their reviews need."""
        counter["n"] += 1
        roles = parse_roles(role)
        label = "-".join(r.value.replace("_", "-") for r in roles) or "nobody"
        email = email or f"{label}{counter['n']}@example.org"
        if display_name is None and any(r.is_staff for r in roles):
            display_name = f"Test {' '.join(r.value.replace('_', ' ').title() for r in roles)} {_letters(counter['n'])}"
        with app.app_context():
            user = create_user(email, roles, password, verified=verified, display_name=display_name)
            user.active = active
            if licence is not None:
                user.licence_type, user.licence_number, user.licence_state = licence
            if mfa and user.is_staff:
                user.mfa_secret = pyotp.random_base32()
                user.mfa_enrolled_at = utcnow()
            _db.session.commit()
            _db.session.refresh(user)
            _ = user.role_rows  # loaded before the object leaves the session
            _db.session.expunge(user)
            return user

    return factory


def _letters(n: int) -> str:
    """A name part for the n-th test account (names hold letters only): 1 -> "A", 27 -> "AA"."""
    text = ""
    while n > 0:
        n, rest = divmod(n - 1, 26)
        text = chr(ord("A") + rest) + text
    return text


@contextmanager
def sql_statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block, in order: for tests that
    check a page's query count or that a query reads only what it should."""
    with app.app_context():
        engine = _db.engine
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def totp_code(client: FlaskClient, email: str) -> str:
    """A TOTP code the server will accept now for ``email``: a step (of the three it accepts)
    newer than the last one used, so several sign-ins in one 30-second window work.

    The previous step is used only early in a window, so a 30-second boundary passing before the
    server checks cannot turn it stale; when every usable step is spent, wait for the next window.
    """
    with client.application.app_context():
        user = find_by_email(email)
        totp = pyotp.TOTP(user.mfa_secret)
        for _ in range(2):
            now = time.time()
            current = int(now // totp.interval)
            candidates = [current, current + 1]
            if now % totp.interval < 20:
                candidates.insert(0, current - 1)
            for step in candidates:
                if user.mfa_last_step is None or step > user.mfa_last_step:
                    return totp.generate_otp(step)
            time.sleep(totp.interval - now % totp.interval + 0.1)
    raise AssertionError("no usable TOTP step")


def login(client: FlaskClient, email: str, password: str = PASSWORD, next_url: str | None = None):
    """Sign in through the real forms, including the second factor for enrolled staff.
    Returns the last response (a 302 to the target page on success)."""
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    if next_url is not None:
        data["next"] = next_url
    response = client.post("/login", data=data)
    if response.status_code == 302 and response.headers["Location"] == "/login/mfa":
        response = client.post("/login/mfa", data={"code": totp_code(client, email),
                                                   "csrf_token": csrf_token(client, "/login/mfa")})
    return response


@pytest.fixture()
def login_as(client: FlaskClient, make_user):
    """``login_as(FULL_ADMIN)``: create a user of that role, sign the client in, return the user."""

    def do(role: Role | str) -> User:
        user = make_user(role)
        response = login(client, user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return do


@pytest.fixture()
def admin_client(app: Flask, make_user) -> FlaskClient:
    """A second client, signed in as a new administrator holding every staff role
    (``admin_client.admin``, see ``FULL_ADMIN``), beside ``client``."""
    admin = make_user(FULL_ADMIN)
    other = app.test_client()
    assert login(other, admin.email).status_code == 302
    other.admin = admin
    return other


def valid_submission(**overrides) -> dict:
    """A records request that passes every check: a copy for the patient, by secure download."""
    from datetime import date

    data = {
        "patient_name": "Jordan Example", "patient_former_names": "", "patient_dob": date(1980, 5, 17),
        "stay_from": date(2017, 3, 1), "stay_to": date(2017, 4, 15),
        "relationship_to_patient": "self", "requester_name": "",
        "request_type": "copy", "scope": "everything", "scope_from": None, "scope_to": None, "scope_kinds": [],
        "record_format": "electronic", "delivery": "secure_download", "mail_address": "",
        "recipient_name": "", "recipient_address": "", "purpose": "", "addendum_text": "", "details": "",
        "attest": True, "attestation_name": "Jordan Example",
    }
    data.update(overrides)
    return data


@pytest.fixture()
def make_request(app: Flask):
    """Factory: ``make_request(owner, **fields)`` submits a request through the service, commits,
    and returns its URL reference."""
    from intake.records.submission import submit_request

    def factory(owner: User, now=None, **overrides) -> str:
        with app.app_context():
            user = _db.session.get(User, owner.id)
            req = submit_request(user, valid_submission(**overrides), now=now)
            _db.session.commit()
            return req.reference

    return factory


@pytest.fixture()
def archive_patient(app: Flask):
    """Factory: ``archive_patient(**fields)`` adds a former patient to the archive index (by default
    the patient of ``valid_submission``) and returns its id."""
    from datetime import date

    from intake.archive.services import add_patient

    counter = {"n": 0}

    def factory(**overrides) -> int:
        counter["n"] += 1
        data = {"mrn": f"MRN-{counter['n']:05d}", "last_name": "Example", "first_name": "Jordan",
                "dob": date(1980, 5, 17), "admitted_on": date(2017, 3, 1), "discharged_on": date(2017, 4, 15),
                "record_location": "Box 12, shelf 3", "custodian": "Records office"}
        data.update(overrides)
        with app.app_context():
            patient = add_patient(data)
            _db.session.commit()
            return patient.id

    return factory


def verify_and_deliver(req, admin, archived_patient_id: int, method: str = "mail") -> None:
    """Service steps most tests need before a release: identity verified against the archive
    record, then the records handed over (by post unless told otherwise; for a third party, with the
    consent confirmed as matching the request)."""
    from intake.records.services import MoveInput, record_delivery, transition

    if req.status == "submitted":
        transition(req, "verifying", admin)
    if req.status == "verifying":
        transition(req, "in_review", admin, MoveInput(verification_method="photo_id",
                                                      archived_patient_id=archived_patient_id))
    record_delivery(req, admin, method, consent_confirmed=True)


@pytest.fixture()
def limited_app(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """The same database, served by an app whose registration and reset limits are on (3 an hour).
    A module may define its own ``limited_app`` with other limits (test_lockout does)."""
    limited = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "limited-instance",
                       RATELIMIT_ENABLED=True, RATELIMIT_REGISTER="3 per hour", RATELIMIT_RESET="3 per hour")
    yield limited
    with limited.app_context():
        _db.session.remove()
        _db.engine.dispose()


@contextmanager
def fresh_backend_app(backend: str, folder: Path, **overrides) -> Iterator[Flask]:
    """An app on a database of its own at the migrations' head: a new SQLite file, or a new schema
    of the PostgreSQL server (``PG_BASE_URL``, whatever the suite runs on) dropped afterwards."""
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'own.sqlite3'}"
    else:
        if not postgres_available(PG_BASE_URL):
            need_service("PostgreSQL", f"nothing answers at {PG_BASE_URL}")
        schema = f"own_{os.getpid()}_{secrets.token_hex(4)}"
        recreate_schema(PG_BASE_URL, schema)
        url = postgres_schema_url(PG_BASE_URL, schema)
    application = make_app(url, folder / "instance", **overrides)
    try:
        with application.app_context():
            upgrade()
        yield application
    finally:
        with application.app_context():
            _db.session.remove()
            _db.engine.dispose()
        if schema:
            recreate_schema(PG_BASE_URL, schema, drop_only=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The same test on SQLite and on PostgreSQL, whichever the rest of the suite uses."""
    with fresh_backend_app(request.param, tmp_path) as application:
        yield application
