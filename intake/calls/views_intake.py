"""The intake form: start a call, log a non-data call in one press, fill and finalize a data call,
autosave drafts. Operators may look at every call (they share the line) but change only their
own, within the edit window; admins may change any.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from intake import clock
from intake.calls.escalation import notes_for
from intake.calls.forms import (
    CHANNEL_LABELS,
    DISPOSITION_LABELS,
    REFERRAL_STATUS_LABELS,
    CallForm,
    NonDataCallForm,
    StartCallForm,
    as_choices,
    facility_zone,
    fill_from_call,
    form_data,
    parse_referrals,
)
from intake.calls.models import Call, CallStatus, CallType, EmergencyDisclosure, FollowUp
from intake.calls.policy import can_edit_call
from intake.calls.protocol import LEVEL_LABELS, PROTOCOL
from intake.calls.risk import LEVELS, rule_table
from intake.calls.services import (
    DRAFT_EXTRA_FIELDS,
    NON_DATA_TYPES,
    RISK_QUESTIONS,
    CallInvalid,
    CallRefused,
    active_resources,
    call_assessment,
    draft_extras,
    finalize_call,
    log_non_data_call,
    preview_risk,
    resources_by_id,
    save_draft,
    staff_assignees,
    start_call,
)
from intake.database import defers_write_lock
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, require

bp = Blueprint("calls_intake", __name__, url_prefix="/calls")

NON_DATA_LABELS = {CallType.HANG_UP: "Hang-up", CallType.WRONG_NUMBER: "Wrong number", CallType.PRANK: "Prank",
                   CallType.SILENT: "Silent", CallType.TEST: "Test"}
MAX_ID = 2**31 - 1


def _zone() -> Any:
    return facility_zone(current_app.config["FACILITY_TIMEZONE"])


def _user() -> Any:
    return current_user._get_current_object()


def _call_for_edit(call_id: int) -> Call:
    """The call, or 404 when it does not exist; 403 when this user may not change it."""
    call = db.session.get(Call, call_id) if call_id <= MAX_ID else None
    if call is None:
        abort(404)
    if call.call_type != CallType.DATA or not can_edit_call(_user(), call, utcnow()):
        abort(403)
    return call


@bp.route("/new", methods=["GET", "POST"])
@defers_write_lock  # adds a call and its audit event: the write lock for those inserts only
@require(Permission.CALLS_LOG)
def start() -> Response | str:
    """The start page (GET); POST opens a draft data call and goes to its form."""
    if request.method == "POST":
        # CSRFProtect has checked the token before this view (a bad one never gets here); the form's
        # own check would verify it again and sign a fresh one (~0.1 ms of CPU a request, measured).
        form = StartCallForm(meta={"csrf": False})
        if not form.validate_on_submit():
            abort(400)
        call_id = start_call(_user(), form.channel.data)
        db.session.commit()
        return redirect(url_for("calls_intake.edit", call_id=call_id))
    return render_template("calls/new.html", form=StartCallForm(), quick=NonDataCallForm(),
                           non_data=[(t.value, NON_DATA_LABELS[t]) for t in NON_DATA_TYPES])


@bp.route("/new/non-data", methods=["POST"])
@defers_write_lock  # adds a call and its audit event: the write lock for those inserts only
@require(Permission.CALLS_LOG)
def log_non_data() -> Response:
    """A hang-up, wrong number, prank, silent or test call, recorded final with one press."""
    form = NonDataCallForm(meta={"csrf": False})  # CSRFProtect has checked the token (see start)
    if not form.validate_on_submit() or form.call_type.data not in {t.value for t in NON_DATA_TYPES}:
        abort(400)
    call = log_non_data_call(_user(), form.call_type.data, form.channel.data)
    call_id, call_type = call.id, call.call_type  # before the commit expires them (see start)
    db.session.commit()
    flash(_("%(kind)s call logged (#%(id)d).", kind=NON_DATA_LABELS[call_type], id=call_id), "success")
    return redirect(url_for("calls_intake.start"))


def _prepare(form: CallForm) -> tuple[dict[str, int], set[int]]:
    """Database-backed choices for the form; returns the staff map (id text -> id) and resource ids."""
    resources = active_resources()
    form.referral_add.choices = as_choices([("", _("— none —"))] + [(str(r.id), _picker_label(r)) for r in resources])
    staff = staff_assignees()
    form.followup_assignee.choices = as_choices([("", _("Unassigned"))] + [(str(u.id), u.name) for u in staff])
    form.disclosure_by.choices = as_choices([("", _("— choose —"))] + [(str(u.id), u.name) for u in staff])
    return {str(u.id): u.id for u in staff}, {r.id for r in resources}


def _picker_label(resource: Any) -> str:
    """The no-JavaScript picker shows the programme's phone and hours too."""
    return " · ".join(part for part in (resource.name, resource.phone, resource.hours) if part)


