"""Periodic jobs safe on several machines (intake/ops/jobs.py): a lock per job, a record per run,
the digest once a day however many timers start it, failures on the admin hub and in the digest."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import create_engine, select, text

from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.models import OutboxMessage, OutboxStatus
from intake.notify.services import queue_email
from intake.ops import scheduler
from intake.ops.jobs import STALE_AFTER, advisory_key, job_run
from intake.ops.models import JobRun, JobStatus
from intake.users.models import Role
from tests.conftest import ROOT

LA = ZoneInfo("America/Los_Angeles")


def runs(app, job: str | None = None) -> list[JobRun]:
    with app.app_context():
        query = select(JobRun).order_by(JobRun.id)
        if job:
            query = query.where(JobRun.job == job)
        found = db.session.execute(query).scalars().all()
        db.session.expunge_all()
        return found


def digests(app) -> list[OutboxMessage]:
    with app.app_context():
        found = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "records_digest")).scalars().all()
        db.session.expunge_all()
        return found


@pytest.fixture()
def staff(make_user):
    return {"clerk": make_user(Role.RECORDS_CLERK), "clerk2": make_user(Role.RECORDS_CLERK)}


def test_the_digest_runs_once_when_started_twice_at_the_same_moment(app, staff, capsys):
    """Two threads (two timers) start the digest at one instant: one sends, the other does nothing."""
    from intake.records.cli import digest_command

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def timer() -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                digest_command.callback.__wrapped__(always=True)  # inside with_appcontext: the decorated body
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=timer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(digests(app)) == 2  # one digest for each of the two admins, not four
    assert [r.status for r in runs(app, "records-digest")] == [JobStatus.SUCCEEDED]
    said = capsys.readouterr().err
    assert "records-digest is already running" in said or "records-digest already ran today" in said


def test_the_digest_runs_once_when_two_processes_start_it(app, staff):
    """The same with two `flask records digest` processes, as two machines' timers would."""
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
              "import os\n"
              "from intake import create_app\n"
              "app = create_app('testing', overrides={'SQLALCHEMY_DATABASE_URI': os.environ['DB']})\n"
              "result = app.test_cli_runner(mix_stderr=False).invoke(args=['records', 'digest', '--always'])\n"
              "print(result.output, result.stderr, sep='|'); sys.exit(result.exit_code)\n")
    script = script.replace("test_cli_runner(mix_stderr=False)", "test_cli_runner()")
    env = {"DB": app.config["SQLALCHEMY_DATABASE_URI"], "PATH": "/usr/bin:/bin",
           "INTAKE_INSTANCE_PATH": app.instance_path}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,  # noqa: S603
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert sum("queued 2 digests" in out for out in outputs) == 1, outputs
    assert len(digests(app)) == 2
    assert [r.status for r in runs(app, "records-digest")] == [JobStatus.SUCCEEDED]


def test_a_second_digest_the_same_day_does_nothing_and_the_next_day_runs(app, runner, staff):
    day = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)  # 08:00 in Los Angeles
    with time_machine.travel(day, tick=False):
        assert "queued 2 digests" in runner.invoke(args=["records", "digest", "--always"]).output
    with time_machine.travel(day + timedelta(hours=6), tick=False):
        again = runner.invoke(args=["records", "digest", "--always"])
        assert again.exit_code == 0
        assert "records-digest already ran today (at 08:00 facility time); nothing done." in again.output
    with time_machine.travel(day + timedelta(days=1), tick=False):
        assert "queued 2 digests" in runner.invoke(args=["records", "digest", "--always"]).output
    assert len(digests(app)) == 4
    assert [r.status for r in runs(app, "records-digest")] == [JobStatus.SUCCEEDED] * 2


def test_a_failed_run_is_recorded_with_its_exit_code_and_shown_to_admins(app, runner, client, login_as):
    with app.app_context():
        with job_run("audit-verify"):  # a failing body: SystemExit(1), as a broken chain exits
            pass
    with app.app_context(), pytest.raises(SystemExit):
        with job_run("audit-verify"):
            sys.exit(1)
    with app.app_context(), pytest.raises(ZeroDivisionError):
        with job_run("review-sample"):
            raise ZeroDivisionError("a message that could hold data")
    found = runs(app)
    assert [(r.job, r.status, r.detail) for r in found] == [
        ("audit-verify", JobStatus.SUCCEEDED, None), ("audit-verify", JobStatus.FAILED, "exit 1"),
        ("review-sample", JobStatus.FAILED, "ZeroDivisionError")]
    assert all(r.finished_at and r.host and r.pid for r in found)

    listed = runner.invoke(args=["jobs", "list"]).output
    assert "review-sample" in listed and "ZeroDivisionError" in listed and "could hold data" not in listed
    login_as(Role.ADMIN)
    hub = client.get("/admin/").get_data(as_text=True)
    assert "Needs attention" in hub and "review-sample" in hub and "exit 1" in hub


def test_failed_emails_and_runs_go_to_the_admins_in_the_digest(app, runner, staff, make_user):
    admin = make_user(Role.ADMIN)  # works no queue: the failures reach them all the same
    both = make_user([Role.RECORDS_CLERK, Role.ADMIN])
    with app.app_context():
        message = queue_email("someone@example.org", "verify_email", "Confirm your address", "secret link")
        message.status = OutboxStatus.FAILED
        message.attempts = 8
        message.last_error = "recipient refused: SMTP 550 5.1.1"
        db.session.commit()
    with app.app_context(), pytest.raises(RuntimeError):
        with job_run("retention-purge"):
            raise RuntimeError
    result = runner.invoke(args=["records", "digest"])  # nothing due: it goes out for the failures alone
    assert result.exit_code == 0, result.output
    sent = {m.recipient: m.body for m in digests(app)}
    assert set(sent) == {admin.email, both.email}  # nothing due: the clerks who are not admins get nothing
    for body in sent.values():
        assert "Needs attention (last 7 days):" in body
        assert "1 e-mail(s) could not be delivered" in body
        assert "job retention-purge failed" in body and "RuntimeError" in body
        assert "someone@example.org" not in body and "secret link" not in body


