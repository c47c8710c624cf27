"""The disclosure gate at work: gather the facts of an intended disclosure, ask ``gate.rule``, and,
when the records go to someone other than the patient, write the ``Disclosure`` row at that moment
in the caller's transaction, with the cover letter that travels with the records.

The row copies who received what, why, under which consent or designation, which 42 CFR §2.32
notice went with it (version and language) and how many addenda (H&S 123111(b)); nothing that
happens later to the request, the consent or the designation changes or removes it. Each one also
moves the patient's retention floor (six years of documentation; ``archive.services``).

Medical-emergency disclosures of an archived patient's records (42 CFR 2.51) are recorded here too,
through the same gate, so the accounting lists them with the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from intake.archive.models import ArchivedPatient
from intake.archive.services import refresh_retention_floor
from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, can
from intake.records import common, consents, deadlines, gate, letters, professionals
from intake.records.models import (
    DeliveryMethod,
    Disclosure,
    DisclosureBasis,
    RecordsRequest,
    RequestStatus,
    RequestType,
    Visibility,
)

EMERGENCY_TEXT_MAX = common.TEXT_MAX
EMERGENCY_NAME_MAX = common.NAME_MAX


def case_for(req: RecordsRequest, method: DeliveryMethod | None, consent_confirmed: bool = False) -> gate.Case:
    """The facts of disclosing this request's records now, by ``method``."""
    consent = consents.current_consent(req) if req.request_type == RequestType.THIRD_PARTY else None
    clinical = req.request_type != RequestType.THIRD_PARTY and professionals.clinical_denial_stands(req)
    return gate.Case(
        request_type=req.request_type, method=method, verified=req.verified_at is not None,
        consent_problem=(consents.consent_problem(consent, deadlines.today(), consents.is_representative(req))
                         if req.request_type == RequestType.THIRD_PARTY else None),
        differences=consents.consent_differences(consent, req) if consent is not None else (),
        match_confirmed=consent_confirmed, clinical_denial=clinical,
        designated=clinical and professionals.designated(req) is not None)


def check(req: RecordsRequest, method: DeliveryMethod | None, consent_confirmed: bool = False) -> gate.Ruling:
    """Ask the gate without disclosing anything (for a release and for the page)."""
    return gate.rule(case_for(req, method, consent_confirmed))


def problem_text(req: RecordsRequest, ruling: gate.Ruling) -> str:
    """Why the gate refused, in words; a mismatch names the elements that differ."""
    code = ruling.problem or ""
    text = common.blocked_reason(code)
    if code == "consent_mismatch":
        consent = consents.current_consent(req)
        names = [str(consents.ELEMENT_LABELS[name]) for name in consents.consent_differences(consent, req)]
        text = _("The consent and the request differ in: %(names)s.", names=", ".join(names)) + " " + text
    return text


def accepted_addenda(patient_id: int | None) -> list[RecordsRequest]:
    """The addenda accepted for this patient's record, oldest first: they go with every later
    disclosure of the record (H&S 123111(b))."""
    if patient_id is None:
        return []
    return list(db.session.execute(select(RecordsRequest).where(
        RecordsRequest.archived_patient_id == patient_id, RecordsRequest.request_type == RequestType.ADDENDUM,
        RecordsRequest.status.in_([RequestStatus.FULFILLED, RequestStatus.PARTIALLY_FULFILLED]))
        .order_by(RecordsRequest.id)).scalars())


def disclose(req: RecordsRequest, actor: Any, method: DeliveryMethod, now: datetime | None = None,
             consent_confirmed: bool = False) -> gate.Ruling:
    """Let the records leave by ``method`` if the gate allows it now; raises ``RequestInvalid``
    (nothing written) otherwise. A disclosure to someone other than the patient is logged here, with
    its cover letter (the §2.32 notice and the consent's scope, the addenda), in this transaction."""
    ruling = check(req, method, consent_confirmed)
    if not ruling.lawful:
        field = "consent_confirmed" if ruling.problem == "consent_unconfirmed" else "method"
        raise common.RequestInvalid({field: problem_text(req, ruling)})
    if not ruling.logged:
        return ruling
    now = now or utcnow()
    basis = DisclosureBasis(ruling.basis or "")  # logged: never None here
    addenda = accepted_addenda(req.archived_patient_id)
    version = consents.notice_in_force(deadlines.facility_day(now))
    consent = professional = None
    if basis == DisclosureBasis.CONSENT:
        consent = consents.current_consent(req)
        assert consent is not None  # the gate refuses a consent disclosure without one
        recipient, address, purpose = consent.recipient_name or "", consent.recipient_address, consent.purpose or ""
    else:
        professional = professionals.designated(req)
        assert professional is not None  # the gate refuses a designated disclosure without one
        recipient, address = professional.name, professional.address
        with common.recipient_language(req):
            purpose = consents.purpose_words({"code": "designated"})
    # The words as written to the recipient, in their language (the letter's); and the facts, for
    # the accounting to word in its reader's language.
    with common.recipient_language(req):
        description = consents.released_description(req)
    wording = consents.disclosure_wording(consents.scope_facts(req),
                                          None if basis == DisclosureBasis.CONSENT else {"code": "designated"})
    disclosure = Disclosure(
        archived_patient_id=req.archived_patient_id, request_id=req.id,
        consent_id=consent.id if consent else None, professional_id=professional.id if professional else None,
        basis=basis, channel=method.value, disclosed_at=now, recipient_name=recipient,
        recipient_address=address, description=description, purpose=purpose,
        redisclosure_notice=True, notice_version=version.code, notice_language=req.recipient_language or "en",
        addenda_count=len(addenda), disclosed_by_id=actor.id, wording=wording)
    db.session.add(disclosure)
    db.session.flush()
    # The letter the records travel with: printed and enclosed, faxed or handed over by staff.
    letters.store_letter(req, "disclosure", actor, visibility=Visibility.INTERNAL, disclosure=disclosure,
                         consent=consent, addenda=addenda, notice=version)
    record("request.disclosed", actor=actor, object_type=common.OBJECT_TYPE, object_id=req.id,
           details={"disclosure_id": disclosure.id, "basis": disclosure.basis.value, "method": method.value,
                    "consent_id": disclosure.consent_id, "notice": version.code, "addenda": len(addenda)})
    refresh_retention_floor(req.archived_patient_id)
    return ruling


