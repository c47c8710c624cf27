"""Call-log business rules: start, save a draft, finalize, edit, log a non-data call, record a
disclosure, add a follow-up. Plain functions, no HTTP: they change state, write the audit row
and ``flush()``; the caller commits once.

``data`` is a dict of already shape-checked values (the form does that) keyed by the names
below; a draft takes any subset, finalization checks meaning and completeness and raises
``CallInvalid`` with ``{field: message}`` before anything is changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from flask_babel import gettext
from sqlalchemy import insert, select

from intake.audit.services import record
from intake.calls.disclosures import disclosure_problems, record_disclosure
from intake.calls.escalation import escalate_if_urgent
from intake.calls.followups import FollowUpError, create_followup
from intake.calls.models import (
    Call,
    CallStatus,
    CallSubstance,
    CallTask,
    CallType,
    Channel,
    FollowUp,
    Referral,
    ReferralStatus,
    Substance,
    TaskKind,
    TaskStatus,
)
from intake.calls.phones import PHONE_INDEX_PURPOSE, normalise_phone
from intake.calls.policy import can_edit_call
from intake.calls.risk import (
    RISK_QUESTIONS,
    Assessment,
    Facts,
    evaluate,
    needs_safety_action,
)
from intake.database import take_write_lock
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, roles_with
from intake.resources.models import Resource
from intake.review.services import queue_high_risk
from intake.security.crypto import keyring
from intake.users.models import User
from intake.users.services import staff_accounts

CONCERNS = ("taper_help", "withdrawal", "overdose_worry", "treatment_options", "cost_insurance",
            "family_support", "mental_health", "relapse", "other")
SAFETY_ACTIONS = ("safety_988", "safety_911", "safety_warm_transfer", "safety_plan", "safety_supervisor")
CONSENTS = ("consent_callback", "consent_voicemail", "consent_text")
NON_DATA_TYPES = tuple(t for t in CallType if t != CallType.DATA)
NOTES_MAX = 10_000
TEXT_MAX = 500  # name, safe times, safe wording, task notes, disclosure texts
PHONE_DIGITS = re.compile(r"^[0-9]{7,15}$")
ZIP_RE = re.compile(r"^[0-9]{5}$")
STATE_RE = re.compile(r"^[A-Z]{2}$")

# Plain column values copied from ``data`` as they are.
_SCALARS = ("channel", "ended_at", "relationship_to_person", "caller_name", "zip", "state", "age_range",
            *RISK_QUESTIONS, "unasked_reason", *SAFETY_ACTIONS, "identity_shared", *CONSENTS, "safe_times",
            "safe_wording", "disposition", "notes")
# Fields whose changes an edit after finalization reports by name.
_TRACKED = (*_SCALARS, "caller_phone", "substances", "withdrawal_symptoms", "concerns", "referrals", "tasks")


class CallInvalid(ValueError):
    """The call cannot be finalized as given; ``errors`` maps field names to messages."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("call is not valid: " + ", ".join(sorted(errors)))
        self.errors = dict(errors)


class CallRefused(PermissionError):
    """The actor may not change this call (not theirs, or the edit window has closed)."""


def normalize_phone(raw: str | None) -> str | None:
    """Digits only (``phones.normalise_phone``, shared with the lookup); None for an empty value."""
    return normalise_phone(raw or "") or None


def zip_problem(value: str | None) -> str | None:
    """Why a ZIP code is impossible, or None when it is fine (or empty)."""
    if not value:
        return None
    if not ZIP_RE.match(value):
        return gettext("A ZIP code is five digits.")
    if value == "00000" or value.startswith("000"):
        return gettext("That ZIP code does not exist.")
    return None


def start_call(operator: User, channel: Channel | str = Channel.PHONE) -> int:
    """Open a draft data call for ``operator``, started now (server time); its id.

    One INSERT of the row as built here (the columns' defaults fill the rest), not the ORM's unit of
    work: the ORM's flush of a new ``Call`` (fifty-odd columns, six relationships) and the expiry at
    commit cost ~0.3 ms of CPU of a ~5 ms request, spent while SQLite's write lock is held
    (``make profile PAGE=post_call``). The row is built before the lock is taken, which the INSERT
    takes (``take_write_lock``); the lock is then held for this INSERT, the audit event's and the
    commit. What the session's hooks would do for the ORM is not needed: a new draft has no
    encrypted text yet (``EncryptedText`` refuses plaintext, so nothing could be written unsealed),
    and a call started now falls in the current hour, which the dashboard never keeps
    (``intake.admin.dashboard_cache``), so there is nothing for it to forget."""
    values = {"operator_id": operator.id, "status": CallStatus.DRAFT, "call_type": CallType.DATA,
              "channel": Channel(channel), "started_at": utcnow()}
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        take_write_lock(connection)
    call_id: int = connection.execute(_INSERT_CALL, values).scalar_one()
    record("call.started", actor=operator, object_type="call", object_id=call_id)
    return call_id


