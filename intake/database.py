"""Per-connection database settings.

SQLite: WAL (readers never block the writer, nor each other), foreign keys on, a busy timeout,
and transactions that say up front whether they will write.

- A write transaction opens with ``BEGIN IMMEDIATE``. With SQLite's default deferred transactions,
  one that reads and then writes can fail at once with "database is locked" when another writer
  committed in between (the busy timeout cannot help there). Taking the write lock at BEGIN makes
  writers queue politely instead, which is what a web app needs.
- The write lock is waited for in pauses of at most a millisecond (``begin_immediate``), not in
  SQLite's own sleeps of up to 100 ms, which left writers asleep with the lock free.
- A request with a safe method (GET, HEAD, OPTIONS), or to a view marked ``defers_write_lock`` (one
  that only adds rows), opens a deferred ``BEGIN``: it reads first, so
  it takes no lock and runs beside the other workers. Before such a request writes anything (an
  audit event for a page viewed, a link's token used), ``take_write_lock`` ends the read and begins
  again with ``BEGIN IMMEDIATE``, so the write queues like any other; the session's hooks below
  call it for every ORM flush and DML statement, and ``intake.audit.services.lock_trail`` calls it
  before reading the trail's head. Without this, every page held the write lock while it rendered,
  and gunicorn's workers took turns (``make bench``, docs/benchmarks.md).

PostgreSQL needs none of this: its READ COMMITTED transactions never block readers.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, cast

from flask import current_app, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import ORMExecuteState, Session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READING = "intake.sqlite_reading"  # connection.info flag: the open transaction is a deferred read


DEFER_ATTRIBUTE = "intake_defers_write_lock"


def defers_write_lock(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a form's view (between ``route`` and ``require``) whose only writes add new rows (a call
    started, a non-data call logged, and their audit events): its transaction begins as a read, like a
    page view's, and takes the write lock at its first write. The lock is then held for the inserts and
    the commit, not while the session, the token and the form are checked: the writers of a busy
    helpline queue for less (``make bench``). A view that reads something it then changes (a version,
    a counter, a state) must not be marked: after the re-begin it would act on what it read before."""
    setattr(view, DEFER_ATTRIBUTE, True)
    return view


def _reads_only() -> bool:
    if not has_request_context():
        return False
    if request.method in SAFE_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return bool(getattr(view, DEFER_ATTRIBUTE, False))


_BUSY_TIMEOUT = "intake.busy_timeout_ms"  # connection.info: the engine's busy timeout (SQLite)
_FIRST_PAUSE, _LONGEST_PAUSE = 0.0001, 0.001  # seconds between two tries for the write lock
_sleep = time.sleep


def begin_immediate(connection: Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock in pauses of at most a millisecond.

    SQLite's own wait for a lock held by another connection (its busy handler, the only one Python's
    sqlite3 module offers) sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 then 100 ms between tries,
    whether or not the lock came free meanwhile: a writer arriving behind two others slept 10 ms and
    more while each held it for one or two. Under ``make bench`` starting a call had a p95 of 180 ms
    and a p99 of 760 ms on SQLite, and gunicorn's workers sat asleep with the lock free. So the write
    lock is asked for here with SQLite's wait off, again after 0.1 ms, then after pauses that double
    up to 1 ms, until the engine's busy timeout has passed; then the request fails as it did, with
    SQLAlchemy's "database is locked" error. Every other statement keeps SQLite's own wait."""
    raw = connection.connection.dbapi_connection
    timeout_ms = int(connection.info.get(_BUSY_TIMEOUT, 0))
    if raw is None or timeout_ms <= 0:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    deadline = time.monotonic() + timeout_ms / 1000
    pause = _FIRST_PAUSE
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() + pause > deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            _sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)
    finally:
        raw.execute(f"PRAGMA busy_timeout = {timeout_ms}")


def take_write_lock(connection: Connection) -> None:
    """Turn the connection's deferred read transaction into a write transaction (SQLite).

    Nothing was written in it, so ending it loses nothing; the write then starts from the newest
    committed state, which a read-modify-write must re-read (the audit trail's head does)."""
    if connection.info.get(_READING):
        connection.info[_READING] = False
        connection.exec_driver_sql("COMMIT")
        begin_immediate(connection)


def _session_writes(session: Session) -> None:
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        take_write_lock(connection)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        _session_writes(session)


def _on_orm_execute(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _session_writes(state.session)


_WROTE = "intake.wrote"  # connection.info flag: the transaction has sent a statement other than a SELECT
_CONNECTION = "intake.connection"  # session.info: the connection its transaction began on


def _note_writes(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if not conn.info.get(_WROTE) and statement.lstrip()[:6].upper() != "SELECT":
        conn.info[_WROTE] = True


def _transaction_ends(conn: Connection) -> None:
    conn.info.pop(_WROTE, None)


def _session_begins(session: Session, _transaction: Any, connection: Connection) -> None:
    session.info[_CONNECTION] = connection


def _session_ends(session: Session, _transaction: Any) -> None:
    session.info.pop(_CONNECTION, None)


def end_reading(session: Session) -> None:
    """End a request's transaction that only read with COMMIT rather than ROLLBACK (PostgreSQL).

    The two are the same for a transaction that wrote nothing. But psycopg forgets every statement it
    prepared on the connection at a rollback (one may undo the tables they were planned on), and a
    page view ended with the session's rollback: no statement ever reached its fifth use, when psycopg
    prepares it, so PostgreSQL parsed and planned every statement of every page again (its log showed
    "execute <unnamed>" for all; bench/profiles.md). Ended with COMMIT, each worker's connection keeps
    its statements planned. A transaction that sent anything but a SELECT, or whose session holds
    changes not yet sent, is left to the session's rollback; so is every transaction on SQLite, whose
    driver keeps its statements across rollbacks."""
    connection = session.info.get(_CONNECTION)
    if connection is None or connection.dialect.name != "postgresql" or not connection.in_transaction() \
            or connection.info.get(_WROTE) or session.new or session.dirty or session.deleted:
        return
    try:
        session.commit()
    except SQLAlchemyError:  # the connection went away after the page was drawn: nothing was to be kept
        session.rollback()


def configure_engine(engine: Engine, busy_timeout_ms: int) -> None:
    if engine.dialect.name == "postgresql":
        event.listen(engine, "before_cursor_execute", _note_writes)
        event.listen(engine, "commit", _transaction_ends)
        event.listen(engine, "rollback", _transaction_ends)
        if not event.contains(Session, "after_begin", _session_begins):
            event.listen(Session, "after_begin", _session_begins)
            event.listen(Session, "after_transaction_end", _session_ends)
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        record.info[_BUSY_TIMEOUT] = busy_timeout_ms  # begin_immediate's wait
        # Let SQLAlchemy's "begin" event issue BEGIN instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        reading = _reads_only()
        connection.info[_READING] = reading
        if reading:
            connection.exec_driver_sql("BEGIN")
        else:
            begin_immediate(connection)

    # Every session (the app's and any a command makes): the listeners are the same functions,
    # so configuring a second app does not add a second copy.
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "do_orm_execute", _on_orm_execute)


def affected_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through ``Session.execute`` touched. SQLAlchemy types
    that call's result as a plain ``Result``; for a DML statement it is the ``CursorResult`` that
    counts them."""
    return cast(CursorResult[Any], result).rowcount
