"""The call log's reading pages: the list, one call, the contact reveal, the repeat-caller
lookup and the supervisors' urgent queue.

Authorization comes first (``@require``), then the lookup, so a requester learns nothing about
which calls exist. Every view of a call is audited; the caller's name and phone are shown only
in the response to a reveal with a reason, never kept in the session or a URL.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from intake.calls import escalation, queries
from intake.calls.list_forms import (
    AGE_LABELS,
    CALL_TYPE_LABELS,
    CHANNEL_LABELS,
    DISPOSITION_LABELS,
    REVEAL_REASONS,
    RISK_LABELS,
    SUBSTANCE_LABELS,
    CallFilterForm,
    PhoneLookupForm,
    RevealForm,
    SupervisorNoteForm,
    UrgentReviewForm,
)
from intake.calls.models import Call, CallStatus, Disposition, RiskLevel, Substance
from intake.calls.phones import display_phone, mask_phone
from intake.calls.policy import can_edit_call
from intake.db_types import utcnow
from intake.extensions import db
from intake.labels import in_locale
from intake.permissions import Permission, can, require
from intake.review.forms import FEEDBACK_LABELS
from intake.review.services import feedback_for_viewer, mark_seen

bp = Blueprint("calls", __name__, url_prefix="/calls")

PAGE_SIZE = queries.PAGE_SIZE
FILTER_KEYS = ("date_from", "date_to", "operator", "risk", "substance", "disposition", "has_followup")
LABELS = {"call_type": CALL_TYPE_LABELS, "channel": CHANNEL_LABELS, "risk": RISK_LABELS,
          "substance": SUBSTANCE_LABELS, "disposition": DISPOSITION_LABELS, "reveal": REVEAL_REASONS,
          "age": AGE_LABELS}


def _viewer() -> Any:
    return current_user._get_current_object()


def _filters_from(form: CallFilterForm) -> queries.CallFilters:
    def coded(enum: Any, value: str | None) -> Any:
        return enum(value) if value else None

    return queries.CallFilters(
        date_from=form.date_from.data, date_to=form.date_to.data,
        operator_id=int(form.operator.data) if form.operator.data else None,
        risk=coded(RiskLevel, form.risk.data), substance=coded(Substance, form.substance.data),
        disposition=coded(Disposition, form.disposition.data),
        has_followup={"yes": True, "no": False}.get(form.has_followup.data or ""),
    )


@bp.route("/")
@require(Permission.CALLS_VIEW)
def index() -> str | tuple[str, int]:
    """Finalized calls and the viewer's own drafts, newest first, 50 a page (``?before=``)."""
    args = MultiDict((k, v) for k, v in request.args.items(multi=True) if k in FILTER_KEYS)
    form = CallFilterForm(args)
    staff = queries.staff_choices()
    form.operator.choices = [SelectChoice("", _("Any"))] + [SelectChoice(str(uid), name) for uid, name in staff]
    problem = None
    before = None
    raw_before = request.args.get("before")
    if raw_before:
        try:
            before = queries.Cursor.decode(raw_before)
        except queries.BadCursor:
            problem = _("That page link is not valid. Start again from the first page.")
    if args and not form.validate():
        problem = problem or _("Some filters are not valid. Correct them and filter again.")
    if problem:
        return render_template("calls/list.html", form=form, page=queries.CallPage([], None), problem=problem,
                               filter_args=args, labels=in_locale(LABELS), first_page=False), 400
    page = queries.list_calls(_viewer(), _filters_from(form), before, page_size=PAGE_SIZE, names=dict(staff))
    return render_template("calls/list.html", form=form, page=page, problem=None, filter_args=args,
                           labels=in_locale(LABELS), first_page=before is None)


def _load(call_id: int) -> Call:
    call = queries.get_call(_viewer(), call_id)
    if call is None:
        abort(404)
    return call


def _edit_url(call: Call) -> str | None:
    """The intake form's edit page, when it exists and this user may still edit the call."""
    if "calls_intake.edit" not in current_app.view_functions or not can_edit_call(_viewer(), call, utcnow()):
        return None
    try:
        return url_for("calls_intake.edit", call_id=call.id)
    except BuildError:
        current_app.logger.warning("calls_intake.edit does not take call_id; no edit link")
        return None


def _render_detail(call: Call, *, reveal_form: RevealForm, revealed: bool = False, status: int = 200,
                   note_form: SupervisorNoteForm | None = None):
    """Audit this view, then render (the panel below includes the view just recorded)."""
    viewer = _viewer()
    if not revealed:
        queries.record_view(call, viewer)
    viewers = queries.call_viewers(call) if can(viewer, Permission.AUDIT_VIEW) else None
    parts = queries.call_parts(call)
    # The quality review: shown to the call's own operator (once done; reading it is recorded) and to reviewers.
    quality_review = feedback_for_viewer(call, viewer)
    if quality_review is not None:
        mark_seen(quality_review, viewer)
    db.session.commit()
    return render_template(
        "calls/detail.html", call=call, parts=parts, revealed=revealed, reveal_form=reveal_form,
        masked_phone=mask_phone(call.caller_phone) if call.caller_phone else None, viewers=viewers,
        shown_phone=display_phone(call.caller_phone) if revealed else None,
        edit_url=_edit_url(call), review_form=UrgentReviewForm(), labels=in_locale(LABELS),
        quality_review=quality_review, review_labels=FEEDBACK_LABELS,
        live=call.status == CallStatus.DRAFT, notes=escalation.notes_for(call.id),
        note_form=note_form or SupervisorNoteForm(formdata=None),
        may_note=call.status == CallStatus.DRAFT and can(viewer, Permission.CALLS_URGENT_QUEUE),
    ), status


