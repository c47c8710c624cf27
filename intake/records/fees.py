"""Records requests: cost estimates.

An estimate is given before work starts (California Health & Safety Code §123110): paper copies
at most $0.25 a page, copies from microfilm at most $0.50 a page, with postage as entered; or a
flat fee for an electronic copy, all-inclusive (HHS OCR's guidance: no postage or anything else on
top); never a fee for searching or retrieving (45 CFR 164.524(c)(4); the start-up refuses one).
Free where H&S 123110 as amended by AB 2520 makes the copy free (a public-benefits claim or appeal,
a U-visa petition, a VAWA self-petition, a legal-aid representative's public-benefits claim), or
waived, with a reason.

Only copies cost anything: an inspection (H&S 123110(a); 45 CFR 164.524(c)(4) prices copies only)
and an addendum (H&S 123111; 45 CFR 164.526) are free, and so is the first accounting of
disclosures in any 12 months (45 CFR 164.528(c)(2)): an estimate for them is refused. The rates come from
settings (``RECORDS_FEE_*``) and are copied onto each estimate, so a later change of setting does
not rewrite an estimate already given.

A fee is information for the requester, never a condition: nothing in the workflow reads it, and
records are never held back because a bill is unpaid.

``estimate`` is pure (no database, no settings); ``give_estimate`` is the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.i18n import format_money
from intake.records import common, letters
from intake.records.labels import FEE_BASIS_LABELS, FILE_KIND_LABELS
from intake.records.models import (
    EventCode,
    EventKind,
    FeeBasis,
    FeeDecision,
    FeeEstimate,
    FileKind,
    RecordsRequest,
    RequestDocument,
    RequestType,
    Visibility,
)
from intake.records.workflow import Actor, Email, actor_for

MAX_PAGES = 20_000  # far more than any one patient's chart; anything above is a typing slip
MAX_POSTAGE_CENTS = 10_000  # $100
PER_PAGE = frozenset({FeeBasis.PAPER, FeeBasis.MICROFILM})
# H&S 123110 (AB 2520): the copy is free when it supports one of these.
FREE_BY_LAW = frozenset({FeeBasis.BENEFITS_APPEAL, FeeBasis.U_VISA, FeeBasis.VAWA_SELF_PETITION,
                         FeeBasis.LEGAL_AID_BENEFITS})
NO_CHARGE = FREE_BY_LAW | {FeeBasis.WAIVED}
FREE_REASONS = {
    FeeBasis.BENEFITS_APPEAL: lambda: _("the copy supports a claim or appeal for public benefits"),
    FeeBasis.U_VISA: lambda: _("the copy supports a petition for U nonimmigrant status"),
    FeeBasis.VAWA_SELF_PETITION: lambda: _("the copy supports a VAWA self-petition"),
    FeeBasis.LEGAL_AID_BENEFITS: lambda: _("a legal-aid representative needs it for a public-benefits claim"),
}
ACCOUNTING_FREE_DAYS = 365  # 45 CFR 164.528(c)(2): the first accounting in any 12-month period is free


class FeeInvalid(ValueError):
    """The estimate's input is not usable; ``errors`` maps field names to messages."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("fee estimate input is not valid: " + ", ".join(sorted(errors)))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Schedule:
    """The facility's rates, in cents."""

    page_cents: int
    microfilm_page_cents: int
    electronic_flat_cents: int
    clerical_cents: int = 0


@dataclass(frozen=True)
class FeeLine:
    code: str  # copies, clerical, postage, flat, no_charge
    label: str
    cents: int


@dataclass(frozen=True)
class Breakdown:
    basis: FeeBasis
    pages: int
    per_page_cents: int
    clerical_cents: int
    postage_cents: int
    lines: tuple[FeeLine, ...]
    total_cents: int


def schedule_from(config: Mapping[str, Any]) -> Schedule:
    return Schedule(page_cents=int(config["RECORDS_FEE_PAGE_CENTS"]),
                    microfilm_page_cents=int(config["RECORDS_FEE_MICROFILM_PAGE_CENTS"]),
                    electronic_flat_cents=int(config["RECORDS_FEE_ELECTRONIC_FLAT_CENTS"]),
                    clerical_cents=int(config["RECORDS_FEE_CLERICAL_CENTS"]))


def money(cents: int) -> str:
    """Dollars and cents in the reader's language ("$6.50" in English and in Spanish)."""
    return format_money(cents)


