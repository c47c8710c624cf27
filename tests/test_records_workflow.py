"""The records-request state machine: the pure table for every (state, actor, target), who counts
as staff or requester, what each move needs, the buttons offered; then every transition of the
table made through the service, with its timeline event, audit event and e-mail in one transaction."""

from __future__ import annotations

import itertools
import json
from collections import deque
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import letters, services
from intake.records.models import OPEN_STATUSES, EventKind, RecordsRequest, RequestEvent, RequestStatus
from intake.records.services import MoveInput
from intake.records.workflow import (
    CLOSED_STATUSES,
    RESUMABLE,
    REVIEWABLE_REASONS,
    TRANSITIONS,
    Actor,
    DenialReason,
    Email,
    Facts,
    Given,
    Need,
    PartialReason,
    TransitionRefused,
    actor_for,
    missing,
    moves,
    rule_for,
)
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, LICENCE, OTHER_LICENCE

S = RequestStatus
ACTORS = (Actor.STAFF, Actor.REQUESTER, None)


# --- The table, for every (state, actor, target) -------------------------------------------------

@pytest.mark.parametrize("current, actor, target", list(itertools.product(S, ACTORS, S)))
def test_rule_for_allows_exactly_what_the_table_says(current, actor, target):
    rule = TRANSITIONS.get((current, target))
    if rule is not None and actor is not None and actor in rule.who:
        assert rule_for(current, target, actor) is rule
    else:
        with pytest.raises(TransitionRefused):
            rule_for(current, target, actor)


def test_the_table_names_only_known_states_and_no_move_to_itself():
    for (source, target), rule in TRANSITIONS.items():
        assert source in set(S) and target in set(S) and source != target
        assert rule.who and rule.who <= {Actor.STAFF, Actor.REQUESTER}


def test_every_state_is_reachable_from_submitted():
    seen, todo = {S.SUBMITTED}, deque([S.SUBMITTED])
    while todo:
        state = todo.popleft()
        for (source, target) in TRANSITIONS:
            if source == state and target not in seen:
                seen.add(target)
                todo.append(target)
    assert seen == set(S)


@pytest.mark.parametrize("closed", sorted(CLOSED_STATUSES))
def test_every_closed_state_can_be_reopened_by_staff_with_a_note(closed):
    rule = rule_for(closed, S.IN_REVIEW, Actor.STAFF)
    assert Need.NOTE in rule.needs
    with pytest.raises(TransitionRefused):
        rule_for(closed, S.IN_REVIEW, Actor.REQUESTER)


def test_closed_states_are_the_complement_of_the_open_ones():
    assert CLOSED_STATUSES == {S.FULFILLED, S.PARTIALLY_FULFILLED, S.DENIED, S.NO_RECORDS, S.WITHDRAWN,
                               S.REVIEW_DECIDED}
    assert not CLOSED_STATUSES & OPEN_STATUSES


def test_nothing_leaves_a_closed_state_but_reopen_or_review():
    leaving = {(source, target) for (source, target) in TRANSITIONS if source in CLOSED_STATUSES}
    reopen = {(closed, S.IN_REVIEW) for closed in CLOSED_STATUSES}
    assert leaving == reopen | {(S.DENIED, S.REVIEW_REQUESTED)}


def test_waiting_on_the_requester_returns_only_where_it_came_from():
    into_waiting = {source for (source, target) in TRANSITIONS if target == S.AWAITING_REQUESTER}
    out_of_waiting = {target for (source, target) in TRANSITIONS if source == S.AWAITING_REQUESTER}
    assert into_waiting == RESUMABLE
    assert out_of_waiting == RESUMABLE | {S.WITHDRAWN}
    for back in RESUMABLE:
        assert Need.RETURN_STATE in TRANSITIONS[(S.AWAITING_REQUESTER, back)].needs