@bp.route("/<int(max=2147483647):call_id>")
@require(Permission.CALLS_VIEW)
def detail(call_id: int) -> tuple[str, int]:
    """Every field of one call, the caller's name and phone masked; each view audited."""
    return _render_detail(_load(call_id), reveal_form=RevealForm(formdata=None))


@bp.route("/<int(max=2147483647):call_id>/reveal", methods=["POST"])
@require(Permission.CALLER_CONTACT_REVEAL)
def reveal(call_id: int) -> tuple[str, int]:
    """Show the caller's name and phone in this response only, for a stated reason (audited by
    its code; the free-text explanation is checked and then dropped)."""
    call = _load(call_id)
    form = RevealForm()
    if not form.validate_on_submit():
        return _render_detail(call, reveal_form=form, status=400)
    queries.record_reveal(call, _viewer(), form.reason.data)
    return _render_detail(call, reveal_form=RevealForm(formdata=None), revealed=True)


@bp.route("/lookup", methods=["GET", "POST"])
@require(Permission.CALLS_VIEW)
def lookup() -> tuple[str, int]:
    """Repeat-caller lookup by phone number (POST, so the number stays out of URLs and logs)."""
    form = PhoneLookupForm()
    if request.method == "GET":
        return render_template("calls/lookup.html", form=form, rows=None, labels=in_locale(LABELS)), 200
    if not form.validate_on_submit():
        return render_template("calls/lookup.html", form=form, rows=None, labels=in_locale(LABELS)), 400
    rows = queries.lookup_by_phone(_viewer(), form.phone.data)
    db.session.commit()
    masked = mask_phone(form.phone.data)
    form.phone.data = ""  # the number is not echoed back into the page
    return render_template("calls/lookup.html", form=form, rows=rows, masked=masked, labels=in_locale(LABELS)), 200


@bp.route("/repeat-check", methods=["POST"])
@require(Permission.CALLS_VIEW)
def repeat_check() -> Any:
    """The call form asks, once a complete number is typed, whether it has called before: how many
    times, the last risk level and a link (JSON; POST so the number stays out of URLs and logs)."""
    form = PhoneLookupForm(meta={"csrf": False})  # CSRFProtect has checked the X-CSRFToken header
    if not form.validate():
        return jsonify(count=0), 400
    raw_id = request.form.get("call_id", "")
    exclude = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 9 else None
    found = queries.repeat_caller(_viewer(), form.phone.data, exclude)
    db.session.commit()
    if not found.count:
        return jsonify(count=0)
    level = str(in_locale(LABELS)["risk"].get(found.last_risk, found.last_risk))
    message = ngettext("This number has called before: %(num)d earlier call, last risk %(level)s.",
                       "This number has called before: %(num)d earlier calls, last risk %(level)s.",
                       found.count, level=level)
    return jsonify(count=found.count, last_risk=found.last_risk, message=message,
                   url=url_for("calls.detail", call_id=found.last_id), link_text=_("Open the last call"))


@bp.app_context_processor
def _urgent_count() -> dict[str, Any]:
    """``urgent_waiting()`` for the menu: asked only where a template calls it (supervisors' menus)."""
    return {"urgent_waiting": escalation.waiting_count, "urgent_cap": escalation.COUNT_CAP}


@bp.route("/urgent")
@require(Permission.CALLS_URGENT_QUEUE)
def urgent() -> str:
    """High- and imminent-risk calls not yet reviewed by a supervisor, live drafts included:
    imminent first, then high, then oldest first."""
    return render_template("calls/urgent.html", rows=queries.urgent_queue(), labels=in_locale(LABELS),
                           limit=queries.URGENT_LIMIT, review_form=UrgentReviewForm())


@bp.route("/<int(max=2147483647):call_id>/notes", methods=["POST"])
@require(Permission.CALLS_URGENT_QUEUE)
def note(call_id: int) -> Response | tuple[str, int]:
    """A supervisor's note to the operator of a live call (shown on the operator's form)."""
    call = _load(call_id)
    form = SupervisorNoteForm()
    if not form.validate_on_submit():
        return _render_detail(call, reveal_form=RevealForm(formdata=None), note_form=form, status=400)
    try:
        escalation.add_note(call, _viewer(), form.body.data)
    except escalation.NoteRefused:
        db.session.rollback()
        flash(_("The note was not sent: the call is finished. Use the quality review instead."), "info")
    else:
        db.session.commit()
        flash(_("Note sent to the operator of call #%(id)d.", id=call_id), "success")
    return redirect(url_for("calls.detail", call_id=call_id))


@bp.route("/<int(max=2147483647):call_id>/urgent-reviewed", methods=["POST"])
@require(Permission.CALLS_URGENT_QUEUE)
def urgent_reviewed(call_id: int) -> Response:
    """Take a call off the urgent queue (who and when, audited)."""
    call = _load(call_id)
    form = UrgentReviewForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        queries.mark_urgent_reviewed(call, _viewer())
    except queries.NotUrgent:
        flash(_("Call #%(id)d is not waiting for review; nothing changed.", id=call.id), "info")
    else:
        db.session.commit()
        flash(_("Call #%(id)d marked as reviewed.", id=call.id), "success")
    return redirect(url_for("calls.urgent"))
