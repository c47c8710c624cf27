"""A request that only read ends its transaction with COMMIT on PostgreSQL, so psycopg keeps the
statements it prepared (intake/database.py, ``end_reading``); anything that wrote, or meant to, still
ends with the session's rollback, and SQLite is left as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event, select, text

from intake.extensions import db
from intake.resources.models import Resource, ResourceKind
from intake.users.models import Role, User
from intake.users.services import create_user

from .conftest import PASSWORD, fresh_backend_app


@pytest.fixture()
def pg_app(tmp_path: Path) -> Iterator[Flask]:
    with fresh_backend_app("postgresql", tmp_path) as application:
        yield application


@contextmanager
def transaction_ends(app: Flask) -> Iterator[list[str]]:
    """How each transaction of the app's engine ended, in order ("commit" or "rollback")."""
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def committed(_conn) -> None:
        seen.append("commit")

    def rolled_back(_conn) -> None:
        seen.append("rollback")

    event.listen(engine, "commit", committed)
    event.listen(engine, "rollback", rolled_back)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", committed)
        event.remove(engine, "rollback", rolled_back)


START = 3  # the account's session version, which the requests below read and try to change


def _staff_account(app: Flask) -> int:
    with app.app_context():
        user = create_user("reader@example.org", [Role.OPERATOR], PASSWORD, verified=True, display_name="Reader A")
        user.session_version = START
        db.session.commit()
        return user.id


def _versions(user_id: int) -> list[int]:
    return list(db.session.execute(select(User.session_version).where(User.id == user_id)).scalars())


def test_page_views_that_only_read_keep_their_statements_prepared_on_postgresql(pg_app):
    """psycopg prepares a statement at its fifth use on a connection and forgets them all at a
    rollback: with every page view ending in one, nothing was ever prepared."""
    user_id = _staff_account(pg_app)
    with transaction_ends(pg_app) as ends:
        for _ in range(7):  # seven page views, one after the other, on the pool's one connection
            with pg_app.test_request_context("/calls/"):
                assert _versions(user_id) == [START]
    assert ends == ["commit"] * 7
    with pg_app.app_context():
        prepared = db.session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    assert any("users.session_version" in statement for statement in prepared), prepared


def test_a_request_that_wrote_or_meant_to_still_rolls_back(pg_app):
    user_id = _staff_account(pg_app)
    with transaction_ends(pg_app) as ends:
        with pg_app.test_request_context("/calls/"):  # an UPDATE sent, never committed
            db.session.execute(text("UPDATE users SET session_version = 7 WHERE id = :id"), {"id": user_id})
        with pg_app.test_request_context("/calls/"):  # an object flushed, never committed
            db.session.add(Resource(name="Flushed", kind=next(iter(ResourceKind))))
            db.session.flush()
        with pg_app.test_request_context("/calls/"):  # a change made in the session, not yet sent
            user = db.session.get(User, user_id)
            user.session_version = 8
        with pytest.raises(RuntimeError), pg_app.test_request_context("/calls/"):  # the request failed
            _versions(user_id)
            raise RuntimeError("the view failed")
    assert ends == ["rollback"] * 4
    with pg_app.app_context():
        assert _versions(user_id) == [START]
        assert db.session.execute(select(Resource).where(Resource.name == "Flushed")).first() is None


def test_a_request_that_committed_its_write_ends_its_next_read_with_commit(pg_app):
    user_id = _staff_account(pg_app)
    with transaction_ends(pg_app) as ends:
        with pg_app.test_request_context("/calls/"):
            db.session.execute(text("UPDATE users SET session_version = 9 WHERE id = :id"), {"id": user_id})
            db.session.commit()
            assert _versions(user_id) == [9]  # a new transaction that only reads
    assert ends == ["commit", "commit"]


def test_sqlite_ends_a_read_as_before(tmp_path):
    """SQLite's driver keeps its statements across rollbacks: nothing to gain, nothing changed."""
    with fresh_backend_app("sqlite", tmp_path) as application:
        user_id = _staff_account(application)
        with transaction_ends(application) as ends:
            with application.test_request_context("/calls/"):
                assert _versions(user_id) == [START]
        assert ends == ["rollback"]