def _whole_number(value: Any, low: int, high: int) -> int | None:
    """``value`` as an int in [low, high], or None (bools, fractions, text and blanks are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit() or not value.isascii():
            return None
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def lines_for(basis: FeeBasis, pages: int, per_page_cents: int, clerical_cents: int,
              postage_cents: int) -> tuple[tuple[FeeLine, ...], int]:
    """The lines of an estimate and its total, from the figures stored on it."""
    if basis in NO_CHARGE:
        label = (_("No charge: %(why)s (Health & Safety Code §123110)", why=FREE_REASONS[basis]())
                 if basis in FREE_BY_LAW else _("No charge: the fee is waived"))
        return (FeeLine("no_charge", label, 0),), 0
    lines = []
    if basis in PER_PAGE:
        lines.append(FeeLine("copies", _("%(n)d pages at %(rate)s a page", n=pages, rate=money(per_page_cents)),
                             pages * per_page_cents))
        if clerical_cents:
            lines.append(FeeLine("clerical", _("Clerical costs of locating and preparing the records"),
                                 clerical_cents))
    else:
        lines.append(FeeLine("flat", _("Electronic copy, flat fee, all-inclusive"), per_page_cents))
    if postage_cents and basis in PER_PAGE:
        lines.append(FeeLine("postage", _("Postage"), postage_cents))
    return tuple(lines), sum(line.cents for line in lines)


def estimate(basis: FeeBasis | str, pages: Any, postage_cents: Any, schedule: Schedule) -> Breakdown:
    """What a copy will cost, line by line. Raises ``FeeInvalid`` for an unknown basis, a page
    count that is not a whole number between 1 and ``MAX_PAGES`` (per-page bases), or postage
    that is not a whole number of cents between 0 and ``MAX_POSTAGE_CENTS``."""
    errors: dict[str, str] = {}
    chosen: FeeBasis | None
    try:
        chosen = FeeBasis(basis)
    except ValueError:
        errors["basis"] = _("Choose how the fee is worked out.")
        chosen = None
    blank = pages is None or pages == ""
    count = 0 if blank else _whole_number(pages, 0, MAX_PAGES)
    if chosen in PER_PAGE and (blank or not count):
        errors["pages"] = _("Enter the number of pages, from 1 to %(max)d.", max=MAX_PAGES)
    elif count is None:
        errors["pages"] = _("Enter the number of pages as a whole number from 0 to %(max)d.", max=MAX_PAGES)
    postage = 0 if postage_cents is None or postage_cents == "" else _whole_number(postage_cents, 0,
                                                                                   MAX_POSTAGE_CENTS)
    if postage is None:
        errors["postage"] = _("Enter the postage in dollars and cents, from $0 to %(max)s.",
                              max=money(MAX_POSTAGE_CENTS))
    if errors or chosen is None or count is None or postage is None:  # each None above added an error
        raise FeeInvalid(errors)
    basis = chosen
    per_page = clerical = 0
    if basis == FeeBasis.PAPER:
        per_page, clerical = schedule.page_cents, schedule.clerical_cents
    elif basis == FeeBasis.MICROFILM:
        per_page, clerical = schedule.microfilm_page_cents, schedule.clerical_cents
    elif basis == FeeBasis.ELECTRONIC_FLAT:
        per_page = schedule.electronic_flat_cents  # stored as the flat amount
    if basis not in PER_PAGE:
        postage = 0  # a flat electronic fee is all-inclusive (OCR); a free copy costs nothing
    lines, total = lines_for(basis, count, per_page, clerical, postage)
    return Breakdown(basis, count, per_page, clerical, postage, lines, total)


# --- Which requests may cost anything -------------------------------------------------------------

def no_fee_reason(request_type: RequestType, earlier_accountings: int) -> str | None:
    """Why no fee may be asked for this request (a code), or None when a copy may be priced:
    an inspection (H&S 123110(a); 45 CFR 164.524(c)(4) prices copies only), an addendum (H&S 123111;
    45 CFR 164.526), the first accounting of disclosures in 12 months (45 CFR 164.528(c)(2))."""
    if request_type == RequestType.INSPECTION:
        return "inspection"
    if request_type == RequestType.ADDENDUM:
        return "addendum"
    if request_type == RequestType.ACCOUNTING and earlier_accountings == 0:
        return "first_accounting"
    return None


_NO_FEE_TEXT = {
    "inspection": lambda: _("An inspection is free: only copies may cost anything (Health & Safety Code §123110; "
                            "45 CFR 164.524(c)(4))."),
    "addendum": lambda: _("Adding a statement to the record is free (Health & Safety Code §123111; 45 CFR "
                          "164.526)."),
    "first_accounting": lambda: _("The first accounting of disclosures in any 12 months is free (45 CFR "
                                  "164.528(c)(2)); this patient had none in the 12 months before this request."),
}


def earlier_accountings(req: RecordsRequest) -> int:
    """How many other accounting requests about the same patient were received in the 12 months before
    this one (0 while the request is not matched to an archive record: the first is free)."""
    if req.request_type != RequestType.ACCOUNTING or req.archived_patient_id is None:
        return 0
    since = req.received_at - timedelta(days=ACCOUNTING_FREE_DAYS)
    return db.session.execute(select(func.count()).select_from(RecordsRequest).where(
        RecordsRequest.archived_patient_id == req.archived_patient_id,
        RecordsRequest.request_type == RequestType.ACCOUNTING, RecordsRequest.id != req.id,
        RecordsRequest.received_at >= since, RecordsRequest.received_at <= req.received_at)).scalar_one()


# --- The service -------------------------------------------------------------------------------

WAIVER_REASON_MAX = common.TEXT_MAX


def give_estimate(req: RecordsRequest, actor: Any, basis: FeeBasis | str, pages: Any, postage_cents: Any,
                  waiver_reason: str | None = None, expected_version: int | None = None) -> FeeEstimate:
    """Store a cost estimate for ``req``, show it on the requester's timeline, audit it (amount
    and basis only) and e-mail the requester that there is news. Estimates never block a move."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise common.RequestRefused("only staff give cost estimates")
    common.check_version(req, expected_version)
    if not req.is_open:
        raise common.RequestInvalid({"basis": _("This request is closed; no estimate can be given now.")})
    free = no_fee_reason(req.request_type, earlier_accountings(req))
    if free is not None:
        raise common.RequestInvalid({"basis": _NO_FEE_TEXT[free]()})
    try:
        breakdown = estimate(basis, pages, postage_cents, schedule_from(current_app.config))
    except FeeInvalid as exc:
        raise common.RequestInvalid(exc.errors) from exc
    reason = (waiver_reason or "").strip() or None
    if breakdown.basis == FeeBasis.WAIVED and not reason:
        raise common.RequestInvalid({"waiver_reason": _("Give the reason the fee is waived.")})
    if reason is not None and len(reason) > WAIVER_REASON_MAX:
        raise common.RequestInvalid({"waiver_reason": _("Please keep this under %(n)d characters.",
                                                          n=WAIVER_REASON_MAX)})
    if breakdown.basis != FeeBasis.WAIVED:
        reason = None
    fee = FeeEstimate(request_id=req.id, basis=breakdown.basis, pages=breakdown.pages,
                      per_page_cents=breakdown.per_page_cents, clerical_cents=breakdown.clerical_cents,
                      postage_cents=breakdown.postage_cents, total_cents=breakdown.total_cents,
                      waiver_reason=reason, created_by_id=actor.id)
    db.session.add(fee)
    common.add_event(req, EventKind.FEE_ESTIMATE, Visibility.REQUESTER, actor, code=EventCode.FEE_ESTIMATE,
                     params={"total": breakdown.total_cents, "basis": breakdown.basis.value})
    record("request.fee_estimate", actor=actor, object_type=common.OBJECT_TYPE, object_id=req.id,
           details={"basis": breakdown.basis.value, "total_cents": breakdown.total_cents})
    common.notify_requester(req, None, Email.UPDATE)
    db.session.flush()
    return fee


