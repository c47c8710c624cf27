"""Crash safety (SECURITY.md, "Reliability"): kill -9 the server while writes are in flight, again
and again, then check that every write the server acknowledged is in the database and that
SQLite says the file is sound.

    make crash-test                 # or: .venv/bin/python scripts/crash_test.py [--kills 20] [--writers 8]

What it does, in a temporary folder it deletes afterwards (kept, and named, when the run fails):
1. a fresh SQLite database (``flask db upgrade``) and one operator per writer, with an
   authenticator enrolled; fresh random secrets in the environment;
2. gunicorn with the production configuration (``INTAKE_CONFIG=production``, sync workers as in
   the README's deployment line). Production does not refuse SQLite (only ``security-check``
   lists it). Its session cookie is ``__Host-`` and Secure; a browser would send it over HTTPS
   only, this script's own small client sends it to 127.0.0.1 over plain HTTP, so no setting is
   weakened for the test;
3. the writers sign in through the real forms (password and TOTP code) and start calls without
   pause (``POST /calls/new``: one call row and its audit event in one transaction; the redirect's
   Location names the new call, which is the acknowledgement the script writes down);
4. ``--kills`` times: after a random number of acknowledged writes (10 to 40) and a few
   milliseconds more, SIGKILL to gunicorn's whole process group
   (master and workers at once, mid-transaction), restart, wait for ``/readyz``, go on;
5. a graceful stop, then the checks: every acknowledged call is present (same id, same operator;
   an id acknowledged twice would mean a lost row whose id was handed out again),
   ``PRAGMA integrity_check`` is ``ok``, and the audit chain verifies.

It prints the counts and exits 1 if any acknowledged write is missing or a check fails. Ctrl-C
(or SIGTERM) stops it cleanly: the server's process group is killed on every way out. The HTTP
client and the handling of gunicorn's process group are in ``crash_harness.py`` next to this file.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import os
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess  # nosec B404
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from crash_harness import HTTP_TIMEOUT, ROOT, Server, Visitor, free_port

PASSWORD = secrets.token_urlsafe(24)  # fresh per run: the accounts live only in the temporary database
CALL_LOCATION_RE = re.compile(r"/calls/(\d+)/edit$")
STALL_SECONDS = 60


# --- Setup -------------------------------------------------------------------------------------

def environment(workdir: Path) -> dict[str, str]:
    """Production configuration with fresh secrets, a database of its own and no debug."""
    sys.path.insert(0, str(ROOT))  # run as scripts/crash_test.py: the repository root holds config.py
    from config import new_data_key  # local: importable only once the root is on the path

    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_DEBUG", "DEBUG", "REDIS_URL", "FLASK_APP")}
    env.update({
        "INTAKE_CONFIG": "production",
        "INTAKE_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": f"sqlite:///{workdir / 'intake.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATA_KEYS": "crash1:" + new_data_key(),
        "BLIND_INDEX_KEY": new_data_key(),
        "AUDIT_KEYS": "crashaudit1:" + new_data_key(),
        # Production settings on purpose, but on a SQLite file: the refusal to start is lifted for that alone.
        "INTAKE_ALLOW_INSECURE": "DATABASE_URL",
    })
    return env


def prepare_database(env: dict[str, str], writers: int) -> list[tuple[str, str, int]]:
    """``flask db upgrade``, then one operator per writer with an authenticator enrolled.
    Returns (email, TOTP secret, user id) for each."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "intake", "db", "upgrade"],  # nosec B603
                   cwd=ROOT, env=env, check=True, capture_output=True)
    os.environ.update(env)  # the app reads its configuration from the environment
    import pyotp

    from intake import create_app
    from intake.db_types import utcnow
    from intake.extensions import db
    from intake.users.models import Role
    from intake.users.services import create_user

    app = create_app()
    people = []
    with app.app_context():
        for n in range(writers):
            user = create_user(f"crash-operator{n + 1}@example.org", Role.OPERATOR, PASSWORD,
                               display_name="Crash Operator")
            user.mfa_secret = pyotp.random_base32()
            user.mfa_enrolled_at = utcnow()
            db.session.flush()
            people.append((user.email, user.mfa_secret, user.id))
        db.session.commit()
        db.engine.dispose()
    return people


