"""The follow-up queue and the page of one follow-up (operators and admins).

Every view needs ``FOLLOWUPS_WORK``. Opening a follow-up shows the caller's safe wording, so it
is audited each time the page is drawn; assignments, attempts and closing are audited by the
services, without note text. Flash messages never carry what the caller said.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from intake.audit.services import record
from intake.calls.followup_forms import (
    OUTCOME_LABELS,
    RESOLUTION_LABELS,
    AssignForm,
    AttemptForm,
    CallbackForm,
    CloseForm,
)
from intake.calls.followups import (
    CLOSES_ON,
    QUEUE_LIMIT,
    FollowUpError,
    QueueFilter,
    assign_followup,
    assignable_staff,
    attempt_history,
    caller_phone,
    check_outcome_consent,
    close_followup,
    load_followup,
    open_queue,
    record_attempt,
    record_callback,
    users_by_id,
)
from intake.calls.models import FollowUp
from intake.calls.phones import display_phone, mask_phone
from intake.calls.queries import record_reveal
from intake.db_types import utcnow
from intake.extensions import db
from intake.forms import ConfirmForm
from intake.permissions import Permission, can, require

bp = Blueprint("followups", __name__, url_prefix="/followups")

ME = "me"


def _actor():
    return current_user._get_current_object()


@bp.route("/")
@require(Permission.FOLLOWUPS_WORK)
def index() -> str:
    """Open follow-ups, overdue first (``?show=mine|unassigned|all``); at most 100."""
    raw = request.args.get("show", QueueFilter.ALL.value)
    try:
        queue_filter = QueueFilter(raw)
    except ValueError:
        abort(400)
    rows = open_queue(_actor(), queue_filter, utcnow())
    html = render_template("followups/index.html", rows=rows, queue_filter=queue_filter, filters=list(QueueFilter),
                           limit=QUEUE_LIMIT, outcome_labels=OUTCOME_LABELS)
    # The list shows safe times (confidential): one audit row for the page, not one per line.
    # Drawn first, committed after: committing expires what the page reads.
    record("followup.queue_viewed", actor=_actor(), details={"filter": queue_filter.value, "rows": len(rows)})
    db.session.commit()
    return html


def _load(followup_id: int) -> FollowUp:
    followup = load_followup(followup_id)
    if followup is None:
        abort(404)
    return followup


def _assign_form(data: bool = False) -> AssignForm:
    form = AssignForm() if data else AssignForm(formdata=None)
    form.assignee.choices = [SelectChoice(ME, _("Me"))] + [
        SelectChoice(str(u.id), f"{u.email} (#{u.id})") for u in assignable_staff() if u.id != current_user.id
    ]
    return form


def _allowed_outcomes(followup: FollowUp) -> list[tuple[str, str, bool]]:
    """The callback form's buttons: (outcome, label, closes the follow-up), only the channels the caller
    consented to (no voicemail button without voicemail consent)."""
    buttons = []
    for outcome, label in OUTCOME_LABELS.items():
        try:
            check_outcome_consent(followup.call, outcome)
        except FollowUpError:
            continue
        buttons.append((outcome.value, str(label), outcome in CLOSES_ON))
    return buttons


def _render(followup: FollowUp, *, assign: AssignForm | None = None, attempt: AttemptForm | None = None,
            close: CloseForm | None = None, callback: CallbackForm | None = None, page_error: str | None = None,
            phone: str | None = None, status: int = 200) -> tuple[str, int]:
    """Draw the follow-up page (and audit that its confidential contents were shown). ``phone`` is
    the caller's number, shown only in the response to a reveal (audited by the reveal)."""
    attempts = attempt_history(followup)
    people = users_by_id({a.operator_id for a in attempts}
                         | ({followup.assignee_id} if followup.assignee_id is not None else set()))
    followup_id, call_id = followup.id, followup.call_id
    stored_phone = phone if phone is not None else caller_phone(followup)
    html = render_template(
        "followups/detail.html", followup=followup, call=followup.call, attempts=attempts, people=people,
        assign_form=assign or _assign_form(), attempt_form=attempt or AttemptForm(formdata=None),
        close_form=close or CloseForm(formdata=None), callback_form=callback or CallbackForm(formdata=None),
        outcome_labels=OUTCOME_LABELS, outcome_buttons=_allowed_outcomes(followup),
        resolution_labels=RESOLUTION_LABELS, page_error=page_error, call_url=_call_url(call_id), now=utcnow(),
        shown_phone=display_phone(phone) if phone else None,
        masked_phone=mask_phone(stored_phone) if stored_phone else None,
        may_reveal=can(_actor(), Permission.CALLER_CONTACT_REVEAL),
    )
    # Drawn first, audited and committed after: committing expires every object the page reads.
    record("followup.viewed", actor=_actor(), object_type="followup", object_id=followup_id,
           details={"call_id": call_id})
    db.session.commit()
    return html, status