_INSERT_CALL = insert(Call.__table__).returning(Call.__table__.c.id)  # built once: its compiled form is cached


def log_non_data_call(operator: User, call_type: CallType | str, channel: Channel | str = Channel.PHONE) -> Call:
    """A hang-up, wrong number, prank, silent or test call: recorded final in one step."""
    call_type = CallType(call_type)
    if call_type == CallType.DATA:
        raise ValueError("a data call is started with start_call")
    now = utcnow()
    call = Call(operator_id=operator.id, status=CallStatus.FINAL, call_type=call_type, channel=Channel(channel),
                started_at=now, ended_at=now, duration_seconds=0, finalized_at=now)
    db.session.add(call)
    db.session.flush()
    record("call.logged_non_data", actor=operator, object_type="call", object_id=call.id,
           details={"call_type": call_type.value})
    return call


def _check_editable(call: Call, actor: User) -> None:
    if not can_edit_call(actor, call, utcnow()):
        raise CallRefused("this call cannot be changed by this user now")


def _snapshot(call: Call) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(call, name) for name in _SCALARS}
    values["caller_phone"] = call.caller_phone
    values["substances"] = sorted(s.substance.value for s in call.substances)
    values["withdrawal_symptoms"] = call.withdrawal_symptoms
    values["concerns"] = call.concerns
    values["referrals"] = sorted((r.resource_id, str(r.status)) for r in call.referrals)
    values["tasks"] = sorted((str(t.kind), t.note or "") for t in call.tasks if t.status == TaskStatus.OPEN)
    return values


def _apply(call: Call, data: Mapping[str, Any]) -> None:
    """Copy the fields present in ``data`` onto the call, then recompute the derived ones."""
    for name in _SCALARS:
        if name in data:
            value = data[name]
            if name == "channel" and not value:
                continue  # a call always has a channel; an empty choice leaves it as it was
            if name == "ended_at" and (value is None or (
                    call.ended_at is not None and call.ended_at.replace(second=0, microsecond=0) == value)):
                continue  # left empty (set at finalization), or the same minute the form showed
            if name == "ended_at":
                value = max(value, call.started_at)  # typed to the minute: the start's own minute counts
            setattr(call, name, value if value not in ("",) else None)
    if "caller_phone" in data:
        digits = normalize_phone(data["caller_phone"])
        call.caller_phone = digits
        call.caller_phone_index = keyring().blind_index(PHONE_INDEX_PURPOSE, digits) if digits else None
    if "substances" in data:
        wanted = {Substance(s) for s in data["substances"]}
        kept = [s for s in call.substances if s.substance in wanted]
        have = {s.substance for s in kept}
        call.substances = kept + [CallSubstance(substance=s) for s in Substance if s in wanted and s not in have]
    for name in ("withdrawal_symptoms", "concerns"):
        if name in data:
            setattr(call, name, ",".join(data[name]))
    if "referrals" in data:
        _apply_referrals(call, data["referrals"])
    if "tasks" in data:
        _apply_tasks(call, data["tasks"])
    for name in (*SAFETY_ACTIONS, "identity_shared", *CONSENTS):
        if getattr(call, name) is None:
            setattr(call, name, False)
    _derive(call)


def _apply_referrals(call: Call, referrals: Iterable[tuple[int, str]]) -> None:
    wanted: dict[int, ReferralStatus] = {}
    for resource_id, status in referrals:
        wanted[int(resource_id)] = ReferralStatus(status)
    existing = {r.resource_id: r for r in call.referrals}
    kept = []
    for resource_id, status in wanted.items():
        referral = existing.get(resource_id) or Referral(resource_id=resource_id)
        if referral.status != status:
            referral.status = status
        kept.append(referral)
    call.referrals = kept


