"""Concurrent writers through a real HTTP server (SECURITY.md, "Reliability").

The app is served by werkzeug's threaded server on a socket of 127.0.0.1: one thread per
connection, each request with its own session and database connection, as under gunicorn's
threads. Every simulated person is an ``http.client`` connection of their own with their own
cookie, signed in through the real forms (password, then a TOTP code). The same tests run on
SQLite (a file in WAL mode, the default suite) and on PostgreSQL (``TEST_DATABASE_URL``).

- 16 operators × 200 calls at once: every answer a success, every acknowledged call in the
  database, the audit chain unbroken, nothing logged about a locked or unavailable database.
- Two admins saving one records request at once: one wins, the other gets a 409 with their text
  kept; the database holds exactly the winner's change, and the loser's resubmission lands.
  (The sequential stale-version cases are in tests/test_records_queue.py.)
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.client import HTTPConnection
from http.cookies import SimpleCookie
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import WSGIRequestHandler, make_server

from intake.audit.models import AuditEvent
from intake.audit.services import verify_chain
from intake.calls.models import Call
from intake.extensions import db
from intake.records.common import OBJECT_TYPE
from intake.records.models import RecordsRequest, RequestEvent, RequestStatus
from intake.records.timeline import describe
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, PASSWORD, totp_code

THREADS = 16
CALLS_PER_THREAD = 200
RACE_ROUNDS = 3
CALL_LOCATION_RE = re.compile(r"/calls/(\d+)/edit$")
CONFLICT = "Someone else changed this request while you were working on it"
# What the app logs when the database refuses or times out (errors.database_down), and SQLite's words.
TROUBLE = ("database is locked", "database unavailable", "OperationalError")


# --- A server and its visitors -----------------------------------------------------------------

class _QuietHandler(WSGIRequestHandler):
    """No access log: thousands of lines would bury the errors the tests look for."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture()
