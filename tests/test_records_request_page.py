"""The staff request page as one composition (issue 19): the next steps for each state (a pure
function), the jump nav and the actions column, every button naming its effect in every state, and
the withdrawal by staff (a reason from the list or in words, and a confirmation; the reason kept on
the timeline), with bad and hostile input."""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.records import request_page, services
from intake.records.models import (
    EventCode,
    EventKind,
    RecordsRequest,
    RequestEvent,
    RequestStatus,
    RequestType,
    Visibility,
)
from intake.records.request_page import PageFacts, Step, move_button, next_steps, primary_moves
from intake.records.timeline import describe, wording
from intake.records.workflow import CLOSED_STATUSES, RESUMABLE, TRANSITIONS, WithdrawReason, withdrawal_missing
from intake.records.workflow import Given as MoveInput
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, LICENCE, OTHER_LICENCE, csrf_token, login
from tests.test_records_workflow import ARCHIVE_ID, _needs_input, _path_to

S = RequestStatus


# --- Next steps: a pure function of the state and what is missing -------------------------------

def codes(facts: PageFacts) -> list[Step]:
    return [step.code for step in next_steps(facts)]


def test_next_steps_walk_the_common_case_and_shrink_as_work_is_done():
    assert codes(PageFacts(S.SUBMITTED, assigned=False)) == [Step.CLAIM, Step.START_CHECK]
    assert codes(PageFacts(S.SUBMITTED)) == [Step.START_CHECK]
    assert codes(PageFacts(S.VERIFYING)) == [Step.VERIFY]
    review = PageFacts(S.IN_REVIEW, verified=True, fee_open=True)
    assert codes(review) == [Step.UPLOAD, Step.DELIVER, Step.FEE, Step.COMPLETE]
    added = PageFacts(S.IN_REVIEW, verified=True, records_added=True)
    assert codes(added) == [Step.RELEASE, Step.DELIVER, Step.COMPLETE]
    released = PageFacts(S.IN_REVIEW, verified=True, records_added=True, records_released=True)
    assert codes(released) == [Step.DELIVER, Step.COMPLETE]
    delivered = PageFacts(S.IN_REVIEW, verified=True, records_added=True, records_released=True, delivered=True)
    assert codes(delivered) == [Step.COMPLETE]
    assert codes(PageFacts(S.FULFILLED)) == [Step.CLOSED]


def test_next_steps_point_at_the_form_that_does_each_step():
    by_code = {s.code: s.target for s in next_steps(PageFacts(S.IN_REVIEW, assigned=False, fee_open=True))}
    assert by_code == {Step.CLAIM: "assignment", Step.UPLOAD: "add-document", Step.DELIVER: "delivery-heading",
                       Step.FEE: "fees", Step.COMPLETE: "actions"}  # completing waits for the delivery
    done = next_steps(PageFacts(S.IN_REVIEW, records_added=True, records_released=True, delivered=True))
    assert [s.target for s in done] == ["move-fulfilled"]
    assert [s.target for s in next_steps(PageFacts(S.VERIFYING))] == ["move-in_review"]
    assert [s.target for s in next_steps(PageFacts(S.WITHDRAWN))] == ["move-in_review"]  # reopen


def test_next_steps_for_post_pickup_a_third_party_and_the_other_states():
    mailed = PageFacts(S.IN_REVIEW, records_added=True, download=False)
    assert codes(mailed) == [Step.DELIVER, Step.COMPLETE]  # nothing to release for a posted copy
    third = PageFacts(S.IN_REVIEW, request_type=RequestType.THIRD_PARTY, consent_problem=True)
    assert codes(third)[:2] == [Step.CONSENT, Step.UPLOAD]
    accounting = PageFacts(S.IN_REVIEW, request_type=RequestType.ACCOUNTING)
    assert codes(accounting) == [Step.DELIVER, Step.COMPLETE]
    waiting = next_steps(PageFacts(S.AWAITING_REQUESTER, awaiting_return_to=S.VERIFYING))
    assert [(s.code, s.target) for s in waiting] == [(Step.WAIT, "move-verifying")]
    assert codes(PageFacts(S.DENIED, reviewable=True)) == [Step.REVIEW_IF_ASKED]
    assert codes(PageFacts(S.DENIED)) == [Step.CLOSED]
    assert codes(PageFacts(S.REVIEW_REQUESTED)) == [Step.DECIDE_REVIEW]
    assert primary_moves(PageFacts(S.SUBMITTED)) == {S.VERIFYING}
    assert primary_moves(PageFacts(S.NO_RECORDS)) == frozenset()  # reopening is folded: not the day's work
    assert primary_moves(PageFacts(S.IN_REVIEW, delivered=True)) == {S.FULFILLED}
    assert primary_moves(PageFacts(S.IN_REVIEW)) == frozenset()  # completing waits for the delivery