def test_the_requester_may_only_resume_withdraw_and_ask_for_review():
    theirs = {key for key, rule in TRANSITIONS.items() if Actor.REQUESTER in rule.who}
    assert theirs == ({(S.AWAITING_REQUESTER, back) for back in RESUMABLE}
                      | {(source, S.WITHDRAWN) for source in (S.SUBMITTED, S.VERIFYING, S.IN_REVIEW,
                                                              S.AWAITING_REQUESTER)}
                      | {(S.DENIED, S.REVIEW_REQUESTED)})


# --- E-mails the table sends -------------------------------------------------------------------

def test_every_move_to_awaiting_requester_says_action_needed():
    waits = [rule for (source, target), rule in TRANSITIONS.items() if target == S.AWAITING_REQUESTER]
    assert len(waits) == 3 and all(r.email is Email.ACTION_NEEDED and Need.MESSAGE in r.needs for r in waits)


@pytest.mark.parametrize("target, email", [
    (S.FULFILLED, Email.READY), (S.PARTIALLY_FULFILLED, Email.READY),
    (S.DENIED, Email.DECISION), (S.NO_RECORDS, Email.DECISION), (S.REVIEW_DECIDED, Email.DECISION),
    (S.WITHDRAWN, Email.UPDATE), (S.REVIEW_REQUESTED, Email.UPDATE),
])
def test_the_table_sends_the_right_email_on_arrival(target, email):
    rules = [rule for (source, t), rule in TRANSITIONS.items() if t == target]
    assert rules and all(rule.email is email for rule in rules)


def test_quiet_moves_send_nothing():
    quiet = {key for key, rule in TRANSITIONS.items() if rule.email is None}
    assert quiet == {(S.SUBMITTED, S.VERIFYING), (S.VERIFYING, S.IN_REVIEW),
                     (S.AWAITING_REQUESTER, S.SUBMITTED), (S.AWAITING_REQUESTER, S.VERIFYING),
                     (S.AWAITING_REQUESTER, S.IN_REVIEW)}


# --- actor_for -----------------------------------------------------------------------------------

def fake_user(role: Role, id: int = 1, authenticated: bool = True, active: bool = True, verified: bool = True):
    return SimpleNamespace(is_authenticated=authenticated, is_active=active, roles=frozenset({role}), id=id,
                           email_verified_at=datetime(2026, 1, 1, tzinfo=UTC) if verified else None)


REQUEST = SimpleNamespace(owner_id=7)


@pytest.mark.parametrize("user, expected", [
    (fake_user(Role.RECORDS_CLERK, id=1), Actor.STAFF),
    (fake_user(Role.RECORDS_CLERK, id=7), Actor.STAFF),  # a clerk who filed it still works it as staff
    (fake_user(Role.ADMIN, id=1), None),  # an admin without the records clerk's role does not
    (fake_user(Role.PRIVACY_OFFICER, id=1), None),  # the privacy officer reads requests, never moves them
    (fake_user(Role.REQUESTER, id=7), Actor.REQUESTER),
    (fake_user(Role.REQUESTER, id=7, verified=False), Actor.REQUESTER),  # following one's request needs no check
    (fake_user(Role.OPERATOR, id=2), None),
    (fake_user(Role.OPERATOR, id=7), None),
    (fake_user(Role.REQUESTER, id=8), None),  # someone else's request
    (fake_user(Role.REQUESTER, id=7, active=False), None),
    (fake_user(Role.RECORDS_CLERK, id=1, active=False), None),
    (fake_user(Role.RECORDS_CLERK, id=1, authenticated=False), None),
    (SimpleNamespace(is_authenticated=False, is_active=False, role=None, id=None, email_verified_at=None), None),
    (None, None),
    (fake_user("nonsense", id=7), None),
])
def test_actor_for(user, expected):
    assert actor_for(user, REQUEST) == expected


# --- missing -------------------------------------------------------------------------------------

def _rule(source, target):
    return TRANSITIONS[(source, target)]


