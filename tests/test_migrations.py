"""The migrations, on both backends: an empty database upgraded to head matches the models,
downgrades to nothing and back, and carries the triggers that keep the audit trail append-only.

The PostgreSQL variant runs in every run, also when the rest of the suite uses SQLite: it uses
TEST_DATABASE_URL if set, else the local ``test`` database, and works in a schema of its own
that it drops afterwards.
"""

from __future__ import annotations

import ast
import inspect
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import Column, Integer, MetaData, String, select, text
from sqlalchemy.exc import DatabaseError

from intake.audit.models import AuditEvent
from intake.audit.services import record, verify_chain
from intake.extensions import db
from tests.conftest import PG_BASE_URL, make_app, need_service, postgres_available, postgres_schema_url, recreate_schema

APP_TABLES = {table.name for table in db.metadata.sorted_tables}
VERSION_TABLE = "alembic_version"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty database: a fresh SQLite file, or a fresh PostgreSQL schema."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    else:
        if not postgres_available(PG_BASE_URL):
            need_service("PostgreSQL", f"nothing answers at {PG_BASE_URL}")
        schema = f"migr_{os.getpid()}_{secrets.token_hex(4)}"
        recreate_schema(PG_BASE_URL, schema)
        url = postgres_schema_url(PG_BASE_URL, schema)
    app = make_app(url, tmp_path / "instance")
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if schema:
            recreate_schema(PG_BASE_URL, schema, drop_only=True)


def schema_diff(metadata: MetaData | None = None) -> list:
    """What autogenerate would put in a new revision to make the database match ``metadata``."""
    with db.engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(mc, metadata if metadata is not None else db.metadata)


