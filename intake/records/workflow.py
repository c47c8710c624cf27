"""The records-request state machine: one table, pure functions, no database.

``TRANSITIONS`` maps ``(from, to)`` to who may make the move and what it needs. The service
(``intake.records.services.transition``) looks the move up here, asks ``missing`` what is not
given, and only then changes anything; tests walk every (state, actor) pair without HTTP.

    submitted → verifying → in_review ⇄ awaiting_requester
        → fulfilled | partially_fulfilled | denied | no_records | withdrawn
    denied → review_requested → review_decided;  closed → in_review (reopen)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from intake.permissions import Permission, can
from intake.records.models import OPEN_STATUSES, NoRecordsReason, RequestStatus

S = RequestStatus


class Actor(StrEnum):
    STAFF = "staff"  # works the queue (REQUESTS_QUEUE)
    REQUESTER = "requester"  # the request's owner (REQUESTS_OWN on this request)


class Need(StrEnum):
    MESSAGE = "message"  # a message the requester will read
    NOTE = "note"  # an internal reason for the move
    VERIFICATION_METHOD = "verification_method"
    DENIAL_REASON = "denial_reason"
    PARTIAL_REASON = "partial_reason"
    VERIFIED = "verified"  # identity already recorded as verified
    REVIEWABLE = "reviewable"  # the denial's reason is one a review may reconsider
    REVIEW_OUTCOME = "review_outcome"
    # A denial on clinical grounds is a licensed health care professional's (45 CFR 164.524(a)(3);
    # H&S 123115(b)): the person moving it holds a licence, or an outside professional's decision is recorded.
    LICENSED_DENIAL = "licensed_denial"
    # The review is by a licensed professional who did not take part in the denial (45 CFR 164.524(d)(4)):
    # the person recording it, or an outside professional whose review is recorded.
    LICENSED_REVIEWER = "licensed_reviewer"
    RETURN_STATE = "return_state"  # back to where it was before waiting on the requester
    ARCHIVE_MATCH = "archive_match"  # the archive record the request was matched to
    NO_RECORDS_REASON = "no_records_reason"  # not in the index / destroyed / held by a named custodian
    # Something was handed over (a released download, a mailing, a fax, a hand-over or an
    # inspection); each of those asked the disclosure gate (``intake.records.gate``) at that moment,
    # consent included, so completing the request checks nothing more about the consent.
    DELIVERED = "delivered"
    # Staff who withdraw a request say why (a reason from the list, or "other" with its words) and
    # confirm that it closes the request; the requester's own withdrawal asks only the confirmation.
    WITHDRAW_REASON = "withdraw_reason"


class Email(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    ACTION_NEEDED = "action_needed"
    READY = "ready"
    DECISION = "decision"
    UPDATE = "update"
    EXTENDED = "extended"


def one_mail_per_event(email: Email | None, target: RequestStatus | None, ready_told: bool) -> Email | None:
    """The e-mail a move (or a release, ``target`` None) sends, given whether the requester was
    already told "ready" for the records now available (``ready_told``: a release since the
    request's last move). One event, one e-mail: never a second identical "ready".

    - A release when nothing was announced yet: "ready"; a further release in the same step: none
      (the page lists every document; the first e-mail brought them there).
    - Completing a request whose records were already announced as ready: none for a full release
      (the records they were told about are the outcome); a partial release is a decision on the
      part withheld, so it says "a decision" (45 CFR 164.524(d)(2): the written denial of that part).
    """
    if email is not Email.READY or not ready_told:
        return email
    return Email.DECISION if target == RequestStatus.PARTIALLY_FULFILLED else None


@dataclass(frozen=True)
class Rule:
    who: frozenset[Actor]
    needs: frozenset[Need] = frozenset()
    email: Email | None = None


_STAFF = frozenset({Actor.STAFF})
_BOTH = frozenset({Actor.STAFF, Actor.REQUESTER})


def _rule(who: frozenset[Actor], *needs: Need, email: Email | None = None) -> Rule:
    return Rule(who, frozenset(needs), email)


_ASK = _rule(_STAFF, Need.MESSAGE, email=Email.ACTION_NEEDED)
_RESUME = _rule(_BOTH, Need.MESSAGE, Need.RETURN_STATE)
_NO_RECORDS = _rule(_STAFF, Need.NO_RECORDS_REASON, email=Email.DECISION)
_DENY = _rule(_STAFF, Need.DENIAL_REASON, Need.LICENSED_DENIAL, email=Email.DECISION)
_WITHDRAW = _rule(_BOTH, Need.WITHDRAW_REASON, email=Email.UPDATE)
_REOPEN = _rule(_STAFF, Need.NOTE, email=Email.UPDATE)

TRANSITIONS: dict[tuple[RequestStatus, RequestStatus], Rule] = {
    (S.SUBMITTED, S.VERIFYING): _rule(_STAFF),
    (S.SUBMITTED, S.AWAITING_REQUESTER): _ASK,
    (S.SUBMITTED, S.NO_RECORDS): _NO_RECORDS,
    (S.SUBMITTED, S.WITHDRAWN): _WITHDRAW,
    (S.VERIFYING, S.IN_REVIEW): _rule(_STAFF, Need.VERIFICATION_METHOD, Need.ARCHIVE_MATCH),
    (S.VERIFYING, S.AWAITING_REQUESTER): _ASK,
    (S.VERIFYING, S.NO_RECORDS): _NO_RECORDS,
    (S.VERIFYING, S.DENIED): _DENY,
    (S.VERIFYING, S.WITHDRAWN): _WITHDRAW,
    (S.IN_REVIEW, S.AWAITING_REQUESTER): _ASK,
    (S.IN_REVIEW, S.FULFILLED): _rule(_STAFF, Need.VERIFIED, Need.DELIVERED, email=Email.READY),
    (S.IN_REVIEW, S.PARTIALLY_FULFILLED): _rule(_STAFF, Need.VERIFIED, Need.DELIVERED, Need.PARTIAL_REASON,
                                                email=Email.READY),
    (S.IN_REVIEW, S.DENIED): _DENY,
    (S.IN_REVIEW, S.NO_RECORDS): _NO_RECORDS,
    (S.IN_REVIEW, S.WITHDRAWN): _WITHDRAW,
    (S.AWAITING_REQUESTER, S.SUBMITTED): _RESUME,
    (S.AWAITING_REQUESTER, S.VERIFYING): _RESUME,
    (S.AWAITING_REQUESTER, S.IN_REVIEW): _RESUME,
    (S.AWAITING_REQUESTER, S.WITHDRAWN): _WITHDRAW,
    (S.DENIED, S.REVIEW_REQUESTED): _rule(_BOTH, Need.REVIEWABLE, email=Email.UPDATE),
    (S.REVIEW_REQUESTED, S.REVIEW_DECIDED): _rule(_STAFF, Need.REVIEW_OUTCOME, Need.LICENSED_REVIEWER, Need.MESSAGE,
                                                  email=Email.DECISION),
    (S.FULFILLED, S.IN_REVIEW): _REOPEN,
    (S.PARTIALLY_FULFILLED, S.IN_REVIEW): _REOPEN,
    (S.DENIED, S.IN_REVIEW): _REOPEN,
    (S.NO_RECORDS, S.IN_REVIEW): _REOPEN,
    (S.WITHDRAWN, S.IN_REVIEW): _REOPEN,
    (S.REVIEW_DECIDED, S.IN_REVIEW): _REOPEN,
}

# The waiting state sends a request back where it came from; these are the only places it can come from.
RESUMABLE = frozenset({S.SUBMITTED, S.VERIFYING, S.IN_REVIEW})


class VerificationMethod(StrEnum):
    PHOTO_ID = "photo_id"
    NOTARIZED_FORM = "notarized_form"
    IN_PERSON = "in_person"
    KNOWLEDGE_BASED = "knowledge_based"


class DenialReason(StrEnum):
    """Grounds for denying access. ``REVIEWABLE`` are those 45 CFR §164.524(a)(3) lets a
    different licensed professional review; the others are final."""

    ENDANGERMENT = "endangerment"  # access is likely to endanger the life or safety of the patient or another
    REFERENCES_OTHER_PERSON = "references_other_person"  # likely to cause substantial harm to someone named
    REPRESENTATIVE_HARM = "representative_harm"  # access by this representative is likely to cause harm
    PSYCHOTHERAPY_NOTES = "psychotherapy_notes"
    LEGAL_PROCEEDINGS = "legal_proceedings"  # compiled for a legal action
    CONFIDENTIAL_SOURCE = "confidential_source"  # obtained from someone else under a promise of confidentiality
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    AUTHORITY_NOT_SHOWN = "authority_not_shown"  # a representative's authority was not shown


REVIEWABLE_REASONS = frozenset({DenialReason.ENDANGERMENT, DenialReason.REFERENCES_OTHER_PERSON,
                        DenialReason.REPRESENTATIVE_HARM})


class PartialReason(StrEnum):
    SOME_RECORDS_LOST = "some_records_lost"  # destroyed in the fire or otherwise not held
    PART_DENIED = "part_denied"  # part withheld on one of the denial grounds
    HELD_ELSEWHERE = "held_elsewhere"  # part is held by another custodian


class WithdrawReason(StrEnum):
    """Why staff withdraw a request (stored on the timeline as an internal note, and in the audit)."""

    REQUESTER_ASKED = "requester_asked"  # the requester asked, by phone, post or e-mail
    DUPLICATE = "duplicate"  # the same request was made twice
    WRONG_FACILITY = "wrong_facility"  # meant for another facility or provider
    OTHER = "other"  # explained in words


class ReviewOutcome(StrEnum):
    UPHELD = "upheld"
    OVERTURNED = "overturned"


CLOSED_STATUSES = frozenset(RequestStatus) - OPEN_STATUSES


@dataclass(frozen=True)
class Facts:
    """What the rules need to know about the request and the person moving it."""

    awaiting_return_to: RequestStatus | None = None
    verified: bool = False
    delivered: bool = False
    decision_reason: str | None = None
    decided_by_id: int | None = None
    actor_id: int | None = None
    actor_licensed: bool = False  # the person moving holds a clinical licence (``professionals``)
    external_denial: str | None = None  # the reason an outside professional's recorded denial gives
    external_review: str | None = None  # the outcome an outside professional's recorded review gives
    by_staff: bool = False  # the person moving works the queue (not the requester)


@dataclass(frozen=True)
class Given:
    """What the person supplied with the move."""

    message: str | None = None
    note: str | None = None
    verification_method: str | None = None
    reason: str | None = None
    review_outcome: str | None = None
    archived_patient_id: int | None = None
    no_records_reason: str | None = None
    custodian: str | None = None
    # A document the requester sent in answer (its file kind): it answers as a written reply does.
    answered_with: str | None = None
    withdraw_reason: str | None = None
    withdraw_detail: str | None = None
    withdraw_confirmed: bool = False


class TransitionRefused(PermissionError):
    """No such move, or not for this actor."""


def actor_for(user: Any, request: Any) -> Actor | None:
    """Staff if the user works the queue, the requester if the request is theirs, else None."""
    if can(user, Permission.REQUESTS_QUEUE):
        return Actor.STAFF
    if can(user, Permission.REQUESTS_OWN, request):
        return Actor.REQUESTER
    return None


def rule_for(current: RequestStatus, target: RequestStatus, actor: Actor | None) -> Rule:
    """The rule for this move by this actor; raises ``TransitionRefused`` if there is none."""
    rule = TRANSITIONS.get((current, target))
    if rule is None or actor is None or actor not in rule.who:
        raise TransitionRefused(f"{current} -> {target} not allowed for {actor}")
    return rule


def _filled(text: str | None) -> bool:
    return bool(text and text.strip())


def missing(rule: Rule, target: RequestStatus, facts: Facts, given: Given) -> dict[str, str]:
    """What the move still needs, as ``{field: problem code}``; empty when it may go ahead."""
    problems: dict[str, str] = {}
    needs = rule.needs
    if Need.MESSAGE in needs and not _filled(given.message) and not given.answered_with:
        problems["message"] = "required"
    if Need.NOTE in needs and not _filled(given.note):
        problems["note"] = "required"
    if Need.VERIFICATION_METHOD in needs and given.verification_method not in set(VerificationMethod):
        problems["verification_method"] = "required"
    if Need.DENIAL_REASON in needs and given.reason not in set(DenialReason):
        problems["reason"] = "required"
    if Need.PARTIAL_REASON in needs and given.reason not in set(PartialReason):
        problems["reason"] = "required"
    if Need.VERIFIED in needs and not facts.verified:
        problems.setdefault("status", "not_verified")
    if Need.REVIEWABLE in needs and facts.decision_reason not in set(REVIEWABLE_REASONS):
        problems.setdefault("status", "not_reviewable")
    if Need.REVIEW_OUTCOME in needs and given.review_outcome not in set(ReviewOutcome):
        problems["review_outcome"] = "required"
    if Need.LICENSED_DENIAL in needs and given.reason in set(REVIEWABLE_REASONS) and not facts.actor_licensed \
            and facts.external_denial != given.reason:
        problems["reason"] = "needs_licensed"  # 45 CFR 164.524(a)(3); H&S 123115(b)
    if Need.LICENSED_REVIEWER in needs:  # 45 CFR 164.524(a)(4), (d)(4)
        if facts.external_review is not None:
            if given.review_outcome in set(ReviewOutcome) and given.review_outcome != facts.external_review:
                problems["review_outcome"] = "external_outcome"
        elif not facts.actor_licensed:
            problems.setdefault("status", "reviewer_unlicensed")
        elif facts.actor_id is not None and facts.actor_id == facts.decided_by_id:
            problems.setdefault("status", "same_reviewer")
    if Need.RETURN_STATE in needs and facts.awaiting_return_to != target:
        problems.setdefault("status", "wrong_return")
    if Need.ARCHIVE_MATCH in needs and not given.archived_patient_id:
        problems["archived_patient_id"] = "required"
    if Need.NO_RECORDS_REASON in needs:
        if given.no_records_reason not in set(NoRecordsReason):
            problems["no_records_reason"] = "required"
        elif given.no_records_reason == NoRecordsReason.HELD_ELSEWHERE and not _filled(given.custodian):
            problems["custodian"] = "required"
    if Need.WITHDRAW_REASON in needs and facts.by_staff:
        problems.update(withdrawal_missing(given))
    if Need.DELIVERED in needs and not facts.delivered:
        problems.setdefault("status", "not_delivered")
    return problems


def withdrawal_missing(given: Given) -> dict[str, str]:
    """What a withdrawal by staff still needs: a reason from the list (``other`` with its words)
    and the confirmation that it closes the request. Empty when it may go ahead."""
    problems: dict[str, str] = {}
    if given.withdraw_reason not in set(WithdrawReason):
        problems["withdraw_reason"] = "required"
    elif given.withdraw_reason == WithdrawReason.OTHER and not _filled(given.withdraw_detail):
        problems["withdraw_detail"] = "required"
    if not given.withdraw_confirmed:
        problems["withdraw_confirmed"] = "required"
    return problems


_TYPED = frozenset({"message", "note", "verification_method", "reason", "review_outcome", "archived_patient_id",
                    "no_records_reason", "custodian", "withdraw_reason", "withdraw_detail", "withdraw_confirmed"})


def moves(current: RequestStatus, actor: Actor | None, facts: Facts = Facts()) -> list[RequestStatus]:
    """The states this actor could move the request to now (for buttons); a move whose only
    problems are things to type in is listed, one blocked by the request's facts is not."""
    out = []
    for (source, target), rule in TRANSITIONS.items():
        if source != current or actor not in rule.who:
            continue
        if set(missing(rule, target, facts, Given())) - _TYPED:
            continue
        out.append(target)
    return out


def blocked_moves(current: RequestStatus, actor: Actor | None, facts: Facts = Facts()) -> dict[RequestStatus, str]:
    """The moves this actor could make but for the request's facts, each with its problem code
    (``not_verified``, ``same_reviewer``...), so a page can say why a button is missing."""
    out = {}
    for (source, target), rule in TRANSITIONS.items():
        if source != current or actor not in rule.who:
            continue
        problems = missing(rule, target, facts, Given())
        blocking = {field: code for field, code in problems.items() if field not in _TYPED}
        if blocking and "wrong_return" not in blocking.values():  # not a way back: not worth a word
            out[target] = next(iter(blocking.values()))
    return out
