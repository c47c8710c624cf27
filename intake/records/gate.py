"""The one disclosure gate: whether records may leave now, by this way, to this person. Pure: no
database, no Flask; ``intake.records.disclosures`` gathers the facts, asks ``rule`` and, when the
answer is a disclosure to someone other than the patient, writes it at that moment.

Every path by which records leave asks here: a download released to the requester, a mailing, a
fax, a hand-over, an inspection, and a medical-emergency disclosure from the archive. The lawful
grounds, and only these:

- the patient's own access (45 CFR 164.524; Health & Safety Code 123110; 42 CFR 2.23): the
  requester is the patient or their personal representative, whose identity was verified
  (45 CFR 164.514(h)), and no licensed professional's denial on clinical grounds stands;
- a written consent (42 CFR 2.31, 2.33) for a release to a third party: complete, signed, not expired,
  not revoked, naming this request's patient, recipient and purpose, read side by side with the
  request by staff who confirm that what it describes covers what is sent; the records go to the
  recipient (by post, fax, hand-over or a secure link e-mailed to them), never to the requester's download;
- the licensed professional the patient designated after a denial on clinical grounds
  (H&S 123115(b)): the records go to that professional, not to the patient;
- a bona fide medical emergency (42 CFR 2.51), with every part 2.51(c) asks to be documented.
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.records.models import DeliveryMethod, DisclosureBasis, RequestType

PATIENT_ACCESS = "patient_access"  # not a disclosure to anyone else: nothing for the accounting

# Ways records reach someone other than the requester: a third party, a designated professional.
TO_RECIPIENT = frozenset({DeliveryMethod.MAIL, DeliveryMethod.FAX, DeliveryMethod.PICKUP,
                          DeliveryMethod.RECIPIENT_LINK})
# A designated professional may also inspect the records in person (H&S 123115(b)).
TO_DESIGNATED = TO_RECIPIENT | {DeliveryMethod.INSPECTION}
# What 42 CFR 2.51(c) asks to be documented for an emergency disclosure.
EMERGENCY_PARTS = ("recipient_name", "affiliation", "disclosed_by", "disclosed_at", "reason")


@dataclass(frozen=True)
class Case:
    """The facts of one intended disclosure."""

    request_type: RequestType | None  # None: no request (an emergency disclosure from the archive)
    method: DeliveryMethod | None  # how the records would leave
    verified: bool = False  # the requester's identity is verified
    consent_problem: str | None = None  # ``consents.consent_problem`` of the consent that counts
    differences: tuple[str, ...] = ()  # ``consents.consent_differences``: consent against request
    match_confirmed: bool = False  # staff read consent and request side by side and confirm they match
    clinical_denial: bool = False  # a licensed professional's denial on clinical grounds stands
    designated: bool = False  # the patient designated a qualified professional (H&S 123115(b))
    emergency_missing: tuple[str, ...] | None = None  # None: not an emergency; else the 2.51(c) parts missing


@dataclass(frozen=True)
class Ruling:
    basis: str | None  # PATIENT_ACCESS or a DisclosureBasis code; None when refused
    problem: str | None = None  # why not (a code ``common.blocked_reason`` explains)

    @property
    def lawful(self) -> bool:
        return self.basis is not None

    @property
    def logged(self) -> bool:
        """Whether the disclosure goes in the accounting (everything but the patient's own access)."""
        return self.basis is not None and self.basis != PATIENT_ACCESS


def _refuse(problem: str) -> Ruling:
    return Ruling(None, problem)


def rule(case: Case) -> Ruling:
    """Whether this disclosure is lawful now, and on what ground (see the module's docstring)."""
    if case.emergency_missing is not None:
        # 42 CFR 2.51(a): to medical personnel, to meet a bona fide emergency; (c): documented at once.
        return _refuse("emergency_incomplete") if case.emergency_missing else Ruling(DisclosureBasis.EMERGENCY)
    if not case.verified:
        return _refuse("not_verified")  # 45 CFR 164.514(h): identity and authority verified first
    if case.request_type == RequestType.THIRD_PARTY:
        # 42 CFR 2.31 and 2.33: under a consent that meets every element and matches this disclosure.
        if case.method not in TO_RECIPIENT:
            return _refuse("to_recipient_only")
        if case.consent_problem:
            return _refuse(case.consent_problem)
        if case.differences:
            return _refuse("consent_mismatch")
        if not case.match_confirmed:
            return _refuse("consent_unconfirmed")
        return Ruling(DisclosureBasis.CONSENT)
    if case.clinical_denial:
        # 45 CFR 164.524(a)(3) and H&S 123115(b): the patient's access stays denied; the records may go
        # to the licensed professional the patient designated, and to nobody else.
        if not case.designated:
            return _refuse("clinical_denial")
        if case.method not in TO_DESIGNATED:
            return _refuse("to_designated_only")
        return Ruling(DisclosureBasis.DESIGNATED_PROFESSIONAL)
    return Ruling(PATIENT_ACCESS)  # 45 CFR 164.524; H&S 123110; 42 CFR 2.23


def missing_emergency_parts(values: dict[str, object]) -> tuple[str, ...]:
    """The parts of a 42 CFR 2.51(c) record that are empty."""
    return tuple(part for part in EMERGENCY_PARTS
                 if values.get(part) is None or (isinstance(values.get(part), str) and not str(values[part]).strip()))
