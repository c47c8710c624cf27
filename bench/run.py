"""The benchmark (``make bench``): the app's busiest pages under load, as a share of a bare Flask
"hello" measured on the same gunicorn settings in the same run, at 10 thousand and 1 million
calls, on SQLite and on PostgreSQL.

    make bench                               # or: .venv/bin/python bench/run.py [options]
    make bench BENCH_ARGS="--quick --sqlite-only"

For each database and size, in a temporary folder deleted afterwards:
1. a fresh database (``flask db upgrade``), seeded by ``bench/seed.py`` (N calls, N/5 records
   requests, over three years; it prints seconds and rows per second);
2. gunicorn with the production configuration and fresh random secrets (``INTAKE_CONFIG=production``,
   gunicorn.conf.py's settings and worker count (2 x CPUs + 1), its own control socket), rate-limit
   counters in a Redis database of its own (flushed before and after), and ``bench/hello.py``
   on a second gunicorn with the same settings;
3. an operator, an admin (password and TOTP code, through the real forms) and a requester sign
   in once; each page is fetched once and must answer as expected, then ``wrk`` (8 connections,
   2 threads) warms it up and measures it; "hello" is measured before and after the pages, and
   the baseline is the mean of the two;
4. the table: requests per second, p50/p95/p99 latency, % of hello, and each target met or missed.

Targets (issue 22): list pages at least 10% of hello with p95 at most 25 ms; the audited request
pages p95 at most 60 ms; the dashboard p95 at most 150 ms and at 1M calls within 1.25x of itself
at 10k (compared as % of hello, so the machine's noise between the two runs cancels out); starting
a call at least 10% of hello; every worker under 150 MB resident after the run (read from /proc).
``--pages`` measures some pages only (a quick look at one change); ``bench/profiles.md`` (the
profiling notes, ``make profile``) is copied into the report. Results go to ``docs/benchmarks.md``
with the machine and the command, and are printed. The machine may be shared: the load average
at the start and end of the run is printed too. Exit status 0 even when a target is missed
(a benchmark reports; it does not gate), 1 when a page could not be measured at all.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import runpy
import secrets
import shutil
import signal
import sqlite3
import subprocess  # nosec B404
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # the crash test's HTTP client and gunicorn handling
sys.path.insert(0, str(ROOT))

from crash_harness import PostgresDatabase, Server, Visitor, free_port, live_members  # noqa: E402

from bench.report import Measurement, render_report  # noqa: E402

WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
SIZES = (10_000, 1_000_000)
REQUESTS_PER_CALL = 0.2  # 200,000 requests beside 1,000,000 calls


@dataclass(frozen=True)
class Page:
    key: str
    label: str
    who: str  # operator, admin or requester
    path: str  # may hold {before} and {reference}
    kind: str  # list, audited, dashboard or post (bench/report.py judges each kind by its target)
    method: str = "GET"


PAGES = (
    Page("calls", "Call list, first page", "operator", "/calls/", "list"),
    Page("calls_deep", "Call list, 90% deep (?before=)", "operator", "/calls/?before={before}", "list"),
    Page("queue", "Records queue (default tab)", "admin", "/queue/requests/", "list"),
    Page("status", "Request status, requester (audited)", "requester", "/my/requests/{reference}", "audited"),
    Page("staff_request", "Request page, staff (audited)", "admin", "/queue/requests/{reference}", "audited"),
    Page("dashboard", "Dashboard, last 30 days", "admin", "/admin/dashboard", "dashboard"),
    Page("post_call", "Start a call (POST /calls/new)", "operator", "/calls/new", "post", "POST"),
)


class AppServer(Server):
    """The crash test's gunicorn handling, for any WSGI app (the real one or hello)."""

    def __init__(self, env: dict[str, str], port: int, workers: int, log_path: Path, app: str) -> None:
        super().__init__(env, port, workers, log_path)
        self.app = app

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            # A fixed argument list, no shell: this repository's own gunicorn.
            self.proc = subprocess.Popen(  # nosec B603
                [sys.executable, "-m", "gunicorn", "--workers", str(self.workers),
                 "--bind", f"127.0.0.1:{self.port}", "--timeout", "60",
                 "--control-socket", str(self.log_path.with_suffix(".ctl")), self.app],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, path: str = "/readyz") -> float:
        if path == "/readyz":
            return super().wait_healthy()
        started = time.monotonic()
        while time.monotonic() - started < 60:
            try:
                if Visitor(self.port).send("GET", path)[0] == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.app} did not answer on {path}; see {self.log_path}")


