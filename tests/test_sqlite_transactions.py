"""SQLite transactions: a page view (GET) reads without the write lock, so gunicorn's workers
serve pages side by side; its first write re-begins with BEGIN IMMEDIATE, so the write queues
behind other writers instead of failing with "database is locked" (intake/database.py)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from intake import database
from intake.audit.models import AuditEvent
from intake.audit.services import record, verify_chain
from intake.extensions import db
from intake.resources.models import Resource, ResourceKind
from tests.conftest import make_app


@pytest.fixture()
def sqlite_app(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'tx.sqlite3'}", tmp_path / "instance", SQLITE_BUSY_TIMEOUT_MS=200)
    with app.app_context():
        upgrade()
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def other_writer_commits(app) -> None:
    """Another worker (no request: BEGIN IMMEDIATE) writes an audit event and commits."""
    with app.app_context(), db.engine.connect() as conn:
        conn.begin()  # raises "database is locked" after the busy timeout if someone holds the lock
        with db.Session(bind=conn) as session:
            session.add(Resource(name="Added by another worker", kind=ResourceKind.OTHER))
            session.flush()
        conn.commit()


def test_a_page_view_reads_without_holding_the_write_lock(sqlite_app):
    with sqlite_app.test_request_context("/calls/", method="GET"):
        db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()  # transaction open
        other_writer_commits(sqlite_app)  # not blocked by the open read
        db.session.rollback()


def test_a_form_post_holds_the_write_lock_from_its_first_read(sqlite_app):
    # (Starting a call, which only adds rows, is the marked exception: tests/test_write_lock.py.)
    with sqlite_app.test_request_context("/calls/1/reveal", method="POST"):
        db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        with pytest.raises(OperationalError, match="locked"):
            other_writer_commits(sqlite_app)  # waits 200 ms for the lock, then gives up
        db.session.rollback()


def test_a_writer_waits_for_the_lock_in_short_pauses_and_takes_it_once_freed(sqlite_app, monkeypatch):
    """SQLite's own wait sleeps up to 100 ms between tries whether or not the lock came free; the
    write lock is asked for again after pauses of at most a millisecond (``begin_immediate``)."""
    path = sqlite_app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another worker holds the write lock
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 5:
            holder.execute("COMMIT")  # ... and lets it go while this one waits
        time.sleep(seconds)

    monkeypatch.setattr(database, "_sleep", pause)
    try:
        other_writer_commits(sqlite_app)  # waited, then wrote
    finally:
        holder.close()
    assert len(pauses) >= 5 and max(pauses) <= 0.001
    with sqlite_app.app_context():
        assert db.session.execute(select(Resource.name)).scalars().all() == ["Added by another worker"]
        timeout = db.session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert timeout == 200  # SQLite's own wait is back for every other statement


def test_a_page_view_that_audits_after_another_worker_wrote_still_writes(sqlite_app):
    """The case a plain deferred transaction fails: read, another writer commits, then write
    (SQLite refuses to upgrade a read snapshot that is no longer the newest)."""
    with sqlite_app.app_context():
        record("seed.before")
        db.session.commit()
    with sqlite_app.test_request_context("/calls/1", method="GET"):
        db.session.execute(select(AuditEvent.seq)).all()  # the page's reads
        other_writer_commits(sqlite_app)
        record("call.viewed", object_type="call", object_id=1)  # re-reads the trail's head under the lock
        db.session.commit()
    with sqlite_app.app_context():
        report = verify_chain()
        assert report.ok and report.checked == 2


def test_an_orm_write_in_a_page_view_takes_the_write_lock_first(sqlite_app):
    with sqlite_app.test_request_context("/verify/token", method="GET"):
        db.session.execute(select(Resource.id)).all()
        other_writer_commits(sqlite_app)
        db.session.add(Resource(name="Added by the page view", kind=ResourceKind.OTHER))
        db.session.commit()
    with sqlite_app.app_context():
        names = set(db.session.execute(select(Resource.name)).scalars())
    assert {"Added by another worker", "Added by the page view"} <= names