# --- Medical emergencies (42 CFR 2.51) --------------------------------------------------------------

@dataclass(frozen=True)
class EmergencyInput:
    """A 2.51(c) record as typed: who received it (and their facility), when, what and why."""

    recipient_name: str | None
    affiliation: str | None
    disclosed_at: datetime | None
    information: str | None
    reason: str | None


def record_emergency(patient: ArchivedPatient, actor: Any, data: EmergencyInput,
                     now: datetime | None = None) -> Disclosure:
    """Record a disclosure of an archived patient's records to medical personnel in a bona fide
    medical emergency (42 CFR 2.51(a)), documented as 2.51(c) asks: the recipient and their
    affiliation, who made it (the actor), its date and time, and the nature of the emergency."""
    if not can(actor, Permission.REQUESTS_QUEUE):
        raise common.RequestRefused("only the records office records a disclosure of the archive")
    now = now or utcnow()
    values = {"recipient_name": (data.recipient_name or "").strip() or None,
              "affiliation": (data.affiliation or "").strip() or None, "disclosed_by": actor.id,
              "disclosed_at": data.disclosed_at, "reason": (data.reason or "").strip() or None}
    information = (data.information or "").strip() or None
    errors: dict[str, str] = {}
    ruling = gate.rule(gate.Case(request_type=None, method=None,
                                 emergency_missing=gate.missing_emergency_parts(values)))
    messages = {"recipient_name": _("Name the medical personnel who received the records (42 CFR 2.51(c)(1))."),
                "affiliation": _("Give their affiliation: the health care facility (42 CFR 2.51(c)(1))."),
                "disclosed_at": _("Give the date and time of the disclosure (42 CFR 2.51(c)(3))."),
                "reason": _("Describe the nature of the emergency (42 CFR 2.51(c)(4)).")}
    if not ruling.lawful:
        errors.update({part: messages[part] for part in gate.missing_emergency_parts(values) if part in messages})
    if not information:
        errors["information"] = _("Say what was disclosed.")
    for name, limit in (("recipient_name", EMERGENCY_NAME_MAX), ("affiliation", EMERGENCY_NAME_MAX),
                        ("reason", EMERGENCY_TEXT_MAX)):
        if values[name] and len(str(values[name])) > limit:
            errors[name] = _("Please keep this under %(n)d characters.", n=limit)
    if information and len(information) > EMERGENCY_TEXT_MAX:
        errors["information"] = _("Please keep this under %(n)d characters.", n=EMERGENCY_TEXT_MAX)
    when = data.disclosed_at
    if when is not None and when > now:
        errors["disclosed_at"] = _("The time of the disclosure cannot be in the future.")
    if errors:
        raise common.RequestInvalid(errors)
    assert when is not None
    disclosure = Disclosure(archived_patient_id=patient.id, basis=DisclosureBasis.EMERGENCY, channel="emergency",
                            disclosed_at=when, recipient_name=values["recipient_name"],
                            affiliation=values["affiliation"], description=information,
                            purpose=consents.purpose_words({"code": "emergency", "reason": values["reason"]}),
                            redisclosure_notice=False, disclosed_by_id=actor.id,
                            wording=consents.disclosure_wording(purpose={"code": "emergency",
                                                                         "reason": values["reason"]}))
    db.session.add(disclosure)
    db.session.flush()
    record("archive.emergency_disclosure", actor=actor, object_type="archived_patient", object_id=patient.id,
           details={"disclosure_id": disclosure.id})
    refresh_retention_floor(patient.id)
    return disclosure


def patient_disclosures(patient_id: int, limit: int = 50) -> list[Disclosure]:
    """The latest disclosures of one archived patient's records, newest first (the archive page)."""
    return list(db.session.execute(select(Disclosure).where(Disclosure.archived_patient_id == patient_id)
                                   .order_by(Disclosure.disclosed_at.desc(), Disclosure.id.desc())
                                   .limit(limit)).scalars())


def page_context(req: Any, viewer: Any, staff: bool) -> dict[str, Any]:
    """The gate's view of the request for the queue page: whether a delivery could go ahead now (the
    consent's side-by-side confirmation aside), and why not."""
    if not staff or req.status != RequestStatus.IN_REVIEW:
        return {"gate_problem": None, "gate_needs_confirmation": False}
    method = DeliveryMethod.MAIL if req.request_type == RequestType.THIRD_PARTY or (
        professionals.clinical_denial_stands(req)) else None
    ruling = check(req, method, consent_confirmed=True)
    return {"gate_problem": None if ruling.lawful else problem_text(req, ruling),
            "gate_needs_confirmation": req.request_type == RequestType.THIRD_PARTY}
