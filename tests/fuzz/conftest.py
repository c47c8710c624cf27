"""The fuzz's world: one migrated database seeded with one object of each kind, one signed-in
client per role, and the counters ``make fuzz`` prints at the end (forms fuzzed, requests made,
5xx answers, seconds, seed).

Hypothesis and function-scoped fixtures do not mix (every example would rebuild the app), so the
world is module-scoped and its clients are reused for every example.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.db_types import utcnow
from intake.extensions import db
from intake.users.models import Role, User
from intake.users.services import create_user
from tests.conftest import (
    FULL_ADMIN,
    PASSWORD,
    PG_URL,
    csrf_token,
    fresh_database,
    login,
    make_app,
    truncate_postgres,
    valid_submission,
)

# Examples per form (and per page's query string). The default keeps the suite quick; ``make fuzz``
# raises it to 10,000 (FUZZ_EXAMPLES=... lowers it for a shorter deep run).
EXAMPLES = int(os.environ.get("INTAKE_FUZZ_EXAMPLES", "20"))
# The admin goes last: its forms may disable or demote the accounts the other roles sign in with.
ROLES = ("anonymous", "mfa", "mfa_setup", "requester", "operator", "admin")
# Roles half-way through signing in (password given, second factor not yet): they see one page.
PENDING = {"mfa": "/login/mfa", "mfa_setup": "/mfa/setup"}


@dataclass
class Stats:
    """What the fuzz did, for the summary line and for the failure message."""

    requests: int = 0
    sign_ins: int = 0
    forms: set[tuple] = field(default_factory=set)
    query_pages: set[tuple] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    ran: bool = False


STATS = Stats()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """The figures SECURITY.md asks the fuzz to print."""
    if not STATS.ran:
        return
    seed = config.getoption("hypothesis_seed", None)
    tr = terminalreporter
    tr.section("fuzz")
    tr.write_line(f"examples per form: {EXAMPLES}; hypothesis seed: {seed if seed is not None else 'random'}")
    tr.write_line(f"forms fuzzed: {len(STATS.forms)}; pages whose query string was fuzzed: {len(STATS.query_pages)}")
    tr.write_line(f"requests made: {STATS.requests}; sign-ins: {STATS.sign_ins}; "
                  f"answers: {dict(sorted(STATS.statuses.items()))}")
    tr.write_line(f"5xx answers: {len(STATS.server_errors)}; seconds: {time.perf_counter() - STATS.started:.1f}")
    for line in STATS.server_errors[:20]:
        tr.write_line(f"  5xx: {line}")
    if config.option.verbose > 0:  # -v lists what was fuzzed, to see a new form is in
        for role, method, endpoint, *_ in sorted(STATS.forms, key=str):
            tr.write_line(f"  form: {method} {endpoint} as {role}")


@dataclass
class World:
    app: Flask
    users: dict[str, User]  # role -> the account its client signs in as
    clients: dict[str, FlaskClient]
    # Extra pages to fuzz per role (paths), beyond the URL map and what the crawl finds.
    extra_pages: dict[str, list[str]]
    fuzzed_posts: set[str] = field(default_factory=set)  # POST endpoints some form reached
    visited: dict[str, set[str]] = field(default_factory=dict)  # role -> GET endpoints answered 200
    seen_args: dict[str, dict] = field(default_factory=dict)  # endpoint -> URL arguments of a real page
    post_fields: dict[str, dict] = field(default_factory=dict)  # POST endpoint -> its form's fields

    def sign_in(self, role: str) -> FlaskClient:
        """A fresh signed-in client for ``role`` (after the fuzz ended its session, or at start)."""
        client = self.app.test_client()
        if role in PENDING:
            response = client.post("/login", data={"email": self.users[role].email, "password": PASSWORD,
                                                   "csrf_token": csrf_token(client)})
            assert response.headers.get("Location") == PENDING[role], f"{role}: {response.status_code}"
            STATS.sign_ins += 1
        elif role != "anonymous":
            response = login(client, self.users[role].email)
            assert response.status_code == 302, f"{role} could not sign in again: {response.status_code}"
            STATS.sign_ins += 1
        self.clients[role] = client
        return client


def _user(role: Role | tuple[Role, ...], email: str) -> User:
    user = create_user(email, role, PASSWORD, verified=True, display_name="Fuzz Person")
    if user.is_staff:
        user.mfa_secret = pyotp.random_base32()
        user.mfa_enrolled_at = utcnow()
    return user


def _seed(app: Flask) -> tuple[dict[str, User], dict[str, list[str]]]:
    """One object of each kind (and records requests in every state), through the services."""
    from intake.admin.notices import create_notice
    from intake.calls.services import start_call
    from intake.records import documents, fees, services
    from intake.records.clocks import local_day
    from intake.records.models import RecordsRequest, RequestStatus
    from intake.records.submission import submit_request
    from intake.review.services import draw_weekly_sample, last_full_week
    from intake.security.tokens import Purpose, make_token
    from intake.users.invitations import invite_staff

    with app.app_context():
        # The admin is account #1: the users pages SAMPLE_ARGS names are then its own, where the
        # self rules refuse what would end the fuzz's own session.
        users = {"admin": _user(FULL_ADMIN, "fuzz-admin@example.org"),
                 "operator": _user(Role.OPERATOR, "fuzz-operator@example.org"),
                 "requester": _user(Role.REQUESTER, "fuzz-requester@example.org"),
                 "mfa": _user(Role.OPERATOR, "fuzz-mfa@example.org"),
                 "mfa_setup": create_user("fuzz-mfa-setup@example.org", Role.OPERATOR, PASSWORD, verified=True,
                                          display_name="Fuzz Enrolling")}
        # Accounts the admin's forms may change freely (role, disable, unlock...).
        _user(Role.OPERATOR, "fuzz-victim-operator@example.org")
        _user(FULL_ADMIN, "fuzz-victim-admin@example.org")
        reset_for = _user(Role.REQUESTER, "fuzz-victim-requester@example.org")
        unverified = create_user("fuzz-unverified@example.org", Role.REQUESTER, PASSWORD)
        invited = invite_staff("fuzz-invited@example.org", Role.OPERATOR, users["admin"], display_name="Fuzz Invitee")
        db.session.commit()
        # Real links, so the pages behind them show their forms.
        tokens = {"registration.verify_email": make_token(unverified, Purpose.VERIFY_EMAIL),
                  "reset.choose_password": make_token(reset_for, Purpose.RESET_PASSWORD),
                  "invitations.accept": make_token(invited, Purpose.INVITATION)}
        result = app.test_cli_runner().invoke(
            args=["demo", "seed", "--calls", "40", "--resources", "6", "--requests", "16", "--seed", "7"])
        assert result.exit_code == 0, result.output
        admin, operator, requester = users["admin"], users["operator"], users["requester"]
        own = [submit_request(requester, valid_submission()) for _ in range(2)]
        db.session.flush()
        documents.upload(own[0], requester, "photo_id", "id.pdf", b"%PDF-1.4\n% fuzz\n")
        # The second waits for an answer to a question and to a cost estimate: the page then shows the
        # answer box under the question and the estimate's yes/no form (issue 19).
        fees.give_estimate(own[1], admin, "paper", 12, 100)
        services.transition(own[1], RequestStatus.AWAITING_REQUESTER, admin,
                            services.MoveInput(message="Please send a photo ID."))
        draft_id = start_call(operator)
        today = local_day(utcnow(), app.config["FACILITY_TIMEZONE"])
        create_notice({"kind": "information", "title": "Fuzz notice", "body": "Office closed on Friday.",
                       "starts_on": today, "ends_on": today + timedelta(days=7)}, admin, today)
        week = last_full_week()
        for back in range(6):
            draw_weekly_sample(week - timedelta(weeks=back), 2, admin)
        by_status: dict[str, str] = {}
        for req in db.session.execute(select(RecordsRequest).order_by(RecordsRequest.id)).scalars():
            by_status.setdefault(str(req.status), req.reference)
        staff_req = db.session.execute(select(RecordsRequest).where(
            RecordsRequest.status == RequestStatus.IN_REVIEW)).scalars().first()
        if staff_req is not None:
            documents.upload(staff_req, admin, "internal", "notes.pdf", b"%PDF-1.4\n% fuzz\n")
        db.session.commit()
        # A recipient's secure link (a third party's copy), so the walk reaches its public page.
        copy_path = _recipient_link(app, admin, staff_req) if staff_req is not None else None
        with app.test_request_context():
            extra = {
                **{role: [path] for role, path in PENDING.items()},
                "anonymous": [url_for(endpoint, token=token) for endpoint, token in tokens.items()]
                + ([copy_path] if copy_path else []),
                # The designation page is linked only after a clinical denial; the seed has none of
                # the requester's own, so it is opened directly.
                "requester": [url_for("my_requests.detail", reference=req.reference) for req in own]
                + [url_for("my_requests.designate", reference=own[0].reference)],
                "operator": [url_for("calls_intake.edit", call_id=draft_id)],
                "admin": [url_for("request_queue.detail", reference=ref) for ref in by_status.values()],
            }
        for user in users.values():
            db.session.refresh(user)
            db.session.expunge(user)
    return users, extra


def _recipient_link(app: Flask, admin: User, req: Any) -> str:
    """A link to a document of ``req`` under a disclosure written for it; returns the link's path."""
    from intake.records import recipient
    from intake.records.models import CodeChannel, Disclosure, DisclosureBasis, FileKind, RequestDocument

    doc = db.session.execute(select(RequestDocument).where(RequestDocument.request_id == req.id,
                                                           RequestDocument.kind == FileKind.INTERNAL)).scalars().first()
    disclosure = Disclosure(request_id=req.id, basis=DisclosureBasis.CONSENT, channel="recipient_link",
                            recipient_name="Fuzz Clinic", description="Fuzz records", purpose="Fuzz treatment",
                            redisclosure_notice=True, disclosed_by_id=admin.id)
    db.session.add(disclosure)
    db.session.flush()
    with app.test_request_context():
        sent = recipient.make_link(req, disclosure, admin, "fuzz-recipient@example.org", CodeChannel.PHONE,
                                   [doc.id] if doc is not None else [], utcnow())
        path = url_for("recipient_copy.open_link", token=sent.token)
    db.session.commit()
    return path


@pytest.fixture(scope="module")
def world(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("fuzz")
    url = fresh_database(template_db, base)
    # Wrong current passwords and codes are part of the fuzz: lockout would end its own sign-ins.
    app = make_app(url, base / "instance", LOCKOUT_THRESHOLD=10**9)
    users, extra = _seed(app)
    STATS.ran = True
    world = World(app=app, users=users, clients={}, extra_pages=extra)
    for role in ROLES:
        world.sign_in(role)
    yield world
    with app.app_context():
        db.session.remove()
        if PG_URL:
            truncate_postgres()
        db.engine.dispose()
