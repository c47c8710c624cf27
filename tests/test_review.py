"""Quality review: high-risk calls queued at finalization, the weekly random sample (facility
weeks, idempotent), the CLI, the rubric and its refusals, the operator reading feedback on their
own call (and nobody else's), access and audit."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from sqlalchemy import select, text

from intake import RefusedToStart
from intake.audit.models import AuditEvent
from intake.calls.models import Call, CallType
from intake.calls.services import finalize_call, log_non_data_call, start_call
from intake.extensions import db
from intake.review import queries
from intake.review.models import CallReview, ReviewReason, ReviewStatus
from intake.review.services import (
    ReviewInvalid,
    ReviewRefused,
    draw_weekly_sample,
    last_full_week,
    queue_high_risk,
    submit_review,
    week_bounds,
)
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, csrf_token, login, make_app
from tests.test_calls_intake import complete, post_edit, start

MONDAY = date(2026, 11, 9)  # a facility week: Monday 9 to Sunday 15 November 2026 (PST, UTC-8)
IN_WEEK = datetime(2026, 11, 11, 18, 0, tzinfo=UTC)  # Wednesday 10:00 in California
AFTER_WEEK = datetime(2026, 11, 18, 20, 0, tzinfo=UTC)  # "now" for tests that draw that week
BASE = {"channel": "phone", "relationship_to_person": "self", "disposition": "referred"}
HIGH = {**BASE, "suicidal_intent": True, "safety_988": True}
IMMINENT = {**BASE, "medical_danger": True, "safety_911": True,
            "disclosure": {"disclosed_to": "Dispatcher 4", "affiliation": "County EMS", "reason": "Seizure now",
                           "disclosed_at": IN_WEEK}}
ALL_DONE = {"opening": "2", "listening": "2", "risk_assessment": "1", "referral_fit": "2", "safety_plan": "2",
            "closing": "0"}
FEEDBACK = "Good opening. Ask about the taper schedule earlier. canary-feedback-91c2"


def make_call(app, operator_id: int, when: datetime = IN_WEEK, data: dict | None = None, *,
              final: bool = True, call_type: CallType = CallType.DATA) -> int:
    """A call started (and finalized, unless ``final=False``) at ``when`` through the services."""
    with app.app_context():
        user = db.session.get(User, operator_id)
        with time_machine.travel(when, tick=False):
            if call_type != CallType.DATA:
                call = log_non_data_call(user, call_type)
            else:
                call = db.session.get_one(Call, start_call(user))
                if final:
                    finalize_call(call, dict(data or BASE), user)
        db.session.commit()
        return call.id


def reviews(app) -> list[CallReview]:
    with app.app_context():
        rows = db.session.execute(select(CallReview).order_by(CallReview.id)).scalars().all()
        for r in rows:
            db.session.expunge(r)
        return list(rows)


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.seq)).scalars().all()
        for r in rows:
            db.session.expunge(r)
        return list(rows)


def draw(app, size: int, monday: date = MONDAY):
    with app.app_context(), time_machine.travel(AFTER_WEEK, tick=False):
        result = draw_weekly_sample(monday, size)
        db.session.commit()
        return result


def review_of(app, call_id: int) -> CallReview | None:
    with app.app_context():
        review = db.session.execute(select(CallReview).where(CallReview.call_id == call_id)).scalar_one_or_none()
        if review is not None:
            db.session.expunge(review)
        return review


def queued(app, call_id: int, reason: ReviewReason = ReviewReason.SAMPLE) -> int:
    """Put a call on the queue directly (as the sample would) and return the review's id."""
    with app.app_context():
        call = db.session.get(Call, call_id)
        review = CallReview(call_id=call.id, operator_id=call.operator_id, reason=reason, week_of=MONDAY)
        db.session.add(review)
        db.session.commit()
        return review.id


def signed_in(app, user) -> object:
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    return client


# --- queued at finalization -------------------------------------------------------------------


def test_a_high_risk_call_lands_on_the_queue_when_finalized(app, client, login_as):
    operator = login_as(Role.OPERATOR)
    call_id = start(client)
    assert review_of(app, call_id) is None  # a draft is not on the queue
    response = post_edit(client, call_id, complete(suicidal_intent="yes", safety_988="y"))
    assert response.status_code == 302
    review = review_of(app, call_id)
    assert review is not None
    assert review.reason == ReviewReason.HIGH_RISK and review.status == ReviewStatus.OPEN
    assert review.operator_id == operator.id and review.week_of.weekday() == 0
    queued_events = events(app, "review.queued")
    assert len(queued_events) == 1 and queued_events[0].actor_id == operator.id
    assert json.loads(queued_events[0].details) == {"call_id": call_id, "reason": "high_risk"}