@pytest.mark.parametrize("status", list(S))
def test_every_state_has_a_next_step(status):
    assert next_steps(PageFacts(status, awaiting_return_to=S.IN_REVIEW))


# --- Buttons that name their effect --------------------------------------------------------------

VAGUE = {"save", "submit", "ok", "go", "send", "claim", "assign", "withdraw", "deny", "release", "confirm",
         "continue", "yes", "no", "update", "apply", "done", "next", "add document", "release again"}


def test_move_buttons_say_what_happens_from_where_the_request_is():
    assert move_button(S.FULFILLED, S.IN_REVIEW) == "Reopen the request"
    assert move_button(S.WITHDRAWN, S.IN_REVIEW) == "Reopen the request"
    assert move_button(S.VERIFYING, S.IN_REVIEW) == "Record the identity as verified"
    assert move_button(S.AWAITING_REQUESTER, S.IN_REVIEW) == "Resume preparing the records"
    assert move_button(S.IN_REVIEW, S.FULFILLED) == "Complete the request"
    for (source, target) in TRANSITIONS:
        label = move_button(source, target)
        assert label.lower() not in VAGUE and len(label.split()) >= 3, label
        assert ("Reopen" in label) == (source in CLOSED_STATUSES and target == S.IN_REVIEW), (source, target)


class Buttons(HTMLParser):
    """The text of every submit button inside <main> (the menu's "Sign out" is not the page's)."""

    def __init__(self) -> None:
        super().__init__()
        self.buttons: list[str] = []
        self._in_main = 0
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "main":
            self._in_main += 1
        if tag == "button" and self._in_main and dict(attrs).get("type", "submit") == "submit":
            self._text = []

    def handle_endtag(self, tag):
        if tag == "main":
            self._in_main -= 1
        if tag == "button" and self._text is not None:
            self.buttons.append(" ".join("".join(self._text).split()))
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def submit_buttons(html: str) -> list[str]:
    parser = Buttons()
    parser.feed(html)
    return parser.buttons


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "clerk": make_user(FULL_ADMIN, licence=LICENCE),
            "reviewer": make_user(FULL_ADMIN, licence=OTHER_LICENCE)}


def _load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def bring_to(app, ref: str, state: S, people) -> None:
    """Move the request through the service to ``state`` (as the workflow tests do)."""
    with app.app_context():
        req = _load(ref)
        for step in _path_to(state):
            mover = db.session.get(User, people["reviewer" if step == S.REVIEW_DECIDED else "clerk"].id)
            if step in (S.FULFILLED, S.PARTIALLY_FULFILLED):
                services.record_delivery(req, mover, "mail")
            services.transition(req, step, mover, _needs_input(TRANSITIONS[(req.status, step)], step))
        db.session.commit()


# Labels that would say the wrong thing in a state (the mismatches the page must not show).
WRONG_IN = {
    "closed": re.compile(r"verified|prepar|Complete the request|Deny|Withdraw the request|Start the identity", re.I),
    "open": re.compile(r"Reopen", re.I),
}


