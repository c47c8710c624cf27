"""The container's entrypoint (deploy/docker-entrypoint.sh), run here as the image would run it,
against the local PostgreSQL and Redis (no Docker engine is needed): the app waits for the database,
migrates and serves with gunicorn; the worker and the scheduler wait for the migrated schema; a
database that never answers is a clear failure. Production settings, fresh secrets, a database of
the test's own (created and dropped). Needs PostgreSQL and Redis: skipped locally without them, a
failure in CI. ``make test-entrypoint`` runs this file alone (so does .ci/run).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import new_data_key
from tests.conftest import PG_BASE_URL, ROOT, WORKER, need_service, postgres_available, redis_prefix

sys.path.insert(0, str(ROOT / "scripts"))
from crash_harness import PostgresDatabase, Visitor, free_port  # noqa: E402

# Real processes against PostgreSQL and Redis: make test and make test-entrypoint run these, not make test-fast.
pytestmark = pytest.mark.slow

ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"
REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    import redis

    if not postgres_available(PG_BASE_URL):
        need_service("PostgreSQL", f"nothing answers at {PG_BASE_URL}")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError as exc:
        need_service("Redis", str(exc))
    db = PostgresDatabase(PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://", 1).split("?", 1)[0],
                          f"intake_entry_{WORKER}_{os.getpid()}")
    url = db.create()
    yield url.replace("postgresql+psycopg://", "postgresql://", 1)
    db.drop()


def environment(tmp: Path, database_url: str, **extra: str) -> dict[str, str]:
    """What the container's environment would hold (deploy/.env.example), with fresh secrets."""
    venv_bin = Path(sys.executable).parent
    env = {
        "PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": str(tmp), "LANG": "C.UTF-8",
        "INTAKE_CONFIG": "production", "INTAKE_INSTANCE_PATH": str(tmp / "instance"),
        "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "RATELIMIT_KEY_PREFIX": redis_prefix("entry"),
        "SECRET_KEY": secrets.token_urlsafe(48), "DATA_KEYS": "e1:" + new_data_key(), "BLIND_INDEX_KEY": new_data_key(),
        "AUDIT_KEYS": "a1:" + new_data_key(), "AUDIT_ANCHOR_PATH": str(tmp / "anchors.jsonl"),
        "PUBLIC_BASE_URL": "https://records.example.org", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": "1",
        "TRUSTED_PROXY_COUNT": "1", "GUNICORN_WORKERS": "1", "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        "WAIT_FOR_DATABASE_SECONDS": "20",
    }
    env.update(extra)
    return env


def start(role: str, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen([str(ENTRYPOINT), role, *args], cwd="/", env=env, stdout=out,  # noqa: S603
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> int:
    """SIGTERM, as docker stop sends; the process must end by itself."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError("did not stop on SIGTERM") from None


def wait_for(predicate, what: str, proc: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode} before {what}:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {seconds} s:\n{log.read_text()}")


def answers(port: int, path: str, status: int = 200) -> bool:
    try:
        return Visitor(port).send("GET", path)[0] == status
    except OSError:
        return False


def test_app_worker_and_scheduler_start_from_an_empty_database(database, tmp_path):
    port = free_port()
    env = environment(tmp_path, database, GUNICORN_BIND=f"127.0.0.1:{port}")

    # The worker first: the schema is not there yet, so it waits (and would give up after 20 s).
    worker_log = tmp_path / "worker.log"
    worker = start("worker", env, worker_log)
    app_log = tmp_path / "app.log"
    app = start("app", env, app_log)
    try:
        wait_for(lambda: answers(port, "/readyz"), "ready app (/readyz 200)", app, app_log)
        assert answers(port, "/healthz")
        assert "Running upgrade" in app_log.read_text()  # db upgrade ran before gunicorn
        wait_for(lambda: "Watching the outbox" in worker_log.read_text(), "watching worker", worker, worker_log)
        assert "at the migrations' head" in worker_log.read_text()

        scheduler_log = tmp_path / "scheduler.log"
        scheduler = start("scheduler", env, scheduler_log)
        wait_for(lambda: "next:" in scheduler_log.read_text(), "scheduler waiting for its next job",
                 scheduler, scheduler_log, seconds=180)
        text = scheduler_log.read_text()
        assert "Scheduler started" in text
        # Nothing had run yet, so it ran every job once at start; each recorded its run.
        for job in ("retention-purge", "audit-verify", "review-sample", "records-digest"):
            assert f"{job} ended with exit code 0" in text, text
        assert stop(scheduler) == 0
        assert "Scheduler stopped." in scheduler_log.read_text()
    finally:
        worker_code = stop(worker)
        app_code = stop(app)
    assert worker_code == 0, worker_log.read_text()
    assert app_code == 0, app_log.read_text()
    assert "Stopped after" in worker_log.read_text()

    # A second start of the app finds the schema at its head and migrates nothing.
    again = subprocess.run([str(ENTRYPOINT), "flask", "jobs", "list"], cwd="/", env=env,  # noqa: S603
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "records-digest" in again.stdout and "succeeded" in again.stdout


def test_a_database_that_never_answers_is_a_clear_failure(tmp_path):
    env = environment(tmp_path, "postgresql://intake:s3cret-pass@127.0.0.1:1/intake", WAIT_FOR_DATABASE_SECONDS="2")
    result = subprocess.run([str(ENTRYPOINT), "app"], cwd="/", env=env, capture_output=True,  # noqa: S603
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "Error: the database does not answer after 2 s" in result.stderr
    assert "s3cret-pass" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_the_worker_will_not_run_on_a_schema_that_was_never_migrated(tmp_path):
    if not postgres_available(PG_BASE_URL):
        need_service("PostgreSQL", f"nothing answers at {PG_BASE_URL}")
    empty = PostgresDatabase(PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://", 1).split("?", 1)[0],
                             f"intake_empty_{WORKER}_{os.getpid()}")
    url = empty.create().replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        env = environment(tmp_path, url, WAIT_FOR_DATABASE_SECONDS="2")
        result = subprocess.run([str(ENTRYPOINT), "worker"], cwd="/", env=env, capture_output=True,  # noqa: S603
                                text=True, timeout=60)
    finally:
        empty.drop()
    assert result.returncode == 1
    assert "answers, but its schema is not at the migrations' head (db upgrade has not run)" in result.stderr


def test_an_unknown_role_is_refused(tmp_path):
    result = subprocess.run([str(ENTRYPOINT), "shell"], cwd="/", env={"PATH": "/usr/bin:/bin"},  # noqa: S603
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 64 and "usage: docker-entrypoint.sh" in result.stderr