def test_a_run_in_progress_elsewhere_makes_the_second_do_nothing(app, runner):
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "postgresql":
            holder = create_engine(app.config["SQLALCHEMY_DATABASE_URI"]).connect()
            holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": advisory_key("audit-verify")})
        else:
            holder = None
            db.session.add(JobRun(job="audit-verify", host="other-machine", pid=1))
            db.session.commit()
    try:
        result = runner.invoke(args=["audit", "verify"])
        assert result.exit_code == 0
        assert "audit-verify is already running" in result.output
        assert "Audit trail intact" not in result.output
    finally:
        if holder is not None:
            holder.close()


def test_a_run_whose_process_died_is_marked_abandoned_by_the_next(app, runner):
    with app.app_context():
        long_ago = utcnow() - (STALE_AFTER + timedelta(minutes=1))
        db.session.add(JobRun(job="audit-verify", host="crashed", pid=1, started_at=long_ago))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "Audit trail intact" in result.output
    assert [(r.host, r.status) for r in runs(app)] == [("crashed", JobStatus.ABANDONED),
                                                      (runs(app)[1].host, JobStatus.SUCCEEDED)]


def test_a_dry_run_of_the_purge_takes_no_lock_and_leaves_no_record(app, runner):
    assert runner.invoke(args=["retention", "purge", "--dry-run"]).exit_code == 0
    assert runs(app) == []
    assert runner.invoke(args=["retention", "purge"]).exit_code == 0
    assert [r.job for r in runs(app)] == ["retention-purge"]


def test_advisory_keys_are_stable_and_distinct():
    assert advisory_key("records-digest") == advisory_key("records-digest")
    keys = {advisory_key(entry.job) for entry in scheduler.SCHEDULE}
    assert len(keys) == len(scheduler.SCHEDULE)
    assert all(-(2**63) <= key < 2**63 for key in keys)


# --- the container's scheduler ------------------------------------------------------------------

def test_the_schedule_matches_the_systemd_timers():
    folder = ROOT / "deploy" / "systemd"
    timers = {path.stem.removeprefix("intake-"): path.read_text() for path in folder.glob("*.timer")}
    short = {"records-digest": "digest", "retention-purge": "retention", "review-sample": "review",
             "audit-verify": "audit"}
    for entry in scheduler.SCHEDULE:
        timer = timers[short[entry.job]]
        day = "Mon " if entry.weekday == 0 else ""
        assert f"OnCalendar={day}*-*-* {entry.at:%H:%M}:00 America/Los_Angeles" in timer, entry.job


def test_next_and_previous_times_follow_the_facility_clock():
    daily = scheduler.Scheduled("x", ("x",), datetime(2000, 1, 1, 7, 0).time())
    weekly = scheduler.Scheduled("y", ("y",), datetime(2000, 1, 1, 6, 15).time(), weekday=0)
    before = datetime(2026, 3, 20, 13, 0, tzinfo=UTC)  # Friday 06:00 in Los Angeles (PDT, UTC-7)
    assert scheduler.next_time(daily, before, LA) == datetime(2026, 3, 20, 14, 0, tzinfo=UTC)
    assert scheduler.next_time(daily, datetime(2026, 3, 20, 14, 0, tzinfo=UTC), LA) == \
        datetime(2026, 3, 21, 14, 0, tzinfo=UTC)
    assert scheduler.next_time(weekly, before, LA) == datetime(2026, 3, 23, 13, 15, tzinfo=UTC)  # Monday
    assert scheduler.previous_time(weekly, before, LA) == datetime(2026, 3, 16, 13, 15, tzinfo=UTC)
    # Across the change to daylight time (8 March 2026): 07:00 local is 15:00 UTC, then 14:00 UTC.
    assert scheduler.next_time(daily, datetime(2026, 3, 7, 16, 0, tzinfo=UTC), LA) == \
        datetime(2026, 3, 8, 14, 0, tzinfo=UTC)


def test_the_scheduler_runs_missed_jobs_then_each_at_its_time():
    started: list[str] = []
    stop = threading.Event()
    clock = {"now": datetime(2026, 3, 20, 13, 0, tzinfo=UTC)}  # Friday 06:00 facility time

    def run(entry, echo):
        started.append(entry.job)
        if len(started) >= 6:
            stop.set()
        return 0

    class FastEvent:
        """Sleeping moves the clock on instead."""

        def is_set(self):
            return stop.is_set()

        def wait(self, seconds):
            clock["now"] += timedelta(seconds=seconds)
            return stop.is_set()

    recent = {"retention-purge": datetime(2026, 3, 20, 10, 31, tzinfo=UTC),  # ran at 03:31 today
              "audit-verify": datetime(2026, 3, 19, 12, 0, tzinfo=UTC),  # yesterday: missed today's 05:00
              "review-sample": datetime(2026, 3, 16, 13, 16, tzinfo=UTC)}  # this Monday's: fine
    scheduler.serve(LA, recent, lambda: clock["now"], lambda _line: None, FastEvent(), run=run)
    # Missed at start: the audit check (05:00 today) and the digest (never ran); then the day's order.
    assert started[:2] == ["audit-verify", "records-digest"]
    assert started[2:] == ["records-digest", "retention-purge", "audit-verify", "records-digest"]