@pytest.mark.parametrize("source, target, given, field", [
    (S.IN_REVIEW, S.AWAITING_REQUESTER, Given(), "message"),
    (S.IN_REVIEW, S.AWAITING_REQUESTER, Given(message="   \n"), "message"),
    (S.SUBMITTED, S.NO_RECORDS, Given(), "no_records_reason"),
    (S.SUBMITTED, S.NO_RECORDS, Given(no_records_reason="lost it"), "no_records_reason"),
    (S.SUBMITTED, S.NO_RECORDS, Given(no_records_reason="held_elsewhere", custodian=" "), "custodian"),
    (S.VERIFYING, S.IN_REVIEW, Given(verification_method="photo_id"), "archived_patient_id"),
    (S.FULFILLED, S.IN_REVIEW, Given(), "note"),
    (S.FULFILLED, S.IN_REVIEW, Given(note=" "), "note"),
    (S.VERIFYING, S.IN_REVIEW, Given(archived_patient_id=1), "verification_method"),
    (S.VERIFYING, S.IN_REVIEW, Given(verification_method="a hunch", archived_patient_id=1), "verification_method"),
    (S.IN_REVIEW, S.DENIED, Given(), "reason"),
    (S.IN_REVIEW, S.DENIED, Given(reason="some_records_lost"), "reason"),  # a partial reason is no denial reason
    (S.IN_REVIEW, S.DENIED, Given(reason="'; DROP TABLE records_requests; --"), "reason"),
])
def test_missing_reports_what_is_not_given(source, target, given, field):
    problems = missing(_rule(source, target), target, Facts(verified=True, delivered=True), given)
    assert problems == {field: "required"}


def test_missing_partial_reason_and_verification():
    rule = _rule(S.IN_REVIEW, S.PARTIALLY_FULFILLED)
    done = Facts(verified=True, delivered=True)
    assert missing(rule, S.PARTIALLY_FULFILLED, done, Given()) == {"reason": "required"}
    assert missing(rule, S.PARTIALLY_FULFILLED, done, Given(reason="endangerment")) == {"reason": "required"}
    assert missing(rule, S.PARTIALLY_FULFILLED, Facts(verified=False, delivered=True),
                   Given(reason="held_elsewhere")) == {"status": "not_verified"}
    for reason in PartialReason:
        assert missing(rule, S.PARTIALLY_FULFILLED, done, Given(reason=reason)) == {}
    full = _rule(S.IN_REVIEW, S.FULFILLED)
    assert missing(full, S.FULFILLED, Facts(verified=False, delivered=True), Given()) == {"status": "not_verified"}
    assert missing(full, S.FULFILLED, Facts(verified=True, delivered=False), Given()) == {"status": "not_delivered"}
    assert missing(full, S.FULFILLED, done, Given()) == {}


@pytest.mark.parametrize("reason", list(DenialReason))
def test_missing_reviewable_follows_the_denial_reason(reason):
    rule = _rule(S.DENIED, S.REVIEW_REQUESTED)
    problems = missing(rule, S.REVIEW_REQUESTED, Facts(decision_reason=reason), Given())
    assert problems == ({} if reason in REVIEWABLE_REASONS else {"status": "not_reviewable"})


def test_missing_review_outcome_and_a_different_reviewer():
    rule = _rule(S.REVIEW_REQUESTED, S.REVIEW_DECIDED)
    facts = Facts(decision_reason="endangerment", decided_by_id=5, actor_id=6, actor_licensed=True)
    assert missing(rule, S.REVIEW_DECIDED, facts, Given(message="Upheld.")) == {"review_outcome": "required"}
    assert missing(rule, S.REVIEW_DECIDED, facts, Given(message="x", review_outcome="maybe")) == {
        "review_outcome": "required"}
    assert missing(rule, S.REVIEW_DECIDED, facts, Given(review_outcome="upheld")) == {"message": "required"}
    assert missing(rule, S.REVIEW_DECIDED, facts, Given(message="Upheld.", review_outcome="upheld")) == {}
    same = Facts(decision_reason="endangerment", decided_by_id=5, actor_id=5, actor_licensed=True)
    assert missing(rule, S.REVIEW_DECIDED, same, Given(message="Upheld.", review_outcome="overturned")) == {
        "status": "same_reviewer"}