@pytest.mark.parametrize("state", [s for s in S if s != S.AWAITING_REQUESTER] + ["waiting"])
def test_every_button_on_the_staff_page_names_its_effect(app, client, people, make_request, archive_patient, state):
    ARCHIVE_ID["id"] = archive_patient()
    status = S.AWAITING_REQUESTER if state == "waiting" else S(state)
    ref = make_request(people["requester"])
    bring_to(app, ref, status, people)
    assert login(client, people["clerk"].email).status_code == 302
    response = client.get(f"/queue/requests/{ref}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    buttons = submit_buttons(html)
    assert buttons, "a worker sees at least one button"
    for text in buttons:
        bare = text.split(":")[0].strip()
        assert bare.lower() not in VAGUE, f"vague button {text!r} in {status}"
        assert len(bare.split()) >= 3, f"{text!r} does not say what happens"
        assert not WRONG_IN["closed" if status in CLOSED_STATUSES else "open"].search(bare), (status, text)
    assert len(buttons) == len(set(buttons)), f"two buttons read the same: {buttons}"
    offered = {target for (source, target) in TRANSITIONS if source == status}
    for target in offered:
        label = move_button(status, target)
        # Each move offered has its button with exactly the words move_button gives.
        if f'name="target" value="{target.value}"' in html:
            assert label in buttons, (status, target, buttons)
    if status in CLOSED_STATUSES and status not in (S.DENIED,):
        assert "Reopen the request" in buttons


# --- The composition: header, next steps, jump nav, actions column ---------------------------------

def ids_of(html: str) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', html))


def in_page_links(html: str, container_id: str) -> list[str]:
    start = html.index(f'id="{container_id}"')
    end = html.index("</nav>" if container_id == "section-nav" else "</section>", start)
    return re.findall(r'href="#([^"]+)"', html[start:end])


@pytest.mark.parametrize("status", [S.SUBMITTED, S.VERIFYING, S.IN_REVIEW, S.FULFILLED])
def test_the_header_nav_and_next_steps_lead_to_places_on_the_page(app, client, people, make_request,
                                                                  archive_patient, status):
    ARCHIVE_ID["id"] = archive_patient()
    ref = make_request(people["requester"])
    bring_to(app, ref, status, people)
    login(client, people["clerk"].email)
    html = client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    ids = ids_of(html)
    nav = in_page_links(html, "section-nav")
    assert {"details", "identity", "documents", "fees", "letters", "messages", "timeline", "actions"} <= set(nav)
    steps = in_page_links(html, "next-steps")
    assert steps and set(nav + steps) <= ids, set(nav + steps) - ids
    start = html.index('id="request-header"')
    header = html[start:html.index("</header>", start)]
    assert 'id="request-status"' in header and 'id="due-explained"' in header and 'id="assignee"' in header
    assert html.index('id="actions"') > html.index('id="timeline"')  # the side column follows the sections
    assert '<aside class="col-lg-4"' in html


def test_the_common_case_forms_are_open_and_the_others_folded(app, client, people, make_request, archive_patient):
    ARCHIVE_ID["id"] = archive_patient()
    ref = make_request(people["requester"])
    bring_to(app, ref, S.IN_REVIEW, people)
    login(client, people["clerk"].email)
    html = client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert '<section class="card mb-3 border-primary" id="add-document"' in html  # the next step: the records
    for folded in ("move-withdrawn", "move-denied", "move-no_records", "move-awaiting_requester"):
        assert re.search(rf'<details class="mb-2" id="{folded}">', html), folded
    assert re.search(r"<details>\s*<summary[^>]*>Give an estimate", html)  # fees never block: folded
    assert "records.pdf" not in html


def test_a_privacy_officer_reads_the_page_without_steps_or_forms(app, client, make_user, people, make_request):
    reader = make_user(Role.PRIVACY_OFFICER)
    ref = make_request(people["requester"])
    login(client, reader.email)
    html = client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert 'id="read-only"' in html and 'id="next-steps"' not in html and not submit_buttons(html)


# --- Withdrawing: a reason and a confirmation ----------------------------------------------------

def test_withdrawal_missing_names_what_a_withdrawal_by_staff_lacks():
    assert withdrawal_missing(MoveInput()) == {"withdraw_reason": "required", "withdraw_confirmed": "required"}
    assert withdrawal_missing(MoveInput(withdraw_reason="other", withdraw_confirmed=True)) == {
        "withdraw_detail": "required"}
    assert withdrawal_missing(MoveInput(withdraw_reason="other", withdraw_detail="  ", withdraw_confirmed=True))
    assert withdrawal_missing(MoveInput(withdraw_reason="nonsense", withdraw_confirmed=True)) == {
        "withdraw_reason": "required"}
    assert withdrawal_missing(MoveInput(withdraw_reason="duplicate", withdraw_confirmed=True)) == {}


def withdraw(client, ref: str, version: int, **fields):
    data = {"target": "withdrawn", "move-withdrawn-version": str(version),
            "move-withdrawn-csrf_token": csrf_token(client, "/account")}
    data.update({f"move-withdrawn-{k}": v for k, v in fields.items()})
    return client.post(f"/queue/requests/{ref}/move", data=data)


def status_of(app, ref: str) -> tuple[S, int]:
    with app.app_context():
        req = _load(ref)
        return req.status, req.version


@pytest.mark.parametrize("fields, message", [
    ({"withdraw_confirmed": "y"}, "Choose why the request is withdrawn."),
    ({"withdraw_reason": "duplicate"}, "Tick the box to confirm that the request will be closed."),
    ({"withdraw_reason": "other", "withdraw_confirmed": "y"}, "Give the reason, for the record."),
    ({"withdraw_reason": "other", "withdraw_detail": " \n\t ", "withdraw_confirmed": "y"},
     "Give the reason, for the record."),
    ({"withdraw_reason": "'; DROP TABLE records_request; --", "withdraw_confirmed": "y"}, "Not a valid choice"),
    ({"withdraw_reason": "other", "withdraw_detail": "x" * 5000, "withdraw_confirmed": "y"},
     "Please keep this under"),
])
def test_a_withdrawal_without_a_reason_or_confirmation_is_refused_and_nothing_is_lost(
        app, client, people, make_request, fields, message):
    ref = make_request(people["requester"])
    login(client, people["clerk"].email)
    before = status_of(app, ref)
    response = withdraw(client, ref, before[1], **fields)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and message in unescape(html)
    assert status_of(app, ref) == before
    assert re.search(r'<details class="mb-2" id="move-withdrawn" open>|id="move-withdrawn" aria-labelledby', html)
    if fields.get("withdraw_detail", "").strip():
        assert fields["withdraw_detail"][:100] in html  # the typed words are kept


def test_a_withdrawal_keeps_its_reason_on_the_timeline_and_in_the_audit(app, client, people, make_request):
    ref = make_request(people["requester"])
    login(client, people["clerk"].email)
    hostile = "<script>alert(1)</script> The requester phoned: \u202eevil"
    response = withdraw(client, ref, status_of(app, ref)[1], withdraw_reason="other", withdraw_detail=hostile,
                        withdraw_confirmed="y")
    assert response.status_code == 302
    assert status_of(app, ref)[0] == S.WITHDRAWN
    with app.app_context():
        req = _load(ref)
        notes = db.session.execute(select(RequestEvent).where(
            RequestEvent.request_id == req.id, RequestEvent.kind == EventKind.NOTE)).scalars().all()
        assert len(notes) == 1 and notes[0].visibility == Visibility.INTERNAL
        assert notes[0].code == EventCode.WITHDRAW_REASON  # worded when read; the typed words as typed
        assert describe(notes[0], "en").text == "Reason for withdrawing the request: Other (explain below)."
        assert notes[0].body == hostile.strip()
        audit = db.session.execute(select(AuditEvent).where(AuditEvent.action == "request.transition")
                                   .order_by(AuditEvent.seq.desc())).scalars().first()
        assert json.loads(audit.details)["reason"] == WithdrawReason.OTHER
    html = client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Reopen the request" in submit_buttons(html)


def test_the_requester_withdraws_with_the_confirmation_alone(app, people, make_request):
    """The reason is the office's record; the requester's own withdrawal (the portal) asks no reason."""
    ref = make_request(people["requester"])
    with app.app_context():
        services.transition(_load(ref), S.WITHDRAWN, db.session.get(User, people["requester"].id))
        db.session.commit()
    assert status_of(app, ref)[0] == S.WITHDRAWN


def test_the_service_refuses_a_withdrawal_by_staff_without_its_reason(app, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        with pytest.raises(services.RequestInvalid) as refused:
            services.transition(_load(ref), S.WITHDRAWN, db.session.get(User, people["clerk"].id))
        assert set(refused.value.errors) == {"withdraw_reason", "withdraw_confirmed"}
        db.session.rollback()


def test_withdraw_reason_labels_cover_every_reason():
    assert set(request_page.WITHDRAW_REASON_LABELS) == set(WithdrawReason)
    with force_locale("en"):
        assert wording(EventCode.WITHDRAW_REASON, {"reason": "duplicate"}) == (
            "Reason for withdrawing the request: A duplicate of another request.")


def test_resumable_moves_have_their_own_words():
    for source in RESUMABLE:
        assert move_button(S.AWAITING_REQUESTER, source).split()[0] == "Resume"