def server(app: Flask) -> Iterator[tuple[str, int]]:
    """Serve ``app`` on a free port of 127.0.0.1 (a thread per connection); yield (host, port)."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="concurrency-server", daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@dataclass
class Answer:
    status: int
    location: str
    text: str


@dataclass
class Visitor:
    """One person's browser: a keep-alive connection and a cookie jar; redirects are not followed
    (the redirect after a POST is the success answer, and its Location names what was made)."""

    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conn = HTTPConnection(self.host, self.port, timeout=60)

    def get(self, path: str) -> Answer:
        return self._send("GET", path)

    def post(self, path: str, form: dict[str, str]) -> Answer:
        return self._send("POST", path, urlencode(form))

    def _send(self, method: str, path: str, body: str | None = None) -> Answer:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for line in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return Answer(response.status, response.headers.get("Location", ""), text)

    def close(self) -> None:
        self.conn.close()


class _FormFields(HTMLParser):
    """The named inputs and textareas of a page (the last value wins for a repeated name)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "input" and named.get("name"):
            self.values[named["name"]] = named.get("value") or ""
        elif tag == "textarea" and named.get("name"):
            self._textarea = named["name"]
            self.values[self._textarea] = ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.values[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea is not None:
            # As a browser does: one newline right after <textarea> is not part of the value.
            value = self.values[self._textarea]
            self.values[self._textarea] = value[2:] if value.startswith("\r\n") else value.removeprefix("\n")
            self._textarea = None


def fields(html: str) -> dict[str, str]:
    parser = _FormFields()
    parser.feed(html)
    return parser.values


def signed_in(app: Flask, address: tuple[str, int], user: User) -> Visitor:
    """A visitor signed in as ``user`` through the real forms, second factor included."""
    visitor = Visitor(*address)
    page = fields(visitor.get("/login").text)
    answer = visitor.post("/login", {"email": user.email, "password": PASSWORD, "csrf_token": page["csrf_token"]})
    assert (answer.status, answer.location) == (302, "/login/mfa"), answer.text[:500]
    page = fields(visitor.get("/login/mfa").text)
    code = totp_code(SimpleNamespace(application=app), user.email)
    answer = visitor.post("/login/mfa", {"code": code, "csrf_token": page["csrf_token"]})
    assert answer.status == 302, answer.text[:500]
    return visitor


def run_together(count: int, work) -> list[BaseException]:
    """Run ``work(i)`` in ``count`` threads released at one barrier; return what they raised."""
    barrier = threading.Barrier(count)
    raised: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            raised.append(exc)

    threads = [threading.Thread(target=body, args=(i,), name=f"visitor-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a visitor thread hung"
    return raised


def trouble_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.ERROR or any(word in r.getMessage() for word in TROUBLE)]


# --- 16 writers × 200 calls --------------------------------------------------------------------

@pytest.mark.slow
def test_sixteen_operators_log_3200_calls_at_once_and_every_one_is_kept(app, server, make_user, caplog):
    """Each operator starts 200 calls as fast as the server answers (the start form's POST: it
    creates the call row and its audit event, and its redirect names the new call)."""
    caplog.set_level(logging.INFO)
    operators = [make_user(Role.OPERATOR) for _ in range(THREADS)]
    visitors = [signed_in(app, server, op) for op in operators]
    tokens = [fields(v.get("/calls/new").text)["csrf_token"] for v in visitors]
    answers: list[list[tuple[int, str]]] = [[] for _ in range(THREADS)]

    def write(i: int) -> None:
        form = {"csrf_token": tokens[i], "channel": "phone"}
        for _ in range(CALLS_PER_THREAD):
            answer = visitors[i].post("/calls/new", form)
            answers[i].append((answer.status, answer.location))

    raised = run_together(THREADS, write)
    for visitor in visitors:
        visitor.close()

    assert raised == []
    statuses = Counter(status for per in answers for status, _ in per)
    assert statuses == {302: THREADS * CALLS_PER_THREAD}, statuses  # no 5xx, no 4xx, nothing missing
    acknowledged: dict[int, set[int]] = {}
    for operator, per in zip(operators, answers, strict=True):
        ids = {int(CALL_LOCATION_RE.search(location).group(1)) for _, location in per}
        assert len(ids) == CALLS_PER_THREAD  # 200 distinct calls, none answered twice
        acknowledged[operator.id] = ids
    with app.app_context():
        stored: dict[int, set[int]] = {op.id: set() for op in operators}
        for call_id, operator_id in db.session.execute(
                select(Call.id, Call.operator_id).where(Call.operator_id.in_(list(stored)))):
            stored[operator_id].add(call_id)
        assert stored == acknowledged
        started = db.session.execute(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.action == "call.started")).scalar_one()
        assert started == THREADS * CALLS_PER_THREAD
        chain = verify_chain()  # 16 writers appending at once never forked or broke the chain
        assert chain.ok, chain
    assert trouble_in(caplog) == []


# --- Two admins, one request -------------------------------------------------------------------

def _timeline_bodies(app: Flask, ref: str) -> list[str]:
    with app.app_context():
        req_id = db.session.execute(select(RecordsRequest.id).where(RecordsRequest.reference == ref)).scalar_one()
        # Whole rows: the bodies are sealed per row and opened only when the ORM loads one.
        return [describe(e, "en").full or "" for e in db.session.execute(
            select(RequestEvent).where(RequestEvent.request_id == req_id)).scalars()]


def test_two_admins_saving_one_request_at_once_one_conflict_nothing_lost(app, server, make_user, make_request,
                                                                         caplog):
    """Both load the page (same version) and ask the requester a question at the same instant.
    Exactly one wins; the other gets a 409 whose page carries their text in the message form with
    the current version; sending it from there lands. Several rounds, so either may win."""
    caplog.set_level(logging.INFO)
    requester = make_user(Role.REQUESTER)
    admins = [make_user(FULL_ADMIN), make_user(FULL_ADMIN)]
    visitors = [signed_in(app, server, admin) for admin in admins]
    for round_no in range(RACE_ROUNDS):
        ref = make_request(requester)
        path = f"/queue/requests/{ref}"
        pages = [fields(v.get(path).text) for v in visitors]
        assert [p["move-awaiting_requester-version"] for p in pages] == ["1", "1"]
        texts = [f"Round {round_no}: admin {i + 1} asks for the second page of the ID." for i in range(2)]
        answers: list[Answer | None] = [None, None]

        def save(i: int, pages=pages, texts=texts, answers=answers, path=path) -> None:
            answers[i] = visitors[i].post(path + "/move", {
                "target": "awaiting_requester",
                "move-awaiting_requester-version": pages[i]["move-awaiting_requester-version"],
                "move-awaiting_requester-csrf_token": pages[i]["move-awaiting_requester-csrf_token"],
                "move-awaiting_requester-message": texts[i],
            })

        assert run_together(2, save) == []
        statuses = [a.status for a in answers]
        assert sorted(statuses) == [302, 409], statuses
        winner, loser = (0, 1) if statuses[0] == 302 else (1, 0)
        conflict_page = answers[loser].text
        assert CONFLICT in conflict_page

        # The database holds the winner's change and nothing of the loser's.
        with app.app_context():
            req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()
            assert (req.status, req.version) == (RequestStatus.AWAITING_REQUESTER, 2)
            moves = db.session.execute(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.object_type == OBJECT_TYPE, AuditEvent.object_id == str(req.id),
                AuditEvent.action == "request.transition")).scalar_one()
            assert moves == 1
        bodies = _timeline_bodies(app, ref)
        assert sum(texts[winner] in b for b in bodies) == 1
        assert not any(texts[loser] in b for b in bodies)

        # The loser's text is kept where it can still be sent, with the version now current.
        kept = fields(conflict_page)
        assert kept["message-body"] == texts[loser] and kept["message-version"] == "2"
        answer = visitors[loser].post(path + "/message", {
            "message-version": kept["message-version"], "message-csrf_token": kept["message-csrf_token"],
            "message-body": kept["message-body"]})
        assert answer.status == 302, answer.text[:500]
        bodies = _timeline_bodies(app, ref)
        assert sum(texts[winner] in b for b in bodies) == 1 and sum(texts[loser] in b for b in bodies) == 1
    for visitor in visitors:
        visitor.close()
    assert trouble_in(caplog) == []