def _extras() -> dict[str, str]:
    """The raw disclosure and follow-up boxes of the posted form, kept on a draft."""
    return {name: request.form.get(name, "") for name in DRAFT_EXTRA_FIELDS}


def _posted(form: CallForm, call: Call, draft: bool) -> tuple[dict[str, Any], bool]:
    """Validate the posted form; for a draft, fields with errors are skipped instead of refusing."""
    assignees, active_ids = _prepare(form)
    allowed = active_ids | {r.resource_id for r in call.referrals}
    referrals, bad_referrals = parse_referrals(request.form, allowed)
    valid = form.validate()
    if "csrf_token" in form.errors:
        abort(400)
    skip = set(form.errors) if draft else set()
    return form_data(form, _zone(), referrals, assignees, skip), valid and not bad_referrals


def _posted_assessment(form: CallForm) -> Any:
    return preview_risk({
        "substances": form.substances.data or [], "withdrawal_symptoms": form.withdrawal_symptoms.data or [],
        **{name: {"yes": True, "no": False}.get(getattr(form, name).data or "") for name in RISK_QUESTIONS}})


def _render(form: CallForm, call: Call, status: int = 200, errors: dict[str, str] | None = None) -> Any:
    if request.method == "POST" and not form.errors:
        # Show what the posted answers give, so the operator sees why a safety action is needed.
        assessment = _posted_assessment(form)
    else:
        assessment = call_assessment(call)
    errors = errors or {}
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = list(field.errors) + [message]
    if request.method == "POST":  # show the rows as posted (a refused finalize keeps them)
        allowed = {r.id for r in active_resources()} | {r.resource_id for r in call.referrals}
        rows, _bad = parse_referrals(request.form, allowed)
    else:
        rows = [(r.resource_id, r.status.value) for r in call.referrals]
    names = resources_by_id(r for r, _status in rows)
    referrals = [(rid, names[rid].name if rid in names else f"#{rid}", st) for rid, st in rows]
    disclosures = db.session.execute(select(EmergencyDisclosure).where(EmergencyDisclosure.call_id == call.id)
                                     .order_by(EmergencyDisclosure.id)).scalars().all()
    followups = db.session.execute(select(FollowUp).where(FollowUp.call_id == call.id)
                                   .order_by(FollowUp.due_at)).scalars().all()
    zone = _zone()
    return render_template(
        "calls/edit.html", form=form, call=call, assessment=assessment, risk_level=assessment.level,
        overdose=assessment.overdose_risk, referrals=referrals,
        statuses=REFERRAL_STATUS_LABELS, disclosures=disclosures, followups=followups, errors=errors, zone=zone,
        channel_labels=CHANNEL_LABELS, disposition_labels=DISPOSITION_LABELS,
        is_draft=call.status == CallStatus.DRAFT, rules=rule_table(), levels=LEVELS, level_labels=LEVEL_LABELS,
        protocol=PROTOCOL, notes=notes_for(call.id),
        panel_labels={"levels": {lvl.value: str(LEVEL_LABELS[lvl]) for lvl in LEVELS},
                      "questions": {q: str(getattr(form, q).label.text) for q in RISK_QUESTIONS},
                      "saved": _("Draft saved at %(time)s."), "not_saved": _("Draft not saved yet; use Save draft."),
                      "repeat": _("This number has called before")},
    ), status