def test_hipaa_164_524_d4_the_review_is_by_a_licensed_professional_who_did_not_deny():
    """45 CFR 164.524(a)(4), (d)(4): a licensed health care professional who took no part in the denial
    reviews it; an unlicensed member of staff can only record an outside professional's review, with the
    outcome that professional decided (a facility with one administrator can still decide a review)."""
    rule = _rule(S.REVIEW_REQUESTED, S.REVIEW_DECIDED)
    given = Given(message="Upheld.", review_outcome="upheld")
    unlicensed = Facts(decision_reason="endangerment", decided_by_id=5, actor_id=6)
    assert missing(rule, S.REVIEW_DECIDED, unlicensed, given) == {"status": "reviewer_unlicensed"}
    # The only administrator, who made the denial, records the outside reviewer's decision.
    alone = Facts(decision_reason="endangerment", decided_by_id=5, actor_id=5, external_review="upheld")
    assert missing(rule, S.REVIEW_DECIDED, alone, given) == {}
    assert missing(rule, S.REVIEW_DECIDED, alone, Given(message="x", review_outcome="overturned")) == {
        "review_outcome": "external_outcome"}


def test_hipaa_164_524_a3_a_clinical_denial_is_a_licensed_professionals():
    """45 CFR 164.524(a)(3); H&S 123115(b): a denial on clinical grounds is made by a licensed health care
    professional: the person moving it, or an outside professional whose decision (the same reason) is
    recorded. Other grounds (identity not verified...) need no licence."""
    rule = _rule(S.IN_REVIEW, S.DENIED)
    clinical = Given(reason="endangerment")
    assert missing(rule, S.DENIED, Facts(actor_id=1), clinical) == {"reason": "needs_licensed"}
    assert missing(rule, S.DENIED, Facts(actor_id=1, actor_licensed=True), clinical) == {}
    assert missing(rule, S.DENIED, Facts(actor_id=1, external_denial="endangerment"), clinical) == {}
    assert missing(rule, S.DENIED, Facts(actor_id=1, external_denial="representative_harm"), clinical) == {
        "reason": "needs_licensed"}
    assert missing(rule, S.DENIED, Facts(actor_id=1), Given(reason="identity_not_verified")) == {}


@pytest.mark.parametrize("back", sorted(RESUMABLE))
def test_missing_return_state(back):
    for target in RESUMABLE:
        rule = _rule(S.AWAITING_REQUESTER, target)
        problems = missing(rule, target, Facts(awaiting_return_to=back), Given(message="Here it is."))
        assert problems == ({} if target == back else {"status": "wrong_return"})
    rule = _rule(S.AWAITING_REQUESTER, back)
    assert missing(rule, back, Facts(awaiting_return_to=back), Given()) == {"message": "required"}
    assert missing(rule, back, Facts(), Given(message="x")) == {"status": "wrong_return"}


def test_missing_is_empty_for_moves_that_need_nothing():
    assert missing(_rule(S.SUBMITTED, S.VERIFYING), S.VERIFYING, Facts(), Given()) == {}
    assert missing(_rule(S.SUBMITTED, S.WITHDRAWN), S.WITHDRAWN, Facts(), Given()) == {}


# --- moves (the buttons) -------------------------------------------------------------------------

