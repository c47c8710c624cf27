"""Periodic jobs that are safe on several machines: one lock per job, and a record of every run.

The same timer may fire on two app servers, or twice on one (a ``Persistent=`` catch-up beside the
regular run, an operator starting it by hand). ``@periodic_job("name")`` on a click command makes
the second copy do nothing:

- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) held on a connection of
  its own for the whole run; the server lets go of it if the process dies.
- **SQLite**: the database's write lock. The claim (is a run of this job going on? if not, record
  ours as running) is one ``BEGIN IMMEDIATE`` transaction, so two claimants take turns and the
  second sees the first's row. A row left ``running`` by a process that died is taken over once it
  is older than ``STALE_AFTER``.

Every run is a ``job_runs`` row: running, then succeeded or failed (with an exit code or an
exception's class, never a message), or abandoned when the next run finds its process gone.
``once_a_day=True`` (the digest) also skips a run when the job already succeeded today (facility
time), so two timers a minute apart still send one digest. The job's own body is unchanged: the
decorator wraps the command's callback, and the rows are written on connections of their own, so
the body's commits and rollbacks never carry them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from flask import current_app
from sqlalchemy import Connection, func, insert, select, text, update

from intake.db_types import utcnow
from intake.extensions import db
from intake.ops.models import JobRun, JobStatus

# SQLite only (PostgreSQL's lock dies with its process): a run still "running" after this long is
# taken to be dead. Longer than any job takes; the retention purge of a big backlog is the longest.
STALE_AFTER = timedelta(hours=6)

F = TypeVar("F", bound=Callable[..., Any])
RUNS = JobRun.__table__


@dataclass(frozen=True)
class Claim:
    """A run this process holds: its row, and on PostgreSQL the connection holding the lock."""

    job: str
    run_id: int
    connection: Connection | None


def advisory_key(job: str) -> int:
    """A stable signed 64-bit key per job name (the same on every machine and every release)."""
    return int.from_bytes(hashlib.sha256(f"intake-job:{job}".encode()).digest()[:8], "big", signed=True)


def _new_run(conn: Connection, job: str, now: datetime) -> int:
    result = conn.execute(insert(RUNS).values(job=job, status=JobStatus.RUNNING.value, started_at=now,
                                              host=socket.gethostname()[:255], pid=os.getpid()))
    (run_id,) = result.inserted_primary_key or (None,)
    if run_id is None:
        raise RuntimeError("the job_runs insert returned no id")
    return int(run_id)


def _abandon(conn: Connection, job: str, now: datetime, before: datetime | None = None) -> None:
    where = [RUNS.c.job == job, RUNS.c.status == JobStatus.RUNNING.value]
    if before is not None:
        where.append(RUNS.c.started_at < before)
    conn.execute(update(RUNS).where(*where).values(status=JobStatus.ABANDONED.value, finished_at=now,
                                                   detail="its process ended without finishing"))


def _succeeded_today(conn: Connection, job: str, now: datetime) -> datetime | None:
    """When the job last succeeded today in the facility's time zone, if it did."""
    zone = ZoneInfo(current_app.config["FACILITY_TIMEZONE"])
    midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    latest = conn.execute(select(func.max(RUNS.c.started_at)).where(
        RUNS.c.job == job, RUNS.c.status == JobStatus.SUCCEEDED.value,
        RUNS.c.started_at >= midnight)).scalar()
    return latest


def _running(conn: Connection, job: str) -> Any:
    return conn.execute(select(RUNS.c.started_at, RUNS.c.host).where(
        RUNS.c.job == job, RUNS.c.status == JobStatus.RUNNING.value).order_by(RUNS.c.started_at.desc())).first()


def claim(job: str, once_a_day: bool = False) -> tuple[Claim | None, str]:
    """Take the job's lock and record the run; or say (the second value) why this run does nothing."""
    now = utcnow()
    engine = db.engine
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        try:
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": advisory_key(job)}).scalar()
            conn.commit()
            if not taken:
                conn.close()
                return None, f"{job} is already running (another process or machine holds its lock); nothing done."
            with engine.begin() as writer:
                _abandon(writer, job, now)  # the lock was free: whatever says "running" is dead
                done = _succeeded_today(writer, job, now) if once_a_day else None
                run_id = None if done else _new_run(writer, job, now)
            if done is not None or run_id is None:
                _unlock(conn, job)
                return None, _already_done(job, done) if done is not None else f"{job}: no run recorded."
            return Claim(job, run_id, conn), ""
        except BaseException:
            _unlock(conn, job)
            raise
    with engine.begin() as writer:  # BEGIN IMMEDIATE: the write lock, so claimants take turns
        _abandon(writer, job, now, before=now - STALE_AFTER)
        running = _running(writer, job)
        if running is not None:
            return None, (f"{job} is already running (started {running.started_at:%Y-%m-%d %H:%M} UTC on "
                          f"{running.host}); nothing done.")
        done = _succeeded_today(writer, job, now) if once_a_day else None
        if done:
            return None, _already_done(job, done)
        return Claim(job, _new_run(writer, job, now), None), ""