def _apply_tasks(call: Call, tasks: Mapping[str, str | None]) -> None:
    """``tasks`` maps a task kind the caller was helped with to its note; kinds left out are
    dropped while still open (a finished task stays)."""
    by_kind = {t.kind: t for t in call.tasks}
    result = [t for t in call.tasks if t.status != TaskStatus.OPEN]
    for kind in TaskKind:
        task = by_kind.get(kind)
        if kind.value in tasks:
            note = tasks[kind.value] or None
            if task is None:
                task = CallTask(kind=kind, note=note)
            elif task.note != note:
                task.note = note
            if task not in result:
                result.append(task)
    call.tasks = result


def call_facts(call: Call) -> Facts:
    """What the stored call says, in the shape the risk table reads."""
    return Facts.build({name: getattr(call, name) for name in RISK_QUESTIONS},
                       [c for c in (call.withdrawal_symptoms or "").split(",") if c],
                       [s.substance for s in call.substances])


def call_assessment(call: Call) -> Assessment:
    """The risk table's full answer for a stored call (level, flag, the rows that matched, required questions)."""
    return evaluate(call_facts(call))


def _derive(call: Call) -> Assessment:
    """Overdose flag and risk level: always computed here by the one rule table, never taken from the
    browser (which runs the same table to show them live)."""
    assessment = evaluate(call_facts(call))
    call.overdose_risk = assessment.overdose_risk
    call.risk_level = assessment.level
    return assessment


DRAFT_EXTRA_FIELDS = ("disclosure_to", "disclosure_affiliation", "disclosure_by", "disclosure_information",
                      "disclosure_reason", "disclosure_at", "followup_due_at", "followup_assignee")


def save_draft(call: Call, data: Mapping[str, Any], actor: User, extras: Mapping[str, str] | None = None) -> Call:
    """Keep whatever has been entered so far on a draft. Never checks completeness; the
    risk level and overdose flag are recomputed. Not audited (it runs every few seconds).

    ``extras`` holds the raw text of the disclosure and follow-up boxes: kept (encrypted) so a
    crashed browser loses nothing, but turned into records only when the call is finalized.
    """
    _check_editable(call, actor)
    if call.status != CallStatus.DRAFT:
        raise CallRefused("only a draft is saved as a draft")
    _apply(call, data)
    kept = {k: str(v)[:TEXT_MAX] for k, v in (extras or {}).items() if k in DRAFT_EXTRA_FIELDS and v}
    call.draft_extras = json.dumps(kept, sort_keys=True) if kept else None
    db.session.flush()
    escalate_if_urgent(call, actor)
    return call


def draft_extras(call: Call) -> dict[str, str]:
    """The disclosure and follow-up text kept on a draft (see ``save_draft``)."""
    if not call.draft_extras or call.status != CallStatus.DRAFT:
        return {}
    return {k: v for k, v in json.loads(call.draft_extras).items() if k in DRAFT_EXTRA_FIELDS}


def preview_risk(data: Mapping[str, Any]) -> Assessment:
    """What the risk table says about ``data`` (for showing and checking, not storing)."""
    return evaluate(Facts.build({name: data.get(name) for name in RISK_QUESTIONS},
                                data.get("withdrawal_symptoms", []), data.get("substances", [])))