@pytest.mark.parametrize("current, actor, facts, expected", [
    (S.SUBMITTED, Actor.STAFF, Facts(), {S.VERIFYING, S.AWAITING_REQUESTER, S.NO_RECORDS, S.WITHDRAWN}),
    (S.SUBMITTED, Actor.REQUESTER, Facts(), {S.WITHDRAWN}),
    (S.SUBMITTED, None, Facts(), set()),
    (S.VERIFYING, Actor.STAFF, Facts(), {S.IN_REVIEW, S.AWAITING_REQUESTER, S.NO_RECORDS, S.DENIED, S.WITHDRAWN}),
    (S.VERIFYING, Actor.REQUESTER, Facts(), {S.WITHDRAWN}),
    (S.IN_REVIEW, Actor.STAFF, Facts(verified=True, delivered=True),
     {S.AWAITING_REQUESTER, S.FULFILLED, S.PARTIALLY_FULFILLED, S.DENIED, S.NO_RECORDS, S.WITHDRAWN}),
    (S.IN_REVIEW, Actor.STAFF, Facts(verified=True), {S.AWAITING_REQUESTER, S.DENIED, S.NO_RECORDS, S.WITHDRAWN}),
    (S.IN_REVIEW, Actor.STAFF, Facts(verified=False), {S.AWAITING_REQUESTER, S.DENIED, S.NO_RECORDS, S.WITHDRAWN}),
    (S.AWAITING_REQUESTER, Actor.STAFF, Facts(awaiting_return_to=S.VERIFYING), {S.VERIFYING, S.WITHDRAWN}),
    (S.AWAITING_REQUESTER, Actor.REQUESTER, Facts(awaiting_return_to=S.IN_REVIEW), {S.IN_REVIEW, S.WITHDRAWN}),
    (S.AWAITING_REQUESTER, Actor.REQUESTER, Facts(), {S.WITHDRAWN}),
    (S.DENIED, Actor.STAFF, Facts(decision_reason="endangerment"), {S.REVIEW_REQUESTED, S.IN_REVIEW}),
    (S.DENIED, Actor.STAFF, Facts(decision_reason="psychotherapy_notes"), {S.IN_REVIEW}),
    (S.DENIED, Actor.REQUESTER, Facts(decision_reason="endangerment"), {S.REVIEW_REQUESTED}),
    (S.DENIED, Actor.REQUESTER, Facts(decision_reason="legal_proceedings"), set()),
    (S.REVIEW_REQUESTED, Actor.STAFF, Facts(decided_by_id=3, actor_id=4, actor_licensed=True), {S.REVIEW_DECIDED}),
    (S.REVIEW_REQUESTED, Actor.STAFF, Facts(decided_by_id=3, actor_id=4), set()),
    (S.REVIEW_REQUESTED, Actor.STAFF, Facts(decided_by_id=3, actor_id=3, actor_licensed=True), set()),
    (S.REVIEW_REQUESTED, Actor.STAFF, Facts(decided_by_id=3, actor_id=3, external_review="upheld"),
     {S.REVIEW_DECIDED}),
    (S.REVIEW_REQUESTED, Actor.REQUESTER, Facts(), set()),
    (S.REVIEW_DECIDED, Actor.STAFF, Facts(), {S.IN_REVIEW}),
    (S.FULFILLED, Actor.STAFF, Facts(), {S.IN_REVIEW}),
    (S.FULFILLED, Actor.REQUESTER, Facts(), set()),
    (S.WITHDRAWN, Actor.REQUESTER, Facts(), set()),
    (S.NO_RECORDS, None, Facts(), set()),
])
def test_moves_lists_the_right_buttons(current, actor, facts, expected):
    offered = moves(current, actor, facts)
    assert set(offered) == expected and len(offered) == len(set(offered))


@pytest.mark.parametrize("current", list(S))
def test_moves_never_offers_what_rule_for_refuses(current):
    for actor in ACTORS:
        for target in moves(current, actor, Facts(verified=True, awaiting_return_to=S.IN_REVIEW,
                                                    decision_reason="endangerment")):
            rule_for(current, target, actor)


# --- Every transition through the service, in one transaction --------------------------------

