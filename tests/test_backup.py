"""``flask backup``: an encrypted online copy of a SQLite database, restored into a fresh instance.

Every test here builds its own SQLite instances (also on the PostgreSQL run): backups are a SQLite
feature; PostgreSQL uses pg_dump, which the commands name when they refuse.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import secrets
import shutil
import sqlite3
import subprocess  # nosec B404 - runs pg_dump / pg_restore with fixed arguments
import threading
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError

from intake import backup_format
from intake.audit.models import AuditEvent
from intake.audit.services import verify_chain
from intake.calls.models import Call, CallStatus, CallSubstance, RiskLevel, Substance
from intake.db_types import utcnow
from intake.extensions import db
from intake.records.documents import content_of, store_document
from intake.records.models import RecordsRequest, RequestDocument, Visibility
from intake.records.submission import submit_request
from intake.users.models import Role
from intake.users.services import create_user, find_by_email

from .conftest import (
    PASSWORD,
    PG_BASE_URL,
    make_app,
    need_service,
    postgres_available,
    postgres_schema_url,
    recreate_schema,
    valid_submission,
)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% backup-canary-document\n%%EOF\n"
CALLER, NOTES = "Jane Q. Roe", "Relapsed after the funeral; sister worried"
EMAIL = "requester-backup@example.org"
OTHER_KEY = base64.urlsafe_b64encode(b"\x09" * 32).decode()


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per module; each instance starts from a copy."""
    base = tmp_path_factory.mktemp("backup-template")
    path = base / "template.sqlite3"
    app = make_app(f"sqlite:///{path}", base / "instance")
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return path


def instance(root: Path, template: Path | None = None, **overrides) -> Flask:
    """An app on ``root/intake.sqlite3``: a copy of the migrated template, or no file at all."""
    root.mkdir(parents=True, exist_ok=True)
    if template is not None:
        shutil.copyfile(template, root / "intake.sqlite3")
    return make_app(f"sqlite:///{root / 'intake.sqlite3'}", root / "instance", **overrides)


def cli(app: Flask, *args: str):
    result = app.test_cli_runner().invoke(args=list(args))
    assert not (result.exception and not isinstance(result.exception, SystemExit)), result.output
    return result


def close(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def db_file(app: Flask) -> Path:
    return Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))


def counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                            "AND name NOT LIKE 'sqlite_%'")]
        # Names from sqlite_master, quoted: not user input.
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}  # nosec B608


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def populate(app: Flask) -> dict:
    """Users, a call with encrypted text and coded substances, a request with a document, audit events."""
    with app.app_context():
        admin = create_user("admin-backup@example.org", Role.ADMIN, PASSWORD, verified=True, display_name="Ad Min")
        operator = create_user("operator-backup@example.org", Role.OPERATOR, PASSWORD, verified=True,
                               display_name="Operator Backup")
        requester = create_user(EMAIL, Role.REQUESTER, PASSWORD, verified=True)
        db.session.flush()
        call = Call(operator_id=operator.id, status=CallStatus.FINAL, started_at=utcnow() - timedelta(hours=2),
                    caller_name=CALLER, notes=NOTES, risk_level=RiskLevel.HIGH)
        call.substances = [CallSubstance(substance=Substance.CLONAZEPAM), CallSubstance(substance=Substance.OPIOIDS)]
        db.session.add(call)
        req = submit_request(requester, valid_submission())
        doc = store_document(req, "photo_id", "my id.pdf", PDF, requester, Visibility.REQUESTER)
        db.session.commit()
        ids = {"call": call.id, "request": req.id, "document": doc.id, "admin": admin.id}
        report = verify_chain()
        assert report.ok and report.checked >= 3
        ids.update(head_hash=report.head_hash, head_seq=report.checked)
    close(app)
    return ids


@pytest.fixture()
def source(tmp_path: Path, sqlite_template: Path):
    app = instance(tmp_path / "source", sqlite_template)
    yield app
    close(app)


