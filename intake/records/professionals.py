"""Licensed professionals on a records request: who may deny access on clinical grounds, who may
review such a denial, and whom a patient may designate to receive the records instead.

- A denial on clinical grounds (the reasons ``workflow.REVIEWABLE_REASONS``: danger to life or
  safety, harm to someone named, harm from a representative's access) is a licensed health care
  professional's determination (45 CFR 164.524(a)(3); for mental health records H&S 123115(b)).
- Its review is by a licensed health care professional who did not take part in the denial
  (45 CFR 164.524(a)(4), (d)(4)).
- Either may be a member of staff whose account carries a licence (``intake.users.services.licensed``),
  or an outside professional whom staff record here with name, licence, date, decision and the
  written decision itself, so a facility with a single administrator can still decide a review.
- After such a denial the patient may designate a licensed physician and surgeon, psychologist,
  marriage and family therapist, clinical social worker or professional clinical counselor to
  inspect or receive copies of the records instead (H&S 123115(b)); the disclosure gate then sends
  them there and nowhere else.

The licence rules are pure functions; the services check, write the row, the timeline entry and the
audit event (names and numbers never in it) and ``flush()``; the views commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from intake.audit.services import record
from intake.extensions import db
from intake.records import common, deadlines
from intake.records.models import (
    EventCode,
    EventKind,
    FileKind,
    LicensedProfessional,
    ProfessionalRole,
    RecordsRequest,
    RequestStatus,
    Visibility,
)
from intake.records.workflow import REVIEWABLE_REASONS, Actor, ReviewOutcome, actor_for
from intake.users.models import LicenceType
from intake.users.services import IdentityError, clean_display_name, clean_licence, licensed

# 45 CFR 164.524(a)(3): "a licensed health care professional"; an unnamed "other" licence is not shown to be one.
CLINICAL_LICENCES = frozenset(LicenceType) - {LicenceType.OTHER}
# H&S 123115(b)(1): whom a patient may designate.
DESIGNATABLE_LICENCES = frozenset({LicenceType.MD, LicenceType.DO, LicenceType.PSYD, LicenceType.PHD,
                                   LicenceType.LMFT, LicenceType.LCSW, LicenceType.LPCC})
ADDRESS_MAX = common.ADDRESS_MAX
OLDEST_DECISION_DAYS = 3660  # a decision dated more than ten years ago is refused as a typing mistake


# --- The pure rules ------------------------------------------------------------------------------

def licence_label(licence_type: Any, number: str | None, state: str | None) -> str:
    """"LCSW 12345 CA": how a decision's licence is stored and shown."""
    kind = licence_type.value if isinstance(licence_type, LicenceType) else str(licence_type)
    return f"{kind} {number} {state}"


def clinical_licence_of(user: Any) -> str | None:
    """The licence that lets this staff member make or review a clinical denial, or None
    (45 CFR 164.524(a)(3), (d)(4))."""
    if not licensed(user) or user.licence_type not in CLINICAL_LICENCES:
        return None
    return licence_label(user.licence_type, user.licence_number, user.licence_state)


def may_be_designated(licence_type: Any) -> bool:
    """Whether a patient may designate a professional with this licence (H&S 123115(b)(1))."""
    return licence_type in DESIGNATABLE_LICENCES


def clinical_denial_stands(req: Any) -> bool:
    """A denial on clinical grounds that no review has overturned (45 CFR 164.524(a)(3), (d)(4))."""
    return req.decision_reason in REVIEWABLE_REASONS and req.review_outcome != ReviewOutcome.OVERTURNED


# --- Reading ------------------------------------------------------------------------------------

def latest(req: RecordsRequest, role: ProfessionalRole) -> LicensedProfessional | None:
    """The newest professional recorded on the request for ``role`` (a new one supersedes)."""
    return db.session.execute(select(LicensedProfessional).where(
        LicensedProfessional.request_id == req.id, LicensedProfessional.role == role)
        .order_by(LicensedProfessional.id.desc()).limit(1)).scalar_one_or_none()


def designated(req: RecordsRequest) -> LicensedProfessional | None:
    """The professional the patient designated, when one is recorded and may be designated."""
    found = latest(req, ProfessionalRole.DESIGNATED)
    return found if found is not None and may_be_designated(found.licence_type) else None


