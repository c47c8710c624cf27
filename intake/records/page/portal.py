"""The requester's portal: /my/requests/.

A former patient (or their representative) files a request, follows it, writes to the records
office, answers when asked, withdraws, and asks for a review of a denial. Every page of a request
is audited when it is drawn. A request that is not the user's answers 404, exactly like one that
does not exist, so a guessed reference learns nothing. Flash messages and logs carry the short
reference at most, never what the request is about.
"""

from __future__ import annotations

import re
from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from intake.extensions import db
from intake.permissions import Permission, can, require
from intake.records import (
    checklist,
    consents,
    deadlines,
    documents,
    fees,
    professionals,
    recipient,
    services,
    submission,
)
from intake.records.common import RequestInvalid, RequestRefused, VersionConflict
from intake.records.labels import (
    DELIVERY_LABELS,
    EVENT_LABELS,
    FORMAT_LABELS,
    KIND_LABELS,
    RELATIONSHIP_LABELS,
    SCOPE_LABELS,
    STATUS_LABELS,
    TYPE_LABELS,
    TYPE_SHORT,
)
from intake.records.models import RecordsRequest, RequestStatus
from intake.records.page.blueprint import actor, portal_bp
from intake.records.page_forms import request_page_forms
from intake.records.portal_forms import FeeDecisionForm, MessageForm, RequestForm, ReviewForm, WithdrawForm
from intake.records.services import MoveInput
from intake.records.workflow import Actor, moves

LIST_LIMIT = 100
REFERENCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


# --- The list --------------------------------------------------------------------------------

def _own_requests(owner_id: int) -> list[Any]:
    """The owner's requests, newest first: only the coded columns (nothing to decrypt), no count."""
    query = (select(RecordsRequest.reference, RecordsRequest.human_ref, RecordsRequest.request_type,
                    RecordsRequest.status, RecordsRequest.due_on, RecordsRequest.is_open,
                    RecordsRequest.received_at)
             .where(RecordsRequest.owner_id == owner_id)
             .order_by(RecordsRequest.id.desc())
             .limit(LIST_LIMIT))
    return list(db.session.execute(query))


@portal_bp.get("/")
@require(Permission.REQUESTS_OWN)
def index() -> str:
    """The user's own requests, with a way to start one (or why they cannot yet)."""
    rows = _own_requests(current_user.id)
    return render_template("records/portal/index.html", rows=rows, limit=LIST_LIMIT,
                           may_submit=can(current_user, Permission.REQUESTS_SUBMIT),
                           type_labels=TYPE_SHORT, status_labels=STATUS_LABELS)


# --- A new request ---------------------------------------------------------------------------

def _render_new(form: RequestForm, status: int = 200) -> tuple[str, int]:
    return render_template("records/portal/new.html", form=form, closed_on=submission.closure_date()), status


@portal_bp.route("/new", methods=["GET", "POST"])
@require(Permission.REQUESTS_OWN)
def new() -> Response | tuple[str, int]:
    """The request form. The form checks shape; the service checks meaning; both show their
    messages next to the fields, and everything typed stays in the form.

    A requester whose e-mail address is not confirmed yet is told so, with the button that sends
    the link again (a 403 that explains, never a bare refusal): submitting needs ``REQUESTS_SUBMIT``."""
    if not can(current_user, Permission.REQUESTS_SUBMIT):
        return render_template("records/portal/confirm_first.html"), 403
    form = RequestForm()
    if not form.is_submitted():
        return _render_new(form)
    shape_ok = form.validate()
    if shape_ok:
        try:
            req = submission.submit_request(actor(), form.submission())
        except RequestInvalid as exc:
            db.session.rollback()
            attach_errors(form, exc.errors)
            return _render_new(form, 400)
        reference = req.reference
        db.session.commit()
        flash(_("Your request %(ref)s has been received. We have sent you an e-mail to confirm it.",
                ref=req.human_ref), "success")
        return redirect(url_for("my_requests.detail", reference=reference), 303)
    if "csrf_token" in form.errors:
        abort(400)  # a forged or expired form: the CSRF error page says so
    # Shape errors first; add what the service would also say, so one round trip shows everything.
    problems = submission.submission_problems(form.submission(), deadlines.today())
    attach_errors(form, {k: v for k, v in problems.items()
                         if not getattr(form, k, None) or not getattr(form, k).errors})
    return _render_new(form, 400)