def test_a_lower_risk_call_is_not_queued(app, client, login_as):
    login_as(Role.OPERATOR)
    call_id = start(client)
    moderate = complete(suicidal_thoughts="yes", suicidal_intent="no", suicide_plan="no", access_to_means="no",
                        recent_attempt="no")
    assert post_edit(client, call_id, moderate).status_code == 302
    assert review_of(app, call_id) is None
    assert events(app, "review.queued") == []


def test_imminent_calls_are_queued_and_queueing_twice_changes_nothing(app, make_user):
    operator = make_user(Role.OPERATOR)
    call_id = make_call(app, operator.id, data=IMMINENT)
    assert review_of(app, call_id).reason == ReviewReason.HIGH_RISK
    with app.app_context():
        assert queue_high_risk(db.session.get(Call, call_id)) is None
        db.session.commit()
    assert len(reviews(app)) == 1 and len(events(app, "review.queued")) == 1


def test_an_edit_that_raises_the_risk_queues_the_call_once(app, make_user):
    operator = make_user(Role.OPERATOR)
    call_id = make_call(app, operator.id, when=datetime.now(UTC) - timedelta(hours=1))
    assert review_of(app, call_id) is None
    with app.app_context():
        user = db.session.get(User, operator.id)
        call = db.session.get(Call, call_id)
        finalize_call(call, dict(HIGH), user)  # an edit within the window
        finalize_call(call, dict(HIGH, notes="more"), user)
        db.session.commit()
    assert [r.reason for r in reviews(app)] == [ReviewReason.HIGH_RISK]


def test_a_sampled_call_edited_to_high_risk_keeps_its_review(app, make_user):
    operator = make_user(Role.OPERATOR)
    call_id = make_call(app, operator.id, when=datetime.now(UTC) - timedelta(hours=1))
    queued(app, call_id, ReviewReason.SAMPLE)
    with app.app_context():
        user = db.session.get(User, operator.id)
        finalize_call(db.session.get(Call, call_id), dict(HIGH), user)
        db.session.commit()
    assert [r.reason for r in reviews(app)] == [ReviewReason.SAMPLE]


# --- the weekly sample ------------------------------------------------------------------------


def test_the_sample_takes_size_calls_per_operator_and_is_idempotent(app, make_user):
    busy, quiet, drafter = (make_user(Role.OPERATOR) for _ in range(3))
    busy_calls = {make_call(app, busy.id, IN_WEEK + timedelta(minutes=i)) for i in range(5)}
    quiet_call = make_call(app, quiet.id)
    make_call(app, drafter.id, final=False)  # a draft is never sampled
    make_call(app, drafter.id, call_type=CallType.HANG_UP)  # nor a non-data call

    result = draw(app, 2)
    assert result.added == {busy.id: 2, quiet.id: 1}
    sampled = reviews(app)
    assert {r.call_id for r in sampled if r.operator_id == busy.id} <= busy_calls
    assert {r.call_id for r in sampled if r.operator_id == quiet.id} == {quiet_call}
    assert all(r.reason == ReviewReason.SAMPLE and r.week_of == MONDAY for r in sampled)

    again = draw(app, 2)
    assert again.added == {busy.id: 0, quiet.id: 0} and again.total_added == 0
    assert len(reviews(app)) == 3
    bigger = draw(app, 3)  # a larger size tops the operator up, it does not start over
    assert bigger.added == {busy.id: 1, quiet.id: 0} and bigger.on_queue[busy.id] == 3
    assert len({r.call_id for r in reviews(app)}) == 4

    audited = [json.loads(e.details) for e in events(app, "review.sampled")]
    assert audited[0] == {"week_of": "2026-11-09", "size": 2, "operators": 2, "added": 3,
                          "added_by_operator": {str(busy.id): 2, str(quiet.id): 1}}
    assert audited[1]["added"] == 0


