"""One clock for people: every page that shows a time shows the facility's wall clock, labelled with
its zone (PST or PDT), to the minute. The walk renders every GET page of the URL map (the same seeded
world and the same roles as the browser's every-page walk, in English and Spanish) and fails on
"UTC", "GMT", a bare offset after a time ("10:00 +00:00", "10:00Z") or seconds; e-mails are read for
the same. Pages known to show times must show a zone label."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.calls.followups import create_followup
from intake.calls.models import Call, CallStatus
from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.models import OutboxMessage
from tests.browser.test_every_page import EXCLUDED, PENDING_PAGES, page_ids, role_for, seed
from tests.conftest import PG_URL, fresh_database, login, make_app, truncate_postgres
from tests.test_authorization import SAMPLE_ARGS

NOT_LOCAL = re.compile(
    r"\bUTC\b|\bGMT\b"  # another zone's name
    r"|\d{1,2}:\d{2}(?::\d{2})?\s?(?:[+-]\d{2}:?\d{2}\b|Z\b)"  # a time with a bare offset
    r"|\b\d{1,2}:\d{2}:\d{2}\b"  # seconds
)
LABEL = re.compile(r"\d{1,2}:\d{2}(?:\s?[AaPp]\.?\s?[Mm]\.?)? P[SD]T\b")
# Pages that always show at least one time in the seeded world: each must show it labelled.
SHOWS_TIMES = {"calls.index", "calls.detail", "followups.index", "followups.detail", "admin_audit.index",
               "my_requests.detail", "request_queue.detail", "admin_users.index", "auth.account",
               "calls_intake.edit", "admin_review.detail"}
SCRIPT = re.compile(r"<script\b.*?</script>", re.S | re.I)
TAG = re.compile(r"<[^>]+>")


def visible_text(html: str) -> str:
    """What a person reads: no scripts (their JSON holds machine times), no tags or attributes."""
    return unescape(TAG.sub(" ", SCRIPT.sub(" ", html)))


@dataclass
class World:
    app: Flask
    users: dict
    args: dict
    clients: dict[str, FlaskClient]

    def client(self, role: str) -> FlaskClient:
        if role not in self.clients:
            client = self.app.test_client()
            if role != "anonymous":
                assert login(client, self.users[role].email).status_code == 302, role
            self.clients[role] = client
        return self.clients[role]

    def url(self, endpoint: str, variant: str) -> str:
        with self.app.test_request_context():
            from flask import url_for

            values = self.args.get((endpoint, variant)) or SAMPLE_ARGS.get(endpoint, {})
            return url_for(endpoint, **values)


@pytest.fixture(scope="module")
def world(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base: Path = tmp_path_factory.mktemp("one-clock")
    app = make_app(fresh_database(template_db, base), base / "instance")
    users, args = seed(app)
    with app.app_context():  # an open follow-up, so the queue shows a due time
        call = db.session.execute(select(Call).where(Call.status == CallStatus.FINAL, Call.call_type == "data")
                                  .order_by(Call.id)).scalars().first()
        call.consent_callback = True
        create_followup(call, utcnow() + timedelta(hours=3), None, None)
        db.session.commit()
    yield World(app, users, args, {})
    with app.app_context():
        db.session.remove()
        if PG_URL:
            truncate_postgres()
        db.engine.dispose()
    shutil.rmtree(base, ignore_errors=True)


PAGES = [(e, v) for e, v in page_ids() if e not in PENDING_PAGES and e not in EXCLUDED]


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_page_shows_times_on_the_facility_clock(world: World, lang: str) -> None:
    problems, unlabelled = [], []
    for endpoint, variant in PAGES:
        role = role_for(endpoint, variant)
        client = world.client(role)
        client.set_cookie("lang", lang)
        path = world.url(endpoint, variant)
        response = client.get(path)
        if response.mimetype != "text/html":
            continue
        text = visible_text(response.get_data(as_text=True))
        for match in NOT_LOCAL.finditer(text):
            around = text[max(0, match.start() - 40):match.end() + 20]
            problems.append(f"{path} ({endpoint} as {role}, {lang}): {around!r}")
        if endpoint in SHOWS_TIMES and response.status_code == 200 and not LABEL.search(text):
            unlabelled.append(f"{path} ({endpoint} as {role}, {lang})")
    assert not problems, "times not on the facility's labelled clock:\n" + "\n".join(problems)
    assert not unlabelled, "pages that should show a labelled time show none:\n" + "\n".join(unlabelled)


def test_the_walk_would_catch_a_utc_time() -> None:
    """The check itself can fail: each way of showing another clock is caught, the facility's is not."""
    for bad in ("Started 2026-12-07 18:00 UTC", "at 18:00:00", "18:00 +00:00", "10:00-0800", "18:00Z", "GMT"):
        assert NOT_LOCAL.search(bad), bad
    for good in ("2026-12-07 10:00 PST", "Dec 7, 2026, 10:00 AM PST", "7 dic 2026, 10:00 PST", "12:05",
                 "(415) 555-0134", "1-800-555-0100"):
        assert not NOT_LOCAL.search(good), good
        if ":" in good and "PST" in good:
            assert LABEL.search(good), good


def test_e_mails_show_no_other_clock(world: World) -> None:
    with world.app.app_context():
        messages = list(db.session.execute(select(OutboxMessage)).scalars())
        assert messages, "the seeded world sends e-mails"
        for message in messages:
            for part in (message.subject, message.body):
                assert not NOT_LOCAL.search(part or ""), (message.kind, part)