def attach_errors(form: Any, errors: dict[str, str]) -> None:
    """Put each service message next to its field (or at the top of the form)."""
    general = []
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is None or not hasattr(field, "errors"):
            general.append(message)
            continue
        field.errors = list(field.errors) + [message]
    form.general_errors = general


# --- One request -----------------------------------------------------------------------------

def load_own_request(reference: str) -> RecordsRequest:
    """The user's own request, or 404 for anything else (malformed, unknown, someone else's)."""
    if not REFERENCE_RE.fullmatch(reference):
        abort(404)
    req = services.get_for_owner(actor(), reference)
    if req is None:
        abort(404)
    return req


def render_own_request(req: RecordsRequest, *, message: MessageForm | None = None, withdraw: WithdrawForm | None = None,
            review: ReviewForm | None = None, fee_decision: FeeDecisionForm | None = None,
            page_error: str | None = None, status: int = 200,
            documents_posted: dict[str, Any] | None = None) -> tuple[str, int]:
    """Draw the request's page (and audit that it was shown); a document form just sent comes
    in ``documents_posted`` by its place ("upload")."""
    user = actor()
    available = moves(req.status, Actor.REQUESTER, services.facts_for(req, user))
    estimate = fees.newest_estimate(req)
    document_context = documents.page_context(req, user, staff=False)
    # Only the forms the page draws are built (each costs its fields and a look at the CSRF token:
    # the four built for every view were a tenth of the page's profile, make profile PAGE=status);
    # a form just posted is always kept.
    fee_awaits_decision = req.is_open and fees.awaits_decision(estimate)
    if fee_decision is None and fee_awaits_decision:
        fee_decision = FeeDecisionForm(formdata=None)
    if fee_decision is not None:
        fee_decision.estimate.data = estimate.uid if estimate else ""  # the estimate the page shows now
    may_write = req.is_open or req.status == RequestStatus.DENIED
    may_withdraw = RequestStatus.WITHDRAWN in available
    may_review = RequestStatus.REVIEW_REQUESTED in available
    html = render_template(
        "records/portal/detail.html", req=req, events=services.timeline(req, include_internal=False),
        checklist=checklist.checklist_for(req, estimate), question=services.open_question(req),
        fee_decision_form=fee_decision, fee_awaits_decision=fee_awaits_decision,
        explanation=deadlines.explain_due(req) if req.is_open else [], urgency=deadlines.urgency(req),
        may_write=may_write, may_withdraw=may_withdraw, may_review=may_review,
        message_form=message or (MessageForm(formdata=None) if may_write else None),
        withdraw_form=withdraw or (WithdrawForm(formdata=None) if may_withdraw else None),
        review_form=review or (ReviewForm(formdata=None) if may_review else None), page_error=page_error,
        status_labels=STATUS_LABELS, event_labels=EVENT_LABELS, type_labels=TYPE_LABELS,
        relationship_labels=RELATIONSHIP_LABELS, scope_labels=SCOPE_LABELS, kind_labels=KIND_LABELS,
        format_labels=FORMAT_LABELS, delivery_labels=DELIVERY_LABELS,
        **document_context, **fees.page_context(req, user, staff=False, documents=document_context["documents"],
                            estimate=estimate),
        **consents.page_context(req, user, staff=False), **professionals.page_context(req, user, staff=False),
        **recipient.page_context(req, user, staff=False),
        **request_page_forms(req, staff=False, posted=documents_posted),
    )
    # Drawn first, audited and committed after: committing expires every object the page reads.
    services.record_view(req, user)
    db.session.commit()
    return html, status


def _refused(reference: str, exc: Exception, form_name: str, form: Any, field: str) -> tuple[str, int]:
    """Undo the attempt and show why, with what the user typed still in the form."""
    db.session.rollback()
    req = load_own_request(reference)
    if isinstance(exc, RequestInvalid):
        attach_errors(form, {field if name in ("body", "message") else name: msg for name, msg in exc.errors.items()})
        # Also at the top: the field may belong to a form the page no longer offers (a closed request).
        page_error = " ".join(str(msg) for msg in exc.errors.values())
        return render_own_request(req, **{form_name: form}, page_error=page_error, status=400)
    if isinstance(exc, VersionConflict):
        return render_own_request(req, **{form_name: form}, status=409, page_error=_(
            "The records office changed this request while you were writing. Check the page and send again."))
    return render_own_request(req, **{form_name: form}, status=409, page_error=_(
        "This request can no longer be changed that way. The page shows where it stands now."))


