"""gunicorn settings for serving intake in production (``make serve``; docs/deploy.md).

gunicorn reads this file by itself when started from this folder (so ``make crash-test``, ``make
bench`` and tests/test_multi_instance.py use it too); options on its command line win over it.
Everything a deployment may change comes from the environment:

    GUNICORN_BIND        where to listen (default 127.0.0.1:8000; several: comma-separated).
                         Only the reverse proxy may reach it: TRUSTED_PROXY_COUNT makes the app
                         believe X-Forwarded-For, so a visitor reaching gunicorn directly could
                         pick their own address.
    GUNICORN_WORKERS     worker processes (default 2 x CPUs + 1, at most 12). Each handles one
                         request at a time; a sign-in hashes with 19 MiB of memory.
    GUNICORN_TIMEOUT     seconds a request may take before its worker is restarted (default 30).
    GUNICORN_ACCESS_LOG  unset: no access log (the default); "-": to standard output (the journal);
                         or a file. Lines never hold a query string (an address looked up on the
                         admin users page is one) nor the token of an e-mailed link: the paths
                         /reset/…, /register/verify/… and /invite/… are logged without it.

The app's own settings (INTAKE_CONFIG=production, DATABASE_URL, the keys …) are read by the app
from the same environment. Forwarded headers are the app's business (TRUSTED_PROXY_COUNT,
werkzeug's ProxyFix): gunicorn itself believes none, so there is one place that decides.
"""

from __future__ import annotations

import importlib.util
import os
import traceback
from pathlib import Path

from gunicorn.glogging import Logger

wsgi_app = "intake:create_app()"
proc_name = "intake"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use (containers, cpusets)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _env_int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise RuntimeError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


bind = [part.strip() for part in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",") if part.strip()]
workers = _env_int("GUNICORN_WORKERS", min(2 * _cpus() + 1, 12), 1, 64)
worker_class = "sync"
timeout = _env_int("GUNICORN_TIMEOUT", 30, 5, 600)
graceful_timeout = 30  # on SIGTERM, a worker finishes the request in hand for up to this long

# gunicorn believes no X-Forwarded-* header from any peer (its default trusts 127.0.0.1); the app
# does, for TRUSTED_PROXY_COUNT hops. (A Unix-socket peer is always trusted by gunicorn for the scheme.)
forwarded_allow_ips = ""

# The runtime control socket (gunicornc) is off: nothing here needs it, and its default path is
# shared by every gunicorn of the same user, so two instances on one host would fight over it.
control_socket_disable = True

errorlog = "-"
loglevel = "info"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# %(U)s is the path without its query string (%(r)s and %(q)s would carry it); %(h)s is the
# visitor's address once the app's ProxyFix has rewritten it.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


def _load_redaction():
    """intake/security/log_redaction.py, loaded by its path: importing it as part of the ``intake``
    package would import the whole app into the master (see ``on_starting``). It uses the standard
    library only."""
    path = Path(__file__).resolve().parent / "intake" / "security" / "log_redaction.py"
    spec = importlib.util.spec_from_file_location("intake_log_redaction_for_gunicorn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


log_redaction = _load_redaction()
_paths = log_redaction.RedactingFilter()  # for the path atom (%(U)s) itself


class RedactingLogger(Logger):
    """gunicorn's logger, with the secrets taken out of what an access-log line can hold, and the
    redacting filter (tokens, sensitive query values, control characters) on every handler of its
    error and access logs. Each worker's app puts its own copy, which also knows the app's routes,
    in its place (``log_redaction.install``)."""

    def setup(self, cfg):
        super().setup(cfg)
        log_filter = log_redaction.RedactingFilter()
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                log_redaction.attach(handler, log_filter)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = _paths.redact(atoms.get("U") or "")
        atoms.update(U=path, q="", f="-", r=f"{atoms.get('m')} {path} {atoms.get('H')}")
        # Headers and environment values (%({name}i)s, %({name}o)s, %({name}e)s) hold cookies, the
        # raw URI and its query string: a changed format gets "-" for them, never their value.
        return {name: value for name, value in atoms.items() if not name.startswith("{")}


logger_class = RedactingLogger


def _prepare_metrics_folder() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR (intake/ops/metrics.py): files left by a previous server would
    add a dead server's figures to this one's."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))


def child_exit(server, worker) -> None:
    """A worker ended: prometheus_client forgets its live gauges (its counters stay counted).
    prometheus_client only: the master never imports the app (see on_starting)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_starting(server) -> None:
    """Build the app once before any worker starts, so a refusal (missing or default production
    secrets, a bad setting) is one clear message ("Error: Refusing to start …", exit 1) instead of
    a traceback from every worker.

    The app is built in a forked child, never in the master: a master that had imported the app
    would hand its old code to the workers a reload (SIGHUP) starts after an upgrade.
    """
    if getattr(server.app, "app_uri", None) != wsgi_app:
        return  # another WSGI app served with these settings (the benchmark's bare "hello")
    _prepare_metrics_folder()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            problem = ""
            try:
                from intake import RefusedToStart, create_app

                try:
                    create_app()
                except RefusedToStart as exc:
                    problem = str(exc)
            except BaseException:  # anything at all: reported by the master
                problem = "The app could not be built:\n" + traceback.format_exc()
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(problem.encode("utf-8", "replace"))
        finally:
            os._exit(0)  # the child never goes on into the master's code (its loop, atexit, sockets)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        problem = pipe.read().decode("utf-8", "replace")
    os.waitpid(pid, 0)
    if problem:
        raise RuntimeError(problem)  # gunicorn prints "Error: <problem>" and exits with status 1