def sign_in(port: int, email: str, totp_secret: str) -> tuple[Visitor, str]:
    """Sign in through the forms; return the visitor and the start form's CSRF token."""
    import pyotp

    visitor = Visitor(port)
    status, location, _ = visitor.send("POST", "/login", {"email": email, "password": PASSWORD,
                                                          "csrf_token": visitor.csrf("/login")})
    if (status, location) != (302, "/login/mfa"):
        raise RuntimeError(f"sign-in of {email} failed at the password step (HTTP {status})")
    status, _, _ = visitor.send("POST", "/login/mfa", {"code": pyotp.TOTP(totp_secret).now(),
                                                       "csrf_token": visitor.csrf("/login/mfa")})
    if status != 302:
        raise RuntimeError(f"sign-in of {email} failed at the code step (HTTP {status})")
    return visitor, visitor.csrf("/calls/new")


# --- The load ----------------------------------------------------------------------------------

@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter = field(default_factory=Counter)
    acknowledged: list[tuple[int, int]] = field(default_factory=list)  # (call id, operator id)

    def add(self, outcome: str, ack: tuple[int, int] | None = None) -> None:
        with self.lock:
            self.counts["attempted"] += 1
            self.counts[outcome] += 1
            if ack is not None:
                self.acknowledged.append(ack)


def write_calls(visitor: Visitor, token: str, operator_id: int, tally: Tally, up: threading.Event,
                stop: threading.Event) -> None:
    """Start calls as fast as the server answers, while it is up; write down each acknowledgement."""
    form = {"csrf_token": token, "channel": "phone"}
    while not stop.is_set():
        if not up.wait(timeout=0.2):
            continue
        try:
            status, location, _ = visitor.send("POST", "/calls/new", form)
        except (OSError, http.client.HTTPException):
            tally.add("no answer")  # cut off by a kill: it may or may not have been committed
            time.sleep(0.01)
            continue
        match = CALL_LOCATION_RE.search(location)
        if status == 302 and match:
            tally.add("acknowledged", (int(match.group(1)), operator_id))
        else:
            tally.add(f"HTTP {status}")


def load_until(tally: Tally, rng: random.Random) -> None:
    """Let a random number of writes be acknowledged (so every run has writes between kills,
    however busy the machine), then a random few milliseconds more: the kill lands mid-request."""
    target = tally.counts["acknowledged"] + rng.randint(10, 40)
    deadline = time.monotonic() + STALL_SECONDS
    while tally.counts["acknowledged"] < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no write was acknowledged for {STALL_SECONDS} s")
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.03))


# --- The checks --------------------------------------------------------------------------------

@dataclass
class Findings:
    present: int
    missing: int
    duplicates: int
    unanswered_committed: int
    integrity: str
    chain: str


def check(db_path: Path, acknowledged: list[tuple[int, int]], operator_ids: set[int]) -> Findings:
    """Compare the acknowledgements with the database, then ask SQLite and the audit chain."""
    conn = sqlite3.connect(db_path)
    try:
        integrity = "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
        rows = dict(conn.execute("SELECT id, operator_id FROM calls"))
    finally:
        conn.close()
    ids = Counter(call_id for call_id, _ in acknowledged)
    duplicates = sum(n - 1 for n in ids.values() if n > 1)
    present = sum(1 for call_id, operator_id in set(acknowledged) if rows.get(call_id) == operator_id)
    ours = {call_id for call_id, operator_id in rows.items() if operator_id in operator_ids}

    from intake import create_app
    from intake.audit.services import verify_chain
    from intake.extensions import db

    app = create_app()
    with app.app_context():
        report = verify_chain()
        chain = f"ok ({report.checked} events)" if report.ok else f"BROKEN at {report.broken_at}: {report.reason}"
        db.engine.dispose()
    return Findings(present=present, missing=len(acknowledged) - present, duplicates=duplicates,
                    unanswered_committed=len(ours - set(ids)), integrity=integrity, chain=chain)


# --- Main --------------------------------------------------------------------------------------

def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the server