def make_backup(app: Flask, path: Path) -> Path:
    result = cli(app, "backup", "create", "--output", str(path))
    assert result.exit_code == 0, result.output
    close(app)
    return path


def no_plaintext_left(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.startswith((".intake-restore-", ".intake-backup-",
                                                                       ".intake-verify-"))]


# --- Round trip --------------------------------------------------------------------------------

def test_restore_into_a_fresh_instance_gives_the_same_rows_chain_and_plaintext(source, tmp_path):
    ids = populate(source)
    before = counts(db_file(source))
    assert before["users"] == 3 and before["calls"] == 1 and before["request_document_contents"] >= 1
    backup = make_backup(source, tmp_path / "out" / "one.backup")
    assert backup.stat().st_mode & 0o777 == 0o600

    fresh = instance(tmp_path / "fresh")  # another directory, no database file at all
    result = cli(fresh, "backup", "restore", str(backup))
    assert result.exit_code == 0, result.output
    assert "row counts match the manifest" in result.output
    assert f"head {ids['head_hash']} (same as the backup's)" in result.output
    close(fresh)

    after = counts(db_file(fresh))
    # Every table has the rows it had when the backup was taken; the restore itself adds one audit event.
    assert {k: v for k, v in after.items() if k != "audit_events"} == \
           {k: v for k, v in before.items() if k != "audit_events"}
    assert after["audit_events"] == before["audit_events"] + 1
    with fresh.app_context():
        assert verify_chain().ok
        head = db.session.execute(select(AuditEvent).where(AuditEvent.seq == ids["head_seq"])).scalar_one()
        assert head.hash == ids["head_hash"]
        last = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
        assert last.action == "backup.restored" and last.prev_hash == ids["head_hash"]
        call = db.session.get(Call, ids["call"])
        assert (call.caller_name, call.notes) == (CALLER, NOTES)
        assert {s.substance for s in call.substances} == {Substance.CLONAZEPAM, Substance.OPIOIDS}
        assert content_of(db.session.get(RequestDocument, ids["document"])) == PDF
        assert db.session.get(RequestDocument, ids["document"]).filename == "my id.pdf"
        assert find_by_email(EMAIL) is not None  # the blind index works with the same keys
        assert db.session.get(RecordsRequest, ids["request"]).owner_id == find_by_email(EMAIL).id
    # The source recorded the backup (after its snapshot), with counts only.
    with source.app_context():
        event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "backup.created")).scalar_one()
        assert '"rows":' in event.details and "example.org" not in event.details
    close(source)
    assert no_plaintext_left(db_file(fresh).parent) and no_plaintext_left(db_file(source).parent)


def test_default_output_is_private_in_instance_backups_and_the_summary_is_printed(source):
    populate(source)
    result = cli(source, "backup", "create")
    assert result.exit_code == 0, result.output
    [written] = (Path(source.instance_path) / "backups").glob("intake-*.backup")
    assert written.name[len("intake-"):-len(".backup")].endswith("Z") and len(written.name) == len(
        "intake-20260101T000000Z.backup")
    assert written.stat().st_mode & 0o777 == 0o600
    assert (Path(source.instance_path) / "backups").stat().st_mode & 0o077 == 0
    assert str(written) in result.output
    assert f"{written.stat().st_size:,} bytes" in result.output and "tables" in result.output
    assert " s." in result.output
    # A second backup to an existing name is refused rather than overwriting it.
    again = cli(source, "backup", "create", "--output", str(written))
    assert again.exit_code == 1 and "already exists" in again.output


