"""The benchmark's own pieces (``bench/``): the seeder writes rows the app reads back (the
encrypted columns it seals per row open on their pages, and PostgreSQL's id sequences are moved
past the explicit ids), the report's verdicts, and the two query plans the benchmark's profiling
fixed. No timing is asserted here: speed is shown by ``make bench`` as ratios, never by tests.
"""

from __future__ import annotations

import random
import re
import secrets
from datetime import datetime

import pytest
from sqlalchemy import event, func, select

from bench import seed
from bench.report import Measurement, render_report, verdict
from intake.admin import dashboard
from intake.calls import queries
from intake.calls.models import Call, CallStatus
from intake.extensions import db
from intake.records.models import OPEN_STATUSES, RecordsRequest
from intake.users.models import User
from tests.conftest import csrf_token, login

CALLS, REQUESTS = 300, 60


@pytest.fixture()
def seeded(app):
    """A small benchmark database: 300 calls, 60 requests, the bench accounts."""
    password = secrets.token_urlsafe(18)
    accounts = seed.seed_accounts(app, password, requesters=3)
    with app.app_context():
        loader = seed.Loader(db.engine)
        rng = random.Random(7)  # nosec B311 - coded values of fake rows
        staff = accounts["operator_ids"] + [accounts["staff"]["admin1"]["id"]]
        seed.seed_calls(app, loader, rng, CALLS, accounts["operator_ids"])
        target = seed.seed_requests(app, loader, rng, REQUESTS, accounts["requester_ids"], staff)
        deep = seed.deep_cursor(0.9)
    return {"password": password, "accounts": accounts, "loader": loader, "target": target, "deep": deep}


def _plan(statement: str, parameters) -> str:
    return " | ".join(row[-1] for row in db.session.connection()
                      .exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))


def _capture(statements: list, marker: str):
    def listener(conn, cursor, statement, parameters, context, executemany):
        if marker in statement:
            statements.append((statement, parameters))
    return listener


def test_seeded_rows_have_the_counts_and_coded_values_asked_for(app, seeded):
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Call)).scalar_one() == CALLS
        assert db.session.execute(select(func.count()).select_from(RecordsRequest)).scalar_one() == REQUESTS
        types = set(db.session.execute(select(Call.call_type).distinct()).scalars())
        assert len(types) >= 3  # varied, not one value copied
        span = db.session.execute(select(func.min(Call.started_at), func.max(Call.started_at))).one()
        assert (span[1] - span[0]).days > 365  # spread over the years
        opened = db.session.execute(select(RecordsRequest.status, RecordsRequest.is_open)).all()
        assert all(is_open == (status in OPEN_STATUSES) for status, is_open in opened)
    assert seeded["loader"].rows["calls"] == CALLS
    assert seeded["deep"]["depth"] == int(CALLS * 0.9)


def test_a_seeded_request_opens_on_the_requesters_page(app, client, seeded):
    """The patient name was sealed by the seeder for that row: the page decrypts and shows it."""
    accounts = seeded["accounts"]
    assert login(client, accounts["requester"]["email"], seeded["password"]).status_code == 302
    response = client.get(f"/my/requests/{seeded['target']['reference']}")
    assert response.status_code == 200
    assert f"Patient {seeded['target']['id']}" in response.get_data(as_text=True)


def test_the_deep_cursor_opens_the_list_where_it_points_and_a_new_call_gets_a_fresh_id(app, client, seeded):
    """The operator's deep page starts right after the cursor's row; starting a call after a
    bulk load works (PostgreSQL: the id sequence was moved past the seeded ids)."""
    accounts = seeded["accounts"]
    assert login(client, accounts["staff"]["operator1"]["email"], seeded["password"]).status_code == 302
    cursor = queries.Cursor.decode(seeded["deep"]["before"])
    with app.app_context():
        operator_id = accounts["staff"]["operator1"]["id"]
        expected = db.session.execute(
            select(Call.id).where((Call.status == CallStatus.FINAL) | (Call.operator_id == operator_id))
            .where((Call.started_at < cursor.at) | ((Call.started_at == cursor.at) & (Call.id < cursor.id)))
            .order_by(Call.started_at.desc(), Call.id.desc()).limit(1)).scalar_one()
    page = client.get(f"/calls/?before={seeded['deep']['before']}")
    assert page.status_code == 200
    first = re.search(r'href="/calls/(\d+)"', page.get_data(as_text=True))
    assert first and int(first.group(1)) == expected
    response = client.post("/calls/new", data={"csrf_token": csrf_token(client, "/calls/new"), "channel": "phone"})
    assert response.status_code == 302
    assert re.search(rf"/calls/{CALLS + 1}/edit$", response.headers["Location"])


