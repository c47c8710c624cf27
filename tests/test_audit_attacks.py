"""Finding 1 of the penetration test (issue 18), replayed: an insider with the app's database rights
tries to forge or erase audit events, and ``flask audit verify`` names the first bad link.

Each attack runs on SQLite and on PostgreSQL. The attacker never holds ``AUDIT_KEYS``: the links,
the checkpoints' signatures and the anchors are HMACs under it. On PostgreSQL the same attacks are
also made with the app's own DML-only role, as docs/deploy.md sets it up, where the database itself
refuses the checkpoint and the deletions, and only the purge job's role may purge.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError

from intake.admin.retention import purge
from intake.audit.anchor import last_anchor
from intake.audit.chain import CHECKPOINT_ACTION, sign_checkpoint
from intake.audit.models import AuditCheckpoint, AuditEvent
from intake.audit.services import record, verify_chain
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.models import OutboxMessage
from tests.conftest import (
    PG_BASE_URL,
    make_app,
    need_service,
    postgres_available,
    postgres_schema_url,
    recreate_schema,
)
from tests.test_audit import drop_append_only_guard

LONG_AGO = datetime(2012, 1, 10, 12, 0, tzinfo=UTC)


def write_events(n: int, at: datetime | None = None, monkeypatch=None) -> None:
    if at is not None:
        monkeypatch.setattr("intake.audit.services.utcnow", lambda: at)
    for i in range(n):
        record("test.event", object_type="thing", object_id=i, details={"i": i})
    db.session.commit()
    if at is not None:
        monkeypatch.undo()


def head() -> AuditEvent:
    """The newest event, read in a transaction that ends at once (on SQLite an open one would hold
    the lock the attacker's own connection needs)."""
    event = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
    db.session.expunge(event)
    db.session.rollback()
    return event


def insert_event(connection, seq: int, prev_hash: str, action: str = "login.success",
                 details: str = '{"method":"totp"}', key_id: str = "t4", object_type: str | None = "user",
                 object_id: str | None = "1") -> None:
    """An event as the attacker writes it: linked to the head, hashed the only way one can without
    the key (SHA-256 of the content, as every link was before migration 0011)."""
    occurred = utcnow()
    body = {"seq": seq, "occurred_at": occurred.isoformat(timespec="microseconds"), "actor_id": 1,
            "actor_role": "admin", "action": action, "object_type": object_type, "object_id": object_id,
            "ip_address": "203.0.113.9", "details": details, "prev_hash": prev_hash, "key_id": key_id}
    forged = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    connection.execute(text(
        "INSERT INTO audit_events (seq, occurred_at, actor_id, actor_role, action, object_type, object_id, "
        "ip_address, details, prev_hash, hash, key_id) VALUES (:seq, :at, 1, 'admin', :action, :ot, :oi, "
        "'203.0.113.9', :details, :prev, :hash, :kid)"),
        {"seq": seq, "at": occurred.replace(tzinfo=None), "action": action, "ot": object_type, "oi": object_id,
         "details": details, "prev": prev_hash, "hash": forged, "kid": key_id})


def insert_checkpoint(connection, through_seq: int, through_hash: str) -> None:
    """A checkpoint as the attacker writes it: any seq and hash, a signature the key never made."""
    connection.execute(text(
        "INSERT INTO audit_checkpoints (through_seq, through_hash, created_at, key_id, signature, legacy) "
        "VALUES (:s, :h, :c, 't4', :sig, :l)"),
        {"s": through_seq, "h": through_hash, "c": datetime(2031, 1, 1), "sig": secrets.token_hex(32), "l": False})


# --- a forged event appended -----------------------------------------------------------------------

def test_a_forged_sign_in_appended_to_the_trail_is_caught(backend_app):
    runner = backend_app.test_cli_runner()
    with backend_app.app_context():
        write_events(5)
        last = head()
        with db.engine.begin() as conn:
            insert_event(conn, 6, last.hash)
        report = verify_chain()
        assert not report.ok and report.broken_at == 6 and "content does not match its hash" in report.reason
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "BROKEN at event 6" in result.output and "intact" not in result.output


def test_a_link_under_a_key_id_the_attacker_made_up_is_caught(backend_app):
    with backend_app.app_context():
        write_events(3)
        last = head()
        with db.engine.begin() as conn:
            insert_event(conn, 4, last.hash, key_id="mine")
        report = verify_chain()
        assert not report.ok and report.broken_at == 4 and "'mine' is not in AUDIT_KEYS" in report.reason


# --- a forged checkpoint, its announcement, and the prefix deleted ---------------------------------

def test_a_forged_checkpoint_announced_in_the_trail_does_not_hide_a_deleted_prefix(backend_app):
    """The pen test's attack: 17 of 22 recent events deleted behind a checkpoint the attacker wrote and
    announced. The database refuses to delete young events whatever the checkpoints say; with that
    guard dropped too, the checkpoint's signature is not the key's, so the walk starts from the
    beginning and names event 1."""
    runner = backend_app.test_cli_runner()
    with backend_app.app_context():
        write_events(22)
        seventeenth = db.session.get(AuditEvent, 17).hash
        last = head()
        with db.engine.begin() as conn:
            insert_checkpoint(conn, 17, seventeenth)
            checkpoint_id = conn.execute(select(func.max(AuditCheckpoint.id))).scalar_one()
            details = json.dumps({"through_seq": 17, "through_hash": seventeenth,
                                  "cutoff": "2000-01-01T00:00:00+00:00"}, sort_keys=True, separators=(",", ":"))
            insert_event(conn, 23, last.hash, action="audit.checkpoint_written", details=details,
                         object_type="audit_checkpoint", object_id=str(checkpoint_id))
        with pytest.raises(DatabaseError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(text("DELETE FROM audit_events WHERE seq <= 17"))
        drop_append_only_guard()
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE seq <= 17"))
        report = verify_chain()
        assert not report.ok and report.broken_at == 1 and report.checkpoint_seq is None
        assert "event 1 is missing" in report.reason
        assert f"checkpoint {checkpoint_id} (through event 17) is not signed with the audit key" in report.reason
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "BROKEN at event 1" in result.output
    assert "removed by the retention purge" not in result.output and "intact" not in result.output


# --- the newest events cut off ----------------------------------------------------------------------

def test_a_truncated_tail_is_caught_against_the_anchor(backend_app):
    runner = backend_app.test_cli_runner()
    anchored = runner.invoke(args=["audit", "verify", "--anchor"])
    assert anchored.exit_code == 0, anchored.output
    with backend_app.app_context():
        write_events(10)
    anchored = runner.invoke(args=["audit", "verify", "--anchor"])
    assert anchored.exit_code == 0 and "Anchored event 10" in anchored.output, anchored.output
    with backend_app.app_context():
        drop_append_only_guard()
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE seq >= 9"))
        report = verify_chain()  # the rest still links: only the anchor can tell
        assert not report.ok and report.broken_at == 9 and "events 9 to 10 are missing" in report.reason
        # New events over the gap reuse the numbers, with other hashes: still caught, at the anchored one.
        write_events(3)
        report = verify_chain()
        assert not report.ok and report.broken_at == 10 and "differs from the anchor" in report.reason
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "BROKEN at event 10" in result.output
    # A failed check writes no anchor over the evidence.
    assert runner.invoke(args=["audit", "verify", "--anchor"]).exit_code == 1
    with backend_app.app_context():
        assert last_anchor().seq == 10


def test_an_anchor_edited_without_the_key_is_refused(backend_app):
    runner = backend_app.test_cli_runner()
    with backend_app.app_context():
        write_events(4)
    assert runner.invoke(args=["audit", "verify", "--anchor"]).exit_code == 0
    path = Path(backend_app.config["AUDIT_ANCHOR_PATH"])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    line = json.loads(path.read_text().splitlines()[-1])
    line["seq"] = 2  # "the trail was only two events long"
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "not signed with the audit key" in result.output


def test_the_anchor_goes_to_the_privacy_officer_too(backend_app):
    backend_app.config["PRIVACY_OFFICER_EMAIL"] = "privacy@example.org"
    runner = backend_app.test_cli_runner()
    with backend_app.app_context():
        write_events(2)
    assert runner.invoke(args=["audit", "verify", "--anchor"]).exit_code == 0
    with backend_app.app_context():
        [message] = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "audit_anchor")).scalars()
        assert message.recipient == "privacy@example.org" and message.subject == "Audit trail anchor: event 2"
        assert last_anchor().line() in message.body


