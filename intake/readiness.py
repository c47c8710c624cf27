"""What ``/readyz`` checks before a load balancer or an orchestrator sends this instance traffic.

``/healthz`` says only that the process answers (liveness: restart it if not). Readiness asks what a
request needs: the database answers, its schema is at the migrations' head (old code on a newer
schema, or new code before ``db upgrade``, is refused), Redis answers when it is configured, and the
translation catalogues are compiled; it also says whether PDF letters can be made (never failing for
it: HTML letters work without). Each answer is a word, never a host name, a URL or an error text.
Nothing here writes to the database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from intake import catalogues
from intake.extensions import db
from intake.records import letter_pdf

MIGRATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")
REDIS_TIMEOUT_SECONDS = 1.0


@dataclass
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)
    ready: bool = True

    def fail(self, name: str, state: str) -> None:
        self.checks[name] = state
        self.ready = False


def migration_heads(app: Flask) -> frozenset[str]:
    """The revisions at the head of migrations/ (read once per process: the files do not change under it)."""
    heads = app.extensions.get("intake_migration_heads")
    if heads is None:
        heads = app.extensions["intake_migration_heads"] = frozenset(ScriptDirectory(MIGRATIONS).get_heads())
    return heads


def database_heads(connection) -> frozenset[str]:
    """The revisions the database's alembic_version holds (empty for an empty database)."""
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def check() -> Readiness:
    """Run every check (in an app context) and say which failed."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    result = Readiness()
    try:
        with db.engine.connect() as connection:
            current = database_heads(connection)
        result.checks["database"] = "up"
        if current == migration_heads(app):
            result.checks["schema"] = "current"
        else:
            result.fail("schema", "not at the migrations' head (run db upgrade)" if current else "empty")
    except SQLAlchemyError:
        app.logger.warning("readiness: database unavailable")
        result.fail("database", "down")
        result.fail("schema", "unknown")
    result.checks["redis"] = "not configured"
    if app.config.get("REDIS_URL"):
        if redis_answers(app):
            result.checks["redis"] = "up"
        else:
            app.logger.warning("readiness: Redis unavailable")
            result.fail("redis", "down")
    problems = catalogues.catalogue_problems(app.config, app.root_path)
    if problems:
        app.logger.warning("readiness: %s", "; ".join(problems))
        result.fail("translations", "not compiled")
    else:
        result.checks["translations"] = "compiled"
    # Reported, never failed: without WeasyPrint's libraries HTML letters still work (letter_pdf). Asked
    # without loading WeasyPrint here: every worker answers this, and only a PDF needs it.
    result.checks["letter_pdf"] = "unavailable" if letter_pdf.installed_problem() else "available"
    return result


def redis_answers(app: Flask) -> bool:
    """PING with a short timeout, on one client kept per process."""
    import redis

    client = app.extensions.get("intake_readiness_redis")
    if client is None:
        client = app.extensions["intake_readiness_redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
