"""``flask records digest``: one e-mail per active records admin listing the overdue and due-soon
open requests by reference only; nothing for operators or requesters; nothing when nothing is due."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from sqlalchemy import event, select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import services
from intake.records.models import RecordsRequest, RequestStatus
from intake.records.services import MoveInput
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN

S = RequestStatus
TODAY = datetime(2026, 3, 20, 19, 0, tzinfo=UTC)  # noon in Los Angeles on 20 March 2026


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=19, tzinfo=UTC)


@pytest.fixture()
def staff(make_user):
    return {"admin": make_user(FULL_ADMIN, email="records-lead@example.org"), "admin2": make_user(FULL_ADMIN),
            "retired": make_user(FULL_ADMIN, active=False), "operator": make_user(Role.OPERATOR),
            "requester": make_user(Role.REQUESTER)}


def _load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def human_ref(app, reference: str) -> str:
    with app.app_context():
        return _load(reference).human_ref


def digests(app) -> list[OutboxMessage]:
    with app.app_context():
        rows = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "records_digest")
                                  .order_by(OutboxMessage.id)).scalars().all()
        db.session.expunge_all()
        return rows


def run_digest(runner, *args):
    with time_machine.travel(TODAY, tick=False):
        return runner.invoke(args=["records", "digest", *args])


def move(app, reference: str, actor: User, *targets: tuple[S, MoveInput]) -> None:
    with app.app_context():
        req = _load(reference)
        for target, given in targets:
            services.transition(req, target, db.session.get(User, actor.id), given)
        db.session.commit()


@pytest.fixture()
def requests(app, staff, make_request):
    """Copies (15 calendar days) received on different days, seen from 20 March 2026."""
    owner = staff["requester"]
    refs = {
        "overdue": make_request(owner, now=at("2026-03-01"), patient_name="Secret Patientname"),  # due 16 Mar
        "due_today": make_request(owner, now=at("2026-03-05")),  # due 20 Mar
        "due_in_3": make_request(owner, now=at("2026-03-08")),  # due 23 Mar
        "due_in_4": make_request(owner, now=at("2026-03-09")),  # due 24 Mar: on track
        "closed": make_request(owner, now=at("2026-02-01")),  # overdue, but withdrawn
        "waiting": make_request(owner, now=at("2026-03-02")),  # due 17 Mar, waiting: California keeps counting
    }
    move(app, refs["closed"], staff["requester"], (S.WITHDRAWN, MoveInput()))
    move(app, refs["waiting"], staff["admin"], (S.AWAITING_REQUESTER, MoveInput(message="Please send ID.")))
    with app.app_context():
        services.claim(_load(refs["due_today"]), db.session.get(User, staff["admin2"].id))
        db.session.commit()
    return refs


def test_digest_lists_overdue_and_due_soon_for_each_admin(app, runner, staff, requests):
    result = run_digest(runner)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "queued 2 digests: 2 overdue, 2 due soon"
    messages = digests(app)
    assert sorted(m.recipient for m in messages) == sorted([staff["admin"].email, staff["admin2"].email])
    assert len({m.body for m in messages}) == 1
    body, subject = messages[0].body, messages[0].subject
    assert subject == "Records requests: 2 overdue, 2 due soon"
    listed = {name for name, ref in requests.items() if human_ref(app, ref) in body}
    assert listed == {"overdue", "waiting", "due_today", "due_in_3"}
    overdue_line = next(line for line in body.splitlines() if human_ref(app, requests["overdue"]) in line)
    assert "Copy" in overdue_line and "Received" in overdue_line and "2026-03-16" in overdue_line
    assert "4 days overdue" in overdue_line and "unassigned" in overdue_line
    today_line = next(line for line in body.splitlines() if human_ref(app, requests["due_today"]) in line)
    assert "due today" in today_line and staff["admin2"].email in today_line
    soon_line = next(line for line in body.splitlines() if human_ref(app, requests["due_in_3"]) in line)
    assert "due in 3 days" in soon_line
    waiting_line = next(line for line in body.splitlines() if human_ref(app, requests["waiting"]) in line)
    assert "Waiting for the requester" in waiting_line and "3 days overdue" in waiting_line
    # Most overdue first, overdue before due soon.
    order = [body.index(human_ref(app, requests[name])) for name in ("overdue", "waiting", "due_today", "due_in_3")]
    assert order == sorted(order)


def test_digest_names_no_patient_and_no_health_information(app, runner, staff, requests):
    assert run_digest(runner).exit_code == 0
    for message in digests(app):
        text = message.subject + message.body
        for secret in ("Secret", "Patientname", "Jordan", "Example", "1980", "2017", "Please send ID"):
            assert secret not in text
    with app.app_context():
        details = db.session.execute(select(AuditEvent.details).where(AuditEvent.action == "request.digest"))
        assert "Secret" not in details.scalar_one()


def test_operators_requesters_and_disabled_admins_get_nothing(app, runner, staff, requests):
    assert run_digest(runner).exit_code == 0
    recipients = {m.recipient for m in digests(app)}
    for who in ("operator", "requester", "retired"):
        assert staff[who].email not in recipients


def test_nothing_due_sends_nothing(app, runner, staff, make_request):
    make_request(staff["requester"], now=at("2026-03-19"))  # due 3 April
    result = run_digest(runner)
    assert result.exit_code == 0
    assert "no digest sent" in result.output
    assert digests(app) == []


def test_always_sends_an_empty_digest(app, runner, staff):
    result = run_digest(runner, "--always")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "queued 2 digests: 0 overdue, 0 due soon"
    messages = digests(app)
    assert len(messages) == 2 and all("No open request is overdue or due soon." in m.body for m in messages)


def test_hipaa_164_524_a_request_waiting_for_the_requester_is_still_listed(app, runner, staff, make_request):
    """No tolling (45 CFR 164.524(b)(2)): a request waiting for the requester is overdue like any other."""
    app.config["RECORDS_CLOCK_POLICY"] = "hipaa"
    ref = make_request(staff["requester"], now=at("2026-02-01"))  # due 3 March under HIPAA
    move(app, ref, staff["admin"], (S.AWAITING_REQUESTER, MoveInput(message="Which years?")))
    result = run_digest(runner)
    assert "1 overdue" in result.output and digests(app)


def test_digest_reads_two_queries_for_the_requests(app, runner, staff, requests):
    """Coded columns of the requests in one query, assignee addresses in one more; never whole rows."""
    statements = []
    with app.app_context():
        engine = db.engine

        def count(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert run_digest(runner).exit_code == 0
        finally:
            event.remove(engine, "before_cursor_execute", count)
    request_reads = [s for s in statements if "FROM records_requests" in s]
    assert len(request_reads) == 1
    assert "patient_name" not in request_reads[0] and "patient_dob" not in request_reads[0]
    user_reads = [s for s in statements if "FROM users" in s]
    assert len(user_reads) == 2  # the assignees' addresses, the recipients


def test_no_admin_account_means_no_digest(app, runner, make_user, make_request):
    requester = make_user(Role.REQUESTER)
    make_request(requester, now=at("2026-03-01"))
    result = run_digest(runner)
    assert "No active account works the records queue" in result.output
    assert digests(app) == []
