"""``flask demo seed``: invented data in the counts asked, refused in production, fast, fictional
phone numbers only, and one summary audit event (the chain still verifies)."""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import lazyload, load_only

from intake.audit.models import AuditEvent
from intake.calls.models import (
    AttemptOutcome,
    Call,
    CallSubstance,
    CallType,
    FollowUp,
    FollowUpAttempt,
    Referral,
    RiskLevel,
    Substance,
)
from intake.db_types import utcnow
from intake.demo import demo_cli
from intake.extensions import db
from intake.records import deadlines
from intake.records.models import EventKind, RecordsRequest, RequestEvent, RequestStatus
from intake.resources.models import Resource
from intake.users.models import Role, User, UserRole
from intake.users.services import licensed
from tests.conftest import FULL_ADMIN, csrf_token, login

FICTIONAL_PHONE = re.compile(r"^\(\d{3}\) 555-01\d{2}$")


@pytest.fixture()
def cli(app):
    """The test CLI runner, with the demo group attached if create_app does not register it yet."""
    if "demo" not in app.cli.commands:
        app.cli.add_command(demo_cli)
    return app.test_cli_runner()


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def test_seed_creates_the_counts_asked_with_one_audit_event(app, cli, make_user):
    make_user(Role.OPERATOR)
    users_before, events_before = count(app, User), audit_actions(app)
    result = cli.invoke(args=["demo", "seed", "--calls", "120", "--resources", "12", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert count(app, Call) == 120
    assert count(app, Resource) == 12
    assert count(app, User) == users_before  # no staff unless asked
    assert "Created 12 resources and 120 calls" in result.output
    assert re.search(r"Done in \d+\.\d s\.", result.output)
    new_events = audit_actions(app)[len(events_before):]
    assert new_events == ["demo.seeded"]
    with app.app_context():
        details = json.loads(db.session.execute(
            select(AuditEvent.details).where(AuditEvent.action == "demo.seeded")).scalar_one())
    assert details["calls"] == 120 and details["resources"] == 12 and details["staff_accounts"] == 0
    assert details["followups"] == count(app, FollowUp)


def test_seed_default_is_200_calls_and_40_resources(app, cli, make_user):
    make_user(FULL_ADMIN)
    result = cli.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert (count(app, Call), count(app, Resource)) == (200, 40)


def test_seed_refuses_production_without_force(app, cli, make_user):
    make_user(Role.OPERATOR)
    app.config["ENV_NAME"] = "production"
    result = cli.invoke(args=["demo", "seed", "--calls", "5"])
    assert result.exit_code != 0
    assert "production" in result.output and "--force" in result.output
    assert count(app, Call) == 0 and count(app, Resource) == 0
    assert "demo.seeded" not in audit_actions(app)

    forced = cli.invoke(args=["demo", "seed", "--calls", "5", "--resources", "2", "--force"])
    assert forced.exit_code == 0, forced.output
    assert count(app, Call) == 5


def test_seed_needs_staff_to_log_calls_under(app, cli):
    result = cli.invoke(args=["demo", "seed", "--calls", "5"])
    assert result.exit_code != 0
    assert "--with-staff" in result.output
    assert count(app, Call) == 0


def test_with_staff_creates_one_account_per_role_and_says_how_to_sign_in(app, cli):
    result = cli.invoke(args=["demo", "seed", "--calls", "20", "--resources", "3", "--requests", "0", "--with-staff"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        staff = db.session.execute(select(User).order_by(User.id)).scalars().all()
        assert {u.email: u.ordered_roles for u in staff} == {
            "demo-operator@example.org": [Role.OPERATOR],
            "demo-supervisor@example.org": [Role.SUPERVISOR],
            "demo-records-clerk@example.org": [Role.RECORDS_CLERK],
            "demo-privacy-officer@example.org": [Role.PRIVACY_OFFICER],
            "demo-admin@example.org": [Role.ADMIN],
            "demo-clinician@example.org": [Role.SUPERVISOR, Role.RECORDS_CLERK],
        }
        assert all(u.mfa_enrolled_at is None and u.mfa_secret is None for u in staff)
        assert all(u.display_name and u.display_name.startswith("Demo ") for u in staff)
        assert [u.email for u in staff if licensed(u)] == ["demo-clinician@example.org"]
        # Calls are logged under those who log calls, never a records clerk, a privacy officer or an admin.
        loggers = set(db.session.execute(select(Call.operator_id)).scalars())
        by_id = {u.id: u for u in staff}
        assert loggers and all(by_id[i].has_role(Role.OPERATOR, Role.SUPERVISOR) for i in loggers)
    assert "Sign in at /login as any of these" in result.output
    passwords = re.findall(r"Demo ([a-z_, ]+): (\S+@example\.org)  password: (\S+)", result.output)
    assert [(roles, email) for roles, email, _ in passwords] == [
        ("operator", "demo-operator@example.org"), ("supervisor", "demo-supervisor@example.org"),
        ("records_clerk", "demo-records-clerk@example.org"),
        ("privacy_officer", "demo-privacy-officer@example.org"), ("admin", "demo-admin@example.org"),
        ("supervisor, records_clerk", "demo-clinician@example.org")]
    secrets_ = [password for _, _, password in passwords]
    assert len(set(secrets_)) == 6 and all(len(p) >= 16 for p in secrets_)
    # Each can sign in with the printed password (and is asked to set up an authenticator).
    browser = app.test_client()
    response = browser.post("/login", data={"email": "demo-records-clerk@example.org", "password": secrets_[2],
                                            "csrf_token": csrf_token(browser)})
    assert response.headers["Location"] == "/mfa/setup"
    # A second run leaves the accounts alone and prints no password.
    again = cli.invoke(args=["demo", "seed", "--calls", "1", "--resources", "0", "--requests", "0", "--with-staff"])
    assert again.exit_code == 0, again.output
    assert "password:" not in again.output and "exists already" in again.output
    assert count(app, User) == 6


@pytest.mark.parametrize("args", [["--calls", "-1"], ["--calls", "many"], ["--calls", "100001"],
                                  ["--resources", "-5"], ["--requests", "-1"], ["--requests", "1001"],
                                  ["--requests", "lots"]])
def test_bad_arguments_are_refused(app, cli, make_user, args):
    make_user(Role.OPERATOR)
    result = cli.invoke(args=["demo", "seed", *args])
    assert result.exit_code == 2
    assert count(app, Call) == 0


def test_ten_thousand_calls_plausible_fictional_and_the_chain_verifies(app, cli, make_user):
    make_user(Role.OPERATOR)
    make_user(FULL_ADMIN)
    started = time.perf_counter()
    result = cli.invoke(args=["demo", "seed", "--calls", "10000", "--seed", "42"])
    elapsed = time.perf_counter() - started
    print(f"\nflask demo seed --calls 10000: {elapsed:.1f} s ({result.output.strip().splitlines()[-1]})")
    assert result.exit_code == 0, result.output
    assert count(app, Call) == 10000

    verify = cli.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output
    assert "Audit trail intact" in verify.output

    with app.app_context():
        calls = db.session.execute(select(Call.call_type, Call.risk_level, Call.urgent, Call.safety_988,
                                          Call.safety_911, Call.safety_warm_transfer, Call.safety_plan)).all()
        non_data = sum(1 for c in calls if c.call_type != CallType.DATA)
        assert 0.25 * 10000 < non_data < 0.35 * 10000
        urgent_levels = {RiskLevel.HIGH, RiskLevel.IMMINENT}
        levels = [c.risk_level for c in calls if c.call_type == CallType.DATA]
        severe = sum(1 for level in levels if level in urgent_levels)
        assert 0 < severe < 0.15 * len(levels)
        for c in calls:
            if c.risk_level in urgent_levels:
                assert c.urgent and (c.safety_988 or c.safety_911 or c.safety_warm_transfer or c.safety_plan)
            else:
                assert not c.urgent
        substances = dict(db.session.execute(
            select(CallSubstance.substance, func.count()).group_by(CallSubstance.substance)).all())
        assert max(substances, key=substances.get) == Substance.CLONAZEPAM

        # Follow-ups only where the caller consented; attempts respect the channels allowed.
        consents = db.session.execute(
            select(Call.consent_callback, Call.consent_voicemail, Call.consent_text)
            .join(FollowUp, FollowUp.call_id == Call.id)).all()
        assert consents and all(any(c) for c in consents)
        attempts = db.session.execute(
            select(FollowUpAttempt.outcome, Call.consent_voicemail, Call.consent_text)
            .join(FollowUp, FollowUp.id == FollowUpAttempt.followup_id).join(Call, Call.id == FollowUp.call_id)).all()
        assert attempts
        assert not [a for a in attempts if a.outcome == AttemptOutcome.LEFT_VOICEMAIL and not a.consent_voicemail]
        assert not [a for a in attempts if a.outcome == AttemptOutcome.TEXT_SENT and not a.consent_text]
        assert db.session.execute(select(func.count()).select_from(Referral)).scalar_one() > 0
        assert not db.session.execute(select(Referral).where(
            Referral.resource_id.not_in(select(Resource.id)))).first()

        # Fictional people only: every phone number in 555-01xx, names marked as demo (decrypted here).
        # Column selects return the sealed envelopes; entities are opened by the ORM.
        people = db.session.execute(select(Call).options(load_only(Call.id, Call.uid, Call.caller_phone,
                                                                   Call.caller_name), lazyload("*"))
                                    .where(Call.call_type == CallType.DATA)).scalars().all()
        phones = [c.caller_phone for c in people if c.caller_phone is not None]
        assert len(phones) > 1000
        bad = [p for p in phones if not FICTIONAL_PHONE.match(p)]
        assert not bad, bad[:5]
        resource_phones = db.session.execute(select(Resource.phone)).scalars().all()
        assert resource_phones and all(FICTIONAL_PHONE.match(p) for p in resource_phones)
        names = [c.caller_name for c in people if c.caller_name is not None]
        assert names and all(n.endswith(" (demo)") for n in names)
        resource_names = db.session.execute(select(Resource.name)).scalars().all()
        assert all(n.endswith("(demo)") for n in resource_names)
    assert audit_actions(app).count("demo.seeded") == 1


def test_seeded_followups_show_in_the_queue(app, cli, make_user, client):
    operator = make_user(Role.OPERATOR)
    assert cli.invoke(args=["demo", "seed", "--calls", "300", "--seed", "3"]).exit_code == 0
    login(client, operator.email)
    response = client.get("/followups/")
    assert response.status_code == 200
    with app.app_context():
        open_count = db.session.execute(select(func.count()).select_from(FollowUp)
                                        .where(FollowUp.status == "open")).scalar_one()
    assert open_count > 0
    html = response.get_data(as_text=True)
    assert html.count("data-followup-id=") == min(open_count, 100)
    # New rows after seeding get fresh ids (on PostgreSQL the seeder took its ids from the sequences).
    first = re.search(r'data-followup-id="(\d+)"', html).group(1)
    token = csrf_token(client, "/account")
    assert client.post(f"/followups/{first}/attempt",
                       data={"outcome": "no_answer", "csrf_token": token}).status_code == 302
    assert client.post(f"/followups/{first}/close", data={"resolution": "done", "csrf_token": token}).status_code == 302


def test_seed_records_requests_in_every_state(app, cli, make_user):
    """Requests made through the services: every state, some overdue and some due soon, invented
    names only, from verified demo requesters; a second run reuses the requester accounts."""
    make_user(FULL_ADMIN)
    make_user(FULL_ADMIN)
    result = cli.invoke(args=["demo", "seed", "--calls", "0", "--resources", "0", "--requests", "44", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "Records requests: 44 (" in result.output
    with app.app_context():
        statuses = db.session.execute(select(RecordsRequest.status, func.count()).group_by(RecordsRequest.status))
        by_status = dict(statuses.all())
        assert set(by_status) == set(RequestStatus) and all(n >= 2 for n in by_status.values())
        today = deadlines.today()
        due = db.session.execute(select(RecordsRequest.due_on).where(RecordsRequest.is_open.is_(True),
                                                                     RecordsRequest.paused_since.is_(None)))
        days_left = [(d - today).days for d in due.scalars()]
        assert any(n < 0 for n in days_left) and any(0 <= n <= 3 for n in days_left)
        assert any(n > 3 for n in days_left)
        requests = db.session.execute(select(RecordsRequest)).scalars().all()
        assert all(re.fullmatch(r"Demo Patient \d+", r.patient_name) for r in requests)
        assert all(r.received_at <= utcnow() for r in requests)
        assert len({r.received_at.date() for r in requests}) > 10  # spread over many days
        owners = db.session.execute(select(User).where(User.id.in_({r.owner_id for r in requests}))).scalars().all()
        assert owners and all(u.roles == {Role.REQUESTER} and u.email_verified_at is not None for u in owners)
        assert all(re.fullmatch(r"demo-requester-\d+@example\.org", str(u.email)) for u in owners)
        # The workflow wrote the timeline and audit trail: one transition event per status change.
        moves = db.session.execute(select(func.count()).select_from(RequestEvent)
                                   .where(RequestEvent.kind == EventKind.STATUS)).scalar_one()
        transitions = db.session.execute(select(func.count()).select_from(AuditEvent)
                                         .where(AuditEvent.action == "request.transition")).scalar_one()
        assert moves == transitions > 44
        decided = db.session.execute(select(RecordsRequest)
                                     .where(RecordsRequest.status == RequestStatus.REVIEW_DECIDED))
        assert all(r.decided_by_id is not None for r in decided.scalars())
        first_owners = {u.id for u in owners}
    assert cli.invoke(args=["audit", "verify"]).exit_code == 0

    again = cli.invoke(args=["demo", "seed", "--calls", "0", "--resources", "0", "--requests", "11"])
    assert again.exit_code == 0, again.output
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(RecordsRequest)).scalar_one() == 55
        owner_ids = set(db.session.execute(select(RecordsRequest.owner_id)).scalars())
        assert owner_ids == first_owners
        assert db.session.execute(select(func.count()).select_from(UserRole)
                                  .where(UserRole.role == Role.REQUESTER)).scalar_one() == len(first_owners)


def test_seed_requests_need_a_records_clerk(app, cli, make_user):
    make_user(Role.OPERATOR)
    make_user([Role.ADMIN, Role.PRIVACY_OFFICER])  # neither works the records queue
    result = cli.invoke(args=["demo", "seed", "--calls", "3", "--resources", "0"])
    assert result.exit_code == 0, result.output
    assert "no records requests seeded" in result.output
    assert count(app, RecordsRequest) == 0


def test_seed_requests_with_one_unlicensed_records_clerk_record_outside_professionals(app, cli, make_user):
    """One records clerk, no licence: clinical denials and their reviews are outside licensed
    professionals' decisions the clerk records (45 CFR 164.524(a)(3), (d)(4)), so every state is reached."""
    make_user(Role.RECORDS_CLERK)
    result = cli.invoke(args=["demo", "seed", "--calls", "0", "--resources", "0", "--requests", "22"])
    assert result.exit_code == 0, result.output
    assert "outside licensed professional" in result.output
    with app.app_context():
        present = set(db.session.execute(select(RecordsRequest.status)).scalars())
        decided = db.session.execute(select(RecordsRequest).where(
            RecordsRequest.status == RequestStatus.REVIEW_DECIDED)).scalars().all()
        assert decided and all(r.review_licence == "LCSW LCS 88888 CA" for r in decided)
    assert present == set(RequestStatus)


def test_seed_requests_refused_in_production(app, cli, make_user):
    make_user(FULL_ADMIN)
    app.config["ENV_NAME"] = "production"
    result = cli.invoke(args=["demo", "seed", "--calls", "0", "--requests", "5"])
    assert result.exit_code != 0 and "production" in result.output
    assert count(app, RecordsRequest) == 0
