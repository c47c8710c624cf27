"""PostgreSQL going away and coming back, through a TCP proxy the test can stop and restart.

While the proxy is down, ``/readyz`` answers 503 and a page that needs the database the friendly
503 page (no traceback). When it is back on the same port, the *same* app object answers 200 again:
``pool_pre_ping`` (Config.SQLALCHEMY_ENGINE_OPTIONS) throws away the pooled connections that died
and opens new ones. Runs against TEST_DATABASE_URL or the local default; in CI (CI=true) a missing
PostgreSQL is a failure.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from intake.extensions import db
from intake.users.models import Role
from intake.users.services import create_user

from .conftest import (
    PASSWORD,
    PG_BASE_URL,
    csrf_token,
    make_app,
    need_service,
    postgres_available,
    postgres_schema_url,
    recreate_schema,
)

pytestmark = pytest.mark.outage


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the PostgreSQL server; ``stop`` drops every connection and
    refuses new ones (as a server that went away), ``start`` listens again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._stopping = threading.Event()
        self._accepter: threading.Thread | None = None
        self.accepted = 0

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)  # accept() wakes up to notice stop()
        self._stopping.clear()
        self._accepter = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepter.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._accepter is not None:
            self._accepter.join()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self._stopping.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)  # accepted sockets inherit the listener's timeout
                try:
                    server = socket.create_connection(self.upstream)
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._sockets += [client, server]
                    self.accepted += 1
                for a, b in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture()
def proxied_app(tmp_path: Path) -> Iterator[tuple]:
    """An app whose only way to PostgreSQL is the proxy, on a migrated schema of its own."""
    if not postgres_available(PG_BASE_URL):
        need_service("PostgreSQL", f"nothing answers at {PG_BASE_URL}")
    schema = f"down_{os.getpid()}_{secrets.token_hex(4)}"
    recreate_schema(PG_BASE_URL, schema)
    direct = make_app(postgres_schema_url(PG_BASE_URL, schema), tmp_path / "direct")
    with direct.app_context():
        upgrade()
        create_user("staff-down@example.org", Role.ADMIN, PASSWORD, verified=True, display_name="Staff Down")
        db.session.commit()
        db.engine.dispose()
    url = make_url(PG_BASE_URL)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = make_app(postgres_schema_url(through_proxy, schema), tmp_path / "instance")
    try:
        yield app, proxy
    finally:
        proxy.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        recreate_schema(PG_BASE_URL, schema, drop_only=True)


def sign_in_attempt(client, token: str):
    """A page that needs the database: the sign-in POST looks the account up."""
    return client.post("/login", data={"email": "staff-down@example.org", "password": "not the password at all",
                                       "csrf_token": token})


def test_postgresql_down_gives_503_and_the_same_app_recovers(proxied_app):
    app, proxy = proxied_app
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    token = csrf_token(client)
    up = sign_in_attempt(client, token)
    assert up.status_code == 200 and "temporarily unavailable" not in up.get_data(as_text=True)
    assert proxy.accepted >= 1  # the app really goes through the proxy

    proxy.stop()
    health = client.get("/readyz")
    assert health.status_code == 503
    assert health.get_json()["status"] == "unavailable" and health.get_json()["checks"]["database"] == "down"
    page = sign_in_attempt(client, token)
    body = page.get_data(as_text=True)
    assert page.status_code == 503
    assert "temporarily unavailable" in body
    for leak in ("Traceback", "OperationalError", "psycopg", "127.0.0.1", str(proxy.port)):
        assert leak not in body, leak
    # Still down: a second try is a 503 again, not a hang or a 500.
    assert client.get("/readyz").status_code == 503

    proxy.start()  # the database is back, on the same address
    assert client.get("/readyz").status_code == 200
    again = sign_in_attempt(client, csrf_token(client))
    assert again.status_code == 200 and "temporarily unavailable" not in again.get_data(as_text=True)


def test_a_blip_between_two_requests_costs_no_request(proxied_app):
    """The server restarts while the app is idle: the pooled connections are dead, and the next
    request must not be the one to find out (pool_pre_ping checks them out and replaces them)."""
    app, proxy = proxied_app
    client = app.test_client()
    token = csrf_token(client)
    assert sign_in_attempt(client, token).status_code == 200
    proxy.stop()
    proxy.start()
    assert client.get("/readyz").status_code == 200
    assert sign_in_attempt(client, token).status_code == 200