def test_the_backup_file_holds_no_plaintext(source, tmp_path):
    populate(source)
    data = make_backup(source, tmp_path / "b.backup").read_bytes()
    plain = io.BytesIO()
    backup_format.read_backup(io.BytesIO(data), plain, lambda kid: b"\x02" * 32)
    # (Table names and row counts are in the authenticated header, by design.)
    # Coded values and the schema are in clear inside the database copy; the file shows none of them.
    for canary in (b"CREATE TABLE", b"SQLite format 3", b"clonazepam", b"opioids", b"photo_id"):
        assert canary in plain.getvalue(), canary
        assert canary not in data, canary
    # E-mail addresses are field-encrypted already; neither form of them may appear.
    assert EMAIL.encode() not in data and b"example.org" not in data
    # Only the authenticated header is readable: format, key id, counts.
    header, _ = backup_format.read_header(open(tmp_path / "b.backup", "rb"))
    assert header["key_id"] == "t2" and header["manifest"]["tables"]["users"] == 3


def test_verify_checks_without_touching_anything(source, tmp_path):
    populate(source)
    backup = make_backup(source, tmp_path / "v.backup")
    fresh = instance(tmp_path / "fresh")
    result = cli(fresh, "backup", "verify", str(backup))
    assert result.exit_code == 0 and "Backup OK." in result.output and "users: 3" in result.output
    assert not db_file(fresh).exists()
    assert no_plaintext_left(Path(fresh.instance_path))


# --- Refusals: the file ------------------------------------------------------------------------

@pytest.fixture()
def chunked(source, tmp_path, monkeypatch):
    """A backup in many 16 KiB chunks, and a fresh migrated (empty) instance to restore into."""
    monkeypatch.setattr(backup_format, "CHUNK_BYTES", 16 * 1024)
    populate(source)
    backup = make_backup(source, tmp_path / "c.backup")
    return backup, instance(tmp_path / "target")