def validate_for_finalize(call: Call, data: Mapping[str, Any]) -> dict[str, str]:
    """Every rule a finished record must meet, checked on the merged values; {} when it is fine."""
    def value(name: str) -> Any:
        return data[name] if name in data else getattr(call, name)

    errors: dict[str, str] = {}
    if not value("channel"):
        errors["channel"] = gettext("Choose how the caller reached the line.")
    if not value("relationship_to_person"):
        errors["relationship_to_person"] = gettext("Choose who is calling.")
    if not value("disposition"):
        errors["disposition"] = gettext("Choose how the call ended.")
    ended = value("ended_at")
    if ended is not None and ended < call.started_at.replace(second=0, microsecond=0):  # typed to the minute
        errors["ended_at"] = gettext("The end time cannot be before the start of the call.")
    problem = zip_problem(value("zip"))
    if problem:
        errors["zip"] = problem
    state = value("state")
    if state and not STATE_RE.match(state):
        errors["state"] = gettext("A state is two letters, like CA.")
    phone = normalize_phone(data["caller_phone"]) if "caller_phone" in data else None
    if phone and not PHONE_DIGITS.match(phone):
        errors["caller_phone"] = gettext("A phone number has 7 to 15 digits.")
    notes = value("notes")
    if notes and len(notes) > NOTES_MAX:
        errors["notes"] = gettext("Notes are at most %(n)s characters.", n=f"{NOTES_MAX:,}")
    assessment = preview_risk({
        "substances": data["substances"] if "substances" in data else [s.substance for s in call.substances],
        "withdrawal_symptoms": (data["withdrawal_symptoms"] if "withdrawal_symptoms" in data
                                else [c for c in call.withdrawal_symptoms.split(",") if c]),
        **{name: value(name) for name in RISK_QUESTIONS},
    })
    # A danger sign makes its screen questions required: asked, or a reason recorded (intake.calls.risk).
    if assessment.unanswered_required and not value("unasked_reason"):
        for name in assessment.unanswered_required:
            errors[name] = gettext("Ask this: a danger sign on the call makes it required. If it could not be "
                                   "asked, choose why below.")
        errors["unasked_reason"] = gettext("Say why the required questions were not asked.")
    if needs_safety_action(assessment.level) and not any(value(name) for name in SAFETY_ACTIONS):
        errors["safety_actions"] = gettext("A high or imminent risk call needs at least one safety action.")
    errors.update(disclosure_problems(call, data, value))
    followup = data.get("followup")
    if followup and not any(value(name) for name in CONSENTS):
        errors["followup_due_at"] = gettext("A follow-up needs the caller's consent to be contacted.")
    if followup and followup.get("due_at") is None:
        errors["followup_due_at"] = gettext("Give the date and time the follow-up is due.")
    return errors


def finalize_call(call: Call, data: Mapping[str, Any], actor: User) -> Call:
    """Finish a draft (or edit a finished call within the edit window).

    Everything is checked first and ``CallInvalid`` raised before any change, so nothing is
    half-saved. A draft becomes final (end time now if missing, duration computed, urgent for
    high and imminent risk), audited "call.finalized"; a final call's edit is audited
    "call.edited" with the names of the changed fields only.
    """
    _check_editable(call, actor)
    errors = validate_for_finalize(call, data)
    if errors:
        raise CallInvalid(errors)
    was_final = call.status == CallStatus.FINAL
    before = _snapshot(call)
    _apply(call, data)
    now = utcnow()
    if call.ended_at is None:
        call.ended_at = max(now, call.started_at)
    call.duration_seconds = max(0, int((call.ended_at - call.started_at).total_seconds()))
    escalate_if_urgent(call, actor)
    if data.get("disclosure"):
        record_disclosure(call, data["disclosure"], actor, now)
    if not was_final:
        call.status = CallStatus.FINAL
        call.finalized_at = now
        call.draft_extras = None
    db.session.flush()
    if data.get("followup"):
        f = data["followup"]
        add_followup(call, f["due_at"], f.get("assignee"), actor)
    if was_final:
        after = _snapshot(call)
        changed = sorted(name for name in _TRACKED if before[name] != after[name])
        if changed:
            record("call.edited", actor=actor, object_type="call", object_id=call.id, details={"fields": changed})
    else:
        record("call.finalized", actor=actor, object_type="call", object_id=call.id,
               details={"risk_level": call.risk_level.value, "urgent": call.urgent})
    queue_high_risk(call, actor)  # also after an edit that raised the risk; a queued call is left alone
    return call


def add_followup(call: Call, due_at: datetime, assignee: User | int | None, actor: User) -> FollowUp:
    """Plan a call back from the intake form (``followups.create_followup`` holds the rules);
    refused with a field error (``CallInvalid``) unless the caller consented to some contact."""
    _check_editable(call, actor)
    if isinstance(assignee, int):
        assignee = db.session.get(User, assignee)
    try:
        return create_followup(call, due_at, assignee, actor)
    except FollowUpError as exc:
        raise CallInvalid({"followup_due_at": str(exc)}) from exc


def active_resources() -> list[Resource]:
    """Directory entries an operator can refer to, by name (the no-JavaScript picker)."""
    return list(db.session.execute(
        select(Resource).where(Resource.active.is_(True)).order_by(Resource.name, Resource.id).limit(500)
    ).scalars())


def resources_by_id(ids: Iterable[int]) -> dict[int, Resource]:
    ids = list(ids)
    if not ids:
        return {}
    return {r.id: r for r in db.session.execute(select(Resource).where(Resource.id.in_(ids))).scalars()}


def staff_assignees() -> list[User]:
    """Active staff who work follow-ups (operators, supervisors): who can be given one."""
    return staff_accounts(active_only=True, roles=roles_with([Permission.FOLLOWUPS_WORK]))