def test_the_sample_respects_the_facility_week(app, make_user):
    operator = make_user(Role.OPERATOR)
    start_, end = week_bounds(MONDAY, "America/Los_Angeles")
    assert start_ == datetime(2026, 11, 9, 8, 0, tzinfo=UTC) and end == datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    # Sunday 23:30 in California is Monday 07:30 UTC: still the week before.
    before = make_call(app, operator.id, datetime(2026, 11, 9, 7, 30, tzinfo=UTC))
    first = make_call(app, operator.id, datetime(2026, 11, 9, 8, 30, tzinfo=UTC))  # Monday 00:30 local
    last = make_call(app, operator.id, datetime(2026, 11, 16, 7, 30, tzinfo=UTC))  # Sunday 23:30 local
    after = make_call(app, operator.id, datetime(2026, 11, 16, 8, 30, tzinfo=UTC))  # next Monday 00:30
    draw(app, 10)
    assert {r.call_id for r in reviews(app)} == {first, last}
    draw(app, 10, MONDAY - timedelta(days=7))
    assert review_of(app, before).week_of == MONDAY - timedelta(days=7)
    assert review_of(app, after) is None


def test_calls_already_on_the_queue_are_not_sampled(app, make_user):
    operator = make_user(Role.OPERATOR)
    high = {make_call(app, operator.id, IN_WEEK + timedelta(minutes=i), HIGH) for i in range(3)}
    low = make_call(app, operator.id, IN_WEEK + timedelta(hours=2))
    assert {r.call_id for r in reviews(app)} == high
    assert draw(app, 2).added == {operator.id: 1}
    assert review_of(app, low).reason == ReviewReason.SAMPLE


def test_size_zero_draws_nothing_and_bad_arguments_are_refused(app, make_user):
    operator = make_user(Role.OPERATOR)
    make_call(app, operator.id)
    assert draw(app, 0).total_added == 0 and reviews(app) == []
    with app.app_context():
        with pytest.raises(ValueError):
            draw_weekly_sample(MONDAY + timedelta(days=1), 2)
        with pytest.raises(ValueError):
            draw_weekly_sample(MONDAY, 51)


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_sample_prints_counts_by_account_number(app, runner, make_user):
    a, b = make_user(Role.OPERATOR), make_user(Role.OPERATOR)
    for i in range(3):
        make_call(app, a.id, IN_WEEK + timedelta(minutes=i))
    make_call(app, b.id)
    with time_machine.travel(AFTER_WEEK, tick=False):
        result = runner.invoke(args=["review", "sample"])  # default: the last full week
    assert result.exit_code == 0, result.output
    assert "Week of 2026-11-09 to 2026-11-15" in result.output
    assert f"account #{a.id}: 2 added, 2 sampled in all" in result.output
    assert f"account #{b.id}: 1 added, 1 sampled in all" in result.output
    assert "Done: 3 call(s) added" in result.output
    assert "@" not in result.output  # never an e-mail address
    with time_machine.travel(AFTER_WEEK, tick=False):
        again = runner.invoke(args=["review", "sample", "--week", "2026-11-12"])  # any day of that week
    assert again.exit_code == 0 and "Done: 0 call(s) added" in again.output
    assert len(reviews(app)) == 3


def test_cli_refuses_bad_weeks_and_says_when_sampling_is_off(app, runner):
    with time_machine.travel(AFTER_WEEK, tick=False):
        current = runner.invoke(args=["review", "sample", "--week", "2026-11-18"])
        nonsense = runner.invoke(args=["review", "sample", "--week", "last week"])
        too_big = runner.invoke(args=["review", "sample", "--size", "99"])
        off = runner.invoke(args=["review", "sample", "--size", "0"])
        empty = runner.invoke(args=["review", "sample"])
    assert current.exit_code == 1 and "has not ended yet" in current.output
    assert nonsense.exit_code == 2 and "YYYY-MM-DD" in nonsense.output
    assert too_big.exit_code == 2
    assert off.exit_code == 0 and "turned off" in off.output
    assert empty.exit_code == 0 and "No operator finalized a data call" in empty.output
    assert len(events(app, "review.sampled")) == 1  # only the run that drew anything at all


# --- the queue page ---------------------------------------------------------------------------