def _prefill_disclosure(form: CallForm, call: Call) -> None:
    """The discloser defaults to the operator and the time to now (both editable): 42 CFR 2.51(c)(2)-(3)."""
    if not form.disclosure_by.data:
        form.disclosure_by.data = str(_user().id)
    if form.disclosure_at.data is None:
        form.disclosure_at.data = utcnow().astimezone(_zone()).replace(tzinfo=None, second=0, microsecond=0)


@bp.route("/<int:call_id>/edit", methods=["GET", "POST"])
@require(Permission.CALLS_LOG)
def edit(call_id: int) -> Any:
    """The intake form. "Save draft" keeps what is there; "Finalize" (or "Save changes" on a
    finished call) checks everything and saves all of it or nothing."""
    call = _call_for_edit(call_id)
    form = CallForm()
    if request.method == "GET":
        _prepare(form)
        fill_from_call(form, call, _zone())
        for name, value in draft_extras(call).items():  # the boxes as typed before a crash
            field = getattr(form, name)
            field.process(MultiDict({field.name: value}))
        _prefill_disclosure(form, call)
        return _render(form, call)
    wants_draft = request.form.get("action") == "draft" and call.status == CallStatus.DRAFT
    data, valid = _posted(form, call, draft=wants_draft)
    if wants_draft:
        data.pop("disclosure", None)  # recorded only when the call is finalized, complete
        data.pop("followup", None)
        save_draft(call, data, _user(), _extras())
        db.session.commit()
        flash(_("Draft saved."), "success")
        return redirect(url_for("calls_intake.edit", call_id=call.id))
    if not valid:
        db.session.rollback()
        return _render(form, call, 400)
    try:
        was_final = call.status == CallStatus.FINAL
        finalize_call(call, data, _user())
    except CallInvalid as exc:
        db.session.rollback()
        return _render(form, db.session.get_one(Call, call_id), 400, exc.errors)
    except CallRefused:
        db.session.rollback()
        abort(403)
    db.session.commit()
    flash(_("Call #%(id)d updated.", id=call.id) if was_final else _("Call #%(id)d finalized.", id=call.id), "success")
    return redirect(url_for("calls_intake.start"))


@bp.route("/<int:call_id>/draft", methods=["POST"])
@require(Permission.CALLS_LOG)
def autosave(call_id: int) -> Any:
    """Autosave from the form's script: the same fields, CSRF token in ``X-CSRFToken``.
    Answers JSON with the time saved and the recomputed risk; fields with errors are skipped."""
    call = _call_for_edit(call_id)
    if call.status != CallStatus.DRAFT:
        return jsonify({"error": "This call is finalized; save it with the form."}), 409
    form = CallForm(meta={"csrf": False})  # CSRFProtect has checked the header already
    data, _ = _posted(form, call, draft=True)
    data.pop("disclosure", None)
    data.pop("followup", None)
    save_draft(call, data, _user(), _extras())
    db.session.commit()
    saved = utcnow()
    return jsonify({"saved_at": saved.isoformat(timespec="seconds"), "saved_at_label": clock.local_clock(saved),
                    "risk_level": call.risk_level.value,
                    **call_assessment(call).as_json(), "urgent": call.urgent, "skipped": sorted(form.errors)})


@bp.route("/<int:call_id>/live.json")
@require(Permission.CALLS_LOG)
def live(call_id: int) -> Any:
    """What the operator's form polls while the call is live: the saved level and the supervisors'
    notes. Reads only; nothing is written per poll."""
    call = _call_for_edit(call_id)
    return jsonify({"risk_level": call.risk_level.value, "urgent": call.urgent,
                    "notes": [{"id": n.id, "body": n.body, "author": n.author or "",
                               "at": clock.local_clock(n.created_at)} for n in notes_for(call.id)]})
