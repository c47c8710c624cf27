"""How a sender claims outbox messages on each database: on PostgreSQL the candidates are locked
with ``SELECT … FOR UPDATE SKIP LOCKED`` (a row another sender is claiming is skipped, not waited
for); SQLite has no row locks and keeps the compare-and-set UPDATE alone. Two whole senders
delivering at once, exactly once each message, are in tests/test_multi_instance.py."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from intake.extensions import db
from intake.notify.models import OutboxStatus
from intake.notify.sender import claim_due
from tests.conftest import sql_statements
from tests.test_outbox import fetch, queue


def claim_selects(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT") and "outbox_messages" in s]


def test_the_claim_locks_rows_only_where_the_database_has_row_locks(app, ctx):
    ids = [queue() for _ in range(3)]
    with sql_statements(app) as statements:
        assert claim_due(5) == ids
    selects = claim_selects(statements)
    assert selects, statements
    if db.engine.dialect.name == "postgresql":
        assert all(s.rstrip().endswith("FOR UPDATE SKIP LOCKED") for s in selects)
    else:
        assert not any("FOR UPDATE" in s for s in selects)  # SQLite: the compare-and-set alone decides
    assert {fetch(i).status for i in ids} == {OutboxStatus.SENDING}


def test_a_row_another_sender_holds_is_skipped_not_waited_for(app, ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; this runs in the PostgreSQL pass (make test-pg)")
    first, *others = [queue() for _ in range(3)]
    holder = db.engine.connect()  # another sender, in the middle of claiming the oldest message
    holding = holder.begin()
    try:
        holder.execute(text("SELECT id FROM outbox_messages WHERE id = :id FOR UPDATE"), {"id": first})
        # Waiting for that lock would fail after a second instead of passing slowly.
        db.session.execute(text("SET LOCAL lock_timeout = '1s'"))
        started = time.monotonic()
        assert claim_due(5) == others
        assert time.monotonic() - started < 1
        assert fetch(first).status == OutboxStatus.PENDING
    finally:
        holding.rollback()
        holder.close()
    assert claim_due(5) == [first]  # released without a claim: the next pass takes it