def _needs_input(rule, target: S) -> MoveInput:
    """Exactly what the rule asks to be typed in."""
    return MoveInput(
        message="Please see the note on this page." if Need.MESSAGE in rule.needs else None,
        note="Reopened to send the missing pages." if Need.NOTE in rule.needs else None,
        verification_method="photo_id" if Need.VERIFICATION_METHOD in rule.needs else None,
        reason=("endangerment" if Need.DENIAL_REASON in rule.needs
                else "some_records_lost" if Need.PARTIAL_REASON in rule.needs else None),
        review_outcome="upheld" if Need.REVIEW_OUTCOME in rule.needs else None,
        archived_patient_id=ARCHIVE_ID["id"] if Need.ARCHIVE_MATCH in rule.needs else None,
        no_records_reason="not_in_index" if Need.NO_RECORDS_REASON in rule.needs else None,
        withdraw_reason="requester_asked" if Need.WITHDRAW_REASON in rule.needs else None,
        withdraw_confirmed=Need.WITHDRAW_REASON in rule.needs,
    )


ARCHIVE_ID = {"id": None}  # set by the test that moves real requests


def _path_to(state: S, waiting_from: S = S.IN_REVIEW) -> list[S]:
    """A sequence of moves from ``submitted`` that ends in ``state``."""
    to_review = [S.VERIFYING, S.IN_REVIEW]
    paths = {
        S.SUBMITTED: [], S.VERIFYING: [S.VERIFYING], S.IN_REVIEW: to_review,
        S.AWAITING_REQUESTER: None,
        S.FULFILLED: to_review + [S.FULFILLED], S.PARTIALLY_FULFILLED: to_review + [S.PARTIALLY_FULFILLED],
        S.DENIED: to_review + [S.DENIED], S.NO_RECORDS: [S.NO_RECORDS], S.WITHDRAWN: [S.WITHDRAWN],
        S.REVIEW_REQUESTED: to_review + [S.DENIED, S.REVIEW_REQUESTED],
        S.REVIEW_DECIDED: to_review + [S.DENIED, S.REVIEW_REQUESTED, S.REVIEW_DECIDED],
    }
    if state == S.AWAITING_REQUESTER:
        return _path_to(waiting_from) + [S.AWAITING_REQUESTER]
    return paths[state]


CASES = [(source, target, actor) for (source, target), rule in TRANSITIONS.items()
         for actor in sorted(rule.who)]


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("source, target, actor", CASES, ids=[f"{s}->{t}-{a}" for s, t, a in CASES])
def test_each_transition_through_the_service(app, make_user, make_request, archive_patient, source, target, actor):
    ARCHIVE_ID["id"] = archive_patient()
    requester = make_user(Role.REQUESTER)
    denier, reviewer = make_user(FULL_ADMIN, licence=LICENCE), make_user(FULL_ADMIN, licence=OTHER_LICENCE)
    ref = make_request(requester, now=datetime(2026, 3, 2, 18, 0, tzinfo=UTC))
    waiting_from = target if source == S.AWAITING_REQUESTER and target in RESUMABLE else S.IN_REVIEW
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()
        people = {Actor.STAFF: db.session.get(User, denier.id), Actor.REQUESTER: db.session.get(User, requester.id)}
        for step in _path_to(source, waiting_from):
            mover = db.session.get(User, reviewer.id if step == S.REVIEW_DECIDED else denier.id)
            if step in (S.FULFILLED, S.PARTIALLY_FULFILLED):
                services.record_delivery(req, mover, "mail")
            services.transition(req, step, mover, _needs_input(TRANSITIONS[(req.status, step)], step))
        db.session.commit()
        assert req.status == source
        if source == S.REVIEW_REQUESTED:  # a review is decided by someone other than the denier
            people[Actor.STAFF] = db.session.get(User, reviewer.id)
        if target in (S.FULFILLED, S.PARTIALLY_FULFILLED):  # something must have been handed over
            services.record_delivery(req, people[Actor.STAFF], "pickup")
            db.session.commit()
        before = {model: _count(model) for model in (RequestEvent, AuditEvent, OutboxMessage)}
        version = req.version

        rule = TRANSITIONS[(source, target)]
        services.transition(req, target, people[actor], _needs_input(rule, target), expected_version=version)
        db.session.flush()

        assert req.status == target and req.is_open == (target in OPEN_STATUSES)
        moved = db.session.execute(select(RequestEvent).where(RequestEvent.request_id == req.id,
                                                              RequestEvent.kind == EventKind.STATUS)
                                   .order_by(RequestEvent.id.desc())).scalars().first()
        assert (moved.from_status, moved.to_status) == (source.value, target.value)
        assert moved.actor_id == people[actor].id
        status_events = db.session.execute(select(func.count()).select_from(RequestEvent).where(
            RequestEvent.request_id == req.id, RequestEvent.kind == EventKind.STATUS)).scalar_one()
        assert status_events == len(_path_to(source, waiting_from)) + 1
        audits = db.session.execute(select(AuditEvent).where(AuditEvent.action == "request.transition")
                                    .order_by(AuditEvent.seq.desc())).scalars().first()
        details = json.loads(audits.details)
        assert (details["from"], details["to"]) == (source.value, target.value)
        assert audits.object_id == str(req.id) and audits.actor_id == people[actor].id
        new_actions = db.session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)
                                         .offset(before[AuditEvent])).scalars().all()
        # One transition; a move that produces a letter also stores it (audited as a document).
        assert sorted(new_actions) == sorted(["request.transition"] + (
            ["document.uploaded"] if target in letters.TRANSITION_LETTERS else []))
        new_mail = db.session.execute(select(OutboxMessage.kind).order_by(OutboxMessage.id)
                                      .offset(before[OutboxMessage])).scalars().all()
        assert new_mail == ([] if rule.email is None else [f"records_{rule.email.value}"])
        for body in db.session.execute(select(OutboxMessage.body)).scalars():
            assert "Jordan" not in body

        db.session.rollback()
        assert {model: _count(model) for model in before} == before
        again = db.session.execute(select(RecordsRequest.status, RecordsRequest.version)
                                   .where(RecordsRequest.reference == ref)).one()
        assert (again.status, again.version) == (source, version)