def awaits_decision(fee: FeeEstimate | None) -> bool:
    """An estimate with a charge that the requester has not answered yet (a free copy needs no answer)."""
    return fee is not None and fee.total_cents > 0 and fee.decision is None


def decide_estimate(req: RecordsRequest, actor: Any, estimate_uid: str | None, decision: FeeDecision | str,
                    now: Any = None) -> FeeEstimate:
    """The requester answers the newest estimate: go ahead at this cost, or not. The answer is
    information for the office (records are never held back for a fee, H&S 123110), so it moves
    nothing in the workflow; it is on the timeline for both sides and audited (the code only).
    ``estimate_uid`` is the estimate the page showed: an answer to an older one is refused."""
    if actor_for(actor, req) is not Actor.REQUESTER:
        raise common.RequestRefused("only the requester answers a cost estimate")
    if not req.is_open:
        raise common.RequestInvalid({"decision": _("This request is closed, so the estimate needs no answer.")})
    fee = newest_estimate(req)
    if fee is None or fee.total_cents <= 0:
        raise common.RequestInvalid({"decision": _("There is no cost estimate to answer.")})
    if estimate_uid != fee.uid:
        raise common.RequestInvalid({"decision": _(
            "We gave a new cost estimate since you opened the page. Read it below and answer again.")})
    if fee.decision is not None:
        raise common.RequestInvalid({"decision": _("You have already answered this estimate.")})
    try:
        decision = FeeDecision(decision)
    except ValueError as exc:
        raise common.RequestInvalid({"decision": _("Choose whether we should go ahead at this cost.")}) from exc
    fee.decision = decision
    fee.decided_at = now or utcnow()
    common.add_event(req, EventKind.FEE_ESTIMATE, Visibility.REQUESTER, actor,
                     code=EventCode.FEE_ACCEPTED if decision == FeeDecision.ACCEPTED else EventCode.FEE_DECLINED,
                     params={"total": fee.total_cents})
    record("request.fee_decision", actor=actor, object_type=common.OBJECT_TYPE, object_id=req.id,
           details={"estimate_id": fee.id, "decision": decision.value})
    common.flush_or_conflict()
    return fee