@portal_bp.get("/<reference>")
@require(Permission.REQUESTS_OWN)
def detail(reference: str) -> tuple[str, int]:
    """One request: where it stands, when it is due and why, its timeline, and what the user can do."""
    return render_own_request(load_own_request(reference))


@portal_bp.post("/<reference>/messages")
@require(Permission.REQUESTS_OWN)
def message(reference: str) -> Response | tuple[str, int]:
    """Write to the records office; while the office waits on the user, this answer resumes the request."""
    req = load_own_request(reference)
    form = MessageForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return render_own_request(req, message=form, status=400)
    was_waiting = req.status == RequestStatus.AWAITING_REQUESTER
    human_ref = req.human_ref
    try:
        services.reply(req, actor(), form.body.data)
    except (RequestInvalid, RequestRefused, VersionConflict) as exc:
        return _refused(reference, exc, "message", form, "body")
    db.session.commit()
    if was_waiting:
        flash(_("Thank you. Your answer was sent and we are working on request %(ref)s again.", ref=human_ref),
              "success")
    else:
        flash(_("Your message was sent."), "success")
    return redirect(url_for("my_requests.detail", reference=reference), 303)


@portal_bp.post("/<reference>/fee-decision")
@require(Permission.REQUESTS_OWN)
def fee_decision(reference: str) -> Response | tuple[str, int]:
    """Answer the cost estimate: go ahead at this cost, or not (nothing else changes: records are
    never held back for a fee)."""
    req = load_own_request(reference)
    form = FeeDecisionForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        if form.estimate.errors:  # the page always sends it: anything else is forged or stale
            form.decision.errors = [*form.decision.errors, _(
                "We could not tell which estimate you answered. Read the estimate below and answer again.")]
        return render_own_request(req, fee_decision=form, status=400)
    try:
        fees.decide_estimate(req, actor(), form.estimate.data, form.decision.data)
    except (RequestInvalid, RequestRefused, VersionConflict) as exc:
        return _refused(reference, exc, "fee_decision", form, "decision")
    db.session.commit()
    flash(_("Thank you: we have your answer to the cost estimate."), "success")
    return redirect(url_for("my_requests.detail", reference=reference) + "#fees", 303)


@portal_bp.post("/<reference>/withdraw")
@require(Permission.REQUESTS_OWN)
def withdraw(reference: str) -> Response | tuple[str, int]:
    """Withdraw the request (the box must be ticked); a closed request cannot be withdrawn."""
    req = load_own_request(reference)
    form = WithdrawForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return render_own_request(req, withdraw=form, status=400)
    human_ref = req.human_ref
    try:
        services.transition(req, RequestStatus.WITHDRAWN, actor())
    except (RequestInvalid, RequestRefused, VersionConflict) as exc:
        return _refused(reference, exc, "withdraw", form, "confirm")
    db.session.commit()
    flash(_("Request %(ref)s is withdrawn.", ref=human_ref), "success")
    return redirect(url_for("my_requests.detail", reference=reference), 303)


@portal_bp.post("/<reference>/review")
@require(Permission.REQUESTS_OWN)
def review(reference: str) -> Response | tuple[str, int]:
    """Ask for a denial to be reviewed by a different licensed professional (where the law allows)."""
    req = load_own_request(reference)
    form = ReviewForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return render_own_request(req, review=form, status=400)
    human_ref = req.human_ref
    try:
        services.transition(req, RequestStatus.REVIEW_REQUESTED, actor(), MoveInput(message=form.message.data or None))
    except (RequestInvalid, RequestRefused, VersionConflict) as exc:
        return _refused(reference, exc, "review", form, "message")
    db.session.commit()
    flash(_("Your request for a review of %(ref)s was received.", ref=human_ref), "success")
    return redirect(url_for("my_requests.detail", reference=reference), 303)