def table_names() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def append_only_guards() -> set[str]:
    """Names of the triggers (and, on PostgreSQL, the function) that guard ``audit_events``."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
        # Only this test's schema (first on the search path) counts.
        triggers = conn.scalars(text(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal"
        ))
        functions = conn.scalars(text(
            "SELECT proname || '()' FROM pg_proc WHERE pronamespace = current_schema()::regnamespace"
        ))
        return set(triggers) | set(functions)


def expected_guards() -> set[str]:
    if db.engine.dialect.name == "sqlite":
        return {"audit_events_no_update", "audit_events_no_delete",
                "audit_checkpoints_no_update", "audit_checkpoints_no_delete"}
    return {"audit_events_no_change", "audit_events_no_truncate", "audit_events_append_only()",
            "audit_checkpoints_no_change", "audit_checkpoints_no_truncate", "audit_checkpoints_append_only()",
            "audit_checkpoints_insert_guard", "audit_checkpoints_insert_guard()"}


def audit_rows() -> list:
    """The audit trail as stored, read in a short transaction of its own: on SQLite every
    transaction starts with BEGIN IMMEDIATE, so one left open would block the raw statements."""
    with db.engine.connect() as conn:
        return conn.execute(select(AuditEvent.seq, AuditEvent.action, AuditEvent.hash)).all()


def assert_matches_models() -> None:
    diff = schema_diff()
    assert diff == [], "migrated schema differs from the models:\n" + "\n".join(map(repr, diff))
    assert table_names() == APP_TABLES | {VERSION_TABLE}


def test_upgrade_from_empty_matches_models(empty_app: Flask) -> None:
    with empty_app.app_context():
        assert APP_TABLES <= set(db.metadata.tables), "models not imported: the comparison would be empty"
        assert table_names() == set()
        upgrade()
        assert_matches_models()


def test_comparison_detects_drift(empty_app: Flask) -> None:
    """The no-difference check can fail: an extra column and a changed type both show up."""
    with empty_app.app_context():
        upgrade()
        altered = MetaData(naming_convention=db.metadata.naming_convention)
        for table in db.metadata.sorted_tables:
            table.to_metadata(altered)
        altered.tables["users"].append_column(Column("canary", Integer, nullable=True))
        altered.tables["users"].c.email_index.type = String(128)

        diff = schema_diff(altered)

        # Only what this test changed is asserted: real drift is test_upgrade_from_empty's to report.
        added = [(d[2], d[3].name) for d in diff if isinstance(d, tuple) and d[0] == "add_column"]
        assert ("users", "canary") in added, diff
        # Column changes come as a list of modify_* tuples; compare_type must have caught this one.
        changed = [(m[2], m[3]) for d in diff if isinstance(d, list) for m in d if m[0] == "modify_type"]
        assert ("users", "email_index") in changed, diff


def test_downgrade_to_base_and_upgrade_again(empty_app: Flask) -> None:
    with empty_app.app_context():
        upgrade()
        downgrade(revision="base")

        assert table_names() <= {VERSION_TABLE}
        assert append_only_guards() == set()
        if db.engine.dialect.name == "postgresql":
            assert sa.inspect(db.engine).get_sequence_names() == []
        with db.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_heads() == ()

        upgrade()
        assert_matches_models()
        assert append_only_guards() == expected_guards()


def test_audit_events_are_append_only(empty_app: Flask) -> None:
    with empty_app.app_context():
        upgrade()
        assert append_only_guards() == expected_guards()

        record("test.event")
        db.session.commit()
        before = audit_rows()
        assert [(seq, action) for seq, action, _ in before] == [(1, "test.event")]

        for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
            # The message matters: "database is locked" is a DatabaseError too, and proves nothing.
            with pytest.raises(DatabaseError, match="append-only"):
                with db.engine.begin() as conn:
                    conn.execute(text(statement))

        assert audit_rows() == before
        assert verify_chain().ok


def _is_stub(function) -> bool:
    """True for a function whose body is only a docstring, comments and ``pass``."""
    body = ast.parse(inspect.getsource(function).strip()).body[0].body
    return all(isinstance(node, ast.Pass)
               or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
               for node in body)


def test_one_head_and_every_revision_downgrades(empty_app: Flask) -> None:
    with empty_app.app_context():
        script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
        heads = script.get_heads()
        assert len(heads) == 1, f"several heads, merge them: {heads}"

        revisions = list(script.walk_revisions())
        assert revisions, "no revisions found"
        for revision in revisions:
            downgrade_fn = getattr(revision.module, "downgrade", None)
            assert callable(downgrade_fn), f"{revision.path} has no downgrade()"
            assert not _is_stub(downgrade_fn), f"{revision.path} has an empty downgrade()"

        # And this backend ends up exactly there.
        upgrade()
        with db.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)


def _check_constraint_text(table: str) -> str:
    """Every CHECK constraint of ``table`` as the database holds it, as one text."""
    if db.engine.dialect.name == "sqlite":
        return db.session.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"),
                                  {"t": table}).scalar_one()
    rows = db.session.execute(text(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "WHERE c.contype = 'c' AND t.relname = :t AND t.relnamespace = to_regnamespace(current_schema())::oid"),
        {"t": table}).scalars().all()
    return "\n".join(rows)


def test_every_coded_value_is_allowed_by_the_migrated_database(empty_app):
    """A value added to an enum in the models needs its CHECK constraint rebuilt by a migration;
    autogenerate does not notice, so this test does."""
    with empty_app.app_context():
        upgrade()
        missing = []
        for table in db.metadata.sorted_tables:
            enums = [c for c in table.columns if isinstance(c.type, sa.Enum) and c.type.create_constraint]
            if not enums:
                continue
            ddl = _check_constraint_text(table.name)
            for column in enums:
                missing += [f"{table.name}.{column.name}={value}" for value in column.type.enums
                            if f"'{value}'" not in ddl]
        assert missing == []


def _insert_filler_row(table_name: str, overrides: dict) -> None:
    """One row with every NOT NULL column filled with a plausible value of its type, through plain
    SQL against the table as it is at the current revision (not the models)."""
    import datetime as dt

    columns = sa.inspect(db.session.connection()).get_columns(table_name)
    model_table = db.metadata.tables[table_name]
    values: dict = {}
    for column in columns:
        name = column["name"]
        if name in overrides:
            values[name] = overrides[name]
            continue
        if column["nullable"] or column.get("autoincrement") is True or name == "id":
            continue
        model_type = model_table.c[name].type if name in model_table.c else column["type"]
        if isinstance(model_type, sa.Enum):
            values[name] = model_type.enums[0]
        elif isinstance(column["type"], sa.Boolean):
            values[name] = False
        elif isinstance(column["type"], sa.Integer):
            values[name] = 1
        elif isinstance(column["type"], sa.DateTime):
            values[name] = dt.datetime(2026, 1, 1)
        elif isinstance(column["type"], sa.Date):
            values[name] = dt.date(2026, 1, 1)
        else:
            length = getattr(column["type"], "length", None) or 64
            values[name] = secrets.token_hex(8)[:length]
    names = ", ".join(values)
    db.session.execute(text(f"INSERT INTO {table_name} ({names}) VALUES ({', '.join(':' + n for n in values)})"),
                       values)


def test_upgrading_a_database_with_data_keeps_child_rows(empty_app):
    """SQLite rebuilds a table to alter it; with foreign keys on, dropping the old parent table
    would cascade-delete its children. Upgrading a database that holds a request and its timeline
    must keep both, and leave foreign keys enforced afterwards."""
    with empty_app.app_context():
        upgrade(revision="0004")
        _insert_filler_row("users", {"id": 1, "role": "operator"})
        _insert_filler_row("records_requests", {"id": 1, "owner_id": 1})
        _insert_filler_row("request_events", {"id": 1, "request_id": 1, "kind": "submitted"})
        db.session.commit()
        upgrade()
        assert db.session.execute(text("SELECT count(*) FROM request_events")).scalar_one() == 1
        assert db.session.execute(text("SELECT count(*) FROM records_requests")).scalar_one() == 1
        if db.engine.dialect.name == "sqlite":
            db.session.remove()
            db.engine.dispose()
            assert db.session.execute(text("PRAGMA foreign_keys")).scalar_one() == 1


def _user_roles() -> dict[int, set[str]]:
    with db.engine.connect() as conn:  # a short transaction of its own (see audit_rows)
        rows = conn.execute(text("SELECT user_id, role FROM user_roles")).all()
    found: dict[int, set[str]] = {}
    for user_id, role in rows:
        found.setdefault(user_id, set()).add(role)
    return found


def test_0011_gives_admins_every_role_they_had_in_effect_and_downgrades(empty_app):
    """Before 0011 an admin had every staff right; after it they hold every staff role. Operators
    stay operators, requesters requesters; the downgrade brings the single role back."""
    with empty_app.app_context():
        upgrade(revision="0010")
        for user_id, role in ((1, "admin"), (2, "operator"), (3, "requester")):
            _insert_filler_row("users", {"id": user_id, "role": role})
        db.session.commit()

        upgrade(revision="0011")
        assert _user_roles() == {
            1: {"operator", "supervisor", "records_clerk", "privacy_officer", "admin"},
            2: {"operator"},
            3: {"requester"},
        }
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("users")}
        assert "role" not in columns
        assert {"display_name", "licence_type", "licence_number", "licence_state"} <= columns
        # A staff member who is only a records clerk (a role that did not exist before) becomes an
        # operator on the way down; an admin stays an admin.
        _insert_filler_row("users", {"id": 4})
        db.session.execute(text("INSERT INTO user_roles (user_id, role) VALUES (4, 'records_clerk')"))
        db.session.commit()
        db.session.remove()

        downgrade(revision="0010")
        with db.engine.connect() as conn:
            roles = dict(conn.execute(text("SELECT id, role FROM users ORDER BY id")).all())
        assert roles == {1: "admin", 2: "operator", 3: "requester", 4: "operator"}
        assert "user_roles" not in table_names()

        upgrade()
        assert_matches_models()
        assert _user_roles()[1] == {"operator", "supervisor", "records_clerk", "privacy_officer", "admin"}


def test_0011_keeps_the_audit_trail_and_its_guards(empty_app):
    """0011 widens audit_events.actor_role (several roles): on SQLite that rebuilds the table, and
    the append-only triggers must come back exactly, with every event; at the head (0012 re-links
    the trail under the audit key) the chain verifies."""
    import datetime as dt

    from intake.audit.models import GENESIS_HASH

    with empty_app.app_context():
        upgrade(revision="0010")
        with db.engine.begin() as conn:  # an event as releases before 0012 wrote it (no key id)
            conn.execute(text("INSERT INTO audit_events (seq, occurred_at, action, details, prev_hash, hash) "
                              "VALUES (1, :at, 'test.before', '{}', :prev, :hash)"),
                         {"at": dt.datetime(2026, 11, 30, 9, 0), "prev": GENESIS_HASH,
                          "hash": _legacy_link(1, dt.datetime(2026, 11, 30, 9, 0), "test.before", None, None, "{}",
                                               GENESIS_HASH)})
        with db.engine.connect() as conn:
            before = conn.execute(text("SELECT seq, action, hash FROM audit_events")).all()
        guards = append_only_guards()
        db.session.remove()
        upgrade(revision="0011")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT seq, action, hash FROM audit_events")).all() == before
        assert append_only_guards() == guards
        with pytest.raises(DatabaseError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE audit_events SET action = 'x'"))
        upgrade()
        assert [row[:2] for row in audit_rows()] == [row[:2] for row in before]
        assert append_only_guards() == expected_guards()
        assert verify_chain().ok


# --- 0012: an existing (unkeyed) audit trail is checked, then re-linked under the audit key -----

def _legacy_link(seq: int, occurred_at, action: str, object_type, object_id, details: str, prev: str) -> str:
    """The unkeyed SHA-256 link every release before 0012 wrote (anybody could compute it)."""
    import hashlib
    import json
    from datetime import UTC

    body = {"seq": seq, "occurred_at": occurred_at.replace(tzinfo=UTC).isoformat(timespec="microseconds"),
            "actor_id": None, "actor_role": None, "action": action, "object_type": object_type,
            "object_id": object_id, "ip_address": None, "details": details, "prev_hash": prev}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _insert_legacy(seq: int, occurred_at, action: str, prev: str, object_type=None, object_id=None,
                   details: str = "{}", hash_: str | None = None, key_id: str | None = None) -> str:
    link = hash_ or _legacy_link(seq, occurred_at, action, object_type, object_id, details, prev)
    columns = "seq, occurred_at, action, object_type, object_id, details, prev_hash, hash"
    columns += ", key_id" if key_id else ""
    values = ":seq, :at, :action, :ot, :oi, :details, :prev, :hash" + (", :kid" if key_id else "")
    db.session.execute(text(f"INSERT INTO audit_events ({columns}) VALUES ({values})"),
                       {"seq": seq, "at": occurred_at, "action": action, "ot": object_type, "oi": object_id,
                        "details": details, "prev": prev, "hash": link, "kid": key_id})
    return link


def _legacy_trail_with_a_checkpoint() -> None:
    """At 0011: events 1-3 from 2012 purged behind a checkpoint (announced by event 5), 4-6 recent."""
    import datetime as dt
    import json

    from intake.audit.models import GENESIS_HASH

    old, recent = dt.datetime(2012, 1, 10, 12, 0), dt.datetime(2026, 11, 30, 9, 0, 0, 123456)
    prev = GENESIS_HASH
    for seq in (1, 2, 3):
        prev = _insert_legacy(seq, old, "test.old", prev)
    third = prev
    prev = _insert_legacy(4, recent, "login.success", prev, "user", "1")
    db.session.execute(text("INSERT INTO audit_checkpoints (id, through_seq, through_hash, created_at) "
                            "VALUES (1, 3, :h, :c)"), {"h": third, "c": recent})
    details = json.dumps({"through_seq": 3, "through_hash": third, "cutoff": "2020-11-01T09:00:00+00:00"},
                         sort_keys=True, separators=(",", ":"))
    prev = _insert_legacy(5, recent, "audit.checkpoint_written", prev, "audit_checkpoint", "1", details)
    _insert_legacy(6, recent, "retention.purged", prev, "retention_policy", "audit_event")
    db.session.commit()
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq <= 3"))


def test_upgrading_an_unkeyed_trail_relinks_it_under_the_key(empty_app):
    """An existing database upgrades: its chain is checked by the old rules and re-linked under
    AUDIT_KEYS; the legacy checkpoint is signed. Afterwards an unkeyed link (what anybody could
    compute before) is refused, and a downgrade gives the old chain back."""
    from intake.audit.models import AuditCheckpoint
    from intake.audit.services import compute_hash

    with empty_app.app_context():
        upgrade(revision="0011")
        _legacy_trail_with_a_checkpoint()
        upgrade()
        report = verify_chain()
        assert report.ok and report.checkpoint_seq == 3 and report.checked == 3, report
        checkpoint = db.session.execute(select(AuditCheckpoint)).scalar_one()
        assert checkpoint.legacy and checkpoint.key_id == "t4"
        start = checkpoint.through_hash
        rows = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
        assert all(row.key_id == "t4" and compute_hash(row) == row.hash for row in rows)
        assert rows[0].prev_hash == checkpoint.through_hash  # the chain starts from the checkpoint, as before
        head = rows[-1].hash
        db.session.rollback()
        # The downgrade checks the keyed chain and gives back the unkeyed one the old code verifies.
        downgrade(revision="0011")
        legacy = db.session.execute(text("SELECT seq, prev_hash, hash FROM audit_events ORDER BY seq")).all()
        assert [row.seq for row in legacy] == [4, 5, 6] and legacy[0].prev_hash == start
        assert all(after.prev_hash == before.hash for before, after in zip(legacy, legacy[1:], strict=False))
        db.session.rollback()
        upgrade()
        assert verify_chain().ok and db.session.get(AuditEvent, 6).hash == head
        # A forger appending a link in the old, unkeyed format (all one could compute before) is caught.
        import datetime as dt

        _insert_legacy(7, dt.datetime(2026, 12, 1), "login.success", head, "user", "1", key_id="t4")
        db.session.commit()
        report = verify_chain()
        assert not report.ok and report.broken_at == 7 and "does not match its hash" in report.reason


def test_upgrade_refuses_to_relink_a_broken_trail(empty_app):
    import datetime as dt

    from alembic import command

    from intake.audit.models import GENESIS_HASH

    with empty_app.app_context():
        upgrade(revision="0011")
        first = _insert_legacy(1, dt.datetime(2026, 1, 1), "test.one", GENESIS_HASH)
        _insert_legacy(2, dt.datetime(2026, 1, 2), "test.two", first, hash_="f" * 64)  # edited afterwards
        db.session.commit()
        # Through alembic itself: Flask-Migrate's upgrade() would log the message and exit 1.
        alembic_config = current_app.extensions["migrate"].migrate.get_config()
        with pytest.raises(RuntimeError, match=r"Migration 0012 stopped.*event 2: content does not match its hash"):
            command.upgrade(alembic_config, "head")
        db.session.rollback()
        with db.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_heads() == ("0011",)
        assert "key_id" not in {c["name"] for c in sa.inspect(db.engine).get_columns("audit_events")}


def test_0019_forgets_the_kept_days_that_hold_no_request_figures(empty_app):
    """A facility day kept before 0019 holds only the calls' figures; read by the new code it would
    count no request closed or received that day. The upgrade forgets every kept day (they are
    counted again when next shown) and keeps the kept hours."""
    with empty_app.app_context():
        upgrade(revision="0018")
        db.session.execute(text(
            "INSERT INTO dashboard_call_hours (hour, figure, code, n) VALUES "
            "('2026-11-08 08:00:00.000000', 'type', 'data', 3), "
            "('2026-11-08 08:00:00.000000', 'day:type', 'data', 40), "
            "('2026-11-08 08:00:00.000000', 'day:ready', 'America/Los_Angeles', 0)"))
        db.session.commit()
        upgrade(revision="0019")
        with db.engine.connect() as conn:
            left = conn.execute(text("SELECT figure, n FROM dashboard_call_hours ORDER BY figure")).all()
        assert [tuple(row) for row in left] == [("type", 3)]
        db.session.remove()
        upgrade()
        assert_matches_models()
