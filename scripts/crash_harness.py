"""The machinery of the crash test (``scripts/crash_test.py``): a small HTTP client that keeps
cookies, and gunicorn in a process group of its own, started, health-checked, killed with
SIGKILL (master and workers at once) and stopped.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess  # nosec B404
import sys
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
HTTP_TIMEOUT = 15
BOOT_TIMEOUT = 60


# --- A small HTTP client -----------------------------------------------------------------------

@dataclass
class Visitor:
    """One signed-in person: a cookie jar and a fresh connection per request (gunicorn's sync
    workers close every connection anyway). Cookies are sent whatever their Secure flag says:
    the server is on 127.0.0.1, where a TLS-terminating proxy would stand in production."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def send(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
            body = None
            if form is not None:
                body = urlencode(form)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            for line in response.headers.get_all("Set-Cookie") or []:
                jar: SimpleCookie = SimpleCookie()
                jar.load(line)
                for name, morsel in jar.items():
                    if morsel["max-age"] == "0":
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return response.status, response.headers.get("Location", ""), text
        finally:
            conn.close()

    def csrf(self, path: str) -> str:
        status, _, text = self.send("GET", path)
        match = CSRF_RE.search(text)
        if status != 200 or not match:
            raise RuntimeError(f"no form on {path} (HTTP {status})")
        return match.group(1)


# --- The server --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def live_members(pgid: int) -> list[int]:
    """Processes of the group that are still running (zombies left to init do not count)."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            alive.append(int(entry))
    return alive


class Server:
    """gunicorn in a process group of its own, so one killpg reaches the master and every worker."""

    def __init__(self, env: dict[str, str], port: int, workers: int, log_path: Path) -> None:
        self.env, self.port, self.workers, self.log_path = env, port, workers, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            # A fixed argument list, no shell: this repository's own gunicorn.
            self.proc = subprocess.Popen(  # nosec B603
                [sys.executable, "-m", "gunicorn", "--workers", str(self.workers),
                 "--bind", f"127.0.0.1:{self.port}", "--timeout", "30",
                 # Its own control socket: not the shared one under ~/.gunicorn, which another
                 # gunicorn on this machine may be using.
                 "--control-socket", str(self.log_path.with_name("gunicorn.ctl")),
                 "intake:create_app()"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self) -> float:
        """Poll /readyz until it answers 200 (database, schema, catalogues); return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < BOOT_TIMEOUT:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if Visitor(self.port).send("GET", "/readyz")[0] == 200:
                    return time.monotonic() - started
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not become healthy in {BOOT_TIMEOUT} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the whole group at once, then wait until none of it is running."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the master leads its own group
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        deadline = time.monotonic() + 10
        while live_members(pgid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of group {pgid} survived SIGKILL: {live_members(pgid)}")
            time.sleep(0.01)

    def stop(self) -> None:
        """The graceful way out (SIGTERM: workers finish the request in hand), SIGKILL if it hangs."""
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
            self.proc = None
        except subprocess.TimeoutExpired:
            self.kill()


class PostgresDatabase:
    """A database of its own on the PostgreSQL server (the benchmark's, the multi-instance test's),
    dropped afterwards. ``name`` must come from the caller's code (a process id, a size), never from
    input: it is put into the statements as an identifier."""

    def __init__(self, admin_url: str, name: str) -> None:
        self.admin_url, self.name = admin_url, name

    def _run(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> str:
        """Create it afresh; returns its SQLAlchemy URL (psycopg 3)."""
        self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._run(f'CREATE DATABASE "{self.name}"')
        base = self.admin_url.split("?", 1)[0].rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{self.name}"

    def drop(self) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
