"""``flask review …``: the weekly quality-review sample for cron or a timer."""

from __future__ import annotations

from datetime import date

import click
from flask import current_app
from flask.cli import AppGroup

from intake.extensions import db
from intake.ops.jobs import periodic_job
from intake.review.services import SAMPLE_SIZE_MAX, draw_weekly_sample, last_full_week, week_of

review_cli = AppGroup("review", help="Quality review of helpline calls.")


def _week(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("give a date as YYYY-MM-DD, such as 2026-11-09") from exc


@review_cli.command("sample")
@click.option("--week", "week", metavar="YYYY-MM-DD",
              help="Any day of the week to sample (facility time); default: the last full week, Monday to Sunday.")
@click.option("--size", type=click.IntRange(0, SAMPLE_SIZE_MAX), default=None,
              help="Calls per operator; default: REVIEW_SAMPLE_SIZE.")
@periodic_job("review-sample")
def sample_command(week: str | None, size: int | None) -> None:
    """Put a random sample of each operator's finalized calls of one week on the review queue.

    Running it again for the same week adds nothing once each operator has their sample, so a
    timer may run it daily. Operators are named by account number, never by address.
    """
    day = _week(week)
    latest = last_full_week()
    monday = week_of(day) if day is not None else latest
    if monday > latest:
        raise click.ClickException(f"The week of {monday.isoformat()} has not ended yet; "
                                   f"the latest full week starts on {latest.isoformat()}.")
    size = current_app.config["REVIEW_SAMPLE_SIZE"] if size is None else size
    if size == 0:
        click.echo("The weekly sample is turned off (REVIEW_SAMPLE_SIZE is 0); nothing drawn.")
        return
    result = draw_weekly_sample(monday, size)
    db.session.commit()
    sunday = date.fromordinal(monday.toordinal() + 6)
    click.echo(f"Week of {monday.isoformat()} to {sunday.isoformat()} (facility time), {size} call(s) per operator.")
    if not result.added:
        click.echo("No operator finalized a data call that week.")
        return
    for operator_id in sorted(result.added):
        click.echo(f"  account #{operator_id}: {result.added[operator_id]} added, "
                   f"{result.on_queue[operator_id]} sampled in all")
    click.echo(f"Done: {result.total_added} call(s) added to the review queue.")
