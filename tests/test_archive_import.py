"""``flask archive import``: every row checked before anything is written, idempotent on the MRN,
fast through Core, and never a patient's details in its output or the audit trail."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from intake.archive.importer import HEADER
from intake.archive.models import ArchivedPatient, ArchiveMatchKey
from intake.archive.services import candidates, find_by_mrn, match_key
from intake.audit.models import AuditEvent
from intake.extensions import db

GOOD = {"mrn": "A-1001", "last_name": "Rivera", "first_name": "Sam", "former_names": "Okafor, Sam; Lee, Samantha",
        "dob": "1975-02-03", "admitted_on": "2016-01-10", "discharged_on": "2016-02-20",
        "record_location": "Box 4, shelf 2", "custodian": "Iron Mountain", "retention_until": "2030-12-31"}


def row(**overrides) -> dict[str, str]:
    return {**GOOD, **overrides}


def write_csv(tmp_path: Path, rows: list[dict[str, str]], header: list[str] | None = None, name="index.csv") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header or list(HEADER))
    for values in rows:
        writer.writerow([values.get(field, "") for field in (header or HEADER)])
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return str(path)


def run_import(runner, path: str):
    return runner.invoke(args=["archive", "import", path])


def count(app, model=ArchivedPatient) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar()


def audit_details(app, action: str) -> list[dict]:
    with app.app_context():
        return [json.loads(e.details) for e in db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).scalars()]


def test_import_adds_patients_with_encrypted_fields_and_match_keys(app, runner, tmp_path):
    path = write_csv(tmp_path, [row(), row(mrn="A-1002", last_name="Nguyen", first_name="Lee", former_names="",
                                           admitted_on="", discharged_on="", record_location="", custodian="",
                                           retention_until="")])
    result = run_import(runner, path)
    assert result.exit_code == 0, result.output
    assert "2 added, 0 updated, 0 unchanged" in result.output
    assert re.search(r"rows a second", result.output)
    with app.app_context():
        patient = find_by_mrn("a-1001 ")  # the MRN index ignores case and surrounding spaces
        assert (patient.last_name, patient.first_name, patient.dob) == ("Rivera", "Sam", "1975-02-03")
        assert (patient.admitted_on, patient.discharged_on) == ("2016-01-10", "2016-02-20")
        assert patient.retention_until == date(2030, 12, 31)
        assert patient.record_location == "Box 4, shelf 2" and patient.custodian == "Iron Mountain"
        second = find_by_mrn("A-1002")
        assert second.former_names is None and second.admitted_on is None and second.retention_until is None
        # Nothing readable in the table itself: the ORM opens what Core wrote.
        raw = db.session.execute(select(ArchivedPatient.__table__.c.last_name)).scalars().all()
        assert all("Rivera" not in value and "Nguyen" not in value for value in raw)
        keys = set(db.session.execute(select(ArchiveMatchKey.key).where(
            ArchiveMatchKey.patient_id == patient.id)).scalars())
        dob = date(1975, 2, 3)
        assert keys == {match_key("Rivera", dob), match_key("Okafor", dob), match_key("Lee", dob)}
    assert audit_details(app, "archive.imported") == [{"added": 2, "updated": 0, "unchanged": 0}]


def test_former_names_are_matched(app, runner, tmp_path):
    assert run_import(runner, write_csv(tmp_path, [row()])).exit_code == 0
    with app.app_context():
        dob = date(1975, 2, 3)
        for names in (["Sam Rivera"], ["Samantha Lee"], ["Sam Okafor"], ["Someone Else", "Sam O'kafor"]):
            assert [p.mrn for p in candidates(names, dob)] == ["A-1001"], names
        assert candidates(["Sam Rivera"], date(1975, 2, 4)) == []
        assert candidates(["Sam Riviera"], dob) == []


def test_compound_last_names_are_matched(app, runner, tmp_path):
    path = write_csv(tmp_path, [row(last_name="de la Cruz", first_name="Maria", former_names="")])
    assert run_import(runner, path).exit_code == 0
    with app.app_context():
        assert [p.mrn for p in candidates(["Maria De La Cruz"], date(1975, 2, 3))] == ["A-1001"]


def test_reimport_is_idempotent(app, runner, tmp_path):
    path = write_csv(tmp_path, [row(), row(mrn="A-1002", last_name="Nguyen")])
    assert run_import(runner, path).exit_code == 0
    with app.app_context():
        before = {p.id: p.uid for p in db.session.execute(select(ArchivedPatient)).scalars()}
    keys_before = count(app, ArchiveMatchKey)
    result = run_import(runner, path)
    assert result.exit_code == 0, result.output
    assert "0 added, 0 updated, 2 unchanged" in result.output
    with app.app_context():
        after = {p.id: p.uid for p in db.session.execute(select(ArchivedPatient)).scalars()}
    assert after == before and count(app, ArchiveMatchKey) == keys_before
    assert audit_details(app, "archive.imported")[-1] == {"added": 0, "updated": 0, "unchanged": 2}


def test_existing_mrn_is_updated_in_place_and_match_keys_recomputed(app, runner, tmp_path):
    others = [row(mrn="A-1002", last_name="Nguyen", former_names="")]
    assert run_import(runner, write_csv(tmp_path, [row(), *others])).exit_code == 0
    with app.app_context():
        old_id = find_by_mrn("A-1001").id
    changed = [row(last_name="Rivera-Santos", former_names="Rivera, Sam", record_location="Box 9"),
               *others, row(mrn="A-1003", last_name="Park", former_names="")]
    result = run_import(runner, write_csv(tmp_path, changed, name="second.csv"))
    assert result.exit_code == 0, result.output
    assert "1 added, 1 updated, 1 unchanged" in result.output
    assert count(app) == 3
    with app.app_context():
        patient = find_by_mrn("A-1001")
        assert patient.id == old_id
        assert (patient.last_name, patient.record_location) == ("Rivera-Santos", "Box 9")
        dob = date(1975, 2, 3)
        assert [p.id for p in candidates(["Sam Rivera-Santos"], dob)] == [old_id]
        assert [p.id for p in candidates(["Sam Rivera"], dob)] == [old_id]
        # The dropped former name no longer matches.
        assert candidates(["Sam Okafor"], dob) == []


def _refused(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Nothing was imported." in result.output
    return result.output


def test_wrong_header_is_refused_without_echoing_it(app, runner, tmp_path):
    header = ["mrn", "last", "first_name", "former_names", "dob", "admitted_on", "discharged_on",
              "record_location", "custodian", "retention_until"]
    output = _refused(run_import(runner, write_csv(tmp_path, [row()], header=header)))
    assert "line 1: the header must be exactly: mrn,last_name," in output
    assert "last," not in output.replace("last_name", "")
    # A file without a header starts with a patient: their details are not printed.
    path = tmp_path / "noheader.csv"
    path.write_text("A-1,Rivera,Sam,,1975-02-03,,,,,\n", encoding="utf-8")
    output = _refused(run_import(runner, str(path)))
    assert "Rivera" not in output and "1975" not in output
    assert count(app) == 0


def test_empty_file_and_header_only(app, runner, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert "The file is empty." in _refused(run_import(runner, str(empty)))
    assert "no patients" in _refused(run_import(runner, write_csv(tmp_path, [])))
    assert count(app) == 0 and audit_details(app, "archive.imported") == []


def test_missing_file_is_a_usage_error(runner, tmp_path):
    result = run_import(runner, str(tmp_path / "nope.csv"))
    assert result.exit_code == 2


def test_bad_dates_are_reported_by_line_and_field(app, runner, tmp_path, monkeypatch):
    rows = [
        row(mrn="B-1", dob="1975-13-01"),           # line 2: not a date
        row(mrn="B-2", dob="02/03/1975"),           # line 3: not ISO
        row(mrn="B-3", dob="2999-01-01", admitted_on="", discharged_on=""),  # line 4: in the future
        row(mrn="B-4", admitted_on="2016-03-01", discharged_on="2016-02-01"),  # line 5: discharged before admitted
        row(mrn="B-5", admitted_on="2018-11-01", discharged_on="2019-01-01"),  # line 6: after the closure
        row(mrn="B-6", retention_until="someday"),  # line 7
        row(mrn="B-7", dob="19750203"),             # line 8: fromisoformat would accept this; we do not
    ]
    output = _refused(run_import(runner, write_csv(tmp_path, rows)))
    assert "line 2: dob: not a date" in output
    assert "line 3: dob: not a date" in output
    assert "line 4: dob: The date of birth cannot be in the future." in output
    assert "line 5: discharged_on: The discharge cannot be before the admission." in output
    assert "line 6: discharged_on: The discharge cannot be after the facility closed." in output
    assert "line 7: retention_until: not a date" in output
    assert "line 8: dob: not a date" in output
    assert "someday" not in output and "02/03/1975" not in output and "Rivera" not in output
    assert count(app) == 0


def test_required_fields_lengths_and_control_characters(app, runner, tmp_path):
    rows = [row(mrn=""), row(mrn="C-2", last_name=""), row(mrn="C-3", first_name="x" * 101),
            row(mrn="C-4", custodian="Bad\x00value"), row(mrn="C-5", last_name="'; DROP TABLE archived_patients;--"),
            row(mrn="C-6", last_name="---")]
    output = _refused(run_import(runner, write_csv(tmp_path, rows)))
    assert "line 2: mrn: This is required." in output
    assert "line 3: last_name: This is required." in output
    assert "line 4: first_name: Keep this under 100 characters." in output
    assert "line 5: custodian: Remove the invisible control characters." in output
    assert "line 6" not in output  # odd but harmless text is just a name: stored encrypted, never run
    assert "line 7: last_name: A last name needs at least one letter." in output
    assert count(app) == 0


def test_duplicate_mrns_within_the_file(app, runner, tmp_path):
    rows = [row(mrn="D-1"), row(mrn="D-2"), row(mrn=" d-1 ", last_name="Other")]
    output = _refused(run_import(runner, write_csv(tmp_path, rows)))
    assert "line 4: mrn: the same MRN as line 2" in output
    assert count(app) == 0


def test_one_bad_row_among_good_ones_imports_nothing(app, runner, tmp_path):
    rows = [row(mrn=f"E-{n}") for n in range(50)]
    rows[30] = row(mrn="E-30", admitted_on="2016-05-01", discharged_on="2016-04-01")
    output = _refused(run_import(runner, write_csv(tmp_path, rows)))
    assert output.count("line ") == 1 and "line 32:" in output
    assert count(app) == 0 and count(app, ArchiveMatchKey) == 0


def test_wrong_field_count_quoted_newlines_and_bad_encoding(app, runner, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(",".join(HEADER) + "\n"
                    + 'F-1,Rivera,Sam,"Lee,\nSam",1975-02-03,,,,,\n'  # lines 2-3: one row, with a line break
                    + "F-2,Rivera,Sam\n", encoding="utf-8")           # line 4: too few fields
    output = _refused(run_import(runner, str(path)))
    assert "line 2: former_names: Remove the invisible control characters." in output
    assert "line 4: expected 10 fields, found 3" in output and "line 3" not in output
    latin = tmp_path / "latin1.csv"
    latin.write_bytes((",".join(HEADER) + "\nG-1,Mu\xf1oz,Ana,,1975-02-03,,,,,\n").encode("latin-1"))
    assert "not UTF-8" in _refused(run_import(runner, str(latin)))
    assert count(app) == 0


def test_byte_order_mark_and_blank_lines_are_accepted(app, runner, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + ",".join(HEADER) + "\r\n\r\nH-1,Muñoz,Ana,,1975-02-03,,,,,\r\n").encode("utf-8"))
    result = run_import(runner, str(path))
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert find_by_mrn("H-1").last_name == "Muñoz"


def letters(n: int) -> str:
    """A number spelled in letters (names are normalised to letters only): 0 → "a", 27 → "bb"."""
    word = ""
    while True:
        n, digit = divmod(n, 26)
        word = chr(97 + digit) + word
        if not n:
            return word


@pytest.mark.slow
def test_hundred_thousand_rows(app, runner, tmp_path):
    total = 100_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(HEADER) + "\n")
        for n in range(total):
            former = f"\"Former{letters(n)}, Pat\"" if n % 10 == 0 else ""
            handle.write(f"M{n:06d},Last{letters(n)},Pat,{former},19{50 + n % 50}-{1 + n % 12:02d}-{1 + n % 28:02d},"
                         f"2015-01-01,2016-01-01,Box {n // 100},Records office,2040-01-01\n")
    result = run_import(runner, str(path))
    assert result.exit_code == 0, result.output
    assert f"{total} added, 0 updated, 0 unchanged" in result.output
    print(re.search(r"[0-9,]+ rows a second", result.output).group(0))
    assert count(app) == total
    assert count(app, ArchiveMatchKey) == total + total // 10
    with app.app_context():
        patient = find_by_mrn("M054321")
        assert (patient.last_name, patient.dob) == ("Last" + letters(54321), "1971-10-02")
        assert [p.mrn for p in candidates([f"Pat Former{letters(99990)}"], date(1990, 7, 3))] == ["M099990"]
