"""Loading the archive index from a CSV file: check every row first, then write them all at once.

The file is UTF-8 CSV with the header line ``HEADER`` exactly; dates are ISO (``YYYY-MM-DD``);
``former_names`` is "Last, First; Last, First". A file with any bad row imports nothing, and
problems are reported by line number and field only: a row's content is PHI and never printed.

The import is idempotent on the MRN: a patient already in the index (same MRN, through its blind
index) is updated in place, with its match keys recomputed. New patients are written through
Core, 1,000 rows per INSERT, with their encrypted values sealed here exactly as the ORM hooks
would seal them (same key ring, same associated data), because the ORM's per-object flush costs
many times more than the rest of the import.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import insert, inspect, select

from intake.archive.models import ArchivedPatient, ArchiveMatchKey
from intake.archive.services import (
    DATE_FIELDS,
    FIELDS,
    closed_on,
    match_keys_for,
    mrn_key,
    patient_problems,
    retention_floor,
    stored_values,
    update_patient,
)
from intake.db_types import utcnow
from intake.extensions import db
from intake.records.deadlines import today
from intake.security.crypto import aad_for, encrypted_columns, keyring, new_uid

HEADER = FIELDS
BATCH = 1000
MAX_REPORTED = 200  # problem lines printed; the rest are counted
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

Row = tuple[int, dict[str, Any]]  # (line number in the file, checked values)


class ImportRefused(Exception):
    """The file cannot be imported; ``problems`` are lines safe to print (no row content)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class ImportCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged}


def _parse_date(raw: str) -> date | None:
    if not _ISO_DATE.match(raw):
        raise ValueError
    return date.fromisoformat(raw)


def parse_row(raw: list[str], on: date) -> tuple[dict[str, Any], dict[str, str]]:
    """One CSV row (already the right width) as checked values, and its problems by field."""
    data: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for field, value in zip(HEADER, raw, strict=True):
        value = value.strip()
        if field in DATE_FIELDS:
            try:
                data[field] = _parse_date(value) if value else None
            except ValueError:
                problems[field] = "not a date like 1980-05-17 (YYYY-MM-DD)"
                data[field] = None
        else:
            data[field] = value
    for field, message in patient_problems(data, on).items():
        problems.setdefault(field, message)
    return data, problems


def read_rows(text: Iterable[str], on: date | None = None) -> list[Row]:
    """Every row of the file, checked; raises ``ImportRefused`` listing each bad line."""
    on = on or today()
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportRefused(["The file is empty."])
        if [h.strip().lstrip("\ufeff") for h in header] != list(HEADER):
            # The first line is not echoed: a file without a header starts with a patient.
            raise ImportRefused([f"line 1: the header must be exactly: {','.join(HEADER)}"])
        rows: list[Row] = []
        problems: list[str] = []
        first_line_of: dict[str, int] = {}
        line = reader.line_num
        for raw in reader:
            line, start = reader.line_num, line + 1  # a quoted field may span lines; report where the row starts
            if not raw or all(not cell.strip() for cell in raw):
                continue
            if len(raw) != len(HEADER):
                problems.append(f"line {start}: expected {len(HEADER)} fields, found {len(raw)}")
                continue
            data, row_problems = parse_row(raw, on)
            mrn = data["mrn"].upper()
            if mrn and "mrn" not in row_problems:
                if mrn in first_line_of:
                    row_problems["mrn"] = f"the same MRN as line {first_line_of[mrn]}"
                else:
                    first_line_of[mrn] = start
            if row_problems:
                problems.append(f"line {start}: " + "; ".join(f"{field}: {message}"
                                                              for field, message in row_problems.items()))
            else:
                rows.append((start, data))
    except csv.Error:
        raise ImportRefused([f"line {reader.line_num}: this is not well-formed CSV (check the quotes)"]) from None
    except UnicodeDecodeError:
        raise ImportRefused(["The file is not UTF-8 text; save it as CSV UTF-8 and try again."]) from None
    if problems:
        shown = problems[:MAX_REPORTED]
        if len(problems) > MAX_REPORTED:
            shown.append(f"... and {len(problems) - MAX_REPORTED} more lines with problems")
        raise ImportRefused(shown)
    if not rows:
        raise ImportRefused(["The file has a header but no patients."])
    return rows


def read_file(path: Path, on: date | None = None) -> list[Row]:
    """``read_rows`` on a file on disk (UTF-8, with or without a byte-order mark)."""
    with path.open("rb") as raw:
        with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            return read_rows(text, on)


def _new_row(data: dict[str, Any], index: str, ring: Any, columns: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The column values of a new patient, encrypted values sealed as the ORM would seal them."""
    now = utcnow()
    row = {**stored_values(data), "uid": new_uid(), "mrn_index": index, "created_at": now, "updated_at": now,
           "retention_floor": retention_floor(data.get("discharged_on"), data["dob"], closed_on()),
           "legal_hold": False, "hold_reason": None}
    table = ArchivedPatient.__table__.name
    for key, column in columns:
        if row[key] is not None:
            row[key] = ring.seal(str(row[key]), aad_for(table, column, row["uid"]))
    return row


def import_rows(rows: list[Row], progress: Callable[[int], Any] = lambda n: None) -> ImportCounts:
    """Write checked rows into the index, in the caller's transaction: new MRNs added, known ones
    updated in place (match keys recomputed) or left alone when nothing differs."""
    counts = ImportCounts()
    ring = keyring()
    columns = encrypted_columns(inspect(ArchivedPatient))
    patients = ArchivedPatient.__table__
    for start in range(0, len(rows), BATCH):
        batch = {mrn_key(data["mrn"]): data for _, data in rows[start:start + BATCH]}
        known = {p.mrn_index: p for p in db.session.execute(
            select(ArchivedPatient).where(ArchivedPatient.mrn_index.in_(list(batch)))).scalars()}
        new_rows, new_keys = [], {}
        for index, data in batch.items():
            patient = known.get(index)
            if patient is None:
                new_rows.append(_new_row(data, index, ring, columns))
                new_keys[index] = match_keys_for(data["last_name"], data.get("former_names"), data["dob"])
            elif update_patient(patient, data):
                counts.updated += 1
            else:
                counts.unchanged += 1
        if new_rows:
            db.session.execute(insert(patients), new_rows)
            ids: dict[str, int] = dict(db.session.execute(
                select(patients.c.mrn_index, patients.c.id).where(patients.c.mrn_index.in_(list(new_keys))))
                .tuples().all())
            db.session.execute(insert(ArchiveMatchKey.__table__), [
                {"patient_id": ids[index], "key": key} for index, keys in new_keys.items() for key in sorted(keys)])
            counts.added += len(new_rows)
        db.session.flush()
        for patient in known.values():  # keep memory flat on large files
            db.session.expunge(patient)
        progress(len(batch))
    return counts
