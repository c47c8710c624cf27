"""Where one page's time goes (``make profile``): N requests of a benchmark page through Flask's test
client, in this process, under cProfile, with the production configuration on a database seeded by
``bench/seed.py``; prints the shares of the usual suspects (rendering, forms, translations, queries,
the signed-in user, audit writes) and the top of the profile by cumulative and by own time.

    make profile PAGE=calls N=300
    .venv/bin/python bench/profile_page.py --page dashboard --calls 1000000 --requests 50
    .venv/bin/python bench/profile_page.py --list

(Not named profile.py: that would hide the standard library's ``profile``, which cProfile imports.)

The seeded database is kept between runs (``--cache``, default ``$TMPDIR/intake-profile``: one SQLite
file per size, with the random keys it was sealed with, mode 0600), so a second profile of the same
size starts at once; ``--fresh`` seeds again. ``--database postgresql`` profiles against a fresh
PostgreSQL database instead (seeded each time, dropped afterwards). The database is always upgraded
first (``flask db upgrade``). No figure here is a target: the benchmark (``make bench``) measures
pages under load; this shows which part of a page to work on, and what a change did to its share.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import secrets
import subprocess  # nosec B404
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from bench.run import PAGES, REQUESTS_PER_CALL, Page  # noqa: E402

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
BASE_URL = "https://intake.test"  # https: the production session cookie is Secure and __Host- prefixed

# The shares printed first: (label, path fragment, function name). Each is the function's cumulative
# time (its callees included) over the whole of the N requests; they overlap (rendering includes forms).
GROUPS = (
    ("whole request (WSGI)", "flask/app.py", "wsgi_app"),
    ("view function", "flask/app.py", "dispatch_request"),
    ("render_template", "flask/templating.py", "render_template"),
    ("WTForms: building forms", "wtforms/form.py", "__call__"),
    ("WTForms: rendering fields", "wtforms/fields/core.py", "__call__"),
    ("WTForms: validate", "wtforms/form.py", "validate"),
    ("gettext (Flask-Babel)", "flask_babel/__init__.py", "gettext"),
    ("templates' _() (intake/translating.py)", "intake/translating.py", "template_gettext"),
    ("get_translations (Flask-Babel)", "flask_babel/__init__.py", "get_translations"),
    ("get_locale (Flask-Babel)", "flask_babel/__init__.py", "get_locale"),
    ("SQL: Session.execute", "sqlalchemy/orm/session.py", "execute"),
    ("SQL: Session.scalar(s)", "sqlalchemy/orm/session.py", "scalars"),
    ("SQL: commit", "sqlalchemy/orm/session.py", "commit"),
    ("SQL: DBAPI execute", "sqlalchemy/engine/default.py", "do_execute"),
    ("signed-in user (load_user)", "intake/security/sessions.py", "load_user"),
    ("session timeouts", "intake/security/sessions.py", "check_timeouts"),
    ("session cookie open/save", "flask/sessions.py", "open_session"),
    ("permission check", "intake/permissions.py", "enforce_declared_policy"),
    ("audit record()", "intake/audit/services.py", "record"),
    ("url_for", "flask/helpers.py", "url_for"),
    ("decrypt (AES-GCM)", "intake/security/crypto.py", "open"),
    ("the menu", "intake/navigation.py", "main_menu"),
)


def page_by_key(key: str) -> Page:
    for page in PAGES:
        if page.key == key:
            return page
    raise SystemExit(f"unknown page {key!r}; one of: {', '.join(p.key for p in PAGES)}")


# --- The database --------------------------------------------------------------------------------

def _secrets() -> dict[str, str]:
    from config import new_data_key

    return {"SECRET_KEY": secrets.token_urlsafe(48), "DATA_KEYS": "prof1:" + new_data_key(),
            "BLIND_INDEX_KEY": new_data_key(), "AUDIT_KEYS": "profaudit1:" + new_data_key()}


def _write_private(path: Path, data: Any) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)


def environment(database_url: str, keys: dict[str, str], instance: Path) -> dict[str, str]:
    """Production settings, as ``bench/run.py`` serves them (SQLite allowed for the benchmark alone)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_DEBUG", "DEBUG", "FLASK_APP", "REDIS_URL")}
    env.update(keys)
    env.update({"INTAKE_CONFIG": "production", "INTAKE_INSTANCE_PATH": str(instance), "DATABASE_URL": database_url,
                "LOG_LEVEL": "ERROR"})
    if database_url.startswith("sqlite"):
        env["INTAKE_ALLOW_INSECURE"] = "DATABASE_URL"
    return env


def _upgrade(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "intake", "db", "upgrade"],  # nosec B603
                   cwd=ROOT, env=env, check=True, capture_output=True)


