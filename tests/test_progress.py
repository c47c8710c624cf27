"""Long commands show progress (intake/ops/progress.py, rich) on a terminal and stay quiet off one;
``keys rotate`` works in committed batches, resumes, and names a wrong key list clearly."""

from __future__ import annotations

import base64
import io

import pytest
from rich.console import Console
from sqlalchemy import text

from intake.archive.importer import HEADER
from intake.extensions import db
from intake.ops import progress
from intake.security import keys
from intake.security.crypto import DecryptionError
from intake.users.models import Role
from intake.users.services import create_user
from tests.conftest import PASSWORD, make_app

OLD_KEY = base64.urlsafe_b64encode(b"\x11" * 32).decode()
NEW_KEY = base64.urlsafe_b64encode(b"\x22" * 32).decode()


@pytest.fixture()
def terminal(monkeypatch) -> io.StringIO:
    """What the bars draw, as if standard error were a terminal."""
    screen = io.StringIO()
    monkeypatch.setattr(progress, "console", lambda: Console(file=screen, force_terminal=True, width=120))
    return screen


def test_off_a_terminal_nothing_is_drawn(app, runner, tmp_path):
    path = tmp_path / "index.csv"
    path.write_text(",".join(HEADER) + "\nM1,Last,Pat,,1960-01-02,2015-01-01,2016-01-01,Box 1,Records,2040-01-01\n")
    result = runner.invoke(args=["archive", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "Importing" not in result.output and "1 added, 0 updated, 0 unchanged." in result.output


def test_the_archive_import_counts_rows(app, runner, tmp_path, terminal):
    path = tmp_path / "index.csv"
    path.write_text(",".join(HEADER) + "\n" + "".join(
        f"M{n},Last{n},Pat,,1960-01-02,2015-01-01,2016-01-01,Box 1,Records,2040-01-01\n" for n in range(25)))
    assert runner.invoke(args=["archive", "import", str(path)]).exit_code == 0
    drawn = terminal.getvalue()
    assert "Importing the archive index" in drawn and "25/25" in drawn
    assert "Last1" not in drawn  # counts, never what the rows hold


def test_backup_create_and_verify_show_their_steps(app, runner, tmp_path, terminal):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("flask backup is for SQLite")
    target = tmp_path / "b.backup"
    created = runner.invoke(args=["backup", "create", "--output", str(target)])
    assert created.exit_code == 0, created.output
    verified = runner.invoke(args=["backup", "verify", str(target)])
    assert verified.exit_code == 0, verified.output
    drawn = terminal.getvalue()
    for step in ("Copying the database", "Checking the copy", "Encrypting", "Decrypting and authenticating"):
        assert step in drawn, step


def test_the_retention_purge_shows_each_kind_it_purges(app, runner, terminal, monkeypatch):
    from intake.admin import retention_cli
    from intake.admin.models import DataKind

    def fake_purge(now, dry_run, batch_size, on_batch):
        for count in (500, 500, 120):
            on_batch(DataKind.CALL_TEXT, count)
        return []

    monkeypatch.setattr(retention_cli, "purge", fake_purge)
    assert runner.invoke(args=["retention", "purge"]).exit_code == 0
    drawn = terminal.getvalue()
    assert "Purging call_text" in drawn and "1120" in drawn


def rotation_world(app, tmp_path, people: int = 7):
    """``people`` accounts whose e-mail addresses are encrypted under the old key, and an app whose
    DATA_KEYS puts a new key first."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    old = make_app(url, tmp_path / "old", DATA_KEYS=f"old1:{OLD_KEY}")
    with old.app_context():
        for i in range(people):
            create_user(f"person{i}@example.org", Role.REQUESTER, PASSWORD)
        db.session.commit()
        db.engine.dispose()
    return make_app(url, tmp_path / "new", DATA_KEYS=f"new2:{NEW_KEY},old1:{OLD_KEY}")


def under(app, kid: str) -> int:
    with app.app_context():
        n = db.session.execute(text("SELECT count(*) FROM users WHERE email LIKE :p"), {"p": f"{kid}:%"}).scalar_one()
        db.session.remove()
        return n


def test_keys_rotate_commits_each_batch_and_resumes_after_an_interruption(app, tmp_path, monkeypatch, terminal):
    rotated = rotation_world(app, tmp_path)
    monkeypatch.setattr(keys, "BATCH", 3)
    ring = rotated.extensions["intake_keyring"]
    real_open, opened = ring.open, {"n": 0}

    def failing_open(value, aad):
        opened["n"] += 1
        if opened["n"] == 5:  # the second batch breaks half-way (a crash, a lost connection)
            raise DecryptionError("simulated failure (users|email)")
        return real_open(value, aad)

    monkeypatch.setattr(ring, "open", failing_open)
    first = rotated.test_cli_runner().invoke(args=["keys", "rotate"])
    assert first.exit_code == 1
    assert "3 value(s) re-encrypted before this are kept" in first.output
    assert under(rotated, "new2") == 3 and under(rotated, "old1") == 4  # the first batch stayed committed

    monkeypatch.setattr(ring, "open", real_open)
    second = rotated.test_cli_runner().invoke(args=["keys", "rotate"])
    assert second.exit_code == 0, second.output
    assert "users.email: 4 value(s) re-encrypted" in second.output
    assert under(rotated, "new2") == 7 and under(rotated, "old1") == 0
    assert "Re-encrypting users" in terminal.getvalue()


def test_a_key_list_without_the_old_key_is_a_clear_error(app, tmp_path):
    rotation_world(app, tmp_path, people=2)
    wrong = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "wrong", DATA_KEYS=f"new2:{NEW_KEY}")
    result = wrong.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 1
    assert "no key 'old1'" in result.output
    assert "DATA_KEYS must hold every key that values are still encrypted under, the new one first (now: new2)" \
        in result.output
    assert "person0@example.org" not in result.output
    assert under(wrong, "old1") == 2  # nothing changed


def test_a_wrong_key_under_a_known_id_is_a_clear_error(app, tmp_path):
    rotation_world(app, tmp_path, people=2)
    forged = base64.urlsafe_b64encode(b"\x33" * 32).decode()
    wrong = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "wrong",
                     DATA_KEYS=f"new2:{NEW_KEY},old1:{forged}")
    result = wrong.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 1
    assert "failed authentication" in result.output and "DATA_KEYS must hold every key" in result.output
