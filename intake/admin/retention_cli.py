"""``flask retention …``: the retention purge for cron or a timer, and the policies in force."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from flask import current_app
from flask.cli import AppGroup

from intake.admin.models import DataKind
from intake.admin.retention import (
    KindResult,
    PurgeInterrupted,
    policies,
    purge,
)
from intake.db_types import utcnow
from intake.extensions import db
from intake.ops.jobs import periodic_job
from intake.ops.progress import bars
from intake.records.clocks import local_day

retention_cli = AppGroup("retention", help="Apply the retention policies.")

VERBS = {"call_text": "stripped", "call_record": "deleted", "released_document": "deleted",
         "audit_event": "deleted"}
NOUNS = {"call_text": "call(s)", "call_record": "call(s)", "released_document": "document content(s)",
         "audit_event": "audit event(s)"}


def _line(result: KindResult) -> str:
    day = local_day(result.cutoff, current_app.config["FACILITY_TIMEZONE"]).isoformat()
    kind = result.kind.value
    if result.held:
        return f"{kind}: held (legal hold), nothing touched"
    if result.count == 0:
        return f"{kind}: nothing to do (nothing older than {day})"
    verb = f"would be {VERBS[kind]}" if result.dry_run else VERBS[kind]
    return f"{kind}: {result.count} {NOUNS[kind]} {verb} (older than {day})"


@retention_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=500, show_default=True,
              help="Rows per transaction.")
@periodic_job("retention-purge", unless=lambda options: options["dry_run"])
def purge_command(dry_run: bool, batch_size: int) -> None:
    """Strip or delete what has expired, kind by kind, in batches; each batch is audited. An
    interrupted run is finished by running it again."""
    try:
        with bars("rows") as shown:
            steps: dict[DataKind, Callable[[int], None]] = {}

            def advance(kind: DataKind, rows: int) -> None:
                if kind not in steps:
                    steps[kind] = shown.step(f"Purging {kind.value}")
                steps[kind](rows)

            results = purge(utcnow(), dry_run=dry_run, batch_size=batch_size, on_batch=advance)
    except PurgeInterrupted as exc:
        db.session.rollback()
        for result in exc.done:
            click.echo(_line(result))
        click.echo(f"Purge interrupted while purging {exc.kind.value} ({exc.__cause__.__class__.__name__}). "
                   "Everything listed above is done and recorded; nothing else was changed. "
                   "Run the purge again to finish.", err=True)
        sys.exit(1)
    for result in results:
        click.echo(_line(result))
    total = sum(r.count for r in results)
    if dry_run:
        click.echo(f"Dry run: {total} row(s) would be purged; nothing was changed.")
    elif total == 0:
        click.echo("Nothing to purge: every kind is within its retention period or held.")
    else:
        click.echo(f"Done: {total} row(s) purged; each batch is recorded in the audit trail.")


@retention_cli.command("show")
def show_command() -> None:
    """Print the policies in force (defaults where none was saved)."""
    for kind, policy in policies().items():
        hold = "LEGAL HOLD" if policy.legal_hold else "no hold"
        source = "default" if policy.is_default else "set"
        click.echo(f"{kind.value}: {policy.keep_days} days ({source}), {hold}")
