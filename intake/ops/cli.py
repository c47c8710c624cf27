"""``flask jobs list`` (recent runs of the periodic jobs) and ``flask jobs schedule`` (their scheduler)."""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from intake.db_types import utcnow
from intake.extensions import db
from intake.ops import scheduler
from intake.ops.jobs import last_successes, latest_runs
from intake.readiness import database_heads, migration_heads

jobs_cli = AppGroup("jobs", help="Periodic jobs: their runs, and a scheduler for machines without timers.")


@jobs_cli.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=30, show_default=True)
def list_command(limit: int) -> None:
    """The latest runs, newest first: job, outcome, start (UTC), seconds, host, detail."""
    runs = latest_runs(limit)
    if not runs:
        click.echo("No job has run yet.")
    for run in runs:
        seconds = f"{(run.finished_at - run.started_at).total_seconds():.1f}s" if run.finished_at else "-"
        click.echo(f"{run.started_at:%Y-%m-%d %H:%M:%S} {run.job:<16} {run.status.value:<9} {seconds:>8} "
                   f"{run.host} pid {run.pid} {run.detail or ''}".rstrip())
    db.session.rollback()


@jobs_cli.command("schedule")
def schedule_command() -> None:
    """Run the periodic jobs at their facility times until SIGTERM (the container's scheduler)."""
    zone = ZoneInfo(current_app.config["FACILITY_TIMEZONE"])
    successes = last_successes()
    db.session.remove()  # hold no connection while sleeping
    stop = threading.Event()
    scheduler.stop_on_sigterm(stop)
    click.echo("Scheduler started: " + ", ".join(
        f"{e.job} {'Mondays' if e.weekday == 0 else 'daily'} {e.at:%H:%M}" for e in scheduler.SCHEDULE)
        + f" ({zone.key}). SIGTERM stops it.")
    try:
        scheduler.serve(zone, successes, utcnow, click.echo, stop)
    except KeyboardInterrupt:
        pass
    click.echo("Scheduler stopped.")


@click.command("wait-for-database")
@click.option("--timeout", type=click.IntRange(0, 3600), default=60, show_default=True, help="Seconds to wait.")
@click.option("--at-head", is_flag=True, help="Also wait until the schema is at the migrations' head (db upgrade ran).")
@with_appcontext
def wait_for_database_command(timeout: int, at_head: bool) -> None:
    """Wait until the database answers (the container's entrypoint runs this first); exit 1 on timeout."""
    deadline = time.monotonic() + timeout
    heads = migration_heads(current_app._get_current_object()) if at_head else None  # type: ignore[attr-defined]
    state = "does not answer"
    while True:
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                if heads is None or database_heads(connection) == heads:
                    click.echo("The database answers" + (" at the migrations' head." if heads else "."))
                    return
                state = "answers, but its schema is not at the migrations' head (db upgrade has not run)"
        except SQLAlchemyError:
            state = "does not answer"
        finally:
            db.engine.dispose()  # no pooled connection left from a failed attempt
        if time.monotonic() >= deadline:
            raise click.ClickException(f"the database {state} after {timeout} s")
        time.sleep(1)