# --- a retired key ----------------------------------------------------------------------------------

def key(byte: int) -> str:
    import base64

    return base64.urlsafe_b64encode(bytes([byte]) * 32).decode()


def test_rotation_verifies_and_a_retired_key_cannot_append(tmp_path):
    """After rotation (the new key first) old events verify with the old key; an event appended
    with the old key after one under the new key is refused, so a leaked retired key is useless."""
    from tests.conftest import fresh_backend_app

    old_keys = f"a1:{key(0x21)}"
    with fresh_backend_app("sqlite", tmp_path, AUDIT_KEYS=old_keys) as first:
        with first.app_context():
            write_events(2)
        url = first.config["SQLALCHEMY_DATABASE_URI"]
        rotated = make_app(url, tmp_path / "rotated", AUDIT_KEYS=f"b2:{key(0x22)},{old_keys}")
        with rotated.app_context():
            write_events(2)
            assert [e.key_id for e in db.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()] \
                == ["a1", "a1", "b2", "b2"]
            assert verify_chain().ok
        with first.app_context():  # whoever still holds only the retired key
            write_events(1)
        with rotated.app_context():
            report = verify_chain()
            assert not report.ok and report.broken_at == 5
            assert "older than the key of the event before it" in report.reason
            db.session.remove()
            db.engine.dispose()