def _seed(env: dict[str, str], calls: int, out: Path) -> dict[str, Any]:
    print(f"seeding {calls:,} calls (once per size; kept for the next profile) ...", flush=True)
    done = subprocess.run(  # nosec B603
        [sys.executable, str(ROOT / "bench" / "seed.py"), "--calls", str(calls),
         "--requests", str(int(calls * REQUESTS_PER_CALL)), "--out", str(out)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    print("  " + done.stdout.strip(), flush=True)
    return json.loads(out.read_text())


def sqlite_database(cache: Path, calls: int, fresh: bool) -> tuple[dict[str, str], dict[str, Any]]:
    """The kept SQLite database of this size (seeded on first use): its settings and seed facts."""
    folder = cache / f"sqlite-{calls}"
    facts_path, keys_path = folder / "seed.json", folder / "keys.json"
    if fresh and folder.exists():
        for child in folder.rglob("*"):
            if child.is_file():
                child.unlink()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'bench.sqlite3'}"
    if facts_path.exists() and keys_path.exists():
        env = environment(url, json.loads(keys_path.read_text()), folder / "instance")
        _upgrade(env)
        return env, json.loads(facts_path.read_text())
    keys = _secrets()
    env = environment(url, keys, folder / "instance")
    _upgrade(env)
    facts = _seed(env, calls, facts_path)
    _write_private(keys_path, keys)
    return env, facts


# --- Signing in ----------------------------------------------------------------------------------

def _csrf(client: Any, path: str) -> str:
    response = client.get(path, base_url=BASE_URL)
    match = CSRF_RE.search(response.get_data(as_text=True))
    if response.status_code != 200 or not match:
        raise RuntimeError(f"no form on {path} (HTTP {response.status_code})")
    return match.group(1)


def _totp(app: Any, user_id: int, secret: str) -> str:
    """A code for a time step newer than the last one this account used (profiles follow each other)."""
    import pyotp
    from sqlalchemy import select

    from intake.extensions import db
    from intake.users.models import User

    with app.app_context():
        last = db.session.execute(select(User.mfa_last_step).where(User.id == user_id)).scalar_one()
        db.session.remove()
    totp = pyotp.TOTP(secret)
    for _ in range(3):
        current = int(time.time() // totp.interval)
        for step in (current - 1, current, current + 1):
            if last is None or step > last:
                return totp.generate_otp(step)
        time.sleep(totp.interval - time.time() % totp.interval + 0.1)
    raise RuntimeError("no usable TOTP step")


def sign_in(app: Any, facts: dict[str, Any], who: str) -> Any:
    """A test client signed in through the real forms as the page's person (staff with a TOTP code)."""
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": "127.0.0.1"})
    accounts = facts["accounts"]
    email, staff = (accounts["requester"]["email"], None) if who == "requester" \
        else (accounts["staff"][f"{who}1"]["email"], accounts["staff"][f"{who}1"])
    response = client.post("/login", base_url=BASE_URL, data={
        "email": email, "password": accounts["password"], "csrf_token": _csrf(client, "/login")})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in failed at the password step (HTTP {response.status_code})")
    if staff is not None:
        for _attempt in range(3):  # a profile run just before may have spent this window's steps
            response = client.post("/login/mfa", base_url=BASE_URL, data={
                "code": _totp(app, staff["id"], staff["totp"]), "csrf_token": _csrf(client, "/login/mfa")})
            if response.status_code == 302:
                break
            time.sleep(30)
        else:
            raise RuntimeError(f"sign-in failed at the code step (HTTP {response.status_code})")
    return client


# --- Profiling -----------------------------------------------------------------------------------

def group_shares(stats: pstats.Stats, total: float) -> list[tuple[str, float, int]]:
    """(label, share of the total, calls) for each of GROUPS found in the profile."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    out = []
    for label, fragment, name in GROUPS:
        seconds, calls = 0.0, 0
        for (filename, _line, function), (_cc, nc, _tt, ct, _callers) in raw.items():
            if function == name and filename.replace("\\", "/").endswith(fragment):
                seconds += ct
                calls += nc
        if calls:
            out.append((label, 100 * seconds / total if total else 0.0, calls))
    return out


_PACKAGES = ("sqlalchemy", "jinja2", "werkzeug", "flask_login", "flask_babel", "flask_wtf", "flask_limiter",
             "flask", "wtforms", "markupsafe", "babel", "cryptography", "intake")


def package_shares(stats: pstats.Stats, total: float) -> list[tuple[str, float]]:
    """Own time (callees excluded) by where the code lives: a library, our package, a template, or C."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    seconds: dict[str, float] = {}
    for (filename, _line, _function), (_cc, _nc, tt, _ct, _callers) in raw.items():
        path = filename.replace("\\", "/")
        if path.endswith((".html", ".txt")):
            where = "templates (Jinja's compiled code)"
        elif path == "~":
            where = "built-ins (C)"
        else:
            where = next((name for name in _PACKAGES if f"/{name}/" in path), "other Python")
        seconds[where] = seconds.get(where, 0.0) + tt
    return sorted(((name, 100 * s / total if total else 0.0) for name, s in seconds.items()), key=lambda x: -x[1])


def profile(page: Page, facts: dict[str, Any], env: dict[str, str], requests: int, top: int,
            warmup: int, callers: str = "", only: str = "", callees: str = "") -> None:
    os.environ.update(env)
    from intake import create_app

    app = create_app()
    client = sign_in(app, facts, page.who)
    path = page.path.format(before=facts["deep"]["before"], reference=facts["request"]["reference"])

    def once() -> None:
        if page.method == "POST":
            token = csrf_tokens.pop() if csrf_tokens else _csrf(client, path)
            response = client.post(path, base_url=BASE_URL, data={"csrf_token": token, "channel": "phone"})
            ok = response.status_code == 302 and response.headers.get("Location", "").endswith("/edit")
        else:
            response = client.get(path, base_url=BASE_URL)
            ok = response.status_code == 200
        if not ok:
            raise RuntimeError(f"{page.method} {path}: HTTP {response.status_code} "
                               f"{response.headers.get('Location', '')}")

    # The POST needs a CSRF token; one form's token serves every POST of this session.
    csrf_tokens: list[str] = []
    if page.method == "POST":
        csrf_tokens = [_csrf(client, path)] * (2 * requests + warmup)
    for _ in range(warmup):
        once()
    # First without the profiler (its overhead more than doubles the time of small functions), in five
    # batches: the least CPU time of a batch is what the shared machine disturbs least.
    batch = max(1, requests // 5)
    cpu_times, wall_times = [], []
    for _ in range(5):
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(batch):
            once()
        wall_times.append((time.perf_counter() - started) / batch)
        cpu_times.append((time.process_time() - cpu_started) / batch)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(requests):
        once()
    profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n{page.label}: {page.method} {page.path} as {page.who}, {requests} requests")
    # CPU time is what the shared machine disturbs least (wall time waits for the other processes' turns).
    print(f"without the profiler: {1000 * min(cpu_times):.2f} ms of CPU a request (least of five batches of {batch}; "
          f"median {1000 * sorted(cpu_times)[2]:.2f}; wall {1000 * min(wall_times):.2f}), one request at a time; "
          f"under the profiler {1000 * wall / requests:.2f} ms wall\n")
    print(f"{'share of the profiled time':<40} {'%':>6} {'calls/request':>14}")
    for label, share, calls in group_shares(stats, total):
        print(f"{label:<40} {share:6.1f} {calls / requests:14.1f}")
    print(f"\n{'own time by where the code lives':<40} {'%':>6}")
    for label, share in package_shares(stats, total):
        print(f"{label:<40} {share:6.1f}")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        chosen = pstats.Stats(profiler, stream=out)
        if only:
            chosen.sort_stats(order).print_stats(only, top)
        else:
            chosen.strip_dirs().sort_stats(order).print_stats(top)
        text = out.getvalue()
        print(f"\n--- top {top} by {order} ---")
        print(text[text.find("   ncalls"):].rstrip())
    if callees:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_callees(callees)
        print(f"\n--- what {callees} calls ---\n" + out.getvalue().strip())
    if callers:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_callers(callers)
        print(f"\n--- who calls {callers} ---\n" + out.getvalue().strip())
    with app.app_context():
        from intake.extensions import db

        db.session.remove()
        db.engine.dispose()


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--page", default="calls", help="a page of bench/run.py (--list names them)")
    parser.add_argument("--path", default="", help="profile this GET path instead (as --who)")
    parser.add_argument("--who", default="operator", choices=("operator", "admin", "requester"))
    parser.add_argument("--requests", "-n", type=int, default=200, help="requests profiled (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=10, help="requests before profiling (caches, templates)")
    parser.add_argument("--calls", type=int, default=10_000, help="calls seeded (requests: one per five calls)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "intake-profile",
                        help="where seeded SQLite databases are kept between profiles")
    parser.add_argument("--fresh", action="store_true", help="seed the SQLite database again")
    parser.add_argument("--top", type=int, default=30, help="lines of each profile table")
    parser.add_argument("--only", default="", help="limit the two tables to functions whose file matches this regex")
    parser.add_argument("--callees", default="", help="also print what the functions matching this regex call")
    parser.add_argument("--callers", default="", help="also print who calls the functions matching this regex")
    parser.add_argument("--list", action="store_true", help="name the pages and stop")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.calls < 100:
        parser.error("at least 1 request and 100 calls")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        for page in PAGES:
            print(f"{page.key:<15} {page.method:<5} {page.path:<32} as {page.who}: {page.label}")
        return 0
    page = Page("path", args.path, args.who, args.path, "page") if args.path else page_by_key(args.page)
    if args.database == "sqlite":
        env, facts = sqlite_database(args.cache, args.calls, args.fresh)
        profile(page, facts, env, args.requests, args.top, args.warmup, args.callers, args.only, args.callees)
        return 0
    from crash_harness import PostgresDatabase

    pg = PostgresDatabase(args.pg_url, f"intake_profile_{os.getpid()}")
    url = pg.create()
    try:
        with tempfile.TemporaryDirectory(prefix="intake-profile-") as folder:
            env = environment(url, _secrets(), Path(folder) / "instance")
            _upgrade(env)
            facts = _seed(env, args.calls, Path(folder) / "seed.json")
            profile(page, facts, env, args.requests, args.top, args.warmup, args.callers, args.only, args.callees)
    finally:
        pg.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
