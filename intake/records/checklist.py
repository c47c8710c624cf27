"""What the requester still has to do on a request: the checklist at the top of their page.

``needed`` is the rule, a pure function of the request's state (``Facts``); ``facts_of`` reads
that state from the database. Each step names what is needed, whether it is done, and the page
gives each its action (a link to the form or the form itself). Done steps stay in the list as
done (the page folds them away), so the list shrinks as the requester works through it; when
nothing is left the page says what happens next and by when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from intake.extensions import db
from intake.records import consents, deadlines, fees
from intake.records.models import (
    FileKind,
    RecordsRequest,
    RequestDocument,
    RequesterRelationship,
    RequestStatus,
    RequestType,
)


class Step(StrEnum):
    ANSWER = "answer"  # the office asked a question and waits for the answer
    PHOTO_ID = "photo_id"
    AUTHORITY = "authority"  # a representative's proof that they may act for the patient
    CONSENT = "consent"  # the signed Part 2 consent for a copy sent to someone else
    FEE = "fee"  # the answer to a cost estimate


@dataclass(frozen=True)
class Facts:
    """The request's state as far as the checklist is concerned."""

    status: RequestStatus
    is_open: bool
    request_type: RequestType
    representative: bool  # a personal representative, or the representative of a deceased patient
    verified: bool  # staff recorded the identity as verified
    photo_id_sent: bool
    authority_sent: bool
    consent_problem: str | None  # ``consents.consent_problem`` of the newest consent (third-party requests)
    fee_estimated: bool  # an estimate with a charge was given
    fee_decided: bool  # the newest such estimate is answered
    due_on: date | None = None


@dataclass(frozen=True)
class Item:
    step: Step
    done: bool


@dataclass(frozen=True)
class Checklist:
    items: tuple[Item, ...]
    due_on: date | None
    status: RequestStatus

    @property
    def todo(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if not item.done)

    @property
    def done(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.done)

    @property
    def complete(self) -> bool:
        return not self.todo


def needed(facts: Facts) -> Checklist | None:
    """The requester's checklist for an open request (None once it is closed: nothing more is asked).

    - An open question: while the request waits on the requester, the answer is what the office needs
      (the clock keeps running, ``clocks``).
    - Photo ID: the office verifies the identity of whoever asks for health information before it
      discloses any (45 CFR 164.514(h)(1)); done once an ID is sent or the identity is verified.
    - Proof of authority, for a representative: a personal representative is treated as the patient
      only with the authority to act for them (45 CFR 164.502(g); H&S 123105(e)); done once sent or verified.
    - The signed consent, for a copy sent to someone else: a Part 2 program discloses only under a
      written consent with every element of 42 CFR 2.31(a); done while the newest consent is complete,
      in force and not revoked.
    - The fee decision: an estimate comes before the work (H&S 123110), so the requester says whether
      to go ahead at that cost; only an estimate with a charge asks for an answer.
    """
    if not facts.is_open:
        return None
    items = []
    if facts.status == RequestStatus.AWAITING_REQUESTER:
        items.append(Item(Step.ANSWER, False))
    items.append(Item(Step.PHOTO_ID, facts.photo_id_sent or facts.verified))
    if facts.representative:
        items.append(Item(Step.AUTHORITY, facts.authority_sent or facts.verified))
    if facts.request_type == RequestType.THIRD_PARTY:
        items.append(Item(Step.CONSENT, facts.consent_problem is None))
    if facts.fee_estimated:
        items.append(Item(Step.FEE, facts.fee_decided))
    return Checklist(tuple(items), facts.due_on, facts.status)


def facts_of(req: RecordsRequest, estimate: Any = fees.UNREAD) -> Facts:
    """Read what ``needed`` looks at (the kinds of the requester's documents, the newest consent and
    estimate); ``estimate``: the newest estimate (or None) when the caller has read it already."""
    kinds = set(db.session.execute(select(RequestDocument.kind).where(
        RequestDocument.request_id == req.id,
        RequestDocument.kind.in_((FileKind.PHOTO_ID, FileKind.PROOF_OF_AUTHORITY)))).scalars())
    third_party = req.request_type == RequestType.THIRD_PARTY
    fee = fees.newest_estimate(req) if estimate is fees.UNREAD else estimate
    return Facts(
        status=req.status, is_open=req.is_open, request_type=req.request_type,
        representative=req.relationship_to_patient != RequesterRelationship.SELF,
        verified=req.verified_at is not None,
        photo_id_sent=FileKind.PHOTO_ID in kinds, authority_sent=FileKind.PROOF_OF_AUTHORITY in kinds,
        consent_problem=(consents.consent_problem(consents.current_consent(req), deadlines.today(),
                                                  consents.is_representative(req)) if third_party else None),
        fee_estimated=fee is not None and fee.total_cents > 0,
        fee_decided=fee is not None and fee.decision is not None,
        due_on=req.due_on,
    )


def checklist_for(req: RecordsRequest, estimate: Any = fees.UNREAD) -> Checklist | None:
    if not req.is_open:
        return None  # what ``needed`` answers for a closed request, without reading its facts (two queries)
    return needed(facts_of(req, estimate))