def _call_url(call_id: int) -> str | None:
    """The call's page, once the call list offers one (its single URL argument is the call id)."""
    if "calls.detail" not in current_app.view_functions:
        return None
    for rule in current_app.url_map.iter_rules("calls.detail"):
        if len(rule.arguments) == 1:
            values: dict[str, Any] = {next(iter(rule.arguments)): call_id}
            return url_for("calls.detail", **values)
    return None


def _refused(followup: FollowUp, exc: FollowUpError, form, name: str) -> tuple[str, int]:
    """Put a service's refusal next to its field (or at the top) and answer 400."""
    db.session.rollback()
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = list(field.errors) + [str(exc)]
        return _render(followup, **{name: form}, status=400)
    return _render(followup, **{name: form}, page_error=str(exc), status=400)


@bp.route("/<int(max=2147483647):followup_id>")
@require(Permission.FOLLOWUPS_WORK)
def detail(followup_id: int) -> tuple[str, int]:
    """One follow-up: the safe wording first, then consent, safe times, attempts and actions."""
    return _render(_load(followup_id))


@bp.route("/<int(max=2147483647):followup_id>/assign", methods=["POST"])
@require(Permission.FOLLOWUPS_WORK)
def assign(followup_id: int) -> Response | tuple[str, int]:
    """Take the follow-up (``me``) or give it to a chosen staff member."""
    followup = _load(followup_id)
    form = _assign_form(data=True)
    if not form.validate_on_submit():
        return _render(followup, assign=form, status=400)
    if form.assignee.data == ME:
        assignee = _actor()
    else:
        assignee = users_by_id({int(form.assignee.data)}).get(int(form.assignee.data))
        if assignee is None:
            abort(400)  # the choice list holds only existing accounts; anything else is forged
    try:
        assign_followup(followup, assignee, _actor())
    except FollowUpError as exc:
        return _refused(followup, exc, form, "assign")
    db.session.commit()
    flash(_("Follow-up #%(id)d assigned.", id=followup.id), "success")
    return redirect(url_for("followups.detail", followup_id=followup.id))


@bp.route("/<int(max=2147483647):followup_id>/attempt", methods=["POST"])
@require(Permission.FOLLOWUPS_WORK)
def attempt(followup_id: int) -> Response | tuple[str, int]:
    """Record one attempt to reach the caller (outcome, optional note)."""
    followup = _load(followup_id)
    form = AttemptForm()
    if not form.validate_on_submit():
        return _render(followup, attempt=form, status=400)
    try:
        record_attempt(followup, form.outcome.data, form.note.data, _actor(), utcnow())
    except FollowUpError as exc:
        return _refused(followup, exc, form, "attempt")
    db.session.commit()
    flash(_("Attempt recorded on follow-up #%(id)d.", id=followup.id), "success")
    return redirect(url_for("followups.detail", followup_id=followup.id))


@bp.route("/<int(max=2147483647):followup_id>/close", methods=["POST"])
@require(Permission.FOLLOWUPS_WORK)
def close(followup_id: int) -> Response | tuple[str, int]:
    """Close the follow-up as done or cancelled."""
    followup = _load(followup_id)
    form = CloseForm()
    if not form.validate_on_submit():
        return _render(followup, close=form, status=400)
    try:
        close_followup(followup, form.resolution.data, form.outcome.data or None, _actor(), utcnow())
    except FollowUpError as exc:
        return _refused(followup, exc, form, "close")
    db.session.commit()
    flash(_("Follow-up #%(id)d closed.", id=followup.id), "success")
    return redirect(url_for("followups.index"))


@bp.route("/<int(max=2147483647):followup_id>/reveal", methods=["POST"])
@require(Permission.FOLLOWUPS_WORK)
def reveal(followup_id: int) -> tuple[str, int]:
    """One click shows the caller's number to call back: the reason is preset to "calling back" and
    audited on the call like any reveal; the number is in this response only, never a URL or the session."""
    if not can(_actor(), Permission.CALLER_CONTACT_REVEAL):
        abort(403)
    followup = _load(followup_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    phone = caller_phone(followup)
    if phone:
        record_reveal(followup.call, _actor(), "callback")
    return _render(followup, phone=phone or None)


@bp.route("/<int(max=2147483647):followup_id>/callback", methods=["POST"])
@require(Permission.FOLLOWUPS_WORK)
def callback(followup_id: int) -> Response | tuple[str, int]:
    """Record the callback's outcome and, when it ends the follow-up, close it: one form, one press."""
    followup = _load(followup_id)
    form = CallbackForm()
    if not form.validate_on_submit():
        return _render(followup, callback=form, status=400)
    try:
        status = record_callback(followup, form.outcome.data, form.note.data, form.keep_open.data, _actor(), utcnow())
    except FollowUpError as exc:
        return _refused(followup, exc, form, "callback")
    db.session.commit()
    if status == "open":
        flash(_("Attempt recorded on follow-up #%(id)d; it stays open.", id=followup.id), "success")
        return redirect(url_for("followups.detail", followup_id=followup.id))
    flash(_("Attempt recorded and follow-up #%(id)d closed.", id=followup.id), "success")
    return redirect(url_for("followups.index"))