def _already_done(job: str, when: datetime) -> str:
    zone = ZoneInfo(current_app.config["FACILITY_TIMEZONE"])
    return f"{job} already ran today (at {when.astimezone(zone):%H:%M} facility time); nothing done."


def _unlock(conn: Connection, job: str) -> None:
    try:
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key(job)})
        conn.commit()
    finally:
        conn.close()


def finish(held: Claim, status: JobStatus, detail: str | None = None) -> None:
    """Record how the run ended and let go of the lock."""
    try:
        with db.engine.begin() as writer:
            writer.execute(update(RUNS).where(RUNS.c.id == held.run_id).values(
                status=status.value, finished_at=utcnow(), detail=detail))
    finally:
        if held.connection is not None:
            _unlock(held.connection, held.job)


def _outcome(exc: BaseException) -> tuple[JobStatus, str | None]:
    """How an exception leaving the job's body ends its run (the detail never holds a message)."""
    if isinstance(exc, SystemExit):
        code = exc.code
        if code in (None, 0):
            return JobStatus.SUCCEEDED, None
        return JobStatus.FAILED, f"exit {code if isinstance(code, int) else 1}"
    if isinstance(exc, click.exceptions.Exit):
        return (JobStatus.SUCCEEDED, None) if exc.exit_code == 0 else (JobStatus.FAILED, f"exit {exc.exit_code}")
    if isinstance(exc, click.ClickException):
        return JobStatus.FAILED, f"{type(exc).__name__} (exit {exc.exit_code})"
    return JobStatus.FAILED, type(exc).__name__


@contextmanager
def job_run(job: str, once_a_day: bool = False) -> Iterator[Claim | None]:
    """``with job_run("name") as run:`` - ``run`` is None when another run holds the job (said on stderr).

    A job starts from what is committed: a transaction the caller's session left open is rolled
    back first (a command run from the shell has none; on SQLite an open one, even a read, holds
    the write lock the claim needs)."""
    db.session.rollback()
    held, why = claim(job, once_a_day)
    if held is None:
        click.echo(why, err=True)
        yield None
        return
    try:
        yield held
    except BaseException as exc:
        status, detail = _outcome(exc)
        # Let go of what the body's session holds first (on SQLite, the write lock the record needs).
        db.session.rollback()
        finish(held, status, detail)
        raise
    # The body committed what it meant to keep; a transaction it left open (outside a request every
    # SQLite transaction holds the write lock, reads included) would only be rolled back at teardown.
    db.session.rollback()
    finish(held, JobStatus.SUCCEEDED)


def periodic_job(job: str, *, once_a_day: bool = False,
                 unless: Callable[[dict[str, Any]], bool] | None = None) -> Callable[[F], F]:
    """Decorate a click command's function (below ``@...command`` and its options): one run at a
    time everywhere, each run recorded; with ``once_a_day``, at most one successful run per facility
    day. ``unless(options)`` true runs the command as it is, unlocked and unrecorded (a dry run)."""

    def decorate(callback: F) -> F:
        @functools.wraps(callback)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if unless is not None and unless(kwargs):
                return callback(*args, **kwargs)
            with job_run(job, once_a_day) as held:
                if held is None:
                    return None
                return callback(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# --- reading the runs -----------------------------------------------------------------------------

def recent_failures(since: datetime, limit: int = 20) -> list[JobRun]:
    """Failed and abandoned runs started since ``since``, newest first."""
    return list(db.session.execute(
        select(JobRun).where(JobRun.status.in_((JobStatus.FAILED, JobStatus.ABANDONED)), JobRun.started_at >= since)
        .order_by(JobRun.started_at.desc()).limit(limit)).scalars())


def last_successes() -> dict[str, datetime]:
    """Each job's last successful start (one grouped query over the status index)."""
    rows = db.session.execute(select(JobRun.job, func.max(JobRun.started_at))
                              .where(JobRun.status == JobStatus.SUCCEEDED).group_by(JobRun.job)).all()
    return {job: when for job, when in rows}


def latest_runs(limit: int = 50) -> list[JobRun]:
    return list(db.session.execute(select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc())
                                   .limit(limit)).scalars())