# --- Setup -------------------------------------------------------------------------------------

def environment(workdir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """Production configuration, fresh secrets, this run's database and Redis database."""
    from config import new_data_key

    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_DEBUG", "DEBUG", "FLASK_APP")}
    env.update({
        "INTAKE_CONFIG": "production", "INTAKE_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48), "DATA_KEYS": "bench1:" + new_data_key(),
        "BLIND_INDEX_KEY": new_data_key(), "AUDIT_KEYS": "benchaudit1:" + new_data_key(),
    })
    if database_url.startswith("sqlite"):
        # The SQLite runs use production settings on purpose; the refusal to start is lifted for that alone.
        env["INTAKE_ALLOW_INSECURE"] = "DATABASE_URL"
    return env


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def seed(env: dict[str, str], calls: int, workdir: Path) -> dict[str, Any]:
    """``flask db upgrade``, then the seeder; returns what it wrote (credentials, cursor, timings)."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "intake", "db", "upgrade"],  # nosec B603
                   cwd=ROOT, env=env, check=True, capture_output=True)
    out = workdir / f"seed-{calls}.json"
    done = subprocess.run(  # nosec B603
        [sys.executable, str(ROOT / "bench" / "seed.py"), "--calls", str(calls),
         "--requests", str(int(calls * REQUESTS_PER_CALL)), "--out", str(out)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    print("  " + done.stdout.strip(), flush=True)
    return json.loads(out.read_text())


def sign_in(port: int, email: str, password: str, totp: str | None) -> Visitor:
    """Through the forms, as a person would: password, then the TOTP code for staff."""
    import pyotp

    visitor = Visitor(port)
    status, location, _ = visitor.send("POST", "/login", {"email": email, "password": password,
                                                          "csrf_token": visitor.csrf("/login")})
    if status != 302:
        raise RuntimeError(f"sign-in failed at the password step (HTTP {status})")
    if totp is not None:
        status, _, _ = visitor.send("POST", "/login/mfa", {"code": pyotp.TOTP(totp).now(),
                                                           "csrf_token": visitor.csrf("/login/mfa")})
        if status != 302:
            raise RuntimeError(f"sign-in failed at the code step (HTTP {status})")
    return visitor


# --- Measuring ---------------------------------------------------------------------------------

@dataclass
class Settings:
    duration: int
    warmup: int
    connections: int
    threads: int
    workers: int


def wrk(url: str, seconds: int, settings: Settings, cookie: str = "", method: str = "GET",
        body: str = "") -> dict[str, Any]:
    """One wrk run; the Lua script's done() hook prints the figures as JSON."""
    env = dict(os.environ, BENCH_COOKIE=cookie, BENCH_METHOD=method, BENCH_BODY=body)
    # wrk from PATH (make bench installs it), fixed arguments, no shell.
    done = subprocess.run(  # nosec B603 B607
        ["wrk", f"-t{settings.threads}", f"-c{settings.connections}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(WRK_SCRIPT), url], env=env, capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(f"wrk printed no figures: {done.stdout[-500:]} {done.stderr[-500:]}")


def measure(url: str, settings: Settings, **kwargs: str) -> dict[str, Any]:
    """Warm up (workers' first requests, caches, the database's pages), then measure."""
    if settings.warmup:
        wrk(url, settings.warmup, settings, **kwargs)
    return wrk(url, settings.duration, settings, **kwargs)


def check_page(visitor: Visitor, page: Page, path: str, body: dict[str, str] | None) -> str | None:
    """One request by hand before the load: the page must answer as a person would see it (not a
    redirect to the sign-in page, not an error). Returns a problem, or None."""
    status, location, _ = visitor.send(page.method, path, body)
    if page.method == "POST":
        return None if status == 302 and "/calls/" in location and location.endswith("/edit") \
            else f"HTTP {status} to {location or '-'}"
    return None if status == 200 else f"HTTP {status} {location}"


def run_block(database: str, calls: int, env: dict[str, str], workdir: Path, settings: Settings,
              redis_url: str, pages: list[str] | None = None) -> tuple[list[Measurement], dict[str, Any]]:
    """Seed, serve, sign in, measure every page and hello; returns the measurements and seed facts."""
    print(f"\n== {database}, {calls:,} calls ==", flush=True)
    seeded = seed(env, calls, workdir)
    flush_redis(redis_url)
    app = AppServer(env, free_port(), settings.workers, workdir / f"app-{database}-{calls}.log", "intake:create_app()")
    hello = AppServer(env, free_port(), settings.workers, workdir / f"hello-{database}-{calls}.log", "bench.hello:app")
    results: list[Measurement] = []
    rss: float | None = None
    try:
        app.start()
        hello.start()
        app.wait_healthy()
        hello.wait_healthy("/")
        accounts = seeded["accounts"]
        password = accounts["password"]
        staff = accounts["staff"]
        people = {
            "operator": sign_in(app.port, staff["operator1"]["email"], password, staff["operator1"]["totp"]),
            "admin": sign_in(app.port, staff["admin1"]["email"], password, staff["admin1"]["totp"]),
            "requester": sign_in(app.port, accounts["requester"]["email"], password, None),
        }
        hello_url = f"http://127.0.0.1:{hello.port}/"
        before = measure(hello_url, settings)
        print(f"  hello: {before['requests'] / before['seconds']:,.0f} req/s", flush=True)
        for page in PAGES:
            if pages is not None and page.key not in pages:
                continue
            visitor = people[page.who]
            path = page.path.format(before=seeded["deep"]["before"], reference=seeded["request"]["reference"])
            form = None
            if page.method == "POST":
                form = {"csrf_token": visitor.csrf(path), "channel": "phone"}
            problem = check_page(visitor, page, path, form)
            if problem:
                print(f"  {page.label}: NOT MEASURED ({problem})", flush=True)
                results.append(Measurement(database, calls, page.key, page.label, page.kind, None, problem))
                continue
            cookie = "; ".join(f"{k}={v}" for k, v in visitor.cookies.items())
            figures = measure(f"http://127.0.0.1:{app.port}{path}", settings, cookie=cookie, method=page.method,
                              body=urlencode(form) if form else "")
            results.append(Measurement(database, calls, page.key, page.label, page.kind, figures))
            print(f"  {page.label}: {figures['requests'] / figures['seconds']:,.0f} req/s, "
                  f"p95 {figures['p95_ms']:.1f} ms, errors {figures['errors']}", flush=True)
        after = measure(hello_url, settings)
        print(f"  hello again: {after['requests'] / after['seconds']:,.0f} req/s", flush=True)
        rss = workers_rss_mb(app)
        print(f"  largest worker: {rss:.0f} MB resident" if rss else "  workers' memory not read", flush=True)
        results.append(Measurement(database, calls, "hello", "hello (before)", "hello", before))
        results.append(Measurement(database, calls, "hello_after", "hello (after)", "hello", after))
    finally:
        app.stop()
        hello.stop()
        flush_redis(redis_url)
    return results, {"database": database, "calls": calls, "rows": seeded["rows"], "timings": seeded["timings"],
                     "deep": seeded["deep"]["depth"], "worker_rss_mb": rss}


def workers_rss_mb(server: AppServer) -> float | None:
    """The largest resident size (VmRSS, MB) of the server's workers: its process group but the master."""
    if server.proc is None:
        return None
    sizes = []
    for pid in live_members(server.proc.pid):
        if pid == server.proc.pid:
            continue
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        except (OSError, ValueError, IndexError):
            continue
    return max(sizes) if sizes else None


# --- The machine -------------------------------------------------------------------------------

def machine(pg_admin_url: str | None) -> dict[str, str]:
    """What the figures were measured on."""
    facts = {"nproc": str(os.cpu_count()), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        facts["ram"] = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    facts["kernel"] = platform.release()
    if pg_admin_url:
        import psycopg

        with psycopg.connect(pg_admin_url) as conn:
            facts["postgresql"] = str(conn.execute("SHOW server_version").fetchone()[0])
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)  # nosec B603 B607
    facts["wrk"] = (wrk_version.stdout or wrk_version.stderr).split("[")[0].strip()
    import gunicorn

    facts["gunicorn"] = gunicorn.__version__
    return facts


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# --- Main --------------------------------------------------------------------------------------

def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the servers


def _deployed_workers() -> int:
    """The worker count gunicorn.conf.py gives on this machine (what ``make serve`` runs)."""
    return int(runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"])


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per page, 1 s warm-up (a smoke run)")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--pg-only", action="store_true")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="calls to seed, comma-separated")
    parser.add_argument("--pages", default="", help="only these pages, comma-separated keys (default all): "
                        + ", ".join(page.key for page in PAGES))
    parser.add_argument("--duration", type=int, default=10, help="seconds of measurement per page")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per page")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=_deployed_workers(),
                        help="gunicorn sync workers (default: gunicorn.conf.py's, as deployed)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a PostgreSQL superuser URL; the benchmark creates and drops databases of its own")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
                        help="a Redis database only the benchmark uses (it is flushed)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, seed facts)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3, 1
    if args.sqlite_only and args.pg_only:
        parser.error("--sqlite-only and --pg-only exclude each other")
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes whole numbers separated by commas")
    if not args.sizes or min(args.sizes) < 100 or args.duration < 1 or args.connections < 1:
        parser.error("sizes must be at least 100 calls, duration and connections at least 1")
    known = {page.key for page in PAGES}
    args.pages = [key.strip() for key in args.pages.split(",") if key.strip()] or [page.key for page in PAGES]
    if set(args.pages) - known:
        parser.error(f"unknown pages: {', '.join(sorted(set(args.pages) - known))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (make bench installs it: apt-get install -y wrk)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    databases = ["sqlite"] if args.sqlite_only else ["postgresql"] if args.pg_only else ["sqlite", "postgresql"]
    settings = Settings(args.duration, args.warmup, args.connections, args.threads, args.workers)
    command = " ".join(["bench/run.py", *(argv if argv is not None else sys.argv[1:])]).strip()
    started_at = datetime.now(UTC)
    facts = machine(args.pg_url if "postgresql" in databases else None)
    facts["load_start"] = load_average()
    workdir = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    measurements: list[Measurement] = []
    seeds: list[dict[str, Any]] = []
    failed = False
    try:
        flush_redis(args.redis_url)
        for database in databases:
            for calls in args.sizes:
                pg = PostgresDatabase(args.pg_url, f"intake_bench_{os.getpid()}_{calls}") \
                    if database == "postgresql" else None
                url = pg.create() if pg else f"sqlite:///{workdir / f'bench-{calls}.sqlite3'}"
                try:
                    env = environment(workdir, url, args.redis_url)
                    block, seeded = run_block(database, calls, env, workdir, settings, args.redis_url, args.pages)
                finally:
                    if pg:
                        pg.drop()
                    for leftover in workdir.glob(f"bench-{calls}.sqlite3*"):
                        leftover.unlink()
                measurements += block
                seeds.append(seeded)
        facts["load_end"] = load_average()
        notes_path = ROOT / "bench" / "profiles.md"
        notes = notes_path.read_text(encoding="utf-8") if notes_path.exists() else ""
        text = render_report(measurements, seeds, facts, settings.__dict__, command, started_at, args.sizes, notes)
        print("\n" + text)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"written to {args.output}")
        failed = any(m.figures is None for m in measurements)
        return 1 if failed else 0
    except (KeyboardInterrupt, SystemExit):
        print("\ninterrupted: servers stopped, temporary databases dropped", file=sys.stderr)
        return 130
    except Exception:
        args.keep = True
        print(f"\nerror: the logs are kept in {workdir}", file=sys.stderr)
        raise
    finally:
        if args.keep or failed:
            print(f"logs and seed facts kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