def test_the_queue_lists_open_reviews_with_coded_columns_and_filters(app, client, login_as, make_user):
    admin = login_as(FULL_ADMIN)
    a, b = make_user(Role.OPERATOR), make_user(Role.OPERATOR)
    high = make_call(app, a.id, data=dict(HIGH, notes="canary-note-55aa"))
    sampled = make_call(app, b.id)
    queued(app, sampled)
    page = client.get("/admin/review/").get_data(as_text=True)
    assert f'href="/calls/{high}"' in page and f'href="/calls/{sampled}"' in page
    assert f">{a.display_name}</td>" in page  # named as colleagues know them (issue 19)
    assert f"Account #{a.id}" not in page
    assert "High risk" in page and "Weekly sample" in page
    assert "canary-note-55aa" not in page and a.email not in page
    only_sample = client.get("/admin/review/?reason=sample").get_data(as_text=True)
    assert f'href="/calls/{sampled}"' in only_sample and f'href="/calls/{high}"' not in only_sample
    by_operator = client.get(f"/admin/review/?operator=%23{a.id}").get_data(as_text=True)
    assert f'href="/calls/{high}"' in by_operator and f'href="/calls/{sampled}"' not in by_operator
    done_tab = client.get("/admin/review/?tab=done").get_data(as_text=True)
    assert "No review matches." in done_tab
    assert admin.id


@pytest.mark.parametrize("query", ["?tab=closed", "?reason=boss", "?operator=pat%40example.org",
                                   "?operator=<script>", "?operator=99999999999", "?after=not-a-cursor",
                                   "?after=" + "A" * 80])
def test_bad_queue_filters_are_a_400_not_a_500(client, login_as, query):
    login_as(FULL_ADMIN)
    response = client.get("/admin/review/" + query)
    assert response.status_code == 400
    assert "<script>" not in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["?reason=%20", "?reason=%0D%0A", "?operator=%20", "?operator=%20%20",
                                   "?operator=%09", "?tab=%09"])
def test_a_blank_queue_filter_means_any_not_a_500(client, login_as, query):
    """Found by the fuzz (tests/fuzz): Optional() let a whitespace reason through to ReviewReason(...)."""
    login_as(FULL_ADMIN)
    response = client.get("/admin/review/" + query)
    assert response.status_code == 200
    assert "Some filters are not valid" not in response.get_data(as_text=True)


def test_the_queue_pages_by_keyset(app, client, login_as, make_user, monkeypatch):
    login_as(FULL_ADMIN)
    operator = make_user(Role.OPERATOR)
    ids = [make_call(app, operator.id, IN_WEEK + timedelta(minutes=i), HIGH) for i in range(5)]
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    seen: list[int] = []
    url: str | None = "/admin/review/"
    while url and len(seen) < 10:
        page = client.get(url).get_data(as_text=True)
        seen += sorted((i for i in ids if f'href="/calls/{i}"' in page), key=lambda i: page.index(f'href="/calls/{i}"'))
        found = re.search(r'href="(/admin/review/\?after=[^"]+)"', page)
        url = html.unescape(found.group(1)) if found else None
    assert seen == ids  # oldest first, each once, three pages


def test_operators_and_requesters_cannot_open_the_queue(app, make_user):
    operator, requester = make_user(Role.OPERATOR), make_user(Role.REQUESTER)
    for user in (operator, requester):
        client = signed_in(app, user)
        assert client.get("/admin/review/").status_code == 403
        assert client.post("/admin/review/sample",
                           data={"csrf_token": csrf_token(client, "/account")}).status_code == 403


