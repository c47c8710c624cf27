"""Medical-emergency disclosures from the helpline (42 CFR 2.51): when one is required, recording it,
and the report of every disclosure made.

42 CFR 2.51(a) lets a Part 2 program disclose patient-identifying information to medical personnel to
meet a bona fide medical emergency when the patient's prior written consent cannot be obtained;
2.51(c) requires that, immediately following the disclosure, the program document in writing
(1) the name of the medical personnel to whom it was made and their affiliation with any health care
facility, (2) the name of the individual making the disclosure, (3) the date and time of the
disclosure and (4) the nature of the emergency. A call is not finalized without that record when the
operator chose 911 / emergency dispatch or says the caller's identity was shared with anyone outside
the helpline (``disclosure_required``). Plain functions: they check, write the audit row and flush.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext
from sqlalchemy import and_, or_, select

from intake.audit.services import record
from intake.calls.models import Call, Disposition, EmergencyDisclosure
from intake.calls.policy import can_edit_call
from intake.db_types import utcnow
from intake.extensions import db
from intake.pagination import MomentCursor
from intake.users.models import User
from intake.users.services import names_by_id

REPORT_PAGE_SIZE = 50
EXPORT_BATCH = 500

# The disclosure's parts the form posts (data["disclosure"]), each with the message shown when missing.
# The discloser defaults to whoever records it (the operator) when the form leaves it empty.
REQUIRED_PARTS = ("disclosed_to", "affiliation", "disclosed_at", "reason")


def _messages() -> dict[str, str]:
    return {
        "disclosed_to": gettext("Name the medical personnel who received the information (42 CFR 2.51(c)(1))."),
        "affiliation": gettext("Give their affiliation: the agency or health care facility (42 CFR 2.51(c)(1))."),
        "disclosed_by": gettext("Choose who made the disclosure (42 CFR 2.51(c)(2))."),
        "disclosed_at": gettext("Give the date and time of the disclosure (42 CFR 2.51(c)(3))."),
        "reason": gettext("Describe the nature of the emergency (42 CFR 2.51(c)(4))."),
    }


def disclosure_required(value: Callable[[str], Any]) -> bool:
    """911 / emergency dispatch, or the caller's identity shared outside the helpline, is a disclosure."""
    return bool(value("safety_911") or value("identity_shared")
                or value("disposition") == Disposition.EMERGENCY_DISPATCHED)


def disclosure_problems(call: Call, data: Mapping[str, Any], value: Callable[[str], Any]) -> dict[str, str]:
    """Field errors for the disclosure part of a finalize: {} when it is fine.

    Required (``disclosure_required``) unless the call already holds one (an edit after finalizing);
    when any part is given, every part of 42 CFR 2.51(c) must be."""
    given = data.get("disclosure")
    messages = _messages()
    if not given:
        if disclosure_required(value) and not _has_disclosure(call):
            return {"disclosure_to": gettext("911 or a shared identity is a disclosure: record it here before "
                                             "finalizing (42 CFR 2.51).")}
        return {}
    return {"disclosure_" + part: messages[part] for part in REQUIRED_PARTS if not given.get(part)}


def _has_disclosure(call: Call) -> bool:
    if call.id is None:
        return False
    return db.session.execute(select(EmergencyDisclosure.id).where(EmergencyDisclosure.call_id == call.id)
                              .limit(1)).first() is not None


def record_disclosure(call: Call, disclosure: Mapping[str, Any], actor: User,
                      now: datetime | None = None) -> EmergencyDisclosure:
    """Write the 2.51(c) record: to whom (and their affiliation), by whom, when, the nature of the
    emergency and what was shared. The texts are encrypted; the audit row holds none of them."""
    from intake.calls.services import CallInvalid, CallRefused  # the services import this module

    if not can_edit_call(actor, call, utcnow()):
        raise CallRefused("this call cannot be changed by this user now")
    messages = _messages()
    missing = {"disclosure_" + p: messages[p] for p in REQUIRED_PARTS if not disclosure.get(p)}
    if missing:
        raise CallInvalid(missing)
    by = disclosure.get("disclosed_by") or actor
    row = EmergencyDisclosure(
        call_id=call.id, disclosed_to=disclosure["disclosed_to"], affiliation=disclosure["affiliation"],
        information=disclosure.get("information") or "", reason=disclosure["reason"],
        disclosed_at=disclosure.get("disclosed_at") or now or utcnow(),
        disclosed_by_id=by if isinstance(by, int) else by.id, recorded_by_id=actor.id)
    db.session.add(row)
    db.session.flush()
    record("call.disclosure_recorded", actor=actor, object_type="call", object_id=call.id,
           details={"disclosure_id": row.id, "disclosed_by_id": row.disclosed_by_id})
    return row


# --- The report of every disclosure made ---------------------------------------------------------

Cursor = MomentCursor


@dataclass
class DisclosureRow:
    id: int
    call_id: int
    disclosed_at: datetime
    disclosed_to: str
    affiliation: str | None
    reason: str
    information: str
    disclosed_by: str | None
    recorded_by: str | None


def _rows(raw: list[EmergencyDisclosure]) -> list[DisclosureRow]:
    names = names_by_id({d.disclosed_by_id for d in raw if d.disclosed_by_id} | {d.recorded_by_id for d in raw})
    return [DisclosureRow(d.id, d.call_id, d.disclosed_at, d.disclosed_to, d.affiliation, d.reason, d.information,
                          names.get(d.disclosed_by_id or d.recorded_by_id), names.get(d.recorded_by_id))
            for d in raw]


def disclosure_page(viewer: Any, before: Cursor | None = None,
                    size: int = REPORT_PAGE_SIZE) -> tuple[list[DisclosureRow], str | None]:
    """One page of every emergency disclosure, newest first (keyset on ``(disclosed_at, id)``, no
    count), and the cursor of the next page. Audited: the page shows who was told what."""
    stmt = select(EmergencyDisclosure)
    if before is not None:
        stmt = stmt.where(EmergencyDisclosure.disclosed_at <= before.at,
                          or_(EmergencyDisclosure.disclosed_at < before.at,
                              and_(EmergencyDisclosure.disclosed_at == before.at, EmergencyDisclosure.id < before.id)))
    raw = list(db.session.execute(stmt.order_by(EmergencyDisclosure.disclosed_at.desc(), EmergencyDisclosure.id.desc())
                                  .limit(size + 1)).scalars())
    rows = _rows(raw[:size])
    following = Cursor(rows[-1].disclosed_at, rows[-1].id).encode() if len(raw) > size else None
    record("disclosures.report_viewed", actor=viewer, details={"rows": len(rows)})
    return rows, following


def all_disclosures(batch: int = EXPORT_BATCH):
    """Every disclosure, oldest first, in batches (for the CSV export; the view audits it)."""
    after: tuple[datetime, int] | None = None
    while True:
        stmt = select(EmergencyDisclosure)
        if after is not None:
            at, last = after
            stmt = stmt.where(or_(EmergencyDisclosure.disclosed_at > at,
                                  and_(EmergencyDisclosure.disclosed_at == at, EmergencyDisclosure.id > last)))
        raw = list(db.session.execute(stmt.order_by(EmergencyDisclosure.disclosed_at, EmergencyDisclosure.id)
                                      .limit(batch)).scalars())
        if not raw:
            return
        yield from _rows(raw)
        after = (raw[-1].disclosed_at, raw[-1].id)
        db.session.expunge_all()
