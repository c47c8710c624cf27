"""``flask backup create | verify | restore``: encrypted, consistent copies of a SQLite database.

PostgreSQL is backed up with ``pg_dump --format=custom`` (see docs/deploy.md); these commands refuse it.

The copy is taken with SQLite's online backup API (a read snapshot: the app keeps writing while it
runs) and checked with ``PRAGMA integrity_check``. It holds coded health data in clear (substances,
risk levels), so the backup file is encrypted (the format is in ``intake/backup_format.py``) under a
key derived from the active field-encryption key. A restore therefore needs the same DATA_KEYS the
data itself needs, and nothing more: keep the keys apart from the backups, and keep a retired key as
long as a backup made under it is kept.

The plaintext copy lives only in a temporary file (mode 0600) next to the live database, which holds
the same data, and is deleted whatever happens.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from intake.audit.anchor import AnchorError, last_anchor, write_anchor
from intake.audit.services import record, verify_chain
from intake.backup_format import BackupFormatError, read_backup, write_backup
from intake.db_types import utcnow
from intake.extensions import db
from intake.ops.progress import bars
from intake.security.crypto import KeyConfigError, keyring, parse_keys

backup_cli = AppGroup("backup", help="Back up and restore the database (SQLite; PostgreSQL uses pg_dump).")

# Tables whose rows mean "this database is in use": a restore over them needs --force.
IN_USE_TABLES = ("users", "calls", "records_requests")
PG_DUMP_HINT = ('pg_dump --format=custom --file="intake-$(date -u +%Y%m%dT%H%M%SZ).dump" '
                '--dbname="$DATABASE_URL"')
PG_RESTORE_HINT = 'pg_restore --clean --if-exists --no-owner --exit-on-error --dbname="$DATABASE_URL" FILE.dump'


class BackupError(click.ClickException):
    """A refusal with a message for the operator; exit status 1, nothing changed."""


# --- Where the database is ---------------------------------------------------------------------

def sqlite_path(action: str) -> Path:
    """The app's SQLite database file; refuses PostgreSQL (naming pg_dump/pg_restore) and memory."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        hint = PG_DUMP_HINT if action == "create" else PG_RESTORE_HINT
        raise BackupError(f"The database is {url.get_backend_name()}, not SQLite: `flask backup` handles SQLite only. "
                          f"Use PostgreSQL's own tools (see docs/deploy.md, \"Backups\"), for example:\n    {hint}")
    if url.database in (None, "", ":memory:"):
        raise BackupError("The database is in memory: there is nothing on disk to back up or restore.")
    return Path(url.database).resolve()