def test_the_sample_button_draws_last_week(app, client, login_as, make_user):
    admin = login_as(FULL_ADMIN)
    operator = make_user(Role.OPERATOR)
    with app.app_context():
        monday = last_full_week()
    make_call(app, operator.id, datetime.combine(monday + timedelta(days=2), time(18), tzinfo=UTC))
    make_call(app, operator.id, datetime.combine(monday + timedelta(days=7), time(18), tzinfo=UTC))  # this week
    token = csrf_token(client, "/admin/review/")
    response = client.post("/admin/review/sample", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/review/"
    assert f"Week of {monday.isoformat()}: 1 call(s) added" in client.get("/admin/review/").get_data(as_text=True)
    assert [r.week_of for r in reviews(app)] == [monday]
    assert events(app, "review.sampled")[0].actor_id == admin.id
    assert client.post("/admin/review/sample", data={}).status_code == 400  # no CSRF token


# --- the rubric -------------------------------------------------------------------------------


@pytest.fixture()
def high_review(app, make_user):
    """An open review of an operator's high-risk call; returns (review id, call id, operator)."""
    operator = make_user(Role.OPERATOR)
    call_id = make_call(app, operator.id, when=datetime.now(UTC) - timedelta(days=1),
                        data=dict(HIGH, notes="canary-note-0b1d", substances=["clonazepam"]))
    return review_of(app, call_id).id, call_id, operator


def post_review(client, review_id: int, data: dict):
    token = csrf_token(client, f"/admin/review/{review_id}")
    return client.post(f"/admin/review/{review_id}", data={"csrf_token": token, **data})


def test_the_review_page_shows_coded_facts_only_and_is_audited(app, client, login_as, high_review):
    admin = login_as(FULL_ADMIN)
    review_id, call_id, operator = high_review
    page = client.get(f"/admin/review/{review_id}").get_data(as_text=True)
    assert f"Review of call #{call_id}" in page and "Clonazepam" in page and "988" in page
    assert f'href="/calls/{call_id}"' in page and operator.display_name in page
    assert 'value="na"' in page and "Done well" in page
    assert "canary-note-0b1d" not in page and operator.email not in page
    viewed = events(app, "review.viewed")
    assert len(viewed) == 1 and viewed[0].actor_id == admin.id


def test_a_complete_review_is_saved_and_audited_without_the_feedback(app, client, login_as, high_review):
    admin = login_as(FULL_ADMIN)
    review_id, call_id, _ = high_review
    response = post_review(client, review_id, {**ALL_DONE, "feedback": FEEDBACK})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/review/"
    review = review_of(app, call_id)
    assert review.status == ReviewStatus.DONE and review.reviewer_id == admin.id and review.feedback == FEEDBACK
    assert (review.score_opening, review.score_risk_assessment, review.score_closing) == (2, 1, 0)
    submitted = events(app, "review.submitted")
    assert len(submitted) == 1 and "canary-feedback" not in submitted[0].details
    assert json.loads(submitted[0].details)["scores"]["safety_plan"] == 2
    with app.app_context():  # the feedback is encrypted at rest
        stored = db.session.execute(text("SELECT feedback FROM call_reviews WHERE id = :id"),
                                    {"id": review_id}).scalar_one()
    assert stored and "canary-feedback" not in stored
    done = client.get("/admin/review/?tab=done").get_data(as_text=True)
    assert f"#{call_id}" in done


@pytest.mark.parametrize("change, field, message", [
    ({"opening": None}, "opening", "Score this item."),
    ({"closing": "7"}, "closing", "Choose one of the scores offered."),
    ({"listening": "-1"}, "listening", "Choose one of the scores offered."),
    ({"referral_fit": "na"}, "referral_fit", "Choose one of the scores offered."),
    ({"safety_plan": "na"}, "safety_plan", "needed a safety plan"),
    ({"feedback": ""}, "feedback", "Write feedback for the operator."),
    ({"feedback": "   \n  "}, "feedback", "Write feedback for the operator."),
    ({"feedback": "x" * 4001}, "feedback", "Feedback is at most 4,000 characters."),
])
def test_bad_rubrics_are_refused_and_the_input_is_kept(app, client, login_as, high_review, change, field, message):
    login_as(FULL_ADMIN)
    review_id, call_id, _ = high_review
    data = {**ALL_DONE, "feedback": "Kept feedback text 4411", **change}
    response = post_review(client, review_id, {k: v for k, v in data.items() if v is not None})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page
    if field != "feedback":
        assert "Kept feedback text 4411" in page
    assert review_of(app, call_id).status == ReviewStatus.OPEN
    assert events(app, "review.submitted") == []


def test_not_needed_is_accepted_when_the_call_needed_no_safety_action(app, client, login_as, make_user):
    login_as(FULL_ADMIN)
    operator = make_user(Role.OPERATOR)
    call_id = make_call(app, operator.id)
    review_id = queued(app, call_id)
    response = post_review(client, review_id, {**ALL_DONE, "safety_plan": "na", "feedback": "Fine call."})
    assert response.status_code == 302
    review = review_of(app, call_id)
    assert review.status == ReviewStatus.DONE and review.score_safety_plan is None


def test_a_supervisor_cannot_review_their_own_call(app, client, login_as):
    admin = login_as(FULL_ADMIN)
    call_id = make_call(app, admin.id, when=datetime.now(UTC) - timedelta(days=1), data=HIGH)
    review_id = review_of(app, call_id).id
    page = client.get(f"/admin/review/{review_id}").get_data(as_text=True)
    assert "This is your own call" in page and 'name="feedback"' not in page
    response = post_review(client, review_id, {**ALL_DONE, "feedback": FEEDBACK})
    assert response.status_code == 403
    assert review_of(app, call_id).status == ReviewStatus.OPEN
    with app.app_context():
        with pytest.raises(ReviewRefused):
            submit_review(db.session.get(CallReview, review_id), {"opening": 2}, FEEDBACK,
                          db.session.get(User, admin.id))


def test_services_refuse_bad_scores_directly(app, make_user, high_review):
    admin, other = make_user(FULL_ADMIN), make_user(Role.OPERATOR)
    review_id, _, operator = high_review
    scores = {"opening": 2, "listening": 2, "risk_assessment": 2, "referral_fit": 2, "safety_plan": 2,
              "closing": True}
    with app.app_context():
        review = db.session.get(CallReview, review_id)
        with pytest.raises(ReviewInvalid) as refused:
            submit_review(review, scores, FEEDBACK, db.session.get(User, admin.id))
        assert set(refused.value.errors) == {"closing"}
        with pytest.raises(ReviewRefused):  # an operator has no review permission
            submit_review(review, dict(scores, closing=2), FEEDBACK, db.session.get(User, other.id))


def test_a_done_review_can_be_amended_and_is_shown_as_new_again(app, client, login_as, high_review):
    login_as(FULL_ADMIN)
    review_id, call_id, operator = high_review
    post_review(client, review_id, {**ALL_DONE, "feedback": FEEDBACK})
    operator_client = signed_in(app, operator)
    operator_client.get(f"/calls/{call_id}")
    assert review_of(app, call_id).operator_seen_at is not None
    page = client.get(f"/admin/review/{review_id}").get_data(as_text=True)
    assert "canary-feedback-91c2" in page and "Save the changes" in page  # the form holds the saved review
    response = post_review(client, review_id, {**ALL_DONE, "closing": "2", "feedback": FEEDBACK + " Better."})
    assert response.status_code == 302
    review = review_of(app, call_id)
    assert review.score_closing == 2 and review.operator_seen_at is None
    updated = events(app, "review.updated")
    assert len(updated) == 1 and json.loads(updated[0].details)["changed"] == ["closing", "feedback"]


# --- the operator reads the feedback ----------------------------------------------------------


def test_the_operator_sees_feedback_on_their_call_and_others_do_not(app, client, login_as, make_user, high_review):
    login_as(FULL_ADMIN)
    review_id, call_id, operator = high_review
    hostile = "<script>alert(1)</script> canary-feedback-91c2"
    mine = signed_in(app, operator)
    assert "Quality review" not in mine.get(f"/calls/{call_id}").get_data(as_text=True)  # open: not shown yet
    assert post_review(client, review_id, {**ALL_DONE, "feedback": hostile}).status_code == 302

    page = mine.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "canary-feedback-91c2" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "Done well" in page and "Not done" in page
    seen_at = review_of(app, call_id).operator_seen_at
    assert seen_at is not None
    mine.get(f"/calls/{call_id}")
    assert review_of(app, call_id).operator_seen_at == seen_at  # stamped once
    assert len(events(app, "review.seen")) == 1

    colleague = signed_in(app, make_user(Role.OPERATOR))
    response = colleague.get(f"/calls/{call_id}")
    assert response.status_code == 200  # operators may read every final call...
    assert "canary-feedback-91c2" not in response.get_data(as_text=True)  # ...not the feedback on it
    assert "Quality review" not in response.get_data(as_text=True)

    reviewer_page = client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "canary-feedback-91c2" in reviewer_page and f"/admin/review/{review_id}" in reviewer_page
    assert len(events(app, "review.seen")) == 1  # a reviewer reading it does not mark it seen


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 51, "2", 2.5, True])
def test_a_bad_sample_size_refuses_to_start(tmp_path, value):
    with pytest.raises(RefusedToStart, match="REVIEW_SAMPLE_SIZE"):
        make_app(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path / "instance", REVIEW_SAMPLE_SIZE=value)


def test_the_sample_size_comes_from_the_environment(monkeypatch):
    import config as config_module

    settings = {"REVIEW_SAMPLE_SIZE": 2}
    config_module.load_environment(settings, {"REVIEW_SAMPLE_SIZE": "5"})
    assert settings["REVIEW_SAMPLE_SIZE"] == 5 and config_module.review_setting_problems(settings) == []