def run(args: argparse.Namespace, seed: int, env: dict[str, str], server: Server, workdir: Path) -> bool:
    """Set up, write under kills, check, print the counts; True when nothing was lost."""
    started = time.monotonic()
    # Picks the moments to kill, nothing secret; the seed is printed so a run can be repeated.
    rng = random.Random(seed)  # nosec B311
    tally, up, stop = Tally(), threading.Event(), threading.Event()
    people = prepare_database(env, args.writers)
    server.start()
    server.wait_healthy()
    threads = []
    for email, totp_secret, user_id in people:
        visitor, token = sign_in(server.port, email, totp_secret)
        threads.append(threading.Thread(target=write_calls, args=(visitor, token, user_id, tally, up, stop),
                                        name=f"writer-{user_id}", daemon=True))
    restarts: list[float] = []
    try:
        up.set()
        for thread in threads:
            thread.start()
        for kill in range(1, args.kills + 1):
            load_until(tally, rng)
            up.clear()
            server.kill()
            server.start()
            restarts.append(server.wait_healthy())
            up.set()
            print(f"\rkill {kill}/{args.kills}: acknowledged so far {tally.counts['acknowledged']}", end="",
                  flush=True)
        load_until(tally, rng)  # a last stretch of load on the restarted server
    finally:
        stop.set()
        up.set()  # writers waiting for the server see the stop (on an interruption the caller kills it)
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT + 5)
    print()
    server.stop()
    found = check(workdir / "intake.sqlite3", tally.acknowledged, {p[2] for p in people})
    with (workdir / "acknowledged.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([("call_id", "operator_id"), *tally.acknowledged])
    counts = tally.counts
    restart = f"median {sorted(restarts)[len(restarts) // 2]:.2f}, max {max(restarts):.2f}" if restarts else "-"
    print(f"Crash test: gunicorn ({args.workers} sync workers, production configuration), SQLite in WAL mode, "
          f"{args.writers} writers, seed {seed}")
    for label, value in (
        ("kills (SIGKILL to master and workers)", len(restarts)),
        ("restart to healthy, seconds", restart),
        ("writes attempted", counts["attempted"]),
        ("acknowledged (302 naming the call)", counts["acknowledged"]),
        ("present in the database", found.present),
        ("missing", found.missing),
        ("ids acknowledged twice", found.duplicates),
        ("no answer (cut off by a kill)", f"{counts['no answer']} (committed anyway: {found.unanswered_committed})"),
        ("other answers", {k: v for k, v in counts.items() if k.startswith("HTTP ")} or "none"),
        ("PRAGMA integrity_check", found.integrity),
        ("audit chain", found.chain),
        ("seconds", f"{time.monotonic() - started:.1f}"),
    ):
        print(f"  {label + ':':<40}{value}")
    return (found.missing == 0 and found.duplicates == 0 and found.integrity == "ok"
            and found.chain.startswith("ok") and counts["acknowledged"] > 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--writers", type=int, default=8, help="writer threads, one operator each (at most 10: "
                                                                  "the sign-in rate limit of each worker)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--seed", type=int, default=None, help="for the random kill moments")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder even when all is well")
    args = parser.parse_args(argv)
    if not 1 <= args.writers <= 10 or args.kills < 0 or args.workers < 1:
        parser.error("--writers must be 1 to 10, --kills 0 or more, --workers 1 or more")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    # Ctrl-C must stop the run even when it was started in the background (SIGINT ignored then).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    workdir = Path(tempfile.mkdtemp(prefix="intake-crash-"))
    env = environment(workdir)
    server = Server(env, free_port(), args.workers, workdir / "gunicorn.log")
    keep = args.keep
    try:
        if run(args, seed, env, server, workdir):
            print("PASS")
            return 0
        keep = True
        print(f"FAIL: the database, the acknowledgements and the server log are kept in {workdir}")
        return 1
    except (KeyboardInterrupt, SystemExit):
        print("\ninterrupted: the server is stopped and the temporary folder removed", file=sys.stderr)
        return 130
    except Exception:
        keep = True
        print(f"\nerror: the server log and the database are kept in {workdir}", file=sys.stderr)
        raise
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        server.kill()  # on every way out: no gunicorn is left behind
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
