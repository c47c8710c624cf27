"""The staff request page's words and its "next steps": pure functions, no database, no request.

- ``move_button(source, target)``: the text of the button that makes a move, naming its effect
  from where the request stands ("Reopen the request" on a closed one, never "Identity verified:
  prepare records").
- ``next_steps(facts)``: what the records office does next for the request's state and what is
  still missing, in order, each step with the id of the page section or form that does it.
- ``WITHDRAW_REASON_LABELS``: why staff withdraw a request (the timeline keeps the code,
  ``EventCode.WITHDRAW_REASON``, and words it when read).

Staff-only: the records office's pages are in English (the strings are marked all the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flask_babel import lazy_gettext as _l

from intake.records.models import RequestStatus, RequestType
from intake.records.workflow import CLOSED_STATUSES, WithdrawReason

S = RequestStatus

WITHDRAW_REASON_LABELS = {
    WithdrawReason.REQUESTER_ASKED: _l("The requester asked to withdraw it (by phone, post or e-mail)"),
    WithdrawReason.DUPLICATE: _l("A duplicate of another request"),
    WithdrawReason.WRONG_FACILITY: _l("Meant for another facility or provider"),
    WithdrawReason.OTHER: _l("Other (explain below)"),
}


# The button for each move, by where it goes; a few depend on where the request is now.
_BUTTONS: dict[RequestStatus, Any] = {
    S.SUBMITTED: _l("Resume the request as received"),
    S.VERIFYING: _l("Start the identity check"),
    S.IN_REVIEW: _l("Record the identity as verified"),
    S.AWAITING_REQUESTER: _l("Send the question to the requester"),
    S.FULFILLED: _l("Complete the request"),
    S.PARTIALLY_FULFILLED: _l("Complete the request in part"),
    S.DENIED: _l("Deny the request"),
    S.NO_RECORDS: _l("Close the request: no records held"),
    S.WITHDRAWN: _l("Withdraw the request"),
    S.REVIEW_REQUESTED: _l("Record the requester's request for a review"),
    S.REVIEW_DECIDED: _l("Record the review decision"),
}
_BUTTONS_FROM: dict[tuple[RequestStatus, RequestStatus], Any] = {
    (S.AWAITING_REQUESTER, S.VERIFYING): _l("Resume the identity check"),
    (S.AWAITING_REQUESTER, S.IN_REVIEW): _l("Resume preparing the records"),
}


def move_button(source: RequestStatus | str, target: RequestStatus | str) -> str:
    """What the button that moves a request from ``source`` to ``target`` says: its effect."""
    source, target = S(source), S(target)
    if target == S.IN_REVIEW and source in CLOSED_STATUSES:
        return str(_l("Reopen the request"))
    return str(_BUTTONS_FROM.get((source, target)) or _BUTTONS[target])


class Step(StrEnum):
    CLAIM = "claim"
    START_CHECK = "start_check"
    VERIFY = "verify"
    CONSENT = "consent"
    UPLOAD = "upload"
    RELEASE = "release"
    DELIVER = "deliver"
    FEE = "fee"
    COMPLETE = "complete"
    WAIT = "wait"
    REVIEW_IF_ASKED = "review_if_asked"
    DECIDE_REVIEW = "decide_review"
    CLOSED = "closed"


@dataclass(frozen=True)
class PageFacts:
    """What the next steps depend on: the request's state and what it still lacks."""

    status: RequestStatus
    request_type: RequestType = RequestType.COPY
    assigned: bool = True
    verified: bool = False
    records_added: bool = False  # a document for the requester (released records) is on the request
    records_released: bool = False  # one of them is released and can be downloaded now
    download: bool = True  # the requester asked for a secure download (else post or pick-up)
    delivered: bool = False
    consent_problem: bool = False  # a third-party request whose consent does not allow sending now
    fee_open: bool = False  # no estimate yet, and the request is not free by law
    reviewable: bool = False  # a denial a review may reconsider
    awaiting_return_to: RequestStatus | None = None


@dataclass(frozen=True)
class NextStep:
    code: Step
    text: str
    target: str  # the id of the section or form on the page that does it


