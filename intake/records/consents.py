"""Third-party disclosures: the written consent (42 CFR §2.31), the redisclosure notice (§2.32),
the disclosure log and the accounting of disclosures.

A request of type ``third_party`` may be released only under its newest consent, and only while
that consent holds every element §2.31 asks for, has not expired (in the facility's day) and has
not been revoked. ``consent_problem`` decides that without the database; ``release_problem`` is
the hook the workflow asks. When such a request is fulfilled (or partly), ``record_disclosure``
writes one ``Disclosure`` in the same transaction, and an ``accounting`` request lists a
patient's disclosures of the three years before it was received.

Audit details and timeline notes carry ids and codes only, never what a consent says.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.records import common, deadlines
from intake.records.labels import KIND_LABELS, PARTIAL_LABELS, SCOPE_LABELS
from intake.records.models import (
    Consent,
    Disclosure,
    DisclosureBasis,
    EventCode,
    EventKind,
    RecordsRequest,
    RequesterRelationship,
    RequestType,
    Scope,
    Visibility,
)
from intake.records.workflow import Actor, actor_for

MISSING = "consent_missing"
INCOMPLETE = "consent_incomplete"
EXPIRED = "consent_expired"
REVOKED = "consent_revoked"

ACCOUNTING_YEARS = 3  # disclosures under a consent: the three years before the request (42 CFR 2.25(a))
ACCOUNTING_YEARS_OTHER = 6  # every other disclosure: six years (45 CFR 164.528(a)(1))
LONGEST_CONSENT_DAYS = 3660  # an expiry date more than ten years after signing is refused as a typing mistake
OLDEST_PAPER_DAYS = 3660  # a paper consent signed more than ten years ago is refused as a typing mistake

# --- The 42 CFR §2.32 notice ------------------------------------------------------------------
# Each disclosure made with the patient's written consent is accompanied by one of the two statements
# of §2.32(a) and, since the 2024 rule (89 FR 12472; compliance from 16 February 2026), by a copy of
# the consent or a clear explanation of its scope (§2.32(b)). The statements are law, quoted exactly
# (Statement 1, the full one); a disclosure records which version went out and in which language.
# A translation is the facility's, and the official English statement always follows it.

@dataclass(frozen=True)
class NoticeVersion:
    code: str
    in_force_from: date
    citation: str
    text: Mapping[str, str]  # language -> text; "en" is the official one


NOTICE_2018 = NoticeVersion("2018", date(2018, 2, 2), "42 CFR §2.32(a)(1) (83 FR 251, 2018)", {
    "en": "This record which has been disclosed to you is protected by federal confidentiality rules (42 CFR part "
          "2). The federal rules prohibit you from making any further disclosure of this record unless further "
          "disclosure is expressly permitted by the written consent of the individual whose information is being "
          "disclosed in this record or, is otherwise permitted by 42 CFR part 2. A general authorization for the "
          "release of medical or other information is NOT sufficient for this purpose (see §2.31). The federal "
          "rules restrict any use of the information to investigate or prosecute with regard to a crime any "
          "patient with a substance use disorder, except as provided at §§2.12(c)(5) and 2.65.",
})
NOTICE_2024 = NoticeVersion("2024", date(2024, 4, 16), "42 CFR §2.32(a)(1), Statement 1 (89 FR 12472, 2024)", {
    "en": "This record which has been disclosed to you is protected by Federal confidentiality rules (42 CFR part "
          "2). These rules prohibit you from using or disclosing this record, or testimony that describes the "
          "information contained in this record, in any civil, criminal, administrative, or legislative "
          "proceedings by any Federal, State, or local authority, against the patient, unless authorized by the "
          "consent of the patient, except as provided at 42 CFR 2.12(c)(5) or as authorized by a court in "
          "accordance with 42 CFR 2.64 or 2.65. In addition, the Federal rules prohibit you from making any other "
          "use or disclosure of this record unless at least one of the following applies:\n"
          "(i) Further use or disclosure is expressly permitted by the written consent of the individual whose "
          "information is being disclosed in this record or as otherwise permitted by 42 CFR part 2.\n"
          "(ii) You are a covered entity or business associate and have received the record for treatment, "
          "payment, or health care operations, or\n"
          "(iii) You have received the record from a covered entity or business associate as permitted by 45 CFR "
          "part 164, subparts A and E.\n"
          "A general authorization for the release of medical or other information is NOT sufficient to meet the "
          "required elements of written consent to further use or redisclose the record (see 42 CFR 2.31).",
    "es": "Este expediente que se le ha divulgado está protegido por las normas federales de confidencialidad "
          "(42 CFR parte 2). Estas normas le prohíben usar o divulgar este expediente, o testimonios que describan "
          "la información que contiene, en cualquier procedimiento civil, penal, administrativo o legislativo de "
          "cualquier autoridad federal, estatal o local contra el paciente, salvo que lo autorice el consentimiento "
          "del paciente, excepto según lo previsto en 42 CFR 2.12(c)(5) o lo autorice un tribunal conforme a "
          "42 CFR 2.64 o 2.65. Además, las normas federales le prohíben hacer cualquier otro uso o divulgación de "
          "este expediente a menos que se cumpla al menos una de las siguientes condiciones:\n"
          "(i) El uso o la divulgación adicional está expresamente permitido por el consentimiento escrito de la "
          "persona cuya información se divulga en este expediente o lo permite de otro modo 42 CFR parte 2.\n"
          "(ii) Usted es una entidad cubierta o un socio comercial y ha recibido el expediente para tratamiento, "
          "pago u operaciones de atención médica, o\n"
          "(iii) Usted ha recibido el expediente de una entidad cubierta o un socio comercial según lo permite "
          "45 CFR parte 164, subpartes A y E.\n"
          "Una autorización general para la divulgación de información médica o de otro tipo NO es suficiente "
          "para cumplir los elementos requeridos del consentimiento escrito para usar o volver a divulgar el "
          "expediente (vea 42 CFR 2.31).",
})
NOTICE_VERSIONS = (NOTICE_2018, NOTICE_2024)
SCOPE_REQUIRED_FROM = date(2026, 2, 16)  # §2.32(b): the consent's copy or scope goes with it (always sent here)


def notice_in_force(day: date) -> NoticeVersion:
    """The §2.32 statement in force on ``day`` (the newest whose rule had taken effect)."""
    return max((v for v in NOTICE_VERSIONS if v.in_force_from <= day), key=lambda v: v.in_force_from,
               default=NOTICE_VERSIONS[0])


def notice_text(version: NoticeVersion, language: str) -> list[tuple[str, str]]:
    """The statement as a letter prints it: ``[(language, text)]``, the reader's language first and
    the official English after any translation."""
    out = []
    if language != "en" and language in version.text:
        out.append((language, version.text[language]))
    out.append(("en", version.text["en"]))
    return out


REDISCLOSURE_NOTICE = NOTICE_2024.text["en"]  # the statement in force now, as the queue page shows it

# Every element a consent must hold, in the order of §2.31(a), with how staff and requesters read it.
ELEMENT_LABELS = {
    "patient_name": _l("the patient's name"),
    "disclosing_program": _l("who may disclose the records"),
    "information": _l("how much and what kind of information may be disclosed"),
    "recipient_name": _l("the recipient's name"),
    "recipient_address": _l("the recipient's address"),
    "purpose": _l("the purpose of the disclosure"),
    "revocation_acknowledged": _l("the statement that the consent can be revoked"),
    "expiry": _l("an expiration date or event"),
    "signed_name": _l("the signature"),
    "signed_on": _l("the date signed"),
    "signer_authority": _l("the signer's authority to act for the patient"),
}
TEXT_ELEMENTS = ("patient_name", "disclosing_program", "information", "recipient_name", "recipient_address",
                 "purpose", "signed_name")
# The same limits as the request form's (``services`` imports this module, so they are repeated here).
NAME_MAX, ADDRESS_MAX, TEXT_MAX = 200, 500, 2_000
LIMITS = {"patient_name": NAME_MAX, "disclosing_program": NAME_MAX, "information": TEXT_MAX,
          "recipient_name": NAME_MAX, "recipient_address": ADDRESS_MAX, "purpose": TEXT_MAX,
          "expiry_event": TEXT_MAX, "signed_name": NAME_MAX, "signer_authority": TEXT_MAX}


# --- The pure rules --------------------------------------------------------------------------------

def _filled(value: Any) -> bool:
    return bool(value.strip()) if isinstance(value, str) else value is not None


def missing_elements(consent: Any, representative: bool) -> list[str]:
    """The §2.31 elements ``consent`` lacks (keys of ``ELEMENT_LABELS``); the signer's authority
    is an element only when a representative signs. Works on a ``Consent`` or any object with its fields."""
    out = [name for name in TEXT_ELEMENTS[:6] if not _filled(getattr(consent, name, None))]
    if not getattr(consent, "revocation_acknowledged", False):
        out.append("revocation_acknowledged")
    if getattr(consent, "expires_on", None) is None and not _filled(getattr(consent, "expiry_event", None)):
        out.append("expiry")
    if not _filled(getattr(consent, "signed_name", None)):
        out.append("signed_name")
    if getattr(consent, "signed_on", None) is None:
        out.append("signed_on")
    if representative and not _filled(getattr(consent, "signer_authority", None)):
        out.append("signer_authority")
    return out


def consent_problem(consent: Any | None, today: date, representative: bool) -> str | None:
    """Why a release may not go ahead under ``consent`` (a problem code), or None: missing,
    revoked, incomplete, or expired (valid through its expiry day, in the facility's calendar)."""
    if consent is None:
        return MISSING
    if consent.revoked_at is not None:
        return REVOKED
    if missing_elements(consent, representative):
        return INCOMPLETE
    if consent.expires_on is not None and consent.expires_on < today:
        return EXPIRED
    return None


# --- The consent against the request (42 CFR 2.31, 2.33) ------------------------------------------
# A consent allows one disclosure: of this patient's records, to the recipient it names, for the purpose
# it states. These four are compared with the request after normalising case, punctuation and spacing
# ("1 Main St, Fresno" is "1 Main St\nFresno"); any other difference is named and refuses the
# disclosure. Whether the consent's description of the information covers the records asked for is
# free text on both sides: staff read them side by side and confirm (``gate``).

COMPARED = ("patient_name", "recipient_name", "recipient_address", "purpose")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalized(text: str | None) -> str:
    """Case, accents' composition, punctuation and spacing removed: the words only."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return " ".join(part for part in _NOT_WORD.split(folded) if part)


def consent_differences(consent: Any, req: Any) -> tuple[str, ...]:
    """The elements (of ``COMPARED``) on which ``consent`` and the request disagree; empty when the
    consent is for this patient, this recipient and this purpose (42 CFR 2.31(a)(1), (4), (5))."""
    return tuple(name for name in COMPARED
                 if normalized(getattr(consent, name, None)) != normalized(getattr(req, name, None)))


def is_representative(req: RecordsRequest) -> bool:
    return req.relationship_to_patient != RequesterRelationship.SELF


def current_consent(req: RecordsRequest) -> Consent | None:
    """The newest consent on the request: the one that counts (a new one supersedes the others)."""
    return db.session.execute(select(Consent).where(Consent.request_id == req.id)
                              .order_by(Consent.id.desc()).limit(1)).scalar_one_or_none()


def release_problem(req: Any) -> str | None:
    """Why the records may not be released under this request's consent (a problem code), or None.
    Only requests to send records to a third party need a consent."""
    if req.request_type != RequestType.THIRD_PARTY:
        return None
    return consent_problem(current_consent(req), deadlines.today(), is_representative(req))


# --- Signing, entering and revoking ----------------------------------------------------------------

def prefill(req: RecordsRequest) -> dict[str, Any]:
    """What the consent form starts with: the patient, the facility and the request's recipient."""
    return {"patient_name": req.patient_name, "disclosing_program": current_app.config["FACILITY_NAME"],
            "information": released_description(req), "recipient_name": req.recipient_name,
            "recipient_address": req.recipient_address, "purpose": req.purpose}


def _clean(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in LIMITS:
        value = data.get(name)
        out[name] = value.strip() or None if isinstance(value, str) else None
    out["revocation_acknowledged"] = bool(data.get("revocation_acknowledged"))
    out["expires_on"] = data.get("expires_on")
    out["signed_on"] = data.get("signed_on")
    return out


def _problems(values: Mapping[str, Any], today: date, representative: bool, complete: bool) -> dict[str, str]:
    """What is wrong with the consent as typed: too long, impossible dates, and (when the requester
    signs online) any element missing. A paper consent is recorded as it is, gaps included."""
    errors: dict[str, str] = {}
    for name, limit in LIMITS.items():
        if values[name] is not None and len(values[name]) > limit:
            errors[name] = _("Please keep this under %(n)d characters.", n=limit)
    signed_on, expires_on = values["signed_on"], values["expires_on"]
    for name in ("signed_on", "expires_on"):
        if values[name] is not None and not isinstance(values[name], date):
            errors[name] = _("Enter a date like 2026-05-17 (year, month, day).")
    if errors:
        return errors
    if signed_on is not None and signed_on > today:
        errors["signed_on"] = _("The date signed cannot be in the future.")
    elif signed_on is not None and signed_on < today - timedelta(days=OLDEST_PAPER_DAYS):
        errors["signed_on"] = _("Check the date signed: it is more than ten years ago.")
    start = signed_on or today
    if expires_on is not None and complete and expires_on < today:
        errors["expires_on"] = _("Choose an expiration date that has not passed.")
    elif expires_on is not None and expires_on < start:
        errors["expires_on"] = _("The consent cannot expire before it was signed.")
    elif expires_on is not None and expires_on > start + timedelta(days=LONGEST_CONSENT_DAYS):
        errors["expires_on"] = _("Choose an expiration date at most ten years after the consent is signed.")
    if complete:
        messages = {
            "patient_name": _("Enter the patient's full name."),
            "disclosing_program": _("Say who may disclose the records."),
            "information": _("Say how much and what kind of information may be disclosed."),
            "recipient_name": _("Enter the name of the person or organisation that will receive the records."),
            "recipient_address": _("Enter the recipient's address."),
            "purpose": _("Say what the records will be used for."),
            "revocation_acknowledged": _("Tick the box to confirm you understand you can revoke this consent."),
            "expiry": _("Give an expiration date or an event that ends the consent."),
            "signed_name": _("Type your full name as your signature."),
            "signer_authority": _("Say what gives you the authority to sign for the patient."),
        }
        for name in missing_elements(_Values(values), representative):
            if name in messages:
                errors.setdefault("expires_on" if name == "expiry" else name, messages[name])
    return errors


@dataclass
class _Values:
    """The typed values seen as a consent, for ``missing_elements``."""

    values: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:
        return self.values.get(name)


def _save(req: RecordsRequest, actor: Any, values: Mapping[str, Any], action: str, code: EventCode) -> Consent:
    consent = Consent(request_id=req.id, created_by_id=actor.id, **values)
    db.session.add(consent)
    db.session.flush()
    common.add_event(req, EventKind.NOTE, Visibility.INTERNAL, actor, code=code)
    complete = not missing_elements(consent, is_representative(req))
    record(action, actor=actor, object_type=common.OBJECT_TYPE, object_id=req.id,
           details={"consent_id": consent.id, "complete": complete})
    db.session.flush()
    return consent


def _check_open(req: RecordsRequest) -> None:
    if req.request_type != RequestType.THIRD_PARTY:
        raise common.RequestRefused("only a request to send records to a third party takes a consent")
    if not req.is_open:
        raise common.RequestInvalid({"request": _("This request is closed: a consent can no longer be added "
                                                        "to it. To send records again, start a new request.")})


def sign(req: RecordsRequest, actor: Any, data: Mapping[str, Any], now: datetime | None = None) -> Consent:
    """The requester signs a consent online (every element required; dated today, by the server).
    It supersedes any earlier consent on the request."""
    if actor_for(actor, req) is not Actor.REQUESTER:
        raise common.RequestRefused("only the requester signs a consent online")
    _check_open(req)
    today = deadlines.facility_day(now) if now else deadlines.today()
    values = _clean({**data, "signed_on": today})
    errors = _problems(values, today, is_representative(req), complete=True)
    if errors:
        raise common.RequestInvalid(errors)
    if not is_representative(req):
        values["signer_authority"] = None
    return _save(req, actor, values, "consent.signed", EventCode.CONSENT_SIGNED)


def enter_paper(req: RecordsRequest, actor: Any, data: Mapping[str, Any], expected_version: int | None = None,
                now: datetime | None = None) -> Consent:
    """Staff record a consent received on paper, as written (gaps included: the page then says
    what is missing and the release stays blocked). It supersedes any earlier consent."""
    if actor_for(actor, req) is not Actor.STAFF:
        raise common.RequestRefused("only staff enter a paper consent")
    _check_open(req)
    common.check_version(req, expected_version)
    today = deadlines.facility_day(now) if now else deadlines.today()
    values = _clean(data)
    errors = _problems(values, today, is_representative(req), complete=False)
    if errors:
        raise common.RequestInvalid(errors)
    return _save(req, actor, values, "consent.recorded", EventCode.CONSENT_PAPER)


def revoke(req: RecordsRequest, actor: Any, now: datetime | None = None,
           expected_version: int | None = None) -> Consent:
    """Revoke the consent that counts (42 CFR 2.31(a)(6)): the requester online, or staff recording a
    revocation received in writing (the only way for a request entered from paper without an account).
    Nothing more is released under it; what was already disclosed stays disclosed and logged."""
    who = actor_for(actor, req)
    if who is None:
        raise common.RequestRefused("not this request")
    if who is Actor.STAFF:
        common.check_version(req, expected_version)
    consent = current_consent(req) if req.request_type == RequestType.THIRD_PARTY else None
    if consent is None or consent.revoked_at is not None:
        raise common.RequestInvalid({"confirm": _("There is no consent in force on this request to revoke.")})
    consent.revoked_at = now or utcnow()
    common.add_event(req, EventKind.NOTE, Visibility.INTERNAL, actor,
                     code=EventCode.CONSENT_REVOKED_ONLINE if who is Actor.REQUESTER
                     else EventCode.CONSENT_REVOKED_IN_WRITING)
    record("consent.revoked", actor=actor, object_type=common.OBJECT_TYPE, object_id=req.id,
           details={"consent_id": consent.id, "by": who.value})
    db.session.flush()
    return consent


# --- Disclosures and the accounting --------------------------------------------------------------

def released_description(req: RecordsRequest, partial: bool = False) -> str:
    """What the request covers, in words (the consent's default, and the disclosure's record)."""
    return describe_scope(scope_facts(req, partial))


def scope_facts(req: RecordsRequest, partial: bool = False) -> dict[str, Any]:
    """What the request covers, as codes and dates (stored on a disclosure, worded when read)."""
    return {"scope": req.scope.value, "from": req.scope_from, "to": req.scope_to, "kinds": req.kinds,
            "partial": (req.decision_reason or "") if partial else None}


def describe_scope(facts: Mapping[str, Any]) -> str:
    """``scope_facts`` in words, in the language in force."""
    if facts.get("scope") == Scope.DATES:
        text = _("Records from %(start)s to %(end)s", start=facts.get("from") or "?", end=facts.get("to") or "?")
    elif facts.get("scope") == Scope.KINDS:
        text = ", ".join(str(KIND_LABELS.get(kind, kind)) for kind in facts.get("kinds") or [])
    else:
        text = str(SCOPE_LABELS[Scope.EVERYTHING])
    if facts.get("partial") is not None:
        reason = PARTIAL_LABELS.get(facts["partial"])
        text = _("Part of: %(what)s", what=text) + (f" ({reason})" if reason else "")
    return str(text)


# The purpose of a disclosure made under no consent (a consent's purpose is the signer's words).
PURPOSE_TEXTS = {
    "designated": _l("Sent to the licensed professional the patient designated after a denial on clinical "
                     "grounds (Health & Safety Code §123115(b))."),
    "emergency": _l("Medical emergency (42 CFR 2.51): %(reason)s"),
}


def purpose_words(facts: Mapping[str, Any]) -> str:
    """A coded purpose (``{"code": ..., "reason": ...}``) in words, in the language in force."""
    text = str(PURPOSE_TEXTS[facts["code"]])
    return text % {"reason": facts.get("reason") or ""} if "%(reason)s" in text else text


def disclosure_wording(description: Mapping[str, Any] | None = None,
                       purpose: Mapping[str, Any] | None = None) -> str:
    """``Disclosure.wording``: the facts behind the description and the purpose (JSON)."""
    return json.dumps({key: value for key, value in (("description", description), ("purpose", purpose))
                       if value is not None}, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class DisclosureWords:
    description: str
    purpose: str


def disclosure_words(disclosure: Disclosure) -> DisclosureWords:
    """What a disclosure's line in the accounting says, in the reader's language (the language in
    force): worded from its facts; as written at the time for a disclosure from before 0015, for
    text people typed (what an emergency disclosure gave, a consent's purpose), or when the facts
    cannot be read."""
    try:
        facts = json.loads(disclosure.wording) if disclosure.wording else {}
        description = (describe_scope(facts["description"]) if "description" in facts
                       else disclosure.description)
        purpose = purpose_words(facts["purpose"]) if "purpose" in facts else disclosure.purpose
    except (KeyError, ValueError, TypeError):
        return DisclosureWords(disclosure.description, disclosure.purpose)
    return DisclosureWords(description, purpose)


def _years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def accounting_window(basis: DisclosureBasis | str, received_at: datetime) -> datetime:
    """Where an accounting starts for a disclosure of this basis: three years back for those made
    under a consent (42 CFR 2.25(a)), six for every other one (45 CFR 164.528(a)(1))."""
    years = ACCOUNTING_YEARS if basis == DisclosureBasis.CONSENT else ACCOUNTING_YEARS_OTHER
    return _years_before(received_at, years)


def accounting(req: RecordsRequest) -> list[Disclosure] | None:
    """The matched patient's disclosures up to the day the request was received, newest first, in one
    query: those under a consent of the last three years, every other (a 2.51 emergency, a designated
    professional) of the last six; None while the request is not matched to an archive record."""
    if req.archived_patient_id is None:
        return None
    consent_start = accounting_window(DisclosureBasis.CONSENT, req.received_at)
    other_start = accounting_window(DisclosureBasis.EMERGENCY, req.received_at)
    query = (select(Disclosure)
             .where(Disclosure.archived_patient_id == req.archived_patient_id,
                    Disclosure.disclosed_at >= other_start, Disclosure.disclosed_at <= req.received_at,
                    or_(Disclosure.basis != DisclosureBasis.CONSENT, Disclosure.disclosed_at >= consent_start))
             .order_by(Disclosure.disclosed_at.desc(), Disclosure.id.desc()))
    return list(db.session.execute(query).scalars())


def accounting_visible_to_requester(req: Any) -> bool:
    """The requester reads the accounting once the request is closed, whatever the closing state
    (fulfilled, partly fulfilled...), provided their identity was verified: an unverified requester
    never sees who received a patient's records (45 CFR 164.528(c), 164.514(h))."""
    return not req.is_open and req.verified_at is not None


# --- The request's page --------------------------------------------------------------------------

def page_context(req: Any, viewer: Any, staff: bool) -> dict[str, Any]:
    """What the request's page (the requester's when ``staff`` is false, the queue's otherwise)
    needs from this module, as template variables."""
    context: dict[str, Any] = {"redisclosure_notice": REDISCLOSURE_NOTICE, "consent_element_labels": ELEMENT_LABELS}
    if req.request_type == RequestType.THIRD_PARTY:
        consent = current_consent(req)
        problem = consent_problem(consent, deadlines.today(), is_representative(req))
        context.update(
            consent=consent, consent_problem=problem,
            consent_problem_text=common.blocked_reason(problem) if problem else None,
            consent_missing=missing_elements(consent, is_representative(req)) if consent else [],
            consent_representative=is_representative(req),
            consent_disclosures=_request_disclosures(req) if staff else [],
        )
        if staff:
            context["consent_comparison"] = comparison(req, consent) if consent else None
            context["consent_differences"] = [str(ELEMENT_LABELS[name]) for name in consent_differences(consent, req)
                                              ] if consent else []
    if req.request_type == RequestType.ACCOUNTING:
        shown = staff or accounting_visible_to_requester(req)
        context.update(accounting_shown=shown, accounting_rows=accounting(req) if shown else None,
                       accounting_years=ACCOUNTING_YEARS, accounting_years_other=ACCOUNTING_YEARS_OTHER,
                       accounting_start=deadlines.facility_day(_years_before(req.received_at, ACCOUNTING_YEARS)),
                       accounting_start_other=deadlines.facility_day(
                           _years_before(req.received_at, ACCOUNTING_YEARS_OTHER)),
                       accounting_end=deadlines.facility_day(req.received_at))
    return context


@dataclass(frozen=True)
class ComparedRow:
    """One line of the side-by-side comparison on the queue page."""

    label: Any
    request: str | None
    consent: str | None
    differs: bool | None  # None: staff judge (the consent's description against the records asked for)


def comparison(req: RecordsRequest, consent: Consent) -> list[ComparedRow]:
    """The consent and the request side by side, each compared element saying whether they differ."""
    differences = set(consent_differences(consent, req))
    labels = {"patient_name": _l("Patient"), "recipient_name": _l("Recipient"),
              "recipient_address": _l("Recipient's address"), "purpose": _l("Purpose")}
    rows = [ComparedRow(labels[name], getattr(req, name), getattr(consent, name), name in differences)
            for name in COMPARED]
    rows.append(ComparedRow(_l("Records"), released_description(req), consent.information, None))
    return rows


def _request_disclosures(req: RecordsRequest) -> list[Disclosure]:
    return list(db.session.execute(select(Disclosure).where(Disclosure.request_id == req.id)
                                   .order_by(Disclosure.id)).scalars())