# --- PostgreSQL: the app's own DML-only role, and the purge job's role ------------------------------

def _as(role: str, schema: str) -> str:
    url = make_url(PG_BASE_URL).set(username=role).render_as_string(hide_password=False)
    return postgres_schema_url(url, schema)


@pytest.fixture()
def pg_roles(tmp_path):
    """A schema migrated by its owner with ``AUDIT_PURGE_ROLE`` set, and two roles as docs/deploy.md
    makes them: the app's (rows only) and the purge job's (the app's rights, and the purge)."""
    if not postgres_available(PG_BASE_URL):
        need_service("PostgreSQL", f"nothing answers at {PG_BASE_URL}")
    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    schema, app_role, purge_role = f"roles_{tag}", f"iapp_{tag}", f"ipurge_{tag}"
    recreate_schema(PG_BASE_URL, schema)
    admin = create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    owner = make_app(postgres_schema_url(PG_BASE_URL, schema), tmp_path / "owner", AUDIT_PURGE_ROLE=purge_role)
    try:
        from flask_migrate import upgrade

        with owner.app_context():
            upgrade()
            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE ROLE "{app_role}" LOGIN'))
            conn.execute(text(f'CREATE ROLE "{purge_role}" LOGIN IN ROLE "{app_role}"'))
            conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{app_role}"'))
            conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" '
                              f'TO "{app_role}"'))
            conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{app_role}"'))
        yield {"schema": schema, "app": _as(app_role, schema), "purge": _as(purge_role, schema), "owner": owner}
    finally:
        with owner.app_context():
            db.session.remove()
            db.engine.dispose()
        recreate_schema(PG_BASE_URL, schema, drop_only=True)
        with admin.connect() as conn:
            for role in (purge_role, app_role):
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def test_the_apps_dml_role_can_neither_checkpoint_nor_delete_and_its_forgeries_are_caught(pg_roles, tmp_path,
                                                                                       monkeypatch):
    as_app = make_app(pg_roles["app"], tmp_path / "as-app")
    as_purge = make_app(pg_roles["purge"], tmp_path / "as-purge")
    try:
        with as_app.app_context():
            write_events(4, at=LONG_AGO, monkeypatch=monkeypatch)  # expired: the purge may take them
            write_events(2)
            fourth = db.session.get(AuditEvent, 4).hash
            db.session.rollback()
            attacks = [
                ("checkpoint", lambda c: insert_checkpoint(c, 4, fourth), "only the purge role"),
                ("delete old", lambda c: c.execute(text("DELETE FROM audit_events WHERE seq = 1")), "append-only"),
                ("delete new", lambda c: c.execute(text("DELETE FROM audit_events WHERE seq = 6")), "append-only"),
                ("truncate", lambda c: c.execute(text("TRUNCATE audit_events")), "append-only|permission denied"),
                ("drop guard", lambda c: c.execute(text("DROP TRIGGER audit_events_no_change ON audit_events")),
                 "must be owner"),
                ("replace guard", lambda c: c.execute(text(
                    "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql "
                    "AS $$ BEGIN RETURN OLD; END; $$")), "must be owner|permission denied"),
            ]
            for name, attack, refusal in attacks:
                with pytest.raises(DatabaseError, match=refusal):
                    with db.engine.begin() as conn:
                        attack(conn)
                assert name
            # A temporary table of the same name does not stand in for the checkpoints.
            with pytest.raises(DatabaseError, match="append-only"):
                with db.engine.begin() as conn:
                    conn.execute(text("CREATE TEMP TABLE audit_checkpoints (through_seq integer)"))
                    conn.execute(text("INSERT INTO audit_checkpoints VALUES (1000000)"))
                    conn.execute(text("DELETE FROM audit_events WHERE seq = 1"))
            assert verify_chain().ok
        # The purge job's role may write a checkpoint (signed, announced: what the purge does first) ...
        with as_purge.app_context():
            checkpoint = AuditCheckpoint(through_seq=3, through_hash=db.session.get(AuditEvent, 3).hash,
                                         created_at=utcnow())
            sign_checkpoint(checkpoint)
            db.session.add(checkpoint)
            db.session.flush()
            record(CHECKPOINT_ACTION, object_type="audit_checkpoint", object_id=checkpoint.id,
                   details={"through_seq": 3, "through_hash": checkpoint.through_hash, "cutoff": "2020-01-01T00:00:00"})
            db.session.commit()
        # ... and even behind it, expired, the app's role may not delete an event ...
        with as_app.app_context():
            with pytest.raises(DatabaseError, match="append-only"):
                with db.engine.begin() as conn:
                    conn.execute(text("DELETE FROM audit_events WHERE seq = 1"))
        # ... which the purge job's role then does.
        with as_purge.app_context():
            purge()
            assert db.session.execute(select(func.min(AuditEvent.seq))).scalar_one() == 4
            assert verify_chain().ok
        # What the app's role can still do, append a forged event, the key catches.
        with as_app.app_context():
            last = head()
            with db.engine.begin() as conn:
                insert_event(conn, last.seq + 1, last.hash)
            report = verify_chain()
            assert not report.ok and report.broken_at == last.seq + 1 and "does not match its hash" in report.reason
    finally:
        for application in (as_app, as_purge):
            with application.app_context():
                db.session.remove()
                db.engine.dispose()


def test_anchors_written_by_the_purge_carry_the_head(backend_app, monkeypatch):
    with backend_app.app_context():
        write_events(3, at=LONG_AGO, monkeypatch=monkeypatch)
        write_events(1, at=utcnow() - timedelta(days=1), monkeypatch=monkeypatch)
        purge()
        anchor = last_anchor()
        assert anchor.reason == "purge" and anchor.seq == head().seq and anchor.hash == head().hash
        assert verify_chain().ok
