"""The staff queue of records requests: /queue/requests/. Reading the list and a request's page
needs ``REQUESTS_VIEW`` (the records office, and the privacy officer read-only); every change
needs ``REQUESTS_QUEUE``, and the page offers its forms only to those who hold it.

The list shows coded fields only (no names), soonest due first, in tabs. One request's page shows
everything the requester submitted, the clock and why, the timeline, and one form per move the
workflow offers. Every view of that page is audited. Every form that changes the request carries
the version the page was drawn with: a change made on a stale copy answers 409 and draws the
current request with the user's typed text kept. Flash messages never say what a request is about.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from intake.archive.services import CandidateLabel, verification_choices
from intake.audit.services import pending_view
from intake.db_types import utcnow
from intake.extensions import db
from intake.labels import in_locale
from intake.permissions import Permission, can, require
from intake.records import (
    common,
    consents,
    deadlines,
    disclosures,
    documents,
    fees,
    labels,
    professionals,
    queue,
    recipient,
    request_page,
    services,
)
from intake.records.common import RequestInvalid, RequestRefused, VersionConflict
from intake.records.entry_forms import LinkAccountForm
from intake.records.models import Delivery, FileKind, RecordsRequest, RequestStatus, RequestType
from intake.records.page import rows
from intake.records.page.blueprint import actor, queue_bp
from intake.records.page_forms import request_page_forms
from intake.records.professional_forms import StaffDesignateForm, decision_form
from intake.records.queue_forms import (
    ANY,
    ME,
    TYPED_FIELDS,
    AssignForm,
    ClaimForm,
    ExtendForm,
    MessageForm,
    MoveForm,
    NoteForm,
    QueueFilterForm,
    move_form,
)
from intake.records.services import MoveInput
from intake.records.workflow import REVIEWABLE_REASONS, TRANSITIONS, Actor, Need, blocked_moves, moves

FILTER_KEYS = ("type", "status", "assignee")
NOBODY = "none"
LABELS = {"type": labels.TYPE_SHORT, "type_long": labels.TYPE_LABELS, "status": labels.STAFF_STATUS_LABELS,
          "move": labels.MOVE_LABELS, "event": labels.EVENT_LABELS, "relationship": labels.RELATIONSHIP_LABELS,
          "scope": labels.SCOPE_LABELS, "kind": labels.KIND_LABELS, "format": labels.FORMAT_LABELS,
          "delivery": labels.DELIVERY_LABELS, "verification": labels.VERIFICATION_LABELS,
          "denial": labels.DENIAL_LABELS, "partial": labels.PARTIAL_LABELS,
          "review": labels.REVIEW_OUTCOME_LABELS, "channel": labels.CHANNEL_LABELS,
          "basis": labels.DISCLOSURE_BASIS_LABELS}
TAB_LABELS = {
    queue.Tab.UNASSIGNED: lambda: _("Unassigned"), queue.Tab.MINE: lambda: _("Mine"),
    queue.Tab.VERIFYING: lambda: _("Checking identity"), queue.Tab.DUE_TODAY: lambda: _("Due today"),
    queue.Tab.DUE_SOON: lambda: _("Due soon"),
    queue.Tab.OVERDUE: lambda: _("Overdue"), queue.Tab.AWAITING: lambda: _("Waiting for the requester"),
    queue.Tab.CLOSED: lambda: _("Closed"),
}


def conflict_message() -> str:
    """What a change made on an older copy of the request answers (409)."""
    return _("Someone else changed this request while you were working on it; here is the current version. "
             "Your text is kept below; check and submit again.")


def _soon_days() -> int:
    return int(current_app.config["RECORDS_DUE_SOON_DAYS"])


# --- The list ----------------------------------------------------------------------------------

def _filter_form(args: MultiDict) -> QueueFilterForm:
    form = QueueFilterForm(args)
    form.assignee.choices = [SelectChoice(ANY, _("Anyone")), SelectChoice(ME, _("Me"))] + [
        SelectChoice(str(person.id), person.email) for person in queue.queue_people()]
    return form


def _filters_from(form: QueueFilterForm) -> queue.QueueFilters:
    assignee = form.assignee.data or ANY
    return queue.QueueFilters(
        request_type=RequestType(form.type.data) if form.type.data else None,
        status=RequestStatus(form.status.data) if form.status.data else None,
        assignee_id=actor().id if assignee == ME else (int(assignee) if assignee != ANY else None),
    )


@queue_bp.app_context_processor
def _due_count() -> dict[str, Any]:
    """``records_due_now()`` for the menu: asked only where a template calls it (records staff's menus)."""
    return {"records_due_now": lambda: queue.due_now_count(deadlines.today()), "records_cap": queue.COUNT_CAP}


@queue_bp.get("/")
@require(Permission.REQUESTS_VIEW)
def index() -> tuple[str, int] | Response:
    """Requests by tab (``?tab=``), soonest due first, 50 a page (``?after=``), filtered by type,
    status and assignee. Coded fields only: nothing here decrypts a name."""
    # A blank value (spaces, a line break) is "any", as Optional() reads it: dropped before the form.
    args = MultiDict((k, v) for k, v in request.args.items(multi=True) if k in FILTER_KEYS and v.strip())
    form = _filter_form(args)
    problem = None
    wanted = (request.args.get("q") or "").strip()[:40]
    if wanted:  # a reference read out over the phone: straight to its page
        found = queue.find_by_human_ref(wanted)
        if found is not None:
            return redirect(url_for("request_queue.detail", reference=found.reference))
        problem = (_("No request has the reference %(ref)s. Check it with the caller; it looks like RR-2026-MZ6R.",
                     ref=wanted.upper()) if queue.HUMAN_REF_RE.match(wanted.upper())
                   else _("Enter a request reference such as RR-2026-MZ6R."))
    try:
        tab = queue.Tab(request.args.get("tab") or queue.Tab.UNASSIGNED)
    except ValueError:
        tab, problem = queue.Tab.UNASSIGNED, _("There is no such tab. Choose one of the tabs above.")
    after = None
    raw_after = request.args.get("after")
    if raw_after:
        try:
            after = queue.Cursor.decode(raw_after)
        except queue.BadCursor:
            problem = problem or _("That page link is not valid. Start again from the first page.")
    if args and not form.validate():
        problem = problem or _("Some filters are not valid. Correct them and filter again.")
    page = queue.QueuePage([], None)
    if problem is None:
        page = queue.list_requests(actor(), tab, _filters_from(form), today=deadlines.today(),
                                   soon_days=_soon_days(), day_of=deadlines.facility_day, after=after)
    counts = queue.tab_counts(actor(), deadlines.today(), _soon_days())
    html = render_template("records/queue/index.html", form=form, page=page, problem=problem, tab=tab,
                           tabs=[(t, TAB_LABELS[t](), counts.get(t)) for t in queue.Tab], count_cap=queue.COUNT_CAP,
                           wanted=wanted, filter_args=args.to_dict(),
                           labels=in_locale(LABELS), first_page=after is None,
                           can_enter=can(actor(), Permission.REQUESTS_QUEUE))
    return html, 400 if problem else 200


# --- One request -------------------------------------------------------------------------------

def load_request(reference: str) -> RecordsRequest:
    """The request, or 404 for a malformed or unknown reference (the same answer for both)."""
    if not queue.REFERENCE_RE.match(reference):
        abort(404)
    req = services.get_for_staff(actor(), reference)
    if req is None:
        abort(404)
    return req


def _assign_form(req: RecordsRequest, data: bool = False) -> AssignForm:
    form = AssignForm(prefix="assign") if data else AssignForm(prefix="assign", formdata=None,
                                                               version=req.version)
    current = NOBODY if req.assignee_id is None else str(req.assignee_id)
    if not data:
        form.assignee.data = current
    form.assignee.choices = [SelectChoice(NOBODY, _("Nobody"))] + [
        SelectChoice(str(person.id), person.name) for person in queue.queue_people()]
    return form


def _looked_up_archive_ids() -> list[int]:
    """Archive records the admin added to the choices: ``?archive=<id>`` after an MRN lookup, or
    the record chosen in the form just posted (so that a choice made from a lookup stays valid)."""
    raw = [request.args.get("archive", "")]
    raw += [value for key, value in request.form.items() if key.endswith("-archived_patient_id")]
    return [int(value) for value in raw if value.isdigit() and len(value) <= 9]


def _archive_choices(req: RecordsRequest, needs: frozenset[Need]) -> list[tuple[str, CandidateLabel]]:
    """The archive records that match the request's patient (name or former names, and date of
    birth), and any looked up by MRN, as choices for the verification step; looked up only when
    that step is offered. Their labels carry the details the page shows as a table."""
    if Need.ARCHIVE_MATCH not in needs:
        return []
    return verification_choices(req, _looked_up_archive_ids())


def _professional_forms(req: RecordsRequest, can_work: bool) -> dict[str, Any]:
    """The outside professionals' decision forms the page offers (``_professionals.html``): a
    clinical denial while a request other than a third party's is open, a review while one is asked."""
    offered = {"denial": can_work and req.is_open and req.request_type != RequestType.THIRD_PARTY,
               "review": can_work and req.status == RequestStatus.REVIEW_REQUESTED}
    return {role: decision_form(role, version=req.version) for role, shown in offered.items() if shown}


def _extension_offered(req: RecordsRequest) -> bool:
    """Offer the extension form only where the request's rule allows one and none was given
    (the service checks again, with the due date)."""
    rule = deadlines.due_date(req).rule
    return req.is_open and rule.extension_days is not None and not req.extended_days


def page_facts(req: RecordsRequest, context: dict[str, Any]) -> request_page.PageFacts:
    """What the next steps depend on, read from the request and the page's data."""
    records = [d for d in context["documents"] if d.kind == FileKind.RELEASED_RECORD]
    problems = context["document_problems"]
    return request_page.PageFacts(
        status=req.status, request_type=req.request_type, assigned=req.assignee_id is not None,
        verified=req.verified_at is not None, records_added=bool(records),
        records_released=any(d.released_at is not None and problems[d.id] is None for d in records),
        download=req.delivery == Delivery.SECURE_DOWNLOAD, delivered=req.delivered_at is not None,
        consent_problem=bool(context.get("consent_problem")),
        fee_open=context.get("fee_estimate") is None and not context.get("fee_free_text"),
        reviewable=req.decision_reason in set(REVIEWABLE_REASONS), awaiting_return_to=req.awaiting_return_to)


def page_steps(facts: request_page.PageFacts, offered: set[str]) -> list[request_page.NextStep]:
    """The next steps; one whose move is not offered now (blocked, or not for this user) points at
    the actions, where the page says why."""
    steps = request_page.next_steps(facts)
    return [step if not step.target.startswith("move-") or step.target.removeprefix("move-") in offered
            else replace(step, target="actions") for step in steps]


def render_request(req: RecordsRequest, *, posted: Any = None, page_error: str | None = None,
                   status: int = 200, documents_posted: dict[str, Any] | None = None) -> tuple[str, int]:
    """Draw the request's page, audit the view and commit.

    ``posted`` is the form the user just submitted (kept with its text and errors); a document
    form comes in ``documents_posted`` by its place ("upload", "action", "delivery"); every form
    carries the request's current version.
    """
    viewer = actor()
    can_work = can(viewer, Permission.REQUESTS_QUEUE)
    extension_offered = can_work and _extension_offered(req)
    # Only the forms the page draws are built (each costs a CSRF token and its fields: building all
    # fourteen was ~2 ms of the ~21 ms of CPU a view took, make profile PAGE=staff_request); a form
    # just posted is always kept (below), so its errors show even where it would not be offered.
    forms: dict[str, Any] = {}
    if can_work:
        forms.update(message=MessageForm(prefix="message", formdata=None, version=req.version),
                     note=NoteForm(prefix="note", formdata=None, version=req.version),
                     assign=_assign_form(req))
        if req.assignee_id != viewer.id:
            forms["claim"] = ClaimForm(prefix="claim", formdata=None, version=req.version)
        if extension_offered:
            forms["extend"] = ExtendForm(prefix="extend", formdata=None, version=req.version)
        if req.owner_id is None:
            forms["account"] = LinkAccountForm(prefix="account", formdata=None, version=req.version)
    facts_now = services.facts_for(req, viewer)  # one read serves the offered and the blocked moves
    move_forms = []
    for target in (moves(req.status, Actor.STAFF, facts_now) if can_work else []):
        form = move_form(target.value, TRANSITIONS[(req.status, target)].needs,
                         archive_choices=_archive_choices(req, TRANSITIONS[(req.status, target)].needs))
        form.version.data = req.version
        move_forms.append(form)
    if isinstance(posted, MoveForm):
        same = [i for i, f in enumerate(move_forms) if f.target == posted.target]
        if same:
            move_forms[same[0]] = posted
        else:
            # The move is no longer offered (the request changed): keep the typed text where
            # it can still be sent. Read it as posted: a move that is not possible from the
            # current status was parsed without its text fields (two admins asking the same
            # question at once: the loser's form has no "message" field to carry it).
            for name in ("message", "note"):
                typed = request.form.get(f"{posted._prefix}{name}", "").strip()
                if typed and name in forms:
                    forms[name].body.data = typed
    elif posted is not None:
        forms[posted._prefix.rstrip("-")] = posted
    if posted is not None:
        # The page now shows the current request, so its forms carry the current version (the
        # field draws what was posted unless raw_data is replaced too).
        posted.version.data = req.version
        posted.version.raw_data = [str(req.version)]
    # The view is recorded once the page is drawn (below), with the moment it was asked for: the
    # audit write then holds SQLite's write lock (PostgreSQL's trail lock) for the insert alone.
    viewed_at = utcnow()
    events = services.timeline(req, include_internal=True)
    parts = queue.request_parts(req, events, with_viewers=can(viewer, Permission.AUDIT_VIEW),
                                pending=pending_view(services.VIEWED, viewer, viewed_at))
    context = documents.page_context(req, viewer, staff=True)
    context = {**context, **fees.page_context(req, viewer, staff=True, documents=context["documents"]),
               **consents.page_context(req, viewer, staff=True), **disclosures.page_context(req, viewer, staff=True),
               **professionals.page_context(req, viewer, staff=True)}
    facts = page_facts(req, context)
    offered = {form.target for form in move_forms}
    html = render_template(
        "records/queue/detail.html", req=req, parts=parts,
        viewer_rows=None if parts.viewers is None else rows.viewer_rows(parts.viewers),
        # A form's visible part is drawn once per state on a page drawn afresh (a GET); never on a
        # page that answers a post (typed text is never kept in the process).
        fields_state=rows.fields_state if request.method == "GET" and posted is None and not documents_posted
        else rows.drawn_each_time, labels=in_locale(LABELS), forms=forms, move_forms=move_forms,
        **context, **recipient.page_context(req, viewer, staff=True),
        next_steps=page_steps(facts, offered) if can_work else [],
        primary_moves={target.value for target in request_page.primary_moves(facts)},
        move_button=request_page.move_button,
        **(request_page_forms(req, staff=True, posted=documents_posted) if can_work else {}),
        professional_forms=_professional_forms(req, can_work),
        designate_form=(StaffDesignateForm(prefix="designate", formdata=None, version=req.version)
                        if can_work and context["clinical_denial"] else None),
        blocked={target: common.blocked_reason(code) for target, code in
                 blocked_moves(req.status, Actor.STAFF, facts_now).items()},
        status_label=str(labels.STAFF_STATUS_LABELS[req.status]), explain=deadlines.explain_due(req),
        urgency=deadlines.urgency(req), extension_offered=extension_offered, page_error=page_error,
        can_work=can_work,
        received_on=deadlines.facility_day(req.received_at),
    )
    # Drawn first, audited and committed after: committing expires every object the page reads. A
    # failed record or commit raises, and this page is never sent.
    services.record_view(req, viewer, occurred_at=viewed_at)
    db.session.commit()
    return html, status


@queue_bp.get("/<reference>")
@require(Permission.REQUESTS_VIEW)
def detail(reference: str) -> tuple[str, int] | Response:
    """One request: what was asked, the clock and why, the timeline, and the forms to work it.
    ``/queue/requests/RR-2026-MZ6R`` (the reference on letters) leads to the same page."""
    if queue.HUMAN_REF_RE.match(reference.upper()):
        found = queue.find_by_human_ref(reference)
        if found is None:
            abort(404)
        return redirect(url_for("request_queue.detail", reference=found.reference))
    return render_request(load_request(reference))


def attach_errors(form: Any, errors: dict[str, str]) -> str | None:
    """Put a service's messages next to their fields; return what belongs at the top."""
    top = []
    for field_name, message in errors.items():
        field = getattr(form, field_name, None)
        if field is not None and hasattr(field, "errors") and field_name != "version":
            field.errors = list(field.errors) + [message]
        else:
            top.append(message)
    return " ".join(top) or None


def _again(reference: str, form: Any, *, page_error: str | None = None, status: int,
           documents_posted: dict[str, Any] | None = None) -> tuple[str, int]:
    """Roll back whatever the attempt changed and draw the current request with the form kept."""
    db.session.rollback()
    return render_request(load_request(reference), posted=form, page_error=page_error, status=status,
                          documents_posted=documents_posted)


def save_change(reference: str, form: Any, change: Any, done: str,
                documents_posted: dict[str, Any] | None = None) -> Response | tuple[str, int]:
    """Run ``change()`` (a service call), commit once and redirect; or draw the page again
    with the reason it did not happen and the user's input kept (a document form by its place,
    ``documents_posted``)."""
    kept = documents_posted
    try:
        change()
        db.session.commit()
    except VersionConflict:
        return _again(reference, form, page_error=conflict_message(), status=409, documents_posted=kept)
    except StaleDataError:
        return _again(reference, form, page_error=conflict_message(), status=409, documents_posted=kept)
    except RequestInvalid as exc:
        db.session.rollback()
        return render_request(load_request(reference), posted=form, page_error=attach_errors(form, exc.errors),
                              status=400, documents_posted=kept)
    except RequestRefused:
        return _again(reference, form, status=409, documents_posted=kept,
                      page_error=_("That step is not possible for this request as it stands now. "
                                   "Nothing was changed."))
    flash(done, "success")
    return redirect(url_for("request_queue.detail", reference=reference))


def invalid_form(req: RecordsRequest, form: Any) -> tuple[str, int]:
    """A form that fails its shape checks: 400 with the messages next to the fields."""
    if form.version.errors:
        abort(400)  # the page always sends the version it was drawn with; anything else is forged
    return render_request(req, posted=form, status=400)


def invalid_document_form(req: RecordsRequest, key: str, form: Any) -> tuple[str, int]:
    """A form of the page's document, delivery or recipient parts that fails its shape checks: 400
    with the form kept in its place (``key``)."""
    if form.version.errors or "csrf_token" in form.errors:
        abort(400)  # the page always sends both; anything else is forged
    return render_request(req, status=400, documents_posted={key: form})


def check_version(req: RecordsRequest, form: Any) -> None:
    """Refuse a change made on a copy of the request older than the one in the database."""
    common.check_version(req, form.version.data)


@queue_bp.post("/<reference>/move")
@require(Permission.REQUESTS_QUEUE)
def move(reference: str) -> Response | tuple[str, int]:
    """Make one move of the workflow (the target status is a form field)."""
    req = load_request(reference)
    raw_target = request.form.get("target", "")
    try:
        target = RequestStatus(raw_target)
    except ValueError:
        return render_request(req, page_error=_("Choose one of the steps offered on this page."), status=400)
    rule = TRANSITIONS.get((req.status, target))
    needs = rule.needs if rule else frozenset()
    form = move_form(target.value, needs, formdata=request.form, archive_choices=_archive_choices(req, needs))
    if not form.validate():
        return invalid_form(req, form)

    def change() -> None:
        check_version(req, form)
        typed = {name: getattr(form, name).data for name in TYPED_FIELDS if getattr(form, name, None) is not None}
        if typed.get("archived_patient_id"):
            typed["archived_patient_id"] = int(typed["archived_patient_id"])
        services.transition(req, target, actor(), MoveInput(**typed), expected_version=form.version.data)

    return save_change(reference, form, change, _("%(ref)s: status is now “%(status)s”.", ref=req.human_ref,
                                            status=str(labels.STAFF_STATUS_LABELS[RequestStatus(target)])))


@queue_bp.post("/<reference>/message")
@require(Permission.REQUESTS_QUEUE)
def message(reference: str) -> Response | tuple[str, int]:
    """Write to the requester (on their timeline, with an e-mail saying there is news)."""
    req = load_request(reference)
    form = MessageForm(prefix="message")
    if not form.validate_on_submit():
        return invalid_form(req, form)

    def change() -> None:
        check_version(req, form)
        services.send_message(req, actor(), form.body.data)

    return save_change(reference, form, change, _("%(ref)s: message sent to the requester.", ref=req.human_ref))


@queue_bp.post("/<reference>/note")
@require(Permission.REQUESTS_QUEUE)
def note(reference: str) -> Response | tuple[str, int]:
    """Add an internal note (staff only; never shown to the requester)."""
    req = load_request(reference)
    form = NoteForm(prefix="note")
    if not form.validate_on_submit():
        return invalid_form(req, form)

    def change() -> None:
        check_version(req, form)
        services.add_note(req, actor(), form.body.data)

    return save_change(reference, form, change, _("%(ref)s: internal note saved.", ref=req.human_ref))


@queue_bp.post("/<reference>/claim")
@require(Permission.REQUESTS_QUEUE)
def claim(reference: str) -> Response | tuple[str, int]:
    """Take the request oneself."""
    req = load_request(reference)
    form = ClaimForm(prefix="claim")
    if not form.validate_on_submit():
        return invalid_form(req, form)

    def change() -> None:
        check_version(req, form)
        services.claim(req, actor(), expected_version=form.version.data)

    return save_change(reference, form, change, _("%(ref)s is now assigned to you.", ref=req.human_ref))


@queue_bp.post("/<reference>/assign")
@require(Permission.REQUESTS_QUEUE)
def assign(reference: str) -> Response | tuple[str, int]:
    """Give the request to someone who works the queue, or to nobody."""
    req = load_request(reference)
    form = _assign_form(req, data=True)
    if not form.validate_on_submit():
        return invalid_form(req, form)
    assignee = None
    if form.assignee.data != NOBODY:
        assignee = next((u for u in queue.queue_staff() if str(u.id) == form.assignee.data), None)
        if assignee is None:
            abort(400)  # the choices hold only queue workers; anything else is forged

    def change() -> None:
        check_version(req, form)
        services.assign(req, assignee, actor(), expected_version=form.version.data)

    return save_change(reference, form, change, _("%(ref)s: assignment saved.", ref=req.human_ref))


@queue_bp.post("/<reference>/extend")
@require(Permission.REQUESTS_QUEUE)
def extend(reference: str) -> Response | tuple[str, int]:
    """Extend the deadline once, where the rule allows, with a reason the requester reads."""
    req = load_request(reference)
    form = ExtendForm(prefix="extend")
    if not form.validate_on_submit():
        return invalid_form(req, form)

    def change() -> None:
        check_version(req, form)
        services.extend(req, actor(), form.reason.data, expected_version=form.version.data)

    return save_change(reference, form, change, _("%(ref)s: deadline extended; the requester is notified.",
                                            ref=req.human_ref))