def test_every_transition_is_covered_by_the_service_test():
    assert {(s, t) for s, t, _a in CASES} == set(TRANSITIONS)


def test_submit_sends_the_acknowledgment(app, make_user, make_request):
    requester = make_user(Role.REQUESTER)
    make_request(requester)
    with app.app_context():
        assert db.session.execute(select(OutboxMessage.kind)).scalars().all() == [
            f"records_{Email.ACKNOWLEDGED.value}"]


def test_blocked_moves_say_why_a_button_is_missing():
    from intake.records.workflow import blocked_moves

    same = Facts(decision_reason="endangerment", decided_by_id=7, actor_id=7, actor_licensed=True)
    assert blocked_moves(S.REVIEW_REQUESTED, Actor.STAFF, same) == {S.REVIEW_DECIDED: "same_reviewer"}
    other = Facts(decision_reason="endangerment", decided_by_id=7, actor_id=8, actor_licensed=True)
    assert blocked_moves(S.REVIEW_REQUESTED, Actor.STAFF, other) == {}
    unlicensed = Facts(decision_reason="endangerment", decided_by_id=7, actor_id=8)
    assert blocked_moves(S.REVIEW_REQUESTED, Actor.STAFF, unlicensed) == {S.REVIEW_DECIDED: "reviewer_unlicensed"}
    unverified = Facts(verified=False)
    assert blocked_moves(S.IN_REVIEW, Actor.STAFF, unverified) == {
        S.FULFILLED: "not_verified", S.PARTIALLY_FULFILLED: "not_verified"}
    undelivered = Facts(verified=True)
    assert blocked_moves(S.IN_REVIEW, Actor.STAFF, undelivered) == {
        S.FULFILLED: "not_delivered", S.PARTIALLY_FULFILLED: "not_delivered"}
    # The ways back from waiting on the requester that do not apply are not worth a word.
    waiting = Facts(awaiting_return_to=S.VERIFYING)
    assert blocked_moves(S.AWAITING_REQUESTER, Actor.STAFF, waiting) == {}
    assert blocked_moves(S.DENIED, Actor.REQUESTER, Facts(decision_reason="psychotherapy_notes")) == {
        S.REVIEW_REQUESTED: "not_reviewable"}
