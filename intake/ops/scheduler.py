"""``flask jobs schedule``: the periodic jobs for a machine without systemd timers (the container).

The same jobs at the same facility times as deploy/systemd/intake-*.timer. Each job is started as a
child process (``flask --app intake ...``), so a crash or a leak in one run cannot touch the
scheduler, and each takes its database lock and records its run (intake/ops/jobs.py): running the
scheduler on two machines, or beside the timers, still runs each job once. A job missed while the
scheduler was stopped runs when it starts again (as ``Persistent=true`` does for the timers).
The child processes run this app's own flask commands: no shell, nothing taken from input.
"""

from __future__ import annotations

import signal
import subprocess  # nosec B404
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Scheduled:
    job: str  # the name the command's @periodic_job records
    command: tuple[str, ...]  # flask --app intake <command>
    at: time  # facility time
    weekday: int | None = None  # 0 = Monday; None = every day


SCHEDULE = (
    Scheduled("retention-purge", ("retention", "purge"), time(3, 30)),
    Scheduled("audit-verify", ("audit", "verify"), time(5, 0)),
    Scheduled("review-sample", ("review", "sample"), time(6, 15), weekday=0),
    Scheduled("records-digest", ("records", "digest"), time(7, 0)),
)


def next_time(entry: Scheduled, after: datetime, zone: ZoneInfo) -> datetime:
    """The first time strictly after ``after`` (aware) that ``entry`` is due, in UTC-aware form."""
    local = after.astimezone(zone)
    day = local.date()
    for offset in range(0, 9):
        candidate_day = day + timedelta(days=offset)
        if entry.weekday is not None and candidate_day.weekday() != entry.weekday:
            continue
        candidate = datetime.combine(candidate_day, entry.at, tzinfo=zone)
        if candidate > local:
            return candidate.astimezone(ZoneInfo("UTC"))
    raise AssertionError("unreachable: a week always has the day")


def previous_time(entry: Scheduled, before: datetime, zone: ZoneInfo) -> datetime:
    """The last time at or before ``before`` that ``entry`` was due."""
    local = before.astimezone(zone)
    for offset in range(0, 9):
        candidate_day = local.date() - timedelta(days=offset)
        if entry.weekday is not None and candidate_day.weekday() != entry.weekday:
            continue
        candidate = datetime.combine(candidate_day, entry.at, tzinfo=zone)
        if candidate <= local:
            return candidate.astimezone(ZoneInfo("UTC"))
    raise AssertionError("unreachable: a week always has the day")


def missed(last_successes: dict[str, datetime], now: datetime, zone: ZoneInfo) -> list[Scheduled]:
    """The jobs whose latest due time passed without a successful run since (to run at start)."""
    return [entry for entry in SCHEDULE
            if last_successes.get(entry.job) is None or last_successes[entry.job] < previous_time(entry, now, zone)]


def run_job(entry: Scheduled, echo) -> int:
    """Run one job as ``flask --app intake <command>`` and return its exit code."""
    echo(f"starting {entry.job}: flask {' '.join(entry.command)}")
    code = subprocess.call([sys.executable, "-m", "flask", "--app", "intake", *entry.command])  # nosec B603
    echo(f"{entry.job} ended with exit code {code}")
    return code


def serve(zone: ZoneInfo, last_successes: dict[str, datetime], now_fn, echo, stop: threading.Event,
          run=run_job) -> None:
    """Run missed jobs, then each job at its time, until ``stop`` is set."""
    for entry in missed(last_successes, now_fn(), zone):
        if stop.is_set():
            return
        run(entry, echo)
    while not stop.is_set():
        now = now_fn()
        upcoming = sorted(((next_time(entry, now, zone), entry) for entry in SCHEDULE), key=lambda pair: pair[0])
        when, entry = upcoming[0]
        echo(f"next: {entry.job} at {when.astimezone(zone):%Y-%m-%d %H:%M} facility time")
        if stop.wait(max((when - now).total_seconds(), 0)):
            return
        run(entry, echo)


def stop_on_sigterm(stop: threading.Event) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