def _connect(path: Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    """Open an existing database file (``mode=rw``: never create one by mistake)."""
    return sqlite3.connect(path.as_uri() + "?mode=rw", uri=True, timeout=timeout)


@contextmanager
def _temp_file(directory: Path, prefix: str) -> Iterator[Path]:
    """A private (0600) temporary file in ``directory``, removed on the way out unless moved away."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)


# --- What a database holds ---------------------------------------------------------------------

def describe(conn: sqlite3.Connection) -> dict[str, Any]:
    """Alembic revision, row count of every table, and the audit chain head of an open database."""
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    tables = {}
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        # The name comes from sqlite_master and is quoted as an identifier: never user input.
        tables[name] = conn.execute(f"SELECT COUNT(*) FROM {quoted}").fetchone()[0]  # nosec B608
    revision = None
    if "alembic_version" in tables:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    head = None
    if "audit_events" in tables:
        row = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
        head = {"seq": row[0], "hash": row[1]} if row else None
    return {"alembic_revision": revision, "tables": tables, "audit_head": head}


def integrity_problem(conn: sqlite3.Connection) -> str | None:
    """None when ``PRAGMA integrity_check`` says ok, else its first findings."""
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    return None if rows == ["ok"] else "; ".join(rows[:5])


def rows_in_use(path: Path) -> int:
    """How many users, calls and records requests the database at ``path`` holds (0 if no file)."""
    if not path.exists():
        return 0
    try:
        with closing(_connect(path)) as conn:
            present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            # Table names from the fixed IN_USE_TABLES tuple, never user input.
            return sum(conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]  # nosec B608
                       for name in IN_USE_TABLES if name in present)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} exists but cannot be read as a SQLite database ({exc}); "
                          "use --force to replace it anyway.") from exc


def code_revisions() -> tuple[set[str], set[str]]:
    """(every migration revision this code knows, its head revisions)."""
    script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    return {rev.revision for rev in script.walk_revisions()}, set(script.get_heads())


# --- Keys --------------------------------------------------------------------------------------

def _data_keys() -> dict[str, bytes]:
    try:
        return dict(parse_keys(current_app.config.get("DATA_KEYS") or ""))
    except KeyConfigError as exc:
        raise BackupError(f"DATA_KEYS is missing or invalid: {exc}") from exc


def _key_for(key_id: str) -> bytes:
    keys = _data_keys()
    if key_id not in keys:
        raise BackupError(f"This backup was encrypted under key {key_id!r}, which is not in DATA_KEYS "
                          f"(configured: {', '.join(keys)}). Add that key (it stays needed as long as backups "
                          "made under it are kept); nothing was changed.")
    return keys[key_id]


# --- Create ------------------------------------------------------------------------------------

def create_backup(output: Path | None) -> tuple[Path, dict[str, Any], int]:
    """Copy the live database online, check the copy and write it encrypted to ``output``
    (default ``instance/backups/intake-<UTC time>.backup``, mode 0600). Returns (path, manifest, size)."""
    source = sqlite_path("create")
    if not source.exists():
        raise BackupError(f"No database file at {source}.")
    created = utcnow()
    if output is None:
        output = Path(current_app.instance_path) / "backups" / f"intake-{created:%Y%m%dT%H%M%SZ}.backup"
    output = output.resolve()
    if output.exists():
        raise BackupError(f"{output} already exists; choose another --output.")
    kid = keyring().active_kid
    key = _key_for(kid)
    with _temp_file(source.parent, ".intake-backup-") as copy, bars("bytes") as shown:
        with closing(_connect(source, timeout=current_app.config["SQLITE_BUSY_TIMEOUT_MS"] / 1000)) as src, \
                closing(sqlite3.connect(copy)) as dst:
            # One step: the whole copy comes from one read snapshot, while writers carry on (WAL).
            copied = shown.step("Copying the database (one snapshot)", source.stat().st_size)
            src.backup(dst, pages=-1)
            copied(source.stat().st_size)
            # The copy becomes a single self-contained file, whatever the source's journal mode.
            dst.execute("PRAGMA journal_mode = DELETE")
            checked = shown.step("Checking the copy (integrity_check)", 1)
            problem = integrity_problem(dst)
            checked(1)
            if problem:
                raise BackupError(f"The copy failed PRAGMA integrity_check ({problem}); no backup was written. "
                                  "Check the live database with `sqlite3 <file> 'PRAGMA integrity_check'`.")
            manifest = describe(dst)
        manifest.update(created_at=created.isoformat(timespec="seconds"), database_bytes=copy.stat().st_size)
        output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _temp_file(output.parent, ".intake-backup-") as partial:
            with open(copy, "rb") as plain, open(partial, "wb") as sealed:
                write_backup(plain, sealed, key=key, key_id=kid, manifest=manifest,
                             progress=shown.step("Encrypting", copy.stat().st_size))
                sealed.flush()
                os.fsync(sealed.fileno())
            os.replace(partial, output)  # a half-written file never carries the final name
    return output, manifest, output.stat().st_size


@backup_cli.command("create")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the backup (default: instance/backups/intake-<UTC time>.backup).")
def create_command(output: Path | None) -> None:
    """Back up the SQLite database to an encrypted file, safely while the app runs."""
    started = time.perf_counter()
    path, manifest, size = create_backup(output)
    tables = manifest["tables"]
    click.echo(f"Backup written: {path}")
    click.echo(f"{size:,} bytes, {len(tables)} tables, {sum(tables.values()):,} rows, "
               f"schema {manifest['alembic_revision']}, in {time.perf_counter() - started:.1f} s.")
    click.echo(f"It is encrypted under data key {keyring().active_kid!r}: a restore needs that key in DATA_KEYS. "
               "Keep the keys apart from the backups.")
    try:
        # Counts only: never the file's contents.
        record("backup.created", details={"tables": len(tables), "rows": sum(tables.values()), "bytes": size,
                                          "key_id": keyring().active_kid})
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        # A copy of everything that the trail does not mention must not pass silently.
        raise BackupError(f"The backup was written, but its audit event could not be recorded "
                          f"({type(exc).__name__}). Run `flask backup create` again later, and delete {path} "
                          "if you do not keep it.") from exc


# --- Open (verify and restore) -----------------------------------------------------------------

def open_backup(path: Path, into: Path) -> dict[str, Any]:
    """Authenticate and decrypt ``path`` into the file ``into``, check it, and return its manifest.

    Refuses (BackupError) a wrong key, a changed or truncated file, a copy that fails
    integrity_check, a schema newer than this code, and rows or audit head that differ from the
    manifest. ``into`` holds plaintext: the caller deletes it.
    """
    try:
        with open(path, "rb") as sealed, open(into, "wb") as plain, bars("bytes") as shown:
            manifest = read_backup(sealed, plain, _key_for,
                                   progress=shown.step("Decrypting and authenticating", path.stat().st_size))
    except OSError as exc:
        raise BackupError(f"Cannot read {path}: {exc.strerror}.") from exc
    except BackupFormatError as exc:
        raise BackupError(f"{path} was refused: {exc}. Nothing was changed.") from exc
    with closing(_connect(into)) as conn:
        problem = integrity_problem(conn)
        if problem:
            raise BackupError(f"The restored copy fails PRAGMA integrity_check ({problem}).")
        found = describe(conn)
    known, heads = code_revisions()
    revision = found["alembic_revision"]
    if revision is None:
        raise BackupError("The backup holds no migration revision: it is not an intake database.")
    if revision not in known:
        raise BackupError(f"The backup's schema ({revision}) is newer than, or unknown to, this version of the app "
                          f"(head {', '.join(sorted(heads))}). Restore it with the code it was made with.")
    for what in ("alembic_revision", "tables", "audit_head"):
        if found[what] != manifest.get(what):
            raise BackupError(f"The decrypted database does not match the backup's manifest ({what}).")
    return manifest


def _print_manifest(manifest: dict[str, Any]) -> None:
    tables = manifest["tables"]
    click.echo(f"Backup made {manifest['created_at']}, schema {manifest['alembic_revision']}.")
    for name, count in sorted(tables.items()):
        click.echo(f"  {name}: {count:,}")
    click.echo(f"{len(tables)} tables, {sum(tables.values()):,} rows; row counts match the manifest.")
    head = manifest.get("audit_head")
    click.echo(f"Audit head: event {head['seq']}, {head['hash']}." if head else "Audit trail: empty.")


@backup_cli.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify_command(path: Path) -> None:
    """Decrypt and check a backup (key, integrity, schema, row counts) without restoring it."""
    with _temp_file(Path(current_app.instance_path), ".intake-verify-") as plain:
        manifest = open_backup(path, plain)
    _print_manifest(manifest)
    click.echo("Backup OK.")


def _schema_note(revision: str) -> str | None:
    _known, heads = code_revisions()
    if revision in heads:
        return None
    return (f"The restored schema ({revision}) is older than this code's ({', '.join(sorted(heads))}): "
            "run `flask db upgrade` now, then `flask audit verify --after-restore`.")


def restore_backup(path: Path, force: bool) -> tuple[Path, dict[str, Any]]:
    """Replace the SQLite database with the backup at ``path``; the target is untouched unless
    every check passed. The app must be stopped (its open connections would keep the old file)."""
    target = sqlite_path("restore")
    in_use = rows_in_use(target) if not force else 0
    if in_use:
        raise BackupError(f"{target} already holds {in_use:,} users, calls or records requests. "
                          "Restoring would replace them: stop the app and add --force if that is what you want. "
                          "Nothing was changed.")
    with _temp_file(target.parent, ".intake-restore-") as plain:
        manifest = open_backup(path, plain)
        db.session.remove()
        db.engine.dispose()  # no pooled connection may keep writing to the file being replaced
        # Old -wal/-shm go first: SQLite would otherwise replay the old log into the new file.
        for stale in (Path(f"{target}-wal"), Path(f"{target}-shm"), Path(f"{target}-journal")):
            stale.unlink(missing_ok=True)
        os.replace(plain, target)
    return target, manifest


@backup_cli.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds users, calls or requests.")
def restore_command(path: Path, force: bool) -> None:
    """Restore the SQLite database from an encrypted backup (stop the app first)."""
    started = time.perf_counter()
    target, manifest = restore_backup(path, force)
    click.echo(f"Restored {target} from {path} in {time.perf_counter() - started:.1f} s.")
    _print_manifest(manifest)
    note = _schema_note(manifest["alembic_revision"])
    if note:
        click.echo(note)
        return
    # The anchor file knows events newer than any backup: the restored chain is checked on its own,
    # and once it is in use the restore itself is anchored (below) as the new reference.
    report = verify_chain(anchor=False)
    if not report.ok:
        db.session.rollback()
        raise BackupError(f"The restored audit trail is BROKEN at event {report.broken_at}: {report.reason}. "
                          "The database was restored as it was backed up; investigate before using it.")
    head = manifest.get("audit_head") or {}
    click.echo(f"Audit trail intact: {report.checked} events, head {report.head_hash}"
               + (" (same as the backup's)." if report.head_hash == head.get("hash") else "."))
    created = datetime.fromisoformat(manifest["created_at"])
    try:
        previous = last_anchor()
    except AnchorError:
        previous = None
    record("backup.restored", details={"backup_created_at": created.isoformat(),
                                       "rows": sum(manifest["tables"].values()), "audit_head_seq": head.get("seq"),
                                       "previous_anchor_seq": previous.seq if previous else None})
    db.session.commit()
    anchor = write_anchor("restore")
    db.session.commit()
    click.echo(f"Anchored the restored trail at event {anchor.seq}: `flask audit verify` compares with it from now on.")