def pending_decision(req: RecordsRequest, role: ProfessionalRole) -> LicensedProfessional | None:
    """An outside professional's decision recorded for the step the request is at: a denial while it
    is open, a review while one is requested. Older ones (before a reopen) do not count."""
    found = latest(req, role)
    if found is None:
        return None
    if role == ProfessionalRole.REVIEW and req.review_requested_at is not None and \
            found.created_at < req.review_requested_at:
        return None
    return found


# --- Recording ----------------------------------------------------------------------------------

def _clean(values: Mapping[str, Any], today: date, role: ProfessionalRole) -> dict[str, Any]:
    """The typed professional as stored, or ``RequestInvalid`` with every problem by field."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    try:
        out["name"] = clean_display_name(values.get("name"))
        if out["name"] is None:
            errors["name"] = _("Enter the professional's full name.")
    except IdentityError:
        errors["name"] = _("A name has letters, spaces and the punctuation names use ( ' - . , ) only.")
    try:
        kind, number, state = clean_licence(values.get("licence_type"), values.get("licence_number"),
                                            values.get("licence_state"))
        if kind is None:
            errors["licence_type"] = _("Choose the licence type, and give its number and state.")
        out.update(licence_type=kind, licence_number=number, licence_state=state)
    except IdentityError as exc:
        errors[exc.field] = str(exc)
    kind = out.get("licence_type")
    if kind is not None and role == ProfessionalRole.DESIGNATED and not may_be_designated(kind):
        errors["licence_type"] = _("Under Health & Safety Code §123115(b) the patient may designate a licensed "
                                   "physician, psychologist, marriage and family therapist, clinical social worker "
                                   "or professional clinical counselor.")
    elif kind is not None and role != ProfessionalRole.DESIGNATED and kind not in CLINICAL_LICENCES:
        errors["licence_type"] = _("A clinical denial and its review are made by a licensed health care "
                                   "professional (45 CFR 164.524(a)(3)); choose their licence type.")
    address = (values.get("address") or "").strip() or None
    if role == ProfessionalRole.DESIGNATED and not address:
        errors["address"] = _("Enter the address where the professional receives the records.")
    elif address is not None and len(address) > ADDRESS_MAX:
        errors["address"] = _("Please keep this under %(n)d characters.", n=ADDRESS_MAX)
    out["address"] = address
    decided_on = values.get("decided_on")
    if role != ProfessionalRole.DESIGNATED:
        if not isinstance(decided_on, date):
            errors["decided_on"] = _("Enter the date of the decision, like 2026-05-17.")
        elif decided_on > today:
            errors["decided_on"] = _("The date of the decision cannot be in the future.")
        elif decided_on < today - timedelta(days=OLDEST_DECISION_DAYS):
            errors["decided_on"] = _("Check the date of the decision: it is more than ten years ago.")
        decision = values.get("decision")
        allowed = REVIEWABLE_REASONS if role == ProfessionalRole.DENIAL else set(ReviewOutcome)
        if decision not in {str(code) for code in allowed}:
            errors["decision"] = _("Choose the decision from the list.")
        out["decision"] = decision
        out["decided_on"] = decided_on
    else:
        out["decided_on"] = today
        out["decision"] = None
    if errors:
        raise common.RequestInvalid(errors)
    return out


def record_decision(req: RecordsRequest, actor: Any, role: ProfessionalRole | str, values: Mapping[str, Any],
                    document: tuple[str | None, bytes] | None, expected_version: int | None = None
                    ) -> LicensedProfessional:
    """Staff record an outside licensed professional's clinical denial or review of one, with the
    written decision attached (the document is required: it is the proof)."""
    # Imported here: documents builds on this package's services.
    from intake.records.documents import store_document

    role = ProfessionalRole(role)
    if role == ProfessionalRole.DESIGNATED:
        raise common.RequestRefused("a designation is recorded by ``designate``")
    if actor_for(actor, req) is not Actor.STAFF:
        raise common.RequestRefused("only staff record a professional's decision")
    common.check_version(req, expected_version)
    wanted = RequestStatus.REVIEW_REQUESTED if role == ProfessionalRole.REVIEW else None
    if (wanted is not None and req.status != wanted) or (wanted is None and not req.is_open):
        raise common.RequestInvalid({"decision": _(
            "A review's decision is recorded while a review is requested; a denial's while the request is open.")})
    values = _clean(values, deadlines.today(), role)
    if document is None or not document[1]:
        raise common.RequestInvalid({"file": _("Attach the professional's written decision (PDF, PNG or JPEG).")})
    if role == ProfessionalRole.REVIEW:
        denier = latest(req, ProfessionalRole.DENIAL)
        if denier is not None and (denier.licence_type, denier.licence_number, denier.licence_state) == (
                values["licence_type"], values["licence_number"], values["licence_state"]):
            raise common.RequestInvalid({"licence_number": _(
                "The review is by a licensed professional who did not take part in the denial "
                "(45 CFR 164.524(d)(4)); this licence made the denial.")})
    doc = store_document(req, FileKind.PROFESSIONAL, document[0], document[1], actor, Visibility.INTERNAL)
    return _save(req, actor, role, values, doc.id)


def designate(req: RecordsRequest, actor: Any, values: Mapping[str, Any], expected_version: int | None = None
              ) -> LicensedProfessional:
    """The patient (or staff, from the patient's letter) designates a licensed professional to receive
    the records after a denial on clinical grounds (H&S 123115(b))."""
    who = actor_for(actor, req)
    if who is None:
        raise common.RequestRefused("not this request")
    if who is Actor.STAFF:
        common.check_version(req, expected_version)
    if not clinical_denial_stands(req):
        raise common.RequestInvalid({"request": _(
            "A professional is designated after a denial on clinical grounds; this request has none.")})
    values = _clean(values, deadlines.today(), ProfessionalRole.DESIGNATED)
    return _save(req, actor, ProfessionalRole.DESIGNATED, values, None)


_SAVED_CODES = {
    ProfessionalRole.DENIAL: EventCode.PROFESSIONAL_DENIAL,
    ProfessionalRole.REVIEW: EventCode.PROFESSIONAL_REVIEW,
    ProfessionalRole.DESIGNATED: EventCode.PROFESSIONAL_DESIGNATED,
}


def _save(req: RecordsRequest, actor: Any, role: ProfessionalRole, values: Mapping[str, Any],
          document_id: int | None) -> LicensedProfessional:
    row = LicensedProfessional(request_id=req.id, role=role, document_id=document_id,
                               recorded_by_id=getattr(actor, "id", None), **values)
    db.session.add(row)
    db.session.flush()
    visibility = Visibility.REQUESTER if role == ProfessionalRole.DESIGNATED else Visibility.INTERNAL
    common.add_event(req, EventKind.PROFESSIONAL, visibility, actor, code=_SAVED_CODES[role])
    record("request.professional_recorded", actor=actor, object_type=common.OBJECT_TYPE, object_id=req.id,
           details={"role": role.value, "professional_id": row.id, "licence_type": row.licence_type.value})
    db.session.flush()
    return row


def latest_by_role(req: RecordsRequest) -> dict[ProfessionalRole, LicensedProfessional]:
    """The newest professional recorded on the request for each role, in one query (a request
    holds a handful at most): what ``latest`` gives role by role."""
    found: dict[ProfessionalRole, LicensedProfessional] = {}
    for professional in db.session.execute(select(LicensedProfessional).where(
            LicensedProfessional.request_id == req.id).order_by(LicensedProfessional.id.desc())).scalars():
        found.setdefault(professional.role, professional)
    return found


def page_context(req: Any, viewer: Any, staff: bool) -> dict[str, Any]:
    """What the request's page needs from this module (one query for the three roles)."""
    newest = latest_by_role(req)
    chosen = newest.get(ProfessionalRole.DESIGNATED)
    return {"designated_professional": chosen if chosen is not None and may_be_designated(chosen.licence_type)
            else None, "clinical_denial": clinical_denial_stands(req),
            "denial_professional": newest.get(ProfessionalRole.DENIAL) if staff else None,
            "review_professional": newest.get(ProfessionalRole.REVIEW) if staff else None}
