"""Forms that only add rows (a call started, a non-data call logged) read first and take SQLite's
write lock at their first write (intake/database.py, ``defers_write_lock``): while the session, the
token and the form are checked, another worker can write; the call and its audit event are written
all the same. Other forms hold the lock from their first statement, as before."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.calls import services, views_intake
from intake.calls.models import Call
from intake.database import DEFER_ATTRIBUTE
from intake.extensions import db
from intake.users.models import Role
from tests.conftest import csrf_token


def _database_file(app) -> str:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("sqlite:///"):
        pytest.skip("SQLite's write lock")
    return url.removeprefix("sqlite:///")


def _another_worker_can_write(path: str) -> bool:
    """Whether another connection gets the write lock at once (no wait: a held lock answers "locked")."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        conn.close()


@pytest.mark.parametrize(("path", "function", "form"), [
    ("/calls/new", "start_call", {"channel": "phone"}),
    ("/calls/new/non-data", "log_non_data_call", {"call_type": "hang_up", "channel": "phone"}),
])
def test_a_form_that_only_adds_rows_holds_no_lock_until_it_writes(app, client, login_as, monkeypatch, path,
                                                                  function, form):
    database = _database_file(app)
    login_as(Role.OPERATOR)
    token = csrf_token(client, "/calls/new")
    seen = []
    original = getattr(services, function)

    def spy(*args, **kwargs):
        seen.append(_another_worker_can_write(database))  # checked, not yet written: no lock held
        return original(*args, **kwargs)

    monkeypatch.setattr(views_intake, function, spy)
    with app.app_context():
        before = (db.session.execute(select(func.count()).select_from(Call)).scalar_one(),
                  db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())
    response = client.post(path, data={"csrf_token": token, **form})
    assert response.status_code == 302 and seen == [True]
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Call)).scalar_one() == before[0] + 1
        assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() > before[1]


def test_only_views_that_add_rows_are_marked(app):
    marked = sorted(endpoint for endpoint, view in app.view_functions.items() if getattr(view, DEFER_ATTRIBUTE, False))
    assert marked == ["calls_intake.log_non_data", "calls_intake.start"]