_STEP_TEXT = {
    Step.CLAIM: _l("Assign the request to yourself (or to a colleague)."),
    Step.START_CHECK: _l("Start the identity check."),
    Step.VERIFY: _l("Check the identity against the archive index and record it as verified."),
    Step.CONSENT: _l("Get a complete, matching consent before anything is sent."),
    Step.UPLOAD: _l("Add the records to the request (as released records)."),
    Step.RELEASE: _l("Release the records to the requester."),
    Step.DELIVER: _l("Record the delivery (download, post or pick-up)."),
    Step.FEE: _l("Give a cost estimate, if any (fees never hold the records back)."),
    Step.COMPLETE: _l("Complete the request."),
    Step.WAIT: _l("Wait for the requester's answer; an answer by post or phone: resume the request."),
    Step.REVIEW_IF_ASKED: _l("If the requester asks for a review by post or phone, record it."),
    Step.DECIDE_REVIEW: _l("A licensed professional who took no part in the denial records the review decision."),
    Step.CLOSED: _l("Nothing more to do. Reopen the request only if something was missed."),
}

# The copy types: the records themselves go to someone (uploaded, released, delivered).
_COPIES = frozenset({RequestType.COPY, RequestType.THIRD_PARTY})


def _step(code: Step, target: str) -> NextStep:
    return NextStep(code, str(_STEP_TEXT[code]), target)


def move_anchor(target: RequestStatus | str) -> str:
    """The id of the form that makes the move to ``target`` on the page."""
    return f"move-{S(target).value}"


def next_steps(facts: PageFacts) -> list[NextStep]:
    """The records office's next steps for a request, in order, each pointing at the page's section
    or form that does it. Steps already done are left out, so the list shrinks as work is done."""
    steps: list[NextStep] = []
    status = facts.status
    if status in (S.SUBMITTED, S.VERIFYING, S.IN_REVIEW) and not facts.assigned:
        steps.append(_step(Step.CLAIM, "assignment"))
    if status == S.SUBMITTED:
        steps.append(_step(Step.START_CHECK, move_anchor(S.VERIFYING)))
    elif status == S.VERIFYING:
        steps.append(_step(Step.VERIFY, move_anchor(S.IN_REVIEW)))
    elif status == S.IN_REVIEW:
        if facts.request_type == RequestType.THIRD_PARTY and facts.consent_problem:
            steps.append(_step(Step.CONSENT, "consent"))
        if facts.request_type in _COPIES and not facts.delivered:
            if not facts.records_added:
                steps.append(_step(Step.UPLOAD, "add-document"))
            elif facts.download and not facts.records_released:
                steps.append(_step(Step.RELEASE, "documents"))
        if not facts.delivered:
            steps.append(_step(Step.DELIVER, "delivery-heading"))
        if facts.fee_open:
            steps.append(_step(Step.FEE, "fees"))
        steps.append(_step(Step.COMPLETE, move_anchor(S.FULFILLED) if facts.delivered else "actions"))
    elif status == S.AWAITING_REQUESTER:
        back = facts.awaiting_return_to or S.IN_REVIEW
        steps.append(_step(Step.WAIT, move_anchor(back)))
    elif status == S.DENIED and facts.reviewable:
        steps.append(_step(Step.REVIEW_IF_ASKED, move_anchor(S.REVIEW_REQUESTED)))
    elif status == S.REVIEW_REQUESTED:
        steps.append(_step(Step.DECIDE_REVIEW, move_anchor(S.REVIEW_DECIDED)))
    if status in CLOSED_STATUSES and not (status == S.DENIED and facts.reviewable):
        steps.append(_step(Step.CLOSED, move_anchor(S.IN_REVIEW)))
    return steps


# The steps whose form the page shows open; the others' (reopen, resume, a review asked by post) are
# folded: they are the exception, not the day's work.
_OPEN_STEPS = frozenset({Step.START_CHECK, Step.VERIFY, Step.COMPLETE, Step.DECIDE_REVIEW})


def primary_moves(facts: PageFacts) -> frozenset[RequestStatus]:
    """The moves the next steps of the day's work lead to: their forms are shown open; the page
    folds the others."""
    wanted = {step.target.removeprefix("move-") for step in next_steps(facts)
              if step.code in _OPEN_STEPS and step.target.startswith("move-")}
    return frozenset(S(value) for value in wanted)