def test_the_deep_call_list_seeks_into_the_time_index(app, seeded):
    """``?before=`` is a range seek on (started_at, id), not a walk from the newest call (SQLite,
    with planner statistics as the seeder gathers them; without any, SQLite sorts the matches)."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the plan checked is SQLite's")
        seed.analyze(db.engine)
        statements: list = []
        listener = _capture(statements, "FROM calls")
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            viewer = db.session.get(User, seeded["accounts"]["staff"]["operator1"]["id"])
            queries.list_calls(viewer, queries.CallFilters(), queries.Cursor.decode(seeded["deep"]["before"]))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        plan = _plan(*statements[0])
        assert "SEARCH calls USING INDEX ix_calls_started_at_id (started_at<?)" in plan, plan


def test_open_requests_by_state_reads_the_status_index_alone(app, seeded):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the plan checked is SQLite's")
        statements: list = []
        listener = _capture(statements, "FROM records_requests")
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            counts = dashboard.open_requests_by_state()
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        expected = db.session.execute(select(func.count()).select_from(RecordsRequest)
                                      .where(RecordsRequest.is_open.is_(True))).scalar_one()
        assert sum(counts.values()) == expected
        # Either status-led index (status_due, or status_received of migration 0019): the open entries only.
        plan = _plan(*statements[0])
        assert "COVERING INDEX ix_records_requests_status_" in plan and "(status=?)" in plan, plan


def figures(rps: float, p95: float, errors: int = 0) -> dict:
    return {"requests": int(rps * 10), "seconds": 10.0, "bytes": 0, "p50_ms": p95 / 2, "p95_ms": p95,
            "p99_ms": p95 * 2, "max_ms": p95 * 3, "mean_ms": p95 / 2,
            "errors": {"connect": 0, "read": 0, "write": 0, "status": errors, "timeout": 0}}


@pytest.mark.parametrize(("kind", "rps", "p95", "errors", "expected"), [
    ("list", 250, 20, 0, "met"),
    ("list", 100, 25, 0, "met"),
    ("list", 90, 20, 0, "missed: 9% < 10%"),
    ("list", 250, 30, 0, "missed: p95 > 25 ms"),
    ("list", 250, 20, 3, "missed: 3 errors"),
    ("post", 100, 500, 0, "met"),
    ("post", 90, 5, 0, "missed: 9% < 10%"),
    ("audited", 1, 60, 0, "met"),
    ("audited", 500, 61, 0, "missed: p95 > 60 ms"),
    ("dashboard", 1, 150, 0, "met"),
    ("dashboard", 500, 151, 0, "missed: p95 > 150 ms"),
    ("page", 1, 900, 0, "(no target)"),
])
def test_each_target_is_judged_against_hello(kind, rps, p95, errors, expected):
    m = Measurement("sqlite", 10_000, "x", "X", kind, figures(rps, p95, errors))
    assert verdict(m, 100 * m.rps / 1000) == expected


def test_the_report_compares_the_large_size_with_the_small_as_shares_of_hello():
    def block(calls: int, hello: float, page: float) -> list[Measurement]:
        return [Measurement("sqlite", calls, "hello", "hello", "hello", figures(hello, 1)),
                Measurement("sqlite", calls, "calls", "Call list", "list", figures(page, 10)),
                Measurement("sqlite", calls, "queue", "Queue", "list", None, "HTTP 403")]

    # Half the hello rate at 1M, and the page too: the same share, so no slowdown.
    text = render_report(block(10_000, 1000, 300) + block(1_000_000, 500, 150), [], {}, {
        "workers": 4, "threads": 2, "connections": 8, "duration": 10, "warmup": 3}, "bench/run.py",
        datetime(2026, 1, 1), [10_000, 1_000_000])
    assert "| SQLite | Call list | 30% | 30% | 1.00× |" in text
    assert "not measured: HTTP 403" in text
    assert text.startswith("# Benchmarks")


def test_the_dashboard_must_not_grow_and_workers_must_stay_small():
    def block(calls: int, hello: float, board: float) -> list[Measurement]:
        return [Measurement("sqlite", calls, "hello", "hello", "hello", figures(hello, 1)),
                Measurement("sqlite", calls, "dashboard", "Dashboard", "dashboard", figures(board, 100)),
                Measurement("sqlite", calls, "calls", "Call list", "list", figures(board, 10))]

    seeds = [{"database": "sqlite", "calls": 10_000, "rows": {"calls": 1}, "timings": {"total": 1, "calls": 1},
              "worker_rss_mb": 120.0},
             {"database": "sqlite", "calls": 1_000_000, "rows": {"calls": 1}, "timings": {"total": 1, "calls": 1},
              "worker_rss_mb": 151.0}]
    text = render_report(block(10_000, 1000, 100) + block(1_000_000, 1000, 70), seeds, {}, {
        "workers": 4, "threads": 2, "connections": 8, "duration": 10, "warmup": 3}, "bench/run.py",
        datetime(2026, 1, 1), [10_000, 1_000_000], notes="## Where the time went\n\nnotes kept by hand")
    assert "- SQLite, Dashboard: 1.43× slower at 1,000,000 calls than at 10,000 (at most 1.25×)" in text
    assert "| SQLite | Call list | 10% | 7% | 1.43× |" in text and "(no target; beyond 1.25×)" in text
    assert "| SQLite | 1,000,000 | 151 | missed: ≥ 150 MB |" in text and "| SQLite | 10,000 | 120 | met |" in text
    assert "a worker held 151 MB" in text
    assert text.rstrip().endswith("notes kept by hand")
