"""``flask archive import FILE.csv``: load or refresh the archive patient index."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import AppGroup

from intake.archive.importer import ImportRefused, import_rows, read_file
from intake.audit.services import record
from intake.extensions import db
from intake.ops.progress import bars

archive_cli = AppGroup("archive", help="The archive patient index (former patients whose records are held).")


@archive_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
def import_command(file: Path) -> None:
    """Import FILE (CSV, UTF-8) into the archive index; an MRN already there is updated in place.

    The header must be exactly: mrn,last_name,first_name,former_names,dob,admitted_on,
    discharged_on,record_location,custodian,retention_until. Dates are YYYY-MM-DD; former names
    are "Last, First; Last, First". If any row has a problem, nothing is imported.
    """
    started = time.perf_counter()
    try:
        rows = read_file(file)
    except ImportRefused as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo("Nothing was imported.", err=True)
        raise SystemExit(1) from None
    try:
        with bars("rows") as shown:
            counts = import_rows(rows, shown.step("Importing the archive index", len(rows)))
        # Counts only: the file's name and content say who was a patient.
        record("archive.imported", details=counts.as_dict())
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    elapsed = max(time.perf_counter() - started, 1e-6)
    click.echo(f"{counts.added} added, {counts.updated} updated, {counts.unchanged} unchanged.")
    click.echo(f"{len(rows):,} rows in {elapsed:.1f} s ({len(rows) / elapsed:,.0f} rows a second).")

