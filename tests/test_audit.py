"""The audit trail: append-only, hash-chained, verified by ``flask audit verify``."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from intake.audit.models import GENESIS_HASH, AuditEvent
from intake.audit.services import compute_hash, record, verify_chain
from intake.extensions import db
from intake.users.models import Role
from tests.conftest import FULL_ADMIN, login


def drop_append_only_guard() -> None:
    """What an attacker with database access would do first."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events"))
        db.session.execute(text("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events"))
    else:
        db.session.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        db.session.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
    db.session.commit()


def write_events(n: int) -> None:
    for i in range(n):
        record("test.event", object_type="thing", object_id=i, details={"i": i})
    db.session.commit()


def test_events_are_chained(ctx):
    write_events(5)
    events = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    assert all(compute_hash(e) == e.hash for e in events)
    report = verify_chain()
    assert report.ok and report.checked == 5 and report.head_hash == events[-1].hash


def test_verify_walks_in_batches(ctx):
    write_events(7)
    assert verify_chain(batch_size=3).checked == 7


def test_record_keeps_who_what_where(app, client, make_user):
    user = make_user([Role.ADMIN, Role.RECORDS_CLERK])
    login(client, user.email)
    with app.app_context():
        event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "login.success")).scalar_one()
        # Every role the actor held, in the roles' order.
        assert event.actor_id == user.id and event.actor_role == "records_clerk,admin"
        assert event.object_type == "user" and event.object_id == str(user.id)
        assert event.ip_address == "127.0.0.1"
        assert event.occurred_at.tzinfo is not None
        created = db.session.execute(select(AuditEvent).where(AuditEvent.action == "user.created")).scalar_one()
        assert json.loads(created.details) == {"roles": ["records_clerk", "admin"]}


def test_the_actor_role_holds_every_staff_role_at_once(app, client, make_user):
    user = make_user(FULL_ADMIN)
    login(client, user.email)
    with app.app_context():
        event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "login.success")).scalar_one()
        assert event.actor_role == "operator,supervisor,records_clerk,privacy_officer,admin"
        assert verify_chain().ok


def test_the_database_refuses_edits_and_deletes(ctx):
    write_events(2)
    statements = ["UPDATE audit_events SET action = 'edited' WHERE seq = 1", "DELETE FROM audit_events WHERE seq = 2"]
    if db.engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_events")
    for statement in statements:
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert verify_chain().ok and verify_chain().checked == 2


def test_an_edited_row_is_caught(ctx, runner):
    write_events(4)
    drop_append_only_guard()
    db.session.execute(text("UPDATE audit_events SET details = :d WHERE seq = 3"), {"d": '{"i":99}'})
    db.session.commit()
    report = verify_chain()
    assert not report.ok and report.broken_at == 3 and "hash" in report.reason
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at event 3" in result.output


def test_an_edited_row_with_a_recomputed_hash_is_caught_at_the_next_link(ctx):
    write_events(4)
    drop_append_only_guard()
    event = db.session.get(AuditEvent, 2)
    db.session.expunge(event)
    event.action = "forged"
    forged_hash = compute_hash(event)  # the forger makes row 2 consistent with itself...
    db.session.execute(text("UPDATE audit_events SET action = 'forged', hash = :h WHERE seq = 2"), {"h": forged_hash})
    db.session.commit()
    report = verify_chain()
    assert not report.ok and report.broken_at == 3  # ...but row 3 still points at the old hash
    assert "previous" in report.reason


def test_a_deleted_row_is_caught(ctx, runner):
    write_events(5)
    drop_append_only_guard()
    db.session.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    db.session.commit()
    report = verify_chain()
    assert not report.ok and report.broken_at == 2 and "missing" in report.reason
    assert runner.invoke(args=["audit", "verify"]).exit_code == 1


def test_deleting_the_first_row_is_caught(ctx):
    write_events(3)
    drop_append_only_guard()
    db.session.execute(text("DELETE FROM audit_events WHERE seq = 1"))
    db.session.commit()
    assert verify_chain().broken_at == 1


def test_cli_reports_an_intact_chain(ctx, runner):
    write_events(3)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0
    assert "intact: 3 events" in result.output


def test_an_empty_trail_verifies(ctx):
    report = verify_chain()
    assert report.ok and report.checked == 0 and report.head_hash == GENESIS_HASH


def test_the_trail_holds_no_encrypted_column() -> None:
    """``record`` writes its row with a Core INSERT (no ORM insert hooks): it would bypass the sealing
    of an ``EncryptedText`` column, so the trail must hold none (its details are non-confidential)."""
    from sqlalchemy import inspect as inspect_mapper

    from intake.audit.models import AuditEvent
    from intake.security.crypto import encrypted_columns

    assert encrypted_columns(inspect_mapper(AuditEvent)) == ()