def chunk_offsets(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every framed chunk."""
    pos = len(backup_format.MAGIC)
    pos += 4 + int.from_bytes(data[pos:pos + 4], "big")
    spans = []
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        spans.append((pos, pos + 4 + length))
        pos += 4 + length
    return spans


def refused(target: Flask, backup: Path, *words: str) -> None:
    before = db_file(target).exists()
    result = cli(target, "backup", "restore", str(backup))
    assert result.exit_code == 1, result.output
    for word in words:
        assert word in result.output, result.output
    assert "Traceback" not in result.output
    assert db_file(target).exists() == before
    assert no_plaintext_left(db_file(target).parent)


@pytest.mark.parametrize("where", ["header", "middle", "last byte"])
def test_a_changed_byte_is_refused(chunked, tmp_path, where):
    backup, target = chunked
    data = bytearray(backup.read_bytes())
    spans = chunk_offsets(bytes(data))
    assert len(spans) > 3
    position = {"header": len(backup_format.MAGIC) + 40, "middle": spans[2][0] + 100, "last byte": len(data) - 1}
    data[position[where]] ^= 0x01
    bad = tmp_path / "tampered.backup"
    bad.write_bytes(bytes(data))
    refused(target, bad, "refused")


def test_truncated_reordered_and_extended_files_are_refused(chunked, tmp_path):
    backup, target = chunked
    data = backup.read_bytes()
    spans = chunk_offsets(data)
    cases = {
        "at a chunk boundary": (data[:spans[-1][0]], "truncated"),  # the final chunk is gone
        "inside a chunk": (data[:spans[1][0] + 500], "truncated"),
        "inside the header": (data[:20], "truncated"),
        "chunks swapped": (data[:spans[0][0]] + data[spans[1][0]:spans[1][1]] + data[spans[0][0]:spans[0][1]]
                           + data[spans[2][0]:], "refused"),
        "bytes appended": (data + b"\x00" * 8, "extra bytes"),
        "not a backup": (b"SQLite format 3\x00" + b"\x00" * 100, "not an intake backup"),
        "empty": (b"", "not an intake backup"),
    }
    for name, (content, word) in cases.items():
        bad = tmp_path / f"{name.replace(' ', '-')}.backup"
        bad.write_bytes(content)
        refused(target, bad, word)
    assert not db_file(target).exists()


def test_wrong_key_is_refused_and_a_rotated_keyring_still_restores(source, tmp_path):
    populate(source)
    backup = make_backup(source, tmp_path / "k.backup")
    other = instance(tmp_path / "other", DATA_KEYS=f"z9:{OTHER_KEY}")
    refused(other, backup, "'t2'", "not in DATA_KEYS")
    same_id = instance(tmp_path / "same-id", DATA_KEYS=f"t2:{OTHER_KEY}")
    refused(same_id, backup, "cannot be authenticated", "key is wrong")
    # After a rotation the old key stays listed: the header names it, so the restore still works.
    old = "t2:" + base64.urlsafe_b64encode(b"\x02" * 32).decode()
    rotated = instance(tmp_path / "rotated", DATA_KEYS=f"t5:{OTHER_KEY},{old}")
    result = cli(rotated, "backup", "restore", str(backup))
    assert result.exit_code == 0, result.output


# --- Refusals: the target and the schema -------------------------------------------------------

def test_restore_over_a_database_in_use_needs_force(source, tmp_path, sqlite_template):
    populate(source)
    backup = make_backup(source, tmp_path / "f.backup")
    target = instance(tmp_path / "busy", sqlite_template)
    with target.app_context():
        create_user("someone@example.org", Role.ADMIN, PASSWORD, verified=True, display_name="Some One")
        db.session.commit()
    close(target)
    untouched = digest(db_file(target))
    refused(target, backup, "--force", "Nothing was changed")
    assert digest(db_file(target)) == untouched
    # An empty migrated database is not "in use": no --force needed there.
    empty = instance(tmp_path / "empty", sqlite_template)
    assert cli(empty, "backup", "restore", str(backup)).exit_code == 0
    # With --force the busy one is replaced: its own account is gone, the backup's are there.
    result = cli(target, "backup", "restore", "--force", str(backup))
    assert result.exit_code == 0, result.output
    close(target)
    with target.app_context():
        assert find_by_email("someone@example.org") is None and find_by_email(EMAIL) is not None
    close(target)
    assert counts(db_file(target))["users"] == 3


def test_a_backup_from_a_newer_schema_is_refused_and_an_older_one_asks_for_upgrade(source, tmp_path):
    populate(source)
    with closing(sqlite3.connect(db_file(source))) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        conn.commit()
    newer = make_backup(source, tmp_path / "newer.backup")
    target = instance(tmp_path / "t")
    refused(target, newer, "9999_from_the_future", "newer than")
    with closing(sqlite3.connect(db_file(source))) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0005'")
        conn.commit()
    older = make_backup(source, tmp_path / "older.backup")
    result = cli(target, "backup", "restore", str(older))
    assert result.exit_code == 0, result.output
    assert "flask db upgrade" in result.output


# --- While the app writes -----------------------------------------------------------------------

def test_a_backup_taken_while_another_connection_writes_is_consistent(source, tmp_path):
    populate(source)
    path = db_file(source)
    with closing(sqlite3.connect(path)) as conn:
        # Some bulk so the copy takes a moment.
        conn.executemany("INSERT INTO resources (name, kind, payers, active, description, created_at, updated_at) "
                         "VALUES (?, 'detox', '', 1, ?, '2026-01-01', '2026-01-01')",
                         [(f"bulk {i}", "x" * 2000) for i in range(5000)])
        conn.commit()
    stop, written, errors = threading.Event(), [0], []

    def writer() -> None:
        with closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            while not stop.is_set():
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute("INSERT INTO resources (name, kind, payers, active, created_at, updated_at) "
                                 "VALUES ('live', 'detox', '', 1, '2026-01-01', '2026-01-01')")
                    conn.execute("COMMIT")
                    written[0] += 1
                    time.sleep(0.001)  # a busy app, not a lock-hogging loop (other writers queue too)
                except sqlite3.Error as exc:  # pragma: no cover - reported below
                    errors.append(exc)
                    return

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 20:
            time.sleep(0.01)
        at_start = written[0]
        backup = make_backup(source, tmp_path / "live.backup")
        during = written[0] - at_start
    finally:
        stop.set()
        thread.join()
    assert not errors and during > 0, (errors, during)
    header, _ = backup_format.read_header(open(backup, "rb"))
    live_rows = header["manifest"]["tables"]["resources"] - 5000
    assert at_start <= live_rows <= written[0]
    target = instance(tmp_path / "t")
    result = cli(target, "backup", "restore", str(backup))
    assert result.exit_code == 0, result.output
    close(target)
    with closing(sqlite3.connect(db_file(target))) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT COUNT(*) FROM resources WHERE name = 'live'").fetchone()[0] == live_rows


# --- PostgreSQL and other databases -------------------------------------------------------------

def test_postgresql_is_refused_with_the_pg_dump_command(tmp_path):
    # No server is needed: the refusal comes before any connection.
    app = make_app("postgresql+psycopg://intake@127.0.0.1:1/nowhere", tmp_path / "instance")
    result = cli(app, "backup", "create")
    assert result.exit_code == 1
    assert "pg_dump --format=custom" in result.output and "not SQLite" in result.output
    backup = tmp_path / "x.backup"
    backup.write_bytes(b"irrelevant")
    result = cli(app, "backup", "restore", str(backup))
    assert result.exit_code == 1 and "pg_restore" in result.output


def test_a_missing_database_or_backup_path_is_a_clear_error(tmp_path):
    app = instance(tmp_path / "nothing")
    result = cli(app, "backup", "create")
    assert result.exit_code == 1 and "No database file" in result.output
    result = cli(app, "backup", "restore", str(tmp_path / "does-not-exist.backup"))
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not db_file(app).exists()


# --- PostgreSQL: the documented pg_dump / pg_restore drill --------------------------------------

def table_counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        found = {t.name: db.session.execute(select(func.count()).select_from(t)).scalar_one()
                 for t in db.metadata.sorted_tables}
        found["alembic_version"] = db.session.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar_one()
        db.session.remove()
    return found


def test_pg_dump_and_pg_restore_as_the_readme_says(tmp_path):
    """The README's commands, on a schema of its own: dump, drop it all, restore, compare."""
    if not postgres_available(PG_BASE_URL):
        need_service("PostgreSQL", f"nothing answers at {PG_BASE_URL}")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        need_service("pg_dump", "pg_dump / pg_restore are not installed (Debian: postgresql-client)")
    schema = f"bk_{os.getpid()}_{secrets.token_hex(4)}"
    libpq_url = make_url(PG_BASE_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    recreate_schema(PG_BASE_URL, schema)
    try:
        app = make_app(postgres_schema_url(PG_BASE_URL, schema), tmp_path / "source")
        with app.app_context():
            upgrade()
        ids = populate(app)
        before = table_counts(app)
        close(app)
        dump = tmp_path / "intake.dump"
        subprocess.run(["pg_dump", "--format=custom", f"--schema={schema}", f"--file={dump}",  # noqa: S603,S607
                        f"--dbname={libpq_url}"], check=True, timeout=120)
        assert not dump.read_bytes().startswith(b"--") and EMAIL.encode() not in dump.read_bytes()
        recreate_schema(PG_BASE_URL, schema, drop_only=True)  # the disaster
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",  # noqa: S603,S607
                        f"--dbname={libpq_url}", str(dump)], check=True, timeout=120)
        restored = make_app(postgres_schema_url(PG_BASE_URL, schema), tmp_path / "restored")
        assert table_counts(restored) == before and before["calls"] == 1
        with restored.app_context():
            report = verify_chain()
            assert report.ok and report.head_hash == ids["head_hash"]
            assert db.session.get(Call, ids["call"]).notes == NOTES
            assert content_of(db.session.get(RequestDocument, ids["document"])) == PDF
            # The append-only guard came back with the tables.
            with pytest.raises(DatabaseError):
                db.session.execute(text("DELETE FROM audit_events"))
            db.session.rollback()
        close(restored)
    finally:
        recreate_schema(PG_BASE_URL, schema, drop_only=True)