# "Not read yet" for a function that reads the newest estimate itself unless its caller passes the
# one it already read (None included): the requester's page read the same row three times.
UNREAD: Any = object()


def newest_estimate(req: RecordsRequest) -> FeeEstimate | None:
    return db.session.execute(select(FeeEstimate).where(FeeEstimate.request_id == req.id)
                              .order_by(FeeEstimate.id.desc()).limit(1)).scalar_one_or_none()


@dataclass(frozen=True)
class EstimateView:
    estimate: FeeEstimate
    basis_label: str
    lines: tuple[FeeLine, ...]
    total: str


def _view(fee: FeeEstimate | None) -> EstimateView | None:
    if fee is None:
        return None
    lines, _total = lines_for(fee.basis, fee.pages, fee.per_page_cents, fee.clerical_cents, fee.postage_cents)
    return EstimateView(fee, str(FEE_BASIS_LABELS[fee.basis]), lines, money(fee.total_cents))


def letter_links(req: RecordsRequest, staff: bool, documents: list[RequestDocument] | None = None
                 ) -> list[dict[str, Any]]:
    """The letters stored on the request, newest first, with the title of each (for the page).

    ``documents``: the request's documents the page already read (``documents.documents_of``: every
    one for staff, the requester's for the requester), so that the letters need no query of their own."""
    docs: Any
    if documents is not None:
        docs = [doc for doc in reversed(documents) if doc.kind == FileKind.LETTER and (
            staff or (doc.visibility == Visibility.REQUESTER and doc.revoked_at is None))]
    else:
        query = select(RequestDocument).where(RequestDocument.request_id == req.id,
                                              RequestDocument.kind == FileKind.LETTER)
        if not staff:
            query = query.where(RequestDocument.visibility == Visibility.REQUESTER,
                                RequestDocument.revoked_at.is_(None))
        docs = db.session.execute(query.order_by(RequestDocument.id.desc())).scalars()
    return [{"uid": doc.uid, "title": letters.title_of(doc) or str(FILE_KIND_LABELS[FileKind.LETTER]),
             "created_at": doc.created_at, "language": doc.language} for doc in docs]


def page_context(req: Any, viewer: Any, staff: bool, documents: list[RequestDocument] | None = None,
                 estimate: Any = UNREAD) -> dict[str, Any]:
    """What the request's page (the requester's when ``staff`` is false, the queue's otherwise)
    needs from this module, as template variables; ``documents`` as for ``letter_links``,
    ``estimate`` the newest estimate when the caller has read it (``UNREAD``: read it here)."""
    context: dict[str, Any] = {"fee_estimate": _view(newest_estimate(req) if estimate is UNREAD else estimate),
                               "letters": letter_links(req, staff, documents),
                               "format_money": money}
    if staff:
        context["fee_schedule"] = schedule_from(current_app.config)
        free = no_fee_reason(req.request_type, earlier_accountings(req))
        context["fee_free_text"] = _NO_FEE_TEXT[free]() if free else None
    return context
