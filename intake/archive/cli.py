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



@archive_cli.command("retention-floors")
@click.option("--all", "everyone", is_flag=True, help="Recompute every floor, not only the missing ones.")
def retention_floors_command(everyone: bool) -> None:
    """Compute each record's earliest lawful destruction date (H&S 123145; six years after the last
    disclosure or request, 45 CFR 164.530(j)). Records without one (imported before the floor existed)
    are never offered for destruction until this has run. Batches of 500, one commit each."""
    from sqlalchemy import select

    from intake.archive.models import ArchivedPatient
    from intake.archive.services import floor_for

    done = 0
    last_id = 0
    while True:
        stmt = select(ArchivedPatient).where(ArchivedPatient.id > last_id)
        if not everyone:
            stmt = stmt.where(ArchivedPatient.retention_floor.is_(None))
        batch = list(db.session.execute(stmt.order_by(ArchivedPatient.id).limit(500)).scalars())
        if not batch:
            break
        for patient in batch:
            patient.retention_floor = floor_for(patient)
        last_id = batch[-1].id
        done += len(batch)
        db.session.commit()
    record("archive.retention_floors", details={"computed": done})
    db.session.commit()
    click.echo(f"{done} retention floors computed.")
